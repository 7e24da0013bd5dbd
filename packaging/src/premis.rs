//! The PREMIS 3.0 receipt of a dissemination: the AIP (intellectual
//! entity), its repository files and every delivered file as objects with
//! their digests, the events (retrieval, fixity check, delivery, link
//! regeneration, deletion…) with their outcome and location, and the
//! agents (this service, the client). Valid against the official schema
//! (`packaging/schema/premis-v3-0.xsd`).

/// A file object: a repository file or a delivered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileObject {
    /// Unique within the receipt: the repository file's relative path, or
    /// the delivered file's name (the object key below the dissemination).
    pub name: String,
    pub size: u64,
    /// `(algorithm, lowercase hex)`, algorithm as PREMIS names it
    /// (`MD5`, `SHA-1`, `SHA-256`, `SHA-512`).
    pub digests: Vec<(String, String)>,
}

/// One event of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptEvent {
    /// E.g. `retrieval`, `fixity check`, `delivery`, `link regeneration`,
    /// `deletion`, `cancellation`.
    pub event_type: String,
    /// RFC 3339.
    pub date_time: String,
    pub detail: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Where (a repository location id), when the event has one.
    pub location: Option<String>,
    /// The object's `name` the event is about, when it has one.
    pub object: Option<String>,
    /// The digest algorithm of a fixity check.
    pub algorithm: Option<String>,
}

/// Everything the receipt says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub dissemination_id: String,
    pub archive_id: String,
    pub object_id: String,
    pub client_id: String,
    pub contract_id: String,
    /// The service as an agent: its name and version.
    pub service_name: String,
    pub service_version: String,
    pub repository_files: Vec<FileObject>,
    pub delivered: Vec<FileObject>,
    pub events: Vec<ReceiptEvent>,
}

/// The receipt as a PREMIS 3.0 document (`<premis version="3.0">`).
///
/// Objects come first (the intellectual entity, the repository files, the
/// delivered files), then the events in the order given, then the two
/// agents, as the schema's `premisComplexType` sequence requires. The
/// output is UTF-8, indented, and the same input gives the same bytes.
pub fn premis_xml(receipt: &Receipt) -> String {
    let mut xml = Xml::new();
    xml.element(
        "premis",
        &[
            ("xmlns", PREMIS_NS),
            ("xmlns:xsi", XSI_NS),
            ("xsi:schemaLocation", SCHEMA_LOCATION),
            ("version", "3.0"),
        ],
        |xml| {
            intellectual_entity(xml, receipt);
            for file in &receipt.repository_files {
                repository_file(xml, receipt, file);
            }
            for file in &receipt.delivered {
                delivered_file(xml, receipt, file);
            }
            for (index, event) in receipt.events.iter().enumerate() {
                receipt_event(xml, receipt, index + 1, event);
            }
            service_agent(xml, receipt);
            client_agent(xml, receipt);
        },
    );
    xml.finish()
}

const PREMIS_NS: &str = "http://www.loc.gov/premis/v3";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const SCHEMA_LOCATION: &str =
    "http://www.loc.gov/premis/v3 https://www.loc.gov/standards/premis/v3/premis-v3-0.xsd";

/// Identifier types of the objects and agents.
const ARCHIVE_ID: &str = "archiveId";
const OBJECT_ID: &str = "objectId";
const REPOSITORY_FILE: &str = "repositoryFile";
const DELIVERED_FILE: &str = "deliveredFile";
const LOCAL: &str = "local";
const CLIENT_ID: &str = "clientId";

/// Event types whose recipient is the client.
const CLIENT_EVENTS: [&str; 2] = ["delivery", "link regeneration"];

/// The AIP: its archiveId and the client's objectId, and the repository
/// files it includes.
fn intellectual_entity(xml: &mut Xml, receipt: &Receipt) {
    xml.element("object", &[("xsi:type", "intellectualEntity")], |xml| {
        object_identifier(xml, ARCHIVE_ID, &receipt.archive_id);
        object_identifier(xml, OBJECT_ID, &receipt.object_id);
        for file in &receipt.repository_files {
            relationship(xml, "structural", "includes", REPOSITORY_FILE, &file.name);
        }
    });
}

/// A repository file: part of the AIP.
fn repository_file(xml: &mut Xml, receipt: &Receipt, file: &FileObject) {
    xml.element("object", &[("xsi:type", "file")], |xml| {
        object_identifier(xml, REPOSITORY_FILE, &file.name);
        object_characteristics(xml, file);
        xml.leaf("originalName", &file.name);
        relationship(
            xml,
            "structural",
            "is included in",
            ARCHIVE_ID,
            &receipt.archive_id,
        );
    });
}

/// A delivered file: derived from the AIP, named below the dissemination.
fn delivered_file(xml: &mut Xml, receipt: &Receipt, file: &FileObject) {
    xml.element("object", &[("xsi:type", "file")], |xml| {
        object_identifier(
            xml,
            DELIVERED_FILE,
            &delivered_identifier(receipt, &file.name),
        );
        object_characteristics(xml, file);
        xml.leaf("originalName", &file.name);
        relationship(
            xml,
            "derivation",
            "is derived from",
            ARCHIVE_ID,
            &receipt.archive_id,
        );
    });
}

fn delivered_identifier(receipt: &Receipt, name: &str) -> String {
    format!("{}/{name}", receipt.dissemination_id)
}

fn object_identifier(xml: &mut Xml, kind: &str, value: &str) {
    xml.element("objectIdentifier", &[], |xml| {
        xml.leaf("objectIdentifierType", kind);
        xml.leaf("objectIdentifierValue", value);
    });
}

/// compositionLevel, fixity, size, format: in the order of
/// `objectCharacteristicsComplexType`, where format is required.
fn object_characteristics(xml: &mut Xml, file: &FileObject) {
    xml.element("objectCharacteristics", &[], |xml| {
        xml.leaf("compositionLevel", "0");
        for (algorithm, digest) in &file.digests {
            xml.element("fixity", &[], |xml| {
                xml.leaf("messageDigestAlgorithm", algorithm);
                xml.leaf("messageDigest", digest);
            });
        }
        // `size` is an xs:long: a size beyond it cannot be stated.
        if i64::try_from(file.size).is_ok() {
            xml.leaf("size", &file.size.to_string());
        }
        xml.element("format", &[], |xml| {
            xml.element("formatDesignation", &[], |xml| {
                xml.leaf("formatName", format_name(&file.name));
            });
        });
    });
}

fn format_name(name: &str) -> &'static str {
    if name.to_ascii_lowercase().ends_with(".tar") {
        "application/x-tar"
    } else {
        "application/octet-stream"
    }
}

fn relationship(xml: &mut Xml, kind: &str, sub_kind: &str, related_kind: &str, related: &str) {
    xml.element("relationship", &[], |xml| {
        xml.leaf("relationshipType", kind);
        xml.leaf("relationshipSubType", sub_kind);
        xml.element("relatedObjectIdentifier", &[], |xml| {
            xml.leaf("relatedObjectIdentifierType", related_kind);
            xml.leaf("relatedObjectIdentifierValue", related);
        });
    });
}

/// One event, numbered from 1 within the dissemination.
fn receipt_event(xml: &mut Xml, receipt: &Receipt, number: usize, event: &ReceiptEvent) {
    xml.element("event", &[], |xml| {
        xml.element("eventIdentifier", &[], |xml| {
            xml.leaf("eventIdentifierType", LOCAL);
            xml.leaf(
                "eventIdentifierValue",
                &format!("{}-event-{number}", receipt.dissemination_id),
            );
        });
        xml.leaf("eventType", &event.event_type);
        xml.leaf("eventDateTime", &event.date_time);
        let detail = event_detail(event);
        if !detail.is_empty() {
            xml.element("eventDetailInformation", &[], |xml| {
                xml.leaf("eventDetail", &detail);
            });
        }
        xml.element("eventOutcomeInformation", &[], |xml| {
            xml.leaf("eventOutcome", &event.outcome);
            if let Some(location) = &event.location {
                xml.element("eventOutcomeDetail", &[], |xml| {
                    xml.leaf("eventOutcomeDetailNote", &format!("location: {location}"));
                });
            }
        });
        if event.event_type == "acknowledgement" {
            // The receiving archive checked what it received: its event.
            linking_agent(xml, CLIENT_ID, &receipt.client_id, "validator");
        } else {
            linking_agent(xml, LOCAL, &receipt.service_name, "executing program");
        }
        if CLIENT_EVENTS.contains(&event.event_type.as_str()) {
            linking_agent(xml, CLIENT_ID, &receipt.client_id, "recipient");
        }
        let (kind, value) = event_object(receipt, event.object.as_deref());
        xml.element("linkingObjectIdentifier", &[], |xml| {
            xml.leaf("linkingObjectIdentifierType", kind);
            xml.leaf("linkingObjectIdentifierValue", &value);
        });
    });
}

/// The detail, with the location and the algorithm when the event has
/// them (an event has no element of its own for either).
fn event_detail(event: &ReceiptEvent) -> String {
    let mut detail = event.detail.clone();
    if let Some(location) = &event.location {
        detail.push_str(&format!(" (location {location})"));
    }
    if let Some(algorithm) = &event.algorithm {
        detail.push_str(&format!(" (algorithm {algorithm})"));
    }
    detail.trim_start().to_owned()
}

/// The object an event is about: a repository file, else a delivered
/// file, else (none named, or not found) the intellectual entity.
fn event_object(receipt: &Receipt, object: Option<&str>) -> (&'static str, String) {
    if let Some(name) = object {
        if receipt
            .repository_files
            .iter()
            .any(|file| file.name == name)
        {
            return (REPOSITORY_FILE, name.to_owned());
        }
        if receipt.delivered.iter().any(|file| file.name == name) {
            return (DELIVERED_FILE, delivered_identifier(receipt, name));
        }
    }
    (ARCHIVE_ID, receipt.archive_id.clone())
}

fn linking_agent(xml: &mut Xml, kind: &str, value: &str, role: &str) {
    xml.element("linkingAgentIdentifier", &[], |xml| {
        xml.leaf("linkingAgentIdentifierType", kind);
        xml.leaf("linkingAgentIdentifierValue", value);
        xml.leaf("linkingAgentRole", role);
    });
}

fn service_agent(xml: &mut Xml, receipt: &Receipt) {
    xml.element("agent", &[], |xml| {
        agent_identifier(xml, LOCAL, &receipt.service_name);
        xml.leaf("agentName", &receipt.service_name);
        xml.leaf("agentType", "software");
        xml.leaf("agentVersion", &receipt.service_version);
    });
}

fn client_agent(xml: &mut Xml, receipt: &Receipt) {
    xml.element("agent", &[], |xml| {
        agent_identifier(xml, CLIENT_ID, &receipt.client_id);
        xml.leaf("agentName", &receipt.client_id);
        xml.leaf("agentType", "organization");
        xml.leaf("agentNote", &format!("contract {}", receipt.contract_id));
    });
}

fn agent_identifier(xml: &mut Xml, kind: &str, value: &str) {
    xml.element("agentIdentifier", &[], |xml| {
        xml.leaf("agentIdentifierType", kind);
        xml.leaf("agentIdentifierValue", value);
    });
}

/// An indented XML writer: elements hold either elements or text.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    const INDENT: &'static str = "  ";

    fn new() -> Self {
        Xml {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            depth: 0,
        }
    }

    fn finish(self) -> String {
        self.out
    }

    fn start_tag(&mut self, name: &str, attributes: &[(&str, &str)]) {
        for _ in 0..self.depth {
            self.out.push_str(Self::INDENT);
        }
        self.out.push('<');
        self.out.push_str(name);
        for (attribute, value) in attributes {
            self.out.push(' ');
            self.out.push_str(attribute);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
    }

    /// An element holding elements.
    fn element(&mut self, name: &str, attributes: &[(&str, &str)], body: impl FnOnce(&mut Self)) {
        self.start_tag(name, attributes);
        self.out.push('\n');
        self.depth += 1;
        body(self);
        self.depth -= 1;
        for _ in 0..self.depth {
            self.out.push_str(Self::INDENT);
        }
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    /// An element holding text.
    fn leaf(&mut self, name: &str, text: &str) {
        self.start_tag(name, &[]);
        escape_into(&mut self.out, text);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }
}

/// Text as XML 1.0 character data: the five special characters escaped,
/// CR kept as a character reference (a parser would turn a literal one
/// into LF), and every character XML 1.0 does not allow, or a control
/// character other than tab, LF and CR, replaced by U+FFFD.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            '\u{FFFE}' | '\u{FFFF}' => out.push(char::REPLACEMENT_CHARACTER),
            c if c.is_control() => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const MD5_A: &str = "9e107d9d372bb6826bd81d3542a419d6";
    const SHA256_A: &str = "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592";
    const MD5_B: &str = "e4d909c290d0fb1ca068ffaddf22cbd0";
    const SHA256_B: &str = "ef537f25c895bfa782526529a9b63d97aa631564d5d789c2b765448c8635fb6c";
    const SHA256_D: [&str; 3] = [
        "a591a6d40bf420404a011733cfb7b190d62c65bf0bcda32b57b277d9ad9f146e",
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7",
    ];

    /// A name with every character XML escapes.
    const ODD_NAME: &str = "notes & <drafts> \"v2\" 'final'.bin";
    const ODD_NAME_ESCAPED: &str =
        "notes &amp; &lt;drafts&gt; &quot;v2&quot; &apos;final&apos;.bin";
    /// Non-ASCII and a control character (U+0007).
    const UNICODE_NAME: &str = "Bücher/データ\u{7}.tar";
    const UNICODE_NAME_WRITTEN: &str = "Bücher/データ\u{FFFD}.tar";

    fn event(
        event_type: &str,
        outcome: &str,
        location: Option<&str>,
        object: Option<&str>,
        algorithm: Option<&str>,
    ) -> ReceiptEvent {
        ReceiptEvent {
            event_type: event_type.to_owned(),
            date_time: "2024-05-17T09:30:00Z".to_owned(),
            detail: format!("{event_type} {outcome}"),
            outcome: outcome.to_owned(),
            location: location.map(str::to_owned),
            object: object.map(str::to_owned),
            algorithm: algorithm.map(str::to_owned),
        }
    }

    fn delivered(count: usize) -> Vec<FileObject> {
        let names = ["payload/report.pdf", ODD_NAME, "payload/données.csv"];
        names
            .iter()
            .zip(SHA256_D)
            .take(count)
            .enumerate()
            .map(|(i, (name, digest))| FileObject {
                name: (*name).to_owned(),
                size: 1000 + i as u64,
                digests: vec![("SHA-256".to_owned(), digest.to_owned())],
            })
            .collect()
    }

    fn receipt(delivered_count: usize) -> Receipt {
        Receipt {
            dissemination_id: "dis-7f3a".to_owned(),
            archive_id: "urn:uuid:6c1e2a4b-0b0e-4d2b-9a53-2f6a1e0c9d11".to_owned(),
            object_id: "client-object/42 & more".to_owned(),
            client_id: "archive-nord".to_owned(),
            contract_id: "C-2024-<17>".to_owned(),
            service_name: "dissemination-service".to_owned(),
            service_version: "1.4.2".to_owned(),
            repository_files: vec![
                FileObject {
                    name: "aip/content.tar".to_owned(),
                    size: 10_485_760,
                    digests: vec![
                        ("MD5".to_owned(), MD5_A.to_owned()),
                        ("SHA-256".to_owned(), SHA256_A.to_owned()),
                    ],
                },
                FileObject {
                    name: UNICODE_NAME.to_owned(),
                    size: 2048,
                    digests: vec![
                        ("MD5".to_owned(), MD5_B.to_owned()),
                        ("SHA-256".to_owned(), SHA256_B.to_owned()),
                    ],
                },
            ],
            delivered: delivered(delivered_count),
            events: vec![
                event("retrieval", "success", Some("disk"), None, None),
                event(
                    "fixity check",
                    "success",
                    Some("disk"),
                    Some("aip/content.tar"),
                    Some("SHA-256"),
                ),
                event(
                    "fixity check",
                    "failure",
                    Some("disk"),
                    Some(UNICODE_NAME),
                    Some("SHA-256"),
                ),
                event(
                    "fixity check",
                    "success",
                    Some("s3"),
                    Some(UNICODE_NAME),
                    Some("SHA-256"),
                ),
                event(
                    "delivery",
                    "success",
                    None,
                    Some("payload/report.pdf"),
                    None,
                ),
                event("link regeneration", "success", None, Some(ODD_NAME), None),
                event("deletion", "success", Some("s3"), Some("unknown"), None),
            ],
        }
    }

    fn empty_receipt() -> Receipt {
        Receipt {
            delivered: Vec::new(),
            events: Vec::new(),
            ..receipt(0)
        }
    }

    fn schema() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/premis-v3-0.xsd")
    }

    fn skip_xmllint() -> bool {
        std::env::var("PREMIS_SKIP_XMLLINT").is_ok_and(|v| v == "1")
    }

    /// Runs xmllint against the vendored schema: `Ok` when valid, `Err`
    /// with its report when not.
    fn xmllint(tag: &str, xml: &str) -> Result<(), String> {
        let file =
            std::env::temp_dir().join(format!("premis-receipt-{}-{tag}.xml", std::process::id()));
        std::fs::write(&file, xml).unwrap();
        let output = Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(schema())
            .arg(&file)
            .output();
        let _ = std::fs::remove_file(&file);
        let output = match output {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "xmllint is not on PATH: install it (Debian/Ubuntu: \
                 `apt-get install libxml2-utils`), or set PREMIS_SKIP_XMLLINT=1 \
                 to skip the schema validation"
            ),
            Err(e) => panic!("cannot run xmllint: {e}"),
        };
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    fn assert_valid(tag: &str, xml: &str) {
        if skip_xmllint() {
            return;
        }
        if let Err(report) = xmllint(tag, xml) {
            panic!("not valid PREMIS 3.0:\n{report}\n{xml}");
        }
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn receipt_with_one_and_with_three_delivered_files_is_valid() {
        for delivered_count in [1, 3] {
            let xml = premis_xml(&receipt(delivered_count));
            assert_valid(&format!("delivered-{delivered_count}"), &xml);
            assert_eq!(
                count(&xml, "<object xsi:type=\"file\">"),
                2 + delivered_count
            );
            assert_eq!(
                count(
                    &xml,
                    "<objectIdentifierType>deliveredFile</objectIdentifierType>"
                ),
                delivered_count
            );
            assert_eq!(
                count(
                    &xml,
                    "<relationshipSubType>is derived from</relationshipSubType>"
                ),
                delivered_count
            );
        }
    }

    #[test]
    fn document_has_declaration_root_and_namespaces() {
        let xml = premis_xml(&receipt(3));
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<premis "));
        assert!(xml.contains("xmlns=\"http://www.loc.gov/premis/v3\""));
        assert!(xml.contains("xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""));
        assert!(xml.contains(
            "xsi:schemaLocation=\"http://www.loc.gov/premis/v3 \
             https://www.loc.gov/standards/premis/v3/premis-v3-0.xsd\""
        ));
        assert!(xml.contains(" version=\"3.0\">"));
        assert!(xml.ends_with("</premis>\n"));
        assert_eq!(count(&xml, "<object xsi:type=\"intellectualEntity\">"), 1);
        // Indented: every line starts at an element.
        assert!(xml
            .lines()
            .skip(1)
            .all(|line| line.trim_start().starts_with('<')));
        assert!(
            xml.contains("\n  <object xsi:type=\"intellectualEntity\">\n    <objectIdentifier>\n")
        );
    }

    #[test]
    fn every_digest_is_present() {
        let r = receipt(3);
        let xml = premis_xml(&r);
        for file in r.repository_files.iter().chain(&r.delivered) {
            for (algorithm, digest) in &file.digests {
                let fixity = format!(
                    "<fixity>\n        <messageDigestAlgorithm>{algorithm}</messageDigestAlgorithm>\n        \
                     <messageDigest>{digest}</messageDigest>\n      </fixity>"
                );
                assert!(xml.contains(&fixity), "missing {algorithm} {digest}");
            }
        }
        assert_eq!(count(&xml, "<fixity>"), 2 * 2 + 3);
        assert_eq!(count(&xml, "<messageDigestAlgorithm>MD5<"), 2);
        assert_eq!(count(&xml, "<messageDigestAlgorithm>SHA-256<"), 2 + 3);
        assert!(xml.contains("<size>10485760</size>"));
        assert_eq!(count(&xml, "<compositionLevel>0</compositionLevel>"), 5);
    }

    #[test]
    fn intellectual_entity_and_repository_files() {
        let r = receipt(1);
        let xml = premis_xml(&r);
        assert!(xml.contains(&format!(
            "<objectIdentifierType>archiveId</objectIdentifierType>\n      \
             <objectIdentifierValue>{}</objectIdentifierValue>",
            r.archive_id
        )));
        assert!(xml.contains(
            "<objectIdentifierType>objectId</objectIdentifierType>\n      \
             <objectIdentifierValue>client-object/42 &amp; more</objectIdentifierValue>"
        ));
        assert_eq!(count(&xml, "<relationshipSubType>includes<"), 2);
        assert_eq!(count(&xml, "<relationshipSubType>is included in<"), 2);
        assert!(xml.contains("<originalName>aip/content.tar</originalName>"));
        assert_eq!(count(&xml, "<formatName>application/x-tar</formatName>"), 2);
        assert_eq!(
            count(&xml, "<formatName>application/octet-stream</formatName>"),
            1
        );
        assert!(xml.contains(
            "<objectIdentifierValue>dis-7f3a/payload/report.pdf</objectIdentifierValue>"
        ));
    }

    #[test]
    fn events_in_order_with_outcome_agents_and_objects() {
        let r = receipt(3);
        let xml = premis_xml(&r);
        assert_eq!(count(&xml, "<event>"), r.events.len());
        let mut at = 0;
        for (n, e) in r.events.iter().enumerate() {
            let id = format!(
                "<eventIdentifierValue>dis-7f3a-event-{}</eventIdentifierValue>\n    \
                 </eventIdentifier>\n    <eventType>{}</eventType>",
                n + 1,
                e.event_type
            );
            let found = xml[at..].find(&id).expect("event in order");
            at += found + id.len();
        }
        assert_eq!(count(&xml, "<eventOutcome>success</eventOutcome>"), 6);
        assert_eq!(count(&xml, "<eventOutcome>failure</eventOutcome>"), 1);
        assert_eq!(
            count(
                &xml,
                "<eventOutcomeDetailNote>location: disk</eventOutcomeDetailNote>"
            ),
            3
        );
        assert_eq!(
            count(
                &xml,
                "<eventOutcomeDetailNote>location: s3</eventOutcomeDetailNote>"
            ),
            2
        );
        assert!(xml.contains(
            "<eventDetail>fixity check failure (location disk) (algorithm SHA-256)</eventDetail>"
        ));
        assert!(xml.contains("<eventDetail>delivery success</eventDetail>"));
        assert_eq!(
            count(
                &xml,
                "<linkingAgentRole>executing program</linkingAgentRole>"
            ),
            r.events.len()
        );
        assert_eq!(
            count(&xml, "<linkingAgentRole>recipient</linkingAgentRole>"),
            2
        );

        let link = |kind: &str, value: &str| {
            format!(
                "<linkingObjectIdentifierType>{kind}</linkingObjectIdentifierType>\n      \
                 <linkingObjectIdentifierValue>{value}</linkingObjectIdentifierValue>"
            )
        };
        // Retrieval (no object) and deletion (an unknown object): the AIP.
        assert_eq!(count(&xml, &link("archiveId", &r.archive_id)), 2);
        assert_eq!(count(&xml, &link("repositoryFile", "aip/content.tar")), 1);
        assert_eq!(
            count(&xml, &link("repositoryFile", UNICODE_NAME_WRITTEN)),
            2
        );
        assert_eq!(
            count(&xml, &link("deliveredFile", "dis-7f3a/payload/report.pdf")),
            1
        );
        assert_eq!(
            count(
                &xml,
                &link("deliveredFile", &format!("dis-7f3a/{ODD_NAME_ESCAPED}"))
            ),
            1
        );
    }

    #[test]
    fn agents() {
        let xml = premis_xml(&receipt(1));
        assert_eq!(count(&xml, "<agent>"), 2);
        assert!(xml.contains(
            "<agent>\n    <agentIdentifier>\n      \
             <agentIdentifierType>local</agentIdentifierType>\n      \
             <agentIdentifierValue>dissemination-service</agentIdentifierValue>\n    \
             </agentIdentifier>\n    <agentName>dissemination-service</agentName>\n    \
             <agentType>software</agentType>\n    <agentVersion>1.4.2</agentVersion>\n  \
             </agent>"
        ));
        assert!(xml.contains(
            "<agent>\n    <agentIdentifier>\n      \
             <agentIdentifierType>clientId</agentIdentifierType>\n      \
             <agentIdentifierValue>archive-nord</agentIdentifierValue>\n    \
             </agentIdentifier>\n    <agentName>archive-nord</agentName>\n    \
             <agentType>organization</agentType>\n    \
             <agentNote>contract C-2024-&lt;17&gt;</agentNote>\n  </agent>"
        ));
    }

    #[test]
    fn text_is_escaped_and_forbidden_characters_replaced() {
        let xml = premis_xml(&receipt(3));
        assert!(xml.contains(&format!("<originalName>{ODD_NAME_ESCAPED}</originalName>")));
        assert!(!xml.contains(ODD_NAME));
        assert!(xml.contains(&format!(
            "<objectIdentifierValue>{UNICODE_NAME_WRITTEN}</objectIdentifierValue>"
        )));
        assert!(xml.contains("payload/données.csv"));
        assert!(!xml.contains('\u{7}'));
        assert!(xml.chars().all(|c| !c.is_control() || c == '\n'));

        let mut out = String::new();
        escape_into(
            &mut out,
            "a&b<c>d\"e'f\tg\nh\ri\u{0}j\u{1b}k\u{fffe}l\u{10FFFF}m",
        );
        assert_eq!(
            out,
            "a&amp;b&lt;c&gt;d&quot;e&apos;f\tg\nh&#xD;i\u{FFFD}j\u{FFFD}k\u{FFFD}l\u{10FFFF}m"
        );
    }

    #[test]
    fn output_is_deterministic() {
        assert_eq!(premis_xml(&receipt(3)), premis_xml(&receipt(3)));
        assert_eq!(premis_xml(&empty_receipt()), premis_xml(&empty_receipt()));
        assert_ne!(premis_xml(&receipt(1)), premis_xml(&receipt(3)));
    }

    #[test]
    fn receipt_without_events_or_delivered_files_is_valid() {
        let xml = premis_xml(&empty_receipt());
        assert_valid("empty", &xml);
        assert_eq!(count(&xml, "<event>"), 0);
        assert_eq!(count(&xml, "<agent>"), 2);
        assert_eq!(count(&xml, "<object xsi:type=\"file\">"), 2);

        let bare = Receipt {
            repository_files: Vec::new(),
            ..empty_receipt()
        };
        let xml = premis_xml(&bare);
        assert_valid("bare", &xml);
        assert_eq!(count(&xml, "<object "), 1);
        assert_eq!(count(&xml, "<relationship>"), 0);
    }

    #[test]
    fn detail_and_size_edge_cases_stay_valid() {
        let mut r = receipt(1);
        r.events.push(ReceiptEvent {
            event_type: "cancellation".to_owned(),
            date_time: String::new(),
            detail: String::new(),
            outcome: "failure".to_owned(),
            location: None,
            object: None,
            algorithm: None,
        });
        r.delivered[0].size = u64::MAX;
        r.delivered[0].digests.clear();
        r.repository_files[0].name = "UPPER.TAR".to_owned();
        let xml = premis_xml(&r);
        assert_valid("edge", &xml);
        assert!(!xml.contains(&u64::MAX.to_string()));
        assert_eq!(count(&xml, "<eventDetailInformation>"), r.events.len() - 1);
        assert_eq!(count(&xml, "<formatName>application/x-tar</formatName>"), 2);
    }

    /// The validation does reject a document out of the schema's order.
    #[test]
    fn wrong_element_order_fails_validation() {
        if skip_xmllint() {
            return;
        }
        let xml = premis_xml(&receipt(1));
        assert!(xmllint("order-ok", &xml).is_ok());

        let start = xml.find("    <eventIdentifier>").unwrap();
        let end_tag = "</eventIdentifier>\n";
        let end = start + xml[start..].find(end_tag).unwrap() + end_tag.len();
        let type_end = end + xml[end..].find('\n').unwrap() + 1;
        assert!(xml[end..type_end].trim_start().starts_with("<eventType>"));
        let swapped = format!(
            "{}{}{}{}",
            &xml[..start],
            &xml[end..type_end],
            &xml[start..end],
            &xml[type_end..]
        );
        assert_ne!(swapped, xml);
        let report = xmllint("order-wrong", &swapped).expect_err("out-of-order accepted");
        assert!(report.contains("eventType"), "{report}");
    }
}
