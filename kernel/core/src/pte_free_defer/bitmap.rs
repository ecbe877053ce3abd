//! `bitmap` (Jason Gunthorpe's side structure with one shared head), made race-free with two
//! phases: the per-page [`BitmapSide`] (which `bitmap_sketch` shares) and the deferral and
//! callback that keep every freed fragment's deferral before the `call_rcu` that frees it.

use super::{bump, put_and_free_after_gp, queue, DeferEnv, DeferError};
use crate::pgtable_frag::FragGeometry;
use crate::pgtable_t::{PgTable, PtPage};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_new;

/// Fragments per page the `bitmap` strategies can track: radix64's 256 (`RADIX_PTE_FRAG_NR`).
pub const BITMAP_MAX_FRAGS: usize = 256;
const BITMAP_WORDS: usize = BITMAP_MAX_FRAGS / 64;

/// `bitmap`'s per-page side state, preallocated next to the page descriptors so the retract
/// path never allocates. `deferred` has a bit per fragment, set by its deferral and cleared
/// when the page is really freed (a fragment is never handed out again before that), so a
/// second deferral or a plain free of a deferred table is refused. `phases` counts the
/// deferred fragments by the `call_rcu` that frees them: low half `wait`, those the queued
/// callback covers; high half `next`, those deferred after it was queued. The head is queued
/// exactly while `wait != 0`; one atomic word decides, whatever the fragment count.
/// `bitmap_sketch` uses the low half as its `pending` count.
pub struct BitmapSide {
    deferred: [AtomicU64; BITMAP_WORDS],
    pub(super) phases: AtomicU64,
}

impl Default for BitmapSide {
    fn default() -> Self {
        Self::new()
    }
}

impl BitmapSide {
    /// Where the phase counts sit, for debuggers (the fragment bits come first).
    pub const PHASES_OFFSET: usize = core::mem::offset_of!(BitmapSide, phases);

    const_new! {
        pub fn new() -> Self {
            #[cfg(not(all(test, loom)))]
            let deferred = [const { AtomicU64::new(0) }; BITMAP_WORDS];
            #[cfg(all(test, loom))]
            let deferred = core::array::from_fn(|_| AtomicU64::new(0));
            BitmapSide { deferred, phases: AtomicU64::new(0) }
        }
    }

    /// No fragment of the page waits for a grace period.
    pub fn is_idle(&self) -> bool {
        self.phases.load(Ordering::Acquire) == 0
    }

    /// Fragments covered by the queued callback, and those waiting for the next one.
    pub fn phases(&self) -> (u32, u32) {
        let s = self.phases.load(Ordering::Acquire);
        (s as u32, (s >> 32) as u32)
    }

    /// Whether fragment `i` has been deferred since the page was last freed.
    pub fn is_deferred(&self, i: usize) -> bool {
        self.deferred[i / 64].load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }

    /// Marks fragment `i` deferred; false if it already was.
    pub(super) fn mark(&self, i: usize) -> bool {
        let bit = 1 << (i % 64);
        self.deferred[i / 64].fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    /// The page is being freed: no fragment of it is deferred any more.
    pub(super) fn clear(&self) {
        for w in &self.deferred {
            w.store(0, Ordering::Release);
        }
    }
}

/// The fragment index of `table` in the side state.
pub(super) fn bitmap_frag(
    table: PgTable,
    page: PtPage,
    geo: &FragGeometry,
) -> Result<usize, DeferError> {
    if geo.frags_per_page > BITMAP_MAX_FRAGS {
        return Err(DeferError::TooManyFragments { page, frags_per_page: geo.frags_per_page });
    }
    Ok(table.frag_index(geo))
}

/// Marks `table`'s fragment deferred in its page's side state (both bitmap strategies' first
/// step); refuses a table that is deferred already.
pub(super) fn mark_deferred<'e>(
    table: PgTable,
    page: PtPage,
    geo: &FragGeometry,
    env: &'e impl DeferEnv,
) -> Result<&'e BitmapSide, DeferError> {
    let i = bitmap_frag(table, page, geo)?;
    let side = env.bitmap_side(page);
    if !side.mark(i) {
        return Err(DeferError::AlreadyDeferred { table });
    }
    Ok(side)
}

const WAIT: u64 = 0xffff_ffff;
const NEXT_ONE: u64 = 1 << 32;

/// `bitmap` deferral: the first deferral of a quiet page starts the `wait` phase and queues
/// the head; while it is queued, deferrals collect in `next`, which the callback turns into
/// a new `wait` phase under a new `call_rcu`. So every fragment in `wait` was deferred
/// before the `call_rcu` whose grace period frees it.
pub(super) fn bitmap_defer(
    table: PgTable,
    page: PtPage,
    geo: &FragGeometry,
    env: &impl DeferEnv,
) -> Result<(), DeferError> {
    let side = mark_deferred(table, page, geo, env)?;
    let old = side.phases.fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
        if s & WAIT == 0 {
            Some(s + 1)
        } else {
            Some(s + NEXT_ONE)
        }
    });
    let old = old.unwrap_or_else(|s| s);
    if old & WAIT == 0 {
        queue(page, env)
    } else {
        bump(&env.stats().head_already_queued);
        Ok(())
    }
}

/// `bitmap` callback: frees the `wait` phase; a non-empty `next` becomes the new `wait`
/// phase and is queued again in the same atomic step, so a deferral racing with us either
/// lands in `next` before it (and is re-queued) or finds the page quiet after it (and
/// queues itself).
pub(super) fn bitmap_callback(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    let side = env.bitmap_side(page);
    let old = side
        .phases
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| (s & WAIT != 0).then_some(s >> 32))
        .map_err(|_| DeferError::NotDeferred { page })?;
    if old >> 32 != 0 {
        bump(&env.stats().redefers);
        queue(page, env)?;
    }
    put_and_free_after_gp(page, (old & WAIT) as u32, env)
}
