//! Deterministic schedules on real vCPUs: the interleavings of the 2023 thread, played step
//! by step. A *driver* CPU builds an address space whose PTE tables share one 64K page,
//! collapses and retracts them; a *reader* CPU walks one of those tables locklessly inside
//! `rcu_read_lock()` and reads it again only after the driver has let the grace periods and
//! callbacks that a broken strategy would free it in run to completion. Each CPU waits for
//! named events ("a grace period is running", "cpu 2 has reported its quiescent state for
//! it", "the callbacks have run"), never for a length of time, so a run is reproducible: a
//! strategy, RCU or flush that frees the table one grace period too early makes the reader
//! read POISON every time, and the grace-period oracle names the table as well.
//!
//! In every schedule the reader takes its table inside a running grace period, after its
//! own quiescent state for it, and the deferral under test happens in that grace period,
//! which then ends: the strongest case, where only the grace period after it protects the
//! reader.
//!
//! Every schedule runs once per reader CPU (CPU 0 included), driven by the next CPU, so
//! retracts and callbacks happen on every CPU too.
//!
//! - `sole_deferral`: the page holds one table; its deferral drops the last reference.
//! - `late_deferral`: the page holds two tables; the first is deferred, a grace period is
//!   running, the reader (whose section began after its own quiescent state for that grace
//!   period) takes the second, which is then deferred during that grace period, which ends.
//! - `teardown_plain_free`: two tables; the first is deferred with the reader holding it,
//!   then the address space is torn down, whose plain free of the second table drops the
//!   page's last reference.
//! - `teardown_unused_frags`: one table and the page's unused fragments still cached; the
//!   table is deferred with the reader holding it, then teardown returns the unused
//!   fragments, which drops the last reference.
//! - `concurrent_retract`: one CPU's `retract_page_tables()` stops between its lockless
//!   look at the PMD and the PMD lock while another CPU collapses the same range; when it goes
//!   on, its re-check under the lock must find the PMD gone and detach nothing (else the
//!   table is deferred twice).
//! - `gup_fast_recheck`: the reader's GUP-fast-style walk (`gup_fast::walk`) has read a PTE
//!   and waits before using the page it maps; the collapse unmaps, retracts and frees that
//!   page; the walk then reads the freed page and must throw the result away on its re-check.
//! - `stale_translation`: the reader's address space maps the file 64K off a PMD boundary,
//!   so a collapse unmaps its small pages but retracts nothing there; the reader loads a page
//!   through the MMU (its TLB now holds the translation), the collapse unmaps and frees the
//!   small pages (poisoned), and the reader loads again: only the collapse's flush stands
//!   between it and the freed page.
//! - `hash_fault` (hash only): the reader's load faults into `hash_page`, whose lockless walk
//!   (interrupts off, no lock, as Linux `find_linux_pte()`) stops between reading the PMD and
//!   reading the PTE table; the driver retracts that table meanwhile. The walk goes on when
//!   `serialize_against_pte_lookup()` waits for its CPU (or when a grace period waits for its
//!   CPU alone, or the table has been freed): a collapse without the IPI, or a `hash_page`
//!   with interrupts on, under which the table is freed, reads POISON.

use super::gup_fast::{self, Walk};
use super::pwc::{self, PwcWalk};
use super::MmGuard;
use crate::arch::mmu::hash_utils;
use crate::arch::mmu::pte;
use crate::arch::mmu::tlb;
use crate::arch::uaccess::load_u64;
use crate::arch::{smp, timer};
use crate::ktest::{Context, TestError, TestResult};
use crate::mm::file::{pattern, File};
use crate::mm::mm_types::activate;
use crate::mm::pgalloc::POISON;
use crate::mm::{frame, khugepaged, pte_free, Mm};
use crate::trace::ReadSite;
use crate::{check, ktest, println, rcu};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ptfrag_core::frame_alloc::FRAME_SIZE;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::page_of;

const BASE: u64 = 0x0000_3000_0000_0000;
/// How long any one wait may take before the schedule reports which event never came: every
/// event comes within milliseconds (a grace period at hz=1000 takes a few), so a second is
/// a wide margin on a loaded 2-core host.
const WAIT_US: u64 = 1_000_000;
/// A schedule whose runs timed out this often (over its reader CPUs) has made its point:
/// its other runs are skipped, so a broken kernel does not spend a timeout on each of them.
const TIMEOUTS_PER_KIND: u64 = 2;
/// Waits that timed out, over all schedules.
static TIMEOUTS: AtomicU64 = AtomicU64::new(0);
/// After the grace period a broken strategy would free in has ended, the driver keeps
/// running callbacks this long (or until a callback ran) before it lets the reader read.
const SETTLE_US: u64 = 20_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    SoleDeferral,
    LateDeferral,
    TeardownPlainFree,
    TeardownUnusedFrags,
    StaleTranslation,
    ConcurrentRetract,
    GupFastRecheck,
    HashFault,
    HashBusy,
    PwcFlush,
    CallbacksTwoCpus,
    LateDeferralOtherCpu,
}

impl Kind {
    const ALL: [Kind; 12] = [
        Kind::SoleDeferral,
        Kind::LateDeferral,
        Kind::TeardownPlainFree,
        Kind::TeardownUnusedFrags,
        Kind::StaleTranslation,
        Kind::ConcurrentRetract,
        Kind::GupFastRecheck,
        Kind::HashFault,
        Kind::HashBusy,
        Kind::PwcFlush,
        Kind::CallbacksTwoCpus,
        Kind::LateDeferralOtherCpu,
    ];

    /// Whether the schedule means anything in the running MMU mode: only hash has a
    /// software walker in the fault path.
    fn applies(self) -> bool {
        let radix = crate::arch::mmu::radix_enabled();
        match self {
            Kind::HashFault | Kind::HashBusy => !radix,
            // Hash has no radix walker: its translations are HPTEs, which the collapse removes.
            Kind::PwcFlush => radix,
            _ => true,
        }
    }

    /// A third CPU's part, for the schedules that need one (run on the CPU after the driver).
    fn helper(self) -> Option<Role> {
        match self {
            Kind::PwcFlush => Some(late_acker),
            Kind::CallbacksTwoCpus | Kind::LateDeferralOtherCpu => Some(helper_deferral),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::SoleDeferral => "sole_deferral",
            Kind::LateDeferral => "late_deferral",
            Kind::TeardownPlainFree => "teardown_plain_free",
            Kind::TeardownUnusedFrags => "teardown_unused_frags",
            Kind::StaleTranslation => "stale_translation",
            Kind::ConcurrentRetract => "concurrent_retract",
            Kind::GupFastRecheck => "gup_fast_recheck",
            Kind::HashFault => "hash_fault",
            Kind::HashBusy => "hash_busy",
            Kind::PwcFlush => "pwc_flush",
            Kind::CallbacksTwoCpus => "callbacks_two_cpus",
            Kind::LateDeferralOtherCpu => "late_deferral_other_cpu",
        }
    }

    /// The driver's and the reader's part.
    fn roles(self) -> (Role, Role) {
        match self {
            Kind::StaleTranslation => (stale_driver, stale_reader),
            Kind::ConcurrentRetract => (racing_collapser, paused_retractor),
            Kind::GupFastRecheck => (gup_driver, gup_reader),
            Kind::HashFault => (hash_fault_driver, hash_fault_reader),
            Kind::HashBusy => (hash_busy_driver, hash_busy_reader),
            Kind::PwcFlush => (pwc_driver, pwc_reader),
            Kind::SoleDeferral
            | Kind::LateDeferral
            | Kind::TeardownPlainFree
            | Kind::TeardownUnusedFrags
            | Kind::CallbacksTwoCpus
            | Kind::LateDeferralOtherCpu => (driver, reader),
        }
    }

    /// PTE tables the address space gets (one per PMD range), all in one page.
    fn tables(self) -> usize {
        match self {
            Kind::SoleDeferral
            | Kind::TeardownUnusedFrags
            | Kind::StaleTranslation
            | Kind::ConcurrentRetract
            | Kind::GupFastRecheck
            | Kind::HashFault
            | Kind::HashBusy
            | Kind::PwcFlush => 1,
            Kind::LateDeferral
            | Kind::TeardownPlainFree
            | Kind::CallbacksTwoCpus
            | Kind::LateDeferralOtherCpu => 2,
        }
    }
}

/// One CPU's part in a schedule.
type Role = fn(&Choreo, &Stage, Kind, usize, &AtomicU64) -> Result<(), ()>;

/// The named events of a schedule.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
enum Ev {
    SetUp,
    GpRunning,
    ReaderHolds,
    MayRead,
    ReaderDone,
    Retracted,
    Rewalked,
    HelperGo,
    HelperDone,
}

const EV_NAMES: [&str; 9] = [
    "address space set up",
    "a grace period is running",
    "the reader holds the table",
    "the reader may read",
    "the reader is done",
    "the retract returned",
    "the reader walked again",
    "the helper CPU may defer",
    "the helper CPU deferred",
];

struct Choreo {
    name: String,
    events: [AtomicBool; 9],
    failed: AtomicBool,
    error: crate::sync::Mutex<Option<String>>,
}

impl Choreo {
    fn new(name: String) -> Self {
        Choreo {
            name,
            events: [const { AtomicBool::new(false) }; 9],
            failed: AtomicBool::new(false),
            error: crate::sync::Mutex::new(None),
        }
    }

    /// `r`, or the schedule fails with its error, as seen on `cpu`.
    fn check<T>(&self, cpu: usize, r: Result<T, impl Into<TestError>>) -> Result<T, ()> {
        r.map_err(|e| self.fail(format!("cpu {cpu}: {}", e.into().message())))
    }

    fn signal(&self, e: Ev) {
        self.events[e as usize].store(true, Ordering::Release);
    }

    fn fail(&self, msg: String) {
        self.failed.store(true, Ordering::Release);
        let mut e = self.error.lock();
        if e.is_none() {
            *e = Some(format!("schedule {}: {msg}", self.name));
        }
    }

    /// Spins until `cond` holds; outside a read section (`qs`) it reports quiescent states
    /// and runs callbacks meanwhile. Gives up if another CPU of the schedule failed.
    fn wait_until(
        &self,
        cpu: usize,
        what: &str,
        qs: bool,
        cond: impl Fn() -> bool,
    ) -> Result<(), ()> {
        let t0 = timer::now();
        while !cond() {
            if self.failed.load(Ordering::Acquire) {
                return Err(());
            }
            if timer::tb_to_us(timer::now() - t0) > WAIT_US {
                TIMEOUTS.fetch_add(1, Ordering::Relaxed);
                self.fail(format!(
                    "cpu {cpu} waited {} ms for: {what} (gp_seq {}, waiting for cpus {:#x}, {} \
                     callbacks run, {} pending)",
                    WAIT_US / 1_000,
                    rcu::gp_seq(),
                    rcu::gp_waiting_mask(),
                    pte_free::stats().callbacks,
                    rcu::pending()
                ));
                return Err(());
            }
            if qs {
                let _ = rcu::quiescent_state();
                rcu::run_callbacks();
            }
            crate::arch::smp::relax();
        }
        Ok(())
    }

    fn wait(&self, cpu: usize, e: Ev, qs: bool) -> Result<(), ()> {
        self.wait_until(cpu, EV_NAMES[e as usize], qs, || {
            self.events[e as usize].load(Ordering::Acquire)
        })
    }
}

/// What the driver sets up and the reader looks at.
struct Stage {
    file: Arc<File>,
    /// Torn down by the driver or at the end of the run, whichever comes first.
    mm: crate::sync::Mutex<Option<MmGuard>>,
    /// What the reader held (0 until it held something).
    held: AtomicU64,
}

impl Stage {
    /// The address space the driver set up, or the schedule fails.
    fn mm(&self, ch: &Choreo, cpu: usize) -> Result<Arc<Mm>, ()> {
        let mm = self.mm.lock().as_deref().cloned();
        ch.check(cpu, mm.ok_or("no address space"))
    }
}

/// The reader's start: the address space is set up and a grace period runs, which this
/// CPU has already reported its quiescent state for. A section begun now is not waited for
/// by that grace period: only the one after it may free what the section holds.
fn after_own_qs(ch: &Choreo, cpu: usize) -> Result<(), ()> {
    ch.wait(cpu, Ev::SetUp, true)?;
    ch.wait(cpu, Ev::GpRunning, true)?;
    let bit = 1u32 << cpu;
    ch.wait_until(cpu, "its own quiescent state for the running grace period", true, || {
        rcu::gp_waiting_mask() & bit == 0
    })
}

/// Waits until the callback of a deferral made since `calls0`/`cb0` was sampled has run
/// (its grace period is then over); nothing to wait for if the strategy queued nothing.
fn wait_deferral_callback(
    ch: &Choreo,
    cpu: usize,
    what: &str,
    calls0: u64,
    cb0: u64,
) -> Result<(), ()> {
    if pte_free::stats().call_rcu == calls0 {
        return Ok(());
    }
    ch.wait_until(cpu, what, true, || pte_free::stats().callbacks > cb0)
}

fn pmd_size() -> u64 {
    pte::geometry().pmd_size()
}

/// An address space mapping `kind.tables()` PMD ranges of `file`, one PTE table each, all
/// fragments of one page. Without `keep_cache` the page's unused fragments are returned,
/// so only the tables hold it.
fn set_up(stage: &Stage, kind: Kind) -> Result<(), TestError> {
    let mm = MmGuard::new().context("Mm::new")?;
    mm.mmap(BASE, stage.file.size(), &stage.file, 0, false).context("mmap")?;
    {
        let _g = activate(&mm);
        for c in 0..kind.tables() as u64 {
            load_u64(BASE + c * pmd_size() + 8).context("prefault")?;
        }
    }
    if kind != Kind::TeardownUnusedFrags {
        pte_free::pte_frag_destroy(&mut mm.ptl.lock().pte);
    }
    let mut tables = Vec::new();
    for c in 0..kind.tables() as u64 {
        let (slot, level) = mm.lookup_slot(BASE + c * pmd_size()).ok_or("no translation")?;
        if level != Level::Pte {
            return Err(format!("range {c} has a {level:?} leaf, not a PTE table").into());
        }
        let bytes = pte::geometry().table_bytes(Level::Pte).next_power_of_two() as u64;
        tables.push(slot.pa() & !(bytes - 1));
    }
    if tables.iter().any(|&t| page_of(t) != page_of(tables[0])) {
        return Err(format!("tables {tables:#x?} are not in one page").into());
    }
    *stage.mm.lock() = Some(mm);
    Ok(())
}

/// Collapse PMD range `c` (a huge frame for it, then `retract_page_tables()`).
fn collapse(stage: &Stage, c: u64) -> Result<(), TestError> {
    let n = khugepaged::collapse_file(&stage.file, c * pmd_size()).context("collapse")?;
    if n != 1 {
        return Err(format!("retract of range {c} detached {n} tables, not 1").into());
    }
    Ok(())
}

/// The reader: lockless walk to the PMD of range `c` inside a read section, hold it until
/// the driver says, then read the table.
fn reader(
    ch: &Choreo,
    stage: &Stage,
    kind: Kind,
    cpu: usize,
    poison: &AtomicU64,
) -> Result<(), ()> {
    let c = match kind {
        Kind::LateDeferral | Kind::CallbacksTwoCpus | Kind::LateDeferralOtherCpu => 1,
        _ => 0,
    };
    after_own_qs(ch, cpu)?;
    let ea = BASE + c * pmd_size() + 8;
    let mut guard = rcu::read_traced(ReadSite::ScheduleReader, ea);
    let mm = stage.mm(ch, cpu)?;
    let Some(pmd) = mm.pmd_slot(ea) else {
        ch.fail(format!("cpu {cpu}: no PMD for {ea:#x}"));
        return Err(());
    };
    drop(mm);
    // A PMD slot of a live address space (the driver tears it down only after the
    // reader holds its table, and PMD tables are not freed while we read the slot).
    let e = pmd.get();
    if !pte::present(e) || pte::is_leaf(e) {
        ch.fail(format!("cpu {cpu}: range {c} has no PTE table to hold"));
        return Err(());
    }
    let table = pte::target(e);
    guard.holds(table);
    stage.held.store(table, Ordering::Release);
    ch.signal(Ev::ReaderHolds);
    // Inside the read section: no quiescent state while we wait.
    ch.wait(cpu, Ev::MayRead, false)?;
    // Every frame stays mapped in the linear map, so the read is memory-safe even if
    // the table was (wrongly) freed; detecting that is the point.
    let v = pte::slot(table, Level::Pte, ea).get();
    drop(guard);
    if v == POISON {
        poison.fetch_add(1, Ordering::Relaxed);
        ch.fail(format!(
            "cpu {cpu} read POISON from PTE table {table:#x} (page {:#x}) inside the read \
             section it took before the table's grace period could end (strategy {})",
            page_of(table),
            pte_free::strategy().name()
        ));
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

/// After the deferrals: the grace period a broken strategy would free in ends, its
/// callbacks run, then the reader may read.
fn settle(ch: &Choreo, cpu: usize, gp_end: u64, cb0: u64) -> Result<(), ()> {
    ch.wait_until(cpu, "the grace period running at the deferral to end", true, || {
        rcu::completed() >= gp_end
    })?;
    let t0 = timer::now();
    while timer::tb_to_us(timer::now() - t0) < SETTLE_US && pte_free::stats().callbacks == cb0 {
        let _ = rcu::quiescent_state();
        rcu::run_callbacks();
        crate::arch::smp::relax();
    }
    rcu::run_callbacks();
    Ok(())
}

fn driver(ch: &Choreo, stage: &Stage, kind: Kind, cpu: usize, _: &AtomicU64) -> Result<(), ()> {
    ch.check(cpu, set_up(stage, kind))?;
    ch.signal(Ev::SetUp);
    // Keep a grace period running until the deferral under test: our own read section holds
    // it open (taken first, so the one a first deferral starts cannot end before the second,
    // however long the collapse takes), and the request starts one if nothing queued did.
    if kind == Kind::CallbacksTwoCpus {
        // The page's first table goes on this CPU, and its callback runs here, before the
        // helper CPU defers the second one: the page's callbacks run on two CPUs.
        let (calls0, cb0) = (pte_free::stats().call_rcu, pte_free::stats().callbacks);
        ch.check(cpu, collapse(stage, 0))?;
        wait_deferral_callback(ch, cpu, "the first deferral's callback to run", calls0, cb0)?;
    }
    let hold = rcu::read_traced(ReadSite::DriverHold, 0);
    if matches!(kind, Kind::LateDeferral | Kind::LateDeferralOtherCpu) {
        // The first table of the page goes before the reader's grace period is known.
        ch.check(cpu, collapse(stage, 0))?;
    }
    rcu::request_grace_period();
    ch.wait_until(cpu, "a grace period to start", false, || rcu::gp_seq() & 1 == 1)?;
    let running = rcu::gp_seq();
    ch.signal(Ev::GpRunning);
    ch.wait(cpu, Ev::ReaderHolds, false)?;
    let cb0 = pte_free::stats().callbacks;
    match kind {
        Kind::LateDeferral => ch.check(cpu, collapse(stage, 1))?,
        Kind::CallbacksTwoCpus | Kind::LateDeferralOtherCpu => {
            // The deferral under test comes from the helper CPU (its call_rcu, if any, and
            // so its callback, are that CPU's).
            ch.signal(Ev::HelperGo);
            ch.wait(cpu, Ev::HelperDone, false)?;
        }
        Kind::SoleDeferral => ch.check(cpu, collapse(stage, 0))?,
        Kind::StaleTranslation
        | Kind::ConcurrentRetract
        | Kind::GupFastRecheck
        | Kind::HashFault
        | Kind::HashBusy
        | Kind::PwcFlush => {
            // They have drivers of their own (`Kind::roles`).
            ch.fail(format!("cpu {cpu}: {kind:?} is not a grace-period schedule"));
            return Err(());
        }
        Kind::TeardownPlainFree | Kind::TeardownUnusedFrags => {
            ch.check(cpu, collapse(stage, 0))?;
            if let Some(mm) = stage.mm.lock().take() {
                mm.destroy();
            }
        }
    }
    drop(hold);
    // That grace period ends now (the reader reported for it before its section); a
    // strategy that frees in it frees the table the reader still holds.
    settle(ch, cpu, running + 1, cb0)?;
    ch.signal(Ev::MayRead);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// File offset the `stale_translation` address space maps at `BASE`: off the PMD boundary.
const STALE_PGOFF: u64 = FRAME_SIZE;

fn stale_set_up(stage: &Stage) -> Result<(), TestError> {
    let mm = MmGuard::new().context("Mm::new")?;
    let len = stage.file.size() - STALE_PGOFF;
    mm.mmap(BASE, len, &stage.file, STALE_PGOFF, false).context("mmap")?;
    *stage.mm.lock() = Some(mm);
    Ok(())
}

/// The reader of `stale_translation`: a load through the MMU before the collapse and one
/// after it, both checked against the file's bytes.
fn stale_reader(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    poison: &AtomicU64,
) -> Result<(), ()> {
    ch.wait(cpu, Ev::SetUp, true)?;
    let mm = stage.mm(ch, cpu)?;
    let ea = BASE + 0x1238;
    let want = pattern(stage.file.id, STALE_PGOFF + 0x1238);
    {
        let _g = activate(&mm);
        match load_u64(ea) {
            Ok(v) if v == want => {}
            other => {
                ch.fail(format!(
                    "cpu {cpu}: first load of {ea:#x}: {other:x?}, file has {want:#x}"
                ));
                return Err(());
            }
        }
        stage.held.store(ea, Ordering::Release);
        ch.signal(Ev::ReaderHolds);
        // Interrupts stay on: the collapse's flush must reach this CPU while it waits.
        ch.wait(cpu, Ev::MayRead, true)?;
        let v = load_u64(ea);
        if v != Ok(want) {
            if v == Ok(POISON) {
                poison.fetch_add(1, Ordering::Relaxed);
            }
            ch.fail(format!(
                "cpu {cpu}: load of {ea:#x} after the collapse read {v:x?} through a \
                 translation the collapse should have flushed (file has {want:#x}; POISON is \
                 the freed small page)"
            ));
        }
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

fn stale_driver(ch: &Choreo, stage: &Stage, _: Kind, cpu: usize, _: &AtomicU64) -> Result<(), ()> {
    ch.check(cpu, stale_set_up(stage))?;
    ch.signal(Ev::SetUp);
    ch.wait(cpu, Ev::ReaderHolds, true)?;
    match khugepaged::collapse_file(&stage.file, 0) {
        Ok(0) => {}
        Ok(n) => {
            ch.fail(format!("cpu {cpu}: an unaligned mapping had {n} tables retracted"));
            return Err(());
        }
        Err(e) => {
            ch.fail(format!("cpu {cpu}: collapse: {e}"));
            return Err(());
        }
    }
    ch.signal(Ev::MayRead);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// `gup_fast_recheck`, the reader: a walk held inside its read section between reading the
/// PTE and using the page.
fn gup_reader(ch: &Choreo, stage: &Stage, _: Kind, cpu: usize, _: &AtomicU64) -> Result<(), ()> {
    ch.wait(cpu, Ev::SetUp, true)?;
    let mm = stage.mm(ch, cpu)?;
    let ea = BASE + 8;
    let guard = rcu::read_traced(ReadSite::GupReader, ea);
    let mut waited = Ok(());
    let mut pause = |at: u32| {
        if at == 1 {
            stage.held.store(ea, Ordering::Release);
            ch.signal(Ev::ReaderHolds);
            // Inside the read section: no quiescent state, interrupts on for the flushes.
            waited = ch.wait(cpu, Ev::MayRead, false);
        }
    };
    let r = gup_fast::walk(&mm, ea, &mut pause);
    drop(guard);
    waited?;
    match r {
        Walk::Discarded => {}
        Walk::Data { pa, data, .. } => ch.fail(format!(
            "cpu {cpu}: the walk's re-check accepted a PTE of a range collapsed under it and \
             returned {data:#x} from page {pa:#x}{}",
            if data == POISON { " (POISON: the freed small page)" } else { "" }
        )),
        other => ch.fail(format!("cpu {cpu}: walk of {ea:#x} found {other:?}, expected a PTE")),
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

/// `gup_fast_recheck`, the driver: the collapse while the walk waits.
fn gup_driver(ch: &Choreo, stage: &Stage, _: Kind, cpu: usize, _: &AtomicU64) -> Result<(), ()> {
    ch.check(cpu, set_up(stage, Kind::GupFastRecheck))?;
    ch.signal(Ev::SetUp);
    ch.wait(cpu, Ev::ReaderHolds, true)?;
    let r = collapse(stage, 0);
    ch.signal(Ev::MayRead);
    let _ = ch.check(cpu, r);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// `concurrent_retract`, the CPU that stops in `retract_page_tables()`.
fn paused_retractor(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    _: &AtomicU64,
) -> Result<(), ()> {
    ch.wait(cpu, Ev::SetUp, true)?;
    khugepaged::RESUME.store(false, Ordering::Release);
    khugepaged::PAUSED.store(false, Ordering::Release);
    khugepaged::PAUSE_CPU.store(cpu, Ordering::Release);
    ch.signal(Ev::GpRunning); // armed
    let n = khugepaged::retract_page_tables(&stage.file, 0);
    khugepaged::PAUSE_CPU.store(usize::MAX, Ordering::Release);
    stage.held.store(1 + n as u64, Ordering::Release);
    if n != 0 {
        ch.fail(format!(
            "cpu {cpu}: retract_page_tables() that paused before the PMD lock detached {n} \
             table(s) another CPU had already retracted"
        ));
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

/// `concurrent_retract`, the CPU that collapses the range meanwhile.
fn racing_collapser(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    _: &AtomicU64,
) -> Result<(), ()> {
    ch.check(cpu, set_up(stage, Kind::ConcurrentRetract))?;
    ch.signal(Ev::SetUp);
    ch.wait(cpu, Ev::GpRunning, true)?;
    ch.wait_until(cpu, "the other CPU to stop before the PMD lock", true, || {
        khugepaged::PAUSED.load(Ordering::Acquire)
    })?;
    let r = collapse(stage, 0);
    khugepaged::RESUME.store(true, Ordering::Release);
    let _ = ch.check(cpu, r);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// `hash_fault`, the reader: one load through the MMU that faults into `hash_page`, whose
/// lockless walk stops at its pause point (interrupts off) until it may go on.
fn hash_fault_reader(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    poison: &AtomicU64,
) -> Result<(), ()> {
    after_own_qs(ch, cpu)?;
    let mm = stage.mm(ch, cpu)?;
    let ea = BASE + 8;
    let want = pattern(stage.file.id, 8);
    let poison0 = hash_utils::POISON_READS.load(Ordering::Acquire);
    hash_utils::PAUSE_CPU.store(cpu, Ordering::Release);
    let f0 = mm.faults.load(Ordering::Relaxed);
    let v = {
        let _g = activate(&mm);
        load_u64(ea)
    };
    let f1 = mm.faults.load(Ordering::Relaxed);
    hash_utils::PAUSE_CPU.store(usize::MAX, Ordering::Release);
    let table = hash_utils::PAUSED_TABLE.load(Ordering::Acquire);
    stage.held.store(table, Ordering::Release);
    if table == 0 {
        ch.fail(format!(
            "cpu {cpu}: the load of {ea:#x} never stopped in hash_page's walk ({} faults)",
            f1 - f0
        ));
        return Err(());
    }
    let read_poison = hash_utils::POISON_READS.load(Ordering::Acquire) - poison0;
    if read_poison > 0 {
        poison.fetch_add(read_poison, Ordering::Relaxed);
        ch.fail(format!(
            "cpu {cpu}: hash_page's lockless walk read POISON from PTE table {table:#x} \
             (page {:#x}) it had reached through the PMD before the collapse (strategy {})",
            page_of(table),
            pte_free::strategy().name()
        ));
    }
    if v != Ok(want) {
        ch.fail(format!("cpu {cpu}: load of {ea:#x} read {v:x?}, file has {want:#x}"));
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

/// `hash_fault`, the driver: unmap the range (so the reader's load faults), keep a grace
/// period running, retract the table the stopped walk holds, let the deferral's grace period
/// end and its callback run, then let the walk go on if it still waits.
fn hash_fault_driver(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    _: &AtomicU64,
) -> Result<(), ()> {
    ch.check(cpu, set_up(stage, Kind::HashFault))?;
    if let Err(e) = khugepaged::collapse_begin(&stage.file, 0) {
        ch.fail(format!("cpu {cpu}: collapse: {e}"));
        return Err(());
    }
    hash_utils::RESUME.store(false, Ordering::Release);
    hash_utils::PAUSED_TABLE.store(0, Ordering::Release);
    ch.signal(Ev::SetUp);
    let hold = rcu::read();
    rcu::request_grace_period();
    ch.wait_until(cpu, "a grace period to start", false, || rcu::gp_seq() & 1 == 1)?;
    ch.signal(Ev::GpRunning);
    ch.wait_until(cpu, "the reader to stop in hash_page", false, || {
        hash_utils::PAUSED_TABLE.load(Ordering::Acquire) != 0
    })?;
    let (calls0, cb0) = (pte_free::stats().call_rcu, pte_free::stats().callbacks);
    let n = khugepaged::retract_page_tables(&stage.file, 0);
    khugepaged::collapse_end(&stage.file, 0);
    drop(hold);
    if n != 1 {
        ch.fail(format!("cpu {cpu}: retract detached {n} tables, not 1"));
    }
    wait_deferral_callback(ch, cpu, "the deferral's callback to run", calls0, cb0)?;
    hash_utils::RESUME.store(true, Ordering::Release);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// `callbacks_two_cpus` and `late_deferral_other_cpu`, the helper CPU: collapses (and so
/// defers) the reader's table when the driver says.
fn helper_deferral(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    _: &AtomicU64,
) -> Result<(), ()> {
    ch.wait(cpu, Ev::HelperGo, true)?;
    let r = collapse(stage, 1);
    ch.signal(Ev::HelperDone);
    ch.check(cpu, r)?;
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// `pwc_flush`, the reader: walks like the radix hardware (`pwc::walk`, no read section),
/// so it caches the PMD's table; after the collapse's flush reaches it (or the retract
/// returned without one) it walks again; once the table's grace period and callback are
/// over it walks a third time, and must not read the table through the cache.
fn pwc_reader(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    poison: &AtomicU64,
) -> Result<(), ()> {
    ch.wait(cpu, Ev::SetUp, true)?;
    let mm = stage.mm(ch, cpu)?;
    let ea = BASE + 8;
    let mut cache = None;
    let PwcWalk::Pte { table, .. } = pwc::walk(&mm, ea, &mut cache) else {
        ch.fail(format!("cpu {cpu}: no PTE table at {ea:#x} to cache"));
        return Err(());
    };
    let flushes = tlb::local_flushes(cpu);
    stage.held.store(table, Ordering::Release);
    ch.signal(Ev::ReaderHolds);
    ch.wait_until(cpu, "the collapse's flush on this CPU, or the retract to return", true, || {
        tlb::local_flushes(cpu) != flushes
            || ch.events[Ev::Retracted as usize].load(Ordering::Acquire)
    })?;
    let _ = pwc::walk(&mm, ea, &mut cache);
    ch.signal(Ev::Rewalked);
    ch.wait(cpu, Ev::MayRead, true)?;
    if let PwcWalk::Pte { table: t, cached: true, pte: v } = pwc::walk(&mm, ea, &mut cache) {
        if v == POISON {
            poison.fetch_add(1, Ordering::Relaxed);
        }
        ch.fail(format!(
            "cpu {cpu}: a hardware-style walk of {ea:#x} still used the retracted PTE table \
             {t:#x} from its page-walk cache after the table's grace period{}: the collapse did \
             not flush this CPU after clearing the PMD",
            if v == POISON { " and read POISON" } else { "" }
        ));
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

/// `pwc_flush`, the third CPU: with interrupts off it holds back the collapse's flush until
/// the reader has walked again, so a flush issued before the PMD is cleared lets the reader
/// cache the old table after its own flush.
fn late_acker(ch: &Choreo, _: &Stage, _: Kind, cpu: usize, _: &AtomicU64) -> Result<(), ()> {
    ch.wait(cpu, Ev::ReaderHolds, true)?;
    let was = crate::arch::irq::disable();
    let r = ch.wait_until(cpu, "the reader to walk again, or the retract to return", false, || {
        ch.events[Ev::Rewalked as usize].load(Ordering::Acquire)
            || ch.events[Ev::Retracted as usize].load(Ordering::Acquire)
    });
    crate::arch::irq::restore(was);
    r?;
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// `pwc_flush`, the driver: unmap first (that flush is not the one under test), then retract
/// while the reader's walk cache holds the table, then let its grace period and callback run.
fn pwc_driver(ch: &Choreo, stage: &Stage, _: Kind, cpu: usize, _: &AtomicU64) -> Result<(), ()> {
    ch.check(cpu, set_up(stage, Kind::PwcFlush))?;
    if let Err(e) = khugepaged::collapse_begin(&stage.file, 0) {
        ch.fail(format!("cpu {cpu}: collapse: {e}"));
        return Err(());
    }
    ch.signal(Ev::SetUp);
    ch.wait(cpu, Ev::ReaderHolds, true)?;
    let (calls0, cb0) = (pte_free::stats().call_rcu, pte_free::stats().callbacks);
    let n = khugepaged::retract_page_tables(&stage.file, 0);
    ch.signal(Ev::Retracted);
    khugepaged::collapse_end(&stage.file, 0);
    if n != 1 {
        ch.fail(format!("cpu {cpu}: retract detached {n} tables, not 1"));
    }
    ch.wait(cpu, Ev::Rewalked, true)?;
    // Its callback runs after its grace period (the strategies' callbacks free the table's
    // page here: it holds no other table).
    wait_deferral_callback(ch, cpu, "the deferral's callback to run", calls0, cb0)?;
    ch.signal(Ev::MayRead);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// Offset of the `hash_busy` page: in chunk 0, not faulted by `set_up`.
const BUSY_OFF: u64 = 3 * FRAME_SIZE + 0x40;

/// `hash_busy`, the reader: its load faults into `hash_page`, which stops with the new leaf
/// BUSY before inserting the HPTE; after the collapse unmapped and freed the small pages it
/// loads again.
fn hash_busy_reader(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    poison: &AtomicU64,
) -> Result<(), ()> {
    ch.wait(cpu, Ev::SetUp, true)?;
    let mm = stage.mm(ch, cpu)?;
    let ea = BASE + BUSY_OFF;
    let want = pattern(stage.file.id, BUSY_OFF);
    let _g = activate(&mm);
    hash_utils::PAUSE_AT.store(hash_utils::AT_BUSY, Ordering::Release);
    hash_utils::PAUSE_CPU.store(cpu, Ordering::Release);
    let v = load_u64(ea);
    hash_utils::PAUSE_CPU.store(usize::MAX, Ordering::Release);
    hash_utils::PAUSE_AT.store(hash_utils::AT_PTE_READ, Ordering::Release);
    let table = hash_utils::PAUSED_TABLE.load(Ordering::Acquire);
    stage.held.store(table, Ordering::Release);
    if table == 0 {
        ch.fail(format!("cpu {cpu}: the load of {ea:#x} never held its leaf BUSY"));
        return Err(());
    }
    if v != Ok(want) {
        if v == Ok(POISON) {
            poison.fetch_add(1, Ordering::Relaxed);
        }
        ch.fail(format!("cpu {cpu}: first load of {ea:#x} read {v:x?}, file has {want:#x}"));
    }
    ch.wait(cpu, Ev::MayRead, true)?;
    let v = load_u64(ea);
    if v != Ok(want) {
        if v == Ok(POISON) {
            poison.fetch_add(1, Ordering::Relaxed);
        }
        ch.fail(format!(
            "cpu {cpu}: load of {ea:#x} after the collapse read {v:x?} (file has {want:#x}; \
             POISON is the freed small page): an HPTE inserted while the unmap ran survived it"
        ));
    }
    ch.signal(Ev::ReaderDone);
    Ok(())
}

/// `hash_busy`, the driver: while the reader's `hash_page` holds the leaf BUSY, unmap and
/// free the small pages (the first half and the end of a collapse).
fn hash_busy_driver(
    ch: &Choreo,
    stage: &Stage,
    _: Kind,
    cpu: usize,
    _: &AtomicU64,
) -> Result<(), ()> {
    ch.check(cpu, set_up(stage, Kind::HashBusy))?;
    hash_utils::RESUME.store(false, Ordering::Release);
    hash_utils::PAUSED_TABLE.store(0, Ordering::Release);
    ch.signal(Ev::SetUp);
    ch.wait_until(cpu, "the reader to hold its leaf BUSY in hash_page", true, || {
        hash_utils::PAUSED_TABLE.load(Ordering::Acquire) != 0
    })?;
    if let Err(e) = khugepaged::collapse_begin(&stage.file, 0) {
        ch.fail(format!("cpu {cpu}: collapse: {e}"));
    }
    khugepaged::collapse_end(&stage.file, 0);
    hash_utils::RESUME.store(true, Ordering::Release);
    ch.signal(Ev::MayRead);
    ch.wait(cpu, Ev::ReaderDone, true)
}

/// Runs one schedule with `reader_cpu` reading and `driver_cpu` driving.
fn run_one(
    kind: Kind,
    reader_cpu: usize,
    driver_cpu: usize,
    helper_cpu: Option<usize>,
    poison: &AtomicU64,
) -> Result<(), TestError> {
    let mut name = format!("{} (reader cpu {reader_cpu}, driver cpu {driver_cpu}", kind.name());
    if let Some(h) = helper_cpu {
        name += &format!(", helper cpu {h}");
    }
    name += ")";
    let ch = Choreo::new(name);
    // One PMD range of file per table: under hash a range is 16M, filled, copied and
    // poisoned once per run, the bulk of a run's time.
    let pages = (pmd_size() * kind.tables() as u64 / FRAME_SIZE) as usize;
    let file = Arc::new(File::new(2000, pages, pmd_size()).context("file")?);
    let stage = Stage { file, mm: crate::sync::Mutex::new(None), held: AtomicU64::new(0) };
    smp::on_each_cpu(&|cpu| {
        let (drive, read) = kind.roles();
        let role: Option<Role> = if cpu == driver_cpu {
            Some(drive)
        } else if cpu == reader_cpu {
            Some(read)
        } else if Some(cpu) == helper_cpu {
            kind.helper()
        } else {
            None
        };
        if let Some(role) = role {
            let _ = role(&ch, &stage, kind, cpu, poison);
        }
    });
    if let Some(mm) = stage.mm.lock().take() {
        mm.destroy();
    }
    for c in 0..kind.tables() as u64 {
        stage.file.unhuge(c * pmd_size());
    }
    rcu::rcu_barrier();
    let held = stage.held.load(Ordering::Relaxed);
    let err = ch.error.lock().take();
    match err {
        Some(e) => Err(e.into()),
        None if held == 0 => {
            Err(format!("schedule {}: the reader never held a table", ch.name).into())
        }
        None => Ok(()),
    }
}

fn retract_schedules() -> TestResult {
    let n = smp::nr_online();
    if n < 2 {
        println!("retract_schedules: needs 2 CPUs, skipped on {n}");
        return Ok(());
    }
    let before = frame::free_count();
    let oracle0 = pte_free::oracle_bugs();
    let poison = AtomicU64::new(0);
    let mut errors = Vec::new();
    let mut runs = 0;
    let mut skipped = 0;
    let only = crate::config().schedule.as_deref();
    for kind in Kind::ALL {
        if !kind.applies() || only.is_some_and(|f| !f.split(',').any(|p| kind.name().contains(p))) {
            continue;
        }
        if kind.helper().is_some() && n < 3 {
            println!("retract_schedules: {} needs 3 CPUs, skipped on {n}", kind.name());
            continue;
        }
        let timeouts0 = TIMEOUTS.load(Ordering::Relaxed);
        let t0 = timer::now();
        for reader in 0..n {
            let timeouts = TIMEOUTS.load(Ordering::Relaxed) - timeouts0;
            if timeouts >= TIMEOUTS_PER_KIND {
                skipped += n - reader;
                println!(
                    "schedule: {} timed out {timeouts} times: its {} other run(s) skipped",
                    kind.name(),
                    n - reader
                );
                break;
            }
            runs += 1;
            let helper = kind.helper().map(|_| (reader + 2) % n);
            if let Err(e) = run_one(kind, reader, (reader + 1) % n, helper, &poison) {
                println!("schedule: {}", e.message());
                errors.push(e);
            }
        }
        println!("schedule: {} took {} ms", kind.name(), timer::tb_to_us(timer::now() - t0) / 1000);
    }
    let oracle = pte_free::oracle_bugs() - oracle0;
    println!(
        "figure: schedules mmu={} strategy={} runs={runs} failed={} skipped={skipped} poison_reads={} rcu_check_bugs={oracle}",
        crate::arch::mmu::mode().name(),
        pte_free::strategy().name(),
        errors.len(),
        poison.load(Ordering::Relaxed)
    );
    let leaked = before as i64 - frame::free_count() as i64;
    check!(
        errors.is_empty(),
        "{} of {runs} schedule runs failed; first: {}",
        errors.len(),
        errors[0].message()
    );
    check!(oracle == 0, "rcu_check reported {oracle} early or misused free(s) in the schedules");
    check!(leaked == 0, "schedules leaked {leaked} frames");
    Ok(())
}
ktest!(retract_schedules);
