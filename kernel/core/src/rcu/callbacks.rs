//! Callbacks: `call_rcu` queues a head on its CPU's list with the snapshot of the grace
//! period it waits for, and `run_callbacks` runs the ones whose grace period has completed,
//! on the CPU that queued them, in queue order.

use super::cblist::head_at;
use super::{rcu_seq_snap, Rcu, RcuError, RcuFn, RcuHooks};
use crate::page_desc::RcuHead;
use crate::sync::atomic::{fence, Ordering};

impl<H: RcuHooks> Rcu<H> {
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
        if H::ENABLED && H::active() {
            H::call_rcu(cpu, addr, snap);
        }
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

    /// Callbacks queued and not yet invoked, all CPUs.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed) as usize
    }
}
