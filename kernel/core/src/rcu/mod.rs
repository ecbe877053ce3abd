//! A tiny quiescent-state-based RCU (QSBR): readers only count their nesting, each CPU says
//! when it holds no reference (`quiescent_state`), and `call_rcu` callbacks run once every
//! CPU has done so after they were queued.
//!
//! Grace periods follow Linux's `rcu_seq`: `gp_seq` is even while idle and odd while a grace
//! period runs. A callback queued when `gp_seq` read `s` waits for `completed() >=
//! rcu_seq_snap(s) = (s + 3) & !1`, the end of the first grace period that starts after it.
//! Starting one copies the online mask into `qs_mask`; each CPU's report clears its bit; the
//! report that empties the mask ends it, and starts the next if any callback waits for it.
//!
//! Invariant: a grace period ends only after every CPU online at its start has reported a
//! quiescent state, outside any read-side section, after that start; and a callback runs
//! only after a grace period that started after its `call_rcu`.
//!
//! Why a grace period suffices on weak memory: `call_rcu` fences before it reads `gp_seq`;
//! the start of the grace period it waits for fences after its `gp_seq` update and then
//! releases the mask; a reporting CPU acquires the mask and fences after its report. So the
//! updater's fence precedes the start's, which precedes the reporter's, and that CPU's later
//! readers see whatever was unpublished before `call_rcu`. The other way, each report is a
//! release that the callback runner acquires through `gp_seq`, so every read a CPU made
//! before its report happens before the callback. Only fences and acquire/release carry the
//! argument, which is what loom models (`loom_tests::loom_rcu_*`).
//!
//! Callbacks are intrusive through [`RcuHead`] (`next` links the per-CPU list, `func` holds
//! the callback and is 0 when the head is not queued, which is how a second `call_rcu` on a
//! waiting head is caught), and run on the CPU that queued them, in queue order. The per-CPU
//! list lock is not interrupt-safe: never call `call_rcu` or `run_callbacks` from an
//! interrupt that may have interrupted either on the same CPU. `quiescent_state` takes no
//! lock and is fine from the tick.
//!
//! The files by concept: `gp.rs` numbers grace periods (`rcu_seq_snap`) and starts and ends
//! them; `qs.rs` is the per-CPU read side and its quiescent-state reports; `cblist.rs` is the
//! per-CPU segmented callback list, which `callbacks.rs` fills (`call_rcu`) and drains
//! (`run_callbacks`); `debug.rs` tells a debugger where the state sits; `torture.rs` is
//! rcutorture's pipe check; `hooks.rs` is what a tracer may hear of grace periods (the
//! [`RcuHooks`] type parameter, none by default). This file holds the state they share and
//! the errors.

use core::fmt;
use core::marker::PhantomData;

use crate::page_desc::RcuHead;
use crate::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::sync::const_new;

mod callbacks;
mod cblist;
mod debug;
mod gp;
mod hooks;
mod qs;
mod torture;

use cblist::{Segment, NSEGS};
pub use debug::{debug_layout, RcuLayout};
pub use gp::rcu_seq_snap;
pub use hooks::{NoHooks, RcuHooks};
pub use torture::torture_pipe_age_ok;

/// CPUs the RCU core can track (bits of a `u32` mask).
#[cfg(not(all(test, loom)))]
pub const MAX_CPUS: usize = 8;
/// Two CPUs keep the loom models small.
#[cfg(all(test, loom))]
pub const MAX_CPUS: usize = 2;

/// An RCU callback; it is handed the head it was queued with.
pub type RcuFn = fn(head: *const RcuHead);

/// A misuse the RCU core caught; nothing was changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcuError {
    /// `read_unlock` without a matching `read_lock`.
    Unbalanced { cpu: usize },
    /// A quiescent state reported inside a read-side section: not reported.
    QsInReadSection { cpu: usize, nesting: u32 },
    /// `call_rcu` on a head that is still queued (Linux's debug-objects "double call_rcu").
    DoubleQueue { head: u64 },
}

impl fmt::Display for RcuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RcuError::Unbalanced { cpu } => write!(f, "rcu_read_unlock without lock on cpu {cpu}"),
            RcuError::QsInReadSection { cpu, nesting } => write!(
                f,
                "quiescent state reported on cpu {cpu} inside a read-side section \
                 (nesting {nesting})"
            ),
            RcuError::DoubleQueue { head } => {
                write!(f, "double call_rcu: rcu_head {head:#x} is already queued")
            }
        }
    }
}

/// Counters for the figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RcuStats {
    /// Successful `call_rcu`s.
    pub call_rcu: u64,
    /// Grace periods completed.
    pub grace_periods: u64,
    /// Callbacks invoked.
    pub callbacks_invoked: u64,
}

/// One CPU's state: `nesting` is the read side's (`qs.rs`), the rest the callback list's
/// (`cblist.rs`). The list fields are only touched with `lock` held, so they use relaxed
/// accesses; they are atomics so that the lock, not `unsafe`, guards them.
#[derive(Default)]
#[repr(align(128))]
struct CpuData {
    nesting: AtomicU32,
    lock: AtomicBool,
    /// Addresses of the first and last queued heads (0 when empty).
    head: AtomicU64,
    tail: AtomicU64,
    segs: [Segment; NSEGS],
    nsegs: AtomicU32,
}

impl CpuData {
    const_new! {
        fn new() -> Self {
            #[cfg(not(all(test, loom)))]
            let segs = [const { Segment::new() }; NSEGS];
            #[cfg(all(test, loom))]
            let segs = core::array::from_fn(|_| Segment::new());
            CpuData {
                nesting: AtomicU32::new(0),
                lock: AtomicBool::new(false),
                head: AtomicU64::new(0),
                tail: AtomicU64::new(0),
                segs,
                nsegs: AtomicU32::new(0),
            }
        }
    }
}

/// The RCU state: one per kernel (a `static`), or one per test. `H` says what a tracer hears
/// of its grace periods (`hooks.rs`); `Rcu` alone has none.
pub struct Rcu<H: RcuHooks = NoHooks> {
    /// Linux `rcu_state.gp_seq`: even idle, odd while a grace period runs.
    gp_seq: AtomicU64,
    /// The highest snapshot any callback or poller waits for.
    gp_needed: AtomicU64,
    /// CPUs that still owe the running grace period a quiescent state.
    qs_mask: AtomicU32,
    online: AtomicU32,
    broken_short_gp: AtomicBool,
    pending: AtomicU64,
    n_call_rcu: AtomicU64,
    n_gps: AtomicU64,
    n_invoked: AtomicU64,
    cpus: [CpuData; MAX_CPUS],
    /// `fn() -> H`: the hooks are a type, not data, so they take nothing from `Sync`.
    hooks: PhantomData<fn() -> H>,
}

impl Default for Rcu {
    fn default() -> Self {
        Self::new()
    }
}

impl Rcu {
    const_new! {
        /// An `Rcu` without hooks.
        pub fn new() -> Self {
            Self::with_hooks()
        }
    }
}

impl<H: RcuHooks> Rcu<H> {
    const_new! {
        /// An `Rcu` that calls `H`'s hooks (`Rcu::<MyHooks>::with_hooks()`).
        pub fn with_hooks() -> Self {
            #[cfg(not(all(test, loom)))]
            let cpus = [const { CpuData::new() }; MAX_CPUS];
            #[cfg(all(test, loom))]
            let cpus = core::array::from_fn(|_| CpuData::new());
            Rcu {
                gp_seq: AtomicU64::new(0),
                gp_needed: AtomicU64::new(0),
                qs_mask: AtomicU32::new(0),
                online: AtomicU32::new(0),
                broken_short_gp: AtomicBool::new(false),
                pending: AtomicU64::new(0),
                n_call_rcu: AtomicU64::new(0),
                n_gps: AtomicU64::new(0),
                n_invoked: AtomicU64::new(0),
                cpus,
                hooks: PhantomData,
            }
        }
    }

    pub fn stats(&self) -> RcuStats {
        RcuStats {
            call_rcu: self.n_call_rcu.load(Ordering::Relaxed),
            grace_periods: self.n_gps.load(Ordering::Relaxed),
            callbacks_invoked: self.n_invoked.load(Ordering::Relaxed),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
