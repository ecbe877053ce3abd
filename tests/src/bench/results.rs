//! The benchmark's records, one per (mode, vCPUs, address spaces, strategy): read from a boot's
//! `figure: bench ...` lines, written as JSON and CSV with every numeric key.

use super::{Cell, NOTE, STRATEGIES};
use crate::figures;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Numeric keys of a figure line that are the record's own fields rather than values.
const FIELDS: [&str; 2] = ["cpus", "mms"];

/// The CSV columns before the figure keys.
const CSV_FIELDS: [&str; 5] = ["mode", "cpus", "mms", "strategy", "status"];

#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub mode: String,
    pub cpus: u32,
    pub mms: u32,
    pub strategy: String,
    /// Every numeric figure of the line; `None` when the boot failed or printed no line for
    /// this strategy.
    pub values: Option<BTreeMap<String, f64>>,
}

impl Record {
    fn missing(cell: &Cell, strategy: &str) -> Self {
        Self {
            mode: cell.mode.into(),
            cpus: cell.cpus,
            mms: cell.mms,
            strategy: strategy.into(),
            values: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.as_ref()?.get(key).copied()
    }

    pub fn status(&self) -> &'static str {
        if self.values.is_some() {
            "ok"
        } else {
            "missing"
        }
    }
}

/// One missing record per strategy: the cell's boot failed.
pub fn missing_cell(cell: &Cell) -> Vec<Record> {
    STRATEGIES.iter().map(|s| Record::missing(cell, s)).collect()
}

/// The records of one boot's log, known strategies first in run order, and every way the log
/// falls short (a strategy without a line, a line that does not match the cell).
pub fn from_log(cell: &Cell, log: &str) -> (Vec<Record>, Vec<String>) {
    let mut why = Vec::new();
    let mut found: Vec<Record> = Vec::new();
    let lines =
        figures::parse(&cell.name(), log).into_iter().filter(|f| f.label() == Some("bench"));
    for figure in lines {
        let Some(strategy) = figure.strings.get("strategy").cloned() else {
            why.push(format!("`figure: bench` line without strategy=: {}", figure.line));
            continue;
        };
        match figure.strings.get("mmu") {
            Some(mmu) if mmu != cell.mode => {
                why.push(format!("strategy {strategy}: mmu={mmu}, booted with mmu={}", cell.mode))
            }
            _ => {}
        }
        for (key, want) in [("cpus", cell.cpus), ("mms", cell.mms)] {
            match figure.values.get(key) {
                Some(&got) if got != f64::from(want) => {
                    why.push(format!("strategy {strategy}: {key}={got}, booted with {want}"))
                }
                _ => {}
            }
        }
        if found.iter().any(|r| r.strategy == strategy) {
            why.push(format!("two `figure: bench` lines for strategy {strategy}"));
            continue;
        }
        let values = figure
            .values
            .into_iter()
            .filter(|(k, v)| !FIELDS.contains(&k.as_str()) && v.is_finite())
            .collect();
        found.push(Record { values: Some(values), ..Record::missing(cell, &strategy) });
    }
    let mut records = Vec::new();
    for s in STRATEGIES {
        match found.iter().position(|r| r.strategy == s) {
            Some(i) => records.push(found.remove(i)),
            None => {
                why.push(format!("no `figure: bench` line for strategy {s}"));
                records.push(Record::missing(cell, s));
            }
        }
    }
    // Strategies the kernel grew since: kept, after the known ones.
    records.extend(found);
    (records, why)
}

/// `{"note", "collapses", "records": [{mode, cpus, mms, strategy, status, values: {..}}]}`.
pub fn to_json(records: &[Record], collapses: u32) -> String {
    let records: Vec<Value> = records
        .iter()
        .map(|r| {
            let values: Map<String, Value> = r
                .values
                .iter()
                .flatten()
                .filter_map(|(k, &v)| Some((k.clone(), serde_json::Number::from_f64(v)?.into())))
                .collect();
            json!({
                "mode": r.mode,
                "cpus": r.cpus,
                "mms": r.mms,
                "strategy": r.strategy,
                "status": r.status(),
                "values": values,
            })
        })
        .collect();
    let doc = json!({ "note": NOTE, "collapses": collapses, "records": records });
    let mut text = serde_json::to_string_pretty(&doc).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Reads what [`to_json`] wrote: the records and the collapse rounds.
pub fn from_json(text: &str) -> Result<(Vec<Record>, u32), String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let collapses = doc["collapses"]
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or("no \"collapses\" number")?;
    let records = doc["records"].as_array().ok_or("no \"records\" array")?;
    let records = records.iter().map(record_from_json).collect::<Result<_, _>>()?;
    Ok((records, collapses))
}

fn record_from_json(v: &Value) -> Result<Record, String> {
    let string = |k: &str| v[k].as_str().ok_or_else(|| format!("record without {k:?}: {v}"));
    let number = |k: &str| {
        v[k].as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("record without {k:?}: {v}"))
    };
    let values = match string("status")? {
        "ok" => {
            let values = v["values"].as_object().ok_or_else(|| format!("no values: {v}"))?;
            let values = values
                .iter()
                .map(|(k, x)| {
                    let x = x.as_f64().ok_or_else(|| format!("{k} is not a number: {v}"))?;
                    Ok((k.clone(), x))
                })
                .collect::<Result<_, String>>()?;
            Some(values)
        }
        "missing" => None,
        other => return Err(format!("status {other:?}: {v}")),
    };
    Ok(Record {
        mode: string("mode")?.into(),
        cpus: number("cpus")?,
        mms: number("mms")?,
        strategy: string("strategy")?.into(),
        values,
    })
}

/// A header `mode,cpus,mms,strategy,status,<every numeric key, sorted>` and one row per
/// record; a key the record lacks (or a missing record's keys) is an empty field.
pub fn to_csv(records: &[Record]) -> String {
    let keys: BTreeSet<&str> =
        records.iter().flat_map(|r| r.values.iter().flatten()).map(|(k, _)| k.as_str()).collect();
    let mut out = CSV_FIELDS.join(",");
    for key in &keys {
        out.push(',');
        out.push_str(&csv_field(key));
    }
    out.push('\n');
    for r in records {
        let (mode, strategy) = (csv_field(&r.mode), csv_field(&r.strategy));
        let _ = write!(out, "{mode},{},{},{strategy},{}", r.cpus, r.mms, r.status());
        for key in &keys {
            out.push(',');
            if let Some(v) = r.get(key) {
                // `Display` of an f64 is the shortest text that parses back to the same value.
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

/// Reads what [`to_csv`] wrote (unquoted fields only).
#[cfg(test)]
pub fn from_csv(text: &str) -> Result<Vec<Record>, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty CSV")?.split(',').collect();
    if header.get(..CSV_FIELDS.len()) != Some(&CSV_FIELDS[..]) {
        return Err(format!("unexpected header {header:?}"));
    }
    let keys = &header[CSV_FIELDS.len()..];
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != header.len() {
                return Err(format!("{} fields, header has {}: {line}", f.len(), header.len()));
            }
            let number = |s: &str| s.parse::<u32>().map_err(|e| format!("{s:?}: {e}"));
            let values = match f[4] {
                "ok" => Some(
                    keys.iter()
                        .zip(&f[CSV_FIELDS.len()..])
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| Ok((k.to_string(), v.parse().map_err(|e| format!("{e}"))?)))
                        .collect::<Result<_, String>>()?,
                ),
                "missing" => None,
                other => return Err(format!("status {other:?}")),
            };
            Ok(Record {
                mode: f[0].into(),
                cpus: number(f[1])?,
                mms: number(f[2])?,
                strategy: f[3].into(),
                values,
            })
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const FIXTURE: &str = include_str!("../../fixtures/bench-radix-smp4-mms10.txt");
    pub const CELL: Cell = Cell { mode: "radix", cpus: 4, mms: 10 };

    /// The fixture's records plus a failed cell.
    pub fn sample() -> Vec<Record> {
        let (mut records, why) = from_log(&CELL, FIXTURE);
        assert_eq!(why, Vec::<String>::new());
        records.extend(missing_cell(&Cell { mode: "hash", cpus: 4, mms: 10 }));
        records
    }

    #[test]
    fn parses_the_fixture_into_records() {
        let (records, why) = from_log(&CELL, FIXTURE);
        assert!(why.is_empty(), "{why:?}");
        let names: Vec<&str> = records.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(names, STRATEGIES);
        let refcount = &records[1];
        assert_eq!((refcount.mode.as_str(), refcount.cpus, refcount.mms), ("radix", 4, 10));
        assert_eq!(refcount.status(), "ok");
        assert_eq!(refcount.get("retract_cost_vs_none"), Some(1.37));
        assert_eq!(refcount.get("retract_us_per_table"), Some(812.5));
        assert_eq!(refcount.get("walker_reads_per_s"), Some(16000.0));
        assert_eq!(records[2].get("walker_reads_per_s"), Some(17250.5));
        // Fields of the record and strings are not values.
        for key in ["cpus", "mms", "mmu", "strategy"] {
            assert_eq!(refcount.get(key), None, "{key}");
        }
        assert_eq!(refcount.values.as_ref().unwrap().len(), 15);
    }

    #[test]
    fn reports_what_the_log_lacks() {
        let cut: String = FIXTURE.lines().filter(|l| !l.contains("strategy=active")).fold(
            String::new(),
            |mut s, l| {
                s.push_str(l);
                s.push('\n');
                s
            },
        );
        let (records, why) = from_log(&CELL, &cut);
        assert_eq!(why, ["no `figure: bench` line for strategy active"]);
        assert_eq!(records[2].status(), "missing");
        assert_eq!(records.len(), 4);

        let wrong = Cell { mode: "hash", cpus: 2, mms: 10 };
        let (_, why) = from_log(&wrong, FIXTURE);
        assert!(why.iter().any(|w| w.contains("mmu=radix, booted with mmu=hash")), "{why:?}");
        assert!(why.iter().any(|w| w.contains("cpus=4, booted with 2")), "{why:?}");

        let doubled = format!("{FIXTURE}{}", FIXTURE.lines().nth(5).unwrap());
        let (records, why) = from_log(&CELL, &doubled);
        assert_eq!(why, ["two `figure: bench` lines for strategy none"]);
        assert_eq!(records.len(), 4);

        let (records, why) = from_log(&CELL, "figure: bench mmu=radix strategy=frag x=1\n");
        assert_eq!(why.len(), 4);
        assert_eq!(records.last().unwrap().strategy, "frag");
    }

    #[test]
    fn json_round_trip() {
        let records = sample();
        let text = to_json(&records, 4);
        assert!(text.contains("\"retract_cost_vs_none\": 1.37"));
        assert_eq!(from_json(&text), Ok((records, 4)));
        assert!(from_json("{}").is_err());
        assert!(from_json("not json").is_err());
    }

    #[test]
    fn csv_round_trip() {
        let records = sample();
        let text = to_csv(&records);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(header.starts_with("mode,cpus,mms,strategy,status,call_rcu_per_page,"));
        assert!(header.contains(",walker_reads_per_s"));
        assert!(!header.contains(",cpus,cpus") && !header.contains("mmu"));
        let refcount = lines.nth(1).unwrap();
        assert!(refcount.starts_with("radix,4,10,refcount,ok,2,"), "{refcount}");
        assert!(text.contains("\nhash,4,10,bitmap,missing,,"));
        assert_eq!(text.lines().count(), 1 + records.len());
        assert_eq!(from_csv(&text), Ok(records));
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}
