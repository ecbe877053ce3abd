//! `harness gdb`: QEMU halted with its gdb stub (`-s -S`) in the background, `gdb-multiarch`
//! in the foreground with the kernel's symbols and `tests/gdb/ptfrag.gdb`. QEMU must not
//! outlive gdb, and Ctrl-C in gdb must interrupt the guest, not end QEMU.

use crate::paths;
use crate::qemu::{QemuConfig, QEMU};
use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

pub const GDB: &str = "gdb-multiarch";
/// QEMU's `-s` is `-gdb tcp::1234`.
pub const PORT: u16 = 1234;

/// Kills QEMU once gdb exits. The shell ignores Ctrl-C (`trap :`) so that only gdb sees it, and
/// resets the trap for gdb; QEMU is in its own process group so Ctrl-C never reaches it.
const WRAPPER: &str = r#"trap : INT QUIT
trap 'kill "$PTFRAG_QEMU_PID" 2>/dev/null; exit 129' HUP TERM
"$@"
status=$?
kill "$PTFRAG_QEMU_PID" 2>/dev/null
exit $status"#;

/// The gdb arguments: quiet, symbols from the kernel, connect unless the script does.
pub fn gdb_args(kernel: &Path, script: Option<(&Path, &str)>) -> Vec<String> {
    let mut args = vec!["-q".to_string(), kernel.display().to_string()];
    let connects = script.is_some_and(|(_, text)| {
        text.lines().any(|l| l.trim_start().starts_with("target ") && l.contains("remote"))
    });
    if !connects {
        args.push("-ex".into());
        args.push(format!("target remote localhost:{PORT}"));
    }
    if let Some((path, _)) = script {
        args.push("-x".into());
        args.push(path.display().to_string());
    }
    args
}

/// Starts QEMU and replaces this process with gdb; returns only on error.
pub fn run(mut config: QemuConfig) -> io::Error {
    if !config.kernel.is_file() {
        return io::Error::other(format!("kernel not found at {}", config.kernel.display()));
    }
    if listening(PORT) {
        return io::Error::other(format!("port {PORT} is in use (another QEMU gdb stub?)"));
    }
    config.extra.extend(["-s".to_string(), "-S".to_string()]);
    eprintln!("{}", config.display());
    let mut qemu = config.command();
    qemu.stdin(Stdio::null()).process_group(0);
    let mut child = match qemu.spawn() {
        Ok(child) => child,
        Err(e) => return io::Error::other(format!("cannot start {QEMU}: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listening(PORT) {
        match child.try_wait() {
            Ok(Some(status)) => return io::Error::other(format!("{QEMU} exited: {status}")),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => break, // let gdb retry; the wrapper still kills QEMU
        }
    }
    let script_path = paths::gdb_script();
    let script_text = fs::read_to_string(&script_path).ok();
    let script = script_text.as_deref().map(|t| (script_path.as_path(), t));
    let err = Command::new("sh")
        .args(["-c", WRAPPER, "ptfrag-gdb", GDB])
        .args(gdb_args(&config.kernel, script))
        .env("PTFRAG_QEMU_PID", child.id().to_string())
        .current_dir(paths::workspace_root())
        .exec();
    let _ = child.kill();
    err
}

/// Whether something listens on TCP `port` (v4 or v6), from /proc/net.
pub(crate) fn listening(port: u16) -> bool {
    let needle = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().any(|f| {
        fs::read_to_string(f).is_ok_and(|t| {
            t.lines().skip(1).any(|l| {
                let mut cols = l.split_whitespace().skip(1);
                let local = cols.next().unwrap_or("");
                let state = cols.nth(1).unwrap_or("");
                local.ends_with(&needle) && state == "0A"
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn connects_unless_the_script_does() {
        let k = Path::new("/k/ptfrag");
        let s = Path::new("/r/tests/gdb/ptfrag.gdb");
        assert_eq!(gdb_args(k, None), ["-q", "/k/ptfrag", "-ex", "target remote localhost:1234"]);
        assert_eq!(
            gdb_args(k, Some((s, "set endian big\n"))),
            [
                "-q",
                "/k/ptfrag",
                "-ex",
                "target remote localhost:1234",
                "-x",
                &s.display().to_string()
            ]
        );
        assert_eq!(
            gdb_args(k, Some((s, "  target remote :1234\nbreak kmain\n"))),
            ["-q", "/k/ptfrag", "-x", &s.display().to_string()]
        );
    }

    #[test]
    fn sees_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(listening(l.local_addr().unwrap().port()));
    }
}
