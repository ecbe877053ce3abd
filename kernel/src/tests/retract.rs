//! The heart of ptfrag: khugepaged collapses PMD ranges of a shared file mapped by several
//! address spaces, `retract_page_tables()` detaches their PTE tables and `pte_free_defer()`
//! frees them with the strategy of the command line, while the other CPUs walk the same
//! tables locklessly (GUP-fast style, inside rcu_read_lock) and through the MMU. Freed
//! page-table pages are poisoned and handed out first, so a walk of a freed table reads
//! POISON and is reported. A deterministic case holds a read section open across a retract
//! so a premature free is caught on every run, not by luck of timing.

use super::gup_fast::{self, Walk};
use super::MmGuard;
use crate::arch::mmu::pte;
use crate::arch::uaccess::load_u64;
use crate::arch::{paca, smp, timer};
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
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use ptfrag_core::frame_alloc::FRAME_SIZE;
use ptfrag_core::gp_oracle::GpWaitCounts;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pte_free_defer::DeferCounts;

mod bench;

const BASE: u64 = 0x0000_2000_0000_0000;
/// Adjacent PMD ranges collapsed back to back: their PTE tables are fragments of the same
/// 64K page in each address space.
const CHUNKS: usize = 4;

struct Round {
    file: Arc<File>,
    mms: Vec<Arc<Mm>>,
    /// Where each mm maps the file.
    bases: Vec<u64>,
    /// (mm index, file offset): that mm munmapped the file from this offset on (its PTE
    /// tables there stay until teardown, which frees them plainly).
    unmapped: Option<(usize, u64)>,
}

impl Round {
    fn mapped(&self, m: usize, off: u64) -> bool {
        self.unmapped.is_none_or(|(um, from)| um != m || off < from)
    }

    /// The same round without its last address space (which the caller tears down).
    fn without_last(&self) -> Round {
        let k = self.mms.len() - 1;
        Round {
            file: self.file.clone(),
            mms: self.mms[..k].to_vec(),
            bases: self.bases[..k].to_vec(),
            unmapped: None,
        }
    }
}

/// What a round does besides the collapse: rounds of the torture take these in turn, so
/// deferred tables meet plain frees of their page's other tables and teardowns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RoundKind {
    /// Collapse every chunk; the address spaces are torn down once the walkers left.
    Collapse,
    /// The last address space munmaps the upper half of the file before the collapse, so
    /// only its lower tables are retracted and the others are freed plainly at teardown.
    Munmap,
    /// As `Munmap`, and that address space is torn down right after the collapse, while the
    /// deferrals of its retracted tables are still pending.
    MunmapTeardown,
}

#[derive(Default)]
struct Tally {
    /// Lockless walks by the walkers (and CPU 0 while it waits for a job), whatever they
    /// found (a page, a huge leaf, nothing).
    lockless: AtomicU64,
    /// Their loads through the MMU.
    mmu_loads: AtomicU64,
    /// CPU 0's own checks after each collapse: a load through the MMU of every chunk.
    checks: AtomicU64,
    poison: AtomicU64,
    /// Of `poison`: reads by the deterministic walker (at most one per round).
    det_poison: AtomicU64,
    bad_data: AtomicU64,
    /// Errors (POISON or bad data) by the CPU that saw them.
    by_cpu: [AtomicU64; crate::arch::paca::MAX_CPUS],
    first_error: crate::sync::Mutex<Option<String>>,
    /// Print nothing (`none` in the bench, whose walkers read POISON on purpose).
    quiet: AtomicBool,
}

impl Tally {
    fn error(&self, counter: &AtomicU64, msg: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        // Every check's catches, per CPU that made them.
        if let Some(c) = self.by_cpu.get(paca::cpu_id()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let mut f = self.first_error.lock();
        if f.is_none() {
            if !self.quiet.load(Ordering::Relaxed) {
                println!("walker: {msg}");
            }
            *f = Some(msg);
        }
    }
}

/// One GUP-fast-style lockless walk of `mm` at `ea` inside rcu_read_lock
/// (`gup_fast::walk`), held `hold_us` before the PTE table is read and again before the page
/// is used, and its result checked: POISON from a table means it was freed under us; data
/// the re-check accepted must be the file's.
fn lockless_walk(mm: &Mm, ea: u64, round: &Round, off: u64, t: &Tally, hold_us: u64) {
    t.lockless.fetch_add(1, Ordering::Relaxed);
    let mut section = rcu::read_traced(ReadSite::Walk, ea);
    let mut hold = |_| {
        if hold_us != 0 {
            timer::udelay(hold_us);
        }
    };
    let walked = gup_fast::walk(mm, ea, &mut hold);
    if let Walk::PoisonTable { table } | Walk::Data { table, .. } = walked {
        section.holds(table);
    }
    match walked {
        Walk::Nothing | Walk::Discarded => {}
        Walk::Huge(frame) => {
            let want = round.file.huge_frame(off);
            if want != Some(frame) {
                t.error(&t.bad_data, format!("PMD leaf of {ea:#x} maps {frame:#x}, file has {want:?}"));
            }
        }
        Walk::PoisonTable { table } => t.error(
            &t.poison,
            format!(
                "cpu {}: read POISON from freed PTE table {table:#x} (page {:#x}) at {ea:#x}, strategy {}",
                paca::cpu_id(),
                table & !(FRAME_SIZE - 1),
                pte_free::strategy().name()
            ),
        ),
        Walk::Data { pte: e, pa, data, .. } => {
            if data != pattern(round.file.id, off) {
                t.error(
                    &t.bad_data,
                    format!(
                        "cpu {}: lockless walk read {data:#x} at {ea:#x} (page {pa:#x}) through a \
                         PTE its re-check accepted; the file has {:#x}",
                        paca::cpu_id(),
                        pattern(round.file.id, off)
                    ),
                );
                return;
            }
            let want = round.file.phys(off & !(pte::geometry().page_size() - 1));
            if pte::target(e) != want.unwrap_or(u64::MAX) && round.file.huge_frame(off).is_none() {
                t.error(
                    &t.bad_data,
                    format!("PTE of {ea:#x} maps {:#x}, file page is {want:?}", pte::target(e)),
                );
            }
        }
    }
}

/// The deterministic case: read mm 0's PMD for chunk 0 inside a read section, let the
/// round's retracting CPU collapse and retract everything (`hold` returns true once it has,
/// false if the retracting CPU stopped waiting for us before we held the table), and only
/// then read the PTE table the PMD pointed to. Had the table been freed before our grace
/// period ended, it reads POISON.
fn deterministic_walk(round: &Round, t: &Tally, hold: impl FnOnce() -> bool) -> bool {
    let mm = &round.mms[0];
    let ea = round.bases[0];
    let mut section = rcu::read_traced(ReadSite::DeterministicWalk, ea);
    let mut table = mm.pgd;
    for level in [Level::Pgd, Level::Pud, Level::Pmd] {
        // Tables of a live mm (the round outlives this walk).
        let e = pte::slot(table, level, ea).get();
        if !pte::present(e) || pte::is_leaf(e) {
            // Held, the retract waited for us, so the table was there to find.
            let held = hold();
            if held {
                t.error(
                    &t.bad_data,
                    format!("deterministic walker: no PTE table at {ea:#x} ({level:?})"),
                );
            }
            return held;
        }
        table = pte::target(e);
    }
    section.holds(table);
    if !hold() {
        return false;
    }
    // A linear-map read of a frame that must not have been freed (see lockless_walk).
    let e = pte::slot(table, Level::Pte, ea).get();
    if e == POISON {
        t.det_poison.fetch_add(1, Ordering::Relaxed);
        t.error(
            &t.poison,
            format!(
                "cpu {}: deterministic walker read POISON from PTE table {table:#x} after \
                 retract_page_tables() returned, inside its read section (strategy {})",
                paca::cpu_id(),
                pte_free::strategy().name()
            ),
        );
    }
    true
}

/// A load through the MMU, checked against the file's bytes; counted in `count`.
fn mmu_load(mm: &Mm, ea: u64, round: &Round, off: u64, t: &Tally, count: &AtomicU64) {
    let _g = activate(mm);
    match load_u64(ea) {
        Ok(v) if v == pattern(round.file.id, off) => {
            count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(v) => t.error(
            &t.bad_data,
            format!("load {ea:#x} read {v:#x}, file has {:#x}", pattern(round.file.id, off)),
        ),
        Err(e) => t.error(&t.bad_data, format!("load {ea:#x} faulted: {e:?}")),
    }
}

/// How long a free-running walker holds a table inside its read section before reading it:
/// mostly not at all or briefly, sometimes for several ticks at hz=1000, so grace periods
/// and callbacks land at every point of a walk.
fn hold_us(seed: &mut u64) -> u64 {
    match xorshift(seed) % 64 {
        0 => 3_000,
        1..=4 => 200,
        5..=31 => 2,
        _ => 0,
    }
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// The file of a round: `CHUNKS` PMD ranges.
fn round_file(id: u32, reusable: bool) -> Result<File, TestError> {
    let g = pte::geometry();
    let pages = (g.pmd_size() * CHUNKS as u64 / FRAME_SIZE) as usize;
    let f = if reusable {
        File::new_reusable(id, pages, g.pmd_size())
    } else {
        File::new(id, pages, g.pmd_size())
    };
    Ok(f?)
}

fn make_round(
    round_no: u32,
    mms_n: usize,
    kind: RoundKind,
    file: Option<&Arc<File>>,
) -> Result<Round, TestError> {
    let g = pte::geometry();
    let file = match file {
        Some(f) => f.clone(),
        None => Arc::new(round_file(1000 + round_no, false)?),
    };
    let half = g.pmd_size() * CHUNKS as u64 / 2;
    let mut mms = Vec::new();
    let mut bases = Vec::new();
    for i in 0..mms_n {
        let mm = MmGuard::new()?;
        let base = BASE + i as u64 * (1 << 36);
        // Two VMAs, so the upper one can go on its own.
        mm.mmap(base, half, &file, 0, false)?;
        mm.mmap(base + half, half, &file, half, false)?;
        // Fault a few small pages of every chunk: one PTE table per (mm, chunk).
        {
            let _g = activate(&mm);
            for c in 0..CHUNKS as u64 {
                for p in [0u64, 1, 7] {
                    load_u64(base + c * g.pmd_size() + p * g.page_size()).context("prefault")?;
                }
            }
        }
        // Give back the fragments the cache still holds, so each PTE-table page is held
        // only by its live tables and the last deferral really frees it.
        pte_free::pte_frag_destroy(&mut mm.ptl.lock().pte);
        mms.push(mm);
        bases.push(base);
    }
    let mut unmapped = None;
    if kind != RoundKind::Collapse {
        let last = mms_n - 1;
        if !mms[last].munmap(bases[last] + half) {
            return Err(format!("munmap of {:#x} found no VMA", bases[last] + half).into());
        }
        unmapped = Some((last, half));
    }
    // Set up: from here on the round's owner tears its address spaces down.
    let mms = mms.into_iter().map(MmGuard::into_inner).collect();
    Ok(Round { file, mms, bases, unmapped })
}

/// One retract workload: `rounds` collapse rounds over `mms` address spaces, with or without
/// walkers on the other CPUs, with or without the deterministic walker's held reader.
struct Params {
    mms: usize,
    rounds: u32,
    walkers: bool,
    /// A read section held across each round's collapse (the deterministic walker): on the
    /// CPU after the retracting one, or, in the bench on one vCPU, on CPU 0 itself.
    held: bool,
    /// The torture's mix: the retracting CPU rotates over every CPU and the rounds take the
    /// `RoundKind`s in turn. Without it (the bench), CPU 0 collapses every round alike.
    mixed: bool,
    /// Every round collapses this (reusable) file instead of a new one.
    file: Option<Arc<File>>,
    /// Number of the first round (the deterministic walker's CPU rotates with it).
    first_round: u32,
    /// Walkers print no error (they are counted).
    quiet: bool,
}

impl Params {
    /// The torture's workload.
    fn torture(mms: usize, rounds: u32) -> Self {
        Params {
            mms,
            rounds,
            walkers: true,
            held: true,
            mixed: true,
            file: None,
            first_round: 0,
            quiet: false,
        }
    }
}

/// What a workload measured; the checks and figure lines are the callers'.
struct Outcome {
    n: usize,
    rounds: u32,
    retracts: u64,
    /// pte_free_defer's counters over the workload (`waiting_peak`: since its start).
    defer: DeferCounts,
    lat_mean_us: u64,
    lat_max_us: u64,
    /// Timebase in `retract_page_tables()`, without the reclaim work (frees and callbacks)
    /// the retracting CPU did meanwhile.
    retract_time: u64,
    /// Timebase every CPU spent reclaiming page-table pages (callbacks, frees, poison).
    reclaim_time: u64,
    elapsed: u64,
    gp_latency_us: u64,
    lockless: u64,
    mmu_loads: u64,
    checks: u64,
    det_seen: u64,
    /// How long the deferred tables waited, from the grace-period oracle.
    waits: GpWaitCounts,
    /// HPTEs evicted to make room (hash), during this workload.
    evictions: u64,
    /// Rounds retracted by each CPU, `a/b/c/...`.
    retract_cpus: String,
    /// Rounds with a munmap, and of those, with a teardown while deferrals were pending.
    munmap_rounds: u64,
    early_teardowns: u64,
    /// POISON reads of hash_page's lockless walk (the MMU-driven walker, hash mode).
    hash_page_poison: u64,
    poison: u64,
    det_poison: u64,
    bad_data: u64,
    first_error: Option<String>,
    bugs: u64,
    /// Of `bugs`: tables the grace-period oracle caught freed too early (or misused).
    oracle_bugs: u64,
    /// Walker catches per CPU, `a/b/c/...`.
    by_cpu: String,
    leaked: i64,
    pending: usize,
}

impl Outcome {
    fn secs(tb: u64) -> f64 {
        tb as f64 / timer::tb_freq() as f64
    }
    fn per_page(&self, x: u64) -> f64 {
        x as f64 / self.defer.pages_freed.max(1) as f64
    }
    fn retracts_per_s(&self) -> f64 {
        self.retracts as f64 / Self::secs(self.retract_time.max(1))
    }
    fn per_s(&self, x: u64) -> f64 {
        x as f64 / Self::secs(self.elapsed.max(1))
    }
    fn walker_reads_per_s(&self) -> f64 {
        self.per_s(self.lockless + self.mmu_loads)
    }
    /// Pages really freed, after a grace period or at once.
    fn pages(&self) -> u64 {
        self.defer.pages_freed + self.defer.pages_freed_now
    }
    fn mmu() -> &'static str {
        crate::arch::mmu::mode().name()
    }

    /// The `figure: retract` line of `retract_torture` (the harness reads its keys).
    fn print_retract_figure(&self) {
        println!(
            "figure: retract mmu={} strategy={} cpus={} rounds={} retracts={} deferrals={} pages_freed_after_gp={} \
             pages_freed_now={} call_rcu_per_page={:.2} gp_per_page={:.2} gp_per_table={:.2} \
             head_already_queued={} redefers={} \
             peak_waiting_pages={} defer_to_free_mean_us={} defer_to_free_max_us={} retracts_per_s={:.0} \
             walker_reads_per_s={:.0} gp_latency_us={} deterministic_checks={} poison_reads={} \
             deterministic_poison_reads={} bad_data={} \
             double_call_rcu={} rcu_check={} rcu_check_bugs={} leaked_frames={} pending_callbacks={} \
             catches_by_cpu={} retract_cpus={} munmap_rounds={} early_teardowns={} \
             hash_page_poison_reads={} lockless_walks={} mmu_loads={} cpu0_checks={} \
             gp_hist_tables={} gp_hist_pages={} deferrals_in_running_gp={}",
            Outcome::mmu(),
            pte_free::strategy().name(),
            self.n,
            self.rounds,
            self.retracts,
            self.defer.deferrals,
            self.defer.pages_freed,
            self.defer.pages_freed_now,
            self.per_page(self.defer.call_rcu),
            self.waits.mean_page_gps(),
            self.waits.mean_table_gps(),
            self.defer.head_already_queued,
            self.defer.redefers,
            self.defer.waiting_peak,
            self.lat_mean_us,
            self.lat_max_us,
            self.retracts_per_s(),
            self.walker_reads_per_s(),
            self.gp_latency_us,
            self.det_seen,
            self.poison,
            self.det_poison,
            self.bad_data,
            pte_free::double_queues(),
            if pte_free::rcu_check_enabled() { "on" } else { "off" },
            self.oracle_bugs,
            self.leaked,
            self.pending,
            self.by_cpu,
            self.retract_cpus,
            self.munmap_rounds,
            self.early_teardowns,
            self.hash_page_poison,
            self.lockless,
            self.mmu_loads,
            self.checks,
            GpWaitCounts::hist(&self.waits.tables),
            GpWaitCounts::hist(&self.waits.pages),
            self.waits.in_running_gp
        );
    }

    /// What the workload `s` measured since `before` (or why it could not be set up), read
    /// once every deferral's callback has run.
    fn measure(s: &Shared, before: &Baseline, elapsed: u64) -> Result<Outcome, TestError> {
        rcu::rcu_barrier();
        // A callback may have queued its page again (refcount, bitmap).
        if rcu::pending() != 0 {
            rcu::rcu_barrier();
        }
        let d = pte_free::stats();
        let (lat_mean, lat_max) = pte_free::take_defer_to_free_us();
        let waits = pte_free::take_gp_waits();
        let reclaim_time = pte_free::reclaim_time_all().saturating_sub(before.reclaim);
        let leaked = before.frames as i64 - frame::free_count() as i64;
        let pending = rcu::pending();
        if let Some(e) = s.setup_error.lock().take() {
            return Err(e);
        }
        let (d0, t) = (&before.defer, &s.tally);
        let first_error = t.first_error.lock().clone();
        Ok(Outcome {
            n: s.n,
            rounds: s.p.rounds,
            retracts: s.retracts.load(Ordering::Relaxed),
            defer: d.since(d0),
            lat_mean_us: lat_mean,
            lat_max_us: lat_max,
            retract_time: s.retract_time.load(Ordering::Relaxed),
            reclaim_time,
            elapsed,
            gp_latency_us: timer::tb_to_us(
                s.gp_time.load(Ordering::Relaxed) / s.p.rounds.max(1) as u64,
            ),
            lockless: t.lockless.load(Ordering::Relaxed),
            mmu_loads: t.mmu_loads.load(Ordering::Relaxed),
            checks: t.checks.load(Ordering::Relaxed),
            det_seen: s.det_seen.load(Ordering::Relaxed),
            waits,
            evictions: crate::arch::mmu::hash::EVICTIONS.load(Ordering::Relaxed) - before.evictions,
            retract_cpus: per_cpu(&s.retract_cpus),
            munmap_rounds: s.munmap_rounds.load(Ordering::Relaxed),
            early_teardowns: s.early_teardowns.load(Ordering::Relaxed),
            hash_page_poison: crate::arch::mmu::hash_utils::POISON_READS.load(Ordering::Relaxed)
                - before.hash_page_poison,
            poison: t.poison.load(Ordering::Relaxed),
            det_poison: t.det_poison.load(Ordering::Relaxed),
            bad_data: t.bad_data.load(Ordering::Relaxed),
            first_error,
            bugs: pte_free::bugs() - before.bugs,
            oracle_bugs: pte_free::oracle_bugs() - before.oracle_bugs,
            by_cpu: per_cpu(&t.by_cpu[..s.n]),
            leaked,
            pending,
        })
    }
}

/// Counters per CPU as `a/b/c/...`.
fn per_cpu(counters: &[AtomicU64]) -> String {
    counters.iter().map(|c| format!("{}", c.load(Ordering::Relaxed))).collect::<Vec<_>>().join("/")
}

/// A few lockless walks (and some MMU loads) of random places of `round`.
fn walk_batch(round: &Round, seed: &mut u64, t: &Tally) {
    for _ in 0..8 {
        let m = (xorshift(seed) % round.mms.len() as u64) as usize;
        let off = (xorshift(seed) % round.file.size()) & !7;
        let ea = round.bases[m] + off;
        lockless_walk(&round.mms[m], ea, round, off, t, hold_us(seed));
        if xorshift(seed).is_multiple_of(4) && round.mapped(m, off) {
            mmu_load(&round.mms[m], ea, round, off, t, &t.mmu_loads);
        }
    }
}

/// `Shared::det`, the deterministic case's hand-shake between CPU 0 and the walker CPU that
/// holds the read section: idle, the walker should grab the PMD, it holds it, the retract
/// returned.
const DET_IDLE: u32 = 0;
const DET_GRAB: u32 = 1;
const DET_HOLDS: u32 = 2;
const DET_RETRACTED: u32 = 3;

/// `Shared::job`: the collapse of a round, run by CPU c when `job` is JOB_FOR + c (JOB_DONE
/// once done; one word, so a CPU cannot pair an old target with a new request): every CPU
/// in turn retracts, so deferrals, call_rcu and callbacks happen on every CPU.
const JOB_IDLE: usize = 0;
const JOB_FOR: usize = 1;
const JOB_DONE: usize = usize::MAX;

/// What the CPUs of one workload share: the published round, the hand-shakes around it, and
/// the counters its figures come from.
struct Shared<'a> {
    p: &'a Params,
    /// CPUs online.
    n: usize,
    tally: Tally,
    /// The round the walkers walk, `None` between rounds.
    current: crate::sync::RwLock<Option<Arc<Round>>>,
    /// Bumped to retire a round; each walker acks the generation it has seen in `acks`
    /// (`u64::MAX` once it stopped).
    generation: AtomicU64,
    acks: Vec<AtomicU64>,
    stop: AtomicBool,
    /// `DET_*`.
    det: AtomicU32,
    det_seen: AtomicU64,
    /// The CPU whose deterministic walker holds the read section this round: every CPU in
    /// turn, so a grace period that forgets one CPU meets that CPU's reader.
    det_cpu: AtomicUsize,
    /// `JOB_*`.
    job: AtomicUsize,
    /// Rounds retracted by each CPU.
    retract_cpus: Vec<AtomicU64>,
    munmap_rounds: AtomicU64,
    early_teardowns: AtomicU64,
    retract_time: AtomicU64,
    retracts: AtomicU64,
    setup_error: crate::sync::Mutex<Option<TestError>>,
    /// Time spent in the rounds' `synchronize_rcu`.
    gp_time: AtomicU64,
}

impl<'a> Shared<'a> {
    fn new(p: &'a Params, n: usize) -> Self {
        Shared {
            p,
            n,
            tally: Tally::default(),
            current: crate::sync::RwLock::new(None),
            generation: AtomicU64::new(0),
            acks: (0..n).map(|_| AtomicU64::new(0)).collect(),
            stop: AtomicBool::new(false),
            det: AtomicU32::new(DET_IDLE),
            det_seen: AtomicU64::new(0),
            det_cpu: AtomicUsize::new(1),
            job: AtomicUsize::new(JOB_IDLE),
            retract_cpus: (0..n).map(|_| AtomicU64::new(0)).collect(),
            munmap_rounds: AtomicU64::new(0),
            early_teardowns: AtomicU64::new(0),
            retract_time: AtomicU64::new(0),
            retracts: AtomicU64::new(0),
            setup_error: crate::sync::Mutex::new(None),
            gp_time: AtomicU64::new(0),
        }
    }

    /// Collapses every chunk of `round` on this CPU.
    fn collapse_all(&self, round: &Round) {
        let g = pte::geometry();
        self.retract_cpus[paca::cpu_id()].fetch_add(1, Ordering::Relaxed);
        for c in 0..CHUNKS as u64 {
            // The collapse: copy and unmap (not timed), then the retract (timed, without the
            // reclaim work this CPU did meanwhile: `none`'s free inside the deferral, a
            // callback the tick ran; that is accounted as reclaim, for every strategy alike).
            if let Err(e) = khugepaged::collapse_begin(&round.file, c * g.pmd_size()) {
                *self.setup_error.lock() = Some(format!("collapse: {e}").into());
                continue;
            }
            // (Nor the oracle's report of an early free, printed inside that free: `none`'s
            // first 16 would otherwise cost its retract a console line each.)
            let cpu = paca::cpu_id();
            let r0 = pte_free::reclaim_and_report_time(cpu);
            let t0 = timer::now();
            let k = khugepaged::retract_page_tables(&round.file, c * g.pmd_size());
            let dt = timer::now() - t0;
            let reclaimed = pte_free::reclaim_and_report_time(cpu).saturating_sub(r0);
            self.retract_time.fetch_add(dt.saturating_sub(reclaimed), Ordering::Relaxed);
            khugepaged::collapse_end(&round.file, c * g.pmd_size());
            self.retracts.fetch_add(k as u64, Ordering::Relaxed);
        }
    }

    /// CPU 0: runs the collapse of `round` on CPU `rc` and waits for it, walking meanwhile
    /// if `walk` (not while it holds the deterministic read section: then it waits inside
    /// it).
    fn run_job(&self, round: &Round, rc: usize, walk: bool, seed: &mut u64) {
        if rc == 0 {
            self.collapse_all(round);
            return;
        }
        self.job.store(JOB_FOR + rc, Ordering::Release);
        while self.job.load(Ordering::Acquire) != JOB_DONE {
            if walk {
                walk_batch(round, seed, &self.tally);
                let _ = rcu::quiescent_state();
                rcu::run_callbacks();
            }
            crate::arch::smp::relax();
        }
        self.job.store(JOB_IDLE, Ordering::Release);
    }

    /// CPU 0: starts a new generation and waits (5 s at most) until every walker has seen
    /// it, so none still walks what was published before.
    fn retire(&self) {
        let gen = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let t0 = timer::now();
        while self.p.walkers
            && (1..self.n).any(|c| self.acks[c].load(Ordering::Acquire) < gen)
            && timer::tb_to_us(timer::now() - t0) < 5_000_000
        {
            let _ = rcu::quiescent_state();
            rcu::run_callbacks();
            crate::arch::smp::relax();
        }
    }
}

/// A walker CPU (any but CPU 0): until told to stop, walks the published round's address
/// spaces, collapses it when it is this CPU's turn and holds the deterministic read section
/// when asked to.
fn walker(s: &Shared, cpu: usize) {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ (cpu as u64 * 0x1234_5678);
    let mut seen_gen = 0;
    while !s.stop.load(Ordering::Acquire) {
        let gen = s.generation.load(Ordering::Acquire);
        let round = s.current.read().clone();
        if let Some(round) = &round {
            if s.job.load(Ordering::Acquire) == JOB_FOR + cpu {
                s.collapse_all(round);
                s.job.store(JOB_DONE, Ordering::Release);
            }
            if cpu == s.det_cpu.load(Ordering::Acquire) && s.det.load(Ordering::Acquire) == DET_GRAB
            {
                let held = deterministic_walk(round, &s.tally, || {
                    // A compare-and-swap: CPU 0 may have stopped waiting for us (GRAB taken
                    // back), and a store would then overwrite its next state and keep this
                    // read section open for good.
                    if s.det
                        .compare_exchange(DET_GRAB, DET_HOLDS, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        return false;
                    }
                    while s.det.load(Ordering::Acquire) != DET_RETRACTED
                        && !s.stop.load(Ordering::Acquire)
                    {
                        crate::arch::smp::relax();
                    }
                    true
                });
                if held {
                    s.det_seen.fetch_add(1, Ordering::Relaxed);
                    s.det.store(DET_IDLE, Ordering::Release);
                }
            }
            walk_batch(round, &mut seed, &s.tally);
        }
        drop(round);
        if gen != seen_gen {
            s.acks[cpu].store(gen, Ordering::Release);
            seen_gen = gen;
        }
        let _ = rcu::quiescent_state();
        rcu::run_callbacks();
        // Walking never waits, so let the other vCPUs run now and then (QEMU -icount).
        crate::arch::smp::relax();
    }
    s.acks[cpu].store(u64::MAX, Ordering::Release);
}

/// CPU 0's part, the workload: sets up, publishes, retires and tears down the rounds (the
/// collapse runs on each round's retracting CPU), then stops the walkers.
fn workload(s: &Shared) {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for rno in s.p.first_round..s.p.first_round + s.p.rounds {
        if let Err(e) = run_round(s, rno, &mut seed) {
            *s.setup_error.lock() = Some(e);
            break;
        }
        let _ = rcu::quiescent_state();
        rcu::run_callbacks();
    }
    s.stop.store(true, Ordering::Release);
}

/// One round: set up and publish it, collapse it, tear its last address space down early
/// if it is a `MunmapTeardown` round, time a grace period, check that the huge leaves
/// replaced the tables, then retire and tear it down. Fails only if it cannot be set up.
fn run_round(s: &Shared, rno: u32, seed: &mut u64) -> Result<(), TestError> {
    let p = s.p;
    let kind = match (p.mixed && p.mms >= 2, rno % 3) {
        (false, _) | (true, 0) => RoundKind::Collapse,
        (true, 1) => RoundKind::Munmap,
        _ => RoundKind::MunmapTeardown,
    };
    let mut round = Arc::new(make_round(rno, p.mms, kind, p.file.as_ref())?);
    if kind != RoundKind::Collapse {
        s.munmap_rounds.fetch_add(1, Ordering::Relaxed);
    }
    *s.current.write() = Some(round.clone());
    collapse_round(s, &round, rno, seed);
    if kind == RoundKind::MunmapTeardown {
        round = early_teardown(s, round);
    }
    // A grace period while the walkers run: its latency is a figure.
    let t0 = timer::now();
    rcu::synchronize_rcu();
    s.gp_time.fetch_add(timer::now() - t0, Ordering::Relaxed);
    check_huge_leaves(s, &round);
    retire_round(s, round);
    Ok(())
}

/// The round's collapse, on the CPU whose turn it is (`rc`), with a deterministic walker's
/// read section held across it (on CPU `dc`) when the workload holds one: on another CPU,
/// or, for the bench on one vCPU, on CPU 0 around its own collapse.
fn collapse_round(s: &Shared, round: &Round, rno: u32, seed: &mut u64) {
    let n = s.n;
    let deterministic = s.p.held && (n > 1 && s.p.walkers || n == 1 && !s.p.mixed);
    let rc = if deterministic && s.p.mixed { rno as usize % n } else { 0 };
    let dc = match (n, rc) {
        (1, _) => 0,
        (_, 0) => 1 + rno as usize % (n - 1),
        _ => (rc + 1) % n,
    };
    if deterministic && dc == 0 {
        deterministic_walk(round, &s.tally, || {
            s.run_job(round, rc, false, seed);
            true
        });
        s.det_seen.fetch_add(1, Ordering::Relaxed);
    } else if deterministic {
        s.det_cpu.store(dc, Ordering::Release);
        s.det.store(DET_GRAB, Ordering::Release);
        let t0 = timer::now();
        while s.det.load(Ordering::Acquire) != DET_HOLDS
            && timer::tb_to_us(timer::now() - t0) < 5_000_000
        {
            crate::arch::smp::relax();
        }
        // Not held within 5 s (a host that starves the walker's vCPU): take the request back,
        // unless the walker took it meanwhile; the round then runs without the held reader
        // and the torture's count of deterministic checks says so.
        let held = s.det.load(Ordering::Acquire) == DET_HOLDS
            || s.det
                .compare_exchange(DET_GRAB, DET_IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_err();
        s.run_job(round, rc, true, seed);
        if held {
            s.det.store(DET_RETRACTED, Ordering::Release);
            let t0 = timer::now();
            while s.det.load(Ordering::Acquire) != DET_IDLE {
                if timer::tb_to_us(timer::now() - t0) > 10_000_000 {
                    crate::fatal!("deterministic walker on cpu {dc} did not finish within 10 s");
                }
                let _ = rcu::quiescent_state();
                rcu::run_callbacks();
                crate::arch::smp::relax();
            }
        }
    } else {
        s.run_job(round, rc, false, seed);
    }
}

/// Tears the round's last address space down now, its deferrals still pending: first every
/// walker must have left it. Returns the round without it, published.
fn early_teardown(s: &Shared, old: Arc<Round>) -> Arc<Round> {
    let round = Arc::new(old.without_last());
    *s.current.write() = Some(round.clone());
    s.retire();
    let last = old.mms[old.mms.len() - 1].clone();
    drop(old);
    last.destroy();
    s.early_teardowns.fetch_add(1, Ordering::Relaxed);
    round
}

/// Later accesses fault in the huge PMD leaves: a load through the MMU of every chunk an
/// address space still maps, which must then be a PMD leaf.
fn check_huge_leaves(s: &Shared, round: &Round) {
    let g = pte::geometry();
    for (m, mm) in round.mms.iter().enumerate() {
        for c in 0..CHUNKS as u64 {
            let off = c * g.pmd_size() + 0x1238;
            if !round.mapped(m, off) {
                continue;
            }
            mmu_load(mm, round.bases[m] + off, round, off, &s.tally, &s.tally.checks);
            if mm.lookup_slot(round.bases[m] + off).map(|(_, l)| l) != Some(Level::Pmd) {
                s.tally.error(
                    &s.tally.bad_data,
                    format!("mm {} chunk {c}: no huge PMD leaf after collapse", mm.pid),
                );
            }
        }
    }
}

/// Retires the round: every walker must have moved past it before teardown (a round a
/// walker still holds after the wait is left alone: its frames then count as leaked).
fn retire_round(s: &Shared, round: Arc<Round>) {
    *s.current.write() = None;
    s.retire();
    if let Ok(r) = Arc::try_unwrap(round) {
        for mm in r.mms {
            mm.destroy();
        }
        for c in 0..CHUNKS as u64 {
            r.file.unhuge(c * pte::geometry().pmd_size());
        }
    }
}

/// The global counters when a workload starts: its figures are the differences.
struct Baseline {
    frames: usize,
    defer: ptfrag_core::pte_free_defer::DeferCounts,
    bugs: u64,
    oracle_bugs: u64,
    hash_page_poison: u64,
    reclaim: u64,
    evictions: u64,
}

impl Baseline {
    fn now() -> Self {
        // Waits of tables freed before this workload are not its own.
        let _ = pte_free::take_gp_waits();
        Baseline {
            reclaim: pte_free::reclaim_time_all(),
            evictions: crate::arch::mmu::hash::EVICTIONS.load(Ordering::Relaxed),
            frames: frame::free_count(),
            defer: pte_free::stats(),
            bugs: pte_free::bugs(),
            oracle_bugs: pte_free::oracle_bugs(),
            hash_page_poison: crate::arch::mmu::hash_utils::POISON_READS.load(Ordering::Relaxed),
        }
    }
}

fn run_retract(p: &Params) -> Result<Outcome, TestError> {
    let n = smp::nr_online();
    let before = Baseline::now();
    let s = Shared::new(p, n);
    s.tally.quiet.store(p.quiet, Ordering::Relaxed);
    let t_start = timer::now();
    pte_free::reset_peak();
    smp::on_each_cpu(&|cpu| {
        if cpu == 0 {
            workload(&s);
        } else if p.walkers {
            walker(&s, cpu);
        }
    });
    let elapsed = timer::now() - t_start;
    Outcome::measure(&s, &before, elapsed)
}

fn retract_torture() -> TestResult {
    let o = run_retract(&Params::torture(4, crate::config().collapses))?;
    o.print_retract_figure();
    let first = o.first_error.clone().unwrap_or_default();
    check!(o.poison == 0, "walkers read POISON from freed page tables: {first}");
    check!(
        o.hash_page_poison == 0,
        "hash_page's lockless walk read POISON {} time(s) from freed page tables",
        o.hash_page_poison
    );
    check!(
        o.bugs == 0,
        "pte_free_defer reported {} BUG(s) (double call_rcu: {}, rcu_check: {} table(s) freed before their grace period or misused)",
        o.bugs,
        pte_free::double_queues(),
        o.oracle_bugs
    );
    check!(o.bad_data == 0, "walkers saw wrong data: {first}");
    check!(
        o.n < 2 || o.det_seen == o.rounds as u64,
        "the deterministic walker ran {} of {} rounds",
        o.det_seen,
        o.rounds
    );
    check!(o.defer.deferrals == o.retracts, "deferrals != retracts");
    check!(o.pending == 0, "{} RCU callbacks still pending", o.pending);
    check!(o.leaked == 0, "{} frames leaked", o.leaked);
    Ok(())
}
ktest!(retract_torture);
