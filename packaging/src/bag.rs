//! The tag files of a BagIt 1.0 bag (RFC 8493): `bagit.txt`,
//! `bag-info.txt` and the SHA-256 manifests. The payload itself is
//! streamed by the caller under `data/`.

/// `bagit.txt`: the version and the tag files' encoding.
pub const BAGIT_TXT: &str = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n";

/// What `bag-info.txt` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BagInfo {
    pub source_organization: String,
    /// The AIP's archiveId.
    pub external_identifier: String,
    /// The client's objectId.
    pub internal_sender_identifier: String,
    /// `YYYY-MM-DD`.
    pub bagging_date: String,
    /// Bytes and files of the payload (`Payload-Oxum`).
    pub payload_octets: u64,
    pub payload_files: u64,
}

/// `bag-info.txt`, one `Label: value` a line (values on one line).
pub fn bag_info_txt(info: &BagInfo) -> String {
    let line = |label: &str, value: &str| format!("{label}: {}\n", one_line(value));
    [
        line("Source-Organization", &info.source_organization),
        line("External-Identifier", &info.external_identifier),
        line(
            "Internal-Sender-Identifier",
            &info.internal_sender_identifier,
        ),
        line("Bagging-Date", &info.bagging_date),
        line(
            "Payload-Oxum",
            &format!("{}.{}", info.payload_octets, info.payload_files),
        ),
        line("Bag-Size", &human_size(info.payload_octets)),
    ]
    .concat()
}

/// A manifest: `<sha256>  <path>` a line, paths encoded as RFC 8493 asks.
pub fn manifest<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    entries
        .into_iter()
        .map(|(digest, path)| format!("{digest}  {}\n", encode_path(path)))
        .collect()
}

/// A path as a manifest line holds it: `%`, CR and LF percent-encoded
/// (RFC 8493 §2.1.3).
pub fn encode_path(path: &str) -> String {
    path.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// `Bag-Size`: the payload's size for people, e.g. `2.0 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bag_info_carries_the_identifiers_and_the_oxum() {
        let text = bag_info_txt(&BagInfo {
            source_organization: "National Library".into(),
            external_identifier: "019e404e-60ab-7457-b7c9-94c453242c69".into(),
            internal_sender_identifier: "digifoto_1\nx".into(),
            bagging_date: "2026-12-01".into(),
            payload_octets: 3_481_600,
            payload_files: 2,
        });
        assert!(text.contains("External-Identifier: 019e404e-60ab-7457-b7c9-94c453242c69\n"));
        assert!(text.contains("Internal-Sender-Identifier: digifoto_1 x\n"));
        assert!(text.contains("Payload-Oxum: 3481600.2\n"));
        assert!(text.contains("Bag-Size: 3.3 MiB\n"));
    }

    #[test]
    fn manifest_paths_are_encoded() {
        let m = manifest([("ab", "data/100%\nnew.txt"), ("cd", "data/a b")]);
        assert_eq!(m, "ab  data/100%25%0Anew.txt\ncd  data/a b\n");
        assert_eq!(human_size(12), "12 bytes");
    }
}
