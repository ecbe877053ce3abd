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

use core::fmt;

use crate::page_desc::RcuHead;
use crate::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use crate::sync::{const_new, spin_loop};

/// CPUs the RCU core can track (bits of a `u32` mask).
#[cfg(not(all(test, loom)))]
pub const MAX_CPUS: usize = 8;
/// Two CPUs keep the loom models small.
#[cfg(all(test, loom))]
pub const MAX_CPUS: usize = 2;

/// An RCU callback; it is handed the head it was queued with.
pub type RcuFn = fn(head: *const RcuHead);

/// Grace-period snapshot: the `completed()` value after which something that saw `gp_seq ==
/// s` may proceed (Linux `rcu_seq_snap`).
pub const fn rcu_seq_snap(s: u64) -> u64 {
    (s + 3) & !1
}

/// rcutorture's pipe check: may a reader find the element it holds aged `age`? An element's
/// age counts the grace periods that ended since the writer unpublished it (each callback
/// adds one and re-queues). The writers here do not age an element when they unpublish it,
/// unlike Linux's `rcu_torture_pipe_update_one` (hence Linux's `> 1`), so any age at all
/// means a grace period ended under the reader: an RCU one grace period short shows as 1.
pub const fn torture_pipe_age_ok(age: u64) -> bool {
    age == 0
}

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

/// Per-CPU callback-list segments: consecutive runs of callbacks sharing one snapshot. The
/// snapshots of a list never decrease, and at most two that have not completed exist at a
/// time, so four slots only overflow when a CPU leaves its callbacks unrun for long; then
/// the newest slot is reused with the later snapshot, which only delays callbacks.
const NSEGS: usize = 4;

#[derive(Default)]
struct Segment {
    len: AtomicU64,
    snap: AtomicU64,
}

/// One CPU's state. The list fields are only touched with `lock` held, so they use relaxed
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

impl Segment {
    const_new! {
        fn new() -> Self {
            Segment { len: AtomicU64::new(0), snap: AtomicU64::new(0) }
        }
    }
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

    fn lock(&self) {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            while self.lock.load(Ordering::Relaxed) {
                spin_loop();
            }
        }
    }

    fn unlock(&self) {
        self.lock.store(false, Ordering::Release);
    }

    /// Appends `addr` waiting for `snap`. Lock held.
    fn append(&self, addr: u64, head: &RcuHead, snap: u64) {
        head.next.store(0, Ordering::Relaxed);
        match self.tail.load(Ordering::Relaxed) {
            0 => self.head.store(addr, Ordering::Relaxed),
            tail => {
                // SAFETY: `tail` is a queued head: `call_rcu`'s contract keeps it valid until
                // its callback has run, which needs it off this list first.
                let tail = unsafe { head_at(tail) };
                tail.next.store(addr, Ordering::Relaxed);
            }
        }
        self.tail.store(addr, Ordering::Relaxed);

        let n = self.nsegs.load(Ordering::Relaxed) as usize;
        let last = n.checked_sub(1).map(|i| &self.segs[i]);
        match last {
            Some(seg) if seg.snap.load(Ordering::Relaxed) == snap || n == NSEGS => {
                seg.snap.store(snap, Ordering::Relaxed);
                seg.len.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.segs[n].snap.store(snap, Ordering::Relaxed);
                self.segs[n].len.store(1, Ordering::Relaxed);
                self.nsegs.store(n as u32 + 1, Ordering::Relaxed);
            }
        }
    }

    /// Unlinks the callbacks whose snapshot is `<= completed`; returns the first one's
    /// address and how many. Lock held.
    fn take_done(&self, completed: u64) -> (u64, u64) {
        let n = self.nsegs.load(Ordering::Relaxed) as usize;
        let ready = self.segs[..n]
            .iter()
            .take_while(|s| s.snap.load(Ordering::Relaxed) <= completed)
            .count();
        if ready == 0 {
            return (0, 0);
        }
        let count: u64 = self.segs[..ready].iter().map(|s| s.len.load(Ordering::Relaxed)).sum();
        for i in ready..n {
            let (len, snap) = (&self.segs[i].len, &self.segs[i].snap);
            self.segs[i - ready].len.store(len.load(Ordering::Relaxed), Ordering::Relaxed);
            self.segs[i - ready].snap.store(snap.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.nsegs.store((n - ready) as u32, Ordering::Relaxed);

        let first = self.head.load(Ordering::Relaxed);
        let mut last = first;
        for _ in 1..count {
            // SAFETY: `last` is one of the `count` heads queued here (see `append`).
            last = unsafe { head_at(last) }.next.load(Ordering::Relaxed);
        }
        // SAFETY: as above.
        let rest = unsafe { head_at(last) }.next.load(Ordering::Relaxed);
        self.head.store(rest, Ordering::Relaxed);
        if rest == 0 {
            self.tail.store(0, Ordering::Relaxed);
        }
        (first, count)
    }
}

/// The head queued at `addr`.
///
/// # Safety
/// `addr` must be the address of a head passed to `call_rcu` whose callback has not yet been
/// invoked (so the contract of `call_rcu` keeps it alive).
unsafe fn head_at<'a>(addr: u64) -> &'a RcuHead {
    let ptr: *const RcuHead = core::ptr::with_exposed_provenance(addr as usize);
    // SAFETY: the caller guarantees `addr` came from a live `&RcuHead` in `call_rcu`.
    unsafe { &*ptr }
}

/// Where a debugger finds the RCU state in memory (offsets in bytes), so a gdb script can
/// list pending callbacks without knowing Rust's layout rules.
#[derive(Debug, Clone, Copy)]
pub struct RcuLayout {
    pub gp_seq: usize,
    pub qs_mask: usize,
    pub online: usize,
    pub cpus: usize,
    pub cpu_stride: usize,
    pub cpu_nesting: usize,
    pub cpu_head: usize,
    pub max_cpus: usize,
}

/// The layout of [`Rcu`] (see [`RcuLayout`]).
pub fn debug_layout() -> RcuLayout {
    use core::mem::{offset_of, size_of};
    RcuLayout {
        gp_seq: offset_of!(Rcu, gp_seq),
        qs_mask: offset_of!(Rcu, qs_mask),
        online: offset_of!(Rcu, online),
        cpus: offset_of!(Rcu, cpus),
        cpu_stride: size_of::<CpuData>(),
        cpu_nesting: offset_of!(CpuData, nesting),
        cpu_head: offset_of!(CpuData, head),
        max_cpus: MAX_CPUS,
    }
}

/// The RCU state: one per kernel (a `static`), or one per test.
pub struct Rcu {
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
}

impl Default for Rcu {
    fn default() -> Self {
        Self::new()
    }
}

impl Rcu {
    const_new! {
        pub fn new() -> Self {
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
            }
        }
    }

    /// Makes `cpu` take part in grace periods from the next one on. Call it on that CPU
    /// before its first read-side section. Panics if `cpu >= MAX_CPUS`.
    pub fn cpu_online(&self, cpu: usize) {
        assert!(cpu < MAX_CPUS, "rcu: cpu {cpu} out of range");
        self.online.fetch_or(1 << cpu, Ordering::SeqCst);
        // A grace period that started without us never waits for us, so our readers must see
        // every update made before its start: this fence pairs with the one in `call_rcu`.
        fence(Ordering::SeqCst);
    }

    /// Mask of the CPUs taking part in grace periods.
    pub fn online_mask(&self) -> u32 {
        self.online.load(Ordering::Relaxed)
    }

    /// Enters a read-side section (they nest).
    pub fn read_lock(&self, cpu: usize) {
        self.cpus[cpu].nesting.fetch_add(1, Ordering::Relaxed);
        // Linux's barrier() in rcu_read_lock(): the nesting count is only read by this CPU's
        // own tick (and by reports from this CPU), so it needs no fence, but the compiler must
        // not move a protected load above the increment. A relaxed RMW alone lets it: a load
        // hoisted before it could run in a tick that reports a quiescent state, and the
        // object could be freed before the load's value is used.
        compiler_fence(Ordering::SeqCst);
    }

    /// Leaves a read-side section.
    pub fn read_unlock(&self, cpu: usize) -> Result<(), RcuError> {
        // barrier() again: no protected load may sink below the decrement, after which the
        // tick may report a quiescent state.
        compiler_fence(Ordering::SeqCst);
        self.cpus[cpu]
            .nesting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .map(drop)
            .map_err(|_| RcuError::Unbalanced { cpu })
    }

    /// Read-side nesting depth of `cpu`.
    pub fn nesting(&self, cpu: usize) -> u32 {
        self.cpus[cpu].nesting.load(Ordering::Relaxed)
    }

    /// Reports that `cpu` holds no RCU-protected reference. Refused, reporting nothing,
    /// inside a read-side section.
    pub fn quiescent_state(&self, cpu: usize) -> Result<(), RcuError> {
        let nesting = self.nesting(cpu);
        if nesting != 0 {
            return Err(RcuError::QsInReadSection { cpu, nesting });
        }
        let bit = 1u32 << cpu;
        // Release: our earlier reads come before the end of the grace period and so before
        // any callback it releases. An RMW on the mask also reads the latest start, so this
        // report is for a grace period that started before it: valid.
        let prev = self.qs_mask.fetch_and(!bit, Ordering::SeqCst);
        // Our later reads must see every update whose `call_rcu` preceded that start; this
        // fence pairs with the one in `call_rcu` (header: why a grace period suffices).
        fence(Ordering::SeqCst);
        if prev == bit {
            self.end_gp();
        }
        Ok(())
    }

    /// Queues `head` to have `func` called on it after a full grace period, on `cpu`.
    /// Refused, touching nothing, if `head` is still queued.
    ///
    /// # Safety
    /// `head` must stay valid (not freed, moved or reused) until `func` has been called on
    /// it, and nothing but this `Rcu` may write its fields until then.
    pub unsafe fn call_rcu(&self, cpu: usize, head: &RcuHead, func: RcuFn) -> Result<(), RcuError> {
        let addr = (head as *const RcuHead).expose_provenance() as u64;
        let word = func as usize as u64;
        if head.func.compare_exchange(0, word, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return Err(RcuError::DoubleQueue { head: addr });
        }
        // The caller unpublished what `func` frees before calling us. Any grace period that
        // starts after the `gp_seq` read below is ordered after this fence; a CPU reporting
        // for it fences after its report, so its later readers see the unpublish.
        fence(Ordering::SeqCst);
        let c = &self.cpus[cpu];
        c.lock();
        // Read under the lock so snapshots never decrease along the list.
        let snap = rcu_seq_snap(self.gp_seq.load(Ordering::SeqCst));
        c.append(addr, head, snap);
        c.unlock();
        self.pending.fetch_add(1, Ordering::Relaxed);
        self.n_call_rcu.fetch_add(1, Ordering::Relaxed);
        self.request_gp(snap);
        Ok(())
    }

    /// Runs `cpu`'s callbacks whose grace period has completed, in queue order; returns how
    /// many ran. Each head is marked not queued before its callback runs, so the callback
    /// may queue it again.
    pub fn run_callbacks(&self, cpu: usize) -> usize {
        let c = &self.cpus[cpu];
        // Acquire (SeqCst): the reports that ended the grace period come before the callbacks.
        let completed = self.completed();
        c.lock();
        let (mut addr, count) = c.take_done(completed);
        c.unlock();
        for _ in 0..count {
            // SAFETY: `addr` was unlinked above and its callback has not run yet.
            let head = unsafe { head_at(addr) };
            // Read the link before the head becomes re-queueable.
            let next = head.next.load(Ordering::Relaxed);
            let word = head.func.swap(0, Ordering::AcqRel);
            self.pending.fetch_sub(1, Ordering::Relaxed);
            self.n_invoked.fetch_add(1, Ordering::Relaxed);
            // Only `call_rcu` stores a non-zero `func`, from an `RcuFn`, and its contract
            // keeps everyone else off the field while the head is queued.
            let func: Option<RcuFn> = if word == 0 {
                None
            } else {
                // SAFETY: `word` is `func as usize` for an `RcuFn`, see above.
                Some(unsafe { core::mem::transmute::<usize, RcuFn>(word as usize) })
            };
            if let Some(func) = func {
                func(head);
            }
            addr = next;
        }
        count as usize
    }

    /// A cookie for a grace period starting after this call (Linux
    /// `start_poll_synchronize_rcu`); `poll` says when it has completed. `synchronize_rcu` is
    /// a loop of `poll`, quiescent states and callback runs.
    pub fn start_poll(&self) -> u64 {
        fence(Ordering::SeqCst);
        let snap = rcu_seq_snap(self.gp_seq.load(Ordering::SeqCst));
        self.request_gp(snap);
        snap
    }

    /// True once the grace period of a `start_poll` cookie has completed.
    pub fn poll(&self, cookie: u64) -> bool {
        self.completed() >= cookie
    }

    /// The last completed grace-period number (even).
    pub fn completed(&self) -> u64 {
        self.gp_seq.load(Ordering::SeqCst) & !1
    }

    pub fn gp_seq(&self) -> u64 {
        self.gp_seq.load(Ordering::SeqCst)
    }

    /// CPUs the running grace period still waits for (0 when idle): a stall report.
    pub fn gp_waiting_mask(&self) -> u32 {
        self.qs_mask.load(Ordering::Relaxed)
    }

    /// Callbacks queued and not yet invoked, all CPUs.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed) as usize
    }

    /// Test mode: every grace period ends as soon as it starts, without any quiescent state
    /// (the negative control the torture test must catch).
    pub fn set_broken_short_gp(&self, on: bool) {
        self.broken_short_gp.store(on, Ordering::SeqCst);
    }

    pub fn stats(&self) -> RcuStats {
        RcuStats {
            call_rcu: self.n_call_rcu.load(Ordering::Relaxed),
            grace_periods: self.n_gps.load(Ordering::Relaxed),
            callbacks_invoked: self.n_invoked.load(Ordering::Relaxed),
        }
    }

    /// Records that something waits for `snap` and starts a grace period if none runs.
    fn request_gp(&self, snap: u64) {
        self.gp_needed.fetch_max(snap, Ordering::SeqCst);
        self.maybe_start_gp();
    }

    fn maybe_start_gp(&self) {
        // Our caller just raised `gp_needed` or ended a grace period; the other side does the
        // opposite, then comes here. With a full fence between the write and the reads, at
        // least one of the two sees both and starts the grace period someone waits for.
        fence(Ordering::SeqCst);
        loop {
            let g = self.gp_seq.load(Ordering::SeqCst);
            // Running: its end looks again. Idle with nobody waiting past `g`: nothing to do.
            if g & 1 == 1 || self.gp_needed.load(Ordering::SeqCst) <= g {
                return;
            }
            if self.gp_seq.compare_exchange(g, g + 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                continue;
            }
            // Orders the start after every `call_rcu` fence whose `gp_seq` read saw `g`, and
            // before the mask that reporting CPUs acquire (header: why a grace period
            // suffices).
            fence(Ordering::SeqCst);
            let online = self.online.load(Ordering::SeqCst);
            if online != 0 && !self.broken_short_gp.load(Ordering::SeqCst) {
                // The previous grace period emptied the mask before it ended, so only
                // reports for this one can clear these bits. (A swap rather than a store:
                // loom 0.7 lets a plain store slip inside a concurrent RMW, tokio-rs/loom#254.)
                let stale = self.qs_mask.swap(online, Ordering::SeqCst);
                debug_assert_eq!(stale, 0);
                return;
            }
            // Nobody to wait for (or broken on purpose): it ends at once.
            self.gp_seq.fetch_add(1, Ordering::SeqCst);
            self.n_gps.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn end_gp(&self) {
        self.gp_seq.fetch_add(1, Ordering::SeqCst);
        self.n_gps.fetch_add(1, Ordering::Relaxed);
        self.maybe_start_gp();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::vec::Vec;

    thread_local! {
        /// Heads whose callback ran on this thread, in order.
        static RAN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    fn record(head: *const RcuHead) {
        RAN.with(|r| r.borrow_mut().push(head as usize));
    }

    fn ran() -> Vec<usize> {
        RAN.with(|r| r.borrow_mut().drain(..).collect())
    }

    fn heads(n: usize) -> Vec<RcuHead> {
        (0..n).map(|_| RcuHead::new()).collect()
    }

    fn addr(h: &RcuHead) -> usize {
        h as *const RcuHead as usize
    }

    fn queue(rcu: &Rcu, cpu: usize, h: &RcuHead, f: RcuFn) -> Result<(), RcuError> {
        // SAFETY: every test keeps its heads alive until the callbacks ran or the Rcu is
        // dropped, and touches them only through the Rcu.
        unsafe { rcu.call_rcu(cpu, h, f) }
    }

    fn online(n: usize) -> Rcu {
        let rcu = Rcu::new();
        (0..n).for_each(|c| rcu.cpu_online(c));
        rcu
    }

    fn all_qs(rcu: &Rcu, n: usize) {
        (0..n).for_each(|c| rcu.quiescent_state(c).unwrap());
    }

    /// The kernel keeps one in a `static`.
    static STATIC_RCU: Rcu = Rcu::new();

    #[test]
    fn usable_as_a_static() {
        STATIC_RCU.cpu_online(7);
        assert_eq!(STATIC_RCU.online_mask(), 1 << 7);
        assert_eq!(STATIC_RCU.gp_seq(), 0);
    }

    #[test]
    fn snap_matches_rcu_seq() {
        assert_eq!(rcu_seq_snap(0), 2);
        assert_eq!(rcu_seq_snap(1), 4);
        assert_eq!(rcu_seq_snap(2), 4);
        assert_eq!(rcu_seq_snap(5), 8);
    }

    #[test]
    fn callbacks_run_in_queue_order_after_a_grace_period() {
        let rcu = online(2);
        let hs = heads(5);
        assert_eq!(rcu.gp_seq(), 0);
        for h in &hs {
            queue(&rcu, 0, h, record).unwrap();
        }
        assert_eq!(rcu.gp_seq(), 1, "call_rcu starts a grace period");
        assert_eq!(rcu.pending(), 5);
        assert_eq!(rcu.run_callbacks(0), 0);
        all_qs(&rcu, 2);
        // The first head started grace period 1; the others came while it ran, so they
        // wait for grace period 2, which started as soon as 1 ended.
        assert_eq!((rcu.gp_seq(), rcu.completed()), (3, 2));
        assert_eq!(rcu.run_callbacks(1), 0, "callbacks run on the CPU that queued them");
        assert_eq!(rcu.run_callbacks(0), 1);
        all_qs(&rcu, 2);
        assert_eq!(rcu.run_callbacks(0), 4);
        assert_eq!(ran(), hs.iter().map(addr).collect::<Vec<_>>());
        assert!(hs.iter().all(|h| h.func.load(Ordering::Relaxed) == 0));
        assert_eq!(rcu.pending(), 0);
        assert_eq!(rcu.stats(), RcuStats { call_rcu: 5, grace_periods: 2, callbacks_invoked: 5 });
        assert_eq!(rcu.gp_seq(), 4, "no grace period without waiters");
    }

    #[test]
    fn callback_waits_for_every_online_cpu() {
        let rcu = online(3);
        let h = RcuHead::new();
        // A quiescent state before the call does not count.
        rcu.quiescent_state(2).unwrap();
        queue(&rcu, 0, &h, record).unwrap();
        rcu.quiescent_state(0).unwrap();
        rcu.quiescent_state(1).unwrap();
        rcu.quiescent_state(0).unwrap();
        assert_eq!(rcu.gp_waiting_mask(), 1 << 2);
        assert_eq!(rcu.run_callbacks(0), 0);
        assert!(ran().is_empty());
        rcu.quiescent_state(2).unwrap();
        assert_eq!(rcu.run_callbacks(0), 1);
        assert_eq!(ran(), [addr(&h)]);
    }

    #[test]
    fn callback_queued_during_a_grace_period_waits_for_the_next() {
        let rcu = online(2);
        let (a, b) = (RcuHead::new(), RcuHead::new());
        queue(&rcu, 0, &a, record).unwrap();
        rcu.quiescent_state(1).unwrap();
        queue(&rcu, 0, &b, record).unwrap(); // CPU 1 already reported: too late for b
        rcu.quiescent_state(0).unwrap();
        assert_eq!(rcu.gp_seq(), 3, "the next grace period starts as the first ends");
        assert_eq!(rcu.run_callbacks(0), 1);
        assert_eq!(ran(), [addr(&a)]);
        all_qs(&rcu, 2);
        assert_eq!(rcu.run_callbacks(0), 1);
        assert_eq!(ran(), [addr(&b)]);
        assert_eq!(rcu.stats().grace_periods, 2);
    }

    #[test]
    fn quiescent_state_inside_read_section_is_rejected() {
        let rcu = online(2);
        let h = RcuHead::new();
        queue(&rcu, 0, &h, record).unwrap();
        rcu.read_lock(1);
        rcu.read_lock(1);
        assert_eq!(rcu.nesting(1), 2);
        assert_eq!(rcu.quiescent_state(1), Err(RcuError::QsInReadSection { cpu: 1, nesting: 2 }));
        rcu.quiescent_state(0).unwrap();
        assert_eq!(rcu.gp_waiting_mask(), 1 << 1, "the refused report reported nothing");
        rcu.read_unlock(1).unwrap();
        assert!(rcu.quiescent_state(1).is_err());
        rcu.read_unlock(1).unwrap();
        assert_eq!(rcu.read_unlock(1), Err(RcuError::Unbalanced { cpu: 1 }));
        assert_eq!(rcu.nesting(1), 0);
        rcu.quiescent_state(1).unwrap();
        assert_eq!(rcu.run_callbacks(0), 1);
        ran();
    }

    #[test]
    fn double_call_rcu_is_detected_and_the_list_kept() {
        let rcu = online(1);
        let hs = heads(3);
        for h in &hs {
            queue(&rcu, 0, h, record).unwrap();
        }
        let err = queue(&rcu, 0, &hs[1], record).unwrap_err();
        assert_eq!(err, RcuError::DoubleQueue { head: addr(&hs[1]) as u64 });
        assert!(err.to_string().contains(&format!("{:#x}", addr(&hs[1]))));
        assert_eq!(hs[1].next.load(Ordering::Relaxed), addr(&hs[2]) as u64);
        assert_eq!((rcu.pending(), rcu.stats().call_rcu), (3, 3));
        all_qs(&rcu, 1);
        all_qs(&rcu, 1);
        assert_eq!(rcu.run_callbacks(0), 3);
        assert_eq!(ran(), hs.iter().map(addr).collect::<Vec<_>>());
        // Once its callback has run, the head may be queued again.
        queue(&rcu, 0, &hs[1], record).unwrap();
        all_qs(&rcu, 1);
        assert_eq!(rcu.run_callbacks(0), 1);
        assert_eq!(ran(), [addr(&hs[1])]);
    }

    /// An element of the re-queue and torture tests: a head with enough context for its
    /// callback to re-queue it.
    #[repr(C)]
    struct Elem {
        head: RcuHead,
        rcu: &'static Rcu,
        cpu: usize,
        /// Grace periods this element has aged since it was retired.
        pipe: AtomicU32,
        /// Re-queues left.
        left: AtomicU32,
    }

    impl Elem {
        fn new(rcu: &'static Rcu, cpu: usize, left: u32) -> Self {
            Elem {
                head: RcuHead::new(),
                rcu,
                cpu,
                pipe: AtomicU32::new(0),
                left: AtomicU32::new(left),
            }
        }
    }

    /// Ages the element by one grace period and queues it again while it has re-queues left.
    fn age(head: *const RcuHead) {
        // SAFETY: every head queued with `age` is the first field of a live `Elem` (repr(C)).
        let e = unsafe { &*head.cast::<Elem>() };
        let rcu = e.rcu;
        e.pipe.fetch_add(1, Ordering::SeqCst);
        if e.left.fetch_sub(1, Ordering::SeqCst) > 1 {
            queue(rcu, e.cpu, &e.head, age).expect("re-queue from the callback");
        }
    }

    #[test]
    fn callback_may_requeue_its_head() {
        let rcu: &'static Rcu = Box::leak(Box::new(online(2)));
        let e = Elem::new(rcu, 1, 3);
        queue(rcu, 1, &e.head, age).unwrap();
        for gp in 1..=3u32 {
            all_qs(rcu, 2);
            assert_eq!(rcu.run_callbacks(1), 1, "grace period {gp}");
            assert_eq!(e.pipe.load(Ordering::SeqCst), gp);
            assert_eq!(rcu.run_callbacks(1), 0, "the re-queued head waits for a new one");
        }
        assert_eq!(rcu.pending(), 0);
        assert_eq!(e.head.func.load(Ordering::Relaxed), 0);
        assert_eq!(rcu.stats(), RcuStats { call_rcu: 3, grace_periods: 3, callbacks_invoked: 3 });
    }

    /// Negative control for `callback_waits_for_every_online_cpu`.
    #[test]
    fn broken_short_gp_runs_callbacks_without_quiescent_states() {
        let rcu = online(2);
        rcu.set_broken_short_gp(true);
        let h = RcuHead::new();
        rcu.read_lock(1);
        queue(&rcu, 0, &h, record).unwrap();
        assert_eq!(rcu.run_callbacks(0), 1, "ran while CPU 1 is still inside a reader");
        assert_eq!(ran(), [addr(&h)]);
        rcu.read_unlock(1).unwrap();
    }

    #[test]
    fn offline_cpus_are_not_waited_for() {
        let rcu = Rcu::new();
        let h = RcuHead::new();
        queue(&rcu, 0, &h, record).unwrap();
        assert_eq!(rcu.gp_seq(), 2, "nobody online: the grace period ends at once");
        assert_eq!(rcu.run_callbacks(0), 1);
        ran();
        rcu.cpu_online(3);
        queue(&rcu, 0, &h, record).unwrap();
        assert_eq!(rcu.run_callbacks(0), 0);
        rcu.quiescent_state(3).unwrap();
        assert_eq!(rcu.run_callbacks(0), 1);
        ran();
    }

    #[test]
    fn poll_cookie_needs_a_full_grace_period() {
        let rcu = online(2);
        let c1 = rcu.start_poll();
        assert_eq!((c1, rcu.gp_seq()), (2, 1));
        rcu.quiescent_state(0).unwrap();
        let c2 = rcu.start_poll();
        assert_eq!(c2, 4);
        rcu.quiescent_state(1).unwrap();
        assert!(rcu.poll(c1) && !rcu.poll(c2));
        all_qs(&rcu, 2);
        assert!(rcu.poll(c2));
    }

    #[test]
    fn many_segments_overflow_only_delays() {
        // CPU 0 never runs its callbacks while grace periods go by: more distinct
        // snapshots than segment slots.
        let rcu = online(1);
        let hs = heads(8);
        for h in &hs {
            queue(&rcu, 0, h, record).unwrap();
            all_qs(&rcu, 1);
            // Leave a grace period running so the next head gets a new snapshot.
            rcu.start_poll();
        }
        all_qs(&rcu, 1);
        all_qs(&rcu, 1);
        assert_eq!(rcu.run_callbacks(0), 8);
        assert_eq!(ran(), hs.iter().map(addr).collect::<Vec<_>>());
    }

    /// The pipe check on the smallest grace period too short to be right: a reader holds an
    /// element, the writer retires it, and one callback runs while the reader still holds it
    /// (here because grace periods do not wait at all). The element is aged 1, which a check
    /// that only flags `> 1` would let through.
    #[test]
    fn torture_pipe_check_flags_one_grace_period_short() {
        let rcu: &'static Rcu = Box::leak(Box::new(online(2)));
        rcu.set_broken_short_gp(true);
        let e = Elem::new(rcu, 0, 1);
        rcu.read_lock(1);
        assert!(torture_pipe_age_ok(e.pipe.load(Ordering::SeqCst).into()), "fresh element");
        queue(rcu, 0, &e.head, age).unwrap();
        assert_eq!(rcu.run_callbacks(0), 1);
        let held = e.pipe.load(Ordering::SeqCst);
        assert_eq!(held, 1, "one callback ran under the reader");
        assert!(!torture_pipe_age_ok(held.into()), "age {held} under a reader passed the check");
        rcu.read_unlock(1).unwrap();
        assert_eq!(rcu.pending(), 0);
    }

    /// rcutorture's pipe test, on host threads: CPU 0 retires elements through `call_rcu`
    /// and ages each one grace period per callback; readers on the other CPUs hold an element
    /// for a while and check that it does not age at all meanwhile.
    /// Returns (errors seen, elements retired) in `run_ms` milliseconds; a broken run stops
    /// at the first error.
    fn torture(broken: bool, readers: usize, run_ms: u64) -> (usize, usize) {
        // The readers need the host's cores: one torture run at a time.
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        const NELEM: usize = 16;
        const PIPE_LEN: u32 = 4;
        let rcu: &'static Rcu = Box::leak(Box::new(online(readers + 1)));
        rcu.set_broken_short_gp(broken);
        let elems: &'static [Elem] =
            Box::leak((0..NELEM).map(|_| Elem::new(rcu, 0, PIPE_LEN)).collect());
        // Every element but the first starts free (fully aged).
        elems.iter().skip(1).for_each(|e| e.pipe.store(PIPE_LEN, Ordering::SeqCst));
        let current = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let errors = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for cpu in 1..=readers {
            let (current, stop, errors) = (current.clone(), stop.clone(), errors.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    rcu.read_lock(cpu);
                    let mine = current.load(Ordering::Acquire);
                    let e = &elems[mine];
                    // Hold the element until the writer has retired it and a while after:
                    // long enough for a broken grace period to age it twice.
                    let start = std::time::Instant::now();
                    let mut retired = None;
                    while start.elapsed() < std::time::Duration::from_micros(300) {
                        if !torture_pipe_age_ok(e.pipe.load(Ordering::SeqCst).into()) {
                            errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        match retired {
                            None if current.load(Ordering::Relaxed) != mine => {
                                retired = Some(std::time::Instant::now())
                            }
                            Some(t) if t.elapsed() > std::time::Duration::from_micros(50) => break,
                            _ => std::hint::spin_loop(),
                        }
                    }
                    rcu.read_unlock(cpu).unwrap();
                    rcu.quiescent_state(cpu).unwrap();
                    // More threads than host cores: let the others report too.
                    std::thread::yield_now();
                }
            }));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(run_ms);
        let (mut cur, mut retired) = (0, 0);
        while std::time::Instant::now() < deadline {
            if broken && errors.load(Ordering::Relaxed) > 0 {
                break;
            }
            rcu.quiescent_state(0).unwrap();
            rcu.run_callbacks(0);
            let free = (0..NELEM).find(|&i| elems[i].pipe.load(Ordering::SeqCst) == PIPE_LEN);
            let Some(next) = free else {
                std::thread::yield_now();
                continue;
            };
            let e = &elems[next];
            e.pipe.store(0, Ordering::SeqCst);
            e.left.store(PIPE_LEN, Ordering::SeqCst);
            current.store(next, Ordering::Release);
            queue(rcu, 0, &elems[cur].head, age).unwrap();
            cur = next;
            retired += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        (errors.load(Ordering::Relaxed), retired)
    }

    #[test]
    fn torture_pipe_sees_no_early_free() {
        let (errors, retired) = torture(false, 2, 200);
        eprintln!("torture: {retired} retired, {errors} errors");
        assert_eq!(errors, 0);
        assert!(retired > 20, "only {retired} elements went through a grace period");
    }

    /// Negative control: with grace periods cut short the torture test must see errors.
    #[test]
    fn torture_pipe_catches_broken_short_gp() {
        let (errors, retired) = torture(true, 2, 5000);
        eprintln!("broken torture: {retired} retired, {errors} errors");
        assert!(errors > 0);
    }
}
