//! The `make gdb` path, tested: QEMU halted with its gdb stub, `gdb-multiarch` in batch mode
//! with `tests/gdb/ptfrag.gdb`, a breakpoint on a Rust function, a backtrace through the boot
//! path and one gdb thread per vCPU. Fails if any of these is missing from gdb's output.

use crate::check::Exit;
use crate::gdb::{listening, GDB};
use crate::paths;
use crate::qemu::{Firmware, QemuConfig};
use crate::runner;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const SMP: u32 = 2;
const BREAK_AT: &str = "ptfrag::mm::frame::init";

/// What gdb must print, and why each line matters.
const EXPECT: &[(&str, &str)] = &[
    ("little endian", "the script switched gdb to little-endian after boot_high"),
    ("hit Breakpoint 2, ptfrag::mm::frame::init", "a breakpoint on a Rust function stops"),
    ("in ptfrag::boot_main", "the backtrace walks through boot_main"),
    ("in boot_high", "the backtrace reaches the assembly entry"),
    ("Thread 1.2", "the second vCPU is a gdb thread"),
];

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free TCP port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Runs the check; Ok(elapsed) or the reasons it failed (with gdb's output).
pub fn run(kernel: &std::path::Path) -> Result<Duration, String> {
    let start = Instant::now();
    let port = free_port()?;
    let config = QemuConfig {
        fw: Firmware::Vof,
        smp: SMP,
        bootargs: String::new(),
        kernel: kernel.to_path_buf(),
        extra: vec!["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()],
    };
    let mut qemu = config.command();
    qemu.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = qemu.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening(port) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let mut gdb = Command::new(GDB);
    gdb.current_dir(paths::workspace_root())
        .args(["-q", "-batch", "-nx", "-ex"])
        .arg(format!("target remote 127.0.0.1:{port}"))
        .arg("-x")
        .arg(paths::gdb_script())
        .args(["-ex", &format!("break {BREAK_AT}"), "-ex", "continue", "-ex", "bt"])
        .args(["-ex", "info threads", "-ex", "kill"])
        .arg(kernel);
    let result = runner::run(gdb, Duration::from_secs(60), None);
    let _ = child.kill();
    let _ = child.wait();
    let run = result.map_err(|e| format!("cannot run {GDB}: {e}"))?;
    let out =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    let missing: Vec<String> = EXPECT
        .iter()
        .filter(|(needle, _)| !out.contains(needle))
        .map(|(needle, why)| format!("gdb output lacks {needle:?} ({why})"))
        .collect();
    if let Exit::TimedOut(_) = run.exit {
        return Err(format!("gdb timed out\n{out}"));
    }
    if !missing.is_empty() {
        return Err(format!("{}\n---- gdb output ----\n{out}---- end ----", missing.join("\n")));
    }
    Ok(start.elapsed())
}
