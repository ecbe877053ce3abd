//! The per-CPU callback list: heads linked through `RcuHead::next` in queue order, split
//! into segments by the grace-period snapshot they wait for, under a per-CPU spin lock (the
//! list fields of [`CpuData`]).

use super::CpuData;
use crate::page_desc::RcuHead;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{const_new, spin_loop};

/// Per-CPU callback-list segments: consecutive runs of callbacks sharing one snapshot. The
/// snapshots of a list never decrease, and at most two that have not completed exist at a
/// time, so four slots only overflow when a CPU leaves its callbacks unrun for long; then
/// the newest slot is reused with the later snapshot, which only delays callbacks.
pub(super) const NSEGS: usize = 4;

#[derive(Default)]
pub(super) struct Segment {
    len: AtomicU64,
    snap: AtomicU64,
}

impl Segment {
    const_new! {
        pub(super) fn new() -> Self {
            Segment { len: AtomicU64::new(0), snap: AtomicU64::new(0) }
        }
    }
}

impl CpuData {
    pub(super) fn lock(&self) {
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

    pub(super) fn unlock(&self) {
        self.lock.store(false, Ordering::Release);
    }

    /// Appends `addr` waiting for `snap`. Lock held.
    pub(super) fn append(&self, addr: u64, head: &RcuHead, snap: u64) {
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
    pub(super) fn take_done(&self, completed: u64) -> (u64, u64) {
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
pub(super) unsafe fn head_at<'a>(addr: u64) -> &'a RcuHead {
    let ptr: *const RcuHead = core::ptr::with_exposed_provenance(addr as usize);
    // SAFETY: the caller guarantees `addr` came from a live `&RcuHead` in `call_rcu`.
    unsafe { &*ptr }
}
