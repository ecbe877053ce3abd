//! Runs one process with a deadline: stdin from /dev/null, stdout captured (and streamed to a
//! log file as it arrives, so `tail -f` works), stderr captured. A process still running at the
//! deadline is killed, never left behind.

use crate::check::Exit;
use crate::log::{clean_line, is_tests_start};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How often the deadline is checked.
const POLL: Duration = Duration::from_millis(10);

/// What one run produced.
#[derive(Debug)]
pub struct Run {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// From spawn to the first `test ` line on stdout.
    pub first_test: Option<Duration>,
    /// From spawn to exit and the end of its output.
    pub total: Duration,
}

/// Spawns `cmd` and waits for it, at most `timeout`; stdout also goes to `log` if given.
pub fn run(mut cmd: Command, timeout: Duration, log: Option<&Path>) -> io::Result<Run> {
    let mut log = log.map(File::create).transpose()?;
    let start = Instant::now();
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out_thread = thread::spawn(move || -> io::Result<(Vec<u8>, Option<Duration>)> {
        let mut reader = BufReader::new(stdout);
        let (mut all, mut line, mut first_test) = (Vec::new(), Vec::new(), None);
        while reader.read_until(b'\n', &mut line)? != 0 {
            if first_test.is_none() && is_tests_start(&clean_line(&String::from_utf8_lossy(&line)))
            {
                first_test = Some(start.elapsed());
            }
            if let Some(f) = log.as_mut() {
                f.write_all(&line)?;
            }
            all.append(&mut line);
        }
        Ok((all, first_test))
    });
    let err_thread = thread::spawn(move || -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf)?;
        Ok(buf)
    });
    let exit = wait_deadline(&mut child, start, timeout)?;
    let (stdout, first_test) = out_thread.join().expect("stdout reader panicked")?;
    let stderr = err_thread.join().expect("stderr reader panicked")?;
    let total = start.elapsed();
    Ok(Run { exit, stdout, stderr, first_test, total })
}

fn wait_deadline(child: &mut Child, start: Instant, timeout: Duration) -> io::Result<Exit> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(sig)) => Exit::Signal(sig),
                (None, None) => Exit::Code(-1),
            });
        }
        if start.elapsed() >= timeout {
            child.kill()?;
            child.wait()?;
            return Ok(Exit::TimedOut(timeout));
        }
        thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn captures_output_status_and_first_test() {
        let dir = std::env::temp_dir().join(format!("ptfrag-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("a.log");
        let run = run(
            sh("echo boot; echo warn >&2; echo 'running 1 tests'; echo 'test a ... ok'; exit 3"),
            Duration::from_secs(20),
            Some(&log),
        )
        .unwrap();
        assert_eq!(run.exit, Exit::Code(3));
        assert_eq!(run.stdout, b"boot\nrunning 1 tests\ntest a ... ok\n");
        assert_eq!(std::fs::read(&log).unwrap(), run.stdout);
        assert_eq!(run.stderr, b"warn\n");
        assert!(run.first_test.unwrap() <= run.total);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kills_at_the_deadline() {
        let timeout = Duration::from_millis(300);
        let run = run(sh("echo started; exec sleep 30"), timeout, None).unwrap();
        assert_eq!(run.exit, Exit::TimedOut(timeout));
        assert_eq!(run.stdout, b"started\n");
        assert!(run.first_test.is_none());
        assert!(run.total < Duration::from_secs(10));
    }

    #[test]
    fn reports_signals() {
        let run = run(sh("kill -9 $$"), Duration::from_secs(20), None).unwrap();
        assert_eq!(run.exit, Exit::Signal(9));
    }
}
