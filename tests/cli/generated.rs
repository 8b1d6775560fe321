//! The committed completions and man pages must match what the binary generates from its clap definition.
//! Regenerate them with `IDTOK_BLESS=1 cargo test --test cli generated`.

use std::path::{Path, PathBuf};

use crate::support::TestEnv;

const SHELLS: [(&str, &str); 5] = [
    ("bash", "idtok.bash"),
    ("zsh", "_idtok"),
    ("fish", "idtok.fish"),
    ("powershell", "_idtok.ps1"),
    ("elvish", "idtok.elv"),
];

const COMMANDS: [&str; 4] = ["metadata", "impersonate", "print-identity-token", "decode"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn generated(args: &[&str]) -> Vec<u8> {
    let env = TestEnv::new();
    let out = env.cmd().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "idtok {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.stdout.is_empty());
    out.stdout
}

/// Compares (or, with IDTOK_BLESS=1, rewrites) one committed file.
fn check(path: &Path, fresh: &[u8]) -> Option<String> {
    if std::env::var_os("IDTOK_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(path, fresh).unwrap();
        return None;
    }
    match std::fs::read(path) {
        Ok(committed) if committed == fresh => None,
        Ok(_) => Some(format!("{} is stale", path.display())),
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}

#[test]
fn completions_are_fresh() {
    let stale: Vec<String> = SHELLS
        .iter()
        .filter_map(|(shell, file)| {
            check(
                &root().join("completions").join(file),
                &generated(&["completions", shell]),
            )
        })
        .collect();
    assert!(
        stale.is_empty(),
        "{stale:?}; regenerate with `IDTOK_BLESS=1 cargo test --test cli generated`"
    );
}

#[test]
fn man_pages_are_fresh() {
    let mut stale: Vec<String> = check(&root().join("man/idtok.1"), &generated(&["man"]))
        .into_iter()
        .collect();
    for command in COMMANDS {
        let path = root().join("man").join(format!("idtok-{command}.1"));
        stale.extend(check(&path, &generated(&["man", command])));
    }
    assert!(
        stale.is_empty(),
        "{stale:?}; regenerate with `IDTOK_BLESS=1 cargo test --test cli generated`"
    );
}

#[test]
fn every_visible_command_has_a_man_page() {
    let env = TestEnv::new();
    let help = env.cmd().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for command in COMMANDS {
        assert!(help.contains(command), "{command} missing from --help");
    }
    // Hidden generator commands stay out of the help.
    assert!(!help.contains("completions"));
}

#[test]
fn the_bash_completion_is_valid_bash() {
    let script = root().join("completions/idtok.bash");
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status();
    if let Ok(status) = status {
        assert!(status.success(), "bash -n {} failed", script.display());
    }
}
