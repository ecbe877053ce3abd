//! Tests of `tests/ensure-deps --dry-run` against a fake `rustup`: the script must notice a
//! missing target, a missing component and a missing toolchain on its own, because rustup
//! adds a toolchain file's targets and components only when it installs the toolchain itself.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOOLCHAIN_FILE: &str = r#"[toolchain]
channel = "1.95.0"
targets = ["powerpc64le-unknown-linux-gnu"]
components = ["clippy", "rustfmt", "llvm-tools"]
profile = "minimal"
"#;

/// A scratch directory with a fake rustup whose answers come from files beside it.
struct Fake {
    dir: PathBuf,
}

impl Fake {
    fn new(name: &str, toolchains: &str, targets: &str, components: &str) -> Fake {
        let dir =
            std::env::temp_dir().join(format!("ptfrag-ensure-deps-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("rust-toolchain.toml"), TOOLCHAIN_FILE).unwrap();
        fs::write(dir.join("toolchains"), toolchains).unwrap();
        fs::write(dir.join("targets"), targets).unwrap();
        fs::write(dir.join("components"), components).unwrap();
        // Answers the three listing commands ensure-deps asks; anything else is an error, so a
        // dry run that tried to install would fail the test.
        let script = format!(
            "#!/bin/sh\nd='{}'\ncase \"$1 $2\" in\n\
             'toolchain list') cat \"$d/toolchains\" ;;\n\
             'target list') cat \"$d/targets\" ;;\n\
             'component list') cat \"$d/components\" ;;\n\
             *) echo \"fake rustup: unexpected $*\" >&2; exit 9 ;;\nesac\n",
            dir.display()
        );
        let rustup = dir.join("rustup");
        fs::write(&rustup, script).unwrap();
        fs::set_permissions(&rustup, fs::Permissions::from_mode(0o755)).unwrap();
        Fake { dir }
    }

    fn dry_run(&self) -> Output {
        run(&self.dir.join("rustup"), &self.dir.join("rust-toolchain.toml"))
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ensure-deps")
}

fn run(rustup: &Path, toolchain_file: &Path) -> Output {
    Command::new(script())
        .arg("--dry-run")
        .env("RUSTUP", rustup)
        .env("ENSURE_DEPS_TOOLCHAIN_FILE", toolchain_file)
        .output()
        .unwrap()
}

/// The `would run: rustup ...` lines, with the fake's path cut to `rustup`.
fn rust_actions(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ensure-deps: would run: "))
        .map(|l| {
            let (_, rest) = l.split_once(' ').unwrap();
            format!("rustup {rest}")
        })
        .collect()
}

const HOST_COMPONENTS: &str = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\n\
rustc-x86_64-unknown-linux-gnu\nrustfmt-x86_64-unknown-linux-gnu\n\
rust-std-x86_64-unknown-linux-gnu\n";

#[test]
fn complete_toolchain_installs_nothing() {
    let comps = format!("{HOST_COMPONENTS}llvm-tools-x86_64-unknown-linux-gnu\n");
    let fake = Fake::new(
        "complete",
        "stable-x86_64-unknown-linux-gnu (default)\n1.95.0-x86_64-unknown-linux-gnu (active)\n",
        "powerpc64le-unknown-linux-gnu\nx86_64-unknown-linux-gnu\n",
        &comps,
    );
    let out = fake.dry_run();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(rust_actions(&out), Vec::<String>::new());
}

#[test]
fn channel_present_without_target_and_llvm_tools() {
    // The newcomer's machine: the channel is installed, the toolchain file's extras are not.
    let fake = Fake::new(
        "partial",
        "1.95.0-x86_64-unknown-linux-gnu\n",
        "x86_64-unknown-linux-gnu\n",
        HOST_COMPONENTS,
    );
    let out = fake.dry_run();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        rust_actions(&out),
        [
            "rustup target add --toolchain 1.95.0 powerpc64le-unknown-linux-gnu",
            "rustup component add --toolchain 1.95.0 llvm-tools",
        ]
    );
}

#[test]
fn preview_component_name_counts_as_installed() {
    let comps = format!("{HOST_COMPONENTS}llvm-tools-preview-x86_64-unknown-linux-gnu\n");
    let fake = Fake::new(
        "preview",
        "1.95.0-x86_64-unknown-linux-gnu\n",
        "powerpc64le-unknown-linux-gnu\n",
        &comps,
    );
    assert_eq!(rust_actions(&fake.dry_run()), Vec::<String>::new());
}

#[test]
fn missing_channel_installs_toolchain_then_everything() {
    // Another channel's names must not count for the pinned one.
    let fake = Fake::new("nochannel", "1.94.0-x86_64-unknown-linux-gnu (default)\n", "", "");
    let out = fake.dry_run();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        rust_actions(&out),
        [
            "rustup toolchain install 1.95.0 --profile minimal",
            "rustup target add --toolchain 1.95.0 powerpc64le-unknown-linux-gnu",
            "rustup component add --toolchain 1.95.0 clippy",
            "rustup component add --toolchain 1.95.0 rustfmt",
            "rustup component add --toolchain 1.95.0 llvm-tools",
        ]
    );
}

#[test]
fn no_rustup_names_what_to_install() {
    let fake = Fake::new("norustup", "", "", "");
    let out = run(&fake.dir.join("no-such-rustup"), &fake.dir.join("rust-toolchain.toml"));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rustup not found"), "{err}");
    assert!(err.contains("powerpc64le-unknown-linux-gnu"), "{err}");
    assert!(err.contains("llvm-tools"), "{err}");
}

#[test]
fn unknown_option_is_refused() {
    let out = Command::new(script()).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn real_toolchain_file_is_the_one_tested() {
    // The fake file above must stay the project's own, or these tests test something else.
    let real =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../rust-toolchain.toml"))
            .unwrap();
    for key in ["channel", "targets", "components"] {
        let line = |s: &str| s.lines().find(|l| l.starts_with(key)).map(str::to_string);
        assert_eq!(line(&real), line(TOOLCHAIN_FILE), "{key} differs from rust-toolchain.toml");
    }
}
