//! The per-CPU read side and quiescent states: which CPUs take part in grace periods, the
//! read-side nesting count each CPU keeps for itself, and the report that clears a CPU's bit
//! of the running grace period's mask (the last report ends it).

use super::{Rcu, RcuError, RcuHooks, MAX_CPUS};
use crate::sync::atomic::{compiler_fence, fence, Ordering};

impl<H: RcuHooks> Rcu<H> {
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
        // fence pairs with the one in `call_rcu` (mod.rs header: why a grace period
        // suffices).
        fence(Ordering::SeqCst);
        if H::ENABLED && prev & bit != 0 && H::active() {
            // The grace period we reported for ran at the `fetch_and`; since then other CPUs
            // may have ended it (not if we were the last), so `(g - 1) | 1` is its number
            // either way, unless the next one has started too (a rare race in which the
            // trace names that one).
            let g = self.gp_seq.load(Ordering::Relaxed);
            H::qs_report(cpu, g.saturating_sub(1) | 1);
        }
        if prev == bit {
            self.end_gp();
        }
        Ok(())
    }
}
