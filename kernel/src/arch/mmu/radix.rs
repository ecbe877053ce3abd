//! Radix: one process table for the partition, registered with H_REGISTER_PROC_TBL; the
//! kernel's tree (process-table entry 0) maps all RAM at quadrant 3 (0xc...) with 1 GiB
//! leaves; entry 1 is an empty tree that PIDR selects whenever no address space is active,
//! so a stray quadrant-0 access faults instead of reaching the kernel's mapping.
//! Formats: ptfrag_core::radix (Power ISA v3.0B Book III 5.7.10); hcall arguments: QEMU
//! hw/ppc/spapr_hcall.c h_register_process_table.

use crate::mm::frame;
use core::sync::atomic::{AtomicU64, Ordering};
use ptfrag_core::pgtable::{Level, RADIX_4K};
use ptfrag_core::radix::{self as r, BeEntry};

/// Process-table size: 2^(12 + PRTS) bytes, 16 bytes per PID. One 64 KiB frame.
const PRTS: u64 = 4;
pub const MAX_PID: u32 = (1 << (12 + PRTS)) / 16 - 1;
/// PID whose tree is empty (PIDR when no address space is active).
pub const NULL_PID: u32 = 1;

// H_REGISTER_PROC_TBL flags.
const PROC_TBL_MODIFY: u64 = 0x10;
const PROC_TBL_REGISTER: u64 = 0x08;
const PROC_TBL_RADIX: u64 = 0x04;
const PROC_TBL_GTSE: u64 = 0x01;
const H_REGISTER_PROC_TBL: u64 = 0x37c;

static PRTB: AtomicU64 = AtomicU64::new(0);
static KERNEL_PGD: AtomicU64 = AtomicU64::new(0);

fn table(pa: u64) -> *mut BeEntry {
    crate::arch::phys_to_virt(pa) as *mut BeEntry
}

fn alloc_table() -> u64 {
    match frame::alloc_zeroed() {
        Ok(pa) => pa,
        Err(e) => crate::fatal!("radix: no frame for a kernel page table: {e}"),
    }
}

/// Writes process-table entry `pid` (two big-endian doublewords).
pub fn set_prtb_entry(pid: u32, root_pa: u64) {
    assert!(pid <= MAX_PID, "PID {pid} beyond the process table");
    let dw0 = if root_pa == 0 { 0 } else { r::prtb0(root_pa, RADIX_4K.ea_bits(), 13) };
    let e = table(PRTB.load(Ordering::Acquire));
    // SAFETY: the process table is one frame of 4096 16-byte entries owned by this module;
    // pid is in range (checked above).
    unsafe {
        e.add(pid as usize * 2).write_volatile(BeEntry::new(dw0));
        e.add(pid as usize * 2 + 1).write_volatile(BeEntry::new(0));
    }
    crate::arch::regs::sync();
}

/// Reads back process-table entry `pid` (for the banner and tests).
pub fn process_table_entry(pid: u32) -> (u64, u64) {
    let e = table(PRTB.load(Ordering::Acquire));
    // SAFETY: as in set_prtb_entry.
    unsafe {
        (
            e.add(pid as usize * 2).read_volatile().get(),
            e.add(pid as usize * 2 + 1).read_volatile().get(),
        )
    }
}

pub fn init(mem_end: u64) {
    let prtb = alloc_table();
    PRTB.store(prtb, Ordering::Release);
    let pgd = alloc_table();
    let pud = alloc_table();
    KERNEL_PGD.store(pgd, Ordering::Release);
    // Quadrant 3 offset 0 → PGD[0] → PUD with one 1 GiB leaf per GiB of RAM.
    let gib = 1u64 << RADIX_4K.entry_shift(Level::Pud);
    let n = mem_end.div_ceil(gib);
    assert!(n as usize <= RADIX_4K.entries(Level::Pud), "more RAM than one PUD maps");
    // SAFETY: pgd and pud are fresh zeroed frames owned by the kernel tree.
    unsafe {
        table(pgd).write_volatile(BeEntry::new(r::pde(pud, RADIX_4K.index_bits[1])));
        for i in 0..n {
            let leaf = r::leaf(
                i * gib,
                r::PteBits::READ | r::PteBits::WRITE | r::PteBits::EXEC | r::PteBits::PRIVILEGED,
            );
            table(pud).add(i as usize).write_volatile(BeEntry::new(leaf));
        }
    }
    set_prtb_entry(0, pgd);
    set_prtb_entry(NULL_PID, alloc_table());
    let flags = PROC_TBL_MODIFY | PROC_TBL_REGISTER | PROC_TBL_RADIX | PROC_TBL_GTSE;
    let rc = crate::arch::hcall::hcall_noref(H_REGISTER_PROC_TBL, [flags, prtb, 0, PRTS, 0, 0]);
    if rc.status != crate::arch::hcall::H_SUCCESS {
        crate::fatal!("H_REGISTER_PROC_TBL(radix) failed: {}", rc.status);
    }
}

/// Per-CPU radix state before translation comes on: the empty PID, clean TLB.
pub fn this_cpu_init() {
    set_pid(NULL_PID);
    super::tlb::local_flush_all();
}

/// Selects the address space for quadrant 0 on this CPU (SPR 48, PIDR).
pub fn set_pid(pid: u32) {
    crate::arch::regs::mtpidr(pid as u64);
}

pub fn kernel_pgd() -> u64 {
    KERNEL_PGD.load(Ordering::Acquire)
}

pub fn process_table() -> u64 {
    PRTB.load(Ordering::Acquire)
}
