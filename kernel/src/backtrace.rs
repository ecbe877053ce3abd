//! Stack backtraces for the oops and panic paths. ELFv2 frames keep a back chain at 0(r1)
//! and the callee saves LR at 16 bytes into its caller's frame. Symbol names come from the
//! `.ksyms` table that `make` writes into the image after linking (see ksyms.rs).

use crate::println;

unsafe extern "C" {
    static __bss_start: u8;
    static __bss_end: u8;
}

/// Kernel stacks all live in .bss; a frame pointer outside it ends the walk.
fn plausible_sp(sp: u64) -> bool {
    let (lo, hi) = (core::ptr::addr_of!(__bss_start) as u64, core::ptr::addr_of!(__bss_end) as u64);
    sp % 16 == 0 && sp >= lo && sp + 24 <= hi
}

fn print_pc(i: usize, pc: u64) {
    match crate::ksyms::lookup(pc) {
        Some((name, off)) => println!("  #{i:<2} {pc:#018x} {name}+{off:#x}"),
        None => println!("  #{i:<2} {pc:#018x}"),
    }
}

/// Prints the interrupted PC, the link register, then the return addresses along the back
/// chain starting at stack pointer `sp`.
pub fn print_from(pc: u64, lr: u64, sp: u64) {
    println!("backtrace:");
    print_pc(0, pc);
    print_pc(1, lr);
    let mut sp = sp;
    for i in 2..32 {
        if !plausible_sp(sp) {
            break;
        }
        // SAFETY: sp lies inside .bss (checked), which is mapped and 8-byte aligned.
        let caller = unsafe { *(sp as *const u64) };
        if caller <= sp || !plausible_sp(caller) {
            break;
        }
        // SAFETY: as above, for the caller's frame.
        let ret = unsafe { *((caller + 16) as *const u64) };
        if ret == 0 {
            break;
        }
        print_pc(i, ret);
        sp = caller;
    }
}

/// Backtrace of the calling code.
pub fn print_here() {
    let sp = crate::arch::regs::stack_pointer();
    // SAFETY: sp is the live stack pointer; the first frame's back chain is valid.
    let caller = if plausible_sp(sp) { unsafe { *(sp as *const u64) } } else { 0 };
    let lr = if plausible_sp(caller) {
        // SAFETY: caller frame checked above.
        unsafe { *((caller + 16) as *const u64) }
    } else {
        0
    };
    print_from(print_here as usize as u64, lr, caller);
}
