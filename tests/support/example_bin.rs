//! The path of an example's binary, for tests that run it as a process.
//!
//! Cargo has no `CARGO_BIN_EXE_*` for examples, so the binary is found next to the test's own
//! executable: `target/<profile>/deps/<test>-<hash>` → `target/<profile>/examples/<name>`.
//! `cargo test --all-features` builds every example before it runs the integration tests, so
//! the binary is there and current. When running one test target alone, build the examples
//! first: `cargo build --all-features --examples`.

use std::path::{Path, PathBuf};

/// `target/<profile>/examples/<name>`; fails the test, saying what to build, if it is missing.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test --all-features` (which builds the examples), or \
         `cargo build --all-features --examples` before running this test target alone",
        path.display()
    );
    path
}
