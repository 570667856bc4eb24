//! The Lambda binary decrypts with KMS only: the development raw-AES key
//! (crate `dev-keyring`) may serve this package's tests, never its binary.
//! Cargo would link it into the binary only through `[dependencies]`, so the
//! manifest is checked section by section (and `code-decrypt`, which the
//! binary does link, must not depend on it either).

fn sections(manifest: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = vec![(String::new(), Vec::new())];
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            out.push((line.to_owned(), Vec::new()));
        } else if let Some((key, _)) = line.split_once(['=', '.'])
            && let Some(last) = out.last_mut()
        {
            last.1.push(key.trim().to_owned());
        }
    }
    out
}

fn normal_dependencies(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    sections(&text)
        .into_iter()
        .filter(|(name, _)| {
            name == "[dependencies]"
                || name.starts_with("[target.") && name.ends_with(".dependencies]")
        })
        .flat_map(|(_, keys)| keys)
        .collect()
}

#[test]
fn the_binary_and_its_decryptor_do_not_depend_on_the_development_keyring() {
    let here = env!("CARGO_MANIFEST_DIR");
    let own = normal_dependencies(&format!("{here}/Cargo.toml"));
    assert!(own.contains(&"code-decrypt".to_owned()), "{own:?}");
    assert!(!own.contains(&"dev-keyring".to_owned()), "{own:?}");
    let decrypt = normal_dependencies(&format!("{here}/../code-decrypt/Cargo.toml"));
    assert!(decrypt.contains(&"aws-esdk".to_owned()), "{decrypt:?}");
    assert!(!decrypt.contains(&"dev-keyring".to_owned()), "{decrypt:?}");
    let dev = std::fs::read_to_string(format!("{here}/Cargo.toml")).unwrap();
    assert!(
        dev.contains("[dev-dependencies]\ndev-keyring"),
        "the tests use it"
    );
}
