//! The kernel's RCU: the portable QSBR core (`ptfrag_core::rcu`) with per-CPU glue.
//! Quiescent states come from the idle loop, from the tick when the CPU is outside a
//! read-side section, and from explicit `quiescent_state()` calls in long loops. Callbacks
//! run on the CPU that queued them, from the tick or the idle loop.
//!
//! Invariant: the core's per-CPU list lock is not interrupt-safe, so every thread-context
//! entry into it (`call_rcu`, `run_callbacks`) runs with interrupts masked; the tick then
//! never interrupts one of them on the same CPU.

use crate::arch::{irq, paca, timer};
use crate::trace::{Kind as TraceKind, ReadSite};
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU64, Ordering};
use ptfrag_core::page_desc::RcuHead;
use ptfrag_core::rcu::{Rcu, RcuError, RcuFn, RcuStats};

/// The RCU core's hooks: its grace periods go to the trace (`trace=1`).
pub type Hooks = crate::trace::Hooks;

static RCU: Rcu<Hooks> = Rcu::with_hooks();
/// RCU misuse caught (quiescent state or sleep inside a read section, double call_rcu...).
static BUGS: AtomicU64 = AtomicU64::new(0);

fn cpu() -> usize {
    paca::cpu_id()
}

/// Records a caught misuse and prints it (it is the caller's choice to go on).
pub fn report_bug(what: core::fmt::Arguments<'_>) {
    BUGS.fetch_add(1, Ordering::Relaxed);
    crate::println!("BUG: rcu: {what} (cpu {})", cpu());
}

/// Address of the RCU state, for the debugger (layout: ptfrag_core::rcu::debug_layout).
pub fn rcu_addr() -> u64 {
    &RCU as *const Rcu<Hooks> as u64
}

pub fn bugs() -> u64 {
    BUGS.load(Ordering::Relaxed)
}

/// Brings this CPU into grace-period accounting (before its first reader).
pub fn cpu_online() {
    RCU.cpu_online(cpu());
}

/// Linux `rcu_read_lock()`. Like Linux's it is a compiler barrier (`barrier()`): a protected
/// load the compiler hoisted above it could run before the section begins, where the tick
/// reports a quiescent state and the object may be freed. The core's `read_lock` has one
/// too; this one keeps the promise of the kernel's API whatever the core does.
pub fn read_lock() {
    RCU.read_lock(cpu());
    compiler_fence(Ordering::SeqCst);
}

/// Linux `rcu_read_unlock()`, a compiler barrier for the same reason: no protected load may
/// sink below it.
pub fn read_unlock() {
    compiler_fence(Ordering::SeqCst);
    if let Err(e) = RCU.read_unlock(cpu()) {
        report_bug(format_args!("{e}"));
    }
}

/// A read-side section for the guard's lifetime.
pub fn read() -> ReadGuard {
    read_lock();
    ReadGuard(())
}

pub struct ReadGuard(());

impl Drop for ReadGuard {
    fn drop(&mut self) {
        read_unlock();
    }
}

/// A read-side section the trace shows (`trace=1`): `site` says whose it is, `ea` what it
/// walks; [`TracedRead::holds`] names the PTE table it reached, recorded at its end.
pub fn read_traced(site: ReadSite, ea: u64) -> TracedRead {
    read_lock();
    crate::trace::record(TraceKind::ReadBegin, ea, site as u64);
    TracedRead { site, table: 0 }
}

pub struct TracedRead {
    site: ReadSite,
    table: u64,
}

impl TracedRead {
    /// The section now holds PTE table `table`.
    pub fn holds(&mut self, table: u64) {
        self.table = table;
    }
}

impl Drop for TracedRead {
    fn drop(&mut self) {
        crate::trace::record(TraceKind::ReadEnd, self.table, self.site as u64);
        read_unlock();
    }
}

/// An explicit quiescent state (long loops); inside a read section it is refused and
/// reported.
pub fn quiescent_state() -> Result<(), RcuError> {
    let r = RCU.quiescent_state(cpu());
    if let Err(e) = r {
        report_bug(format_args!("{e}"));
    }
    r
}

/// Where the kernel could block: sleeping inside a read section is a bug (Linux
/// might_sleep() under rcu_read_lock()).
pub fn might_sleep() -> Result<(), RcuError> {
    let n = RCU.nesting(cpu());
    if n != 0 {
        let e = RcuError::QsInReadSection { cpu: cpu(), nesting: n };
        report_bug(format_args!("sleeping inside a read-side section (nesting {n})"));
        return Err(e);
    }
    Ok(())
}

/// Queues `head` for `func` after a grace period. A head already queued is refused and
/// reported as a double call_rcu, with the list untouched.
///
/// # Safety
/// `head` must stay valid and untouched by anyone else until `func` runs.
// SAFETY: `call_rcu` is the only symbol of that name in the kernel (Linux's name, so that
// `break call_rcu` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "call_rcu")]
#[inline(never)]
pub unsafe fn call_rcu(head: &RcuHead, func: RcuFn) -> Result<(), RcuError> {
    let was = irq::disable();
    // SAFETY: the caller's contract, forwarded; interrupts are masked (module invariant).
    let r = unsafe { RCU.call_rcu(cpu(), head, func) };
    irq::restore(was);
    r
}

/// The grace-period counter as Linux's `get_state_synchronize_rcu` reads it: the fence
/// orders the caller's earlier unlink before the `gp_seq` read, as `call_rcu` does. Requests
/// nothing. The grace-period oracle turns it into the grace period the caller needs with
/// its own `needed_gp`.
pub fn gp_seq_for_snapshot() -> u64 {
    core::sync::atomic::fence(Ordering::SeqCst);
    RCU.gp_seq()
}

/// Runs this CPU's ready callbacks.
pub fn run_callbacks() -> usize {
    let was = irq::disable();
    let n = RCU.run_callbacks(cpu());
    irq::restore(was);
    n
}

/// From the decrementer interrupt: a quiescent state if outside a read section, then the
/// ready callbacks (the interrupted code cannot be inside the core's list lock).
pub fn tick(cpu: usize) {
    if RCU.online_mask() & (1 << cpu) == 0 {
        return;
    }
    if RCU.nesting(cpu) == 0 {
        let _ = RCU.quiescent_state(cpu);
        RCU.run_callbacks(cpu);
    }
}

/// From the idle loop, interrupts masked, before ceding.
pub fn idle(cpu: usize) {
    if RCU.online_mask() & (1 << cpu) == 0 {
        return;
    }
    if RCU.nesting(cpu) != 0 {
        report_bug(format_args!("idle inside a read-side section"));
        return;
    }
    let _ = RCU.quiescent_state(cpu);
    RCU.run_callbacks(cpu);
}

/// Waits for a full grace period.
// SAFETY: `synchronize_rcu` is the only symbol of that name in the kernel (Linux's name, so that
// `break synchronize_rcu` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "synchronize_rcu")]
#[inline(never)]
pub fn synchronize_rcu() {
    if might_sleep().is_err() {
        return;
    }
    let cookie = RCU.start_poll();
    let t0 = timer::now();
    while !RCU.poll(cookie) {
        let _ = RCU.quiescent_state(cpu());
        run_callbacks();
        if timer::tb_to_us(timer::now() - t0) > 10_000_000 {
            crate::fatal!(
                "synchronize_rcu: grace period stuck for 10 s (gp_seq {}, waiting for cpus {:#b})",
                RCU.gp_seq(),
                RCU.gp_waiting_mask()
            );
        }
        crate::arch::smp::relax();
    }
}

#[repr(C)]
struct Barrier {
    head: RcuHead,
    done: AtomicBool,
}

fn barrier_done(head: *const RcuHead) {
    // SAFETY: `head` is the first field of a repr(C) Barrier that `rcu_barrier` keeps alive
    // until `done` is set.
    let b = unsafe { &*(head as *const Barrier) };
    b.done.store(true, Ordering::Release);
}

/// Waits until every callback queued before the call, on every CPU, has run.
// SAFETY: `rcu_barrier` is the only symbol of that name in the kernel (Linux's name, so that
// `break rcu_barrier` works in gdb); never inlined, so every call stops there.
#[unsafe(export_name = "rcu_barrier")]
#[inline(never)]
pub fn rcu_barrier() {
    let n = crate::arch::smp::nr_online();
    let barriers: alloc::vec::Vec<Barrier> = (0..n)
        .map(|_| Barrier { head: RcuHead::default(), done: AtomicBool::new(false) })
        .collect();
    crate::arch::smp::on_each_cpu(&|c| {
        // SAFETY: `barriers` outlives the wait below, and nothing else touches the head.
        if let Err(e) = unsafe { call_rcu(&barriers[c].head, barrier_done) } {
            report_bug(format_args!("rcu_barrier: {e}"));
            barriers[c].done.store(true, Ordering::Release);
        }
    });
    let t0 = timer::now();
    while !barriers.iter().all(|b| b.done.load(Ordering::Acquire)) {
        let _ = RCU.quiescent_state(cpu());
        run_callbacks();
        if timer::tb_to_us(timer::now() - t0) > 10_000_000 {
            crate::arch::smp::dump_cpus();
            crate::fatal!("rcu_barrier: callbacks did not run within 10 s");
        }
        crate::arch::smp::relax();
    }
}

/// Test mode for the torture negative control: grace periods that do not wait.
pub fn set_broken_short_gp(on: bool) {
    RCU.set_broken_short_gp(on);
}

pub fn stats() -> RcuStats {
    RCU.stats()
}

pub fn pending() -> usize {
    RCU.pending()
}

pub fn completed() -> u64 {
    RCU.completed()
}

/// The grace-period counter (odd while one runs).
pub fn gp_seq() -> u64 {
    RCU.gp_seq()
}

/// CPUs the running grace period still waits for.
pub fn gp_waiting_mask() -> u32 {
    RCU.gp_waiting_mask()
}

/// Asks for a grace period to start if none runs (Linux `start_poll_synchronize_rcu`
/// without the cookie): schedules use it to have one running at a chosen step.
pub fn request_grace_period() {
    let _ = RCU.start_poll();
}
