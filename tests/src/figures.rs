//! The kernel's `figure:` lines, gathered from every scenario's log and printed together.
//! A ratio between two scenarios is of figures each boot measured against its own reference
//! (never of two boots' seconds: the machine is shared and noisy, and a boot's speed depends
//! on what else ran meanwhile).

use std::collections::BTreeMap;

/// One `figure:` line: its scenario and its `key=value` pairs, split into the values that
/// parse as numbers and the rest (e.g. `mmu=radix`, `strategy=refcount`).
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub scenario: String,
    pub line: String,
    pub values: BTreeMap<String, f64>,
    pub strings: BTreeMap<String, String>,
}

impl Figure {
    /// The line's leading word when it is not a `key=value` pair (`bench`, `retract`).
    pub fn label(&self) -> Option<&str> {
        self.line.split_whitespace().next().filter(|w| !w.contains('='))
    }
}

/// The `figure:` lines of a serial log.
pub fn parse(scenario: &str, log: &str) -> Vec<Figure> {
    log.lines().filter_map(|l| parse_line(scenario, l)).collect()
}

/// One line of a serial log, if it is a `figure:` line.
pub fn parse_line(scenario: &str, line: &str) -> Option<Figure> {
    let rest = line.trim().strip_prefix("figure:")?;
    let mut figure = Figure {
        scenario: scenario.to_string(),
        line: rest.trim().to_string(),
        values: BTreeMap::new(),
        strings: BTreeMap::new(),
    };
    for (k, v) in rest.split_whitespace().filter_map(|kv| kv.split_once('=')) {
        if let Ok(n) = v.parse::<f64>() {
            figure.values.insert(k.to_string(), n);
        } else {
            figure.strings.insert(k.to_string(), v.to_string());
        }
    }
    Some(figure)
}

/// Ratio `num/den` of `key` between two scenarios' first figure lines that have it.
pub fn ratio(figs: &[Figure], key: &str, num: &str, den: &str) -> Option<f64> {
    let get = |s: &str| figs.iter().find(|f| f.scenario == s)?.values.get(key).copied();
    let (a, b) = (get(num)?, get(den)?);
    (b != 0.0).then(|| a / b)
}

/// Prints every figure and the ratios a reader compares.
pub fn print(figs: &[Figure]) {
    if figs.is_empty() {
        return;
    }
    println!("figures (kernel timebase, this run):");
    for f in figs {
        println!("  {:<16} {}", f.scenario, f.line);
    }
    // A fault's time in units of the boot's own reference loop (`figures_fault_rate`).
    for (key, num, den) in [
        ("fault_ref_units", "vof-hash-smp1", "vof-smp1"),
        ("fault_ref_units", "vof-hash-smp4", "vof-smp4"),
    ] {
        if let Some(r) = ratio(figs, key, num, den) {
            println!(
                "  fault cost hash/radix: {r:.2} ({num} / {den}; each boot's time per fault in \
                 units of its own reference loop)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_values_and_ratios() {
        let a = parse("r", "x\nfigure: mmu=radix faults_per_s_1cpu=200 note=(a b)\n");
        let b = parse("h", "figure: mmu=hash faults_per_s_1cpu=50\n");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].values["faults_per_s_1cpu"], 200.0);
        assert!(!a[0].values.contains_key("mmu"));
        assert_eq!(a[0].strings["mmu"], "radix");
        assert_eq!(a[0].strings["note"], "(a");
        assert_eq!(a[0].label(), None);
        let all: Vec<Figure> = a.into_iter().chain(b).collect();
        assert_eq!(ratio(&all, "faults_per_s_1cpu", "h", "r"), Some(0.25));
        assert_eq!(ratio(&all, "missing", "h", "r"), None);
        let bench = parse("b", "figure: bench strategy=none retract_cost_vs_none=1.00\n");
        assert_eq!(bench[0].label(), Some("bench"));
        assert_eq!(bench[0].strings["strategy"], "none");
        assert_eq!(bench[0].values["retract_cost_vs_none"], 1.0);
        let line = parse_line("n", "  figure: retract strategy=naive double_call_rcu=192").unwrap();
        assert_eq!((line.label(), line.values["double_call_rcu"]), (Some("retract"), 192.0));
        assert_eq!(parse_line("n", "test retract_torture ... ok"), None);
    }
}
