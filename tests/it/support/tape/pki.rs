//! A certificate authority and a server certificate made with openssl for
//! the library's HTTPS, and the openssl runner other test PKIs use too.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// A CA and a server certificate for 127.0.0.1 (and `localhost`) signed by
/// it, made with openssl.
#[derive(Clone, Debug)]
pub struct Pki {
    /// The CA alone in a hashed certificate folder (`openssl rehash`), as
    /// `X509_CERT_DIR` (davix, gfal2) wants it.
    pub ca_dir: PathBuf,
    /// The CA certificate (PEM), `ca_dir/ca.pem`.
    pub ca_pem: PathBuf,
    /// The server's certificate (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
}

/// Runs `openssl` with `args` in `dir`; a failure fails the test.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/install-tools.sh)");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// Makes a [`Pki`] in `dir` (created if missing).
pub fn make_pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir.join("ca")).unwrap();
    let openssl = |args: &[&str]| openssl(dir, args);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca/ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tape-library-test-ca",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca/ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-CAserial",
        "ca.srl",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    openssl(&["rehash", "ca"]);
    Pki {
        ca_dir: dir.join("ca"),
        ca_pem: dir.join("ca/ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    }
}
