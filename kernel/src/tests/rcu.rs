//! RCU: grace periods wait for readers on other CPUs, callbacks run in order, misuse is
//! caught (quiescent state or sleep inside a read section, double call_rcu, freeing a frame
//! whose rcu_head is queued), and an rcutorture-style pipe test on every CPU.

use crate::arch::{smp, timer};
use crate::ktest::TestResult;
use crate::mm::frame;
use crate::rcu;
use crate::{check, ktest, println};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use ptfrag_core::page_desc::RcuHead;

static ORDER: crate::sync::Mutex<Vec<u64>> = crate::sync::Mutex::new(Vec::new());

#[repr(C)]
struct Tagged {
    head: RcuHead,
    tag: u64,
}

fn record_tag(head: *const RcuHead) {
    // SAFETY: queued only by `callbacks_run_in_order` with heads inside live Tagged values.
    let t = unsafe { &*(head as *const Tagged) };
    ORDER.lock().push(t.tag);
}

fn rcu_callbacks_run_in_order() -> TestResult {
    ORDER.lock().clear();
    let items: Vec<Tagged> = (0..8).map(|i| Tagged { head: RcuHead::default(), tag: i }).collect();
    for t in &items {
        // SAFETY: `items` outlives rcu_barrier below, which waits for every callback.
        unsafe { rcu::call_rcu(&t.head, record_tag) }?;
    }
    rcu::rcu_barrier();
    let order = ORDER.lock().clone();
    check!(order == (0..8).collect::<Vec<_>>(), "callbacks ran in order {order:?}");
    Ok(())
}
ktest!(rcu_callbacks_run_in_order);

fn rcu_misuse_is_caught() -> TestResult {
    let bugs = rcu::bugs();
    {
        let _r = rcu::read();
        check!(
            rcu::quiescent_state().is_err(),
            "a quiescent state inside a read section was accepted"
        );
        check!(rcu::might_sleep().is_err(), "sleeping inside a read section was not caught");
    }
    check!(
        rcu::quiescent_state().is_ok(),
        "a quiescent state outside any read section was refused"
    );
    check!(rcu::bugs() == bugs + 2, "expected 2 reported bugs, got {}", rcu::bugs() - bugs);
    // Double call_rcu: refused, and the first queueing still runs exactly once.
    ORDER.lock().clear();
    let t = Tagged { head: RcuHead::default(), tag: 42 };
    // Both inside a read section: this CPU cannot report a quiescent state in between (not
    // even from the tick), so the first callback cannot have run when the second call comes.
    let r = rcu::read();
    // SAFETY: `t` outlives rcu_barrier below.
    let first = unsafe { rcu::call_rcu(&t.head, record_tag) };
    // SAFETY: as above.
    let second = unsafe { rcu::call_rcu(&t.head, record_tag) };
    drop(r);
    first?;
    check!(
        matches!(second, Err(ptfrag_core::rcu::RcuError::DoubleQueue { head }) if head == &t.head as *const RcuHead as u64),
        "double call_rcu returned {second:?}"
    );
    rcu::rcu_barrier();
    let order = ORDER.lock().clone();
    check!(order == [42], "after a refused double call_rcu the callbacks ran as {order:?}");
    Ok(())
}
ktest!(rcu_misuse_is_caught);

fn noop(_: *const RcuHead) {}

fn rcu_freeing_a_queued_head_is_caught() -> TestResult {
    let pa = frame::alloc()?;
    let d = frame::desc(pa);
    // Queue and free inside a read section, so the callback cannot run in between.
    let guard = rcu::read();
    // SAFETY: the descriptor lives as long as the kernel; the frame stays allocated until
    // the callback has run (rcu_barrier below).
    let queued = unsafe { rcu::call_rcu(&d.rcu_head, noop) };
    let r = frame::free(pa);
    drop(guard);
    queued?;
    rcu::rcu_barrier();
    let r2 = frame::free(pa);
    check!(
        matches!(r, Err(frame::FreeError::QueuedRcuHead { pa: p, .. }) if p == pa),
        "freeing a frame whose rcu_head is queued returned {r:?}"
    );
    check!(r2.is_ok(), "freeing it after the callback ran returned {r2:?}");
    Ok(())
}
ktest!(rcu_freeing_a_queued_head_is_caught);

fn rcu_grace_period_waits_for_readers() -> TestResult {
    // A reader on another CPU holds its section open; synchronize_rcu must not return
    // before the reader has left it.
    let n = smp::nr_online();
    if n < 2 {
        let c0 = rcu::completed();
        rcu::synchronize_rcu();
        check!(rcu::completed() > c0, "synchronize_rcu returned without a grace period");
        return Ok(());
    }
    let inside = AtomicBool::new(false);
    let left = AtomicBool::new(false);
    let returned_early = AtomicBool::new(false);
    smp::on_each_cpu(&|cpu| {
        if cpu == 1 {
            let r = rcu::read();
            inside.store(true, Ordering::Release);
            timer::udelay(30_000);
            left.store(true, Ordering::Release);
            drop(r);
        } else if cpu == 0 {
            while !inside.load(Ordering::Acquire) {
                crate::arch::smp::relax();
            }
            rcu::synchronize_rcu();
            if !left.load(Ordering::Acquire) {
                returned_early.store(true, Ordering::Release);
            }
        }
    });
    check!(
        !returned_early.load(Ordering::Acquire),
        "synchronize_rcu returned while a reader was inside"
    );
    Ok(())
}
ktest!(rcu_grace_period_waits_for_readers);

/// rcutorture's pipe: a writer replaces the current element and ages the old one by one step
/// per grace period through call_rcu (not on removal); readers that find an element aged at
/// all while they hold it have seen a grace period end under them
/// (`ptfrag_core::rcu::torture_pipe_age_ok`).
const PIPE_LEN: u64 = 10;
const POOL: usize = 64;

#[repr(C)]
struct Elem {
    head: RcuHead,
    pipe: AtomicU64,
    busy: AtomicBool,
}

static ELEMS: [Elem; POOL] = [const {
    Elem { head: RcuHead::new(), pipe: AtomicU64::new(0), busy: AtomicBool::new(false) }
}; POOL];
static CURRENT: AtomicPtr<Elem> = AtomicPtr::new(core::ptr::null_mut());

fn pipe_advance(head: *const RcuHead) {
    // SAFETY: only heads of ELEMS are queued with this callback.
    let e = unsafe { &*(head as *const Elem) };
    let p = e.pipe.fetch_add(1, Ordering::AcqRel) + 1;
    if p < PIPE_LEN {
        // SAFETY: static element; re-queued from its own callback (head no longer queued).
        if let Err(err) = unsafe { rcu::call_rcu(&e.head, pipe_advance) } {
            rcu::report_bug(format_args!("pipe re-queue: {err}"));
        }
    } else {
        e.busy.store(false, Ordering::Release);
    }
}

fn rcu_torture_pipe() -> TestResult {
    let n = smp::nr_online();
    let writes = 3000u64;
    let hist: Vec<AtomicU64> = (0..PIPE_LEN as usize + 1).map(|_| AtomicU64::new(0)).collect();
    let reads = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let errors = crate::sync::Mutex::new(Vec::<String>::new());
    let first = &ELEMS[0];
    first.busy.store(true, Ordering::Release);
    first.pipe.store(0, Ordering::Release);
    CURRENT.store(first as *const Elem as *mut Elem, Ordering::Release);
    let next_free = AtomicUsize::new(1);
    smp::on_each_cpu(&|cpu| {
        let reader = n == 1 || cpu != 0;
        if cpu == 0 {
            // At least `writes` replacements, and keep going until the readers have had a
            // fair chance to overlap them (bounded by time).
            let t0 = timer::now();
            let mut w = 0u64;
            while w < writes
                || (n > 1
                    && reads.load(Ordering::Relaxed) < 20_000
                    && timer::tb_to_us(timer::now() - t0) < 3_000_000)
            {
                w += 1;
                let e = loop {
                    let i = next_free.fetch_add(1, Ordering::Relaxed) % POOL;
                    if ELEMS[i]
                        .busy
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                    {
                        break &ELEMS[i];
                    }
                    let _ = rcu::quiescent_state();
                    rcu::run_callbacks();
                };
                e.pipe.store(0, Ordering::Release);
                let old = CURRENT.swap(e as *const Elem as *mut Elem, Ordering::AcqRel);
                // SAFETY: `old` is a static element, now unpublished.
                if let Err(err) = unsafe { rcu::call_rcu(&(*old).head, pipe_advance) } {
                    errors.lock().push(format!("writer call_rcu: {err}"));
                }
                if n == 1 && w.is_multiple_of(4) {
                    read_once(&hist, &reads, &errors, 0);
                }
                let _ = rcu::quiescent_state();
                rcu::run_callbacks();
            }
            done.store(true, Ordering::Release);
        }
        if reader && cpu != 0 {
            while !done.load(Ordering::Acquire) {
                read_once(&hist, &reads, &errors, cpu);
                let _ = rcu::quiescent_state();
                rcu::run_callbacks();
            }
        }
    });
    rcu::rcu_barrier();
    // Retire the element still published so the pool is whole for the next run.
    let cur = CURRENT.swap(core::ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: a static element.
    unsafe { (*cur).busy.store(false, Ordering::Release) };
    let h: Vec<u64> = hist.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    println!(
        "figure: rcutorture pipe histogram {:?} reads={} writes>={} grace_periods={}",
        h,
        reads.load(Ordering::Relaxed),
        writes,
        rcu::stats().grace_periods
    );
    let errs = errors.lock();
    check!(errs.is_empty(), "{} (histogram {:?})", errs.first().cloned().unwrap_or_default(), h);
    check!(reads.load(Ordering::Relaxed) > 0, "no reads happened");
    Ok(())
}
ktest!(rcu_torture_pipe);

fn read_once(
    hist: &[AtomicU64],
    reads: &AtomicU64,
    errors: &crate::sync::Mutex<Vec<String>>,
    cpu: usize,
) {
    let _r = rcu::read();
    let p = CURRENT.load(Ordering::Acquire);
    if p.is_null() {
        return;
    }
    // SAFETY: static element.
    let e = unsafe { &*p };
    timer::udelay(5);
    let age = e.pipe.load(Ordering::Acquire);
    hist[age.min(PIPE_LEN) as usize].fetch_add(1, Ordering::Relaxed);
    reads.fetch_add(1, Ordering::Relaxed);
    if !ptfrag_core::rcu::torture_pipe_age_ok(age) {
        let mut errs = errors.lock();
        if errs.len() < 4 {
            errs.push(format!(
                "cpu {cpu}: element aged {age} grace periods while a reader held it (too-short grace period)"
            ));
        }
    }
}

/// A callback must not run while another CPU is inside a read section that began before it
/// was queued: with only ticks, with TLB-flush IPIs hitting the reader, and with the queuing
/// CPU reporting its own quiescent states.
static CB_RAN: AtomicBool = AtomicBool::new(false);
fn waits_cb(_: *const RcuHead) {
    CB_RAN.store(true, Ordering::Release);
}

fn rcu_callback_waits_for_reader() -> TestResult {
    let n = smp::nr_online();
    if n < 2 {
        return Ok(());
    }
    for variant in 0..3 {
        CB_RAN.store(false, Ordering::Release);
        let inside = AtomicBool::new(false);
        let release = AtomicBool::new(false);
        let early = AtomicBool::new(false);
        let queued = crate::sync::Mutex::new(None);
        let head = RcuHead::new();
        smp::on_each_cpu(&|cpu| {
            if cpu == 1 {
                let r = rcu::read();
                inside.store(true, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    crate::arch::smp::relax();
                }
                drop(r);
            } else if cpu == 0 {
                while !inside.load(Ordering::Acquire) {
                    crate::arch::smp::relax();
                }
                // SAFETY: head outlives the barrier below.
                *queued.lock() = Some(unsafe { rcu::call_rcu(&head, waits_cb) });
                let t0 = timer::now();
                while timer::tb_to_us(timer::now() - t0) < 30_000 {
                    if variant == 1 {
                        crate::arch::mmu::tlb::flush_all_cpus(1);
                    }
                    if variant == 2 {
                        let _ = rcu::quiescent_state();
                        rcu::run_callbacks();
                    }
                    if CB_RAN.load(Ordering::Acquire) {
                        early.store(true, Ordering::Release);
                    }
                }
                release.store(true, Ordering::Release);
            }
        });
        match queued.lock().take() {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(format!("variant {variant}: call_rcu refused: {e}").into()),
            None => return Err(format!("variant {variant}: cpu 0 never called call_rcu").into()),
        }
        rcu::rcu_barrier();
        check!(
            !early.load(Ordering::Acquire),
            "variant {variant}: callback ran while cpu 1 was in a read section"
        );
        check!(
            CB_RAN.load(Ordering::Acquire),
            "variant {variant}: callback did not run by rcu_barrier"
        );
    }
    Ok(())
}
ktest!(rcu_callback_waits_for_reader);
