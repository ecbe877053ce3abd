//! The grace-period oracle (`rcu_check=on`): for every PTE table handed to
//! `pte_free_defer()`, the grace period it needs, and a check at the real free of its page
//! that this grace period has completed. It knows nothing about the strategies: it watches
//! their inputs (a table detached and deferred) and their one output that matters (a
//! page-table page returned to the page allocator), so any strategy, RCU or flush bug that
//! frees a table before the grace period its readers rely on is named at the free, with the
//! table, the grace period it needed and the one that had completed.
//!
//! The snapshot is Linux's `get_state_synchronize_rcu()` / `rcu_seq_snap()`: taken after
//! the PMD was cleared and flushed, so every lockless walker that could still reach the
//! table began its read section before the snapshot; the table may be freed once
//! `completed() >= snapshot`, the end of the first grace period that starts after it.
//!
//! Invariant: a slot holds 0 (fragment not deferred) or the snapshot recorded by the last
//! deferral of that fragment; the slot goes back to 0 only when its page is really freed.
//! Slots are preallocated, one per fragment of every frame, so the retract path never
//! allocates.
//!
//! Beside the snapshot a slot keeps what the deferral saw (the grace periods completed then,
//! and the time), so the real free can also say how long the table waited: [`GpWaits`]
//! counts, per table and per page (from its last deferral), how many grace periods that
//! started after the deferral had completed by the free, a small fixed histogram whose limit
//! is 1 (0 is a table freed early, which the check above reports). The figures of
//! `make bench` and the retract tests come from it.

use core::fmt;

use crate::frame_alloc::FRAME_SIZE;
use crate::pgtable_frag::{frag_index, page_of, FragGeometry};
use crate::sync::atomic::{AtomicU64, Ordering};

/// What the oracle caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OracleError {
    /// A page-table page was really freed while one of its deferred tables still waited
    /// for its grace period (`completed < needed`).
    EarlyFree { table: u64, page: u64, frag: usize, needed: u64, completed: u64 },
    /// A table that waits for a grace period was freed as if no walker could see it.
    PlainFreeOfDeferred { table: u64, page: u64, frag: usize, needed: u64, completed: u64 },
    /// A table was deferred twice without its page being freed in between.
    DeferredTwice { table: u64, page: u64, frag: usize, needed: u64 },
    /// The table lies outside the frames the oracle was sized for.
    OutOfRange { table: u64 },
}

impl fmt::Display for OracleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OracleError::EarlyFree { table, page, frag, needed, completed } => write!(
                f,
                "page-table page {page:#x} freed {} grace period(s) too early: table \
                 {table:#x} (fragment {frag}) needs gp_seq {needed} completed, completed is \
                 {completed}",
                needed.saturating_sub(completed).div_ceil(2)
            ),
            OracleError::PlainFreeOfDeferred { table, page, frag, needed, completed } => write!(
                f,
                "plain free of table {table:#x} (page {page:#x}, fragment {frag}) that waits \
                 for grace period {needed}; completed is {completed}"
            ),
            OracleError::DeferredTwice { table, page, frag, needed } => write!(
                f,
                "table {table:#x} (page {page:#x}, fragment {frag}) deferred again while it \
                 still waits for grace period {needed}"
            ),
            OracleError::OutOfRange { table } => {
                write!(f, "table {table:#x} is outside the oracle's frames")
            }
        }
    }
}

/// The grace period something unlinked when `gp_seq` read `gp_seq` must wait for: the end
/// of the first grace period that starts after the read (Linux `rcu_seq_snap`: low bit =
/// a grace period is running). Written here again, not taken from `rcu::rcu_seq_snap`, so
/// that a bug in the RCU core's snapshot cannot blind the oracle that checks it.
pub const fn needed_gp(gp_seq: u64) -> u64 {
    if gp_seq % 2 == 1 {
        // Running: it may have started before the unlink, so the next one must end.
        gp_seq + 3
    } else {
        gp_seq + 2
    }
}

/// What the oracle keeps for one fragment: the grace period its deferral needs (0: not
/// deferred), the grace periods completed when it was deferred (`gp_seq & !1`, Linux
/// `get_completed_synchronize_rcu()` at that moment) and the time of the deferral.
pub struct OracleSlot {
    needed: AtomicU64,
    completed_at_defer: AtomicU64,
    deferred_at: AtomicU64,
}

impl OracleSlot {
    crate::sync::const_new! {
        pub fn new() -> Self {
            OracleSlot {
                needed: AtomicU64::new(0),
                completed_at_defer: AtomicU64::new(0),
                deferred_at: AtomicU64::new(0),
            }
        }
    }
}

impl Default for OracleSlot {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets of the grace-period histograms: 0, 1, 2, 3 and 4 or more.
pub const GP_BUCKETS: usize = 5;

/// Grace periods that started after a deferral and completed before the real free: the
/// number [`GpWaits`] counts. `needed` is the end of the first one that started after the
/// deferral, so a free at `completed >= needed` has seen `(completed - needed) / 2 + 1`, and
/// a free before `needed` none (freed early).
pub const fn full_gps(needed: u64, completed: u64) -> u64 {
    if completed >= needed {
        (completed - needed) / 2 + 1
    } else {
        0
    }
}

/// How long deferred tables waited for their real free, since the counts were last taken:
/// histograms of [`full_gps`] per table and per page (a page counted from its last deferral,
/// the one with the largest `needed`), the time from deferral to free in the caller's clock
/// units, and how many deferrals landed while a grace period was running. All atomics:
/// frees run in RCU callbacks on any CPU.
pub struct GpWaits {
    tables: [AtomicU64; GP_BUCKETS],
    pages: [AtomicU64; GP_BUCKETS],
    /// Deferrals made while a grace period was running (`needed` two grace periods ahead).
    in_running_gp: AtomicU64,
    /// Sum over tables of the grace periods completed between deferral and free, counting
    /// one that was already running at the deferral.
    completed_between: AtomicU64,
    table_time: AtomicU64,
    table_time_max: AtomicU64,
    page_time: AtomicU64,
    page_time_max: AtomicU64,
}

/// A copy of [`GpWaits`] at one moment; the counts add up over rounds with
/// [`merge`](Self::merge).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpWaitCounts {
    /// `tables[i]`: tables freed after `i` grace periods (the last bucket: `GP_BUCKETS - 1`
    /// or more).
    pub tables: [u64; GP_BUCKETS],
    /// The same per page, from its last deferral.
    pub pages: [u64; GP_BUCKETS],
    pub in_running_gp: u64,
    pub completed_between: u64,
    pub table_time: u64,
    pub table_time_max: u64,
    pub page_time: u64,
    pub page_time_max: u64,
}

fn bucket(gps: u64) -> usize {
    (gps as usize).min(GP_BUCKETS - 1)
}

impl GpWaits {
    crate::sync::const_new! {
        pub fn new() -> Self {
            GpWaits {
                tables: [
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                ],
                pages: [
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                    AtomicU64::new(0),
                ],
                in_running_gp: AtomicU64::new(0),
                completed_between: AtomicU64::new(0),
                table_time: AtomicU64::new(0),
                table_time_max: AtomicU64::new(0),
                page_time: AtomicU64::new(0),
                page_time_max: AtomicU64::new(0),
            }
        }
    }

    /// The counts, reset to zero (one figure per round).
    pub fn take(&self) -> GpWaitCounts {
        let t = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
        GpWaitCounts {
            tables: core::array::from_fn(|i| t(&self.tables[i])),
            pages: core::array::from_fn(|i| t(&self.pages[i])),
            in_running_gp: t(&self.in_running_gp),
            completed_between: t(&self.completed_between),
            table_time: t(&self.table_time),
            table_time_max: t(&self.table_time_max),
            page_time: t(&self.page_time),
            page_time_max: t(&self.page_time_max),
        }
    }

    fn table(&self, needed: u64, completed_at_defer: u64, completed: u64, time: u64) {
        let r = Ordering::Relaxed;
        self.tables[bucket(full_gps(needed, completed))].fetch_add(1, r);
        // Linux numbering: a deferral while a grace period runs (odd gp_seq) needs the end of
        // the next one, two grace periods after the last completed.
        if needed > completed_at_defer + 2 {
            self.in_running_gp.fetch_add(1, r);
        }
        self.completed_between.fetch_add(completed.saturating_sub(completed_at_defer) / 2, r);
        self.table_time.fetch_add(time, r);
        self.table_time_max.fetch_max(time, r);
    }

    fn page(&self, gps: u64, time: u64) {
        let r = Ordering::Relaxed;
        self.pages[bucket(gps)].fetch_add(1, r);
        self.page_time.fetch_add(time, r);
        self.page_time_max.fetch_max(time, r);
    }
}

impl Default for GpWaits {
    fn default() -> Self {
        Self::new()
    }
}

impl GpWaitCounts {
    /// Tables (or pages) counted.
    pub fn n_tables(&self) -> u64 {
        self.tables.iter().sum()
    }
    pub fn n_pages(&self) -> u64 {
        self.pages.iter().sum()
    }

    fn mean(hist: &[u64; GP_BUCKETS]) -> f64 {
        let n: u64 = hist.iter().sum();
        let sum: u64 = hist.iter().enumerate().map(|(i, c)| i as u64 * c).sum();
        sum as f64 / n.max(1) as f64
    }

    /// Mean grace periods per table (the last bucket counted as `GP_BUCKETS - 1`).
    pub fn mean_table_gps(&self) -> f64 {
        Self::mean(&self.tables)
    }
    pub fn mean_page_gps(&self) -> f64 {
        Self::mean(&self.pages)
    }
    /// Mean time from a table's deferral to its page's free.
    pub fn mean_table_time(&self) -> u64 {
        self.table_time / self.n_tables().max(1)
    }
    /// Mean time from a page's last deferral to its free.
    pub fn mean_page_time(&self) -> u64 {
        self.page_time / self.n_pages().max(1)
    }

    /// Adds `other`'s counts (maxima: the larger).
    pub fn merge(&mut self, other: &GpWaitCounts) {
        for i in 0..GP_BUCKETS {
            self.tables[i] += other.tables[i];
            self.pages[i] += other.pages[i];
        }
        self.in_running_gp += other.in_running_gp;
        self.completed_between += other.completed_between;
        self.table_time += other.table_time;
        self.table_time_max = self.table_time_max.max(other.table_time_max);
        self.page_time += other.page_time;
        self.page_time_max = self.page_time_max.max(other.page_time_max);
    }

    /// A histogram as `a/b/c/d/e` (0, 1, 2, 3, 4+ grace periods).
    pub fn hist(hist: &[u64; GP_BUCKETS]) -> HistText<'_> {
        HistText(hist)
    }
}

/// [`GpWaitCounts::hist`]'s text.
pub struct HistText<'a>(&'a [u64; GP_BUCKETS]);

impl fmt::Display for HistText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// One slot per fragment of every frame: `slots[frame * frags_per_page + fragment]`.
pub struct GpOracle<'a> {
    slots: &'a [OracleSlot],
    geo: FragGeometry,
    waits: Option<&'a GpWaits>,
}

impl<'a> GpOracle<'a> {
    /// Slots needed to cover `nr_frames` frames cut by `geo`.
    pub const fn slots_for(nr_frames: usize, geo: &FragGeometry) -> usize {
        nr_frames * geo.frags_per_page
    }

    /// An oracle over `slots` (all 0), for tables of geometry `geo`.
    pub fn new(slots: &'a [OracleSlot], geo: FragGeometry) -> Self {
        GpOracle { slots, geo, waits: None }
    }

    /// The same oracle, counting every deferred table's wait into `waits` at its free.
    pub fn with_waits(self, waits: &'a GpWaits) -> Self {
        GpOracle { waits: Some(waits), ..self }
    }

    fn slot(&self, table: u64) -> Result<(&OracleSlot, usize), OracleError> {
        let frag = frag_index(table, &self.geo);
        let i = (page_of(table) / FRAME_SIZE) as usize * self.geo.frags_per_page + frag;
        self.slots.get(i).map(|s| (s, frag)).ok_or(OracleError::OutOfRange { table })
    }

    /// Records that `table` was detached and deferred when the grace-period counter read
    /// `gp_seq` (read after the unlink and flush), at time `now`: it needs grace period
    /// [`needed_gp`]`(gp_seq)`.
    pub fn record_defer(&self, table: u64, gp_seq: u64, now: u64) -> Result<(), OracleError> {
        let (slot, frag) = self.slot(table)?;
        let needed = needed_gp(gp_seq);
        debug_assert!(needed != 0, "a grace-period snapshot is never 0");
        // Written before `needed` is published; the free reads them after taking it.
        slot.completed_at_defer.store(gp_seq & !1, Ordering::Relaxed);
        slot.deferred_at.store(now, Ordering::Relaxed);
        let old = slot.needed.swap(needed, Ordering::AcqRel);
        if old != 0 {
            return Err(OracleError::DeferredTwice {
                table,
                page: page_of(table),
                frag,
                needed: old,
            });
        }
        Ok(())
    }

    /// A plain free (`pte_free`) of `table`: refused if the table waits for a grace period.
    pub fn check_plain_free(&self, table: u64, completed: u64) -> Result<(), OracleError> {
        let (slot, frag) = self.slot(table)?;
        let needed = slot.needed.load(Ordering::Acquire);
        if needed != 0 {
            return Err(OracleError::PlainFreeOfDeferred {
                table,
                page: page_of(table),
                frag,
                needed,
                completed,
            });
        }
        Ok(())
    }

    /// `page` is really being freed at time `now` with `completed` grace periods done: every
    /// deferred fragment's grace period must be among them. Clears the page's slots either
    /// way, counts each deferred fragment's wait (and the page's, from its last deferral)
    /// into the waits, if any, and returns the first violation with how many fragments were
    /// freed early.
    pub fn check_page_free(
        &self,
        page: u64,
        completed: u64,
        now: u64,
    ) -> Result<(), (OracleError, usize)> {
        let page = page_of(page);
        let mut first = None;
        let mut early = 0;
        // The page's last deferral: the largest `needed`, then the latest time.
        let mut last: Option<(u64, u64)> = None;
        for frag in 0..self.geo.frags_per_page {
            let table = page + (frag * self.geo.frag_size) as u64;
            let Ok((slot, _)) = self.slot(table) else {
                return Err((OracleError::OutOfRange { table }, 1));
            };
            let needed = slot.needed.swap(0, Ordering::AcqRel);
            if let (Some(w), true) = (self.waits, needed != 0) {
                let at = slot.deferred_at.load(Ordering::Relaxed);
                let since = slot.completed_at_defer.load(Ordering::Relaxed);
                w.table(needed, since, completed, now.saturating_sub(at));
                last = last.max(Some((needed, at)));
            }
            if needed != 0 && completed < needed {
                early += 1;
                first.get_or_insert(OracleError::EarlyFree {
                    table,
                    page,
                    frag,
                    needed,
                    completed,
                });
            }
        }
        if let (Some(w), Some((needed, at))) = (self.waits, last) {
            w.page(full_gps(needed, completed), now.saturating_sub(at));
        }
        match first {
            Some(e) => Err((e, early)),
            None => Ok(()),
        }
    }

    /// The snapshot `table` waits for (0 = not deferred), for the debugger and the figures.
    pub fn needed(&self, table: u64) -> u64 {
        self.slot(table).map_or(0, |(s, _)| s.needed.load(Ordering::Acquire))
    }

    /// Fragments of `page` that wait for a grace period.
    pub fn deferred_frags(&self, page: u64) -> usize {
        let page = page_of(page);
        (0..self.geo.frags_per_page)
            .filter(|&f| self.needed(page + (f * self.geo.frag_size) as u64) != 0)
            .count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::pgtable_frag::{PTE_FRAG, RADIX64_PTE_FRAG};
    use crate::rcu::rcu_seq_snap;

    #[test]
    fn needed_gp_is_linux_rcu_seq_snap() {
        for s in 0..64 {
            assert_eq!(needed_gp(s), rcu_seq_snap(s), "gp_seq {s}");
        }
        assert_eq!(needed_gp(4), 6, "idle: the next grace period");
        assert_eq!(needed_gp(5), 8, "running: the one after it");
    }

    const FRAMES: usize = 4;
    const PAGE: u64 = 2 * FRAME_SIZE;

    fn slots(geo: &FragGeometry) -> Vec<OracleSlot> {
        (0..GpOracle::slots_for(FRAMES, geo)).map(|_| OracleSlot::new()).collect()
    }

    #[test]
    fn free_after_the_needed_grace_period_passes() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        // Idle at gp_seq 4: needs the end of the next grace period, 6.
        o.record_defer(PAGE + 0x3000, 4, 0).unwrap();
        assert_eq!(o.needed(PAGE + 0x3000), 6);
        assert_eq!(o.deferred_frags(PAGE), 1);
        assert_eq!(o.check_page_free(PAGE, 6, 10), Ok(()));
        assert_eq!(o.deferred_frags(PAGE), 0, "a real free clears the page's slots");
    }

    #[test]
    fn late_deferral_freed_with_the_running_grace_period_is_caught() {
        // The thread's bug: a table deferred while grace period 5 runs needs 8, not 6.
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        o.record_defer(PAGE, 4, 0).unwrap(); // first deferral, idle: 6
        o.record_defer(PAGE + 0x1000, 5, 0).unwrap(); // late: 8
        let Err((e, n)) = o.check_page_free(PAGE, 6, 0) else { panic!("early free not caught") };
        assert_eq!(n, 1);
        assert_eq!(
            e,
            OracleError::EarlyFree {
                table: PAGE + 0x1000,
                page: PAGE,
                frag: 1,
                needed: 8,
                completed: 6
            }
        );
        let msg = e.to_string();
        assert!(msg.contains("needs gp_seq 8") && msg.contains("completed is 6"), "{msg}");
        assert!(msg.contains("freed 1 grace period(s) too early"), "{msg}");
    }

    #[test]
    fn free_with_no_grace_period_is_caught_for_every_fragment() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        for f in 0..4 {
            o.record_defer(PAGE + f * 0x1000, 10, 0).unwrap();
        }
        assert!(matches!(o.check_page_free(PAGE, 10, 0), Err((OracleError::EarlyFree { .. }, 4))));
    }

    #[test]
    fn undeferred_fragments_need_nothing() {
        let s = slots(&PTE_FRAG);
        let w = GpWaits::new();
        let o = GpOracle::new(&s, PTE_FRAG).with_waits(&w);
        assert_eq!(o.check_page_free(PAGE, 0, 0), Ok(()));
        assert_eq!(o.check_plain_free(PAGE + 0x2000, 0), Ok(()));
        assert_eq!(w.take(), GpWaitCounts::default(), "a plain page free is no wait");
    }

    #[test]
    fn plain_free_of_a_deferred_table_is_caught() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        o.record_defer(PAGE + 0x2000, 4, 0).unwrap();
        assert!(matches!(
            o.check_plain_free(PAGE + 0x2000, 100),
            Err(OracleError::PlainFreeOfDeferred { frag: 2, needed: 6, .. })
        ));
        assert_eq!(o.check_plain_free(PAGE + 0x3000, 0), Ok(()), "other fragments are free");
    }

    #[test]
    fn deferring_twice_is_caught() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        o.record_defer(PAGE, 4, 0).unwrap();
        assert!(matches!(o.record_defer(PAGE, 6, 0), Err(OracleError::DeferredTwice { .. })));
    }

    #[test]
    fn pages_are_independent_and_256_fragments_fit() {
        let s = slots(&RADIX64_PTE_FRAG);
        let o = GpOracle::new(&s, RADIX64_PTE_FRAG);
        o.record_defer(PAGE + 255 * 256, 6, 0).unwrap();
        o.record_defer(PAGE + FRAME_SIZE, 8, 0).unwrap();
        assert_eq!(o.check_page_free(PAGE, 8, 0), Ok(()));
        assert!(o.check_page_free(PAGE + FRAME_SIZE, 8, 0).is_err());
    }

    #[test]
    fn tables_outside_the_frames_are_refused() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        let far = FRAMES as u64 * FRAME_SIZE;
        assert_eq!(o.record_defer(far, 4, 0), Err(OracleError::OutOfRange { table: far }));
    }

    #[test]
    fn full_grace_periods_after_a_deferral() {
        // Deferred at idle gp_seq 4: needs 6; freed at 6 after one grace period, at 8 after two.
        assert_eq!(full_gps(needed_gp(4), 4), 0);
        assert_eq!(full_gps(needed_gp(4), 6), 1);
        assert_eq!(full_gps(needed_gp(4), 8), 2);
        // Deferred while 5 runs: 5's end does not count, 7's is the first.
        assert_eq!(full_gps(needed_gp(5), 6), 0);
        assert_eq!(full_gps(needed_gp(5), 8), 1);
    }

    #[test]
    fn waits_are_counted_per_table_and_per_page() {
        let s = slots(&PTE_FRAG);
        let w = GpWaits::new();
        let o = GpOracle::new(&s, PTE_FRAG).with_waits(&w);
        // Page A, `active`-like: two tables, the page queued at its last deferral (idle at
        // 6, needs 8) and freed when 8 completed. The first table, deferred at 4, waited for
        // two grace periods; the page, from its last deferral, for one.
        o.record_defer(PAGE, 4, 100).unwrap();
        o.record_defer(PAGE + 0x1000, 6, 150).unwrap();
        assert_eq!(o.check_page_free(PAGE, 8, 200), Ok(()));
        // Page B, `refcount`-like: a deferral at 6 queues the head and 7 starts; a late one
        // lands in 7 (needs 10); the callback re-queues once and the page goes at 10.
        o.record_defer(PAGE + FRAME_SIZE, 6, 300).unwrap();
        o.record_defer(PAGE + FRAME_SIZE + 0x1000, 7, 310).unwrap();
        assert_eq!(o.check_page_free(PAGE + FRAME_SIZE, 10, 400), Ok(()));
        let c = w.take();
        assert_eq!(c.tables, [0, 2, 2, 0, 0]);
        assert_eq!(c.pages, [0, 2, 0, 0, 0], "each page one grace period after its last deferral");
        assert_eq!(c.in_running_gp, 1);
        // Completed between deferral and free: 2 + 1 + 2 + 2 (7 was running at the late one).
        assert_eq!(c.completed_between, 7);
        assert_eq!((c.table_time, c.table_time_max), (100 + 50 + 100 + 90, 100));
        assert_eq!((c.page_time, c.page_time_max), (50 + 90, 90));
        assert_eq!(c.mean_table_gps(), 1.5);
        assert_eq!(c.mean_page_gps(), 1.0);
        assert_eq!((c.mean_table_time(), c.mean_page_time()), (85, 70));
        assert_eq!(GpWaitCounts::hist(&c.tables).to_string(), "0/2/2/0/0");
        assert_eq!(w.take(), GpWaitCounts::default(), "take resets");
    }

    #[test]
    fn early_frees_land_in_bucket_zero_and_long_waits_in_the_last() {
        let s = slots(&PTE_FRAG);
        let w = GpWaits::new();
        let o = GpOracle::new(&s, PTE_FRAG).with_waits(&w);
        o.record_defer(PAGE, 4, 0).unwrap();
        assert!(o.check_page_free(PAGE, 4, 0).is_err(), "no grace period: caught");
        o.record_defer(PAGE + FRAME_SIZE, 4, 0).unwrap();
        assert_eq!(o.check_page_free(PAGE + FRAME_SIZE, 40, 0), Ok(()));
        let mut c = w.take();
        assert_eq!(c.tables, [1, 0, 0, 0, 1]);
        assert_eq!(c.pages, [1, 0, 0, 0, 1]);
        let before = c;
        c.merge(&before);
        assert_eq!(c.tables, [2, 0, 0, 0, 2]);
        assert_eq!(c.n_tables(), 4);
    }
}
