//! `retract_bench` (`bench=1`, what `make bench` boots): every strategy in one boot, so that
//! every comparison between strategies is made within one boot.
//!
//! Two phases, kept apart and labelled on every line:
//!
//! - `realistic`: the walkers on the other CPUs walk and load as in the torture, and nobody
//!   holds a read section across the retract (the deterministic walker does not run);
//! - `held`: the worst case, the same with the deterministic walker's read section held
//!   across each round's collapse (on one vCPU, CPU 0 holds it around its own collapse), so
//!   every page of the round waits for that reader.
//!
//! In each phase the strategies take turns round by round (`none`, `refcount`, `active`,
//! `bitmap`, the first one rotating each round so no strategy always goes first), `collapses=`
//! measured rounds each after one warm-up round that is printed but marked `warmup=1`. A
//! round is one collapse of `CHUNKS` adjacent PMD ranges of one file mapped by `mms=` address
//! spaces; it prints a `figure: bench_round` line (the samples the harness takes medians and
//! interquartile ranges of), and each phase ends with one `figure: bench` line per strategy
//! that adds up its measured rounds (the grace-period histograms among them).
//!
//! Time: the retract's time excludes the reclaim work (RCU callbacks and real frees with
//! their poison fill) the retracting CPU did meanwhile, for every strategy alike (`none`'s
//! free happens inside its deferral, the others' in callbacks); reclaim work is counted on
//! whichever CPU does it and charged per freed page. Time is in nanoseconds of guest
//! timebase: instructions under `make bench ICOUNT=1` (QEMU `-icount shift=0`).
//!
//! After each round CPU 0 times `REF_ITERS` iterations of the in-boot reference loop
//! (`ref_ns_per_iter=`), so the harness can give every time also in units of that loop's
//! iteration (the `*_refs` figures): a slower or busier host stretches both alike, and two
//! real-time runs can be compared by them where their nanoseconds cannot.

use super::{round_file, run_retract, Outcome, Params};
use crate::arch::timer;
use crate::ktest::{Context, TestResult};
use crate::mm::pte_free;
use crate::tests::reference_loop;
use crate::{check, ktest, println};
use alloc::format;
use alloc::sync::Arc;
use ptfrag_core::gp_oracle::{GpWaitCounts, GP_BUCKETS};
use ptfrag_core::pte_free_defer::{DeferCounts, Strategy};

/// The strategies compared, `none` the control.
const STRATEGIES: [Strategy; 4] =
    [Strategy::None, Strategy::Refcount, Strategy::Active, Strategy::Bitmap];

/// Iterations of the reference loop timed after each round (about 0.2 ms under TCG).
const REF_ITERS: u64 = 1 << 16;

/// The id of the bench's one file (its pattern words carry it).
const FILE_ID: u32 = 77;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Realistic,
    Held,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Realistic => "realistic",
            Phase::Held => "held",
        }
    }
}

/// A strategy's measured rounds of one phase, added up.
#[derive(Default)]
struct Sum {
    rounds: u32,
    retracts: u64,
    defer: DeferCounts,
    waits: GpWaitCounts,
    lockless: u64,
    mmu_loads: u64,
    checks: u64,
    evictions: u64,
    poison: u64,
    det_poison: u64,
    oracle_bugs: u64,
    leaked: i64,
    pending: usize,
}

impl Sum {
    fn add(&mut self, o: &Outcome) {
        self.rounds += o.rounds;
        self.retracts += o.retracts;
        self.defer.add(&o.defer);
        self.waits.merge(&o.waits);
        self.lockless += o.lockless;
        self.mmu_loads += o.mmu_loads;
        self.checks += o.checks;
        self.evictions += o.evictions;
        self.poison += o.poison;
        self.det_poison += o.det_poison;
        self.oracle_bugs += o.oracle_bugs;
        self.leaked += o.leaked;
        self.pending += o.pending;
    }
}

fn ns(tb: u64) -> f64 {
    timer::tb_to_ns(tb) as f64
}

fn per(x: f64, n: u64) -> f64 {
    x / n.max(1) as f64
}

/// Pages freed whose tables were deferred (the oracle's count; plain frees of teardown, such
/// as hash's deposited tables, are not among them).
fn deferred_pages(o: &Outcome) -> u64 {
    match o.waits.n_pages() {
        0 => o.pages(),
        n => n,
    }
}

/// One round's samples.
fn print_round(o: &Outcome, mms: usize, phase: Phase, st: Strategy, round: u32, ref_tb: u64) {
    let w = &o.waits;
    let pages = deferred_pages(o);
    println!(
        "figure: bench_round mmu={} cpus={} mms={mms} phase={} strategy={} round={round} warmup={} \
         tables={} pages={} retract_ns_per_table={:.0} free_ns_per_page={:.0} cost_ns_per_table={:.0} \
         call_rcu_per_page={:.2} gp_per_table={:.2} gp_per_page={:.2} table_wait_us={} \
         page_wait_us={} peak_waiting_pages={} lockless_walks_per_s={:.0} mmu_loads_per_s={:.0} \
         cpu0_checks={} hpte_evictions={} sync_gp_us={} poison_reads={} ref_ns_per_iter={:.3}",
        Outcome::mmu(),
        o.n,
        phase.name(),
        st.name(),
        u32::from(round == 0),
        o.retracts,
        pages,
        per(ns(o.retract_time), o.retracts),
        per(ns(o.reclaim_time), pages),
        per(ns(o.retract_time + o.reclaim_time), o.retracts),
        per(o.defer.call_rcu as f64, pages),
        w.mean_table_gps(),
        w.mean_page_gps(),
        timer::tb_to_us(w.mean_table_time()),
        timer::tb_to_us(w.mean_page_time()),
        o.defer.waiting_peak,
        o.per_s(o.lockless),
        o.per_s(o.mmu_loads),
        o.checks,
        o.evictions,
        o.gp_latency_us,
        o.poison,
        ns(ref_tb) / REF_ITERS as f64,
    );
}

/// A strategy's measured rounds of a phase: counts and the grace-period histograms.
fn print_sum(s: &Sum, n: usize, mms: usize, phase: Phase, st: Strategy) {
    let hist = |name: &str, h: &[u64; GP_BUCKETS]| {
        let mut out = alloc::string::String::new();
        for (i, c) in h.iter().enumerate() {
            out.push_str(&alloc::format!(" {name}_{i}={c}"));
        }
        out
    };
    println!(
        "figure: bench mmu={} cpus={n} mms={mms} phase={} strategy={} rounds={} retracts={} \
         deferrals={} pages_freed_after_gp={} pages_freed_now={} call_rcu={} head_already_queued={} \
         redefers={}{}{} deferrals_in_running_gp={} gp_completed_between={} table_wait_max_us={} \
         page_wait_max_us={} peak_waiting_pages_max={} lockless_walks={} mmu_loads={} \
         cpu0_checks_total={} hpte_evictions_total={} poison_reads_total={} deterministic_poison_reads={} \
         rcu_check_bugs={} leaked_frames={} pending_callbacks={}",
        Outcome::mmu(),
        phase.name(),
        st.name(),
        s.rounds,
        s.retracts,
        s.defer.deferrals,
        s.defer.pages_freed,
        s.defer.pages_freed_now,
        s.defer.call_rcu,
        s.defer.head_already_queued,
        s.defer.redefers,
        hist("gp_tables", &s.waits.tables),
        hist("gp_pages", &s.waits.pages),
        s.waits.in_running_gp,
        s.waits.completed_between,
        timer::tb_to_us(s.waits.table_time_max),
        timer::tb_to_us(s.waits.page_time_max),
        s.defer.waiting_peak,
        s.lockless,
        s.mmu_loads,
        s.checks,
        s.evictions,
        s.poison,
        s.det_poison,
        s.oracle_bugs,
        s.leaked,
        s.pending,
    );
}

fn retract_bench() -> TestResult {
    let cfg = crate::config();
    let (rounds, mms) = (cfg.collapses, cfg.mms);
    let original = pte_free::strategy();
    // One file for the whole bench: every round costs the same and allocates nothing for it.
    let file = Arc::new(round_file(FILE_ID, true)?);
    let mut next_round = 0;
    let mut n = 1;
    for phase in [Phase::Realistic, Phase::Held] {
        let mut sums: [Sum; STRATEGIES.len()] = Default::default();
        // Round 0 is every strategy's warm-up.
        for r in 0..=rounds {
            for k in 0..STRATEGIES.len() {
                let i = (r as usize + k) % STRATEGIES.len();
                let st = STRATEGIES[i];
                pte_free::set_strategy(st)
                    .with_context(|| format!("switching to {}", st.name()))?;
                let o = run_retract(&Params {
                    mms,
                    rounds: 1,
                    walkers: true,
                    held: phase == Phase::Held,
                    mixed: false,
                    file: Some(file.clone()),
                    first_round: next_round,
                    quiet: st == Strategy::None,
                })?;
                next_round += 1;
                n = o.n;
                // CPU 0 alone (the round's walkers have stopped).
                let ref_tb = reference_loop(REF_ITERS);
                print_round(&o, mms, phase, st, r, ref_tb);
                let what = || format!("{} {} round {r}", phase.name(), st.name());
                check!(
                    o.leaked == 0 && o.pending == 0,
                    "{}: {} frames leaked, {} callbacks pending",
                    what(),
                    o.leaked,
                    o.pending
                );
                if st != Strategy::None {
                    let first = o.first_error.clone().unwrap_or_default();
                    check!(o.poison == 0, "{}: walkers read POISON: {first}", what());
                    check!(o.bad_data == 0, "{}: walkers saw wrong data: {first}", what());
                    check!(
                        o.oracle_bugs == 0 && o.waits.tables[0] == 0,
                        "{}: {} table(s) freed before a grace period",
                        what(),
                        o.oracle_bugs
                    );
                }
                if r > 0 {
                    sums[i].add(&o);
                }
            }
        }
        for (s, st) in sums.iter().zip(STRATEGIES) {
            print_sum(s, n, mms, phase, st);
        }
    }
    drop(file);
    pte_free::set_strategy(original).with_context(|| format!("restoring {}", original.name()))?;
    Ok(())
}
ktest!(bench retract_bench);
