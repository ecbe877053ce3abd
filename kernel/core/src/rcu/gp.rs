//! Grace periods: Linux's `rcu_seq` numbering of `gp_seq` (even idle, odd while one runs),
//! the snapshot a waiter needs, and the machine that starts a grace period when someone waits
//! for it and ends it when the last CPU has reported (see `mod.rs`'s header for the
//! ordering argument). Polling (`start_poll`/`poll`) is a waiter without a callback.

use super::{Rcu, RcuHooks};
use crate::sync::atomic::{fence, Ordering};

/// Grace-period snapshot: the `completed()` value after which something that saw `gp_seq ==
/// s` may proceed (Linux `rcu_seq_snap`).
pub const fn rcu_seq_snap(s: u64) -> u64 {
    (s + 3) & !1
}

impl<H: RcuHooks> Rcu<H> {
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

    /// Test mode: every grace period ends as soon as it starts, without any quiescent state
    /// (the negative control the torture test must catch).
    pub fn set_broken_short_gp(&self, on: bool) {
        self.broken_short_gp.store(on, Ordering::SeqCst);
    }

    /// Records that something waits for `snap` and starts a grace period if none runs.
    pub(super) fn request_gp(&self, snap: u64) {
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
            if H::ENABLED && H::active() {
                // Told at once: an interrupt here (a tick running callbacks) would otherwise
                // put records made after this start before it. The mask it will wait for is
                // read again below; only cpu_online, at boot, changes it.
                let broken = self.broken_short_gp.load(Ordering::Relaxed);
                H::gp_start(g + 1, if broken { 0 } else { self.online.load(Ordering::Relaxed) });
            }
            // Orders the start after every `call_rcu` fence whose `gp_seq` read saw `g`, and
            // before the mask that reporting CPUs acquire (mod.rs header: why a grace
            // period suffices).
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
            if H::ENABLED && H::active() {
                H::gp_end(g + 2);
            }
        }
    }

    pub(super) fn end_gp(&self) {
        let done = self.gp_seq.fetch_add(1, Ordering::SeqCst) + 1;
        if H::ENABLED && H::active() {
            H::gp_end(done);
        }
        self.n_gps.fetch_add(1, Ordering::Relaxed);
        self.maybe_start_gp();
    }
}
