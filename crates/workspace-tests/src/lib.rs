//! Nothing here: this package exists so that the workspace-level tests in the
//! top-level `tests/` folder have a package to belong to (a virtual workspace
//! cannot hold tests itself).

/// The repository root, for tests that read `events/` and the binaries.
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
