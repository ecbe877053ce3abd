//! The benchmark's records, one per (mode, vCPUs, address spaces, phase, strategy): the
//! per-round samples of a boot's `figure: bench_round` lines (warm-up rounds dropped), with
//! the ratios to `none` of the same round, and the phase's `figure: bench` summary line;
//! written as JSON (every sample) and CSV (medians and quartiles).

use super::stats::Stat;
use super::{Cell, NOTE, PHASES, STRATEGIES};
use crate::figures;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Numeric keys of a `bench` line that are the record's own fields rather than values.
const FIELDS: [&str; 2] = ["cpus", "mms"];
/// The same for a `bench_round` line: the round's number and whether it is the warm-up.
const ROUND_FIELDS: [&str; 4] = ["cpus", "mms", "round", "warmup"];

/// The CSV columns before the figure keys.
const CSV_FIELDS: [&str; 6] = ["mode", "cpus", "mms", "phase", "strategy", "status"];

/// One measured round's number and figures.
type Round = (u32, BTreeMap<String, f64>);

/// Per-round ratios to `none` in the same boot, phase and round: (ratio key, sample key).
pub const RATIOS: [(&str, &str); 3] = [
    ("cost_vs_none", "cost_ns_per_table"),
    ("retract_vs_none", "retract_ns_per_table"),
    ("free_vs_none", "free_ns_per_page"),
];

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub mode: String,
    pub cpus: u32,
    pub mms: u32,
    pub phase: String,
    pub strategy: String,
    /// The numeric figures of the phase's `figure: bench` line (counts over the measured
    /// rounds, histograms); `None` when the boot failed or printed no line for it.
    pub values: Option<BTreeMap<String, f64>>,
    /// The measured rounds' numbers, in order, and each figure's sample per round.
    pub rounds: Vec<u32>,
    pub samples: BTreeMap<String, Vec<f64>>,
}

impl Record {
    fn missing(cell: &Cell, phase: &str, strategy: &str) -> Self {
        Self {
            mode: cell.mode.into(),
            cpus: cell.cpus,
            mms: cell.mms,
            phase: phase.into(),
            strategy: strategy.into(),
            values: None,
            rounds: Vec::new(),
            samples: BTreeMap::new(),
        }
    }

    /// A figure of the summary line.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.as_ref()?.get(key).copied()
    }

    /// Median and quartiles of a per-round figure.
    pub fn stat(&self, key: &str) -> Option<Stat> {
        Stat::of(self.samples.get(key)?)
    }

    pub fn status(&self) -> &'static str {
        if self.values.is_some() {
            "ok"
        } else {
            "missing"
        }
    }

    /// Same cell, phase and strategy.
    pub fn same_as(&self, other: &Record) -> bool {
        (self.mode.as_str(), self.cpus, self.mms, self.phase.as_str(), self.strategy.as_str())
            == (
                other.mode.as_str(),
                other.cpus,
                other.mms,
                other.phase.as_str(),
                other.strategy.as_str(),
            )
    }
}

/// One missing record per phase and strategy: the cell's boot failed.
pub fn missing_cell(cell: &Cell) -> Vec<Record> {
    PHASES
        .iter()
        .flat_map(|p| STRATEGIES.iter().map(move |s| Record::missing(cell, p, s)))
        .collect()
}

/// The records of one boot's log, phase by phase with the known strategies first in their
/// order, and every way the log falls short (a phase or strategy without lines, a line that
/// does not match the cell).
pub fn from_log(cell: &Cell, log: &str) -> (Vec<Record>, Vec<String>) {
    let mut why = Vec::new();
    let mut found: Vec<Record> = Vec::new();
    // (phase, strategy) -> (round, values) of the measured rounds.
    let mut rounds: BTreeMap<(String, String), Vec<Round>> = BTreeMap::new();
    for figure in figures::parse(&cell.name(), log) {
        let label = figure.label();
        if label != Some("bench") && label != Some("bench_round") {
            continue;
        }
        let (Some(strategy), Some(phase)) =
            (figure.strings.get("strategy").cloned(), figure.strings.get("phase").cloned())
        else {
            why.push(format!(
                "`figure: {}` line without strategy= or phase=: {}",
                label.unwrap_or(""),
                figure.line
            ));
            continue;
        };
        let what = format!("{phase} {strategy}");
        match figure.strings.get("mmu") {
            Some(mmu) if mmu != cell.mode => {
                why.push(format!("{what}: mmu={mmu}, booted with mmu={}", cell.mode))
            }
            _ => {}
        }
        for (key, want) in [("cpus", cell.cpus), ("mms", cell.mms)] {
            match figure.values.get(key) {
                Some(&got) if got != f64::from(want) => {
                    why.push(format!("{what}: {key}={got}, booted with {want}"))
                }
                _ => {}
            }
        }
        if label == Some("bench_round") {
            if figure.values.get("warmup") != Some(&0.0) {
                continue;
            }
            let Some(&round) = figure.values.get("round") else {
                why.push(format!("{what}: `figure: bench_round` without round=: {}", figure.line));
                continue;
            };
            let values = figure
                .values
                .into_iter()
                .filter(|(k, v)| !ROUND_FIELDS.contains(&k.as_str()) && v.is_finite())
                .collect();
            rounds.entry((phase, strategy)).or_default().push((round as u32, values));
            continue;
        }
        if found.iter().any(|r| r.phase == phase && r.strategy == strategy) {
            why.push(format!("two `figure: bench` lines for {what}"));
            continue;
        }
        let values = figure
            .values
            .into_iter()
            .filter(|(k, v)| !FIELDS.contains(&k.as_str()) && v.is_finite())
            .collect();
        found.push(Record { values: Some(values), ..Record::missing(cell, &phase, &strategy) });
    }
    let mut records = Vec::new();
    for phase in PHASES {
        for s in STRATEGIES {
            match found.iter().position(|r| r.phase == phase && r.strategy == s) {
                Some(i) => records.push(found.remove(i)),
                None => {
                    why.push(format!("no `figure: bench` line for {phase} {s}"));
                    records.push(Record::missing(cell, phase, s));
                }
            }
        }
    }
    // Phases or strategies the kernel grew since: kept, after the known ones.
    records.extend(found);
    for r in &mut records {
        let Some(mut rs) = rounds.remove(&(r.phase.clone(), r.strategy.clone())) else {
            if r.values.is_some() {
                why.push(format!(
                    "no measured `figure: bench_round` line for {} {}",
                    r.phase, r.strategy
                ));
                r.values = None;
            }
            continue;
        };
        rs.sort_by_key(|(n, _)| *n);
        r.rounds = rs.iter().map(|(n, _)| *n).collect();
        let keys: BTreeSet<String> = rs.iter().flat_map(|(_, v)| v.keys().cloned()).collect();
        for key in keys {
            let v: Vec<f64> = rs.iter().filter_map(|(_, v)| v.get(&key).copied()).collect();
            if v.len() == rs.len() {
                r.samples.insert(key, v);
            } else {
                why.push(format!("{} {}: {key} missing in some rounds", r.phase, r.strategy));
            }
        }
    }
    add_ratios(&mut records);
    add_ref_units(&mut records);
    (records, why)
}

/// Adds each strategy's per-round ratios to `none` of the same cell, phase and round.
fn add_ratios(records: &mut [Record]) {
    let nones: Vec<Record> = records.iter().filter(|r| r.strategy == "none").cloned().collect();
    for r in records.iter_mut() {
        let Some(none) = nones.iter().find(|n| {
            (n.mode.as_str(), n.cpus, n.mms, n.phase.as_str())
                == (r.mode.as_str(), r.cpus, r.mms, r.phase.as_str())
        }) else {
            continue;
        };
        for (ratio, key) in RATIOS {
            let (Some(mine), Some(base)) = (r.samples.get(key), none.samples.get(key)) else {
                continue;
            };
            let v: Vec<f64> = r
                .rounds
                .iter()
                .zip(mine)
                .filter_map(|(round, &x)| {
                    let i = none.rounds.iter().position(|n| n == round)?;
                    (base[i] > 0.0).then(|| x / base[i])
                })
                .collect();
            if !v.is_empty() {
                r.samples.insert(ratio.to_string(), v);
            }
        }
    }
}

/// Times given also in units of the reference loop's iteration timed after the same round
/// (`ref_ns_per_iter`): (key, sample key, the sample's nanoseconds per unit).
pub const REF_UNITS: [(&str, &str, f64); 5] = [
    ("cost_refs_per_table", "cost_ns_per_table", 1.0),
    ("retract_refs_per_table", "retract_ns_per_table", 1.0),
    ("free_refs_per_page", "free_ns_per_page", 1.0),
    ("page_wait_refs", "page_wait_us", 1e3),
    ("table_wait_refs", "table_wait_us", 1e3),
];

/// Adds each time's per-round value in reference-loop iterations (see `REF_UNITS`).
fn add_ref_units(records: &mut [Record]) {
    for r in records.iter_mut() {
        let Some(per_iter) = r.samples.get("ref_ns_per_iter").cloned() else {
            continue;
        };
        for (unit_key, key, scale) in REF_UNITS {
            let Some(v) = r.samples.get(key) else {
                continue;
            };
            let v: Option<Vec<f64>> =
                v.iter().zip(&per_iter).map(|(&x, &p)| (p > 0.0).then(|| x * scale / p)).collect();
            if let Some(v) = v {
                r.samples.insert(unit_key.to_string(), v);
            }
        }
    }
}

/// What a results file says about how it was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Measured rounds per strategy and phase (after the warm-up).
    pub rounds: u32,
    /// Guest time counted instructions (`-icount`).
    pub icount: bool,
}

fn numbers(map: &BTreeMap<String, f64>) -> Map<String, Value> {
    map.iter()
        .filter_map(|(k, &v)| Some((k.clone(), serde_json::Number::from_f64(v)?.into())))
        .collect()
}

/// `{"note", "rounds", "icount", "records": [{mode, cpus, mms, phase, strategy, status,
/// values: {..}, rounds: [..], samples: {key: [..]}}]}`.
pub fn to_json(records: &[Record], meta: Meta) -> String {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let samples: Map<String, Value> = r
                .samples
                .iter()
                .map(|(k, v)| {
                    let v: Vec<Value> = v
                        .iter()
                        .filter_map(|&x| serde_json::Number::from_f64(x).map(Value::from))
                        .collect();
                    (k.clone(), Value::from(v))
                })
                .collect();
            json!({
                "mode": r.mode,
                "cpus": r.cpus,
                "mms": r.mms,
                "phase": r.phase,
                "strategy": r.strategy,
                "status": r.status(),
                "values": r.values.as_ref().map(numbers).unwrap_or_default(),
                "rounds": r.rounds,
                "samples": samples,
            })
        })
        .collect();
    let doc =
        json!({ "note": NOTE, "rounds": meta.rounds, "icount": meta.icount, "records": records });
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Reads what [`to_json`] wrote.
pub fn from_json(text: &str) -> Result<(Vec<Record>, Meta), String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let rounds =
        doc["rounds"].as_u64().and_then(|n| u32::try_from(n).ok()).ok_or("no \"rounds\" number")?;
    let icount = doc["icount"].as_bool().ok_or("no \"icount\" boolean")?;
    let records = doc["records"].as_array().ok_or("no \"records\" array")?;
    let records = records.iter().map(record_from_json).collect::<Result<_, _>>()?;
    Ok((records, Meta { rounds, icount }))
}

fn record_from_json(v: &Value) -> Result<Record, String> {
    let string = |k: &str| v[k].as_str().ok_or_else(|| format!("record without {k:?}: {v}"));
    let number = |k: &str| {
        v[k].as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("record without {k:?}: {v}"))
    };
    let float = |k: &str, x: &Value| x.as_f64().ok_or_else(|| format!("{k} is not a number: {v}"));
    let values = match string("status")? {
        "ok" => {
            let values = v["values"].as_object().ok_or_else(|| format!("no values: {v}"))?;
            Some(
                values
                    .iter()
                    .map(|(k, x)| Ok((k.clone(), float(k, x)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        "missing" => None,
        other => return Err(format!("status {other:?}: {v}")),
    };
    let rounds = v["rounds"]
        .as_array()
        .ok_or_else(|| format!("no rounds: {v}"))?
        .iter()
        .map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or("bad round"))
        .collect::<Result<_, _>>()?;
    let samples = v["samples"]
        .as_object()
        .ok_or_else(|| format!("no samples: {v}"))?
        .iter()
        .map(|(k, xs)| {
            let xs = xs.as_array().ok_or_else(|| format!("{k}: not an array"))?;
            Ok((k.clone(), xs.iter().map(|x| float(k, x)).collect::<Result<_, _>>()?))
        })
        .collect::<Result<_, String>>()?;
    Ok(Record {
        mode: string("mode")?.into(),
        cpus: number("cpus")?,
        mms: number("mms")?,
        phase: string("phase")?.into(),
        strategy: string("strategy")?.into(),
        values,
        rounds,
        samples,
    })
}

/// A header `mode,cpus,mms,phase,strategy,status`, then `<key>_median,<key>_q1,<key>_q3` for
/// every per-round figure and every summary figure, sorted; one row per record. A key the
/// record lacks (or a missing record's keys) is an empty field.
pub fn to_csv(records: &[Record]) -> String {
    let sampled: BTreeSet<&str> =
        records.iter().flat_map(|r| r.samples.keys()).map(String::as_str).collect();
    let summed: BTreeSet<&str> = records
        .iter()
        .flat_map(|r| r.values.iter().flatten())
        .map(|(k, _)| k.as_str())
        .filter(|k| !sampled.contains(k))
        .collect();
    let mut out = CSV_FIELDS.join(",");
    for key in &sampled {
        let _ = write!(out, ",{key}_median,{key}_q1,{key}_q3");
    }
    for key in &summed {
        let _ = write!(out, ",{key}");
    }
    out.push('\n');
    for r in records {
        let _ = write!(
            out,
            "{},{},{},{},{},{}",
            csv_field(&r.mode),
            r.cpus,
            r.mms,
            csv_field(&r.phase),
            csv_field(&r.strategy),
            r.status()
        );
        for key in &sampled {
            match r.stat(key) {
                // `Display` of an f64 is the shortest text that parses back to the same value.
                Some(s) => {
                    let _ = write!(out, ",{},{},{}", s.median, s.q1, s.q3);
                }
                None => out.push_str(",,,"),
            }
        }
        for key in &summed {
            out.push(',');
            if let Some(v) = r.get(key) {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
    }
    out
}

/// A CSV field, quoted (RFC 4180) only when it must be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const FIXTURE: &str = include_str!("../../fixtures/bench-radix-smp4-mms2.txt");
    pub const CELL: Cell = Cell { mode: "radix", cpus: 4, mms: 2 };
    /// Measured rounds in the fixture (after the warm-up).
    pub const ROUNDS: usize = 3;

    /// The fixture's records plus a failed cell.
    pub fn sample() -> Vec<Record> {
        let (mut records, why) = from_log(&CELL, FIXTURE);
        assert_eq!(why, Vec::<String>::new());
        records.extend(missing_cell(&Cell { mode: "hash", cpus: 4, mms: 2 }));
        records
    }

    #[test]
    fn times_in_reference_loop_units() {
        // The fixture predates ref_ns_per_iter: give every round line one, 2 ns in round 1
        // and 4 ns after.
        let log: String = FIXTURE
            .lines()
            .map(|l| match l.contains("figure: bench_round") {
                true if l.contains(" round=1 ") => format!("{l} ref_ns_per_iter=2.000\n"),
                true => format!("{l} ref_ns_per_iter=4.000\n"),
                false => format!("{l}\n"),
            })
            .collect();
        let (records, why) = from_log(&CELL, &log);
        assert!(why.is_empty(), "{why:?}");
        let r = &records[1];
        let (ns, refs) = (&r.samples["cost_ns_per_table"], &r.samples["cost_refs_per_table"]);
        assert_eq!(refs[0], ns[0] / 2.0);
        assert_eq!(refs[1], ns[1] / 4.0);
        let (us, refs) = (&r.samples["page_wait_us"], &r.samples["page_wait_refs"]);
        assert_eq!(refs[2], us[2] * 1e3 / 4.0);
        // Without the reference loop there is nothing to divide by.
        assert!(!sample()[1].samples.contains_key("cost_refs_per_table"));
    }

    #[test]
    fn parses_the_fixture_into_records() {
        let (records, why) = from_log(&CELL, FIXTURE);
        assert!(why.is_empty(), "{why:?}");
        let names: Vec<(&str, &str)> =
            records.iter().map(|r| (r.phase.as_str(), r.strategy.as_str())).collect();
        assert_eq!(names.len(), PHASES.len() * STRATEGIES.len());
        assert_eq!(names[0], ("realistic", "none"));
        assert_eq!(names[7], ("held", "bitmap"));
        let active = &records[2];
        assert_eq!((active.mode.as_str(), active.cpus, active.mms), ("radix", 4, 2));
        assert_eq!(active.status(), "ok");
        // Warm-up dropped: the measured rounds only, in order.
        assert_eq!(active.rounds, [1, 2, 3]);
        assert_eq!(active.samples["cost_ns_per_table"].len(), ROUNDS);
        assert_eq!(active.samples["call_rcu_per_page"], [1.0; ROUNDS]);
        assert_eq!(active.get("rounds"), Some(ROUNDS as f64));
        // Fields of the record, round numbers and strings are not values.
        for key in ["cpus", "mms", "mmu", "strategy", "phase", "round", "warmup"] {
            assert_eq!(active.get(key), None, "{key}");
            assert!(!active.samples.contains_key(key), "{key}");
        }
        // Ratios to none of the same round: none's own are 1.
        assert_eq!(records[0].samples["cost_vs_none"], [1.0; ROUNDS]);
        let ratio = active.samples["cost_vs_none"][0];
        let want =
            active.samples["cost_ns_per_table"][0] / records[0].samples["cost_ns_per_table"][0];
        assert_eq!(ratio, want);
        assert_eq!(active.stat("call_rcu_per_page").map(|s| s.median), Some(1.0));
    }

    #[test]
    fn reports_what_the_log_lacks() {
        let keep = |f: &dyn Fn(&str) -> bool| -> String {
            FIXTURE.lines().filter(|l| f(l)).map(|l| format!("{l}\n")).collect()
        };
        let cut = keep(&|l| !(l.starts_with("figure: bench ") && l.contains("strategy=active")));
        let (records, why) = from_log(&CELL, &cut);
        assert_eq!(
            why,
            [
                "no `figure: bench` line for realistic active",
                "no `figure: bench` line for held active"
            ]
        );
        assert_eq!(records[2].status(), "missing");
        assert_eq!(records.len(), 8);

        let no_rounds = keep(&|l| !(l.contains("bench_round") && l.contains("phase=held")));
        let (_, why) = from_log(&CELL, &no_rounds);
        assert_eq!(why.len(), 4, "{why:?}");
        assert!(why[0].starts_with("no measured `figure: bench_round` line for held"), "{why:?}");

        let wrong = Cell { mode: "hash", cpus: 2, mms: 2 };
        let (_, why) = from_log(&wrong, FIXTURE);
        assert!(why.iter().any(|w| w.contains("mmu=radix, booted with mmu=hash")), "{why:?}");
        assert!(why.iter().any(|w| w.contains("cpus=4, booted with 2")), "{why:?}");

        let summary = FIXTURE.lines().find(|l| l.starts_with("figure: bench ")).unwrap();
        let doubled = format!("{FIXTURE}{summary}\n");
        let (records, why) = from_log(&CELL, &doubled);
        assert_eq!(why, ["two `figure: bench` lines for realistic none"]);
        assert_eq!(records.len(), 8);
    }

    #[test]
    fn json_round_trip() {
        let records = sample();
        let meta = Meta { rounds: 3, icount: false };
        let text = to_json(&records, meta);
        assert!(text.contains("\"cost_vs_none\": ["));
        assert_eq!(from_json(&text), Ok((records, meta)));
        assert!(from_json("{}").is_err());
        assert!(from_json("not json").is_err());
    }

    #[test]
    fn csv_has_medians_quartiles_and_summaries() {
        let records = sample();
        let text = to_csv(&records);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("mode,cpus,mms,phase,strategy,status,call_rcu_per_page_median,"));
        assert!(header.contains(",cost_vs_none_median,cost_vs_none_q1,cost_vs_none_q3,"));
        assert!(
            header.contains(",gp_tables_1,") && header.ends_with(",table_wait_max_us"),
            "{header}"
        );
        assert!(!header.contains(",cpus,cpus") && !header.contains(",mmu,"));
        let active = lines.nth(2).unwrap();
        assert!(active.starts_with("radix,4,2,realistic,active,ok,1,1,1,"), "{active}");
        assert!(text.contains("\nhash,4,2,held,bitmap,missing,,"));
        assert_eq!(text.lines().count(), 1 + records.len());
        let fields = header.split(',').count();
        assert!(text.lines().all(|l| l.split(',').count() == fields));
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
