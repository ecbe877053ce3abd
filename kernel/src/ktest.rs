//! In-kernel tests on stable Rust: a test is a plain `fn name() -> TestResult`, and
//! `ktest!(name);` after it puts a `KTest` record in the `.ktest` linker section; the runner
//! walks the section, prints `test <name> ... ok` or `... FAILED: <reason>` for each, then
//! the summary line `N passed, M failed` that the harness reads.

use alloc::string::{String, ToString};
use core::fmt::{Display, Write};

pub type TestResult = Result<(), TestError>;

/// Why a test failed: a message for its `FAILED:` line.
///
/// Any error that implements `Display` converts into it, so `?` works on the kernel's own
/// `Result`s (and on `String` and `&str`, e.g. `option.ok_or("no PTE")?`). For that blanket
/// `From` to be coherent with core's `impl<T> From<T> for T`, `TestError` must not implement
/// `Display` itself: read the message with `message()`.
#[derive(Debug)]
pub struct TestError {
    message: String,
}

impl TestError {
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: Display> From<E> for TestError {
    fn from(e: E) -> Self {
        TestError { message: e.to_string() }
    }
}

/// Says what was being done when an error came: `r.context("mmap")?` fails the test with
/// `mmap: <error>`; `with_context(|| format!(..))` builds the words only on an error.
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T, TestError>;
    fn with_context<C: Display>(self, what: impl FnOnce() -> C) -> Result<T, TestError>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, TestError> {
        self.map_err(|e| TestError { message: alloc::format!("{what}: {e}") })
    }
    fn with_context<C: Display>(self, what: impl FnOnce() -> C) -> Result<T, TestError> {
        self.map_err(|e| TestError { message: alloc::format!("{}: {e}", what()) })
    }
}

#[repr(C)]
pub struct KTest {
    pub name: &'static str,
    pub run: fn() -> TestResult,
    /// When the test runs at all.
    pub gate: Gate,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Always,
    /// Only with `selftest=fail`: a test that must fail, proving the harness notices.
    NegativeControl,
    /// Only with `bench=1`: measurements for `make bench`, too slow for every run.
    Bench,
}

/// Registers the test function `name` (a `fn() -> TestResult` in scope):
/// `ktest!(name);`, `ktest!(negative_control name);` or `ktest!(bench name);`.
#[macro_export]
macro_rules! ktest {
    (negative_control $name:ident) => {
        $crate::ktest!(@reg NegativeControl, $name);
    };
    (bench $name:ident) => {
        $crate::ktest!(@reg Bench, $name);
    };
    ($name:ident) => {
        $crate::ktest!(@reg Always, $name);
    };
    (@reg $gate:ident, $name:ident) => {
        const _: () = {
            #[unsafe(link_section = ".ktest")]
            #[used]
            static ENTRY: $crate::ktest::KTest = $crate::ktest::KTest {
                name: stringify!($name),
                run: $name,
                gate: $crate::ktest::Gate::$gate,
            };
        };
    };
}

/// Fails the current test with a formatted reason unless `cond` holds.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            return Err($crate::ktest::TestError::from(alloc::format!($($arg)*)));
        }
    };
}

fn all() -> &'static [KTest] {
    unsafe extern "C" {
        static __ktest_start: u8;
        static __ktest_end: u8;
    }
    // SAFETY: the linker script brackets the .ktest section, which holds only KTest
    // records emitted by `ktest!` (same type, so size and alignment match).
    unsafe {
        let start = core::ptr::addr_of!(__ktest_start).cast::<KTest>();
        let end = core::ptr::addr_of!(__ktest_end).cast::<KTest>();
        let n = (end as usize - start as usize) / core::mem::size_of::<KTest>();
        core::slice::from_raw_parts(start, n)
    }
}

/// Runs the selected tests; returns (passed, failed).
pub fn run_all(filter: Option<&str>, negative_controls: bool, bench: bool) -> (usize, usize) {
    let selected = |t: &&KTest| {
        filter.is_none_or(|f| f.split(',').any(|part| t.name.contains(part)))
            && match t.gate {
                Gate::Always => true,
                Gate::NegativeControl => negative_controls,
                Gate::Bench => bench,
            }
    };
    let n = all().iter().filter(selected).count();
    crate::println!("running {n} tests");
    let (mut passed, mut failed) = (0, 0);
    for t in all().iter().filter(selected) {
        let t0 = crate::arch::timer::now();
        let r = (t.run)();
        // Before the verdict line, so the harness's parse of that line stays as it was.
        crate::println!(
            "ktest: {} took {} ms",
            t.name,
            crate::arch::timer::tb_to_us(crate::arch::timer::now() - t0) / 1000
        );
        match r {
            Ok(()) => {
                passed += 1;
                crate::println!("test {} ... ok", t.name);
            }
            Err(why) => {
                failed += 1;
                crate::println!("test {} ... FAILED: {}", t.name, why.message());
            }
        }
    }
    let mut line = String::new();
    let _ = ptfrag_core::ktest_report::summary_line(passed, failed, &mut line);
    let _ = writeln!(line);
    crate::print!("{line}");
    (passed, failed)
}
