//! The writer: the header block(s) of one regular file, ustar where the
//! path and size fit, with a PAX extended header in front where they do
//! not (or where the path is not plain ASCII).

use super::{padding, BLOCK, OCTAL_MAX};

/// The header block(s) of a regular file `path` of `size` bytes, modified
/// at `mtime` (unix seconds): one ustar block, preceded by a PAX extended
/// header when the path or the size does not fit ustar's fields.
///
/// A path that is not plain ASCII also gets a PAX `path` record, so that
/// readers decode it as UTF-8 whatever their locale.
pub fn header(path: &str, size: u64, mtime: u64) -> Vec<u8> {
    let mut records = Vec::new();
    let split = ustar_split(path);
    if split.is_none() || !path.is_ascii() {
        records.extend(pax_record("path", path.as_bytes()));
    }
    let (prefix, name) = split.unwrap_or(("", truncate(path, 100)));
    let size_field = if size > OCTAL_MAX {
        records.extend(pax_record("size", size.to_string().as_bytes()));
        0
    } else {
        size
    };
    let mtime_field = if mtime > OCTAL_MAX {
        records.extend(pax_record("mtime", mtime.to_string().as_bytes()));
        OCTAL_MAX
    } else {
        mtime
    };
    let mut out = Vec::with_capacity(3 * BLOCK);
    if !records.is_empty() {
        let last = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("");
        let pax_name = format!("PaxHeaders/{}", truncate(last, 100 - "PaxHeaders/".len()));
        out.extend_from_slice(&ustar_block(
            &pax_name,
            "",
            records.len() as u64,
            mtime_field,
            b'x',
        ));
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend_from_slice(&ustar_block(name, prefix, size_field, mtime_field, b'0'));
    out
}

/// `path` as ustar's `prefix` and `name` fields, if it fits them.
fn ustar_split(path: &str) -> Option<(&str, &str)> {
    if path.len() <= 100 {
        return Some(("", path));
    }
    path.match_indices('/')
        .map(|(i, _)| i)
        .find(|&i| i > 0 && i <= 155 && path.len() - i - 1 <= 100 && path.len() - i - 1 > 0)
        .map(|i| (&path[..i], &path[i + 1..]))
}

/// The longest front of `s` of at most `max` bytes that ends on a character.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One PAX record, `"%d key=value\n"`, its length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    record
}

/// One ustar header block.
fn ustar_block(name: &str, prefix: &str, size: u64, mtime: u64, typeflag: u8) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    let put = |b: &mut [u8; BLOCK], at: usize, bytes: &[u8]| {
        b[at..at + bytes.len()].copy_from_slice(bytes)
    };
    put(&mut b, 0, name.as_bytes());
    put(&mut b, 100, b"0000644\0");
    put(&mut b, 108, b"0000000\0");
    put(&mut b, 116, b"0000000\0");
    put(&mut b, 124, format!("{size:011o}\0").as_bytes());
    put(&mut b, 136, format!("{mtime:011o}\0").as_bytes());
    put(&mut b, 148, b"        ");
    b[156] = typeflag;
    put(&mut b, 257, b"ustar\0");
    put(&mut b, 263, b"00");
    put(&mut b, 329, b"0000000\0");
    put(&mut b, 337, b"0000000\0");
    put(&mut b, 345, prefix.as_bytes());
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    put(&mut b, 148, format!("{sum:06o}\0 ").as_bytes());
    b
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::tar::fields::{field_str, numeric};
    use crate::tar::testing::{bytes, file, read_all, Read};
    use crate::tar::{Event, Member, MemberKind, TarReader, END_OF_ARCHIVE};
    use ::tar::EntryType;
    use std::io;

    fn write_archive(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (path, data) in files {
            out.extend(header(path, data.len() as u64, 1_700_000_000));
            out.extend_from_slice(data);
            out.resize(out.len() + padding(data.len() as u64), 0);
        }
        out.extend_from_slice(&END_OF_ARCHIVE);
        out
    }

    fn written_files() -> Vec<(String, Vec<u8>)> {
        vec![
            ("short.txt".into(), bytes(10, 1)),
            (
                format!("{}/{}", "p".repeat(60), "n".repeat(139)),
                bytes(513, 2),
            ),
            (
                format!("{}/{}", "q".repeat(140), "r".repeat(90)),
                bytes(1, 3),
            ),
            ("x".repeat(100), bytes(512, 4)),
            ("Ünïcödé/файл 名前 with space.txt".into(), bytes(1000, 5)),
            (
                format!("{}/{}", "ü".repeat(60), "名".repeat(40)),
                bytes(3, 6),
            ),
            ("empty".into(), Vec::new()),
        ]
    }

    fn written() -> Vec<u8> {
        let files = written_files();
        let refs: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
        write_archive(&refs)
    }

    #[test]
    fn written_archives_read_back_with_the_tar_crate() {
        let archive = written();
        let mut a = ::tar::Archive::new(&archive[..]);
        let mut got = Vec::new();
        for entry in a.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
            assert_eq!(entry.header().entry_type(), EntryType::Regular);
            assert_eq!(entry.header().mode().unwrap(), 0o644);
            assert_eq!(entry.header().mtime().unwrap(), 1_700_000_000);
            let mut data = Vec::new();
            io::Read::read_to_end(&mut entry, &mut data).unwrap();
            got.push((path, data));
        }
        assert_eq!(got, written_files());
    }

    #[test]
    fn written_archives_read_back_with_this_reader() {
        let mut expected: Vec<Read> = written_files().iter().map(|(p, d)| file(p, d)).collect();
        expected.push(Read::End);
        assert_eq!(read_all(&written()), expected);
    }

    #[test]
    fn written_archives_read_back_with_python() {
        let Ok(out) = std::process::Command::new("python3")
            .arg("--version")
            .output()
        else {
            return;
        };
        if !out.status.success() {
            return;
        }
        let path =
            std::env::temp_dir().join(format!("packaging-tar-test-{}.tar", std::process::id()));
        std::fs::write(&path, written()).unwrap();
        let out = std::process::Command::new("python3")
            .env("PYTHONIOENCODING", "utf-8")
            .arg("-c")
            .arg(
                "import tarfile,sys; t=tarfile.open(sys.argv[1]); \
                 print(\"\\n\".join(m.name+\" \"+str(m.size) for m in t.getmembers()))",
            )
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: String = written_files()
            .iter()
            .map(|(p, d)| format!("{p} {}\n", d.len()))
            .collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    }

    #[test]
    fn the_ustar_header_fields() {
        let h = header("dir/file.txt", 1000, 1_700_000_000);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[0..13], b"dir/file.txt\0");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[116..124], b"0000000\0");
        assert_eq!(&h[124..136], b"00000001750\0");
        assert_eq!(&h[136..148], format!("{:011o}\0", 1_700_000_000).as_bytes());
        assert_eq!(h[156], b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(h[265..329].iter().all(|&x| x == 0), "uname, gname empty");
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(x)
                }
            })
            .sum();
        assert_eq!(numeric(&h[148..156]), Some(sum));
        assert_eq!(&h[154..156], b"\0 ");
        // The ustar split: the prefix, then the name.
        let path = format!("{}/{}", "a".repeat(150), "b".repeat(100));
        let h = header(&path, 0, 0);
        assert_eq!(h.len(), 512);
        assert_eq!(&h[345..495], "a".repeat(150).as_bytes());
        assert_eq!(&h[0..100], "b".repeat(100).as_bytes());
    }

    #[test]
    fn sizes_over_8_gib_get_a_pax_size() {
        let size = (8u64 << 30) + 1;
        let h = header("big.bin", size, 0);
        assert_eq!(h.len(), 3 * 512);
        assert_eq!(h[156], b'x');
        assert_eq!(&h[512..512 + 20], b"19 size=8589934593\n\0");
        assert_eq!(&h[1024..1032], b"big.bin\0");
        assert_eq!(numeric(&h[1024 + 124..1024 + 136]), Some(0));
        let mut r = TarReader::new();
        let mut buf = &h[..];
        let mut member = None;
        while !buf.is_empty() {
            let (n, e) = r.next(buf).unwrap();
            buf = &buf[n..];
            if let Some(Event::Member(m)) = e {
                member = Some(m);
            }
        }
        assert_eq!(
            member,
            Some(Member {
                path: "big.bin".into(),
                size,
                kind: MemberKind::File
            })
        );
        let mut a = ::tar::Archive::new(&h[..]);
        let entry = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.size(), size);
        assert_eq!(&*entry.path_bytes(), b"big.bin");
        // Just under the limit: octal, no PAX.
        assert_eq!(header("f", OCTAL_MAX, 0).len(), 512);
        assert_eq!(header("f", OCTAL_MAX + 1, 0).len(), 1536);
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for n in 0..1200 {
            let value = "v".repeat(n);
            let r = pax_record("path", value.as_bytes());
            let s = std::str::from_utf8(&r).unwrap();
            let (len, rest) = s.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), r.len(), "value of {n}");
            assert_eq!(rest, format!("path={value}\n"));
        }
    }

    #[test]
    fn pax_header_names_fit_and_stay_utf8() {
        let path = format!("{}/{}", "dir", "ö".repeat(80));
        let h = header(&path, 1, 0);
        assert_eq!(h[156], b'x');
        let name = field_str(&h[0..100]);
        assert!(name.starts_with(b"PaxHeaders/"));
        assert!(std::str::from_utf8(name).is_ok());
        let name = field_str(&h[1024..1124]);
        assert!(std::str::from_utf8(name).is_ok());
        assert!(name.len() <= 100);
    }
}
