//! The test protocol's summary line, `{passed} passed, {failed} failed`, written by the
//! kernel (and by `make test`) and read back by the host harness.
//!
//! Invariant: `parse_summary` accepts exactly what `summary_line` writes (plus surrounding
//! whitespace), so a truncated, garbled or interleaved line never counts as a result.

use core::fmt;

/// Writes `{passed} passed, {failed} failed` (no newline).
pub fn summary_line(passed: usize, failed: usize, w: &mut impl fmt::Write) -> fmt::Result {
    write!(w, "{passed} passed, {failed} failed")
}

/// Parses a summary line, ignoring leading and trailing whitespace. Counts are plain decimal
/// without sign or leading zeros, as `summary_line` writes them.
pub fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim();
    let (passed, rest) = rest.split_once(" passed, ")?;
    let failed = rest.strip_suffix(" failed")?;
    Some((parse_count(passed)?, parse_count(failed)?))
}

fn parse_count(s: &str) -> Option<usize> {
    let canonical = match s.as_bytes() {
        [b'0'] => true,
        [first, ..] => *first != b'0',
        [] => false,
    };
    if !canonical || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    fn line(p: usize, f: usize) -> String {
        let mut s = String::new();
        summary_line(p, f, &mut s).unwrap();
        s
    }

    #[test]
    fn writes_exact_form() {
        assert_eq!(line(0, 0), "0 passed, 0 failed");
        assert_eq!(line(12, 1), "12 passed, 1 failed");
        assert_eq!(line(usize::MAX, 0), std::format!("{} passed, 0 failed", usize::MAX));
    }

    #[test]
    fn round_trips() {
        for (p, f) in [(0, 0), (1, 0), (0, 1), (37, 4), (100, 1000), (usize::MAX, 7)] {
            assert_eq!(parse_summary(&line(p, f)), Some((p, f)));
        }
    }

    #[test]
    fn accepts_surrounding_whitespace() {
        assert_eq!(parse_summary("  3 passed, 0 failed\r\n"), Some((3, 0)));
        assert_eq!(parse_summary("\t5 passed, 2 failed"), Some((5, 2)));
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "3 passed",
            "3 passed, 0 failed.",
            "3 passed,  0 failed",
            "3 passed 0 failed",
            "3  passed, 0 failed",
            "x3 passed, 0 failed",
            "ok: 3 passed, 0 failed",
            "3 passed, 0 failed, 1 skipped",
            "-3 passed, 0 failed",
            "+3 passed, 0 failed",
            "03 passed, 0 failed",
            " passed, 0 failed",
            "3 passed,  failed",
            "3 Passed, 0 Failed",
            "3 passed, 0 failed 3 passed, 0 failed",
            "99999999999999999999999 passed, 0 failed",
            "3 passed, 0 failed\n4 passed, 0 failed",
        ] {
            assert_eq!(parse_summary(bad), None, "{bad:?}");
        }
    }
}
