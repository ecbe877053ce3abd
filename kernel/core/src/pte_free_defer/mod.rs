//! `pte_free_defer()`: freeing a PTE table after an RCU grace period when up to 16 tables
//! share one 64 KiB page and that page has ONE `rcu_head` (the powerpc problem of the 2023
//! retract_page_tables() series). Five answers from the thread, selectable at boot:
//!
//! - `naive` (patch v1): `call_rcu` per table; a second deferral within a grace period
//!   queues the queued head, which the RCU's debug check must catch.
//! - `refcount` (Hugh Dickins' v2, the seed): a deferral turns its reference into
//!   `PTE_FREE_DEFERRED`; the first queues, the callback re-defers once for all that came
//!   meanwhile.
//! - `active` (Linux v6.6): mark the page Active and drop the reference; the last reference
//!   frees through one `call_rcu` if Active was set, at once otherwise.
//! - `bitmap` (Jason Gunthorpe's side structure with one shared head), made race-free with
//!   two phases.
//! - `none`: free at once, the negative control the lockless walkers must catch.
//!
//! plus `bitmap_sketch`, the side structure exactly as sketched in the mail, kept to show its
//! race (see [`Strategy::BitmapSketch`]).
//!
//! Invariant, for `refcount`, `active` and `bitmap`: a page is returned to the page source
//! exactly once, by whoever drops its last reference, and only after a grace period that
//! started after the last deferral of any of its tables; and at most one `call_rcu` per page
//! is pending at a time (`naive` breaks this and must be caught).
//!
//! This file holds what the strategies share: the [`Strategy`] list and its names, the
//! errors, the counters, the [`DeferEnv`] the kernel (or a test) provides, the dispatch from
//! a [`Strategy`] to its code, and the page-level steps every strategy uses (queueing the
//! head, the real free). Each strategy has its own file named after it: `naive.rs`,
//! `refcount.rs`, `active.rs`, `bitmap.rs` (with the side state `bitmap_sketch` shares),
//! `bitmap_sketch.rs` and `none.rs`.

use crate::pgtable_t::{DetachedTable, PgTable, PtPage};
use core::fmt;
use core::str::FromStr;

use crate::page_desc::PageFlags;
use crate::pgtable_frag::{
    self as frag, frag_index, FragCache, FragError, FragGeometry, PageSource,
};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_new;

mod active;
mod bitmap;
mod bitmap_sketch;
mod naive;
mod none;
mod refcount;

use active::{active_callback, put_active};
use bitmap::{bitmap_callback, bitmap_defer, bitmap_frag};
pub use bitmap::{BitmapSide, BITMAP_MAX_FRAGS};
use bitmap_sketch::{sketch_callback, sketch_defer};
use naive::{naive_callback, naive_defer};
use none::{none_callback, none_defer};
pub use refcount::PTE_FREE_DEFERRED;
use refcount::{refcount_callback, refcount_defer, refcount_put_plain};

/// How deferred page-table frees share a page's single `rcu_head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Naive,
    Refcount,
    Active,
    Bitmap,
    /// The mail's sketch: `pending |= bit`, `call_rcu` if `pending` was 0; the callback
    /// frees `xchg(pending, 0)`. Racy: a deferral that lands after the grace period ended
    /// but before the callback's `xchg` sees `pending != 0`, so it queues nothing, and the
    /// callback frees its fragment with no grace period after the deferral; a walker that
    /// found that table before it was unlinked may still be reading it. Kept as a negative
    /// control for the loom model and the host tests.
    BitmapSketch,
    None,
}

/// Not a strategy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStrategy;

impl fmt::Display for UnknownStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown pte_free_defer strategy (naive|refcount|active|bitmap|bitmap_sketch|none)"
        )
    }
}

impl Strategy {
    /// The strategies DESIGN.md compares, in its order.
    pub const ALL: [Strategy; 5] =
        [Strategy::Naive, Strategy::Refcount, Strategy::Active, Strategy::Bitmap, Strategy::None];

    /// The `pte_free_defer=` name.
    pub const fn name(self) -> &'static str {
        match self {
            Strategy::Naive => "naive",
            Strategy::Refcount => "refcount",
            Strategy::Active => "active",
            Strategy::Bitmap => "bitmap",
            Strategy::BitmapSketch => "bitmap_sketch",
            Strategy::None => "none",
        }
    }

    /// Every strategy `pte_free_defer=` accepts, `bitmap_sketch` included, in a fixed order
    /// (the kernel stores an index into it; the gdb script knows the same order).
    pub const CHOICES: [Strategy; 6] = [
        Strategy::Naive,
        Strategy::Refcount,
        Strategy::Active,
        Strategy::Bitmap,
        Strategy::BitmapSketch,
        Strategy::None,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Self::CHOICES.into_iter().find(|st| st.name() == s)
    }

    /// Position in [`Strategy::CHOICES`].
    pub fn index(self) -> usize {
        Self::CHOICES.iter().position(|c| *c == self).unwrap_or(0)
    }
}

impl FromStr for Strategy {
    type Err = UnknownStrategy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Strategy::parse(s).ok_or(UnknownStrategy)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a deferral or callback refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferError {
    /// `call_rcu` on a page whose head is still queued (the `naive` bug, caught).
    DoubleQueue { page: PtPage },
    /// The fragment allocator refused (double free, not a page table, misaligned...).
    Frag(FragError),
    /// `bitmap`: the table is already waiting for a grace period (deferred or freed twice).
    AlreadyDeferred { table: PgTable },
    /// An RCU callback for a page with nothing deferred on it.
    NotDeferred { page: PtPage },
    /// `bitmap`: more fragments per page than its side word tracks.
    TooManyFragments { page: PtPage, frags_per_page: usize },
}

impl From<FragError> for DeferError {
    fn from(e: FragError) -> Self {
        DeferError::Frag(e)
    }
}

impl fmt::Display for DeferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DeferError::DoubleQueue { page } => {
                write!(f, "double call_rcu: rcu_head of page {page:#x} is already queued")
            }
            DeferError::Frag(e) => e.fmt(f),
            DeferError::AlreadyDeferred { table } => write!(
                f,
                "table {table:#x} (page {:#x}) is already waiting for a grace period",
                table.page()
            ),
            DeferError::NotDeferred { page } => {
                write!(f, "RCU callback for page {page:#x}, which has nothing deferred")
            }
            DeferError::TooManyFragments { page, frags_per_page } => write!(
                f,
                "page {page:#x}: {frags_per_page} fragments per page, \
                 bitmap tracks {BITMAP_MAX_FRAGS}"
            ),
        }
    }
}

/// Counters for the figures; all monotonic except `waiting`.
#[derive(Default)]
pub struct DeferStats {
    /// `pte_free_defer` calls.
    pub deferrals: AtomicU64,
    /// `call_rcu`s that queued a page's head.
    pub call_rcu: AtomicU64,
    /// Deferrals that found the page's head already queued (or the page already pending),
    /// so queued nothing; for `naive`, and any strategy bug, the refused `call_rcu`s.
    pub head_already_queued: AtomicU64,
    /// Callbacks that queued the head again for deferrals that came meanwhile.
    pub redefers: AtomicU64,
    /// RCU callbacks run.
    pub callbacks: AtomicU64,
    /// Pages freed from an RCU callback, after a grace period.
    pub pages_freed: AtomicU64,
    /// Pages freed with no grace period on the way (normal frees, `none`, teardown).
    pub pages_freed_now: AtomicU64,
    /// Pages whose head is queued now, and the most at once.
    pub waiting: AtomicU64,
    pub waiting_peak: AtomicU64,
}

/// A copy of [`DeferStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeferCounts {
    pub deferrals: u64,
    pub call_rcu: u64,
    pub head_already_queued: u64,
    pub redefers: u64,
    pub callbacks: u64,
    pub pages_freed: u64,
    pub pages_freed_now: u64,
    pub waiting: u64,
    pub waiting_peak: u64,
}

impl DeferStats {
    const_new! {
        pub fn new() -> Self {
            DeferStats {
                deferrals: AtomicU64::new(0),
                call_rcu: AtomicU64::new(0),
                head_already_queued: AtomicU64::new(0),
                redefers: AtomicU64::new(0),
                callbacks: AtomicU64::new(0),
                pages_freed: AtomicU64::new(0),
                pages_freed_now: AtomicU64::new(0),
                waiting: AtomicU64::new(0),
                waiting_peak: AtomicU64::new(0),
            }
        }
    }

    pub fn snapshot(&self) -> DeferCounts {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DeferCounts {
            deferrals: l(&self.deferrals),
            call_rcu: l(&self.call_rcu),
            head_already_queued: l(&self.head_already_queued),
            redefers: l(&self.redefers),
            callbacks: l(&self.callbacks),
            pages_freed: l(&self.pages_freed),
            pages_freed_now: l(&self.pages_freed_now),
            waiting: l(&self.waiting),
            waiting_peak: l(&self.waiting_peak),
        }
    }
}

impl DeferCounts {
    /// What happened between `before` and `self` (two snapshots of the same stats): the
    /// counters' differences; `waiting` and `waiting_peak` as they stand in `self` (the peak
    /// is reset at the start of a workload, not accumulated).
    pub fn since(&self, before: &DeferCounts) -> DeferCounts {
        DeferCounts {
            deferrals: self.deferrals - before.deferrals,
            call_rcu: self.call_rcu - before.call_rcu,
            head_already_queued: self.head_already_queued - before.head_already_queued,
            redefers: self.redefers - before.redefers,
            callbacks: self.callbacks - before.callbacks,
            pages_freed: self.pages_freed - before.pages_freed,
            pages_freed_now: self.pages_freed_now - before.pages_freed_now,
            waiting: self.waiting,
            waiting_peak: self.waiting_peak,
        }
    }

    /// Adds up two workloads' counts: counters summed, the peak the larger of the two, what
    /// is still waiting as `other` (the later one) leaves it.
    pub fn add(&mut self, other: &DeferCounts) {
        self.deferrals += other.deferrals;
        self.call_rcu += other.call_rcu;
        self.head_already_queued += other.head_already_queued;
        self.redefers += other.redefers;
        self.callbacks += other.callbacks;
        self.pages_freed += other.pages_freed;
        self.pages_freed_now += other.pages_freed_now;
        self.waiting = other.waiting;
        self.waiting_peak = self.waiting_peak.max(other.waiting_peak);
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the strategies need from the kernel (or a test): pages, the RCU, the side state.
pub trait DeferEnv: PageSource {
    /// Queues `page`'s single `rcu_head` (`desc(page).rcu_head`); after a grace period the
    /// env calls `strategy.rcu_callback(page, env)`. Must refuse with
    /// [`DeferError::DoubleQueue`] if that head is already queued (debug objects).
    fn call_rcu(&self, page: PtPage) -> Result<(), DeferError>;
    /// `bitmap`'s side state of `page`.
    fn bitmap_side(&self, page: PtPage) -> &BitmapSide;
    fn stats(&self) -> &DeferStats;
    /// How PTE tables are cut out of a page in the running MMU mode (`PTE_FRAG` for radix
    /// and hash with 4K tables, `RADIX64_PTE_FRAG` for radix64).
    fn pte_geometry(&self) -> FragGeometry;
}

impl Strategy {
    /// Defers freeing PTE table `table` (already unlinked, e.g. by `pmdp_collapse_flush`)
    /// until after a grace period; lockless walkers may still be reading it.
    pub fn pte_free_defer(
        self,
        table: DetachedTable,
        env: &impl DeferEnv,
    ) -> Result<(), DeferError> {
        bump(&env.stats().deferrals);
        let geo = env.pte_geometry();
        let table = table.into_table();
        let page = check_table(table, &geo, env)?;
        match self {
            Strategy::Naive => naive_defer(page, env),
            Strategy::Refcount => refcount_defer(page, env),
            Strategy::Active => {
                env.desc(page.pa()).set_flag(PageFlags::ACTIVE);
                put_active(page, 1, env)
            }
            Strategy::Bitmap => bitmap_defer(table, page, &geo, env),
            Strategy::BitmapSketch => sketch_defer(table, page, &geo, env),
            Strategy::None => none_defer(page, env),
        }
    }

    /// Frees a table that no lockless walker can see (teardown, a table never installed):
    /// Linux `pte_fragment_free`, honouring the strategy's page state.
    pub fn pte_free(self, table: PgTable, env: &impl DeferEnv) -> Result<(), DeferError> {
        let geo = env.pte_geometry();
        let page = check_table(table, &geo, env)?;
        match self {
            Strategy::Refcount => refcount_put_plain(page, 1, env, false),
            Strategy::Active => put_active(page, 1, env),
            Strategy::Bitmap | Strategy::BitmapSketch => {
                let i = bitmap_frag(table, page, &geo)?;
                if env.bitmap_side(page).is_deferred(i) {
                    return Err(DeferError::AlreadyDeferred { table });
                }
                put_and_free_now(page, 1, env)
            }
            Strategy::Naive | Strategy::None => put_and_free_now(page, 1, env),
        }
    }

    /// Address-space teardown: returns the fragments `cache` never handed out (Linux
    /// `pte_frag_destroy`); if that drops the last reference the page takes the strategy's
    /// last-reference path. (Linux v6.6 frees such a page at once even if Active: by then no
    /// walker can use the mm. Here teardown may follow a retract at once, so `active` waits.)
    /// If the references could not be dropped the cache is left as it was.
    pub fn pte_frag_destroy(
        self,
        cache: &mut FragCache,
        geo: &FragGeometry,
        env: &impl DeferEnv,
    ) -> Result<(), DeferError> {
        let Some(next) = cache.peek() else {
            return Ok(());
        };
        let page = PtPage::containing(next);
        let unused = (geo.frags_per_page - frag_index(next, geo)) as u32;
        let dropped = match self {
            Strategy::Refcount => refcount_put_plain(page, unused, env, false),
            Strategy::Active => put_active(page, unused, env),
            _ => put_and_free_now(page, unused, env),
        };
        // A refused put changed nothing; anything else happened after the references went.
        if !matches!(dropped, Err(DeferError::Frag(_))) {
            *cache = FragCache::new();
        }
        dropped
    }

    /// Called by the env after a grace period for a page it queued with `call_rcu`.
    pub fn rcu_callback(self, page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
        let stats = env.stats();
        bump(&stats.callbacks);
        // Saturating: a spurious callback (an error below) must not wrap the gauge.
        let _ =
            stats.waiting.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| w.checked_sub(1));
        match self {
            Strategy::Naive => naive_callback(page, env),
            Strategy::Refcount => refcount_callback(page, env),
            Strategy::Active => active_callback(page, env),
            Strategy::Bitmap => bitmap_callback(page, env),
            Strategy::BitmapSketch => sketch_callback(page, env),
            Strategy::None => none_callback(page),
        }
    }
}

/// The page of `table`, refusing a misaligned table or one outside a page-table page.
fn check_table(
    table: PgTable,
    geo: &FragGeometry,
    env: &impl DeferEnv,
) -> Result<PtPage, DeferError> {
    if !table.pa().is_multiple_of(geo.frag_size as u64) {
        return Err(FragError::Misaligned { addr: table.pa(), frag_size: geo.frag_size }.into());
    }
    let page = table.page();
    if !env.desc(page.pa()).has_flag(PageFlags::PAGE_TABLE) {
        return Err(FragError::NotPageTable { page: page.pa() }.into());
    }
    Ok(page)
}

/// Queues `page`'s head, keeping the counters. The gauge goes up first so that a callback
/// running before we return cannot take it below its true value.
fn queue(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    let stats = env.stats();
    let now = stats.waiting.fetch_add(1, Ordering::Relaxed) + 1;
    if let Err(e) = env.call_rcu(page) {
        stats.waiting.fetch_sub(1, Ordering::Relaxed);
        if matches!(e, DeferError::DoubleQueue { .. }) {
            bump(&stats.head_already_queued);
        }
        return Err(e);
    }
    bump(&stats.call_rcu);
    stats.waiting_peak.fetch_max(now, Ordering::Relaxed);
    Ok(())
}

/// Really frees `page` (its count is 0 and nothing of it is pending): exactly once.
fn free_page(page: PtPage, env: &impl DeferEnv, after_gp: bool) {
    env.desc(page.pa()).clear_flag(PageFlags::ACTIVE);
    env.bitmap_side(page).clear();
    frag::pte_free_now(page, env);
    let stats = env.stats();
    bump(if after_gp { &stats.pages_freed } else { &stats.pages_freed_now });
}

/// Drops `n` references; frees the page at once if they were the last.
fn put_and_free_now(page: PtPage, n: u32, env: &impl DeferEnv) -> Result<(), DeferError> {
    if frag::pt_frag_ref_put(page, n, env)? == 0 {
        free_page(page, env, false);
    }
    Ok(())
}

/// Drops the references of fragments whose grace period is over; frees the page if last.
fn put_and_free_after_gp(page: PtPage, n: u32, env: &impl DeferEnv) -> Result<(), DeferError> {
    if frag::pt_frag_ref_put(page, n, env)? == 0 {
        free_page(page, env, true);
    }
    Ok(())
}

#[cfg(all(test, not(loom)))]
mod tests;
