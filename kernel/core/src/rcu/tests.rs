//! Host tests of the RCU core through its public interface: grace periods, quiescent
//! states, the callback list and misuse checks, and rcutorture's pipe test on host threads.

use super::*;
use std::cell::RefCell;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::vec::Vec;

thread_local! {
    /// Heads whose callback ran on this thread, in order.
    static RAN: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

fn record(head: *const RcuHead) {
    RAN.with(|r| r.borrow_mut().push(head as usize));
}

fn ran() -> Vec<usize> {
    RAN.with(|r| r.borrow_mut().drain(..).collect())
}

fn heads(n: usize) -> Vec<RcuHead> {
    (0..n).map(|_| RcuHead::new()).collect()
}

fn addr(h: &RcuHead) -> usize {
    h as *const RcuHead as usize
}

fn queue<H: RcuHooks>(rcu: &Rcu<H>, cpu: usize, h: &RcuHead, f: RcuFn) -> Result<(), RcuError> {
    // SAFETY: every test keeps its heads alive until the callbacks ran or the Rcu is
    // dropped, and touches them only through the Rcu.
    unsafe { rcu.call_rcu(cpu, h, f) }
}

fn online(n: usize) -> Rcu {
    let rcu = Rcu::new();
    (0..n).for_each(|c| rcu.cpu_online(c));
    rcu
}

fn all_qs(rcu: &Rcu, n: usize) {
    (0..n).for_each(|c| rcu.quiescent_state(c).unwrap());
}

/// The kernel keeps one in a `static`.
static STATIC_RCU: Rcu = Rcu::new();

#[test]
fn usable_as_a_static() {
    STATIC_RCU.cpu_online(7);
    assert_eq!(STATIC_RCU.online_mask(), 1 << 7);
    assert_eq!(STATIC_RCU.gp_seq(), 0);
}

#[test]
fn snap_matches_rcu_seq() {
    assert_eq!(rcu_seq_snap(0), 2);
    assert_eq!(rcu_seq_snap(1), 4);
    assert_eq!(rcu_seq_snap(2), 4);
    assert_eq!(rcu_seq_snap(5), 8);
}

#[test]
fn callbacks_run_in_queue_order_after_a_grace_period() {
    let rcu = online(2);
    let hs = heads(5);
    assert_eq!(rcu.gp_seq(), 0);
    for h in &hs {
        queue(&rcu, 0, h, record).unwrap();
    }
    assert_eq!(rcu.gp_seq(), 1, "call_rcu starts a grace period");
    assert_eq!(rcu.pending(), 5);
    assert_eq!(rcu.run_callbacks(0), 0);
    all_qs(&rcu, 2);
    // The first head started grace period 1; the others came while it ran, so they
    // wait for grace period 2, which started as soon as 1 ended.
    assert_eq!((rcu.gp_seq(), rcu.completed()), (3, 2));
    assert_eq!(rcu.run_callbacks(1), 0, "callbacks run on the CPU that queued them");
    assert_eq!(rcu.run_callbacks(0), 1);
    all_qs(&rcu, 2);
    assert_eq!(rcu.run_callbacks(0), 4);
    assert_eq!(ran(), hs.iter().map(addr).collect::<Vec<_>>());
    assert!(hs.iter().all(|h| h.func.load(Ordering::Relaxed) == 0));
    assert_eq!(rcu.pending(), 0);
    assert_eq!(rcu.stats(), RcuStats { call_rcu: 5, grace_periods: 2, callbacks_invoked: 5 });
    assert_eq!(rcu.gp_seq(), 4, "no grace period without waiters");
}

#[test]
fn callback_waits_for_every_online_cpu() {
    let rcu = online(3);
    let h = RcuHead::new();
    // A quiescent state before the call does not count.
    rcu.quiescent_state(2).unwrap();
    queue(&rcu, 0, &h, record).unwrap();
    rcu.quiescent_state(0).unwrap();
    rcu.quiescent_state(1).unwrap();
    rcu.quiescent_state(0).unwrap();
    assert_eq!(rcu.gp_waiting_mask(), 1 << 2);
    assert_eq!(rcu.run_callbacks(0), 0);
    assert!(ran().is_empty());
    rcu.quiescent_state(2).unwrap();
    assert_eq!(rcu.run_callbacks(0), 1);
    assert_eq!(ran(), [addr(&h)]);
}

#[test]
fn callback_queued_during_a_grace_period_waits_for_the_next() {
    let rcu = online(2);
    let (a, b) = (RcuHead::new(), RcuHead::new());
    queue(&rcu, 0, &a, record).unwrap();
    rcu.quiescent_state(1).unwrap();
    queue(&rcu, 0, &b, record).unwrap(); // CPU 1 already reported: too late for b
    rcu.quiescent_state(0).unwrap();
    assert_eq!(rcu.gp_seq(), 3, "the next grace period starts as the first ends");
    assert_eq!(rcu.run_callbacks(0), 1);
    assert_eq!(ran(), [addr(&a)]);
    all_qs(&rcu, 2);
    assert_eq!(rcu.run_callbacks(0), 1);
    assert_eq!(ran(), [addr(&b)]);
    assert_eq!(rcu.stats().grace_periods, 2);
}

#[test]
fn quiescent_state_inside_read_section_is_rejected() {
    let rcu = online(2);
    let h = RcuHead::new();
    queue(&rcu, 0, &h, record).unwrap();
    rcu.read_lock(1);
    rcu.read_lock(1);
    assert_eq!(rcu.nesting(1), 2);
    assert_eq!(rcu.quiescent_state(1), Err(RcuError::QsInReadSection { cpu: 1, nesting: 2 }));
    rcu.quiescent_state(0).unwrap();
    assert_eq!(rcu.gp_waiting_mask(), 1 << 1, "the refused report reported nothing");
    rcu.read_unlock(1).unwrap();
    assert!(rcu.quiescent_state(1).is_err());
    rcu.read_unlock(1).unwrap();
    assert_eq!(rcu.read_unlock(1), Err(RcuError::Unbalanced { cpu: 1 }));
    assert_eq!(rcu.nesting(1), 0);
    rcu.quiescent_state(1).unwrap();
    assert_eq!(rcu.run_callbacks(0), 1);
    ran();
}

#[test]
fn double_call_rcu_is_detected_and_the_list_kept() {
    let rcu = online(1);
    let hs = heads(3);
    for h in &hs {
        queue(&rcu, 0, h, record).unwrap();
    }
    let err = queue(&rcu, 0, &hs[1], record).unwrap_err();
    assert_eq!(err, RcuError::DoubleQueue { head: addr(&hs[1]) as u64 });
    assert!(err.to_string().contains(&format!("{:#x}", addr(&hs[1]))));
    assert_eq!(hs[1].next.load(Ordering::Relaxed), addr(&hs[2]) as u64);
    assert_eq!((rcu.pending(), rcu.stats().call_rcu), (3, 3));
    all_qs(&rcu, 1);
    all_qs(&rcu, 1);
    assert_eq!(rcu.run_callbacks(0), 3);
    assert_eq!(ran(), hs.iter().map(addr).collect::<Vec<_>>());
    // Once its callback has run, the head may be queued again.
    queue(&rcu, 0, &hs[1], record).unwrap();
    all_qs(&rcu, 1);
    assert_eq!(rcu.run_callbacks(0), 1);
    assert_eq!(ran(), [addr(&hs[1])]);
}

/// An element of the re-queue and torture tests: a head with enough context for its
/// callback to re-queue it.
#[repr(C)]
struct Elem {
    head: RcuHead,
    rcu: &'static Rcu,
    cpu: usize,
    /// Grace periods this element has aged since it was retired.
    pipe: AtomicU32,
    /// Re-queues left.
    left: AtomicU32,
}

impl Elem {
    fn new(rcu: &'static Rcu, cpu: usize, left: u32) -> Self {
        Elem { head: RcuHead::new(), rcu, cpu, pipe: AtomicU32::new(0), left: AtomicU32::new(left) }
    }
}

/// Ages the element by one grace period and queues it again while it has re-queues left.
fn age(head: *const RcuHead) {
    // SAFETY: every head queued with `age` is the first field of a live `Elem` (repr(C)).
    let e = unsafe { &*head.cast::<Elem>() };
    let rcu = e.rcu;
    e.pipe.fetch_add(1, Ordering::SeqCst);
    if e.left.fetch_sub(1, Ordering::SeqCst) > 1 {
        queue(rcu, e.cpu, &e.head, age).expect("re-queue from the callback");
    }
}

#[test]
fn callback_may_requeue_its_head() {
    let rcu: &'static Rcu = Box::leak(Box::new(online(2)));
    let e = Elem::new(rcu, 1, 3);
    queue(rcu, 1, &e.head, age).unwrap();
    for gp in 1..=3u32 {
        all_qs(rcu, 2);
        assert_eq!(rcu.run_callbacks(1), 1, "grace period {gp}");
        assert_eq!(e.pipe.load(Ordering::SeqCst), gp);
        assert_eq!(rcu.run_callbacks(1), 0, "the re-queued head waits for a new one");
    }
    assert_eq!(rcu.pending(), 0);
    assert_eq!(e.head.func.load(Ordering::Relaxed), 0);
    assert_eq!(rcu.stats(), RcuStats { call_rcu: 3, grace_periods: 3, callbacks_invoked: 3 });
}

/// Negative control for `callback_waits_for_every_online_cpu`.
#[test]
fn broken_short_gp_runs_callbacks_without_quiescent_states() {
    let rcu = online(2);
    rcu.set_broken_short_gp(true);
    let h = RcuHead::new();
    rcu.read_lock(1);
    queue(&rcu, 0, &h, record).unwrap();
    assert_eq!(rcu.run_callbacks(0), 1, "ran while CPU 1 is still inside a reader");
    assert_eq!(ran(), [addr(&h)]);
    rcu.read_unlock(1).unwrap();
}

#[test]
fn offline_cpus_are_not_waited_for() {
    let rcu = Rcu::new();
    let h = RcuHead::new();
    queue(&rcu, 0, &h, record).unwrap();
    assert_eq!(rcu.gp_seq(), 2, "nobody online: the grace period ends at once");
    assert_eq!(rcu.run_callbacks(0), 1);
    ran();
    rcu.cpu_online(3);
    queue(&rcu, 0, &h, record).unwrap();
    assert_eq!(rcu.run_callbacks(0), 0);
    rcu.quiescent_state(3).unwrap();
    assert_eq!(rcu.run_callbacks(0), 1);
    ran();
}

#[test]
fn poll_cookie_needs_a_full_grace_period() {
    let rcu = online(2);
    let c1 = rcu.start_poll();
    assert_eq!((c1, rcu.gp_seq()), (2, 1));
    rcu.quiescent_state(0).unwrap();
    let c2 = rcu.start_poll();
    assert_eq!(c2, 4);
    rcu.quiescent_state(1).unwrap();
    assert!(rcu.poll(c1) && !rcu.poll(c2));
    all_qs(&rcu, 2);
    assert!(rcu.poll(c2));
}

#[test]
fn many_segments_overflow_only_delays() {
    // CPU 0 never runs its callbacks while grace periods go by: more distinct
    // snapshots than segment slots.
    let rcu = online(1);
    let hs = heads(8);
    for h in &hs {
        queue(&rcu, 0, h, record).unwrap();
        all_qs(&rcu, 1);
        // Leave a grace period running so the next head gets a new snapshot.
        rcu.start_poll();
    }
    all_qs(&rcu, 1);
    all_qs(&rcu, 1);
    assert_eq!(rcu.run_callbacks(0), 8);
    assert_eq!(ran(), hs.iter().map(addr).collect::<Vec<_>>());
}

/// The pipe check on the smallest grace period too short to be right: a reader holds an
/// element, the writer retires it, and one callback runs while the reader still holds it
/// (here because grace periods do not wait at all). The element is aged 1, which a check
/// that only flags `> 1` would let through.
#[test]
fn torture_pipe_check_flags_one_grace_period_short() {
    let rcu: &'static Rcu = Box::leak(Box::new(online(2)));
    rcu.set_broken_short_gp(true);
    let e = Elem::new(rcu, 0, 1);
    rcu.read_lock(1);
    assert!(torture_pipe_age_ok(e.pipe.load(Ordering::SeqCst).into()), "fresh element");
    queue(rcu, 0, &e.head, age).unwrap();
    assert_eq!(rcu.run_callbacks(0), 1);
    let held = e.pipe.load(Ordering::SeqCst);
    assert_eq!(held, 1, "one callback ran under the reader");
    assert!(!torture_pipe_age_ok(held.into()), "age {held} under a reader passed the check");
    rcu.read_unlock(1).unwrap();
    assert_eq!(rcu.pending(), 0);
}

/// rcutorture's pipe test, on host threads: CPU 0 retires elements through `call_rcu`
/// and ages each one grace period per callback; readers on the other CPUs hold an element
/// for a while and check that it does not age at all meanwhile.
/// Returns (errors seen, elements retired) in `run_ms` milliseconds; a broken run stops
/// at the first error.
fn torture(broken: bool, readers: usize, run_ms: u64) -> (usize, usize) {
    // The readers need the host's cores: one torture run at a time.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    const NELEM: usize = 16;
    const PIPE_LEN: u32 = 4;
    let rcu: &'static Rcu = Box::leak(Box::new(online(readers + 1)));
    rcu.set_broken_short_gp(broken);
    let elems: &'static [Elem] =
        Box::leak((0..NELEM).map(|_| Elem::new(rcu, 0, PIPE_LEN)).collect());
    // Every element but the first starts free (fully aged).
    elems.iter().skip(1).for_each(|e| e.pipe.store(PIPE_LEN, Ordering::SeqCst));
    let current = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for cpu in 1..=readers {
        let (current, stop, errors) = (current.clone(), stop.clone(), errors.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                rcu.read_lock(cpu);
                let mine = current.load(Ordering::Acquire);
                let e = &elems[mine];
                // Hold the element until the writer has retired it and a while after:
                // long enough for a broken grace period to age it twice.
                let start = std::time::Instant::now();
                let mut retired = None;
                while start.elapsed() < std::time::Duration::from_micros(300) {
                    if !torture_pipe_age_ok(e.pipe.load(Ordering::SeqCst).into()) {
                        errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    match retired {
                        None if current.load(Ordering::Relaxed) != mine => {
                            retired = Some(std::time::Instant::now())
                        }
                        Some(t) if t.elapsed() > std::time::Duration::from_micros(50) => break,
                        _ => std::hint::spin_loop(),
                    }
                }
                rcu.read_unlock(cpu).unwrap();
                rcu.quiescent_state(cpu).unwrap();
                // More threads than host cores: let the others report too.
                std::thread::yield_now();
            }
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(run_ms);
    let (mut cur, mut retired) = (0, 0);
    while std::time::Instant::now() < deadline {
        if broken && errors.load(Ordering::Relaxed) > 0 {
            break;
        }
        rcu.quiescent_state(0).unwrap();
        rcu.run_callbacks(0);
        let free = (0..NELEM).find(|&i| elems[i].pipe.load(Ordering::SeqCst) == PIPE_LEN);
        let Some(next) = free else {
            std::thread::yield_now();
            continue;
        };
        let e = &elems[next];
        e.pipe.store(0, Ordering::SeqCst);
        e.left.store(PIPE_LEN, Ordering::SeqCst);
        current.store(next, Ordering::Release);
        queue(rcu, 0, &elems[cur].head, age).unwrap();
        cur = next;
        retired += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    (errors.load(Ordering::Relaxed), retired)
}

#[test]
fn torture_pipe_sees_no_early_free() {
    let (errors, retired) = torture(false, 2, 200);
    eprintln!("torture: {retired} retired, {errors} errors");
    assert_eq!(errors, 0);
    assert!(retired > 20, "only {retired} elements went through a grace period");
}

/// Negative control: with grace periods cut short the torture test must see errors.
#[test]
fn torture_pipe_catches_broken_short_gp() {
    let (errors, retired) = torture(true, 2, 5000);
    eprintln!("broken torture: {retired} retired, {errors} errors");
    assert!(errors > 0);
}

thread_local! {
    /// What `Recorder`'s hooks heard on this thread.
    static HEARD: RefCell<Vec<(&'static str, u64, u64)>> = const { RefCell::new(Vec::new()) };
}

/// Hooks that write down every event, in order.
struct Recorder;

impl RcuHooks for Recorder {
    fn call_rcu(cpu: usize, _head: u64, snap: u64) {
        HEARD.with(|h| h.borrow_mut().push(("call_rcu", cpu as u64, snap)));
    }
    fn gp_start(gp_seq: u64, waits_for: u32) {
        HEARD.with(|h| h.borrow_mut().push(("start", gp_seq, waits_for as u64)));
    }
    fn gp_end(completed: u64) {
        HEARD.with(|h| h.borrow_mut().push(("end", completed, 0)));
    }
    fn qs_report(cpu: usize, gp_seq: u64) {
        HEARD.with(|h| h.borrow_mut().push(("qs", cpu as u64, gp_seq)));
    }
}

fn heard() -> Vec<(&'static str, u64, u64)> {
    HEARD.with(|h| h.borrow_mut().drain(..).collect())
}

#[test]
fn hooks_hear_grace_periods_and_the_reports_they_wait_for() {
    let rcu: Rcu<Recorder> = Rcu::with_hooks();
    (0..3).for_each(|c| rcu.cpu_online(c));
    let (a, b) = (RcuHead::new(), RcuHead::new());
    rcu.quiescent_state(1).unwrap();
    assert_eq!(heard(), [], "a report no grace period waits for is not one");
    queue(&rcu, 0, &a, record).unwrap();
    assert_eq!(heard(), [("call_rcu", 0, 2), ("start", 1, 0b111)]);
    rcu.quiescent_state(2).unwrap();
    rcu.quiescent_state(2).unwrap();
    rcu.read_lock(0);
    assert!(rcu.quiescent_state(0).is_err());
    rcu.read_unlock(0).unwrap();
    assert_eq!(heard(), [("qs", 2, 1)], "one report per CPU, none refused");
    queue(&rcu, 1, &b, record).unwrap();
    rcu.quiescent_state(0).unwrap();
    rcu.quiescent_state(1).unwrap();
    // b came during grace period 1, so it waits for 3, which starts as 1 ends.
    assert_eq!(
        heard(),
        [("call_rcu", 1, 4), ("qs", 0, 1), ("qs", 1, 1), ("end", 2, 0), ("start", 3, 0b111)]
    );
    (0..3).for_each(|c| rcu.quiescent_state(c).unwrap());
    assert_eq!(heard(), [("qs", 0, 3), ("qs", 1, 3), ("qs", 2, 3), ("end", 4, 0)]);
    assert_eq!(rcu.run_callbacks(0) + rcu.run_callbacks(1), 2);
    assert_eq!(ran().len(), 2);
    // A grace period that waits for nobody starts and ends in one step.
    rcu.set_broken_short_gp(true);
    rcu.start_poll();
    assert_eq!(heard(), [("start", 5, 0), ("end", 6, 0)]);
}
