//! Host tests of the strategies on a single-threaded fake: a Vec stands in for the RCU and
//! every real free is checked against the grace periods that followed each deferral.

use super::*;
use crate::frame_alloc::FRAME_SIZE;
use crate::page_desc::PageDesc;
use crate::pgtable_frag::page_of;
use crate::pgtable_frag::{pte_fragment_alloc, PTE_FRAG, RADIX64_PTE_FRAG};
use crate::pgtable_t::{DetachedTable, PgTable, PtPage};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

const BASE: u64 = 0x2000_0000;

/// Everything the fake RCU and the checker remember.
#[derive(Default)]
struct State {
    allocated: Vec<bool>,
    /// Pages queued with `call_rcu` since the last grace period started.
    queue: Vec<u64>,
    /// Grace periods started and ended.
    started: u64,
    ended: u64,
    /// Deferred tables -> `started` when they were deferred: the grace period numbered one
    /// more is the first that starts after the deferral.
    deferred: HashMap<u64, u64>,
    /// Tables handed out and not yet given back.
    live: HashSet<u64>,
    /// Pages really freed, with `ended` at that time.
    frees: Vec<(u64, u64)>,
    violations: Vec<String>,
    callback_errors: Vec<DeferError>,
}

struct Fake {
    strategy: Strategy,
    geo: FragGeometry,
    descs: Vec<PageDesc>,
    sides: Vec<BitmapSide>,
    stats: DeferStats,
    st: RefCell<State>,
}

impl Fake {
    fn new(strategy: Strategy, npages: usize) -> Self {
        Self::with_geometry(strategy, npages, PTE_FRAG)
    }

    fn with_geometry(strategy: Strategy, npages: usize, geo: FragGeometry) -> Self {
        Fake {
            strategy,
            geo,
            descs: (0..npages).map(|_| PageDesc::new()).collect(),
            sides: (0..npages).map(|_| BitmapSide::new()).collect(),
            stats: DeferStats::new(),
            st: RefCell::new(State { allocated: vec![false; npages], ..State::default() }),
        }
    }

    fn index(&self, pa: u64) -> usize {
        ((pa - BASE) / FRAME_SIZE) as usize
    }

    fn alloc(&self, cache: &mut FragCache, n: usize) -> Vec<u64> {
        let tables: Vec<u64> =
            (0..n).map(|_| pte_fragment_alloc(cache, &self.geo, self, 1).unwrap()).collect();
        self.st.borrow_mut().live.extend(&tables);
        tables
    }

    fn defer(&self, table: u64) -> Result<(), DeferError> {
        {
            let mut st = self.st.borrow_mut();
            let started = st.started;
            st.deferred.insert(table, started);
            st.live.remove(&table);
        }
        self.strategy.pte_free_defer(detach(table), self)
    }

    fn free(&self, table: u64) -> Result<(), DeferError> {
        self.st.borrow_mut().live.remove(&table);
        self.strategy.pte_free(PgTable::new(table), self)
    }

    fn destroy(&self, cache: &mut FragCache) -> Result<(), DeferError> {
        self.strategy.pte_frag_destroy(cache, &self.geo, self)
    }

    /// Starts and ends a grace period; returns the pages whose callbacks it made ready.
    fn gp_start_end(&self) -> Vec<u64> {
        let mut st = self.st.borrow_mut();
        let ready = core::mem::take(&mut st.queue);
        st.started += 1;
        st.ended += 1;
        ready
    }

    /// Runs the callbacks of `pages` as the RCU core would: head marked not queued first.
    fn run_callbacks(&self, pages: Vec<u64>) {
        for page in pages {
            self.desc(page).rcu_head.func.store(0, Ordering::Relaxed);
            if let Err(e) = self.strategy.rcu_callback(PtPage::new(page), self) {
                self.st.borrow_mut().callback_errors.push(e);
            }
        }
    }

    fn gp(&self) {
        let ready = self.gp_start_end();
        self.run_callbacks(ready);
    }

    /// Grace periods until nothing is queued; returns how many it took.
    fn drain(&self) -> u64 {
        let mut n = 0;
        while !self.st.borrow().queue.is_empty() {
            self.gp();
            n += 1;
            assert!(n < 100, "callbacks keep re-queueing");
        }
        n
    }

    fn counts(&self) -> DeferCounts {
        self.stats.snapshot()
    }

    fn frees(&self) -> Vec<(u64, u64)> {
        self.st.borrow().frees.clone()
    }

    fn violations(&self) -> Vec<String> {
        self.st.borrow().violations.clone()
    }

    /// Nothing leaked, nothing left queued, no checker complaint, no callback error.
    fn assert_clean(&self) {
        let st = self.st.borrow();
        assert_eq!(st.violations, Vec::<String>::new());
        assert_eq!(st.callback_errors, vec![]);
        assert!(st.queue.is_empty(), "pages still queued: {:x?}", st.queue);
        assert!(st.allocated.iter().all(|a| !a), "a page was never freed");
        assert!(st.live.is_empty());
        for (d, side) in self.descs.iter().zip(&self.sides) {
            assert_eq!(d.rcu_head.func.load(Ordering::Relaxed), 0);
            assert!(!d.has_flag(PageFlags::ACTIVE | PageFlags::PAGE_TABLE));
            assert!(side.is_idle());
        }
        assert_eq!(self.stats.waiting.load(Ordering::Relaxed), 0);
    }
}

impl PageSource for Fake {
    fn alloc_page(&self) -> Option<u64> {
        let mut st = self.st.borrow_mut();
        let i = st.allocated.iter().position(|a| !a)?;
        st.allocated[i] = true;
        Some(BASE + i as u64 * FRAME_SIZE)
    }

    /// The checker: exactly once, no live table on the page, and a grace period that
    /// started after each deferral has ended.
    fn free_page(&self, page: PtPage) {
        let pa = page.pa();
        let i = self.index(pa);
        let mut st = self.st.borrow_mut();
        if !st.allocated[i] {
            st.violations.push(format!("page {pa:#x} freed twice"));
            return;
        }
        st.allocated[i] = false;
        if let Some(t) = st.live.iter().find(|t| page_of(**t) == pa) {
            let msg = format!("page {pa:#x} freed while table {t:#x} is live");
            st.violations.push(msg);
        }
        let ended = st.ended;
        let mut early: Vec<u64> = st
            .deferred
            .iter()
            .filter(|(t, seen)| page_of(**t) == pa && ended < **seen + 1)
            .map(|(t, _)| *t)
            .collect();
        early.sort();
        for t in early {
            let msg = format!("page {pa:#x} freed before a grace period after deferring {t:#x}");
            st.violations.push(msg);
        }
        st.deferred.retain(|t, _| page_of(*t) != pa);
        st.frees.push((pa, ended));
    }

    fn desc(&self, pa: u64) -> &PageDesc {
        &self.descs[self.index(pa)]
    }
}

impl DeferEnv for Fake {
    fn call_rcu(&self, page: PtPage) -> Result<(), DeferError> {
        let head = &self.desc(page.pa()).rcu_head;
        if head.func.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return Err(DeferError::DoubleQueue { page });
        }
        self.st.borrow_mut().queue.push(page.pa());
        Ok(())
    }

    fn bitmap_side(&self, page: PtPage) -> &BitmapSide {
        &self.sides[self.index(page.pa())]
    }

    fn stats(&self) -> &DeferStats {
        &self.stats
    }

    fn pte_geometry(&self) -> FragGeometry {
        self.geo
    }
}

/// The strategies that must pass the checker.
const CORRECT: [Strategy; 3] = [Strategy::Refcount, Strategy::Active, Strategy::Bitmap];

fn counts(
    call_rcu: u64,
    head_already_queued: u64,
    redefers: u64,
    pages_freed: u64,
    pages_freed_now: u64,
) -> (u64, u64, u64, u64, u64) {
    (call_rcu, head_already_queued, redefers, pages_freed, pages_freed_now)
}

fn got(f: &Fake) -> (u64, u64, u64, u64, u64) {
    let c = f.counts();
    (c.call_rcu, c.head_already_queued, c.redefers, c.pages_freed, c.pages_freed_now)
}

/// The kernel keeps these in statics (the side state in its descriptor array).
static STATIC_STATS: DeferStats = DeferStats::new();
static STATIC_SIDES: [BitmapSide; 2] = [const { BitmapSide::new() }; 2];

#[test]
fn stats_and_sides_are_const_constructible() {
    assert_eq!(STATIC_STATS.snapshot(), DeferCounts::default());
    assert!(STATIC_SIDES.iter().all(BitmapSide::is_idle));
}

#[test]
fn names_parse_and_print() {
    for s in Strategy::ALL.into_iter().chain([Strategy::BitmapSketch]) {
        assert_eq!(Strategy::parse(s.name()), Some(s));
        assert_eq!(s.name().parse::<Strategy>(), Ok(s));
        assert_eq!(s.to_string(), s.name());
    }
    assert_eq!(
        Strategy::ALL.map(Strategy::name),
        ["naive", "refcount", "active", "bitmap", "none"]
    );
    assert_eq!("rcu".parse::<Strategy>(), Err(UnknownStrategy));
    assert!(UnknownStrategy.to_string().contains("refcount"));
}

#[test]
fn errors_name_the_page_in_hex() {
    let page = 0x1234_0000;
    let errs = [
        DeferError::DoubleQueue { page: PtPage::new(page) },
        DeferError::Frag(FragError::NotPageTable { page }),
        DeferError::AlreadyDeferred { table: PgTable::new(page + 0x3000) },
        DeferError::NotDeferred { page: PtPage::new(page) },
        DeferError::TooManyFragments { page: PtPage::new(page), frags_per_page: 256 },
    ];
    for e in errs {
        assert!(e.to_string().contains("0x12340000"), "{e}");
    }
}

#[test]
fn sixteen_deferrals_in_one_grace_period() {
    // (call_rcu, head already queued, redefers, freed after a GP, freed at once), GPs
    let expect = [
        (Strategy::Refcount, counts(2, 15, 1, 1, 0), 2),
        (Strategy::Active, counts(1, 0, 0, 1, 0), 1),
        (Strategy::Bitmap, counts(2, 15, 1, 1, 0), 2),
    ];
    for (s, want, gps) in expect {
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 16);
        for t in &tables {
            f.defer(*t).unwrap();
        }
        assert!(f.frees().is_empty(), "{s}: freed before any grace period");
        assert_eq!(f.drain(), gps, "{s}");
        assert_eq!(f.frees(), vec![(BASE, gps)], "{s}");
        assert_eq!(got(&f), want, "{s}");
        assert_eq!(f.counts().deferrals, 16);
        assert_eq!(f.counts().waiting_peak, 1, "{s}: one head per page");
        f.assert_clean();
    }
}

#[test]
fn deferrals_spread_over_several_grace_periods() {
    for s in CORRECT {
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 16);
        for chunk in tables.chunks(5) {
            for t in chunk {
                f.defer(*t).unwrap();
            }
            f.gp();
        }
        f.drain();
        let frees = f.frees();
        assert_eq!(frees.len(), 1, "{s}");
        // The last deferral came after grace period 3 started: it needs grace period 4.
        assert!(frees[0].1 >= 4, "{s}: freed at {frees:?}");
        f.assert_clean();
    }
}

/// Four waves of four deferrals, a grace period after each: every callback that found
/// arrivals re-queues once for all of them.
#[test]
fn four_waves_of_deferrals() {
    let expect = [
        (Strategy::Refcount, counts(5, 15, 4, 1, 0), 5),
        (Strategy::Active, counts(1, 0, 0, 1, 0), 4),
        (Strategy::Bitmap, counts(5, 15, 4, 1, 0), 5),
    ];
    for (s, want, freed_at) in expect {
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 16);
        for chunk in tables.chunks(4) {
            for t in chunk {
                f.defer(*t).unwrap();
            }
            f.gp();
        }
        f.drain();
        assert_eq!(got(&f), want, "{s}");
        assert_eq!(f.frees(), vec![(BASE, freed_at)], "{s}");
        f.assert_clean();
    }
}

#[test]
fn active_marks_then_last_reference_queues_once() {
    let f = Fake::new(Strategy::Active, 2);
    let mut cache = FragCache::new();
    let tables = f.alloc(&mut cache, 16);
    f.defer(tables[0]).unwrap();
    assert!(f.desc(BASE).has_flag(PageFlags::ACTIVE));
    assert_eq!(f.counts().call_rcu, 0, "no call_rcu before the last reference");
    f.gp();
    for t in &tables[1..15] {
        f.free(*t).unwrap();
    }
    assert_eq!(f.counts().call_rcu, 0);
    // A normal free drops the last reference of a marked page: it still waits a GP.
    f.free(tables[15]).unwrap();
    assert_eq!(f.counts().call_rcu, 1);
    assert!(!f.desc(BASE).has_flag(PageFlags::ACTIVE), "test-and-cleared");
    assert!(f.frees().is_empty());
    f.drain();
    assert_eq!(got(&f), counts(1, 0, 0, 1, 0));
    f.assert_clean();
}

/// `active`, the other way round: every other table was freed plainly, so the page's only
/// deferral drops its last reference. It must queue the head, not free at once, and the page
/// goes from the callback after that grace period, exactly once.
#[test]
fn active_only_deferral_drops_the_last_reference() {
    let f = Fake::new(Strategy::Active, 2);
    let mut cache = FragCache::new();
    let tables = f.alloc(&mut cache, 16);
    for t in &tables[..15] {
        f.free(*t).unwrap();
    }
    assert!(f.frees().is_empty() && !f.desc(BASE).has_flag(PageFlags::ACTIVE));
    f.defer(tables[15]).unwrap();
    assert_eq!(f.desc(BASE).pt_frag_refcount.load(Ordering::Relaxed), 0);
    assert!(f.frees().is_empty(), "freed with no grace period after the deferral");
    assert_eq!(f.counts().call_rcu, 1);
    assert!(!f.desc(BASE).has_flag(PageFlags::ACTIVE), "test-and-cleared by the last put");
    assert!(f.desc(BASE).has_flag(PageFlags::PAGE_TABLE), "still a page table until the callback");
    let ready = f.gp_start_end();
    assert_eq!(ready, [BASE]);
    assert!(f.frees().is_empty(), "freed before its callback ran");
    f.run_callbacks(ready);
    assert_eq!(f.frees(), vec![(BASE, 1)]);
    // Nothing is left queued: more grace periods free nothing twice.
    assert_eq!(f.drain(), 0);
    f.gp();
    assert_eq!(f.frees().len(), 1);
    assert_eq!(got(&f), counts(1, 0, 0, 1, 0));
    assert_eq!(f.counts().callbacks, 1);
    f.assert_clean();
}

#[test]
fn mixed_normal_frees_and_deferrals() {
    for s in CORRECT {
        let f = Fake::new(s, 3);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 16);
        for (i, t) in tables.iter().enumerate() {
            if i % 3 == 0 {
                f.free(*t).unwrap();
            } else {
                f.defer(*t).unwrap();
            }
            if i % 5 == 4 {
                f.gp();
            }
        }
        f.drain();
        assert_eq!(f.frees().len(), 1, "{s}");
        f.assert_clean();

        // Last reference dropped by a normal free, after the deferrals' grace periods.
        let tables = f.alloc(&mut cache, 16);
        for t in &tables[..15] {
            f.defer(*t).unwrap();
        }
        f.drain();
        f.free(tables[15]).unwrap();
        f.drain();
        assert_eq!(f.frees().len(), 2, "{s}");
        f.assert_clean();
    }
}

#[test]
fn teardown_with_partial_cache() {
    for s in CORRECT {
        // Tables still deferred when the cache goes.
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 5);
        f.defer(tables[0]).unwrap();
        f.free(tables[1]).unwrap();
        f.defer(tables[2]).unwrap();
        f.destroy(&mut cache).unwrap();
        assert!(cache.is_empty());
        f.free(tables[3]).unwrap();
        f.defer(tables[4]).unwrap();
        f.drain();
        assert_eq!(f.frees().len(), 1, "{s}");
        f.assert_clean();

        // Teardown drops the last reference of a page whose tables were all deferred.
        let tables = f.alloc(&mut cache, 3);
        for t in &tables {
            f.defer(*t).unwrap();
        }
        f.drain();
        f.destroy(&mut cache).unwrap();
        f.drain();
        let frees = f.frees();
        assert_eq!(frees.len(), 2, "{s}");
        f.assert_clean();
        assert_eq!(f.destroy(&mut cache), Ok(()), "empty cache: nothing to do");
    }
}

#[test]
fn active_teardown_takes_the_last_reference_path() {
    let f = Fake::new(Strategy::Active, 2);
    let mut cache = FragCache::new();
    let t = f.alloc(&mut cache, 1)[0];
    f.defer(t).unwrap();
    // The deferral could not free (the cache holds 15); teardown drops the rest in the same
    // grace period, so the page must not be freed at once.
    f.destroy(&mut cache).unwrap();
    assert!(f.frees().is_empty(), "freed with no grace period after the deferral");
    assert_eq!(f.counts().call_rcu, 1);
    f.drain();
    assert_eq!(got(&f), counts(1, 0, 0, 1, 0));
    f.assert_clean();
}

#[test]
fn naive_is_caught_on_the_second_deferral_in_a_grace_period() {
    let f = Fake::new(Strategy::Naive, 2);
    let mut cache = FragCache::new();
    let tables = f.alloc(&mut cache, 16);
    f.defer(tables[0]).unwrap();
    let err = f.defer(tables[1]).unwrap_err();
    assert_eq!(err, DeferError::DoubleQueue { page: PtPage::new(BASE) });
    assert!(err.to_string().contains("0x20000000"));
    assert_eq!(got(&f), counts(1, 1, 0, 0, 0));
    // One deferral per grace period is what naive can do.
    f.gp();
    f.defer(tables[1]).unwrap();
    f.gp();
    assert_eq!(f.desc(BASE).pt_frag_refcount.load(Ordering::Relaxed), 14);
    assert!(f.frees().is_empty());
}

#[test]
fn naive_one_deferral_per_grace_period_frees_once() {
    let f = Fake::new(Strategy::Naive, 2);
    let mut cache = FragCache::new();
    for t in f.alloc(&mut cache, 16) {
        f.defer(t).unwrap();
        f.gp();
    }
    assert_eq!(f.frees(), vec![(BASE, 16)]);
    assert_eq!(got(&f), counts(16, 0, 0, 1, 0));
    f.assert_clean();
}

/// `none` frees at once: the checker sees each page freed with no grace period after its
/// deferrals (the walkers' negative control).
#[test]
fn none_frees_at_once_and_the_checker_sees_it() {
    let f = Fake::new(Strategy::None, 2);
    let mut cache = FragCache::new();
    for t in f.alloc(&mut cache, 16) {
        f.defer(t).unwrap();
    }
    assert_eq!(f.frees(), vec![(BASE, 0)]);
    assert_eq!(got(&f), counts(0, 0, 0, 0, 1));
    assert_eq!(f.violations().len(), 16);
    assert_eq!(
        Strategy::None.rcu_callback(PtPage::new(BASE), &f),
        Err(DeferError::NotDeferred { page: PtPage::new(BASE) })
    );
}

/// The sketch's race, single-threaded: a deferral between the end of the grace period and
/// the callback. The sketch frees it with that callback; `bitmap` waits another one.
#[test]
fn bitmap_sketch_frees_a_late_deferral_without_a_grace_period() {
    for (s, want_violation) in [(Strategy::BitmapSketch, true), (Strategy::Bitmap, false)] {
        // Two tables of one page left, both deferred: one before the grace period
        // ends, one after it ended but before its callback ran.
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 16);
        for t in &tables[..14] {
            f.free(*t).unwrap();
        }
        f.defer(tables[14]).unwrap();
        let ready = f.gp_start_end();
        f.defer(tables[15]).unwrap(); // after the end, before the callback
        f.run_callbacks(ready);
        f.drain();
        assert_eq!(f.frees().len(), 1, "{s}");
        let v = f.violations();
        if want_violation {
            assert_eq!(
                v,
                [format!(
                    "page {BASE:#x} freed before a grace period after deferring {:#x}",
                    tables[15]
                )],
            );
        } else {
            f.assert_clean();
            assert_eq!(f.frees(), vec![(BASE, 2)]);
        }
    }
}

#[test]
fn refcount_and_active_survive_the_late_deferral() {
    for s in [Strategy::Refcount, Strategy::Active] {
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 16);
        for t in &tables[..14] {
            f.free(*t).unwrap();
        }
        f.defer(tables[14]).unwrap();
        let ready = f.gp_start_end();
        f.defer(tables[15]).unwrap();
        f.run_callbacks(ready);
        f.drain();
        f.assert_clean();
        assert_eq!(f.frees().len(), 1);
    }
}

#[test]
fn bitmap_catches_double_deferral_and_free_of_deferred_table() {
    for s in [Strategy::Bitmap, Strategy::BitmapSketch] {
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        let tables = f.alloc(&mut cache, 4);
        f.defer(tables[1]).unwrap();
        f.defer(tables[2]).unwrap();
        for t in [tables[1], tables[2]] {
            assert_eq!(
                f.defer(t),
                Err(DeferError::AlreadyDeferred { table: PgTable::new(t) }),
                "{s}"
            );
            assert_eq!(
                f.free(t),
                Err(DeferError::AlreadyDeferred { table: PgTable::new(t) }),
                "{s}"
            );
        }
        assert_eq!(f.desc(BASE).pt_frag_refcount.load(Ordering::Relaxed), 16);
    }
}

#[test]
fn bitmap_phases() {
    let f = Fake::new(Strategy::Bitmap, 2);
    let mut cache = FragCache::new();
    let tables = f.alloc(&mut cache, 4);
    let side = f.bitmap_side(PtPage::new(BASE));
    f.defer(tables[0]).unwrap();
    f.defer(tables[2]).unwrap();
    assert_eq!(side.phases(), (1, 1));
    f.gp();
    assert_eq!(side.phases(), (1, 0), "next became the new wait phase");
    f.defer(tables[3]).unwrap();
    assert_eq!(side.phases(), (1, 1));
    f.drain();
    assert!(side.is_idle());
    assert!(side.is_deferred(0) && !side.is_deferred(1) && side.is_deferred(2));
    assert_eq!(f.desc(BASE).pt_frag_refcount.load(Ordering::Relaxed), 13);
}

#[test]
fn bitmap_refuses_pages_with_more_fragments_than_bits() {
    let f = Fake::with_geometry(Strategy::Bitmap, 2, FragGeometry::from_size(128));
    let mut cache = FragCache::new();
    let t = f.alloc(&mut cache, 1)[0];
    assert_eq!(
        f.defer(t),
        Err(DeferError::TooManyFragments { page: PtPage::new(BASE), frags_per_page: 512 })
    );
}

#[test]
fn every_correct_strategy_handles_256_fragments() {
    for s in [Strategy::Refcount, Strategy::Active, Strategy::Bitmap] {
        let f = Fake::with_geometry(s, 2, RADIX64_PTE_FRAG);
        let mut cache = FragCache::new();
        for t in f.alloc(&mut cache, 256) {
            f.defer(t).unwrap();
        }
        f.drain();
        assert_eq!(f.frees().len(), 1);
        f.assert_clean();
    }
}

#[test]
fn refcount_refuses_double_free_into_a_token() {
    let f = Fake::new(Strategy::Refcount, 2);
    let mut cache = FragCache::new();
    let tables = f.alloc(&mut cache, 16);
    for t in &tables[..15] {
        f.free(*t).unwrap();
    }
    f.defer(tables[15]).unwrap();
    // The count is one token and no plain reference: another free must not eat the token.
    assert_eq!(f.desc(BASE).pt_frag_refcount.load(Ordering::Relaxed), PTE_FREE_DEFERRED);
    let err = f.free(tables[15]).unwrap_err();
    assert_eq!(
        err,
        DeferError::Frag(FragError::Underflow { page: BASE, refcount: PTE_FREE_DEFERRED, put: 1 })
    );
    assert_eq!(f.defer(tables[15]), Err(err));
    f.drain();
    f.assert_clean();
}

#[test]
fn spurious_callbacks_are_refused() {
    for s in [Strategy::Refcount, Strategy::Active, Strategy::Bitmap, Strategy::BitmapSketch] {
        let f = Fake::new(s, 2);
        let mut cache = FragCache::new();
        f.alloc(&mut cache, 2);
        assert_eq!(
            s.rcu_callback(PtPage::new(BASE), &f),
            Err(DeferError::NotDeferred { page: PtPage::new(BASE) }),
            "{s}"
        );
        assert_eq!(f.desc(BASE).pt_frag_refcount.load(Ordering::Relaxed), 16);
        assert_eq!(f.counts().waiting, 0);
    }
}

#[test]
fn deferring_outside_a_page_table_is_refused() {
    for s in Strategy::ALL {
        let f = Fake::new(s, 2);
        let stray = f.alloc_page().unwrap();
        assert_eq!(
            f.defer(stray + 0x1000),
            Err(DeferError::Frag(FragError::NotPageTable { page: stray })),
            "{s}"
        );
        let mut cache = FragCache::new();
        let t = f.alloc(&mut cache, 1)[0];
        assert_eq!(
            f.defer(t + 8),
            Err(DeferError::Frag(FragError::Misaligned { addr: t + 8, frag_size: 4096 })),
            "{s}"
        );
        assert!(f.frees().is_empty());
    }
}

#[test]
fn pages_of_different_mms_wait_independently() {
    for s in CORRECT {
        let f = Fake::new(s, 4);
        let (mut a, mut b) = (FragCache::new(), FragCache::new());
        let ta = f.alloc(&mut a, 16);
        let tb = f.alloc(&mut b, 16);
        for (x, y) in ta.iter().zip(&tb) {
            f.defer(*x).unwrap();
            f.defer(*y).unwrap();
        }
        f.drain();
        assert_eq!(f.frees().len(), 2, "{s}");
        assert_eq!(f.counts().waiting_peak, 2, "{s}");
        f.assert_clean();
    }
}

/// A table as `pmdp_collapse_flush()` would hand it over.
fn detach(table: u64) -> DetachedTable {
    // SAFETY: the fake has no page tables that point at `table` and no walkers: only the
    // strategy under test sees it.
    unsafe { DetachedTable::new(PgTable::new(table)) }
}

#[test]
fn defer_counts_since_and_add() {
    let c = |n: u64, waiting: u64, peak: u64| DeferCounts {
        deferrals: n,
        call_rcu: 2 * n,
        head_already_queued: 3 * n,
        redefers: 4 * n,
        callbacks: 5 * n,
        pages_freed: 6 * n,
        pages_freed_now: 7 * n,
        waiting,
        waiting_peak: peak,
    };
    // Counters are differences; what waits and the peak are the later snapshot's.
    assert_eq!(c(10, 3, 9).since(&c(4, 1, 2)), c(6, 3, 9));
    let mut sum = c(1, 5, 9);
    sum.add(&c(2, 0, 4));
    assert_eq!(sum, c(3, 0, 9));
    sum.add(&c(1, 1, 12));
    assert_eq!(sum, c(4, 1, 12));
}
