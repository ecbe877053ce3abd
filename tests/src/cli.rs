//! Command-line parsing for the `harness` binary (std only: `--opt value` or `--opt=value`).

use crate::bench;
use crate::mutants;
use crate::paths;
use crate::qemu::{split_words, Firmware, QemuConfig, MAX_SMP};
use crate::suite::{self, MAX_JOBS};
use std::path::PathBuf;

pub const USAGE: &str = "\
usage: harness <command> [options]

commands:
  run     boot QEMU on this terminal (replaces the harness with QEMU)      [make run]
  gdb     boot QEMU halted with -s -S and attach gdb-multiarch              [make gdb]
  cmdline print the QEMU command line run/gdb would use
  test    host unit tests, then every QEMU scenario                         [make test]
  bench   the retract benchmark: {radix,hash} x vCPUs x address spaces      [make bench]
  mutants build and boot every mutant of the catalogue, table of verdicts  [make mutants]
  list    print the scenario table
  ksyms ELF  write ELF's symbol table into its .ksyms section (make kernel does this)

run, gdb, cmdline options:
  --fw vof|slof         firmware (default vof)
  --smp N               vCPUs, 1..8 (default 1)
  --args \"...\"          kernel command line (default empty)
  --kernel PATH         kernel ELF (default target/powerpc64le-unknown-linux-gnu/release/ptfrag)
  --qemu-extra \"...\"    more QEMU arguments, split like a shell, e.g. \"-d int,mmu -D q.log\"

test options:
  --kernel PATH         kernel ELF (same default)
  --filter SUBSTR       only scenarios whose name contains SUBSTR
  --skip-host           skip the host unit tests
  --soak N              only the retract matrix, N collapse rounds each (make soak)
  --jobs N              scenarios at once, 1..2 (default 1)

mutants options (tests/src/mutants/catalogue.rs; copy of the tree in target/mutants):
  --quick               only the cheap mutants make test also runs
  --filter SUBSTR       only mutants whose name contains SUBSTR

bench options (one boot per cell, 2 at a time; every strategy runs in each boot):
  --kernel PATH         kernel ELF (same default)
  --quick               vCPUs 1,4 and address spaces 1,10,100 only, 2 collapse rounds
                        (default: vCPUs 1,2,4,8, address spaces 1,10,100,1000, 4 rounds)
  --out DIR             results.json, results.csv, *.svg and logs/ (default target/bench)
  --replot              no boots: redo the tables, CSV and plots from DIR/results.json
";

#[derive(Debug, PartialEq, Eq)]
pub enum Cmd {
    Run(QemuConfig),
    Gdb(QemuConfig),
    Cmdline(QemuConfig),
    Test(suite::Options),
    Bench(bench::Options),
    Mutants(mutants::Options),
    List,
    Ksyms(std::path::PathBuf),
    Help,
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Cmd, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Ok(Cmd::Help);
    };
    match cmd.as_str() {
        "run" => qemu_options(rest).map(Cmd::Run),
        "gdb" => qemu_options(rest).map(Cmd::Gdb),
        "cmdline" => qemu_options(rest).map(Cmd::Cmdline),
        "test" => test_options(rest).map(Cmd::Test),
        "bench" => bench_options(rest).map(Cmd::Bench),
        "mutants" => mutants_options(rest).map(Cmd::Mutants),
        "list" if rest.is_empty() => Ok(Cmd::List),
        "ksyms" if rest.len() == 1 => Ok(Cmd::Ksyms(rest[0].clone().into())),
        "help" | "-h" | "--help" => Ok(Cmd::Help),
        _ => Err(format!("unknown command {cmd:?}")),
    }
}

/// Walks `--name value` / `--name=value` / `--flag` options.
struct Opts<'a> {
    args: std::slice::Iter<'a, String>,
}

impl<'a> Opts<'a> {
    /// The next option's name and inline value, if any.
    fn next(&mut self) -> Option<Result<(&'a str, Option<&'a str>), String>> {
        let arg = self.args.next()?;
        let Some(opt) = arg.strip_prefix("--") else {
            return Some(Err(format!("unexpected argument {arg:?}")));
        };
        Some(Ok(match opt.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (opt, None),
        }))
    }

    fn value(&mut self, name: &str, inline: Option<&'a str>) -> Result<&'a str, String> {
        inline
            .or_else(|| self.args.next().map(String::as_str))
            .ok_or_else(|| format!("--{name} needs a value"))
    }
}

fn number(name: &str, value: &str, max: usize) -> Result<usize, String> {
    match value.parse() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("--{name} must be 1..={max}, not {value:?}")),
    }
}

fn no_value(name: &str, inline: Option<&str>) -> Result<(), String> {
    inline.map_or(Ok(()), |_| Err(format!("--{name} takes no value")))
}

fn qemu_options(args: &[String]) -> Result<QemuConfig, String> {
    let mut config = QemuConfig {
        fw: Firmware::Vof,
        smp: 1,
        bootargs: String::new(),
        kernel: paths::default_kernel(),
        extra: Vec::new(),
    };
    let mut opts = Opts { args: args.iter() };
    while let Some(opt) = opts.next() {
        let (name, inline) = opt?;
        let value = opts.value(name, inline)?;
        match name {
            "fw" => config.fw = Firmware::parse(value)?,
            "smp" => config.smp = number(name, value, MAX_SMP as usize)? as u32,
            "args" => config.bootargs = value.to_string(),
            "kernel" => config.kernel = PathBuf::from(value),
            "qemu-extra" => config.extra.extend(split_words(value)?),
            _ => return Err(format!("unknown option --{name}")),
        }
    }
    Ok(config)
}

fn test_options(args: &[String]) -> Result<suite::Options, String> {
    let mut options = suite::Options {
        kernel: paths::default_kernel(),
        filter: None,
        skip_host: false,
        jobs: 1,
        soak: None,
    };
    let mut opts = Opts { args: args.iter() };
    while let Some(opt) = opts.next() {
        match opt? {
            ("skip-host", inline) => {
                no_value("skip-host", inline)?;
                options.skip_host = true;
            }
            ("kernel", inline) => options.kernel = PathBuf::from(opts.value("kernel", inline)?),
            ("filter", inline) => options.filter = Some(opts.value("filter", inline)?.into()),
            ("jobs", inline) => {
                options.jobs = number("jobs", opts.value("jobs", inline)?, MAX_JOBS)?
            }
            ("soak", inline) => {
                options.soak = Some(number("soak", opts.value("soak", inline)?, 100_000)? as u32)
            }
            (name, _) => return Err(format!("unknown option --{name}")),
        }
    }
    Ok(options)
}

fn bench_options(args: &[String]) -> Result<bench::Options, String> {
    let mut options = bench::Options::default();
    let mut opts = Opts { args: args.iter() };
    while let Some(opt) = opts.next() {
        match opt? {
            ("quick", inline) => {
                no_value("quick", inline)?;
                options.quick = true;
            }
            ("replot", inline) => {
                no_value("replot", inline)?;
                options.replot = true;
            }
            ("kernel", inline) => options.kernel = PathBuf::from(opts.value("kernel", inline)?),
            ("out", inline) => options.out = PathBuf::from(opts.value("out", inline)?),
            (name, _) => return Err(format!("unknown option --{name}")),
        }
    }
    Ok(options)
}

fn mutants_options(args: &[String]) -> Result<mutants::Options, String> {
    let mut options = mutants::Options { quick: false, filter: None };
    let mut opts = Opts { args: args.iter() };
    while let Some(opt) = opts.next() {
        match opt? {
            ("quick", inline) => {
                no_value("quick", inline)?;
                options.quick = true;
            }
            ("filter", inline) => options.filter = Some(opts.value("filter", inline)?.into()),
            (name, _) => return Err(format!("unknown option --{name}")),
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutants_options() {
        assert_eq!(
            parse_str("mutants --quick --filter rcu_"),
            Ok(Cmd::Mutants(mutants::Options { quick: true, filter: Some("rcu_".into()) }))
        );
        assert!(parse_str("mutants --bogus").is_err());
    }

    fn parse_str(s: &str) -> Result<Cmd, String> {
        parse(&split_words(s).unwrap())
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
        let Ok(Cmd::Cmdline(c)) = parse_str("cmdline --args ''") else { panic!() };
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
        for bad in [
            "frob",
            "run --smp 0",
            "run --smp 9",
            "run --fw ofw",
            "run --smp",
            "run stray",
            "run --filter x",
            "test --jobs 3",
            "test --skip-host=yes",
            "test --fw vof",
            "bench --quick=1",
            "bench --smp 4",
            "bench --out",
            "list extra",
        ] {
            assert!(parse_str(bad).is_err(), "{bad} parsed");
        }
        assert_eq!(parse_str(""), Ok(Cmd::Help));
        assert_eq!(parse_str("list"), Ok(Cmd::List));
    }
}
