//! The command line, parsed and checked once at start.

use crate::lifetime;
use clap::Parser;
use std::{path::PathBuf, time::Duration};

/// A stand-in for a tape system behind the WLCG Tape REST API v1.
#[derive(Parser, Debug, Clone)]
#[command(version)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0`: a free port, see --port-file).
    #[arg(long, default_value = "127.0.0.1:8444")]
    pub listen: String,

    /// The files "on tape", at their namespace path under this folder.
    #[arg(long)]
    pub tape_dir: PathBuf,

    /// The disk buffer: staged copies, same layout; kept across restarts.
    #[arg(long)]
    pub buffer_dir: PathBuf,

    /// Volume, tape position and health per path (JSON; see docs/tape-library.md).
    #[arg(long)]
    pub manifest: Option<PathBuf>,

    /// Buffer size; over it, unpinned copies are evicted, least recently used
    /// first. Bytes, or with a suffix: K, M, G, T (powers of 1024), KiB, MiB, ...
    #[arg(long, default_value = "10GiB", value_parser = parse_bytes)]
    pub buffer_bytes: u64,

    /// Tape drives.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub drives: u16,

    /// Time to mount a volume, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub mount_ms: u64,

    /// Time to unmount a volume before mounting another, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub unmount_ms: u64,

    /// Read rate of a drive (0: unpaced). Bytes, or with a suffix as --buffer-bytes.
    #[arg(long, default_value = "200MiB", value_parser = parse_bytes)]
    pub read_bytes_per_sec: u64,

    /// Pin lifetime of a staged file whose request gives no diskLifetime
    /// (ISO 8601 duration or seconds).
    #[arg(long, default_value = "P1D", value_parser = parse_lifetime)]
    pub default_disk_lifetime: Duration,

    /// Path of the API under the server (the discovery document points there).
    #[arg(long, default_value = "/api/v1")]
    pub api_base: String,

    /// Origin advertised in the discovery document and Location headers
    /// (e.g. https://tape.example.org:8444); default: the one the client used.
    #[arg(long)]
    pub public_url: Option<String>,

    /// `sitename` of the discovery document (the key of targetedMetadata).
    #[arg(long, default_value = "tape-library")]
    pub sitename: String,

    /// `description` of the discovery document.
    #[arg(
        long,
        default_value = "Tape library stand-in (WLCG Tape REST API v1) of the Dissemination Service"
    )]
    pub description: String,

    /// Accepted bearer tokens, one a line (re-read when it changes); without
    /// it, no authentication.
    #[arg(long)]
    pub token_file: Option<PathBuf>,

    /// Server certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Server private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Write the port listened on to this file (once ready).
    #[arg(long)]
    pub port_file: Option<PathBuf>,
}

impl Config {
    /// The API base as `/seg/seg`: leading slash, no trailing slash.
    pub fn api_base(&self) -> anyhow::Result<String> {
        let trimmed = self.api_base.trim_matches('/');
        anyhow::ensure!(
            !trimmed.is_empty()
                && !trimmed.starts_with('.')
                && trimmed.split('/').next() != Some("admin"),
            "--api-base must name a path such as /api/v1 (not /, /admin or a hidden folder)"
        );
        Ok(format!("/{trimmed}"))
    }
}

/// `1048576`, `1M`, `1MiB`, `10G`, `10GiB` (all powers of 1024).
pub fn parse_bytes(raw: &str) -> Result<u64, String> {
    let s = raw.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a byte count"))?;
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => {
            return Err(format!(
                "{raw:?}: unknown unit (use K, M, G, T or KiB, MiB, ...)"
            ))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{raw:?} is too large"))
}

fn parse_lifetime(raw: &str) -> Result<Duration, String> {
    lifetime::parse(raw).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_with_units() {
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert_eq!(parse_bytes("200MiB"), Ok(200 << 20));
        assert_eq!(parse_bytes("10G"), Ok(10 << 30));
        assert!(parse_bytes("10X").is_err());
        assert!(parse_bytes("MiB").is_err());
    }

    #[test]
    fn the_api_base_is_normalised() {
        let cfg = |base: &str| {
            Config::parse_from([
                "tape-library",
                "--tape-dir",
                "t",
                "--buffer-dir",
                "b",
                "--api-base",
                base,
            ])
        };
        assert_eq!(cfg("/api/v1/").api_base().ok().as_deref(), Some("/api/v1"));
        assert_eq!(
            cfg("tape/api").api_base().ok().as_deref(),
            Some("/tape/api")
        );
        assert!(cfg("/").api_base().is_err());
        assert!(cfg("/admin").api_base().is_err());
    }
}
