//! `make test`'s row `bench-icount-twice`: one short bench boot under `-icount`, twice, must
//! give the same figures to the instruction: every `figure:` line byte for byte, and every
//! figure of the parsed records identical round by round (`compare::render`). This keeps the
//! bench's whole path (both phases, every strategy, the harness's parsing and comparison)
//! and the deterministic cost mode working between full `make bench` runs. Four vCPUs, so the
//! conferring busy-waits and spin locks that multi-vCPU icount needs (`smp::relax`) are
//! exercised too: with a `relax` that never confers the first boot dies with "cpu 1 did not
//! finish cross-CPU work within 10 s" (tried by hand, 12 s).

use super::compare::{render, Verdict};
use super::results::{self, Record};
use super::Cell;
use crate::{paths, suite};
use std::path::Path;
use std::time::Instant;

/// The row's name (also its `FILTER=` match).
pub const NAME: &str = "bench-icount-twice";
const CELL: Cell = Cell { mode: "radix", cpus: 4, mms: 1 };
/// Measured rounds per strategy and phase: enough for quartiles, few enough for `make test`.
const ROUNDS: u32 = 4;

/// The `figure:` lines of a serial log, in order.
fn figure_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("figure: ")).collect()
}

/// Parses one boot's log into records; every way it falls short is an error.
fn records(cell: &Cell, log: &str) -> Result<Vec<Record>, String> {
    let (records, why) = results::from_log(cell, log);
    match why.is_empty() {
        true => Ok(records),
        false => Err(why.join("; ")),
    }
}

/// Whether two logs of the same cell are the same run to the instruction: a summary of what
/// was compared, or what differs.
pub fn judge(cell: &Cell, a: &str, b: &str) -> Result<String, String> {
    let (la, lb) = (figure_lines(a), figure_lines(b));
    if la.is_empty() {
        return Err("the first boot printed no figure lines".into());
    }
    if let Some((i, (x, y))) = la.iter().zip(&lb).enumerate().find(|(_, (x, y))| x != y) {
        return Err(format!("figure line {} differs:\n  first:  {x}\n  second: {y}", i + 1));
    }
    if la.len() != lb.len() {
        return Err(format!(
            "{} figure lines in the first boot, {} in the second",
            la.len(),
            lb.len()
        ));
    }
    let (ra, rb) = (records(cell, a)?, records(cell, b)?);
    let (text, counts) = render(&ra, &rb);
    let compared: usize = counts.iter().flatten().sum();
    let identical: usize = counts.iter().map(|g| g[Verdict::Identical as usize]).sum();
    if compared == 0 || identical != compared {
        return Err(format!("{identical} of {compared} figures identical:\n{text}"));
    }
    Ok(format!("{} figure lines the same, {identical} figures identical", la.len()))
}

/// Boots the cell twice under `-icount` and judges the two logs.
pub fn run(kernel: &Path) -> Result<String, String> {
    let start = Instant::now();
    let mut logs = Vec::new();
    for _ in 0..2 {
        let s = CELL.scenario(ROUNDS, true);
        let v = suite::run_scenario(&s, kernel, &paths::log_dir());
        match (&v.run, v.why.is_empty()) {
            (Some(run), true) => logs.push(String::from_utf8_lossy(&run.stdout).into_owned()),
            _ => return Err(format!("{}: {}", s.name, v.why.join("; "))),
        }
    }
    let summary = judge(&CELL, &logs[0], &logs[1])?;
    Ok(format!("{summary}, {}", suite::secs(start.elapsed())))
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::{CELL as FIXTURE_CELL, FIXTURE};
    use super::*;

    #[test]
    fn the_same_log_twice_is_identical() {
        let ok = judge(&FIXTURE_CELL, FIXTURE, FIXTURE).unwrap();
        assert!(ok.contains("figures identical"), "{ok}");
    }

    #[test]
    fn a_figure_off_by_one_instruction_fails() {
        // One round's retract time one unit higher: the lines differ.
        let line = FIXTURE.lines().find(|l| l.contains("figure: bench_round")).unwrap();
        let key = "retract_ns_per_table=";
        let at = line.find(key).unwrap() + key.len();
        let end = at + line[at..].find(' ').unwrap();
        let bumped: u64 = line[at..end].parse::<u64>().unwrap() + 1;
        let changed = format!("{}{bumped}{}", &line[..at], &line[end..]);
        let other = FIXTURE.replacen(line, &changed, 1);
        let err = judge(&FIXTURE_CELL, FIXTURE, &other).unwrap_err();
        assert!(err.contains("differs"), "{err}");
    }

    #[test]
    fn a_missing_line_or_an_empty_log_fails() {
        let line = FIXTURE.lines().rfind(|l| l.starts_with("figure: ")).unwrap();
        let shorter = FIXTURE.replacen(line, "", 1);
        assert!(judge(&FIXTURE_CELL, FIXTURE, &shorter).unwrap_err().contains("figure lines"));
        assert!(judge(&FIXTURE_CELL, "", "").is_err());
    }
}
