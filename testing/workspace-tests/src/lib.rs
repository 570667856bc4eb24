//! The workspace-wide tests live in `tests/` beside this file: they cross
//! every function (samples, faults, secrets in logs), so no one function owns
//! them. This library only finds the repository and the built binaries.

/// The repository root, for tests that read `events/` and the binaries.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A function binary built by cargo: `LAMBDA_BIN_DIR` (e.g. `target/release`)
/// or the default debug build. Panics with what to do when it is missing:
/// a test that needs it is never skipped.
pub fn function_binary(name: &str) -> std::path::PathBuf {
    let dir = std::env::var_os("LAMBDA_BIN_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("target"))
                .join("debug")
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} does not exist: build the functions first (`cargo build --workspace --bins`; scripts/test does)",
        path.display()
    );
    path
}
