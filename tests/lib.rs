//! End-to-end tests of the Dissemination Service live in `it/`: they start a
//! real Temporal dev server, a real SeaweedFS S3 server and a real webhook
//! receiver on free loopback ports, and drive the real API and worker.
