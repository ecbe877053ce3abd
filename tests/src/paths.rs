//! Where things live: the workspace root, the target directory, the default kernel image,
//! the serial logs and the gdb script. Every path the harness touches is derived here.

use std::env;
use std::path::{Path, PathBuf};

/// The kernel's target triple (see `rust-toolchain.toml` and the `kbuild` alias).
pub const KERNEL_TARGET: &str = "powerpc64le-unknown-linux-gnu";
/// The kernel binary's name (`[[bin]]` of `ptfrag-kernel`).
pub const KERNEL_BIN: &str = "ptfrag";

/// The workspace root: this crate lives in `<root>/tests`.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory, honouring `CARGO_TARGET_DIR` like cargo does.
pub fn target_dir() -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The release kernel ELF that `make` builds.
pub fn default_kernel() -> PathBuf {
    target_dir().join(KERNEL_TARGET).join("release").join(KERNEL_BIN)
}

/// Directory of the per-scenario serial logs.
pub fn log_dir() -> PathBuf {
    target_dir().join("qemu-logs")
}

/// The gdb script written alongside the kernel (optional).
pub fn gdb_script() -> PathBuf {
    workspace_root().join("tests").join("gdb").join("ptfrag.gdb")
}

/// Default output directory of `harness bench`: results, plots and serial logs.
pub fn bench_dir() -> PathBuf {
    target_dir().join("bench")
}

/// Default output directory of `harness trace` (`make trace`): JSON, SVG and serial log.
pub fn trace_dir() -> PathBuf {
    target_dir().join("trace")
}

/// Default output directory of `harness bench --icount`.
pub fn bench_icount_dir() -> PathBuf {
    target_dir().join("bench-icount")
}
