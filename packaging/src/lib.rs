//! What a delivery is made of, without I/O.
//!
//! - [`tar`]: a TAR archive read while it streams (members and their data
//!   as the bytes pass), and TAR members written with their headers.
//! - [`select`]: which members a request's `select` patterns take.
//! - [`bag`]: the tag files of a BagIt 1.0 bag (RFC 8493).
//! - [`premis`]: the PREMIS 3.0 receipt of a dissemination.

pub mod bag;
pub mod premis;
pub mod select;
pub mod tar;
