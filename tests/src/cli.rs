//! Command-line parsing for the `harness` binary: clap's derive API, `--opt value` or
//! `--opt=value`. `Cli` is what clap parses; `Cli::into_cmd` turns it into the `Cmd` the rest of
//! the harness runs (`QemuConfig`, `suite::Options`, ...), so clap stays in this file.

use crate::bench;
use crate::mutants;
use crate::paths;
use crate::qemu::{split_words, Firmware, QemuConfig, MAX_SMP};
use crate::suite::{self, MAX_JOBS};
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
    /// vCPUs 1,4 and address spaces 1,10,100 only, 2 collapse rounds (default: vCPUs 1,2,4,8,
    /// address spaces 1,10,100,1000, 4 rounds)
    #[arg(long)]
    quick: bool,
    /// Where results.json, results.csv, *.svg and logs/ go
    #[arg(long, value_name = "DIR", default_value_os_t = paths::bench_dir(),
          allow_hyphen_values = true)]
    out: PathBuf,
    /// No boots: redo the tables, CSV and plots from DIR/results.json
    #[arg(long)]
    replot: bool,
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
                out: b.out,
                replot: b.replot,
            }),
            Command::Mutants(m) => {
                Cmd::Mutants(mutants::Options { quick: m.quick, filter: m.filter })
            }
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
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    /// Parses `s` split like a shell, after the program name.
    fn parse_str(s: &str) -> Result<Cmd, ErrorKind> {
        let args = split_words(s).unwrap();
        Cli::try_parse_from(std::iter::once("harness".to_string()).chain(args))
            .map(Cli::into_cmd)
            .map_err(|e| e.kind())
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
    fn run_defaults() {
        let Ok(Cmd::Run(c)) = parse_str("run") else { panic!() };
        assert_eq!((c.fw, c.smp, c.bootargs.as_str()), (Firmware::Vof, 1, ""));
        assert_eq!(c.kernel, paths::default_kernel());
        assert!(c.extra.is_empty());
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
    fn empty_args_value_is_allowed() {
        let Ok(Cmd::Cmdline(c)) = parse_str("cmdline --args '' --qemu-extra ''") else { panic!() };
        assert_eq!(c.bootargs, "");
        assert!(c.extra.is_empty());
        let Ok(Cmd::Cmdline(c)) = parse_str("cmdline --args=") else { panic!() };
        assert_eq!(c.bootargs, "");
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
        assert_eq!(parse_str("bench"), Ok(Cmd::Bench(bench::Options::default())));
        let cmd = parse_str("bench --quick --out /tmp/b --kernel=/k");
        assert_eq!(
            cmd,
            Ok(Cmd::Bench(bench::Options {
                kernel: PathBuf::from("/k"),
                quick: true,
                out: PathBuf::from("/tmp/b"),
                replot: false,
            }))
        );
        let Ok(Cmd::Bench(o)) = parse_str("bench --replot") else { panic!() };
        assert!(o.replot && !o.quick);
        assert_eq!(o.out, paths::bench_dir());
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
        assert_eq!(parse_str(""), Ok(Cmd::Help));
        assert_eq!(parse_str("list"), Ok(Cmd::List));
    }
}
