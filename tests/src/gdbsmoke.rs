//! The `make gdb` path, tested in batch mode: QEMU halted with its gdb stub and
//! `gdb-multiarch` with `tests/gdb/ptfrag.gdb` (which loads the ptfrag.py helpers).
//! - `gdb-smoke`: a breakpoint on a Rust function during boot, a backtrace through the boot
//!   path, one gdb thread per vCPU.
//! - `gdb-pte-free-defer`: break on `pte_free_defer` during the retract test, check the
//!   backtrace reaches `retract_page_tables`, print the table's page descriptor with
//!   `ptfrag-page` and check its refcount, show the RCU state, then let the kernel finish:
//!   it must still pass.
//! - `gdb-linux-names-hash`: in hash mode, `break hash_page`, `break retract_page_tables`,
//!   `break call_rcu` and `break pte_free_defer` (Linux's names, exported by the kernel)
//!   each stop there in turn, then the kernel must still pass.
//!
//! Each check fails if an expected piece of gdb's output is missing.

use crate::check::Exit;
use crate::gdb::{listening, GDB};
use crate::paths;
use crate::qemu::{Firmware, QemuConfig};
use crate::runner;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub struct GdbCheck {
    pub name: &'static str,
    pub smp: u32,
    pub bootargs: &'static str,
    /// gdb commands after the script has stopped at boot_high.
    pub commands: &'static [&'static str],
    /// Substrings gdb must print, and why each matters.
    pub expect: &'static [(&'static str, &'static str)],
    /// The kernel must run to a clean `N passed, 0 failed` after gdb lets it go.
    pub kernel_passes: bool,
}

pub const CHECKS: &[GdbCheck] = &[
    GdbCheck {
        name: "gdb-smoke",
        smp: 2,
        bootargs: "",
        commands: &["break ptfrag::mm::frame::init", "continue", "bt", "info threads", "kill"],
        expect: &[
            ("little endian", "the script switched gdb to little-endian after boot_high"),
            ("hit Breakpoint 2, ptfrag::mm::frame::init", "a breakpoint on a Rust function stops"),
            ("in ptfrag::boot_main", "the backtrace walks through boot_main"),
            ("in boot_high", "the backtrace reaches the assembly entry"),
            ("Thread 1.2", "the second vCPU is a gdb thread"),
        ],
        kernel_passes: false,
    },
    GdbCheck {
        name: "gdb-pte-free-defer",
        smp: 2,
        bootargs: "test=retract_torture collapses=1 hz=1000",
        commands: &[
            // Linux's name, as a Linux engineer types it (kernel/src/mm/pte_free.rs exports it).
            "break pte_free_defer",
            "continue",
            "bt",
            "ptfrag-page $r4",
            "ptfrag-info",
            "ptfrag-rcu",
            "delete",
            "continue",
        ],
        expect: &[
            ("ptfrag::mm::pte_free::pte_free_defer", "the breakpoint on pte_free_defer hits"),
            (
                "ptfrag::mm::khugepaged::retract_page_tables",
                "the backtrace reaches retract_page_tables",
            ),
            ("PAGE_TABLE", "ptfrag-page decodes the descriptor's flags"),
            ("pt_frag_refcount", "ptfrag-page prints the fragment refcount"),
            ("rcu: gp_seq=", "ptfrag-rcu prints the grace-period state"),
            ("address spaces: pid", "ptfrag-info lists the live address spaces"),
        ],
        kernel_passes: true,
    },
    GdbCheck {
        name: "gdb-linux-names-hash",
        smp: 2,
        bootargs: "mmu=hash test=retract_torture collapses=1 hz=1000",
        commands: &[
            "break hash_page",
            "continue",
            "delete",
            "break retract_page_tables",
            "continue",
            "delete",
            "break call_rcu",
            "continue",
            "delete",
            "break pte_free_defer",
            "continue",
            "bt",
            "ptfrag-page $r4",
            "delete",
            "continue",
        ],
        expect: &[
            (
                "ptfrag::arch::mmu::hash_utils::hash_page (mm=",
                "`break hash_page` stops in the hash fault",
            ),
            (
                "ptfrag::mm::khugepaged::retract_page_tables (file=",
                "`break retract_page_tables` stops in the retract",
            ),
            ("ptfrag::rcu::call_rcu (head=", "`break call_rcu` stops in call_rcu"),
            (
                "ptfrag::mm::pte_free::pte_free_defer (_mm=",
                "`break pte_free_defer` stops in pte_free_defer",
            ),
            ("in ptfrag::mm::khugepaged::retract_page_tables", "its caller is retract_page_tables"),
            ("pt_frag_refcount", "ptfrag-page decodes the descriptor in hash mode"),
        ],
        kernel_passes: true,
    },
];

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free TCP port: {e}"))?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// The refcount `ptfrag-page` printed must be a live count (>= 1): the table being deferred
/// still holds its reference when pte_free_defer is entered.
fn refcount_ok(out: &str) -> Result<(), String> {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("pt_frag_refcount"))
        .ok_or("no pt_frag_refcount line")?;
    let n: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("cannot read the refcount in {line:?}"))?;
    if n == 0 {
        return Err(format!("refcount 0 at pte_free_defer entry ({line:?})"));
    }
    Ok(())
}

/// Runs one check; Ok(elapsed) or the reasons it failed (with gdb's output).
pub fn run(check: &GdbCheck, kernel: &std::path::Path) -> Result<Duration, String> {
    let start = Instant::now();
    let port = free_port()?;
    let serial = paths::log_dir().join(format!("{}.log", check.name));
    let _ = std::fs::create_dir_all(paths::log_dir());
    let config = QemuConfig {
        fw: Firmware::Vof,
        smp: check.smp,
        bootargs: check.bootargs.to_string(),
        kernel: kernel.to_path_buf(),
        extra: vec!["-gdb".into(), format!("tcp:127.0.0.1:{port}"), "-S".into()],
        icount: false,
    };
    let log = std::fs::File::create(&serial).map_err(|e| format!("{}: {e}", serial.display()))?;
    let mut qemu = config.command();
    qemu.stdin(Stdio::null()).stdout(log).stderr(Stdio::null());
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
        .arg(paths::gdb_script());
    for c in check.commands {
        gdb.args(["-ex", c]);
    }
    gdb.arg(kernel);
    let result = runner::run(gdb, Duration::from_secs(120), None);
    // A kernel that runs to the end powers QEMU off; give it a moment, then make sure.
    let qemu_status = {
        let t0 = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(st)) => break Some(st),
                _ if t0.elapsed()
                    > Duration::from_secs(if check.kernel_passes { 60 } else { 1 }) =>
                {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                _ => thread::sleep(Duration::from_millis(50)),
            }
        }
    };
    let run = result.map_err(|e| format!("cannot run {GDB}: {e}"))?;
    let out =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    if let Exit::TimedOut(_) = run.exit {
        return Err(format!("gdb timed out\n{out}"));
    }
    let mut why: Vec<String> = check
        .expect
        .iter()
        .filter(|(needle, _)| !out.contains(needle))
        .map(|(needle, why)| format!("gdb output lacks {needle:?} ({why})"))
        .collect();
    if check.kernel_passes {
        if let Err(e) = refcount_ok(&out) {
            why.push(e);
        }
        let serial_text = std::fs::read_to_string(&serial).unwrap_or_default();
        if !qemu_status.is_some_and(|s| s.success()) {
            why.push(format!("QEMU did not exit 0 after gdb let the kernel go ({qemu_status:?})"));
        }
        if !serial_text.lines().any(|l| l.trim() == "1 passed, 0 failed") {
            why.push(format!(
                "the kernel did not report `1 passed, 0 failed` ({})",
                serial.display()
            ));
        }
    }
    if !why.is_empty() {
        return Err(format!("{}\n---- gdb output ----\n{out}---- end ----", why.join("\n")));
    }
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcount_line_is_checked() {
        assert!(refcount_ok("  pt_frag_refcount 3\n").is_ok());
        assert!(refcount_ok("  pt_frag_refcount 0\n").is_err());
        assert!(refcount_ok("nothing here").is_err());
    }
}
