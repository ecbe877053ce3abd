//! The tables `harness bench` prints: one per key figure, a row per mode/vCPUs/address
//! spaces, a column per strategy.

use super::results::Record;
use super::{NOTE, STRATEGIES};
use std::fmt::Write;

/// A figure the tables show.
struct Key {
    name: &'static str,
    what: &'static str,
    /// A ratio, always shown with two decimals.
    ratio: bool,
    /// The physical limit per freed page and how to say it.
    limit: Option<(f64, &'static str)>,
}

const KEYS: &[Key] = &[
    Key {
        name: "retract_cost_vs_none",
        what: "retract time per table / strategy none's, same boot",
        ratio: true,
        limit: None,
    },
    Key {
        name: "call_rcu_per_page",
        what: "call_rcu calls per freed 64K page-table page",
        ratio: true,
        limit: Some((1.0, "1 call_rcu per freed 64K page")),
    },
    Key {
        name: "gp_per_page",
        what: "grace periods per freed 64K page-table page",
        ratio: true,
        limit: Some((1.0, "1 grace period per freed 64K page")),
    },
    Key {
        name: "peak_waiting_pages",
        what: "most 64K pages waiting for a grace period at once",
        ratio: false,
        limit: None,
    },
    Key {
        name: "defer_to_free_mean_us",
        what: "mean guest us from pte_free_defer to the page's free",
        ratio: false,
        limit: None,
    },
    Key {
        name: "walker_reads_per_s",
        what: "lockless walker reads per second during the workload",
        ratio: false,
        limit: None,
    },
];

/// Width of a strategy column.
const COL: usize = 16;

/// The strategies in the records: the known ones in run order, then any other.
pub fn strategies(records: &[Record]) -> Vec<&str> {
    let mut names: Vec<&str> = STRATEGIES.to_vec();
    for r in records {
        if !names.contains(&r.strategy.as_str()) {
            names.push(&r.strategy);
        }
    }
    names
}

/// Every (mode, vCPUs, address spaces) in the records, in order of appearance.
fn rows(records: &[Record]) -> Vec<(&str, u32, u32)> {
    let mut rows = Vec::new();
    for r in records {
        let row = (r.mode.as_str(), r.cpus, r.mms);
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    rows
}

pub fn find<'a>(
    records: &'a [Record],
    (mode, cpus, mms): (&str, u32, u32),
    strategy: &str,
) -> Option<&'a Record> {
    records
        .iter()
        .find(|r| r.mode == mode && r.cpus == cpus && r.mms == mms && r.strategy == strategy)
}

/// A figure with as many decimals as its size deserves (none for whole numbers).
pub fn number(v: f64) -> String {
    match v.abs() {
        _ if v.fract() == 0.0 => format!("{v:.0}"),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

pub fn render(records: &[Record], collapses: u32) -> String {
    let strategies = strategies(records);
    let rows = rows(records);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nbench: {} boots, each running the retract workload ({collapses} collapse rounds) once \
         per strategy",
        rows.len()
    );
    let _ = writeln!(out, "{NOTE}");
    for key in KEYS {
        let _ = writeln!(out, "\n{}: {}", key.name, key.what);
        if let Some((_, limit)) = key.limit {
            let _ = writeln!(
                out,
                "physical limit: {limit}; (xN) = value / limit, the strategy's distance from it"
            );
        }
        let _ = write!(out, "{:<6}{:>5}{:>6}", "mode", "cpus", "mms");
        for s in &strategies {
            let _ = write!(out, "{s:>COL$}");
        }
        out.push('\n');
        for &row in &rows {
            let _ = write!(out, "{:<6}{:>5}{:>6}", row.0, row.1, row.2);
            for s in &strategies {
                let text = match find(records, row, s) {
                    Some(r) if r.values.is_some() => match r.get(key.name) {
                        None => "-".to_string(),
                        Some(v) => {
                            let text = if key.ratio { format!("{v:.2}") } else { number(v) };
                            match key.limit {
                                Some((limit, _)) => format!("{text} (x{:.2})", v / limit),
                                None => text,
                            }
                        }
                    },
                    _ => "missing".to_string(),
                };
                let _ = write!(out, "{text:>COL$}");
            }
            out.push('\n');
        }
        if let Some((limit, _)) = key.limit {
            let _ = write!(out, "{:<17}", "mean value/limit");
            for s in &strategies {
                let ratios: Vec<f64> = records
                    .iter()
                    .filter(|r| r.strategy == *s)
                    .filter_map(|r| r.get(key.name))
                    .map(|v| v / limit)
                    .collect();
                let text = match ratios.len() {
                    0 => "-".to_string(),
                    n => format!("x{:.2}", ratios.iter().sum::<f64>() / n as f64),
                };
                let _ = write!(out, "{text:>COL$}");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::sample;
    use super::*;

    #[test]
    fn table_has_a_row_per_cell_and_a_column_per_strategy() {
        let text = render(&sample(), 4);
        assert!(text.contains("ratio measured within one boot"));
        assert!(text.contains("4 collapse rounds"));
        let header =
            "mode   cpus   mms            none        refcount          active          bitmap";
        assert_eq!(text.matches(header).count(), KEYS.len(), "{text}");
        assert!(text.contains(
            "\nradix     4    10            1.00            1.37            1.18            1.08\n"
        ));
        assert!(text.contains(
            "\nhash      4    10         missing         missing         missing         missing\n"
        ));
        assert!(text.contains("physical limit: 1 call_rcu per freed 64K page"));
        assert!(text.contains("physical limit: 1 grace period per freed 64K page"));
        assert!(text.contains("    0.00 (x0.00)    2.00 (x2.00)    1.00 (x1.00)    1.00 (x1.00)\n"));
        assert!(text.contains("    0.00 (x0.00)    1.05 (x1.05)    1.00 (x1.00)    1.00 (x1.00)\n"));
        assert!(text.contains(
            "\nmean value/limit            x0.00           x2.00           x1.00           x1.00\n"
        ));
        assert!(text.contains("           16000           17250           18000\n"));
        assert!(
            text.contains("\nradix     4    10               0              40              12")
        );
    }

    #[test]
    fn numbers_and_missing_keys() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(40.0), "40");
        assert_eq!(number(1.5), "1.50");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(15000.0), "15000");
        let mut records = sample();
        records[1].values.as_mut().unwrap().remove("peak_waiting_pages");
        records.push(Record { strategy: "frag".into(), ..records[0].clone() });
        let text = render(&records, 2);
        assert!(text.contains("            frag\n"));
        assert!(
            text.contains("\nradix     4    10               0               -              12")
        );
    }
}
