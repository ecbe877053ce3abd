//! `trace=1`: a timeline of the retract path. Each CPU records events (deferrals, `call_rcu`,
//! grace periods, quiescent-state reports, callbacks, real frees, walkers' read sections,
//! flush IPIs) into its own ring, preallocated at boot; at the end of the boot's tests the
//! rings are dumped on the console, and the harness (`harness trace`, `make trace`) turns
//! the dump into a Chrome/Perfetto trace and an SVG timeline per page-table page.
//!
//! The ring and the line format are `ptfrag_core::trace`: a ring stops when full (the
//! beginning of the workload is kept, later records are counted as dropped), a record is
//! one `fetch_add` and four stores, safe from interrupts. With tracing off (`trace=0`, the
//! default) [`record`] is one relaxed load and a branch.

use crate::arch::{paca, timer};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ptfrag_core::rcu::RcuHooks;
use ptfrag_core::trace::{Begin, End, Event, Ring, WORDS};
pub use ptfrag_core::trace::{Kind, ReadSite};

/// Records each CPU's ring holds: a `late_deferral` schedule run makes a few dozen, a
/// boot of `retract_torture` far more than fit (its walkers' read sections fill the rings
/// within its first rounds, and the rest is counted as dropped).
pub const CAPACITY: usize = 8192;

static ENABLED: AtomicBool = AtomicBool::new(false);
/// One ring per CPU the device tree lists, allocated once at boot.
static RINGS: spin::Once<Vec<Ring<'static>>> = spin::Once::new();

/// With `on`, allocates a ring for each of `ncpus` CPUs and starts recording.
pub fn init(on: bool, ncpus: usize) {
    if !on {
        return;
    }
    RINGS.call_once(|| {
        (0..ncpus)
            .map(|_| {
                let words: Vec<AtomicU64> =
                    (0..CAPACITY * WORDS).map(|_| AtomicU64::new(0)).collect();
                Ring::new(alloc::boxed::Box::leak(words.into_boxed_slice()))
            })
            .collect()
    });
    ENABLED.store(true, Ordering::Release);
}

/// Records `kind` with its arguments on this CPU, at the timebase of now.
#[inline(always)]
pub fn record(kind: Kind, a: u64, b: u64) {
    if ENABLED.load(Ordering::Relaxed) {
        record_on(kind, a, b);
    }
}

#[cold]
#[inline(never)]
fn record_on(kind: Kind, a: u64, b: u64) {
    // A secondary CPU may report to the RCU before its PACA is in place.
    if !paca::installed() {
        return;
    }
    let cpu = paca::cpu_id();
    if let Some(ring) = RINGS.get().and_then(|r| r.get(cpu)) {
        ring.record(&Event { cpu: cpu as u32, tb: timer::now(), kind, a, b });
    }
}

/// The RCU core's hooks (`crate::rcu`'s `Rcu<Hooks>`): its grace periods and reports.
pub struct Hooks;

impl RcuHooks for Hooks {
    fn active() -> bool {
        ENABLED.load(Ordering::Relaxed)
    }
    fn call_rcu(_cpu: usize, head: u64, snap: u64) {
        // Only page-table pages' heads: the retract path's.
        if let Some(page) = crate::mm::frame::page_table_of_rcu_head(head) {
            record(Kind::CallRcu, page, snap);
        }
    }
    fn gp_start(gp_seq: u64, waits_for: u32) {
        record(Kind::GpStart, gp_seq, waits_for as u64);
    }
    fn gp_end(completed: u64) {
        record(Kind::GpEnd, completed, 0);
    }
    fn qs_report(cpu: usize, gp_seq: u64) {
        record(Kind::Qs, cpu as u64, gp_seq);
    }
}

/// Stops recording and prints every ring, CPU by CPU, between a `trace: begin` and a
/// `trace: end` line (nothing when tracing is off).
pub fn dump() {
    let Some(rings) = RINGS.get() else { return };
    ENABLED.store(false, Ordering::Release);
    // A record that read ENABLED just before finishes within microseconds; one that has
    // not is not shown and counts as dropped.
    timer::udelay(1000);
    crate::println!(
        "{}",
        Begin {
            tb_hz: timer::tb_freq(),
            cpus: rings.len() as u32,
            capacity: CAPACITY as u64,
            strategy: crate::mm::pte_free::strategy().name(),
            mmu: crate::arch::mmu::mode().name(),
        }
    );
    let (mut events, mut dropped) = (0u64, 0u64);
    for ring in rings {
        let before = events;
        for ev in ring.events() {
            crate::println!("{ev}");
            events += 1;
        }
        dropped += ring.dropped() + (ring.used() as u64 - (events - before));
    }
    crate::println!("{}", End { events, dropped });
}
