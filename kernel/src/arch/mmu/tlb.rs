//! TLB and page-walk-cache invalidation (Power ISA v3.0B Book III 5.10.1, tlbie/tlbiel).
//! The 5-operand `tlbiel` is emitted as a word because LLVM does not assemble it.

use core::arch::asm;

/// tlbiel RB=r10, RS=r0, RIC=2 (TLB, page-walk cache and process-table caching), PRS=1,
/// R=1: (31<<26) | (2<<18) | (1<<17) | (1<<16) | (10<<11) | (274<<1).
const TLBIEL_ALL_PRS_RIC2_RB10: u32 = 0x7c0b_5224;
/// RB for IS=3 (everything this thread caches for the partition), RB bits 52:53.
const RB_IS_ALL: u64 = 3 << 10;

/// tlbiel RB=r10, RS=r0, RIC=0, PRS=0, R=0 (hash form): (31<<26) | (10<<11) | (274<<1).
const TLBIEL_ALL_HASH_RB10: u32 = 0x7c00_5224;

/// `ptesync; tlbiel; ptesync; isync` with the tlbiel word `$w` (RB = r10 = IS 3, RS = r0).
macro_rules! tlbiel_all {
    ($w:expr) => {
        // SAFETY: tlbiel only invalidates this thread's translation caches; ptesync orders
        // it after earlier page-table stores and isync discards prefetched translations.
        unsafe {
            asm!(
                "ptesync",
                ".long {w}",
                "ptesync",
                "isync",
                w = const $w,
                in("r10") RB_IS_ALL,
                in("r0") 0u64,
                options(nostack)
            )
        }
    };
}

/// Local flushes each CPU has done (`local_flush_all`, the flush IPI included): the test's
/// page-walk-cache model (tests/pwc.rs) drops what a CPU cached when its count moves.
static LOCAL_FLUSHES: [core::sync::atomic::AtomicU64; crate::arch::paca::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; crate::arch::paca::MAX_CPUS];

pub fn local_flushes(cpu: usize) -> u64 {
    LOCAL_FLUSHES[cpu].load(core::sync::atomic::Ordering::Acquire)
}

/// Drops every translation this CPU has cached.
pub fn local_flush_all() {
    if crate::arch::paca::installed() {
        let me = crate::arch::paca::cpu_id();
        LOCAL_FLUSHES[me].fetch_add(1, core::sync::atomic::Ordering::AcqRel);
    }
    if super::radix_enabled() {
        tlbiel_all!(TLBIEL_ALL_PRS_RIC2_RB10);
    } else {
        tlbiel_all!(TLBIEL_ALL_HASH_RB10);
    }
}

/// `tlbie` for one PID (IS=1), RIC=2, PRS=1, R=1, broadcast to every CPU of the partition
/// (needs LPCR[GTSE], which H_REGISTER_PROC_TBL set), then `tlbsync` and `ptesync` so the
/// invalidation is architecturally complete when this returns.
fn tlbie_pid(pid: u32) {
    // RB: IS=1 (bits 52:53 = 0b01). RS: PID in bits 0:31.
    let rb: u64 = 1 << 10;
    let rs: u64 = (pid as u64) << 32;
    // SAFETY: invalidating translations is always safe; the ptesync before orders earlier
    // page-table stores, the eieio/tlbsync/ptesync after wait for every CPU's invalidation.
    unsafe {
        asm!(
            "ptesync",
            "tlbie {rb}, {rs}, 2, 1, 1",
            "eieio",
            "tlbsync",
            "ptesync",
            rb = in(reg) rb,
            rs = in(reg) rs,
            options(nostack)
        );
    }
}

/// Generation of the last cross-CPU flush request, and per-CPU acknowledgements (in the
/// PACA). See `flush_all_cpus`.
static FLUSH_GEN: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static FLUSH_LOCK: crate::sync::Mutex<()> = crate::sync::Mutex::new(());

/// Makes every online CPU drop its cached translations for `pid` before returning.
///
/// Why not `tlbie` alone: under MTTCG, QEMU queues the other vCPUs' TLB flushes as async
/// work that runs at their next translation-block boundary, so another vCPU may still use a
/// stale entry for a short while after `tlbsync; ptesync` has completed here (the reason
/// kvm-unit-tests marks its radix tlbie race test as an expected failure under TCG). So the
/// flusher also sends an IPI to every other online CPU and waits until each has run a local
/// `tlbiel` in its interrupt handler and acknowledged the generation. An interrupt is taken
/// only between translation blocks, so once a CPU has acknowledged, no access of its can use
/// a translation from before the flush.
///
/// Must be called with interrupts enabled (the waiting CPU may have to answer another
/// CPU's flush).
pub fn flush_all_cpus(pid: u32) {
    flush_all_cpus_pids(&[pid]);
}

/// `flush_all_cpus` for several address spaces with one handshake (a collapse unmapping a
/// range from every mm that maps it).
pub fn flush_all_cpus_pids(pids: &[u32]) {
    assert!(crate::arch::irq::enabled(), "flush_all_cpus with interrupts disabled");
    // Hash: the hcalls that removed HPTEs already flushed (asynchronously); guest tlbie is
    // privileged without GTSE, so only the IPI handshake below remains.
    if super::radix_enabled() {
        for &pid in pids {
            tlbie_pid(pid);
        }
    }
    local_flush_all();
    ipi_handshake();
}

/// Linux `serialize_against_pte_lookup()` (book3s64/pgtable.c): returns once every other
/// online CPU has taken an interrupt since the call, so none is still inside a walk it began
/// with interrupts off (the lockless `hash_page`) before the caller changed a PMD. The same
/// handshake as the flush (each CPU also drops its cached translations, which costs nothing
/// here).
// SAFETY: `serialize_against_pte_lookup` is the only symbol of that name in the kernel (Linux's
// name, so that `break serialize_against_pte_lookup` works in gdb); never inlined.
#[unsafe(export_name = "serialize_against_pte_lookup")]
#[inline(never)]
pub fn serialize_against_pte_lookup() {
    assert!(crate::arch::irq::enabled(), "serialize_against_pte_lookup with interrupts disabled");
    ipi_handshake();
}

/// Whether another CPU waits for this one to answer a flush or serialize IPI.
pub fn ipi_waiting_for_this_cpu() -> bool {
    use core::sync::atomic::Ordering;
    let p = crate::arch::paca::this();
    FLUSH_GEN.load(Ordering::Acquire) > p.tlb_flush_ack.load(Ordering::Acquire)
}

/// Sends every other online CPU the flush IPI and waits until each has acknowledged it.
fn ipi_handshake() {
    use crate::arch::{paca, smp, timer, xics};
    use core::sync::atomic::Ordering;
    let _g = FLUSH_LOCK.lock();
    let gen = FLUSH_GEN.fetch_add(1, Ordering::AcqRel) + 1;
    let me = paca::cpu_id();
    let n = smp::nr_online();
    paca::this().tlb_flush_ack.store(gen, Ordering::Release);
    let others = (0..n).filter(|&c| c != me).fold(0u64, |m, c| m | 1 << c);
    crate::trace::record(crate::trace::Kind::FlushStart, gen, others);
    for cpu in (0..n).filter(|&c| c != me) {
        xics::send_ipi(paca::get(cpu).server);
    }
    for cpu in (0..n).filter(|&c| c != me) {
        let t0 = timer::now();
        while paca::get(cpu).tlb_flush_ack.load(Ordering::Acquire) < gen {
            if timer::tb_to_us(timer::now() - t0) > 5_000_000 {
                crate::fatal!("cpu {cpu} did not acknowledge TLB flush {gen} within 5 s");
            }
            crate::arch::smp::relax();
        }
    }
    crate::trace::record(crate::trace::Kind::FlushEnd, gen, 0);
}

/// IPI side of `flush_all_cpus`: flush locally and acknowledge every pending generation.
pub fn handle_flush_ipi() {
    use crate::arch::paca;
    use core::sync::atomic::Ordering;
    let gen = FLUSH_GEN.load(Ordering::Acquire);
    let me = paca::this();
    if me.tlb_flush_ack.load(Ordering::Relaxed) < gen {
        local_flush_all();
        me.tlb_flush_ack.store(gen, Ordering::Release);
        crate::trace::record(crate::trace::Kind::FlushIpi, gen, 0);
    }
}
