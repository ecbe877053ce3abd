//! `harness`: the host side of ptfrag. It builds the one QEMU command line (`run`, `gdb`) and
//! runs the whole test suite (`test`): host unit tests, then QEMU scenarios whose serial logs
//! are checked line by line; `bench` boots the retract benchmark matrix and plots it. See
//! `harness help`.

mod bench;
mod check;
mod cli;
#[cfg(test)]
mod ensure_deps;
#[cfg(test)]
mod fakekernel;
mod figures;
mod gdb;
mod gdbsmoke;
mod hosttests;
mod ksyms;
mod log;
mod mutants;
mod paths;
mod qemu;
mod runner;
mod scenario;
mod suite;
mod trace;
#[cfg(test)]
mod unsafe_places;

use clap::{CommandFactory, Parser};
use cli::{Cli, Cmd};
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Bad arguments: clap prints the error and a usage line to stderr and exits 2; `help`,
    // `-h` and `--help` print the help to stdout and exit 0.
    match Cli::parse().into_cmd() {
        Cmd::Help => {
            if let Err(e) = Cli::command().print_help() {
                eprintln!("harness: {e}");
                return ExitCode::FAILURE;
            }
        }
        Cmd::List => list(),
        Cmd::Ksyms(elf) => match ksyms::patch(&elf) {
            Ok(n) => println!("ksyms: {n} symbols written into {}", elf.display()),
            Err(e) => {
                eprintln!("harness ksyms: {e}");
                return ExitCode::FAILURE;
            }
        },
        Cmd::Cmdline(config) => println!("{}", config.display()),
        Cmd::Run(config) => {
            if !config.kernel.is_file() {
                eprintln!("harness: kernel not found at {}", config.kernel.display());
                return ExitCode::FAILURE;
            }
            let err = config.command().exec();
            eprintln!("harness: cannot start {}: {err}", qemu::QEMU);
            return ExitCode::FAILURE;
        }
        Cmd::Gdb(config) => {
            eprintln!("harness: {}", gdb::run(config));
            return ExitCode::FAILURE;
        }
        Cmd::Test(options) => {
            if !suite::run(&options) {
                return ExitCode::FAILURE;
            }
        }
        Cmd::Mutants(options) => {
            if !mutants::run(&options) {
                return ExitCode::FAILURE;
            }
        }
        Cmd::Bench(options) => {
            if !bench::run(&options) {
                return ExitCode::FAILURE;
            }
        }
        Cmd::Trace(options) => {
            if !trace::run(&options) {
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn list() {
    for s in scenario::SCENARIOS {
        println!(
            "{:<20} fw={:<4} smp={} timeout={}s expect={:?} args={:?} extra_required={:?}{}",
            s.name,
            s.fw,
            s.smp,
            s.timeout.as_secs(),
            s.expect,
            s.bootargs,
            s.extra_required,
            if s.trace { " trace-checked" } else { "" }
        );
    }
    println!("required on success: {}", scenario::REQUIRED_TESTS.join(" "));
}
