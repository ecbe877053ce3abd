//! Bringing up the other CPUs (RTAS start-cpu), running work on them through a per-CPU
//! mailbox and an XICS IPI, the idle loop (H_CEDE), and the tick / external interrupt
//! handlers that run on every CPU.

use super::{hcall, irq, paca, rtas, timer, xics};
use crate::sync::Mutex;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub const STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stacks([[u8; STACK_SIZE]; paca::MAX_CPUS]);

static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; paca::MAX_CPUS]);

/// Stack tops for boot/entry.S `secondary_entry`, indexed by logical CPU.
#[unsafe(no_mangle)]
static mut SECONDARY_STACKS: [u64; paca::MAX_CPUS] = [0; paca::MAX_CPUS];

/// Number of CPUs online (the boot CPU included).
static NR_ONLINE: AtomicUsize = AtomicUsize::new(1);

pub fn nr_online() -> usize {
    NR_ONLINE.load(Ordering::Acquire)
}

type Work = &'static (dyn Fn(usize) + Sync);

struct Mailbox {
    posted: AtomicU64,
    done: AtomicU64,
    work: Mutex<Option<Work>>,
}

#[allow(clippy::declare_interior_mutable_const)]
const MAILBOX_INIT: Mailbox =
    Mailbox { posted: AtomicU64::new(0), done: AtomicU64::new(0), work: Mutex::new(None) };
static MAILBOX: [Mailbox; paca::MAX_CPUS] = [MAILBOX_INIT; paca::MAX_CPUS];
/// One cross-CPU call at a time.
static CALL_LOCK: Mutex<()> = Mutex::new(());

unsafe extern "C" {
    fn secondary_entry();
}

/// Starts CPU `index` (hardware server `server`) and waits until it is online.
pub fn start_cpu(index: usize, server: u32, toc: u64) -> Result<(), &'static str> {
    let token = rtas::tokens().start_cpu.ok_or("device tree /rtas has no start-cpu token")?;
    // SAFETY: the CPU is not running yet; nobody else touches its PACA or stack slot.
    unsafe {
        paca::init(index, server, toc);
        let top = core::ptr::addr_of!(STACKS.0[index]) as u64 + STACK_SIZE as u64;
        core::ptr::addr_of_mut!(SECONDARY_STACKS[index]).write_volatile(top);
    }
    super::regs::sync();
    let entry = super::virt_to_phys(secondary_entry as *const () as u64) as u32;
    let r = rtas::call(token, &[server, entry, index as u32], 1);
    if r[0] != 0 {
        return Err("RTAS start-cpu returned an error");
    }
    let t0 = timer::now();
    while !paca::is_online(index) {
        if timer::tb_to_us(timer::now() - t0) > 2_000_000 {
            return Err("secondary CPU did not come online within 2 s");
        }
        relax();
    }
    NR_ONLINE.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// Per-CPU set-up shared by the boot CPU and the secondaries.
pub fn cpu_setup(index: usize) {
    paca::install(index);
    xics::cpu_init();
    crate::rcu::cpu_online();
    timer::arm();
}

#[unsafe(no_mangle)]
extern "C" fn secondary_main(index: usize) -> ! {
    super::mmu::this_cpu_on();
    cpu_setup(index);
    paca::get(index).online.store(true, Ordering::Release);
    irq::enable();
    idle_loop(index)
}

/// Runs mailbox work when posted, otherwise cedes the CPU until an interrupt.
fn idle_loop(index: usize) -> ! {
    let mb = &MAILBOX[index];
    loop {
        irq::disable();
        let posted = mb.posted.load(Ordering::Acquire);
        if posted != mb.done.load(Ordering::Relaxed) {
            let w = mb.work.lock().take();
            irq::enable();
            if let Some(w) = w {
                w(index);
            }
            mb.done.store(posted, Ordering::Release);
            continue;
        }
        crate::rcu::idle(index);
        // H_CEDE re-enables EE atomically with going idle, so a posted IPI cannot be lost.
        CEDES[index].fetch_add(1, Ordering::Relaxed);
        hcall::cede();
    }
}

/// Runs `f(cpu)` on every online CPU, this one included, and waits for all of them.
pub fn on_each_cpu(f: &(dyn Fn(usize) + Sync)) {
    let _g = CALL_LOCK.lock();
    // SAFETY: we wait below until every CPU has finished with `f`, so extending the borrow
    // to 'static never lets it outlive the caller's frame.
    let w: Work = unsafe { core::mem::transmute::<&(dyn Fn(usize) + Sync), Work>(f) };
    let me = paca::cpu_id();
    let n = nr_online();
    for cpu in (0..n).filter(|&c| c != me) {
        let mb = &MAILBOX[cpu];
        *mb.work.lock() = Some(w);
        mb.posted.fetch_add(1, Ordering::AcqRel);
        xics::send_ipi(paca::get(cpu).server);
    }
    f(me);
    for cpu in (0..n).filter(|&c| c != me) {
        let mb = &MAILBOX[cpu];
        let want = mb.posted.load(Ordering::Acquire);
        let t0 = timer::now();
        while mb.done.load(Ordering::Acquire) != want {
            if timer::tb_to_us(timer::now() - t0) > 10_000_000 {
                dump_cpus();
                crate::fatal!("cpu {cpu} did not finish cross-CPU work within 10 s");
            }
            relax();
        }
    }
}

/// Busy-wait steps between two H_CONFERs in [`relax`].
const CONFER_EVERY: u32 = 32;
/// Per-CPU count of [`relax`] calls.
static RELAX: [AtomicU32; paca::MAX_CPUS] = [const { AtomicU32::new(0) }; paca::MAX_CPUS];

/// One step of a loop that waits for another CPU (or runs for long): a spin hint, and every
/// `CONFER_EVERY`th step an H_CONFER that ends this vCPU's turn.
///
/// Why: with `-icount` QEMU 7.2 runs every vCPU on one thread in turn, and gives each one a
/// budget of instructions up to the next timer deadline (accel/tcg/tcg-accel-ops-icount.c
/// `icount_prepare_for_run`, budget = `icount_get_limit()`; accel/tcg/tcg-accel-ops-rr.c
/// `rr_cpu_thread_fn`). A vCPU that neither halts nor yields uses all of it, so the vCPU
/// after it in the round finds the deadline reached and gets a budget of 0: it only takes
/// its pending interrupt and leaves. If the first one is spinning for the second, this
/// repeats at every deadline and the second never runs again (QEMU fixed this upstream after
/// 7.2, in 2023, by splitting the budget between the vCPUs: "accel/tcg/tcg-accel-ops-rr:
/// ensure fairness with icount"). Yielding here ends the spinner's turn long before the deadline. Without
/// icount (multi-threaded TCG) an H_CONFER is a cheap hcall that returns at once.
pub fn relax() {
    core::hint::spin_loop();
    if !paca::installed() {
        return;
    }
    let n = RELAX[paca::cpu_id()].fetch_add(1, Ordering::Relaxed);
    if n % CONFER_EVERY == CONFER_EVERY - 1 {
        hcall::confer();
    }
}

/// Every online CPU's mailbox and interrupt counters, printed before a cross-CPU wait gives
/// up: a CPU whose ticks stopped while the others' went on is not running at all.
pub fn dump_cpus() {
    for c in 0..nr_online() {
        let (p, mb) = (paca::get(c), &MAILBOX[c]);
        crate::println!(
            "smp: cpu {c}: posted {} done {} ticks {} ipis {} cedes {}",
            mb.posted.load(Ordering::Relaxed),
            mb.done.load(Ordering::Relaxed),
            p.ticks.load(Ordering::Relaxed),
            p.ipis.load(Ordering::Relaxed),
            CEDES[c].load(Ordering::Relaxed)
        );
    }
}

/// H_CEDEs per CPU (idle loop), for `dump_cpus`.
static CEDES: [AtomicU64; paca::MAX_CPUS] = [const { AtomicU64::new(0) }; paca::MAX_CPUS];

/// 0x900: count the tick and re-arm.
pub fn timer_interrupt() {
    let p = paca::this();
    p.ticks.fetch_add(1, Ordering::Relaxed);
    timer::arm();
    crate::rcu::tick(p.index);
}

/// 0x500: drain XICS; IPIs only count (the mailbox is read by the idle loop).
pub fn external_interrupt() {
    let p = paca::this();
    loop {
        let xirr = xics::accept();
        let src = xirr & 0x00ff_ffff;
        if src == 0 {
            break;
        }
        if src == xics::XICS_IPI {
            xics::clear_ipi(p.server);
            p.ipis.fetch_add(1, Ordering::Relaxed);
            super::mmu::tlb::handle_flush_ipi();
        } else {
            crate::fatal!(
                "cpu {}: unexpected external interrupt from XICS source {src:#x}",
                p.index
            );
        }
        xics::eoi(xirr);
    }
}
