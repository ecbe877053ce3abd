//! Kernel command line (`/chosen/bootargs`, QEMU's `-append`): whitespace-separated
//! `key=value` words.
//!
//! Invariant: `OPTIONS` is the only list of options. Parsing, duplicate detection, error
//! messages and [`valid_options`] are all derived from it, so adding an option means adding
//! a field to [`Cmdline`] (with its default) and one row to the table.

use crate::pte_free_defer::Strategy;
use core::fmt;

/// Which MMU the kernel runs with (`mmu=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MmuMode {
    /// Radix tree (ISA v3.0), chosen through CAS; the default. Address spaces use 4K pages
    /// (13/9/9/9).
    Radix,
    /// Radix with 64K pages in address spaces, Linux's distribution layout (13/9/9/5): 256
    /// PTE tables of 256 bytes share one 64K page.
    Radix64,
    /// Hashed page table owned by the hypervisor.
    Hash,
}

impl MmuMode {
    /// Either radix layout.
    pub fn is_radix(self) -> bool {
        matches!(self, MmuMode::Radix | MmuMode::Radix64)
    }

    pub fn name(self) -> &'static str {
        match self {
            MmuMode::Radix => "radix",
            MmuMode::Radix64 => "radix64",
            MmuMode::Hash => "hash",
        }
    }
}

/// Deliberately failing kernel test (`selftest=`), the harness's negative control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selftest {
    /// No extra test; the default.
    Off,
    /// Register a kernel test that always fails, to prove failures reach the summary.
    Fail,
    /// Take an unexpected storage interrupt after boot, to prove the oops path reports it.
    Oops,
}

/// The parsed command line; borrows filter strings from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmdline<'a> {
    /// `mmu=radix|radix64|hash`, default radix.
    pub mmu: MmuMode,
    /// `hz=1..10000`: decrementer tick rate, default 100.
    pub hz: u32,
    /// `test=<filter>`: run only kernel tests whose name contains the filter; default all.
    pub test: Option<&'a str>,
    /// `selftest=off|fail|oops`, default off.
    pub selftest: Selftest,
    /// `pte_free_defer=naive|refcount|active|bitmap|bitmap_sketch|none`, default active
    /// (Linux v6.6).
    pub pte_free_defer: Strategy,
    /// `rcu_gp=normal|short`: `short` ends grace periods without waiting for the other CPUs
    /// (the rcutorture negative control that must be caught), default normal.
    pub rcu_short_gp: bool,
    /// `collapses=1..100000`: collapse rounds of the retract torture test, default 8.
    pub collapses: u32,
    /// `bench=0|1`: run `retract_bench` (every strategy in one boot), default 0.
    pub bench: bool,
    /// `mms=1..1000`: address spaces sharing the file in `retract_bench`, default 4.
    pub mms: u32,
    /// `rcu_check=on|off`: the grace-period oracle (every deferred table's grace period is
    /// checked at the real free of its page), default on; `off` to measure without it.
    pub rcu_check: bool,
    /// `schedule=<filter>[,<filter>...]`: run only the deterministic schedules of
    /// `retract_schedules` whose name contains one of the filters; default all.
    pub schedule: Option<&'a str>,
    /// `trace=0|1`: record the retract path's events in per-CPU rings and dump them on the
    /// console after the tests (`make trace`), default 0.
    pub trace: bool,
}

impl Default for Cmdline<'_> {
    fn default() -> Self {
        Self {
            mmu: MmuMode::Radix,
            hz: 100,
            test: None,
            selftest: Selftest::Off,
            pte_free_defer: Strategy::Active,
            rcu_short_gp: false,
            collapses: 8,
            bench: false,
            mms: 4,
            rcu_check: true,
            schedule: None,
            trace: false,
        }
    }
}

/// Why the command line was rejected. Displays the offending option followed by every
/// valid option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// The key is not in the table.
    Unknown(&'a str),
    /// The key is known but its value is not accepted (or the word has no `=`).
    Malformed { option: &'a str, value: &'a str, expected: &'static str },
    /// The key was given more than once.
    Duplicate(&'a str),
}

impl fmt::Display for CmdlineError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            CmdlineError::Unknown(key) => write!(f, "unknown option '{key}'")?,
            CmdlineError::Malformed { option, value, expected } => {
                write!(f, "option '{option}' has invalid value '{value}' (expected {expected})")?
            }
            CmdlineError::Duplicate(key) => write!(f, "option '{key}' given more than once")?,
        }
        f.write_str("; valid options: ")?;
        for (i, (name, accepted)) in valid_options().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={accepted}")?;
        }
        Ok(())
    }
}

/// One row of the option table.
struct Opt {
    name: &'static str,
    /// Accepted values as shown to the user, e.g. `radix|hash`.
    accepted: &'static str,
    /// Stores a value in the command line; false if the value is not accepted.
    set: for<'a> fn(&mut Cmdline<'a>, &'a str) -> bool,
}

/// Every option the kernel understands, in the order error messages list them.
const OPTIONS: &[Opt] = &[
    Opt { name: "mmu", accepted: "radix|radix64|hash", set: set_mmu },
    Opt { name: "hz", accepted: "1..10000", set: set_hz },
    Opt { name: "test", accepted: "<filter>", set: set_test },
    Opt { name: "selftest", accepted: "off|fail|oops", set: set_selftest },
    Opt {
        name: "pte_free_defer",
        accepted: "naive|refcount|active|bitmap|bitmap_sketch|none",
        set: set_pte_free_defer,
    },
    Opt { name: "rcu_gp", accepted: "normal|short", set: set_rcu_gp },
    Opt { name: "collapses", accepted: "1..100000", set: set_collapses },
    Opt { name: "bench", accepted: "0|1", set: set_bench },
    Opt { name: "mms", accepted: "1..1000", set: set_mms },
    Opt { name: "rcu_check", accepted: "on|off", set: set_rcu_check },
    Opt { name: "schedule", accepted: "<filter>", set: set_schedule },
    Opt { name: "trace", accepted: "0|1", set: set_trace },
];

// Duplicate detection keeps one bit per row.
const _: () = assert!(OPTIONS.len() <= 64);

/// What a word without `=` and an unknown key would have needed.
const KEY_VALUE: &str = "key=value";

fn set_mmu<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    c.mmu = match v {
        "radix" => MmuMode::Radix,
        "radix64" => MmuMode::Radix64,
        "hash" => MmuMode::Hash,
        _ => return false,
    };
    true
}

fn set_hz<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    match parse_decimal(v) {
        Some(hz @ 1..=10000) => {
            c.hz = hz;
            true
        }
        _ => false,
    }
}

fn set_test<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    c.test = Some(v);
    !v.is_empty()
}

fn set_selftest<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    c.selftest = match v {
        "off" => Selftest::Off,
        "fail" => Selftest::Fail,
        "oops" => Selftest::Oops,
        _ => return false,
    };
    true
}

fn set_pte_free_defer<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    match Strategy::parse(v) {
        Some(st) => {
            c.pte_free_defer = st;
            true
        }
        None => false,
    }
}

fn set_rcu_gp<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    c.rcu_short_gp = match v {
        "normal" => false,
        "short" => true,
        _ => return false,
    };
    true
}

fn set_collapses<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    match parse_decimal(v) {
        Some(n @ 1..=100000) => {
            c.collapses = n;
            true
        }
        _ => false,
    }
}

/// A `0`/`1` switch.
fn switch(v: &str) -> Option<bool> {
    match v {
        "0" => Some(false),
        "1" => Some(true),
        _ => None,
    }
}

fn set_bench<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    switch(v).map(|on| c.bench = on).is_some()
}

fn set_mms<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    match parse_decimal(v) {
        Some(n @ 1..=1000) => {
            c.mms = n;
            true
        }
        _ => false,
    }
}

fn set_rcu_check<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    c.rcu_check = match v {
        "on" => true,
        "off" => false,
        _ => return false,
    };
    true
}

fn set_schedule<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    c.schedule = Some(v);
    !v.is_empty()
}

fn set_trace<'a>(c: &mut Cmdline<'a>, v: &'a str) -> bool {
    switch(v).map(|on| c.trace = on).is_some()
}

/// Plain ASCII decimal: digits only, no sign, no overflow.
fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u32, |acc, b| {
        let d = (b as char).to_digit(10)?;
        acc.checked_mul(10)?.checked_add(d)
    })
}

/// `(name, accepted values)` for every option, in table order.
pub fn valid_options() -> impl Iterator<Item = (&'static str, &'static str)> {
    OPTIONS.iter().map(|o| (o.name, o.accepted))
}

/// Parses a command line; options not given keep their defaults.
pub fn parse(s: &str) -> Result<Cmdline<'_>, CmdlineError<'_>> {
    let mut cmdline = Cmdline::default();
    let mut seen = 0u64;
    for word in s.split_ascii_whitespace() {
        let (key, value) = match word.split_once('=') {
            Some(kv) => kv,
            None => {
                let expected =
                    OPTIONS.iter().find(|o| o.name == word).map_or(KEY_VALUE, |o| o.accepted);
                return Err(CmdlineError::Malformed { option: word, value: "", expected });
            }
        };
        let Some(row) = OPTIONS.iter().position(|o| o.name == key) else {
            return Err(CmdlineError::Unknown(key));
        };
        if seen & (1 << row) != 0 {
            return Err(CmdlineError::Duplicate(key));
        }
        seen |= 1 << row;
        let opt = &OPTIONS[row];
        if !(opt.set)(&mut cmdline, value) {
            return Err(CmdlineError::Malformed { option: key, value, expected: opt.accepted });
        }
    }
    Ok(cmdline)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    const VALID: &str = "valid options: mmu=radix|radix64|hash, hz=1..10000, test=<filter>, \
                         selftest=off|fail|oops, \
                         pte_free_defer=naive|refcount|active|bitmap|bitmap_sketch|none, \
                         rcu_gp=normal|short, collapses=1..100000, bench=0|1, mms=1..1000, \
                         rcu_check=on|off, schedule=<filter>, trace=0|1";

    #[test]
    fn empty_and_blank_give_defaults() {
        let d = Cmdline::default();
        assert_eq!(parse(""), Ok(d.clone()));
        assert_eq!(parse("  \t\n "), Ok(d.clone()));
        assert_eq!(Cmdline::default(), d);
    }

    #[test]
    fn mmu_option() {
        assert_eq!(parse("mmu=hash").unwrap().mmu, MmuMode::Hash);
        assert_eq!(parse("mmu=radix").unwrap().mmu, MmuMode::Radix);
        assert_eq!(parse("mmu=radix64").unwrap().mmu, MmuMode::Radix64);
        assert!(MmuMode::Radix64.is_radix() && !MmuMode::Hash.is_radix());
        assert_eq!(
            parse("mmu=Radix"),
            Err(CmdlineError::Malformed {
                option: "mmu",
                value: "Radix",
                expected: "radix|radix64|hash"
            })
        );
    }

    #[test]
    fn hz_option() {
        assert_eq!(parse("hz=1").unwrap().hz, 1);
        assert_eq!(parse("hz=250").unwrap().hz, 250);
        assert_eq!(parse("hz=10000").unwrap().hz, 10000);
        assert_eq!(parse("hz=0010").unwrap().hz, 10);
    }

    #[test]
    fn hz_malformed_or_out_of_range() {
        for bad in ["0", "10001", "abc", "", "-5", "+5", "1e3", " ", "99999999999"] {
            let line = std::format!("hz={bad}");
            let want =
                CmdlineError::Malformed { option: "hz", value: bad.trim(), expected: "1..10000" };
            assert_eq!(parse(&line), Err(want), "hz={bad}");
        }
    }

    #[test]
    fn test_filter_option() {
        assert_eq!(parse("test=rcu").unwrap().test, Some("rcu"));
        assert_eq!(parse("test=a=b").unwrap().test, Some("a=b"));
        assert!(matches!(parse("test="), Err(CmdlineError::Malformed { option: "test", .. })));
    }

    #[test]
    fn selftest_option() {
        assert_eq!(parse("selftest=fail").unwrap().selftest, Selftest::Fail);
        assert_eq!(parse("selftest=off").unwrap().selftest, Selftest::Off);
        assert_eq!(parse("selftest=oops").unwrap().selftest, Selftest::Oops);
        assert!(matches!(
            parse("selftest=on"),
            Err(CmdlineError::Malformed { option: "selftest", value: "on", .. })
        ));
    }

    #[test]
    fn all_options_with_extra_spaces() {
        let c = parse("  mmu=hash \t hz=1000\n\ntest=frag   selftest=fail  ").unwrap();
        assert_eq!(
            c,
            Cmdline {
                mmu: MmuMode::Hash,
                hz: 1000,
                test: Some("frag"),
                selftest: Selftest::Fail,
                ..Cmdline::default()
            }
        );
    }

    #[test]
    fn unknown_option() {
        assert_eq!(parse("hz=5 bogus=1"), Err(CmdlineError::Unknown("bogus")));
        assert_eq!(parse("=1"), Err(CmdlineError::Unknown("")));
        assert_eq!(parse("MMU=hash"), Err(CmdlineError::Unknown("MMU")));
    }

    #[test]
    fn word_without_equals_is_malformed() {
        assert_eq!(
            parse("mmu"),
            Err(CmdlineError::Malformed {
                option: "mmu",
                value: "",
                expected: "radix|radix64|hash"
            })
        );
        assert_eq!(
            parse("quiet"),
            Err(CmdlineError::Malformed { option: "quiet", value: "", expected: "key=value" })
        );
    }

    #[test]
    fn duplicate_option() {
        assert_eq!(parse("hz=5 mmu=hash hz=5"), Err(CmdlineError::Duplicate("hz")));
        assert_eq!(parse("test=a test=b"), Err(CmdlineError::Duplicate("test")));
    }

    #[test]
    fn error_messages_list_valid_options() {
        assert_eq!(
            CmdlineError::Unknown("bogus").to_string(),
            std::format!("unknown option 'bogus'; {VALID}")
        );
        assert_eq!(
            parse("hz=0").unwrap_err().to_string(),
            std::format!("option 'hz' has invalid value '0' (expected 1..10000); {VALID}")
        );
        assert_eq!(
            CmdlineError::Duplicate("mmu").to_string(),
            std::format!("option 'mmu' given more than once; {VALID}")
        );
    }

    #[test]
    fn retract_options() {
        let c = parse("pte_free_defer=refcount rcu_gp=short collapses=7").unwrap();
        assert_eq!(c.pte_free_defer, Strategy::Refcount);
        assert!(c.rcu_short_gp);
        assert_eq!(c.collapses, 7);
        assert!(parse("pte_free_defer=bogus").is_err());
        assert!(parse("collapses=0").is_err());
    }

    #[test]
    fn rcu_check_is_on_unless_turned_off() {
        assert!(parse("").unwrap().rcu_check);
        assert!(!parse("rcu_check=off").unwrap().rcu_check);
        assert!(parse("rcu_check=on").unwrap().rcu_check);
        assert!(parse("rcu_check=1").is_err());
    }

    #[test]
    fn strategy_values_are_the_strategy_list() {
        let names: std::vec::Vec<&str> = Strategy::CHOICES.iter().map(|s| s.name()).collect();
        let accepted = valid_options().find(|(n, _)| *n == "pte_free_defer").unwrap().1;
        assert_eq!(accepted, names.join("|"));
    }

    #[test]
    fn schedule_filter_is_optional_and_not_empty() {
        assert_eq!(parse("").unwrap().schedule, None);
        assert_eq!(parse("schedule=hash_fault").unwrap().schedule, Some("hash_fault"));
        assert!(parse("schedule=").is_err());
    }

    #[test]
    fn trace_is_off_unless_turned_on() {
        assert!(!parse("").unwrap().trace);
        assert!(parse("trace=1").unwrap().trace);
        assert!(!parse("trace=0").unwrap().trace);
        for bad in ["trace=on", "trace=2", "trace=", "trace"] {
            assert!(
                matches!(parse(bad), Err(CmdlineError::Malformed { option: "trace", .. })),
                "{bad}"
            );
        }
        assert_eq!(parse("trace=1 trace=1"), Err(CmdlineError::Duplicate("trace")));
    }

    #[test]
    fn valid_options_come_from_the_table() {
        let v: std::vec::Vec<_> = valid_options().collect();
        assert_eq!(
            v,
            [
                ("mmu", "radix|radix64|hash"),
                ("hz", "1..10000"),
                ("test", "<filter>"),
                ("selftest", "off|fail|oops"),
                ("pte_free_defer", "naive|refcount|active|bitmap|bitmap_sketch|none"),
                ("rcu_gp", "normal|short"),
                ("collapses", "1..100000"),
                ("bench", "0|1"),
                ("mms", "1..1000"),
                ("rcu_check", "on|off"),
                ("schedule", "<filter>"),
                ("trace", "0|1"),
            ]
        );
        // Every listed option parses with a value from its own description.
        for (name, accepted) in valid_options() {
            let value = match accepted {
                "1..10000" | "1..100000" | "1..1000" => "1",
                "<filter>" => "x",
                a => a.split('|').next().unwrap(),
            };
            assert!(parse(&std::format!("{name}={value}")).is_ok(), "{name}");
        }
    }
}
