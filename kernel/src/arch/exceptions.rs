//! Interrupt dispatch (called from boot/vectors.S with the saved state) and the oops path:
//! anything unexpected dumps the registers and a backtrace, then QEMU exits with failure.

use super::paca;
use super::regs::{Dsisr, Msr, Srr1};
use super::trapframe::TrapFrame;
use core::sync::atomic::Ordering;

/// Copies the vector block to real address 0 (AIL=0 vectors, Power ISA v3.0B Book III 7.5)
/// and turns on little-endian interrupts. Run once, after the last firmware call.
pub fn install_vectors() {
    copy_vectors_to(0);
    let rc = super::hcall::set_interrupt_endian_le();
    if rc != super::hcall::H_SUCCESS {
        crate::fatal!("H_SET_MODE(ILE) failed: {rc}");
    }
}

/// Copies the vector block to real address `base` (0 for real-mode interrupts, 0x4000 for
/// AIL=3 relocation-on interrupts at 0xc000000000004000).
pub fn copy_vectors_to(base: u64) {
    unsafe extern "C" {
        static vectors_block: u8;
        static vectors_block_end: u8;
    }
    let start = core::ptr::addr_of!(vectors_block);
    let len = core::ptr::addr_of!(vectors_block_end) as usize - start as usize;
    assert!(base + len as u64 <= 0x1_0000, "vectors must stay in the reserved first frame");
    let dst = super::phys_to_virt(base) as *mut u8;
    // SAFETY: the symbols delimit the assembled vector block; real addresses 0..64K are
    // reserved from the frame allocator for vectors, and the firmware that used them is
    // gone. The linear-map alias is valid in real mode and once translation is on.
    unsafe { core::ptr::copy_nonoverlapping(start, dst, len) };
    flush_icache(dst as u64, len);
}

/// Makes freshly written instructions visible to instruction fetch.
fn flush_icache(start: u64, len: usize) {
    let mut a = start & !127;
    while a < start + len as u64 {
        // SAFETY: dcbst/icbi on kernel-owned memory only write back and invalidate caches.
        unsafe {
            core::arch::asm!("dcbst 0, {0}", "sync", "icbi 0, {0}", in(reg) a, options(nostack))
        };
        a += 128;
    }
    // SAFETY: context synchronisation only.
    unsafe { core::arch::asm!("sync", "isync", options(nostack)) };
}

pub fn vector_name(v: u64) -> &'static str {
    match v {
        0x100 => "system reset",
        0x200 => "machine check",
        0x300 => "data storage",
        0x380 => "data segment",
        0x400 => "instruction storage",
        0x480 => "instruction segment",
        0x500 => "external",
        0x600 => "alignment",
        0x700 => "program",
        0x800 => "FP unavailable",
        0x900 => "decrementer",
        0xc00 => "system call",
        0xf20 => "vector unavailable",
        0xf40 => "VSX unavailable",
        0xf60 => "facility unavailable",
        _ => "unexpected",
    }
}

#[unsafe(no_mangle)]
extern "C" fn exception_entry(tf: &mut TrapFrame) {
    match tf.vector {
        0x900 => crate::arch::smp::timer_interrupt(),
        0x500 => crate::arch::smp::external_interrupt(),
        0x300 | 0x380 | 0x400 | 0x480 => {
            if !handle_page_fault(tf) && !take_expected_fault(tf) {
                oops(tf)
            }
        }
        _ => oops(tf),
    }
}

/// A data storage interrupt on an address-space address while one is active: let the mm
/// fault handler fill in the translation; true if the access can be retried.
fn handle_page_fault(tf: &TrapFrame) -> bool {
    let data = tf.vector == 0x300 || tf.vector == 0x380;
    if !data || !super::uaccess::is_user_addr(tf.dar) {
        return false;
    }
    let p = paca::this();
    let mm = p.current_mm.load(Ordering::Acquire);
    if mm == 0 {
        return false;
    }
    // SAFETY: current_mm is set by mm::activate to an Mm that stays alive while active
    // on this CPU (deactivated before it is torn down).
    let mm = unsafe { &*(mm as *const crate::mm::Mm) };
    let write = Dsisr::from_bits_retain(tf.dsisr).contains(Dsisr::STORE);
    if tf.vector == 0x300 {
        // Like Linux, handle the fault with interrupts enabled if the faulting context had
        // them: it may spin on a page-table lock held by a CPU that waits for this CPU to
        // acknowledge a TLB-flush IPI. SRR0/1 are already saved in `tf`.
        let enable = Msr::from_bits_retain(tf.srr1).contains(Msr::EE);
        if enable {
            super::irq::enable();
        }
        let ok = super::mmu::book3s64::handle_fault(mm, tf.dar, write).is_ok();
        if enable {
            super::irq::disable();
        }
        ok
    } else if !super::mmu::radix_enabled() {
        // Segment miss: any address-space address gets its segment (Linux slb_allocate);
        // whether a VMA covers it is the next (page) fault's business.
        super::mmu::hash::slb_insert(super::mmu::hash::user_segment(mm.pid, tf.dar), &p.slb_next);
        true
    } else {
        false
    }
}

/// If this CPU armed a fixup (`probe_load`, `uaccess`), records the fault and resumes at the
/// instruction after the faulting access; the armed code restores the MSR itself.
fn take_expected_fault(tf: &mut TrapFrame) -> bool {
    let p = paca::this();
    if p.fault_fixup.swap(0, Ordering::AcqRel) == 0 {
        return false;
    }
    p.fault_dar.store(tf.dar, Ordering::Relaxed);
    p.fault_vector.store(tf.vector, Ordering::Release);
    tf.srr0 += 4;
    true
}

/// Loads from `addr` with MSR[DR] on and reports the storage interrupt it causes, if any,
/// as (vector, DAR). With no SLB entry or page table for `addr` this must fault.
pub fn probe_load(addr: u64) -> Option<(u64, u64)> {
    let p = paca::this();
    p.fault_vector.store(0, Ordering::Relaxed);
    let was = super::irq::disable();
    p.fault_fixup.store(1, Ordering::Release);
    load_with_dr(addr);
    let armed = p.fault_fixup.swap(0, Ordering::AcqRel);
    super::irq::restore(was);
    if armed != 0 {
        return None;
    }
    Some((p.fault_vector.load(Ordering::Acquire), p.fault_dar.load(Ordering::Relaxed)))
}

/// `selftest=oops`: the same access without arming the fixup, so it must oops.
pub fn unexpected_fault(addr: u64) {
    load_with_dr(addr);
}

/// One load from `addr` with data translation on; the MSR is restored afterwards whether
/// or not the load faulted.
fn load_with_dr(addr: u64) {
    // SAFETY: between the two mtmsrd's the sequence touches no memory but the probed
    // address; a storage interrupt there either oopses or is resumed at the next
    // instruction by `take_expected_fault`; the final mtmsrd restores the original MSR.
    unsafe {
        core::arch::asm!(
            "mfmsr {m}",
            "ori {t}, {m}, 0x10",
            "mtmsrd {t}",
            "ld {t}, 0({a})",
            "mtmsrd {m}",
            "isync",
            a = in(reg_nonzero) addr,
            m = out(reg) _,
            t = out(reg) _,
            options(nostack)
        );
    }
}

/// The register dump's named bits: the MSR the interrupted code ran with (SRR1), and the
/// cause bits of a storage interrupt (DSISR for data, SRR1's for instructions).
fn print_decoded(tf: &TrapFrame) {
    let msr = Msr::from_bits_truncate(tf.srr1);
    match tf.vector {
        0x300 => crate::println!(
            "  decoded: SRR1 MSR {:?}  DSISR {:?}",
            msr,
            Dsisr::from_bits_truncate(tf.dsisr)
        ),
        0x400 => crate::println!(
            "  decoded: SRR1 MSR {:?}  ISI cause {:?}",
            msr,
            Srr1::from_bits_truncate(tf.srr1)
        ),
        _ => crate::println!("  decoded: SRR1 MSR {:?}", msr),
    }
}

fn oops(tf: &TrapFrame) -> ! {
    crate::console::emergency();
    let cpu = if paca::installed() { paca::cpu_id() as i64 } else { -1 };
    crate::println!(
        "oops: unexpected {} interrupt (vector {:#x}) on cpu {}",
        vector_name(tf.vector),
        tf.vector,
        cpu
    );
    crate::println!(
        "  SRR0 {:#018x}  SRR1 {:#018x}  DAR {:#018x}  DSISR {:#010x}",
        tf.srr0,
        tf.srr1,
        tf.dar,
        tf.dsisr
    );
    print_decoded(tf);
    crate::println!(
        "  LR   {:#018x}  CTR  {:#018x}  CR  {:#010x}  XER {:#x}",
        tf.lr,
        tf.ctr,
        tf.cr,
        tf.xer
    );
    for row in 0..8 {
        let g = &tf.gpr[row * 4..row * 4 + 4];
        crate::println!(
            "  r{:<2} {:#018x} {:#018x} {:#018x} {:#018x}",
            row * 4,
            g[0],
            g[1],
            g[2],
            g[3]
        );
    }
    crate::backtrace::print_from(tf.srr0, tf.lr, tf.gpr[1]);
    crate::exit::failure()
}
