//! Fatal errors: `fatal!` for conditions the kernel detects, the panic handler for the rest.
//! Both print a `FATAL:` line (the harness looks for it), a backtrace, and exit with failure.

#[macro_export]
macro_rules! fatal {
    ($($arg:tt)*) => {{
        $crate::console::emergency();
        $crate::println!("FATAL: {}", format_args!($($arg)*));
        $crate::backtrace::print_here();
        $crate::exit::failure()
    }};
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::console::emergency();
    let cpu = if crate::arch::paca::installed() { crate::arch::paca::cpu_id() as i64 } else { -1 };
    crate::println!("FATAL: panic on cpu {cpu}: {info}");
    crate::backtrace::print_here();
    crate::exit::failure()
}

/// The prebuilt `alloc` for this target was compiled with unwinding and references these;
/// with `panic = "abort"` they are never reached.
#[unsafe(no_mangle)]
extern "C" fn _Unwind_Resume() -> ! {
    crate::fatal!("_Unwind_Resume called with panic=abort")
}

#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}
