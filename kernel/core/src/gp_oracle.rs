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

/// One slot per fragment of every frame: `slots[frame * frags_per_page + fragment]`.
pub struct GpOracle<'a> {
    slots: &'a [AtomicU64],
    geo: FragGeometry,
}

impl<'a> GpOracle<'a> {
    /// Slots needed to cover `nr_frames` frames cut by `geo`.
    pub const fn slots_for(nr_frames: usize, geo: &FragGeometry) -> usize {
        nr_frames * geo.frags_per_page
    }

    /// An oracle over `slots` (all 0), for tables of geometry `geo`.
    pub fn new(slots: &'a [AtomicU64], geo: FragGeometry) -> Self {
        GpOracle { slots, geo }
    }

    fn slot(&self, table: u64) -> Result<(&AtomicU64, usize), OracleError> {
        let frag = frag_index(table, &self.geo);
        let i = (page_of(table) / FRAME_SIZE) as usize * self.geo.frags_per_page + frag;
        self.slots.get(i).map(|s| (s, frag)).ok_or(OracleError::OutOfRange { table })
    }

    /// Records that `table` was detached and deferred and needs grace period `needed`
    /// (`rcu_seq_snap(gp_seq)` read after the unlink and flush).
    pub fn record_defer(&self, table: u64, needed: u64) -> Result<(), OracleError> {
        let (slot, frag) = self.slot(table)?;
        debug_assert!(needed != 0, "a grace-period snapshot is never 0");
        let old = slot.swap(needed, Ordering::AcqRel);
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
        let needed = slot.load(Ordering::Acquire);
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

    /// `page` is really being freed with `completed` grace periods done: every deferred
    /// fragment's grace period must be among them. Clears the page's slots either way, and
    /// returns the first violation with how many fragments were freed early.
    pub fn check_page_free(&self, page: u64, completed: u64) -> Result<(), (OracleError, usize)> {
        let page = page_of(page);
        let mut first = None;
        let mut early = 0;
        for frag in 0..self.geo.frags_per_page {
            let table = page + (frag * self.geo.frag_size) as u64;
            let Ok((slot, _)) = self.slot(table) else {
                return Err((OracleError::OutOfRange { table }, 1));
            };
            let needed = slot.swap(0, Ordering::AcqRel);
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
        match first {
            Some(e) => Err((e, early)),
            None => Ok(()),
        }
    }

    /// The snapshot `table` waits for (0 = not deferred), for the debugger and the figures.
    pub fn needed(&self, table: u64) -> u64 {
        self.slot(table).map_or(0, |(s, _)| s.load(Ordering::Acquire))
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

    fn slots(geo: &FragGeometry) -> Vec<AtomicU64> {
        (0..GpOracle::slots_for(FRAMES, geo)).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn free_after_the_needed_grace_period_passes() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        // Idle at gp_seq 4: needs the end of the next grace period, 6.
        let needed = rcu_seq_snap(4);
        assert_eq!(needed, 6);
        o.record_defer(PAGE + 0x3000, needed).unwrap();
        assert_eq!(o.deferred_frags(PAGE), 1);
        assert_eq!(o.check_page_free(PAGE, 6), Ok(()));
        assert_eq!(o.deferred_frags(PAGE), 0, "a real free clears the page's slots");
    }

    #[test]
    fn late_deferral_freed_with_the_running_grace_period_is_caught() {
        // The thread's bug: a table deferred while grace period 5 runs needs 8, not 6.
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        o.record_defer(PAGE, rcu_seq_snap(4)).unwrap(); // first deferral, idle: 6
        o.record_defer(PAGE + 0x1000, rcu_seq_snap(5)).unwrap(); // late: 8
        let Err((e, n)) = o.check_page_free(PAGE, 6) else { panic!("early free not caught") };
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
            o.record_defer(PAGE + f * 0x1000, rcu_seq_snap(10)).unwrap();
        }
        assert!(matches!(o.check_page_free(PAGE, 10), Err((OracleError::EarlyFree { .. }, 4))));
    }

    #[test]
    fn undeferred_fragments_need_nothing() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        assert_eq!(o.check_page_free(PAGE, 0), Ok(()));
        assert_eq!(o.check_plain_free(PAGE + 0x2000, 0), Ok(()));
    }

    #[test]
    fn plain_free_of_a_deferred_table_is_caught() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        o.record_defer(PAGE + 0x2000, 6).unwrap();
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
        o.record_defer(PAGE, 6).unwrap();
        assert!(matches!(o.record_defer(PAGE, 8), Err(OracleError::DeferredTwice { .. })));
    }

    #[test]
    fn pages_are_independent_and_256_fragments_fit() {
        let s = slots(&RADIX64_PTE_FRAG);
        let o = GpOracle::new(&s, RADIX64_PTE_FRAG);
        o.record_defer(PAGE + 255 * 256, 8).unwrap();
        o.record_defer(PAGE + FRAME_SIZE, 10).unwrap();
        assert_eq!(o.check_page_free(PAGE, 8), Ok(()));
        assert!(o.check_page_free(PAGE + FRAME_SIZE, 8).is_err());
    }

    #[test]
    fn tables_outside_the_frames_are_refused() {
        let s = slots(&PTE_FRAG);
        let o = GpOracle::new(&s, PTE_FRAG);
        let far = FRAMES as u64 * FRAME_SIZE;
        assert_eq!(o.record_defer(far, 6), Err(OracleError::OutOfRange { table: far }));
    }
}
