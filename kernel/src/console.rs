//! The console: the PAPR vty named by /chosen/stdout-path, written with H_PUT_TERM_CHAR.
//! `println!` formats and writes a whole line under one lock, so lines from different CPUs
//! never interleave mid-line.

use crate::arch::hcall::put_term_chars;
use crate::sync::IrqLock;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static TERMNO: AtomicU64 = AtomicU64::new(u64::MAX);
static LOCK: IrqLock<()> = IrqLock::new(());
/// Set by the oops path: write without the lock (another CPU may hold it forever).
static EMERGENCY: AtomicBool = AtomicBool::new(false);

pub fn init(termno: u64) {
    TERMNO.store(termno, Ordering::Relaxed);
}

struct Vty;

impl Write for Vty {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let termno = TERMNO.load(Ordering::Relaxed);
        if termno == u64::MAX {
            return Ok(());
        }
        for chunk in s.as_bytes().chunks(16) {
            // H_BUSY from the vty is retried; anything else drops the chunk.
            for _ in 0..1000 {
                if put_term_chars(termno, chunk) != -2 {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Writes one formatted chunk (normally a whole line) atomically with respect to other CPUs.
pub fn write_fmt(args: fmt::Arguments<'_>) {
    if EMERGENCY.load(Ordering::Relaxed) {
        let _ = Vty.write_fmt(args);
        return;
    }
    let _g = LOCK.lock();
    let _ = Vty.write_fmt(args);
}

/// Stops taking the console lock (for the oops path).
pub fn emergency() {
    EMERGENCY.store(true, Ordering::Relaxed);
}

#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!($($arg)*)) };
}

#[macro_export]
macro_rules! println {
    () => { $crate::console::write_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::write_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}
