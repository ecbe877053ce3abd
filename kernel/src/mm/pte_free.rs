//! The kernel side of `pte_free_defer()`: the strategy chosen with `pte_free_defer=`
//! (ptfrag_core::pte_free_defer) running over the kernel's frames, page descriptors and RCU.
//! A page's single `rcu_head` is `desc(page).rcu_head`; its callback finds the page again
//! from the head's address (Linux's container_of on struct page). Every misuse a strategy
//! reports (the `naive` double call_rcu above all) is printed as a BUG and counted.

use super::frame;
use super::pgalloc::KernelPages;
use crate::arch::paca::MAX_CPUS;
use crate::trace::Kind as TraceKind;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use ptfrag_core::frame_alloc::FRAME_SIZE;
use ptfrag_core::gp_oracle::{GpOracle, GpWaitCounts, GpWaits, OracleError, OracleSlot};
use ptfrag_core::page_desc::{PageDesc, RcuHead};
use ptfrag_core::pgtable_frag::{frag_index, FragCache, FragGeometry, PageSource};
use ptfrag_core::pgtable_t::{DetachedTable, PgTable, PtPage};
use ptfrag_core::pte_free_defer::{
    BitmapSide, DeferCounts, DeferEnv, DeferError, DeferStats, Strategy,
};
use ptfrag_core::rcu::RcuError;

/// Everything the kernel keeps for `pte_free_defer()`, in one value: the strategy, its
/// counters and preallocated side state, the grace-period oracle, and the defer-to-free
/// latency figure. One static, `STATE`; everything in it is atomic or set once at boot,
/// because RCU callbacks read it from the tick, which may interrupt any code on the CPU.
struct PteFreeState {
    /// The strategy in force, as an index into `Strategy::CHOICES`.
    strategy: AtomicU8,
    stats: DeferStats,
    /// `bitmap`'s side state, one per frame.
    sides: spin::Once<&'static [BitmapSide]>,
    /// The PTE fragment geometry of the MMU mode (known before the MMU is on).
    geo: spin::Once<FragGeometry>,
    /// Misuses reported by the strategies (double call_rcu, double free, ...).
    bugs: AtomicU64,
    double_queue: AtomicU64,
    oracle: OracleState,
    latency: DeferLatency,
    reclaim: Reclaim,
}

/// Time each CPU spent reclaiming deferred page-table pages: running their RCU callbacks
/// (which free pages after a grace period, or queue the head again) and really freeing pages
/// from `pte_free_defer` itself (`none`), poison fill included; not the plain frees of
/// teardown (`pte_free`, `pte_frag_destroy`). The same account for every strategy, so the
/// bench can take the free out of the retract's time and charge it per freed page.
struct Reclaim {
    time: [AtomicU64; MAX_CPUS],
    /// Nesting of reclaim work on each CPU (a free inside a callback is already in its time).
    nesting: [AtomicU64; MAX_CPUS],
    /// Of `time`: oracle reports printed meanwhile (only `none`'s early frees print, and a
    /// console line costs more than the free).
    reports: [AtomicU64; MAX_CPUS],
}

/// The grace-period oracle's slots (one per PTE fragment of every frame), whether it is on
/// (`rcu_check=`), the tables it caught freed before their grace period (or misused), and how
/// long the deferred tables waited (grace periods and time, taken per workload).
struct OracleState {
    slots: spin::Once<&'static [OracleSlot]>,
    enabled: AtomicBool,
    bugs: AtomicU64,
    waits: GpWaits,
}

/// Oracle reports printed in full; later ones are counted only (the `none` control of
/// `make bench` frees every page early, hundreds of times a boot).
const ORACLE_REPORTS_PRINTED: u64 = 16;

/// Timebase of each page's last deferral (0 = none), and the sum, maximum and count of
/// deferral-to-free times since the figure was last taken.
struct DeferLatency {
    last_defer: spin::Once<&'static [AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
    n: AtomicU64,
}

static STATE: PteFreeState = PteFreeState {
    strategy: AtomicU8::new(2),
    stats: DeferStats::new(),
    sides: spin::Once::new(),
    geo: spin::Once::new(),
    bugs: AtomicU64::new(0),
    double_queue: AtomicU64::new(0),
    oracle: OracleState {
        slots: spin::Once::new(),
        enabled: AtomicBool::new(false),
        bugs: AtomicU64::new(0),
        waits: GpWaits::new(),
    },
    latency: DeferLatency {
        last_defer: spin::Once::new(),
        sum: AtomicU64::new(0),
        max: AtomicU64::new(0),
        n: AtomicU64::new(0),
    },
    reclaim: Reclaim {
        time: [const { AtomicU64::new(0) }; MAX_CPUS],
        nesting: [const { AtomicU64::new(0) }; MAX_CPUS],
        reports: [const { AtomicU64::new(0) }; MAX_CPUS],
    },
};

/// Timebase this CPU has spent reclaiming page-table pages since boot (see `Reclaim`),
/// without the oracle's reports. Read it where the CPU does no reclaim work.
pub fn reclaim_time(cpu: usize) -> u64 {
    let r = &STATE.reclaim;
    match (r.time.get(cpu), r.reports.get(cpu)) {
        (Some(t), Some(p)) => t.load(Ordering::Relaxed).saturating_sub(p.load(Ordering::Relaxed)),
        _ => 0,
    }
}

/// The same, summed over every CPU.
pub fn reclaim_time_all() -> u64 {
    (0..MAX_CPUS).map(reclaim_time).sum()
}

/// This CPU's reclaim time with the oracle's reports inside it: what a timed region of the
/// CPU leaves out to charge neither the free nor the report to itself.
pub fn reclaim_and_report_time(cpu: usize) -> u64 {
    STATE.reclaim.time.get(cpu).map_or(0, |t| t.load(Ordering::Relaxed))
}

/// Runs `f` as reclaim work of this CPU: its time goes to the CPU's account unless reclaim
/// work around it (a callback freeing a page, or a free the tick interrupted to run
/// callbacks) already counts it.
fn reclaiming<R>(f: impl FnOnce() -> R) -> R {
    let cpu = crate::arch::paca::cpu_id();
    let (Some(time), Some(nest)) = (STATE.reclaim.time.get(cpu), STATE.reclaim.nesting.get(cpu))
    else {
        return f();
    };
    let outer = nest.fetch_add(1, Ordering::Relaxed) == 0;
    let t0 = crate::arch::timer::now();
    let r = f();
    if outer {
        time.fetch_add(crate::arch::timer::now() - t0, Ordering::Relaxed);
    }
    nest.fetch_sub(1, Ordering::Relaxed);
    r
}

/// Runs `f`, a plain free, outside the reclaim account: a real free inside it is not counted
/// (nor, rarely, callbacks a tick runs meanwhile).
fn not_reclaim<R>(f: impl FnOnce() -> R) -> R {
    let cpu = crate::arch::paca::cpu_id();
    let Some(nest) = STATE.reclaim.nesting.get(cpu) else {
        return f();
    };
    nest.fetch_add(1, Ordering::Relaxed);
    let r = f();
    nest.fetch_sub(1, Ordering::Relaxed);
    r
}

fn store_strategy(st: Strategy) {
    STATE.strategy.store(st.index() as u8, Ordering::Release);
    crate::debuginfo::set(crate::debuginfo::Field::Strategy, st.index() as u64);
}

/// Frames for `n` values of `T`, allocated once at boot and never freed, each set to `init()`.
fn prealloc<T>(n: usize, what: &str, init: impl Fn() -> T) -> &'static [T] {
    let bytes = n * core::mem::size_of::<T>();
    let frames = bytes.div_ceil(FRAME_SIZE as usize).max(1);
    let pa = match frame::alloc_contig(frames, 1) {
        Ok(pa) => pa,
        Err(e) => crate::fatal!("no memory for {n} {what}: {e}"),
    };
    let ptr = crate::arch::phys_to_virt(pa) as *mut T;
    for i in 0..n {
        // SAFETY: the frames were just allocated for this array, are suitably aligned (64K)
        // and are never freed.
        unsafe { ptr.add(i).write(init()) };
    }
    // SAFETY: initialised above; lives for the kernel's lifetime.
    unsafe { core::slice::from_raw_parts(ptr, n) }
}

/// PTE tables' fragment geometry: 4K fragments, 16 per page (radix64: 256 bytes, 256).
pub fn pte_frag_geometry() -> &'static FragGeometry {
    STATE.geo.get().expect("pte_free::init not called")
}

/// Chooses the strategy, preallocates `bitmap`'s side state (one per frame) and, with
/// `rcu_check`, the grace-period oracle's slots (one per PTE fragment of every frame, `geo`
/// being the PTE fragments of the MMU mode).
pub fn init(strategy: Strategy, rcu_check: bool, geo: FragGeometry) {
    store_strategy(strategy);
    STATE.geo.call_once(|| geo);
    if rcu_check {
        let n = GpOracle::slots_for(frame::nr_frames(), &geo);
        STATE.oracle.slots.call_once(|| prealloc(n, "grace-period oracle slots", OracleSlot::new));
        STATE.oracle.enabled.store(true, Ordering::Release);
    }
    let n = frame::nr_frames();
    STATE.sides.call_once(|| prealloc(n, "bitmap side structs", BitmapSide::new));
    let lat: alloc::vec::Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    STATE.latency.last_defer.call_once(|| alloc::boxed::Box::leak(lat.into_boxed_slice()));
}

/// The oracle, when `rcu_check` is on.
pub fn oracle() -> Option<GpOracle<'static>> {
    if !STATE.oracle.enabled.load(Ordering::Acquire) {
        return None;
    }
    STATE
        .oracle
        .slots
        .get()
        .map(|s| GpOracle::new(s, *pte_frag_geometry()).with_waits(&STATE.oracle.waits))
}

/// Whether the oracle is on.
pub fn rcu_check_enabled() -> bool {
    STATE.oracle.enabled.load(Ordering::Acquire)
}

/// Oracle reports since boot.
pub fn oracle_bugs() -> u64 {
    STATE.oracle.bugs.load(Ordering::Relaxed)
}

/// How long the deferred tables really freed since the last call waited (grace periods and
/// timebase), then reset.
pub fn take_gp_waits() -> GpWaitCounts {
    STATE.oracle.waits.take()
}

fn oracle_report(e: OracleError, also: usize) {
    let n = STATE.oracle.bugs.fetch_add(1, Ordering::Relaxed);
    STATE.bugs.fetch_add(1, Ordering::Relaxed);
    if n >= ORACLE_REPORTS_PRINTED {
        return;
    }
    let cpu = crate::arch::paca::cpu_id();
    let t0 = crate::arch::timer::now();
    print_oracle_report(e, also, n);
    // Inside reclaim work (a free the oracle caught), the line is not the free's cost.
    let r = &STATE.reclaim;
    if let (Some(p), Some(nest)) = (r.reports.get(cpu), r.nesting.get(cpu)) {
        if nest.load(Ordering::Relaxed) != 0 {
            p.fetch_add(crate::arch::timer::now() - t0, Ordering::Relaxed);
        }
    }
}

fn print_oracle_report(e: OracleError, also: usize, n: u64) {
    let more = if also > 1 { alloc::format!(" ({also} fragments of the page)") } else { "".into() };
    crate::println!(
        "BUG: rcu_check: {e}{more}; strategy {} on cpu {}",
        strategy().name(),
        crate::arch::paca::this().index
    );
    if n + 1 == ORACLE_REPORTS_PRINTED {
        crate::println!("rcu_check: further reports are counted, not printed");
    }
}

/// Called by the page-table page allocator (`KernelPages::free_page`) on every real free of
/// a page-table page, before it is poisoned: each deferred fragment's grace period must
/// have completed.
pub fn oracle_check_page_free(page: u64) {
    if let Some(o) = oracle() {
        let now = crate::arch::timer::now();
        if let Err((e, n)) = o.check_page_free(page, crate::rcu::completed(), now) {
            oracle_report(e, n);
        }
    }
}

fn last_defer(page: u64) -> Option<&'static AtomicU64> {
    STATE.latency.last_defer.get()?.get((page / FRAME_SIZE) as usize)
}

/// Mean and max microseconds from a page's last deferral to its real free, since the last
/// call (then reset).
pub fn take_defer_to_free_us() -> (u64, u64) {
    let n = STATE.latency.n.swap(0, Ordering::Relaxed);
    let sum = STATE.latency.sum.swap(0, Ordering::Relaxed);
    let max = STATE.latency.max.swap(0, Ordering::Relaxed);
    let us = crate::arch::timer::tb_to_us;
    (sum.checked_div(n).map_or(0, us), us(max))
}

/// Address of `bitmap`'s side-state array, for the debugger.
pub fn sides_addr() -> u64 {
    STATE.sides.get().map_or(0, |s| s.as_ptr() as u64)
}

pub fn strategy() -> Strategy {
    Strategy::CHOICES[STATE.strategy.load(Ordering::Acquire) as usize % Strategy::CHOICES.len()]
}

/// Switches strategy between workloads (`retract_bench`). Refused while any page-table
/// page still waits for a grace period: its state belongs to the old strategy.
pub fn set_strategy(st: Strategy) -> Result<(), &'static str> {
    crate::rcu::rcu_barrier();
    if STATE.stats.waiting.load(Ordering::Acquire) != 0 || crate::rcu::pending() != 0 {
        return Err("page-table pages still wait for a grace period");
    }
    store_strategy(st);
    Ok(())
}

/// Restarts the peak of pages waiting for a grace period (one figure per workload).
pub fn reset_peak() {
    STATE.stats.waiting_peak.store(STATE.stats.waiting.load(Ordering::Relaxed), Ordering::Relaxed);
}

pub fn stats() -> DeferCounts {
    STATE.stats.snapshot()
}

pub fn bugs() -> u64 {
    STATE.bugs.load(Ordering::Relaxed)
}

/// Double call_rcu reports (the `naive` bug).
pub fn double_queues() -> u64 {
    STATE.double_queue.load(Ordering::Relaxed)
}

pub struct KernelEnv;

impl PageSource for KernelEnv {
    fn alloc_page(&self) -> Option<u64> {
        KernelPages.alloc_page()
    }
    fn free_page(&self, page: PtPage) {
        crate::trace::record(TraceKind::Free, page.pa(), 0);
        if let Some(t) = last_defer(page.pa()) {
            let t0 = t.swap(0, Ordering::Relaxed);
            if t0 != 0 {
                let dt = crate::arch::timer::now().saturating_sub(t0);
                STATE.latency.sum.fetch_add(dt, Ordering::Relaxed);
                STATE.latency.max.fetch_max(dt, Ordering::Relaxed);
                STATE.latency.n.fetch_add(1, Ordering::Relaxed);
            }
        }
        reclaiming(|| KernelPages.free_page(page))
    }
    fn desc(&self, pa: u64) -> &PageDesc {
        frame::desc(pa)
    }
}

impl DeferEnv for KernelEnv {
    fn call_rcu(&self, page: PtPage) -> Result<(), DeferError> {
        let head = &frame::desc(page.pa()).rcu_head;
        // SAFETY: the head lives in the page's descriptor, which is never freed; while it is
        // queued only the RCU core writes it, and `frame::free` refuses to free the page.
        match unsafe { crate::rcu::call_rcu(head, pte_free_rcu_callback) } {
            Ok(()) => Ok(()),
            Err(RcuError::DoubleQueue { .. }) => Err(DeferError::DoubleQueue { page }),
            Err(e) => crate::fatal!("call_rcu for page {page:#x}: {e}"),
        }
    }

    fn bitmap_side(&self, page: PtPage) -> &BitmapSide {
        let sides = STATE.sides.get().expect("pte_free::init not called");
        &sides[page.pfn()]
    }

    fn stats(&self) -> &DeferStats {
        &STATE.stats
    }

    fn pte_geometry(&self) -> FragGeometry {
        *pte_frag_geometry()
    }
}

fn report(op: &str, table: u64, e: DeferError) {
    // (`table` is the table the operation was for, or the page for a callback.)
    STATE.bugs.fetch_add(1, Ordering::Relaxed);
    if let DeferError::DoubleQueue { page } = e {
        STATE.double_queue.fetch_add(1, Ordering::Relaxed);
        let d = frame::desc(page.pa());
        crate::println!(
            "BUG: double call_rcu: {op}({}) on table {table:#x}: rcu_head {:#x} of page {page:#x} \
             (owner mm {}) is already queued; list left intact",
            strategy().name(),
            &d.rcu_head as *const RcuHead as u64,
            d.owner.load(Ordering::Relaxed)
        );
    } else {
        crate::println!("BUG: {op}({}) on table {table:#x}: {e}", strategy().name());
    }
}

/// The RCU callback of every deferred page-table page.
fn pte_free_rcu_callback(head: *const RcuHead) {
    let page = frame::page_of_rcu_head(head);
    crate::trace::record(TraceKind::CbStart, page.pa(), 0);
    if let Err(e) = reclaiming(|| strategy().rcu_callback(page, &KernelEnv)) {
        report("rcu_callback", page.pa(), e);
    }
    crate::trace::record(TraceKind::CbEnd, page.pa(), 0);
}

/// Defers freeing a PTE table that `retract_page_tables()` detached. Never inlined, so a
/// debugger can break on it with the table in r4 (the gdb test in `make test` does).
// SAFETY: `pte_free_defer` is the only symbol of that name in the kernel (Linux's name, so that
// `break pte_free_defer` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "pte_free_defer")]
#[inline(never)]
pub fn pte_free_defer(_mm: &super::Mm, detached: DetachedTable) {
    let table = detached.table().pa();
    crate::trace::record(TraceKind::Defer, table, frag_index(table, pte_frag_geometry()) as u64);
    // The PMD is already cleared and flushed: a walker that can still reach `table` began
    // its read section before this snapshot.
    if let Some(o) = oracle() {
        let gp_seq = crate::rcu::gp_seq_for_snapshot();
        if let Err(e) = o.record_defer(table, gp_seq, crate::arch::timer::now()) {
            oracle_report(e, 1);
        }
    }
    if let Some(t) = last_defer(table) {
        t.store(crate::arch::timer::now(), Ordering::Relaxed);
    }
    if let Err(e) = strategy().pte_free_defer(detached, &KernelEnv) {
        report("pte_free_defer", table, e);
    }
}

/// Frees a PTE table no lockless walker can reach any more (address-space teardown).
// SAFETY: `pte_free` is the only symbol of that name in the kernel (Linux's name, so that
// `break pte_free` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "pte_free")]
#[inline(never)]
pub fn pte_free(table: PgTable) {
    if let Some(o) = oracle() {
        if let Err(e) = o.check_plain_free(table.pa(), crate::rcu::completed()) {
            oracle_report(e, 1);
        }
    }
    if let Err(e) = not_reclaim(|| strategy().pte_free(table, &KernelEnv)) {
        report("pte_free", table.pa(), e);
    }
}

/// Returns an address space's unused PTE fragments at teardown.
pub fn pte_frag_destroy(cache: &mut FragCache) {
    if let Err(e) =
        not_reclaim(|| strategy().pte_frag_destroy(cache, pte_frag_geometry(), &KernelEnv))
    {
        report("pte_frag_destroy", cache.peek().unwrap_or(0), e);
    }
}
