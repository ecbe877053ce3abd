//! Every CPU takes part: a shared counter under a spinlock, IPIs, the periodic tick.

use crate::arch::{paca, smp, timer};
use crate::ktest::TestResult;
use crate::{check, ktest};
use core::sync::atomic::{AtomicU64, Ordering};

const ROUNDS: u64 = 20_000;

fn smp_checkin_spinlock() -> TestResult {
    let n = smp::nr_online();
    let counter = crate::sync::Mutex::new(0u64);
    let seen = AtomicU64::new(0);
    smp::on_each_cpu(&|cpu| {
        seen.fetch_or(1 << cpu, Ordering::Relaxed);
        for _ in 0..ROUNDS {
            // Non-atomic read-modify-write: only the lock keeps it exact.
            let mut g = counter.lock();
            let v = core::hint::black_box(*g);
            *g = v + 1;
        }
    });
    let want_mask = (1u64 << n) - 1;
    let mask = seen.load(Ordering::Relaxed);
    check!(mask == want_mask, "CPUs that checked in: {mask:#b}, expected {want_mask:#b}");
    let total = *counter.lock();
    check!(total == ROUNDS * n as u64, "counter {total}, expected {}", ROUNDS * n as u64);
    Ok(())
}
ktest!(smp_checkin_spinlock);

fn ipi_all_cpus() -> TestResult {
    let n = smp::nr_online();
    for cpu in 0..n {
        let p = paca::get(cpu);
        let before = p.ipis.load(Ordering::Acquire);
        let rc = crate::arch::xics::send_ipi(p.server);
        check!(rc == 0, "H_IPI to cpu {cpu} returned {rc}");
        let t0 = timer::now();
        while p.ipis.load(Ordering::Acquire) == before {
            check!(
                timer::tb_to_us(timer::now() - t0) < 1_000_000,
                "cpu {cpu} got no IPI within 1 s"
            );
            crate::arch::smp::relax();
        }
    }
    Ok(())
}
ktest!(ipi_all_cpus);

fn tick_all_cpus() -> TestResult {
    let n = smp::nr_online();
    let hz = timer::tb_freq() / timer::tick_interval();
    let before: alloc::vec::Vec<u64> =
        (0..n).map(|c| paca::get(c).ticks.load(Ordering::Relaxed)).collect();
    let t0 = timer::now();
    timer::udelay(200_000);
    let elapsed_us = timer::tb_to_us(timer::now() - t0);
    let expected = hz * elapsed_us / 1_000_000;
    for (cpu, b) in before.iter().enumerate() {
        let got = paca::get(cpu).ticks.load(Ordering::Relaxed) - b;
        check!(
            // The decrementer counts host time under TCG: a vCPU thread the host keeps off a
            // core loses ticks, so the lower bound is generous; too many ticks is a bug.
            got * 4 >= expected && got <= expected * 2 + 1,
            "cpu {cpu}: {got} ticks in {elapsed_us} us, expected about {expected} at {hz} Hz"
        );
    }
    Ok(())
}
ktest!(tick_all_cpus);
