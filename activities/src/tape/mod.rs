//! Tape copies, through the WLCG Tape REST API v1 (dCache, EOS-CTA,
//! StoRM; the embedded default's `tape-library`): the API's client
//! (`client`), its bearer token (`token`), the staged bytes (`read`) and
//! the `stage` step that brings a dissemination's (or a batch's) tape
//! files online and keeps them pinned until they are read (`stage`).

pub mod client;
pub mod read;
pub(crate) mod stage;
pub mod token;
