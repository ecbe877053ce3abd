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

use core::fmt;
use core::str::FromStr;

use crate::page_desc::flags;
use crate::pgtable_frag::{
    self as frag, frag_index, page_of, FragCache, FragError, FragGeometry, PageSource,
};
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::const_new;

/// Hugh's bias: beyond any fragment count, so `refcount / PTE_FREE_DEFERRED` counts the
/// pending deferral tokens and `refcount % PTE_FREE_DEFERRED` the plain references.
pub const PTE_FREE_DEFERRED: u32 = 0x10000;

/// Fragments per page the `bitmap` strategies can track: radix64's 256 (`RADIX_PTE_FRAG_NR`).
pub const BITMAP_MAX_FRAGS: usize = 256;
const BITMAP_WORDS: usize = BITMAP_MAX_FRAGS / 64;

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
    DoubleQueue { page: u64 },
    /// The fragment allocator refused (double free, not a page table, misaligned...).
    Frag(FragError),
    /// `bitmap`: the table is already waiting for a grace period (deferred or freed twice).
    AlreadyDeferred { table: u64 },
    /// An RCU callback for a page with nothing deferred on it.
    NotDeferred { page: u64 },
    /// `bitmap`: more fragments per page than its side word tracks.
    TooManyFragments { page: u64, frags_per_page: usize },
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
                page_of(table)
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
    phases: AtomicU64,
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
    fn mark(&self, i: usize) -> bool {
        let bit = 1 << (i % 64);
        self.deferred[i / 64].fetch_or(bit, Ordering::AcqRel) & bit == 0
    }

    /// The page is being freed: no fragment of it is deferred any more.
    fn clear(&self) {
        for w in &self.deferred {
            w.store(0, Ordering::Release);
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

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// What the strategies need from the kernel (or a test): pages, the RCU, the side state.
pub trait DeferEnv: PageSource {
    /// Queues `page`'s single `rcu_head` (`desc(page).rcu_head`); after a grace period the
    /// env calls `strategy.rcu_callback(page, env)`. Must refuse with
    /// [`DeferError::DoubleQueue`] if that head is already queued (debug objects).
    fn call_rcu(&self, page: u64) -> Result<(), DeferError>;
    /// `bitmap`'s side state of `page`.
    fn bitmap_side(&self, page: u64) -> &BitmapSide;
    fn stats(&self) -> &DeferStats;
    /// How PTE tables are cut out of a page in the running MMU mode (`PTE_FRAG` for radix
    /// and hash with 4K tables, `RADIX64_PTE_FRAG` for radix64).
    fn pte_geometry(&self) -> FragGeometry;
}

impl Strategy {
    /// Defers freeing PTE table `table` (already unlinked, e.g. by `pmdp_collapse_flush`)
    /// until after a grace period; lockless walkers may still be reading it.
    pub fn pte_free_defer(self, table: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
        bump(&env.stats().deferrals);
        let geo = env.pte_geometry();
        let page = check_table(table, &geo, env)?;
        match self {
            // One call_rcu per table: the second within a grace period is refused.
            Strategy::Naive => queue(page, env),
            Strategy::Refcount => refcount_defer(page, env),
            Strategy::Active => {
                env.desc(page).set_flag(flags::ACTIVE);
                put_active(page, 1, env)
            }
            Strategy::Bitmap => bitmap_defer(table, page, &geo, env),
            Strategy::BitmapSketch => sketch_defer(table, page, &geo, env),
            Strategy::None => put_and_free_now(page, 1, env),
        }
    }

    /// Frees a table that no lockless walker can see (teardown, a table never installed):
    /// Linux `pte_fragment_free`, honouring the strategy's page state.
    pub fn pte_free(self, table: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
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
        let page = page_of(next);
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
    pub fn rcu_callback(self, page: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
        let stats = env.stats();
        bump(&stats.callbacks);
        // Saturating: a spurious callback (an error below) must not wrap the gauge.
        let _ =
            stats.waiting.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| w.checked_sub(1));
        match self {
            Strategy::Naive => {
                if frag::pt_frag_ref_put(page, 1, env)? == 0 {
                    free_page(page, env, true);
                }
                Ok(())
            }
            Strategy::Refcount => refcount_callback(page, env),
            Strategy::Active => {
                let desc = env.desc(page);
                if !desc.has_flag(flags::PAGE_TABLE) {
                    return Err(FragError::NotPageTable { page }.into());
                }
                if desc.pt_frag_refcount.load(Ordering::Acquire) != 0 {
                    return Err(DeferError::NotDeferred { page });
                }
                free_page(page, env, true);
                Ok(())
            }
            Strategy::Bitmap => bitmap_callback(page, env),
            Strategy::BitmapSketch => sketch_callback(page, env),
            Strategy::None => Err(DeferError::NotDeferred { page }),
        }
    }
}

/// The page of `table`, refusing a misaligned table or one outside a page-table page.
fn check_table(table: u64, geo: &FragGeometry, env: &impl DeferEnv) -> Result<u64, DeferError> {
    if !table.is_multiple_of(geo.frag_size as u64) {
        return Err(FragError::Misaligned { addr: table, frag_size: geo.frag_size }.into());
    }
    let page = page_of(table);
    if !env.desc(page).has_flag(flags::PAGE_TABLE) {
        return Err(FragError::NotPageTable { page }.into());
    }
    Ok(page)
}

/// Queues `page`'s head, keeping the counters. The gauge goes up first so that a callback
/// running before we return cannot take it below its true value.
fn queue(page: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
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
fn free_page(page: u64, env: &impl DeferEnv, after_gp: bool) {
    env.desc(page).clear_flag(flags::ACTIVE);
    env.bitmap_side(page).clear();
    frag::pte_free_now(page, env);
    let stats = env.stats();
    bump(if after_gp { &stats.pages_freed } else { &stats.pages_freed_now });
}

/// Drops `n` references; frees the page at once if they were the last.
fn put_and_free_now(page: u64, n: u32, env: &impl DeferEnv) -> Result<(), DeferError> {
    if frag::pt_frag_ref_put(page, n, env)? == 0 {
        free_page(page, env, false);
    }
    Ok(())
}

/// `active`: drops `n` references; the last one frees through one `call_rcu` if a deferral
/// marked the page, at once otherwise (Linux v6.6 `pte_fragment_free`).
fn put_active(page: u64, n: u32, env: &impl DeferEnv) -> Result<(), DeferError> {
    // The put is AcqRel, so the last dropper sees every earlier deferral's ACTIVE.
    if frag::pt_frag_ref_put(page, n, env)? != 0 {
        return Ok(());
    }
    if env.desc(page).test_and_clear_flag(flags::ACTIVE) {
        queue(page, env)
    } else {
        free_page(page, env, false);
        Ok(())
    }
}

const D: u32 = PTE_FREE_DEFERRED;

/// `refcount`: changes the count with `f(old) -> new`, or refuses (changing nothing) when
/// `f` returns None.
fn refcount_update(
    page: u64,
    env: &impl DeferEnv,
    f: impl Fn(u32) -> Option<u32>,
) -> Result<u32, u32> {
    env.desc(page).pt_frag_refcount.fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
}

/// `refcount`: drops `n` plain references; the page goes if they were all it had. Refuses a
/// put that would eat into a deferral token.
fn refcount_put_plain(
    page: u64,
    n: u32,
    env: &impl DeferEnv,
    after_gp: bool,
) -> Result<(), DeferError> {
    let old = refcount_update(page, env, |c| (c % D >= n && c > 0).then(|| c - n))
        .map_err(|c| FragError::Underflow { page, refcount: c, put: n })?;
    if old == n {
        free_page(page, env, after_gp);
    }
    Ok(())
}

/// `refcount` deferral: turn our plain reference into a token of `PTE_FREE_DEFERRED`; queue
/// the head only if no other token is pending.
fn refcount_defer(page: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
    debug_assert!(env.pte_geometry().frags_per_page < D as usize);
    let old = refcount_update(page, env, |c| (c % D >= 1).then(|| c + (D - 1)))
        .map_err(|c| FragError::Underflow { page, refcount: c, put: 1 })?;
    if old + (D - 1) < 2 * D {
        queue(page, env)
    } else {
        bump(&env.stats().head_already_queued);
        Ok(())
    }
}

/// `refcount` callback (the seed's `pte_free_now`).
fn refcount_callback(page: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
    // Turn our token back into the plain reference it was.
    let old = refcount_update(page, env, |c| c.checked_sub(D - 1).filter(|&r| r >= 1))
        .map_err(|_| DeferError::NotDeferred { page })?;
    let mut refcount = old - (D - 1);
    if refcount < D {
        // Nothing came meanwhile: free our table like pte_fragment_free.
        return refcount_put_plain(page, 1, env, true);
    }
    // More deferrals came while we waited: one more grace period covers all of them, so
    // fold their tokens into one.
    let desc = env.desc(page);
    while refcount >= 2 * D {
        refcount = desc.pt_frag_refcount.fetch_sub(D, Ordering::AcqRel) - D;
    }
    // Our plain reference goes now; the remaining token keeps the page for the next callback.
    desc.pt_frag_refcount.fetch_sub(1, Ordering::AcqRel);
    bump(&env.stats().redefers);
    queue(page, env)
}

/// The fragment index of `table` in the side state.
fn bitmap_frag(table: u64, page: u64, geo: &FragGeometry) -> Result<usize, DeferError> {
    if geo.frags_per_page > BITMAP_MAX_FRAGS {
        return Err(DeferError::TooManyFragments { page, frags_per_page: geo.frags_per_page });
    }
    Ok(frag_index(table, geo))
}

const WAIT: u64 = 0xffff_ffff;
const NEXT_ONE: u64 = 1 << 32;

/// `bitmap` deferral: the first deferral of a quiet page starts the `wait` phase and queues
/// the head; while it is queued, deferrals collect in `next`, which the callback turns into
/// a new `wait` phase under a new `call_rcu`. So every fragment in `wait` was deferred
/// before the `call_rcu` whose grace period frees it.
fn bitmap_defer(
    table: u64,
    page: u64,
    geo: &FragGeometry,
    env: &impl DeferEnv,
) -> Result<(), DeferError> {
    let i = bitmap_frag(table, page, geo)?;
    let side = env.bitmap_side(page);
    if !side.mark(i) {
        return Err(DeferError::AlreadyDeferred { table });
    }
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
fn bitmap_callback(page: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
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

/// Drops the references of fragments whose grace period is over; frees the page if last.
fn put_and_free_after_gp(page: u64, n: u32, env: &impl DeferEnv) -> Result<(), DeferError> {
    if frag::pt_frag_ref_put(page, n, env)? == 0 {
        free_page(page, env, true);
    }
    Ok(())
}

/// `bitmap_sketch` deferral, as in the mail (with its inverted test put right): mark the
/// fragment pending, queue if nothing was.
fn sketch_defer(
    table: u64,
    page: u64,
    geo: &FragGeometry,
    env: &impl DeferEnv,
) -> Result<(), DeferError> {
    let i = bitmap_frag(table, page, geo)?;
    let side = env.bitmap_side(page);
    if !side.mark(i) {
        return Err(DeferError::AlreadyDeferred { table });
    }
    if side.phases.fetch_add(1, Ordering::AcqRel) == 0 {
        queue(page, env)
    } else {
        bump(&env.stats().head_already_queued);
        Ok(())
    }
}

/// `bitmap_sketch` callback: frees whatever is pending now, including deferrals that came
/// after the grace period ended (the race).
fn sketch_callback(page: u64, env: &impl DeferEnv) -> Result<(), DeferError> {
    let pending = env.bitmap_side(page).phases.swap(0, Ordering::AcqRel);
    if pending == 0 {
        return Err(DeferError::NotDeferred { page });
    }
    put_and_free_after_gp(page, pending as u32, env)
}

#[cfg(all(test, not(loom)))]
mod tests;
