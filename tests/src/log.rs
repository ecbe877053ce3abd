//! Parses a serial log into the kernel's test protocol: `running N tests`, one
//! `test <name> ... ok|FAILED: <reason>` line per test, one `P passed, F failed` summary, and
//! `FATAL:`/`oops:` lines. Firmware noise (SLOF's escape codes, CRLF) is stripped first; any
//! line that is not part of the protocol is ignored.

/// Outcome of one kernel test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(String),
}

/// One `test <name> ... <outcome>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestLine {
    pub name: String,
    pub outcome: Outcome,
}

/// What a log says, in protocol terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    /// Every `running N tests` count.
    pub running: Vec<usize>,
    pub tests: Vec<TestLine>,
    /// Every `passed, failed` summary.
    pub summaries: Vec<(usize, usize)>,
    /// Lines that start like a test result but do not parse (e.g. cut short by a crash).
    pub malformed: Vec<String>,
    /// `FATAL:` and `oops:` lines.
    pub fatal: Vec<String>,
    /// Test lines printed after the first summary.
    pub after_summary: Vec<String>,
    /// Every line, cleaned, for checks that look at free-form output (oops dumps).
    pub lines: Vec<String>,
}

impl Log {
    pub fn parse(text: &str) -> Self {
        let mut log = Self::default();
        for line in text.lines().map(clean_line) {
            log.lines.push(line.clone());
            if line.starts_with("test ") {
                if !log.summaries.is_empty() {
                    log.after_summary.push(line.clone());
                }
                match parse_test_line(&line) {
                    Some(test) => log.tests.push(test),
                    None => log.malformed.push(line.clone()),
                }
            }
            if let Some(n) = parse_running(&line) {
                log.running.push(n);
            } else if let Some(counts) = parse_summary(&line) {
                log.summaries.push(counts);
            } else if is_fatal(&line) {
                log.fatal.push(line);
            }
        }
        log
    }

    pub fn count(&self, ok: bool) -> usize {
        self.tests.iter().filter(|t| (t.outcome == Outcome::Ok) == ok).count()
    }

    /// Every outcome reported for `name`.
    pub fn outcomes(&self, name: &str) -> Vec<&Outcome> {
        self.tests.iter().filter(|t| t.name == name).map(|t| &t.outcome).collect()
    }
}

/// Strips terminal escapes, control characters and surrounding blanks.
pub fn clean_line(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte(@..~); other escapes are two characters.
            if chars.next() == Some('[') {
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// Whether a cleaned line is the kernel's `running N tests` (boot is over: used to time
/// boot to the first test).
pub fn is_tests_start(line: &str) -> bool {
    line.starts_with("running ")
}

fn parse_test_line(line: &str) -> Option<TestLine> {
    let (name, tail) = line.strip_prefix("test ")?.split_once(" ...")?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let tail = tail.trim();
    let outcome = if tail == "ok" {
        Outcome::Ok
    } else {
        let reason = tail.strip_prefix("FAILED")?;
        let reason = reason.strip_prefix(':').unwrap_or(reason);
        Outcome::Failed(reason.trim().to_string())
    };
    Some(TestLine { name: name.to_string(), outcome })
}

fn parse_running(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("running ")?;
    let n = rest.strip_suffix(" tests").or_else(|| rest.strip_suffix(" test"))?;
    n.parse().ok()
}

fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let (passed, rest) = line.split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

fn is_fatal(line: &str) -> bool {
    // A test reporting FAILED with "oops:" in its reason is a test failure, not a crash.
    parse_test_line(line).is_none() && (line.contains("FATAL:") || line.contains("oops:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_protocol_lines() {
        let log = Log::parse(
            "boot\r\nrunning 3 tests\r\ntest a ... ok\ntest b ... FAILED: x: y\n\
             test c ... FAILED\n2 passed, 1 failed\n",
        );
        assert_eq!(log.running, [3]);
        assert_eq!(log.summaries, [(2, 1)]);
        assert_eq!(log.count(true), 1);
        assert_eq!(log.count(false), 2);
        assert_eq!(log.outcomes("b"), [&Outcome::Failed("x: y".into())]);
        assert_eq!(log.outcomes("c"), [&Outcome::Failed(String::new())]);
        assert!(log.malformed.is_empty() && log.fatal.is_empty());
    }

    #[test]
    fn flags_malformed_fatal_and_late_lines() {
        let log = Log::parse(
            "test a ... \ntest b ... maybe\ntest c\nFATAL: no\n[cpu1] oops: DSI\n\
             1 passed, 0 failed\ntest d ... ok\n",
        );
        assert_eq!(log.malformed.len(), 3);
        assert_eq!(log.fatal, ["FATAL: no", "[cpu1] oops: DSI"]);
        assert_eq!(log.after_summary, ["test d ... ok"]);
    }

    #[test]
    fn cleans_escapes_and_controls() {
        assert_eq!(clean_line("\x1b[0m\x1b[?25htest a ... ok\r"), "test a ... ok");
        assert_eq!(clean_line("\x1b7 x\x07y "), "xy");
        assert!(is_tests_start(&clean_line("\x1b[1mrunning 3 tests")));
    }

    #[test]
    fn ignores_near_misses() {
        let log = Log::parse("running tests\n3 passed,0 failed\nall 3 passed, 0 failed!\n");
        assert_eq!(Log { lines: Vec::new(), ..log }, Log::default());
    }
}
