//! `harness bench --compare DIR`: two runs' results side by side, cell by cell (mode, vCPUs,
//! address spaces, phase, strategy, figure): each run's median and interquartile range, and
//! whether the two ranges overlap (for `--icount` runs: whether the samples are identical).
//! Figures are counted in three groups (`table::Kind`): ratios and counts, which two
//! real-time runs must agree on; times in reference-loop units, which divide the host's speed
//! out as far as it stretches the loop and the figure alike (reported, not judged); and guest
//! times and rates, which follow the host's speed and load in real time and agree between
//! runs only under `--icount`. Written to `compare.txt` beside the results as well.

use super::results::Record;
use super::table::{number, Kind, KEYS};
use std::fmt::Write;
use std::path::Path;

/// How one figure of one record compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every sample the same, round by round.
    Identical,
    Overlap,
    Disjoint,
    /// In one run only.
    Missing,
}

pub fn verdict(a: Option<&Record>, b: Option<&Record>, key: &str) -> Verdict {
    let (Some(a), Some(b)) = (a, b) else {
        return Verdict::Missing;
    };
    match (a.samples.get(key), b.samples.get(key), a.stat(key), b.stat(key)) {
        (Some(x), Some(y), _, _) if x == y => Verdict::Identical,
        (_, _, Some(x), Some(y)) if x.overlaps(&y) => Verdict::Overlap,
        (_, _, Some(_), Some(_)) => Verdict::Disjoint,
        _ => Verdict::Missing,
    }
}

fn range(r: Option<&Record>, key: &str) -> String {
    match r.and_then(|r| r.stat(key)) {
        Some(s) => format!("{} [{}-{}]", number(s.median), number(s.q1), number(s.q3)),
        None => "-".into(),
    }
}

/// The comparison's text and its counts per verdict, per `Kind` in its order.
pub fn render(a: &[Record], b: &[Record]) -> (String, [[usize; 4]; 3]) {
    let mut out = String::new();
    let mut counts = [[0; 4]; 3];
    let _ = writeln!(
        out,
        "{:<8}{:>5}{:>5} {:<10}{:<10}{:<22}{:>28}{:>28}  verdict",
        "mode", "cpus", "mms", "phase", "strategy", "figure", "run A", "run B"
    );
    for rb in b.iter().filter(|r| r.values.is_some()) {
        let ra = a.iter().find(|r| r.same_as(rb) && r.values.is_some());
        for key in KEYS {
            if !rb.samples.contains_key(key.name) {
                continue;
            }
            let v = verdict(ra, Some(rb), key.name);
            counts[key.kind as usize][v as usize] += 1;
            let _ = writeln!(
                out,
                "{:<8}{:>5}{:>5} {:<10}{:<10}{:<22}{:>28}{:>28}  {}",
                rb.mode,
                rb.cpus,
                rb.mms,
                rb.phase,
                rb.strategy,
                key.name,
                range(ra, key.name),
                range(Some(rb), key.name),
                match (v, key.kind) {
                    (Verdict::Identical, _) => "identical",
                    (Verdict::Overlap, _) => "overlap",
                    (Verdict::Disjoint, Kind::Count) => "DISJOINT",
                    (Verdict::Disjoint, Kind::RefUnits) => "disjoint (reference units)",
                    (Verdict::Disjoint, Kind::HostTime) => "disjoint (host time)",
                    (Verdict::Missing, _) => "MISSING",
                }
            );
        }
    }
    for (group, [same, overlap, disjoint, missing]) in [
        "ratios and counts",
        "times in reference-loop units (host speed divided out; reported, not judged)",
        "guest times and rates (host-dependent in real time)",
    ]
    .iter()
    .zip(counts)
    {
        let _ = writeln!(
            out,
            "{group}: compared {} figures: {same} identical, {overlap} with overlapping \
             interquartile ranges, {disjoint} disjoint, {missing} missing in run A",
            same + overlap + disjoint + missing
        );
    }
    (out, counts)
}

/// Compares `b`'s results (this run, `--out`) with `a`'s; true when no ratio or count is
/// disjoint or missing (times are reported, not judged: see the module's header).
pub fn run(a: &Path, b: &Path) -> bool {
    let (ra, rb) = match (super::load(a), super::load(b)) {
        (Ok((ra, _)), Ok((rb, _))) => (ra, rb),
        (Err(e), _) | (_, Err(e)) => {
            println!("FAIL {e}");
            return false;
        }
    };
    println!("run A: {}\nrun B: {}", a.display(), b.display());
    let (text, [[_, _, disjoint, missing], _, _]) = render(&ra, &rb);
    print!("{text}");
    let path = b.join("compare.txt");
    if let Err(e) =
        std::fs::write(&path, format!("run A: {}\nrun B: {}\n{text}", a.display(), b.display()))
    {
        println!("FAIL cannot write {}: {e}", path.display());
        return false;
    }
    println!("wrote {}", path.display());
    disjoint == 0 && missing == 0
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::sample;
    use super::*;

    #[test]
    fn same_run_is_identical_and_a_shifted_one_disjoint() {
        let a = sample();
        let (text, counts) = render(&a, &a);
        // The fixture predates the reference loop: no figure in reference units.
        assert_eq!(counts[Kind::RefUnits as usize], [0; 4], "{text}");
        for kind in [Kind::Count, Kind::HostTime] {
            let group = counts[kind as usize];
            assert_eq!(group[1..], [0, 0, 0], "{text}");
            assert!(group[0] > 8, "{text}");
        }
        let mut b = a.clone();
        let key = "cost_ns_per_table";
        for r in b.iter_mut() {
            if let Some(v) = r.samples.get_mut(key) {
                v.iter_mut().for_each(|x| *x = *x * 10.0 + 1e6);
            }
        }
        assert_eq!(verdict(Some(&a[0]), Some(&b[0]), key), Verdict::Disjoint);
        let mut c = a.clone();
        c[0].samples.get_mut(key).unwrap()[0] += 0.5;
        assert_eq!(verdict(Some(&a[0]), Some(&c[0]), key), Verdict::Overlap);
        assert_eq!(verdict(None, Some(&a[0]), key), Verdict::Missing);
        let (text, counts) = render(&a, &b);
        assert_eq!(counts[Kind::HostTime as usize][2], 8, "{text}");
        assert_eq!(counts[0][2], 0, "{text}");
        assert!(text.contains("disjoint (host time)") && text.contains("compared "));
    }
}
