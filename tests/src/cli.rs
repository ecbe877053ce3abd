//! Command-line parsing for the `harness` binary: clap's derive API, `--opt value` or
//! `--opt=value`. `Cli` is what clap parses; `Cli::into_cmd` turns it into the `Cmd` the rest of
//! the harness runs (`QemuConfig`, `suite::Options`, ...), so clap stays in this file.

use crate::bench;
use crate::mutants;
use crate::paths;
use crate::qemu::{split_words, Firmware, QemuConfig, MAX_SMP};
use crate::suite::{self, MAX_JOBS};
use crate::trace;
use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Most collapse rounds `test --soak` accepts.
const MAX_SOAK: u32 = 100_000;

/// The host side of ptfrag: builds the QEMU command line, runs the test suite, the benchmark
/// and the mutant catalogue. With no command, prints this help.
#[derive(Debug, Parser)]
#[command(
    name = "harness",
    after_help = "Each command's options: harness <COMMAND> --help, or harness help <COMMAND>.",
    // As before clap: a repeated option's last value wins (`--qemu-extra` adds up instead).
    args_override_self = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Boot QEMU on this terminal (replaces the harness with QEMU) [make run]
    Run(QemuArgs),
    /// Boot QEMU halted with -s -S and attach gdb-multiarch [make gdb]
    Gdb(QemuArgs),
    /// Print the QEMU command line run/gdb would use
    Cmdline(QemuArgs),
    /// Host unit tests, then every QEMU scenario [make test]
    Test(TestArgs),
    /// The retract benchmark: {radix,hash} x vCPUs x address spaces [make bench]
    ///
    /// One boot per cell, 2 at a time; every strategy runs in each boot.
    Bench(BenchArgs),
    /// Build and boot every mutant of the catalogue, table of verdicts [make mutants]
    ///
    /// The catalogue is tests/src/mutants/catalogue.rs; the copy of the tree is in
    /// target/mutants.
    Mutants(MutantsArgs),
    /// One boot with trace=1: a Chrome/Perfetto JSON and an SVG timeline [make trace]
    ///
    /// Boots the deterministic late_deferral schedule with the strategy and MMU given, and
    /// writes DIR/<strategy>-<mmu>.json (open it in ui.perfetto.dev or chrome://tracing),
    /// DIR/<strategy>-<mmu>.svg (one panel per page-table page) and the serial log.
    Trace(TraceArgs),
    /// Print the scenario table
    List,
    /// Write ELF's symbol table into its .ksyms section (make kernel does this)
    Ksyms {
        /// The kernel ELF to patch in place
        elf: PathBuf,
    },
}

// Free-text values may start with '-' (`--qemu-extra "-d int"`), as with the old hand-written
// parser: every option that takes text or a path sets `allow_hyphen_values`.

#[derive(Debug, Args)]
struct QemuArgs {
    /// Firmware
    #[arg(long, value_enum, default_value_t = Firmware::Vof)]
    fw: Firmware,
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        help = format!("vCPUs, 1..={MAX_SMP}"),
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SMP)),
    )]
    smp: u32,
    /// Kernel command line
    #[arg(long = "args", value_name = "\"...\"", default_value = "", allow_hyphen_values = true)]
    bootargs: String,
    /// Kernel ELF
    #[arg(long, value_name = "PATH", default_value_os_t = paths::default_kernel(),
          allow_hyphen_values = true)]
    kernel: PathBuf,
    /// More QEMU arguments, split like a shell, e.g. "-d int,mmu -D q.log"; may be repeated
    #[arg(long, value_name = "\"...\"", value_parser = words, allow_hyphen_values = true)]
    qemu_extra: Vec<Words>,
    /// Deterministic guest time: one TCG thread and -icount shift=0,align=off,sleep=off
    /// (the timebase counts instructions)
    #[arg(long)]
    icount: bool,
}

/// One `--qemu-extra` value, already split into words.
#[derive(Clone, Debug)]
struct Words(Vec<String>);

fn words(s: &str) -> Result<Words, String> {
    split_words(s).map(Words)
}

#[derive(Debug, Args)]
struct TestArgs {
    /// Kernel ELF
    #[arg(long, value_name = "PATH", default_value_os_t = paths::default_kernel(),
          allow_hyphen_values = true)]
    kernel: PathBuf,
    /// Only scenarios whose name contains SUBSTR
    #[arg(long, value_name = "SUBSTR", allow_hyphen_values = true)]
    filter: Option<String>,
    /// Skip the host unit tests
    #[arg(long)]
    skip_host: bool,
    #[arg(
        long,
        value_name = "N",
        help = format!("Only the retract matrix, N collapse rounds each, 1..={MAX_SOAK} (make soak)"),
        value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_SOAK)),
    )]
    soak: Option<u32>,
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        help = format!("Scenarios at once, 1..={MAX_JOBS}"),
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_JOBS as u64),
    )]
    jobs: usize,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Kernel ELF
    #[arg(long, value_name = "PATH", default_value_os_t = paths::default_kernel(),
          allow_hyphen_values = true)]
    kernel: PathBuf,
    /// Only vCPUs 1 and 4 with one address space (default: vCPUs 1,2,4 with 1 and 4
    /// address spaces, and 8 vCPUs with 1)
    #[arg(long)]
    quick: bool,
    /// Where results.json, results.csv, tables.txt, *.svg and logs/ go [default:
    /// target/bench, with --icount target/bench-icount]
    #[arg(long, value_name = "DIR", allow_hyphen_values = true)]
    out: Option<PathBuf>,
    /// No boots: redo the tables, CSV and plots from DIR/results.json
    #[arg(long)]
    replot: bool,
    /// QEMU's instruction counter (-icount shift=0 on one TCG thread): guest time counts
    /// instructions, the same from run to run; every cell
    #[arg(long)]
    icount: bool,
    /// Only the cells whose name (bench-<mode>-smp<N>-mms<M>) contains SUBSTR
    #[arg(long, value_name = "SUBSTR", allow_hyphen_values = true)]
    cells: Option<String>,
    /// No boots: compare --out's results.json with DIR's, cell by cell (medians,
    /// interquartile ranges, overlap); fails if any is disjoint or missing
    #[arg(long, value_name = "DIR", allow_hyphen_values = true)]
    compare: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct TraceArgs {
    /// pte_free_defer strategy
    #[arg(long, value_name = "NAME", default_value = "active", value_parser = strategy)]
    strategy: String,
    /// MMU mode
    #[arg(long, default_value = "radix", value_parser = ["radix", "radix64", "hash"])]
    mmu: String,
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        help = format!("vCPUs, 2..={MAX_SMP} (the schedule needs a reader and a driver; with 3 or \
                        more late_deferral_other_cpu runs too)"),
        value_parser = clap::value_parser!(u32).range(2..=i64::from(MAX_SMP)),
    )]
    smp: u32,
    /// Where <strategy>-<mmu>.json, .svg and .log go
    #[arg(long, value_name = "DIR", default_value_os_t = paths::trace_dir(),
          allow_hyphen_values = true)]
    out: PathBuf,
    /// Kernel ELF
    #[arg(long, value_name = "PATH", default_value_os_t = paths::default_kernel(),
          allow_hyphen_values = true)]
    kernel: PathBuf,
    /// No boot: convert the dump in this serial log (its strategy and MMU name the files)
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    log: Option<PathBuf>,
}

/// A `pte_free_defer=` name.
fn strategy(s: &str) -> Result<String, String> {
    use ptfrag_core::pte_free_defer::Strategy;
    match Strategy::parse(s) {
        Some(st) => Ok(st.name().to_string()),
        None => {
            let names: Vec<&str> = Strategy::CHOICES.iter().map(|c| c.name()).collect();
            Err(format!("not a strategy (one of {})", names.join(", ")))
        }
    }
}

#[derive(Debug, Args)]
struct MutantsArgs {
    /// Only the cheap mutants make test also runs
    #[arg(long)]
    quick: bool,
    /// Only mutants whose name contains SUBSTR
    #[arg(long, value_name = "SUBSTR", allow_hyphen_values = true)]
    filter: Option<String>,
}

/// What `main` runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Cmd {
    Run(QemuConfig),
    Gdb(QemuConfig),
    Cmdline(QemuConfig),
    Test(suite::Options),
    Bench(bench::Options),
    Mutants(mutants::Options),
    Trace(trace::Options),
    List,
    Ksyms(PathBuf),
    /// No command given: print the help.
    Help,
}

impl Cli {
    /// The command to run, with every option's value in the harness's own types.
    pub fn into_cmd(self) -> Cmd {
        let Some(command) = self.command else {
            return Cmd::Help;
        };
        match command {
            Command::Run(q) => Cmd::Run(q.into_config()),
            Command::Gdb(q) => Cmd::Gdb(q.into_config()),
            Command::Cmdline(q) => Cmd::Cmdline(q.into_config()),
            Command::Test(t) => Cmd::Test(suite::Options {
                kernel: t.kernel,
                filter: t.filter,
                skip_host: t.skip_host,
                jobs: t.jobs,
                soak: t.soak,
            }),
            Command::Bench(b) => Cmd::Bench(bench::Options {
                kernel: b.kernel,
                quick: b.quick,
                out: b.out.unwrap_or_else(|| {
                    if b.icount {
                        paths::bench_icount_dir()
                    } else {
                        paths::bench_dir()
                    }
                }),
                replot: b.replot,
                icount: b.icount,
                cells: b.cells,
                compare: b.compare,
            }),
            Command::Mutants(m) => {
                Cmd::Mutants(mutants::Options { quick: m.quick, filter: m.filter })
            }
            Command::Trace(t) => Cmd::Trace(trace::Options {
                kernel: t.kernel,
                strategy: t.strategy,
                mmu: t.mmu,
                smp: t.smp,
                out: t.out,
                log: t.log,
            }),
            Command::List => Cmd::List,
            Command::Ksyms { elf } => Cmd::Ksyms(elf),
        }
    }
}

impl QemuArgs {
    fn into_config(self) -> QemuConfig {
        QemuConfig {
            fw: self.fw,
            smp: self.smp,
            bootargs: self.bootargs,
            kernel: self.kernel,
            extra: self.qemu_extra.into_iter().flat_map(|w| w.0).collect(),
            icount: self.icount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    /// Parses `s` split like a shell, after the program name.
    fn parse_str(s: &str) -> Result<Cmd, ErrorKind> {
        let args = split_words(s).unwrap();
        Cli::try_parse_from(std::iter::once("harness".to_string()).chain(args))
            .map(Cli::into_cmd)
            .map_err(|e| e.kind())
    }

    fn default_qemu() -> QemuConfig {
        QemuConfig {
            fw: Firmware::Vof,
            smp: 1,
            bootargs: String::new(),
            kernel: paths::default_kernel(),
            extra: Vec::new(),
            icount: false,
        }
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_command_is_help() {
        assert_eq!(parse_str(""), Ok(Cmd::Help));
        for help in ["help", "-h", "--help", "help run", "run --help", "test -h"] {
            assert_eq!(parse_str(help), Err(ErrorKind::DisplayHelp), "{help}");
        }
    }

    #[test]
    fn run_gdb_cmdline_defaults() {
        assert_eq!(parse_str("run"), Ok(Cmd::Run(default_qemu())));
        assert_eq!(parse_str("gdb"), Ok(Cmd::Gdb(default_qemu())));
        assert_eq!(parse_str("cmdline"), Ok(Cmd::Cmdline(default_qemu())));
    }

    #[test]
    fn test_defaults() {
        assert_eq!(
            parse_str("test"),
            Ok(Cmd::Test(suite::Options {
                kernel: paths::default_kernel(),
                filter: None,
                skip_host: false,
                jobs: 1,
                soak: None,
            }))
        );
    }

    #[test]
    fn bench_mutants_list_ksyms_defaults() {
        assert_eq!(parse_str("bench"), Ok(Cmd::Bench(bench::Options::default())));
        assert_eq!(
            parse_str("mutants"),
            Ok(Cmd::Mutants(mutants::Options { quick: false, filter: None }))
        );
        assert_eq!(parse_str("list"), Ok(Cmd::List));
        assert_eq!(parse_str("ksyms /k/ptfrag"), Ok(Cmd::Ksyms(PathBuf::from("/k/ptfrag"))));
    }

    #[test]
    fn mutants_options() {
        assert_eq!(
            parse_str("mutants --quick --filter rcu_"),
            Ok(Cmd::Mutants(mutants::Options { quick: true, filter: Some("rcu_".into()) }))
        );
        assert_eq!(parse_str("mutants --bogus"), Err(ErrorKind::UnknownArgument));
    }

    #[test]
    fn run_options_both_spellings() {
        let cmd = parse_str(
            "gdb --fw slof --smp=4 --args 'mmu=hash pte_free_defer=refcount' \
             --kernel=/k --qemu-extra '-d int,mmu -D /tmp/q.log'",
        );
        let Ok(Cmd::Gdb(c)) = cmd else { panic!("{cmd:?}") };
        assert_eq!(c.fw, Firmware::Slof);
        assert_eq!(c.smp, 4);
        assert_eq!(c.bootargs, "mmu=hash pte_free_defer=refcount");
        assert_eq!(c.kernel, PathBuf::from("/k"));
        assert_eq!(c.extra, ["-d", "int,mmu", "-D", "/tmp/q.log"]);
    }

    #[test]
    fn every_value_option_takes_the_equals_form() {
        let Ok(Cmd::Cmdline(c)) =
            parse_str("cmdline --fw=slof --smp=8 --args=mmu=hash --kernel=/k --qemu-extra=-s")
        else {
            panic!()
        };
        assert_eq!((c.fw, c.smp, c.bootargs.as_str()), (Firmware::Slof, 8, "mmu=hash"));
        assert_eq!((c.kernel, c.extra), (PathBuf::from("/k"), vec!["-s".to_string()]));
        assert_eq!(
            parse_str("test --kernel=/k --filter=vof --jobs=2 --soak=400"),
            Ok(Cmd::Test(suite::Options {
                kernel: PathBuf::from("/k"),
                filter: Some("vof".into()),
                skip_host: false,
                jobs: 2,
                soak: Some(400),
            }))
        );
        let Ok(Cmd::Bench(b)) = parse_str("bench --out=/tmp/b") else { panic!() };
        assert_eq!(b.out, PathBuf::from("/tmp/b"));
        let Ok(Cmd::Mutants(m)) = parse_str("mutants --filter=rcu_") else { panic!() };
        assert_eq!(m.filter.as_deref(), Some("rcu_"));
    }

    #[test]
    fn empty_args_value_is_allowed() {
        let Ok(Cmd::Cmdline(c)) = parse_str("cmdline --args '' --qemu-extra ''") else { panic!() };
        assert_eq!(c.bootargs, "");
        assert!(c.extra.is_empty());
        let Ok(Cmd::Cmdline(c)) = parse_str("cmdline --args=") else { panic!() };
        assert_eq!(c.bootargs, "");
    }

    #[test]
    fn text_values_may_start_with_a_dash() {
        let Ok(Cmd::Run(c)) = parse_str("run --args '-x y' --qemu-extra -s --kernel -k") else {
            panic!()
        };
        assert_eq!((c.bootargs.as_str(), c.kernel), ("-x y", PathBuf::from("-k")));
        assert_eq!(c.extra, ["-s"]);
    }

    #[test]
    fn last_value_wins_and_qemu_extra_adds_up() {
        let Ok(Cmd::Run(c)) = parse_str(
            "run --smp 2 --smp=4 --fw slof --fw vof --qemu-extra '-s -S' --qemu-extra -d",
        ) else {
            panic!()
        };
        assert_eq!((c.smp, c.fw), (4, Firmware::Vof));
        assert_eq!(c.extra, ["-s", "-S", "-d"]);
        let Ok(Cmd::Bench(b)) = parse_str("bench --quick --quick") else { panic!() };
        assert!(b.quick);
    }

    #[test]
    fn test_options() {
        let cmd = parse_str("test --filter vof --skip-host --jobs 2 --kernel /k");
        assert_eq!(
            cmd,
            Ok(Cmd::Test(suite::Options {
                kernel: PathBuf::from("/k"),
                filter: Some("vof".into()),
                skip_host: true,
                jobs: 2,
                soak: None,
            }))
        );
    }

    #[test]
    fn bench_options() {
        let cmd = parse_str("bench --quick --out /tmp/b --kernel=/k");
        assert_eq!(
            cmd,
            Ok(Cmd::Bench(bench::Options {
                kernel: PathBuf::from("/k"),
                quick: true,
                out: PathBuf::from("/tmp/b"),
                ..bench::Options::default()
            }))
        );
        let Ok(Cmd::Bench(o)) = parse_str("bench --replot") else { panic!() };
        assert!(o.replot && !o.quick && !o.icount);
        assert_eq!(o.out, paths::bench_dir());
        let Ok(Cmd::Bench(o)) = parse_str("bench --icount --cells smp1 --compare /tmp/a") else {
            panic!()
        };
        assert!(o.icount);
        assert_eq!(o.out, paths::bench_icount_dir());
        assert_eq!(o.cells.as_deref(), Some("smp1"));
        assert_eq!(o.compare, Some(PathBuf::from("/tmp/a")));
        assert_eq!(
            parse_str("run --icount").map(|c| matches!(c, Cmd::Run(q) if q.icount)),
            Ok(true)
        );
    }

    #[test]
    fn trace_defaults_and_options() {
        assert_eq!(parse_str("trace"), Ok(Cmd::Trace(trace::Options::default())));
        assert_eq!(
            parse_str("trace --strategy refcount --mmu=hash --smp 4 --out /tmp/t --log /tmp/l"),
            Ok(Cmd::Trace(trace::Options {
                strategy: "refcount".into(),
                mmu: "hash".into(),
                smp: 4,
                out: PathBuf::from("/tmp/t"),
                log: Some(PathBuf::from("/tmp/l")),
                ..trace::Options::default()
            }))
        );
        for bad in [
            "trace --strategy bogus",
            "trace --mmu Radix",
            "trace --smp 1",
            "trace --smp 9",
            "trace --out",
        ] {
            assert!(parse_str(bad).is_err(), "{bad}");
        }
        let msg = Cli::try_parse_from(["harness", "trace", "--strategy", "x"]).unwrap_err();
        assert!(msg.to_string().contains("one of naive, refcount, active"), "{msg}");
    }

    #[test]
    fn ranges_are_enforced_at_both_ends() {
        let max_smp = MAX_SMP.to_string();
        let max_jobs = MAX_JOBS.to_string();
        let max_soak = MAX_SOAK.to_string();
        for (opt, cmd, max) in
            [("smp", "run", &max_smp), ("jobs", "test", &max_jobs), ("soak", "test", &max_soak)]
        {
            assert!(parse_str(&format!("{cmd} --{opt} 1")).is_ok(), "{opt} 1");
            assert!(parse_str(&format!("{cmd} --{opt} {max}")).is_ok(), "{opt} {max}");
            let over = max.parse::<u64>().unwrap() + 1;
            for bad in ["0".to_string(), over.to_string(), "-1".into(), "two".into()] {
                let arg = format!("{cmd} --{opt} {bad}");
                assert!(parse_str(&arg).is_err(), "{arg} parsed");
                assert!(parse_str(&format!("{cmd} --{opt}={bad}")).is_err(), "{arg} parsed");
            }
        }
    }

    #[test]
    fn out_of_range_smp_is_a_clear_error() {
        assert_eq!(parse_str("run --smp 9"), Err(ErrorKind::ValueValidation));
        let err = Cli::try_parse_from(["harness", "cmdline", "--smp=9"]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--smp") && msg.contains(&format!("1..={MAX_SMP}")), "{msg}");
    }

    #[test]
    fn unknown_option_is_rejected() {
        for cmd in ["run", "gdb", "cmdline", "test", "bench", "mutants", "trace", "list"] {
            assert_eq!(parse_str(&format!("{cmd} --bogus")), Err(ErrorKind::UnknownArgument));
        }
        let msg = Cli::try_parse_from(["harness", "run", "--bogus"]).unwrap_err().to_string();
        assert!(msg.contains("--bogus"), "{msg}");
    }

    #[test]
    fn rejects_bad_input() {
        for (bad, kind) in [
            ("frob", ErrorKind::InvalidSubcommand),
            ("run --smp 0", ErrorKind::ValueValidation),
            ("run --smp 9", ErrorKind::ValueValidation),
            ("run --fw ofw", ErrorKind::InvalidValue),
            ("run --smp", ErrorKind::InvalidValue),
            ("run --qemu-extra \"'open\"", ErrorKind::ValueValidation),
            ("run stray", ErrorKind::UnknownArgument),
            ("run --filter x", ErrorKind::UnknownArgument),
            ("test --jobs 3", ErrorKind::ValueValidation),
            ("test --skip-host=yes", ErrorKind::TooManyValues),
            ("test --fw vof", ErrorKind::UnknownArgument),
            ("bench --quick=1", ErrorKind::TooManyValues),
            ("bench --smp 4", ErrorKind::UnknownArgument),
            ("bench --out", ErrorKind::InvalidValue),
            ("list extra", ErrorKind::UnknownArgument),
            ("ksyms", ErrorKind::MissingRequiredArgument),
            ("ksyms a b", ErrorKind::UnknownArgument),
        ] {
            assert_eq!(parse_str(bad), Err(kind), "{bad}");
        }
    }

    /// Every `$(HARNESS) ...` line of the Makefile, with its variables at their defaults and
    /// at typical values, still parses.
    #[test]
    fn makefile_invocations_parse() {
        let makefile = std::fs::read_to_string(paths::workspace_root().join("Makefile")).unwrap();
        let recipes: Vec<&str> =
            makefile.lines().filter_map(|l| l.split_once("$(HARNESS) ").map(|(_, r)| r)).collect();
        assert!(recipes.len() >= 9, "{recipes:?}");
        // Longer patterns first: `$(SMP)` also occurs inside the trace line's `$(if ...)`.
        let defaults = [
            ("$(if $(filter-out file,$(origin SMP)),--smp $(SMP))", ""),
            ("$(STRATEGY)", "active"),
            ("$(MMU)", "radix"),
            ("$(if $(FILTER),--filter $(FILTER))", ""),
            ("$(FW)", "vof"),
            ("$(SMP)", "1"),
            ("$(ARGS)", ""),
            ("$(QEMU_EXTRA)", ""),
            ("$(SOAK_ROUNDS)", "400"),
            ("$(KERNEL)", "target/powerpc64le-unknown-linux-gnu/release/ptfrag"),
            ("$(ICOUNT_FLAG)", ""),
            ("$(BENCH_FLAGS)", ""),
        ];
        let set = [
            ("$(if $(filter-out file,$(origin SMP)),--smp $(SMP))", "--smp 4"),
            ("$(STRATEGY)", "refcount"),
            ("$(MMU)", "radix64"),
            ("$(if $(FILTER),--filter $(FILTER))", "--filter vof-hash"),
            ("$(FW)", "slof"),
            ("$(SMP)", "8"),
            ("$(ARGS)", "mmu=hash selftest=oops"),
            ("$(QEMU_EXTRA)", "-d int,mmu,guest_errors -D qemu.log"),
            ("$(SOAK_ROUNDS)", "100000"),
            ("$(KERNEL)", "/k/ptfrag"),
            ("$(ICOUNT_FLAG)", "--icount"),
            ("$(BENCH_FLAGS)", "--icount --cells smp1"),
        ];
        for vars in [defaults, set] {
            for recipe in &recipes {
                let line = vars.iter().fold(recipe.to_string(), |l, (v, x)| l.replace(v, x));
                assert!(!line.contains("$("), "unexpanded variable in {recipe:?}");
                assert!(parse_str(&line).is_ok(), "{line:?}: {:?}", parse_str(&line));
            }
        }
    }
}
