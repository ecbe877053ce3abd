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
    sp.is_multiple_of(16) && sp >= lo && sp + 24 <= hi
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
        let Some(caller) = read_stack(sp) else { break };
        if caller <= sp {
            break;
        }
        match read_stack(caller + 16) {
            Some(ret) if ret != 0 => print_pc(i, ret),
            _ => break,
        }
        sp = caller;
    }
}

/// Backtrace of the calling code.
pub fn print_here() {
    let sp = crate::arch::regs::stack_pointer();
    let caller = read_stack(sp).unwrap_or(0);
    let lr = read_stack(caller + 16).unwrap_or(0);
    print_from(print_here as *const () as u64, lr, caller);
}

/// Reads one doubleword of a kernel stack, if `at` lies in one.
fn read_stack(at: u64) -> Option<u64> {
    if !plausible_sp(at & !15) || !at.is_multiple_of(8) {
        return None;
    }
    // SAFETY: `at` is an aligned address inside .bss, which is always mapped.
    Some(unsafe { *(at as *const u64) })
}
