//! ptfrag: a POWER9 little-endian kernel for QEMU pseries that runs Linux's khugepaged
//! page-table retraction path. This file is the boot sequence; see README.md for the map.
#![no_std]
#![no_main]

extern crate alloc;

mod arch;
mod backtrace;
mod console;
mod debuginfo;
mod devtree;
mod exit;
mod ksyms;
mod ktest;
mod mm;
mod panic;
mod rcu;
mod sync;
mod tests;
mod trace;

use arch::{exceptions, of::Of, paca, smp, timer};
use ptfrag_core::cmdline::{self, Cmdline, Selftest};

const FDT_SIZE: usize = 256 * 1024;
const FDT_STRINGS: usize = 16 * 1024;

#[repr(C, align(8))]
struct FdtBuf([u8; FDT_SIZE]);

static mut FDT_BLOB: FdtBuf = FdtBuf([0; FDT_SIZE]);
static mut FDT_STRINGS_BUF: [u8; FDT_STRINGS] = [0; FDT_STRINGS];
static mut BOOTARGS: [u8; 1024] = [0; 1024];

/// Boot stack (its top is loaded by boot/entry.S).
pub const BOOT_STACK_SIZE_BYTES: usize = 128 * 1024;
#[repr(C, align(16))]
pub struct BootStack([u8; BOOT_STACK_SIZE_BYTES]);
#[unsafe(no_mangle)]
static mut BOOT_STACK: BootStack = BootStack([0; BOOT_STACK_SIZE_BYTES]);
/// Saved r1 across an Open Firmware call (boot/entry.S).
#[unsafe(no_mangle)]
static mut OF_SAVED_SP: u64 = 0;

core::arch::global_asm!(
    ".globl BOOT_STACK_SIZE",
    ".set BOOT_STACK_SIZE, {size}",
    size = const BOOT_STACK_SIZE_BYTES,
);

/// Settings from the command line that tests read.
pub struct Config {
    pub collapses: u32,
    pub bench: bool,
    pub mms: usize,
    /// `schedule=`: which deterministic schedules `retract_schedules` runs (name filter).
    pub schedule: Option<alloc::string::String>,
}

static CONFIG: spin::Once<Config> = spin::Once::new();

pub fn config() -> &'static Config {
    CONFIG.get().expect("config read before boot parsed the command line")
}

/// The boot CPU's Rust entry, from boot/entry.S with r3 = the client-interface entry.
#[unsafe(no_mangle)]
extern "C" fn boot_main(of_entry: u64) -> ! {
    let t_entry = timer::now();
    // SAFETY: r3 at entry is the firmware's client interface; nothing has touched its memory.
    let of = unsafe { Of::new(of_entry) };

    // The command line picks the MMU, which CAS must tell the platform before the device
    // tree is read (CAS rewrites it) and before any other CPU starts.
    // SAFETY: the boot CPU is alone; the buffer is written once here and then only read.
    let args_buf = unsafe { &mut *core::ptr::addr_of_mut!(BOOTARGS) };
    let n = of.getprop_path(b"/chosen\0", b"bootargs\0", args_buf).unwrap_or(0).min(args_buf.len());
    let bootargs = core::str::from_utf8(&args_buf[..n]).unwrap_or("");
    let bootargs = bootargs.split('\0').next().unwrap_or("");
    let cmd = match cmdline::parse(bootargs) {
        Ok(c) => c,
        Err(e) => early_fatal(&of, format_args!("bad kernel command line \"{bootargs}\": {e}")),
    };
    if let Err(e) = arch::cas::negotiate(&of, cmd.mmu) {
        early_fatal(&of, format_args!("CAS for mmu={:?}: {e}", cmd.mmu));
    }
    // SAFETY: the boot CPU is alone; the buffers are used only here and then read-only.
    let (blob, strings) = unsafe {
        (&mut *core::ptr::addr_of_mut!(FDT_BLOB.0), &mut *core::ptr::addr_of_mut!(FDT_STRINGS_BUF))
    };
    let fdt_len = match of.flatten(blob, strings, arch::regs::mfpir()) {
        Ok(n) => n,
        Err(e) => early_fatal(&of, format_args!("cannot flatten the device tree: {e}")),
    };
    let blob: &'static [u8] = &blob[..fdt_len];
    let fdt = match flat_device_tree::Fdt::new(blob) {
        Ok(f) => f,
        Err(e) => early_fatal(&of, format_args!("flattened device tree does not parse: {e:?}")),
    };
    let fdt: &'static flat_device_tree::Fdt<'static> = alloc_static_fdt(fdt);
    let dt = match devtree::DevTree::parse(fdt) {
        Ok(dt) => dt,
        Err(e) => early_fatal(&of, format_args!("{e}")),
    };
    arch::rtas::set_tokens(dt.rtas);
    console::init(dt.vty_termno);
    println!("ptfrag: POWER9 pseries kernel, little-endian, {} CPU(s)", dt.ncpus);
    println!(
        "boot: device tree {} bytes from the client interface, console {} (termno {:#x})",
        fdt_len, dt.stdout_path, dt.vty_termno
    );

    // Leave the firmware behind: our vectors, our PACA, little-endian interrupts.
    let toc: u64;
    // SAFETY: copies r2.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) toc, options(nomem, nostack)) };
    let boot_server = dt.cpus().iter().position(|c| c.server == arch::regs::mfpir()).unwrap_or(0);
    // SAFETY: first and only initialisation of the boot CPU's PACA.
    unsafe { paca::init(0, dt.cpus()[boot_server].server, toc) };
    paca::install(0);
    exceptions::install_vectors();

    println!(
        "boot: command line \"{}\" -> mmu={:?} hz={} pte_free_defer={} rcu_gp={} rcu_check={}",
        bootargs,
        cmd.mmu,
        cmd.hz,
        cmd.pte_free_defer.name(),
        if cmd.rcu_short_gp { "short (BROKEN on purpose)" } else { "normal" },
        if cmd.rcu_check { "on" } else { "off" }
    );

    let mi = mm::frame::init(dt.mem());
    mm::heap::init();
    let pte_geo = arch::mmu::book3s64::pte_frag_for(cmd.mmu);
    mm::pte_free::init(cmd.pte_free_defer, cmd.rcu_check, pte_geo);
    trace::init(cmd.trace, dt.ncpus);
    if cmd.trace {
        println!(
            "boot: tracing the retract path, {} events per CPU, dumped after the tests",
            trace::CAPACITY
        );
    }
    CONFIG.call_once(|| Config {
        collapses: cmd.collapses,
        bench: cmd.bench,
        mms: cmd.mms as usize,
        schedule: cmd.schedule.map(alloc::string::String::from),
    });
    rcu::set_broken_short_gp(cmd.rcu_short_gp);
    println!(
        "mm: {} frames of 64K ({} MiB), {} free after the kernel and descriptors, {} after the {} MiB heap",
        mi.total,
        (mi.total * 64) >> 10,
        mi.free,
        mm::frame::free_count(),
        mm::heap::HEAP_SIZE >> 20
    );
    if mi.clipped != 0 {
        println!(
            "mm: {} MiB of RAM above {} GiB left unused",
            mi.clipped >> 20,
            mm::frame::MAX_PHYS >> 30
        );
    }

    let mem_end = dt.mem().iter().map(|r| r.start + r.size).max().unwrap_or(0);
    let mmu_info = arch::mmu::MmuInfo { mem_end, pft_shift: dt.pft_shift, slb_size: dt.slb_size };
    arch::mmu::init(cmd.mmu, &mmu_info);
    mm_banner(cmd.mmu);
    debuginfo::fill();

    timer::init(dt.tb_freq, cmd.hz);
    smp::cpu_setup(0);
    paca::get(0).online.store(true, core::sync::atomic::Ordering::Release);
    arch::irq::enable();

    let mut idx = 1;
    for (i, c) in dt.cpus().iter().enumerate() {
        if i == boot_server {
            continue;
        }
        if let Err(e) = smp::start_cpu(idx, c.server, toc) {
            fatal!("cpu {} (server {}): {e}", idx, c.server);
        }
        idx += 1;
    }
    if dt.cpus_ignored != 0 {
        println!(
            "smp: {} CPUs beyond the {} supported were not started",
            dt.cpus_ignored,
            paca::MAX_CPUS
        );
    }
    println!(
        "smp: {} CPUs online, timebase {} Hz, tick {} Hz; boot took {} us",
        smp::nr_online(),
        dt.tb_freq,
        cmd.hz,
        timer::tb_to_us(timer::now() - t_entry)
    );

    run_tests(&cmd)
}

/// What the MMU reports once translation is on.
fn mm_banner(mode: cmdline::MmuMode) {
    use arch::mmu::radix;
    let on = arch::mmu::this_cpu_is_on();
    match mode {
        cmdline::MmuMode::Radix | cmdline::MmuMode::Radix64 => {
            let (dw0, dw1) = radix::process_table_entry(0);
            let g = arch::mmu::pte::geometry();
            println!(
                "mmu: {}, MSR[IR|DR]={} MSR={:#x} PIDR={}; process table at {:#x} registered \
                 (H_REGISTER_PROC_TBL sets LPCR[UPRT|HR|GTSE], which a guest cannot read); \
                 PRTB[0]={:#018x}_{:016x} (kernel PGD {:#x}, 52-bit, 13/9/9/9); address spaces \
                 {}/{}/{}/{} with {}K pages, {} PTE tables per 64K page",
                mode.name(),
                on as u8,
                arch::regs::mfmsr(),
                arch::regs::mfpidr(),
                radix::process_table(),
                dw0,
                dw1,
                radix::kernel_pgd(),
                g.index_bits[0],
                g.index_bits[1],
                g.index_bits[2],
                g.index_bits[3],
                g.page_size() >> 10,
                mm::mm_types::pte_frag().frags_per_page
            );
        }
        cmdline::MmuMode::Hash => {
            use arch::mmu::hash;
            let k = hash::kernel_segment();
            println!(
                "mmu: hash, MSR[IR|DR]={} MSR={:#x}; HPT 2^{} bytes ({} PTEGs) from ibm,pft-size, \
                 owned by the hypervisor; SLB {} entries (ibm,slb-size), slot 0 = kernel 1T \
                 segment RS={:#x} RB={:#x}; 64K pages, geometry 8/10/10/8",
                on as u8,
                arch::regs::mfmsr(),
                hash::hpt_shift(),
                1u64 << (hash::hpt_shift() - 7),
                hash::slb_size(),
                k.rs,
                k.rb
            );
        }
    }
}

fn run_tests(cmd: &Cmdline<'_>) -> ! {
    if cmd.selftest == Selftest::Oops {
        println!("selftest: taking an unexpected storage interrupt on purpose");
        exceptions::unexpected_fault(0x0000_0bad_0000_0000);
        fatal!("selftest=oops: the unexpected access did not fault");
    }
    let (_, failed) = ktest::run_all(cmd.test, cmd.selftest == Selftest::Fail, cmd.bench);
    trace::dump();
    if failed == 0 {
        exit::success()
    } else {
        exit::failure()
    }
}

/// A fatal error before the device tree is usable: find the console and the RTAS tokens
/// through the firmware, which is still there.
fn early_fatal(of: &Of, msg: core::fmt::Arguments<'_>) -> ! {
    if let Some(t) = of.stdout_termno() {
        console::init(t);
    }
    arch::rtas::set_tokens(arch::rtas::Tokens {
        power_off: of.rtas_token(b"power-off\0"),
        os_term: of.rtas_token(b"ibm,os-term\0"),
        ..Default::default()
    });
    fatal!("{msg}")
}

/// Keeps the parsed tree for the kernel's lifetime (it borrows the static blob).
fn alloc_static_fdt(
    fdt: flat_device_tree::Fdt<'static>,
) -> &'static flat_device_tree::Fdt<'static> {
    static CELL: spin::Once<flat_device_tree::Fdt<'static>> = spin::Once::new();
    CELL.call_once(|| fdt)
}
