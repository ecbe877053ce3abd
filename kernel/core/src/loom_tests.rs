//! Loom model checks of the deferred-free strategies: every interleaving (up to a preemption
//! bound) of a few threads deferring and freeing the fragments of one page while a modelled
//! RCU runs grace periods and callbacks.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p ptfrag-core --release --lib loom
//! ```
//!
//! (`CARGO_TARGET_DIR=target/loom` keeps that build from evicting the normal one.) The
//! preemption bound is set here, not through `LOOM_MAX_PREEMPTIONS`, so each model finishes
//! in seconds.
//!
//! The env's `free_page` is the checker: the page is freed once, with no fragment live,
//! and only once a grace period that started after each deferral has ended; its `call_rcu`
//! refuses a head that is already queued. `naive`, `bitmap_sketch` and `none` must trip it
//! (the `should_panic` models name the exact complaint). The scenarios: deferrals only, plain
//! frees mixed in, a deferral landing around a grace period, address-space teardown racing
//! with a callback, and a plain free dropping the last reference while others are deferred;
//! `rcu_model` checks the RCU core itself, including a grace period already running at
//! `call_rcu`. `tests/src/hosttests.rs` counts the models (`MIN_LOOM_TESTS`).

use loom::sync::Arc;
use loom::thread;

use crate::frame_alloc::FRAME_SIZE;
use crate::page_desc::{PageDesc, PageFlags};
use crate::pgtable_frag::{pte_fragment_alloc, FragCache, FragGeometry, PageSource};
use crate::pgtable_t::{DetachedTable, PgTable, PtPage};
use crate::pte_free_defer::{BitmapSide, DeferEnv, DeferError, DeferStats, Strategy};
use crate::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

const PAGE: u64 = 0x4000_0000;
/// Four fragments per page keeps the models small; the strategies do not care how many.
const NFRAG: usize = 4;
const GEO: FragGeometry = FragGeometry::from_size(FRAME_SIZE as usize / NFRAG);

/// One page, a modelled RCU and the checker's bookkeeping.
struct Env {
    strategy: Strategy,
    desc: PageDesc,
    side: BitmapSide,
    stats: DeferStats,
    handed_out: AtomicBool,
    frees: AtomicU32,
    /// Fragments their owner still uses.
    live: [AtomicBool; NFRAG],
    /// For each deferred fragment: the grace period that must have ended before the page
    /// may go (one more than the number started when it was deferred); 0 if not deferred.
    need_gp: [AtomicU64; NFRAG],
    gp_started: AtomicU64,
    gp_ended: AtomicU64,
}

impl Env {
    fn new(strategy: Strategy) -> Self {
        Env {
            strategy,
            desc: PageDesc::new(),
            side: BitmapSide::new(),
            stats: DeferStats::new(),
            handed_out: AtomicBool::new(false),
            frees: AtomicU32::new(0),
            live: core::array::from_fn(|_| AtomicBool::new(false)),
            need_gp: core::array::from_fn(|_| AtomicU64::new(0)),
            gp_started: AtomicU64::new(0),
            gp_ended: AtomicU64::new(0),
        }
    }

    /// Hands out all fragments of the page (cache used up, so no cache references).
    fn tables(&self) -> [u64; NFRAG] {
        let (tables, cache) = self.first_tables();
        assert!(cache.is_empty());
        tables
    }

    /// Hands out the first `N` fragments; the cache keeps the references of the rest, as an
    /// address space's `pte_frag` does until teardown.
    fn first_tables<const N: usize>(&self) -> ([u64; N], FragCache) {
        let mut cache = FragCache::new();
        let tables: [u64; N] =
            core::array::from_fn(|_| pte_fragment_alloc(&mut cache, &GEO, self, 1).unwrap());
        for t in tables {
            self.live[Self::frag(t)].store(true, Ordering::SeqCst);
        }
        (tables, cache)
    }

    fn frag(table: u64) -> usize {
        ((table - PAGE) / GEO.frag_size as u64) as usize
    }

    /// The table's owner unlinks it, then defers its free. The grace period it needs is the
    /// first to start after the unlink, so the count is read after it: read before, a grace
    /// period starting in between would wrongly count.
    fn defer(&self, table: u64) {
        let i = Self::frag(table);
        self.live[i].store(false, Ordering::SeqCst);
        let seen = self.gp_started.load(Ordering::SeqCst);
        self.need_gp[i].store(seen + 1, Ordering::SeqCst);
        // SAFETY: the model's tables are reachable from no page table; its walkers are
        // modelled by `live` and `need_gp` alone.
        let detached = unsafe { DetachedTable::new(PgTable::new(table)) };
        self.strategy.pte_free_defer(detached, self).unwrap();
    }

    /// A table no walker can see: free it at once.
    fn free(&self, table: u64) {
        self.live[Self::frag(table)].store(false, Ordering::SeqCst);
        self.strategy.pte_free(PgTable::new(table), self).unwrap();
    }

    /// Address-space teardown: the references of the fragments `cache` never handed out.
    fn destroy(&self, cache: &mut FragCache) {
        self.strategy.pte_frag_destroy(cache, &GEO, self).unwrap();
        assert!(cache.is_empty());
    }

    /// One grace period, if the head is queued: start, end, then the callback, as the RCU
    /// core does (head marked not queued before the callback runs).
    fn grace_period(&self) -> bool {
        if self.desc.rcu_head.func.load(Ordering::SeqCst) == 0 {
            return false;
        }
        self.gp_started.fetch_add(1, Ordering::SeqCst);
        self.gp_ended.fetch_add(1, Ordering::SeqCst);
        // A swap, not a store: loom 0.7 lets a plain store slip inside a concurrent RMW
        // (tokio-rs/loom#254).
        self.desc.rcu_head.func.swap(0, Ordering::SeqCst);
        self.strategy.rcu_callback(PtPage::new(PAGE), self).unwrap();
        true
    }

    /// After all threads: grace periods until nothing is queued, then the page must be gone.
    fn finish(&self) {
        let mut n = 0;
        while self.grace_period() {
            n += 1;
            assert!(n < 8, "callbacks keep re-queueing");
        }
        assert_eq!(self.frees.load(Ordering::SeqCst), 1, "page never freed");
        assert!(!self.desc.has_flag(PageFlags::PAGE_TABLE | PageFlags::ACTIVE));
        assert_eq!(self.desc.pt_frag_refcount.load(Ordering::SeqCst), 0);
        assert!(self.side.is_idle());
    }
}

impl PageSource for Env {
    fn alloc_page(&self) -> Option<u64> {
        (!self.handed_out.swap(true, Ordering::SeqCst)).then_some(PAGE)
    }

    fn free_page(&self, page: PtPage) {
        assert_eq!(page, PtPage::new(PAGE));
        assert_eq!(self.frees.fetch_add(1, Ordering::SeqCst), 0, "page freed twice");
        let ended = self.gp_ended.load(Ordering::SeqCst);
        for i in 0..NFRAG {
            assert!(!self.live[i].load(Ordering::SeqCst), "page freed while fragment {i} is live");
            let need = self.need_gp[i].load(Ordering::SeqCst);
            assert!(
                ended >= need,
                "page freed before a grace period after deferring fragment {i} \
                 ({ended} ended, needs {need})"
            );
        }
    }

    fn desc(&self, pa: u64) -> &PageDesc {
        assert_eq!(pa, PAGE);
        &self.desc
    }
}

impl DeferEnv for Env {
    fn call_rcu(&self, page: PtPage) -> Result<(), DeferError> {
        let func = &self.desc(page.pa()).rcu_head.func;
        if func.compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            panic!("double call_rcu on page {page:#x}");
        }
        Ok(())
    }

    fn bitmap_side(&self, page: PtPage) -> &BitmapSide {
        assert_eq!(page, PtPage::new(PAGE));
        &self.side
    }

    fn stats(&self) -> &DeferStats {
        &self.stats
    }

    fn pte_geometry(&self) -> FragGeometry {
        GEO
    }
}

/// Runs `f` on a new model thread with its own handle on `env`.
fn on_thread(env: &Arc<Env>, f: impl FnOnce(&Env) + Send + 'static) -> thread::JoinHandle<()> {
    let env = env.clone();
    thread::spawn(move || f(&env))
}

fn builder(preemptions: Option<usize>) -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = preemptions;
    b
}

/// Two threads defer two tables each; a grace-period thread runs up to two grace periods.
fn defer_all(strategy: Strategy, preemptions: Option<usize>) {
    builder(preemptions).check(move || {
        let env = Arc::new(Env::new(strategy));
        let t = env.tables();
        let gp = on_thread(&env, move |env| {
            for _ in 0..2 {
                if !env.grace_period() {
                    thread::yield_now();
                }
            }
        });
        let other = on_thread(&env, move |env| {
            env.defer(t[2]);
            env.defer(t[3]);
        });
        env.defer(t[0]);
        env.defer(t[1]);
        other.join().unwrap();
        gp.join().unwrap();
        env.finish();
    });
}

/// Normal frees mixed with deferrals; the last reference may go either way.
fn mixed(strategy: Strategy, preemptions: Option<usize>) {
    builder(preemptions).check(move || {
        let env = Arc::new(Env::new(strategy));
        let t = env.tables();
        env.defer(t[0]);
        let gp = on_thread(&env, move |env| {
            env.grace_period();
        });
        let other = on_thread(&env, move |env| {
            env.free(t[2]);
            env.defer(t[3]);
        });
        env.defer(t[1]);
        other.join().unwrap();
        gp.join().unwrap();
        env.finish();
    });
}

/// The sketch's race window: one deferral is queued, the other lands around the grace
/// period and its callback. (Checker panics must come from spawned threads: a panic on the
/// model's main thread unwinds through loom objects and aborts the test binary.)
fn late_deferral(strategy: Strategy, preemptions: Option<usize>) {
    builder(preemptions).check(move || {
        let env = Arc::new(Env::new(strategy));
        let t = env.tables();
        env.free(t[2]);
        env.free(t[3]);
        env.defer(t[0]);
        let gp = on_thread(&env, move |env| {
            env.grace_period();
        });
        let late = on_thread(&env, move |env| env.defer(t[1]));
        late.join().unwrap();
        gp.join().unwrap();
        env.finish();
    });
}

/// Address-space teardown racing with a deferral's callback: one table deferred, the other
/// freed plainly and the cache's unused fragments dropped by `pte_frag_destroy`, on another
/// CPU while the grace period ends and its callback runs. Whichever drops the last reference,
/// the page goes once, after the grace period.
fn teardown(strategy: Strategy, preemptions: Option<usize>) {
    builder(preemptions).check(move || {
        let env = Arc::new(Env::new(strategy));
        let (t, mut cache) = env.first_tables::<2>();
        env.defer(t[0]);
        let gp = on_thread(&env, move |env| {
            env.grace_period();
        });
        let exit = on_thread(&env, move |env| {
            env.free(t[1]);
            env.destroy(&mut cache);
        });
        exit.join().unwrap();
        gp.join().unwrap();
        env.finish();
    });
}

/// A plain free drops the page's last reference while other tables of it are deferred and
/// their grace period may be running: it must not free the page at once.
fn plain_free_last(strategy: Strategy, preemptions: Option<usize>) {
    builder(preemptions).check(move || {
        let env = Arc::new(Env::new(strategy));
        let t = env.tables();
        env.defer(t[0]);
        env.free(t[1]);
        let gp = on_thread(&env, move |env| {
            env.grace_period();
        });
        let other = on_thread(&env, move |env| env.defer(t[2]));
        env.free(t[3]);
        other.join().unwrap();
        gp.join().unwrap();
        env.finish();
    });
}

#[test]
fn loom_refcount_defer_all() {
    defer_all(Strategy::Refcount, Some(2));
}

#[test]
fn loom_refcount_mixed() {
    mixed(Strategy::Refcount, Some(3));
}

#[test]
fn loom_refcount_late_deferral() {
    late_deferral(Strategy::Refcount, None);
}

#[test]
fn loom_refcount_teardown() {
    teardown(Strategy::Refcount, None);
}

#[test]
fn loom_refcount_plain_free_last() {
    plain_free_last(Strategy::Refcount, Some(3));
}

#[test]
fn loom_active_defer_all() {
    defer_all(Strategy::Active, Some(2));
}

#[test]
fn loom_active_mixed() {
    mixed(Strategy::Active, Some(3));
}

#[test]
fn loom_active_late_deferral() {
    late_deferral(Strategy::Active, None);
}

#[test]
fn loom_active_teardown() {
    teardown(Strategy::Active, None);
}

#[test]
fn loom_active_plain_free_last() {
    plain_free_last(Strategy::Active, None);
}

#[test]
fn loom_bitmap_defer_all() {
    defer_all(Strategy::Bitmap, Some(2));
}

#[test]
fn loom_bitmap_mixed() {
    mixed(Strategy::Bitmap, Some(3));
}

#[test]
fn loom_bitmap_late_deferral() {
    late_deferral(Strategy::Bitmap, None);
}

#[test]
fn loom_bitmap_teardown() {
    teardown(Strategy::Bitmap, None);
}

#[test]
fn loom_bitmap_plain_free_last() {
    plain_free_last(Strategy::Bitmap, None);
}

/// Expected failure: two deferrals within one grace period queue the one head twice.
#[test]
#[should_panic(expected = "double call_rcu on page 0x40000000")]
fn loom_naive_is_caught() {
    late_deferral(Strategy::Naive, None);
}

/// Expected failure: the mail's sketch frees a deferral that landed after the grace period
/// ended with the callback of that grace period: fragment 1, deferred after grace period 1
/// ended, freed by its callback.
#[test]
#[should_panic(
    expected = "page freed before a grace period after deferring fragment 1 (1 ended, needs 2)"
)]
fn loom_bitmap_sketch_is_caught() {
    late_deferral(Strategy::BitmapSketch, None);
}

/// Negative control for the checker's "freed before a grace period" arm: the late deferral
/// frees the page at once, before any grace period after fragment 0's deferral.
#[test]
#[should_panic(
    expected = "page freed before a grace period after deferring fragment 0 (0 ended, needs 1)"
)]
fn loom_none_is_caught() {
    late_deferral(Strategy::None, None);
}

/// The RCU core itself: a reader on CPU 1 must never see an object that CPU 0 unpublished
/// and freed through `call_rcu`. The object's payload is a loom cell, so loom also flags a
/// free that races with a read.
mod rcu_model {
    use super::*;
    use crate::page_desc::RcuHead;
    use crate::rcu::Rcu;
    use crate::sync::atomic::AtomicUsize;
    use loom::cell::UnsafeCell;

    const LIVE: u64 = 1;
    const POISON: u64 = 0x6b6b_6b6b;

    #[repr(C)]
    struct Obj {
        head: RcuHead,
        data: UnsafeCell<u64>,
    }

    struct World {
        rcu: Rcu,
        objs: [Obj; 2],
        /// Index of the published object.
        cur: AtomicUsize,
    }

    // SAFETY: `data` is written once, by the RCU callback after a grace period, and read by
    // readers inside read-side sections: exactly the discipline the model checks.
    unsafe impl Sync for World {}

    /// The RCU callback: poisons the object (its "free").
    fn free_obj(head: *const RcuHead) {
        // SAFETY: only heads of `Obj`s in a live `World` are queued; `head` is the first
        // field of a repr(C) `Obj`.
        let obj = unsafe { &*head.cast::<Obj>() };
        // SAFETY: a grace period has passed since the object was unpublished, so no reader
        // holds it (loom checks that claim).
        obj.data.with_mut(|p| unsafe { *p = POISON });
    }

    /// Two CPUs online, object 0 published.
    fn world(broken: bool) -> Arc<World> {
        let w = Arc::new(World {
            rcu: Rcu::new(),
            objs: core::array::from_fn(|_| Obj {
                head: RcuHead::new(),
                data: UnsafeCell::new(LIVE),
            }),
            cur: AtomicUsize::new(0),
        });
        w.rcu.cpu_online(0);
        w.rcu.cpu_online(1);
        w.rcu.set_broken_short_gp(broken);
        w
    }

    /// One read-side section on CPU 1 that uses the published object.
    fn read(w: &World) {
        w.rcu.read_lock(1);
        let obj = &w.objs[w.cur.load(Ordering::Acquire)];
        // SAFETY: inside a read-side section the published object is live.
        let v = obj.data.with(|p| unsafe { *p });
        assert_eq!(v, LIVE, "reader saw a freed object");
        w.rcu.read_unlock(1).unwrap();
    }

    /// CPU 0 unpublishes object 0, frees it through `call_rcu`, and reports quiescent
    /// states and runs callbacks twice.
    fn update(w: &World) {
        w.cur.store(1, Ordering::Release);
        // SAFETY: `w` outlives the callback (the model joins and drains before dropping it),
        // and nothing else touches the head.
        unsafe { w.rcu.call_rcu(0, &w.objs[0].head, free_obj) }.unwrap();
        for _ in 0..2 {
            w.rcu.quiescent_state(0).unwrap();
            if w.rcu.run_callbacks(0) == 0 {
                thread::yield_now();
            }
        }
    }

    /// After every thread: grace periods until the callback has run; object 0 is freed.
    fn drain(w: &World) {
        let mut rounds = 0;
        while w.rcu.pending() > 0 {
            w.rcu.quiescent_state(0).unwrap();
            w.rcu.quiescent_state(1).unwrap();
            w.rcu.run_callbacks(0);
            rounds += 1;
            assert!(rounds < 4, "callback never ran");
        }
        // SAFETY: every thread has finished.
        assert_eq!(w.objs[0].data.with(|p| unsafe { *p }), POISON);
    }

    fn model(broken: bool) {
        builder(Some(3)).check(move || {
            let w = world(broken);
            let reader = {
                let w = w.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        read(&w);
                        w.rcu.quiescent_state(1).unwrap();
                    }
                })
            };
            let updater = {
                let w = w.clone();
                thread::spawn(move || update(&w))
            };
            reader.join().unwrap();
            updater.join().unwrap();
            drain(&w);
        });
    }

    #[test]
    fn loom_rcu_reader_never_sees_a_freed_object() {
        model(false);
    }

    /// A grace period is already running when the updater calls `call_rcu`, and the reader
    /// may have reported its quiescent state for it before picking up the object: the
    /// callback must wait for the next grace period, not the end of the running one (the
    /// odd-`gp_seq` arm of `rcu_seq_snap`). An RCU one grace period short frees under the
    /// reader here.
    #[test]
    fn loom_rcu_grace_period_running_at_call_rcu() {
        builder(Some(3)).check(|| {
            let w = world(false);
            w.rcu.start_poll();
            assert_eq!(w.rcu.gp_seq() & 1, 1, "a grace period runs before the threads start");
            let reader = {
                let w = w.clone();
                thread::spawn(move || {
                    w.rcu.quiescent_state(1).unwrap();
                    read(&w);
                    w.rcu.quiescent_state(1).unwrap();
                })
            };
            let updater = {
                let w = w.clone();
                thread::spawn(move || update(&w))
            };
            reader.join().unwrap();
            updater.join().unwrap();
            drain(&w);
        });
    }

    /// Negative control: with grace periods cut short the callback's poisoning write races
    /// with the reader's read of the object, which loom reports on the cell (in the first
    /// interleaving that shows it, before the reader could compare the value).
    #[test]
    #[should_panic(expected = "Concurrent read and write accesses to `UnsafeCell`")]
    fn loom_rcu_broken_short_gp_is_caught() {
        model(true);
    }
}
