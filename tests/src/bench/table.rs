//! The tables `harness bench` prints (and writes to `tables.txt`): per phase, one per key
//! figure, a row per mode/vCPUs/address spaces, a column per strategy, each cell the median
//! over the measured rounds and its interquartile range; then the grace-period histograms.

use super::results::{Meta, Record};
use super::{NOTE, PHASES, ROUNDS, STRATEGIES};
use std::fmt::Write;

/// A figure the tables show.
pub struct Key {
    pub name: &'static str,
    pub what: &'static str,
    /// The limit and how to say it; cells then show `(xN)`, the median over the limit.
    pub limit: Option<(f64, &'static str)>,
    pub kind: Kind,
}

/// What two real-time runs can be expected to agree on (`harness bench --compare`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A ratio within one boot or a count: two runs must agree on it.
    Count,
    /// A guest time in units of the boot's own reference loop: the host's speed divided out
    /// as far as it stretches the loop and the figure alike (reported, not judged).
    RefUnits,
    /// A time or rate in guest time: in real time it follows the host's speed and load, so
    /// two runs agree on it only under --icount.
    HostTime,
}

pub const KEYS: &[Key] = &[
    Key {
        name: "cost_ns_per_table",
        what:
            "retract_page_tables() plus the reclaim of its pages (callbacks, free, poison fill), \
               per table, ns (instructions with --icount)",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "cost_vs_none",
        what: "the same over none's, same boot, phase and round",
        limit: None,
        kind: Kind::Count,
    },
    Key {
        name: "retract_vs_none",
        what: "retract_page_tables() alone over none's, same boot, phase and round",
        limit: None,
        kind: Kind::Count,
    },
    Key {
        name: "free_vs_none",
        what: "reclaim per freed page over none's (none: the free inside its deferral)",
        limit: None,
        kind: Kind::Count,
    },
    Key {
        name: "retract_ns_per_table",
        what: "retract_page_tables() per table, the reclaim work done meanwhile taken out, ns",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "free_ns_per_page",
        what: "reclaim per freed 64K page (callbacks, free, poison fill), on whichever CPU, ns",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "cost_refs_per_table",
        what: "cost_ns_per_table in iterations of the reference loop CPU 0 timed after the \
               same round (the host's speed divided out)",
        limit: None,
        kind: Kind::RefUnits,
    },
    Key {
        name: "retract_refs_per_table",
        what: "retract_ns_per_table in reference-loop iterations",
        limit: None,
        kind: Kind::RefUnits,
    },
    Key {
        name: "free_refs_per_page",
        what: "free_ns_per_page in reference-loop iterations",
        limit: None,
        kind: Kind::RefUnits,
    },
    Key {
        name: "call_rcu_per_page",
        what: "call_rcu calls per freed 64K page-table page",
        limit: Some((1.0, "1 call_rcu per freed page")),
        kind: Kind::Count,
    },
    Key {
        name: "gp_per_page",
        what: "grace periods that started after a page's last deferral and ended before its \
               free (grace-period oracle)",
        limit: Some((
            1.0,
            "1; active queues at the last deferral and sits at 1, a deferral landing in a \
             running grace period costs refcount and bitmap up to 2",
        )),
        kind: Kind::Count,
    },
    Key {
        name: "gp_per_table",
        what: "the same from each table's deferral (oracle); tables deferred earlier on the \
               page wait for its last",
        limit: Some((1.0, "no table before 1 (0 is an early free, reported by the oracle)")),
        kind: Kind::Count,
    },
    Key {
        name: "page_wait_us",
        what: "us from a page's last deferral to its free (oracle)",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "table_wait_us",
        what: "us from a table's deferral to its page's free (oracle)",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "page_wait_refs",
        what: "page_wait_us in reference-loop iterations",
        limit: None,
        kind: Kind::RefUnits,
    },
    Key {
        name: "table_wait_refs",
        what: "table_wait_us in reference-loop iterations",
        limit: None,
        kind: Kind::RefUnits,
    },
    Key {
        name: "peak_waiting_pages",
        what: "most 64K pages waiting for a grace period at once in a round",
        limit: None,
        kind: Kind::Count,
    },
    Key {
        name: "lockless_walks_per_s",
        what: "lockless (GUP-fast style) walks per second by the walker CPUs",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "mmu_loads_per_s",
        what: "loads through the MMU per second by the walker CPUs",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "hpte_evictions",
        what: "HPTEs evicted to make room, per round (hash)",
        limit: None,
        kind: Kind::HostTime,
    },
    Key {
        name: "ref_ns_per_iter",
        what: "ns per iteration of the reference loop (register arithmetic, CPU 0 alone, \
               after each round): the host's speed in this boot",
        limit: None,
        kind: Kind::HostTime,
    },
];

/// Width of a strategy column.
const COL: usize = 26;

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
pub fn rows(records: &[Record]) -> Vec<(&str, u32, u32)> {
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
    phase: &str,
    strategy: &str,
) -> Option<&'a Record> {
    records.iter().find(|r| {
        r.mode == mode
            && r.cpus == cpus
            && r.mms == mms
            && r.phase == phase
            && r.strategy == strategy
    })
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

/// `median [q1-q3]`, with the distance from the limit if any.
fn cell_text(r: Option<&Record>, key: &Key) -> String {
    let Some(r) = r.filter(|r| r.values.is_some()) else {
        return "missing".into();
    };
    let Some(s) = r.stat(key.name) else {
        return "-".into();
    };
    let mut text = if s.q1 == s.q3 {
        number(s.median)
    } else {
        format!("{} [{}-{}]", number(s.median), number(s.q1), number(s.q3))
    };
    if let Some((limit, _)) = key.limit {
        let _ = write!(text, " (x{:.2})", s.median / limit);
    }
    text
}

fn header(out: &mut String, strategies: &[&str]) {
    let _ = write!(out, "{:<8}{:>5}{:>5}", "mode", "cpus", "mms");
    for s in strategies {
        let _ = write!(out, "{s:>COL$}");
    }
    out.push('\n');
}

pub fn render(records: &[Record], meta: Meta) -> String {
    let strategies = strategies(records);
    let rows = rows(records);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nbench: {} boots{}, every strategy in each, round by round, {} measured rounds per \
         strategy and phase after one warm-up",
        rows.len(),
        if meta.icount { " with -icount (guest time counts instructions)" } else { "" },
        meta.rounds
    );
    if meta.rounds != ROUNDS {
        let _ = writeln!(out, "(this harness measures {ROUNDS})");
    }
    let _ = writeln!(out, "{NOTE}");
    for phase in PHASES {
        let _ = writeln!(
            out,
            "\n==== phase {phase}: {} ====",
            match phase {
                "realistic" => "walkers on the other CPUs, no read section held across the retract",
                _ => "the deterministic walker holds a read section across each round (worst case)",
            }
        );
        for key in KEYS {
            let _ = writeln!(out, "\n{} ({phase}): {}", key.name, key.what);
            if let Some((_, limit)) = key.limit {
                let _ = writeln!(out, "limit: {limit}; (xN) = median / limit");
            }
            header(&mut out, &strategies);
            for &row in &rows {
                let _ = write!(out, "{:<8}{:>5}{:>5}", row.0, row.1, row.2);
                for s in &strategies {
                    let _ = write!(out, "{:>COL$}", cell_text(find(records, row, phase, s), key));
                }
                out.push('\n');
            }
        }
        for (name, what) in [
            ("gp_pages", "pages by grace periods from their last deferral to their free"),
            ("gp_tables", "tables by grace periods from their deferral to their page's free"),
        ] {
            let _ = writeln!(
                out,
                "\n{name} ({phase}): {what}, all measured rounds: 0/1/2/3/4+ (0 = freed early)"
            );
            header(&mut out, &strategies);
            for &row in &rows {
                let _ = write!(out, "{:<8}{:>5}{:>5}", row.0, row.1, row.2);
                for s in &strategies {
                    let text = match find(records, row, phase, s) {
                        Some(r) if r.values.is_some() => (0..5)
                            .map(|i| r.get(&format!("{name}_{i}")).map_or("-".into(), number))
                            .collect::<Vec<_>>()
                            .join("/"),
                        _ => "missing".into(),
                    };
                    let _ = write!(out, "{text:>COL$}");
                }
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::results::tests::{sample, ROUNDS as FIXTURE_ROUNDS};
    use super::*;

    fn meta() -> Meta {
        Meta { rounds: FIXTURE_ROUNDS as u32, icount: false }
    }

    #[test]
    fn table_has_a_row_per_cell_and_a_column_per_strategy() {
        let text = render(&sample(), meta());
        assert!(text.contains("every ratio is taken within one boot"));
        assert!(text.contains("3 measured rounds per strategy and phase"));
        assert!(text.contains("(this harness measures 30)"));
        let header = format!(
            "mode     cpus  mms{:>26}{:>26}{:>26}{:>26}",
            "none", "refcount", "active", "bitmap"
        );
        assert_eq!(text.matches(&header).count(), 2 * (KEYS.len() + 2), "{text}");
        assert!(text.contains("==== phase realistic: walkers"));
        assert!(text.contains("==== phase held: the deterministic walker"));
        let missing = format!("\nhash        4    2{:>26}{:>26}", "missing", "missing");
        assert!(text.contains(&missing), "{text}");
        assert!(text.contains("limit: 1 call_rcu per freed page"));
        // active's call_rcu: one per page every round, at the limit.
        let row = text
            .lines()
            .skip_while(|l| !l.starts_with("call_rcu_per_page (realistic)"))
            .find(|l| l.starts_with("radix "))
            .unwrap();
        assert!(row.contains("1 (x1.00)"), "{row}");
        assert!(text.contains("gp_pages (held): pages by grace periods"));
    }

    #[test]
    fn cells_show_median_and_quartiles() {
        let records = sample();
        let active = find(&records, ("radix", 4, 2), "realistic", "active").unwrap();
        let key = KEYS.iter().find(|k| k.name == "cost_ns_per_table").unwrap();
        let s = active.stat(key.name).unwrap();
        let text = cell_text(Some(active), key);
        assert_eq!(
            text,
            format!("{} [{}-{}]", number(s.median), number(s.q1), number(s.q3)),
            "{text}"
        );
        assert_eq!(cell_text(None, key), "missing");
        let mut no_key = active.clone();
        no_key.samples.remove(key.name);
        assert_eq!(cell_text(Some(&no_key), key), "-");
    }

    #[test]
    fn numbers() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(40.0), "40");
        assert_eq!(number(1.5), "1.50");
        assert_eq!(number(12.345), "12.3");
        assert_eq!(number(15000.4), "15000");
    }
}
