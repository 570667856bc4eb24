//! Writes the Amazon Trust Services root certificates, taken from the
//! `webpki-root-certs` crate (Mozilla's root program, as published by
//! ccadb.org), to `$OUT_DIR/amazon-trust-services.pem`. The functions trust
//! these for AWS's own endpoints: they are compiled in, so nothing is read or
//! looked up at init. The build fails if the crate stops carrying any of them.

use base64::Engine;

/// The roots AWS service endpoints chain to (Amazon Trust Services'
/// repository): Amazon Root CA 1–4 and the Starfield Services G2 root that
/// cross-signs them.
const NAMES: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

fn main() {
    let mut pem = String::new();
    for name in NAMES {
        // A root is self-signed: its name is in its subject (and issuer),
        // length-prefixed in the DER, so "Amazon Root CA 1" cannot match a
        // longer name by prefix.
        let mut needle = vec![u8::try_from(name.len()).expect("short name")];
        needle.extend_from_slice(name.as_bytes());
        let found: Vec<_> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter(|c| c.as_ref().windows(needle.len()).any(|w| w == needle))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "webpki-root-certs must carry exactly one {name:?}"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(found[0].as_ref());
        pem.push_str(&format!("# {name}\n-----BEGIN CERTIFICATE-----\n"));
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join("amazon-trust-services.pem");
    std::fs::write(out, pem).expect("write the roots");
    println!("cargo::rerun-if-changed=build.rs");
}
