//! Which certificate authorities the HTTPS client trusts, and the client.
//!
//! A Lambda function that talks only to AWS's own endpoints trusts the
//! Amazon Trust Services roots compiled into the binary: nothing is read from
//! disk and five certificates are parsed instead of the system's 144, which
//! measured as most of what building AWS clients added to init (see
//! `docs/benchmarks.md`). Wherever the configuration points somewhere else,
//! the trust is what it was before, so nothing that worked stops working:
//!
//! | the environment has | trusted |
//! |---|---|
//! | `AWS_CA_BUNDLE` naming a file | that file only |
//! | `SSL_CERT_FILE` naming a file | that file only |
//! | an `AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_<SERVICE>` over `https://` | the system bundle |
//! | `HTTPS_PROXY`, `HTTP_PROXY` or `ALL_PROXY` (any case) | the system bundle |
//! | a region outside the `aws` partition (`cn-`, `us-gov-`, `*-iso*`) | the system bundle |
//! | none of these, in a function | the Amazon Trust Services roots |
//! | none of these, in a tool | the system bundle |
//!
//! "The system bundle" is the first of [`BUNDLE_CANDIDATES`] that exists;
//! without one, the SDK's own default (the system's roots, bundle and
//! certificate folder). A bundle that holds no readable certificate is not
//! used (the SDK would panic on it): the choice falls back the same way.

use std::fmt;
use std::path::PathBuf;

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, Connector};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

/// The Amazon Trust Services roots (Amazon Root CA 1–4, Starfield Services
/// Root G2), written by the build script from the `webpki-root-certs` crate.
pub const AMAZON_TRUST_SERVICES_PEM: &str =
    include_str!(concat!(env!("OUT_DIR"), "/amazon-trust-services.pem"));

/// Where CA bundles live: Amazon Linux 2023 (Lambda's `provided.al2023`) and
/// RHEL first, then Debian/Ubuntu, Alpine/macOS, and the extracted Fedora one.
pub const BUNDLE_CANDIDATES: [&str; 4] = [
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
];

/// Who builds the client: a Lambda function (lean) or a tool run by a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Function,
    Tool,
}

/// What the HTTPS client trusts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The compiled-in Amazon Trust Services roots.
    AmazonRoots,
    /// The certificates of one PEM file.
    Bundle { path: PathBuf, why: String },
    /// The SDK's default: the system's roots, bundle and certificate folder.
    SdkDefault { why: String },
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::AmazonRoots => f.write_str("the compiled-in Amazon Trust Services roots"),
            Trust::Bundle { path, why } => write!(f, "the bundle {} ({why})", path.display()),
            Trust::SdkDefault { why } => write!(f, "the system's roots ({why})"),
        }
    }
}

const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

fn non_empty<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
    vars.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether `region` is outside the commercial `aws` partition (China,
/// GovCloud, the isolated regions), whose endpoints may chain elsewhere.
pub fn outside_aws_partition(region: &str) -> bool {
    let r = region.trim().to_ascii_lowercase();
    r.starts_with("cn-") || r.starts_with("us-gov-") || r.contains("-iso")
}

/// Chooses what to trust from the environment `vars` (name, value pairs).
/// `exists` tells whether a path names a file (a parameter for the tests).
pub fn choose(
    vars: &[(String, String)],
    purpose: Purpose,
    candidates: &[&str],
    exists: &dyn Fn(&str) -> bool,
) -> Trust {
    for name in ["AWS_CA_BUNDLE", "SSL_CERT_FILE"] {
        if let Some(path) = non_empty(vars, name) {
            if exists(path) {
                return Trust::Bundle {
                    path: path.into(),
                    why: name.to_owned(),
                };
            }
            tracing::warn!("{name} names no file; ignoring it");
        }
    }
    let system = |why: String| match candidates.iter().find(|c| exists(c)) {
        Some(path) => Trust::Bundle {
            path: (*path).into(),
            why,
        },
        None => Trust::SdkDefault { why },
    };
    let mut https_endpoints: Vec<&str> = vars
        .iter()
        .filter(|(k, v)| {
            k.starts_with("AWS_ENDPOINT_URL")
                && v.trim().to_ascii_lowercase().starts_with("https://")
        })
        .map(|(k, _)| k.as_str())
        .collect();
    https_endpoints.sort_unstable();
    if let Some(name) = https_endpoints.first() {
        return system(format!("{name} is an HTTPS endpoint"));
    }
    if let Some(name) = PROXY_VARS.iter().find(|n| non_empty(vars, n).is_some()) {
        return system(format!("{name} is set"));
    }
    let region = non_empty(vars, "AWS_REGION").or_else(|| non_empty(vars, "AWS_DEFAULT_REGION"));
    if let Some(region) = region.filter(|r| outside_aws_partition(r)) {
        return system(format!("the region {region} is outside the aws partition"));
    }
    match purpose {
        Purpose::Function => Trust::AmazonRoots,
        Purpose::Tool => system("a tool".to_owned()),
    }
}

/// The process's environment, as (name, value) pairs; names or values that
/// are not Unicode are left out (none of the variables read here can be).
pub fn env_vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Whether `pem` holds at least one certificate and nothing unreadable.
pub fn is_usable_bundle(pem: &[u8]) -> bool {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        if cert.is_err() {
            return false;
        }
        count += 1;
    }
    count > 0
}

fn context_for(pem: Vec<u8>) -> Option<TlsContext> {
    let store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(pem);
    TlsContext::builder().with_trust_store(store).build().ok()
}

/// The TLS context for `trust`; `None` means the SDK's default roots.
fn tls_context(trust: &Trust) -> Option<TlsContext> {
    match trust {
        Trust::AmazonRoots => context_for(AMAZON_TRUST_SERVICES_PEM.as_bytes().to_vec()),
        Trust::SdkDefault { .. } => None,
        Trust::Bundle { path, .. } => {
            let pem = match std::fs::read(path) {
                Ok(pem) => pem,
                Err(e) => {
                    tracing::warn!(
                        "cannot read the CA bundle {} ({e}); using the system's roots",
                        path.display()
                    );
                    return None;
                }
            };
            // The SDK's TLS builder panics on a PEM it cannot read: check
            // first, with the same parser, and keep the default when in doubt.
            if !is_usable_bundle(&pem) {
                tracing::warn!(
                    "the CA bundle {} holds no readable certificate; using the system's roots",
                    path.display()
                );
                return None;
            }
            context_for(pem)
        }
    }
}

/// An HTTPS client (rustls with aws-lc, as the SDK's default) that trusts
/// `trust` and, like the SDK's default client, honours `HTTP_PROXY`,
/// `HTTPS_PROXY` and `NO_PROXY`.
pub fn https_client(trust: &Trust) -> SharedHttpClient {
    let context = tls_context(trust);
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder =
            Connector::builder().tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
        if let Some(context) = &context {
            builder = builder.tls_context(context.clone());
        }
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const SYS: &str = "/etc/ssl/certs/ca-certificates.crt";

    fn choose_with(pairs: &[(&str, &str)], purpose: Purpose, files: &[&str]) -> Trust {
        let files: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
        choose(&vars(pairs), purpose, &["/nope.crt", SYS], &|p: &str| {
            files.iter().any(|f| f == p)
        })
    }

    fn bundle(t: &Trust) -> Option<&str> {
        match t {
            Trust::Bundle { path, .. } => path.to_str(),
            _ => None,
        }
    }

    #[test]
    fn a_function_on_aws_endpoints_trusts_the_compiled_in_roots() {
        let env = [
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ];
        assert_eq!(
            choose_with(&env, Purpose::Function, &[SYS]),
            Trust::AmazonRoots
        );
        assert_eq!(
            choose_with(&[], Purpose::Function, &[SYS]),
            Trust::AmazonRoots
        );
        // A tool keeps the system's bundle.
        assert_eq!(bundle(&choose_with(&env, Purpose::Tool, &[SYS])), Some(SYS));
    }

    #[test]
    fn an_explicit_bundle_wins_for_everyone() {
        let env = [
            ("AWS_CA_BUNDLE", "/ca/a.pem"),
            ("SSL_CERT_FILE", "/ca/b.pem"),
        ];
        for purpose in [Purpose::Function, Purpose::Tool] {
            let t = choose_with(&env, purpose, &["/ca/a.pem", "/ca/b.pem", SYS]);
            assert_eq!(bundle(&t), Some("/ca/a.pem"));
            // A bundle variable naming no file is ignored.
            let t = choose_with(&env, purpose, &["/ca/b.pem", SYS]);
            assert_eq!(bundle(&t), Some("/ca/b.pem"));
        }
        let t = choose_with(&[("AWS_CA_BUNDLE", " ")], Purpose::Function, &[SYS]);
        assert_eq!(t, Trust::AmazonRoots);
    }

    #[test]
    fn https_endpoints_proxies_and_other_partitions_keep_the_system_bundle() {
        let cases: [&[(&str, &str)]; 6] = [
            &[("AWS_ENDPOINT_URL", "https://localhost:4566")],
            &[("AWS_ENDPOINT_URL_KMS", "HTTPS://kms.internal")],
            &[("https_proxy", "http://proxy:3128")],
            &[("ALL_PROXY", "http://proxy:3128")],
            &[("AWS_REGION", "cn-north-1")],
            &[("AWS_DEFAULT_REGION", "us-gov-west-1")],
        ];
        for env in cases {
            let t = choose_with(env, Purpose::Function, &[SYS]);
            assert_eq!(bundle(&t), Some(SYS), "{env:?}");
            // Without a bundle file: the SDK's default roots, never ours.
            let t = choose_with(env, Purpose::Function, &[]);
            assert!(matches!(t, Trust::SdkDefault { .. }), "{env:?}: {t:?}");
        }
        // An empty proxy variable counts as unset.
        assert_eq!(
            choose_with(&[("HTTPS_PROXY", "")], Purpose::Function, &[SYS]),
            Trust::AmazonRoots
        );
    }

    #[test]
    fn the_partition_check() {
        for r in [
            "cn-north-1",
            "cn-northwest-1",
            "us-gov-east-1",
            "us-iso-east-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
        ] {
            assert!(outside_aws_partition(r), "{r}");
        }
        for r in [
            "us-east-1",
            "eu-central-1",
            "ap-northeast-1",
            "il-central-1",
            "mx-central-1",
        ] {
            assert!(!outside_aws_partition(r), "{r}");
        }
    }

    #[test]
    fn the_compiled_in_roots_are_the_five_amazon_trust_services_roots() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let certs: Vec<CertificateDer<'_>> =
            CertificateDer::pem_slice_iter(AMAZON_TRUST_SERVICES_PEM.as_bytes())
                .collect::<Result<_, _>>()
                .expect("readable PEM");
        assert_eq!(certs.len(), 5);
        for n in 1..=4 {
            assert!(AMAZON_TRUST_SERVICES_PEM.contains(&format!("# Amazon Root CA {n}\n")));
        }
        // Each is a DER certificate naming itself.
        for (cert, name) in certs.iter().zip([
            "Amazon Root CA 1",
            "Amazon Root CA 2",
            "Amazon Root CA 3",
            "Amazon Root CA 4",
            "Starfield Services Root Certificate Authority - G2",
        ]) {
            assert_eq!(cert.as_ref()[0], 0x30, "a DER SEQUENCE");
            let der = cert.as_ref();
            assert!(
                der.windows(name.len()).any(|w| w == name.as_bytes()),
                "{name}"
            );
        }
        assert!(is_usable_bundle(AMAZON_TRUST_SERVICES_PEM.as_bytes()));
        assert!(tls_context(&Trust::AmazonRoots).is_some());
    }

    #[test]
    fn only_whole_pem_bundles_are_used() {
        let good = include_bytes!("../tests/isrg-root-x1.pem");
        assert!(is_usable_bundle(good));
        let two = [&good[..], &good[..]].concat();
        assert!(is_usable_bundle(&two));
        // Truncated in the middle of a certificate (the SDK would panic).
        assert!(!is_usable_bundle(&good[..good.len() / 2]));
        assert!(!is_usable_bundle(b"not a certificate"));
        assert!(!is_usable_bundle(b""));
    }
}
