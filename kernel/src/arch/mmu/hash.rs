//! Hash MMU under pseries: the hashed page table belongs to the hypervisor and is changed
//! only through hcalls (H_ENTER/H_REMOVE/H_READ/H_PROTECT/H_BULK_REMOVE); the kernel owns
//! its SLB. 64 KiB base pages everywhere: the kernel's linear map is one bolted 1 TiB segment
//! (SLB slot 0) with a bolted 64K HPTE per RAM page; address spaces use 256 MiB segments
//! whose VSID is derived from the mm's context id and loaded on a segment miss.
//!
//! Formats and hcall semantics: docs/mmu-facts.md section E (QEMU target/ppc/mmu-hash64.[ch],
//! hw/ppc/spapr_softmmu.c; Power ISA v2.07/v3.0B Book III 5.7.7, 5.9.3). HPTEs passed to the
//! hcalls use the pre-ISA-3.0 layout (segment size B in the first doubleword).

use crate::arch::hcall::{hcall_noref, H_SUCCESS};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

const H_REMOVE: u64 = 0x04;
const H_ENTER: u64 = 0x08;
const H_READ: u64 = 0x0c;
const H_PROTECT: u64 = 0x18;
/// 0x124 (Linux hvcall.h). Not 0x24: that is H_SET_SPRG0, which would clobber SPRG0.
const H_BULK_REMOVE: u64 = 0x124;
const H_PTEG_FULL: i64 = -6;
const H_AVPN: u64 = 0x8000_0000;
const H_ANDCOND: u64 = 0x4000_0000;
/// H_ENTER into exactly the given slot (Linux hvcall.h H_EXACT).
const H_EXACT: u64 = 0x0000_0080_0000_0000;

bitflags::bitflags! {
    /// Single-bit fields of an HPTE's first doubleword as H_ENTER takes it (Power ISA v2.07
    /// Book III 5.7.7.1 "Page Table Entry"; the pre-3.0 layout with B in bits 0:1, as QEMU's
    /// target/ppc/mmu-hash64.h reads it). Bit numbers are the ISA's (0 = most significant).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HpteV: u64 {
        /// B = 0b01, bits 0:1: a 1 TiB segment (0b00 is 256 MiB).
        const B_1T = 1 << 62;
        /// SW bit 59 (software, ignored by the MMU): Linux's HPTE_V_BOLTED, an entry
        /// H_REMOVE with H_ANDCOND never evicts.
        const BOLTED = 1 << 4;
        /// L, bit 61: a large page (here 64K; the size is in the second doubleword's LP).
        const LARGE = 1 << 2;
        /// H, bit 62: the entry is in the secondary group.
        const SECONDARY = 1 << 1;
        /// V, bit 63: valid.
        const VALID = 1 << 0;
    }
}

bitflags::bitflags! {
    /// Single-bit fields of an HPTE's second doubleword (Power ISA v2.07 Book III 5.7.7.1).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HpteR: u64 {
        /// LP's low bit (bit 51; Linux HPTE_R_LP_SHIFT = 12) with L set: actual page size 64K
        /// in a 64K-base segment (QEMU target/ppc/mmu-hash64.c `hpte_page_shift`).
        const LP_64K = 1 << 12;
        /// R, bit 55: referenced (the hypervisor's business; never set here).
        const REFERENCED = 1 << 8;
        /// C, bit 56: changed.
        const CHANGED = 1 << 7;
        /// M, bit 60 of WIMG: memory coherence required.
        const M = 1 << 4;
    }
}

/// AVPN field of the first doubleword (bits 2:56).
const HPTE_V_AVPN: u64 = 0x3fff_ffff_ffff_ff80;
/// RPN field of the second doubleword.
const HPTE_R_RPN: u64 = 0x0fff_ffff_ffff_0000;
/// Protection: with key 0 (MSR[PR]=0 and SLB Ks=0), PP 0/2 = read-write, 3 = read-only.
pub const PP_RW: u64 = 0x2;
pub const PP_RO: u64 = 0x3;
const PP_KERNEL: u64 = 0x0;

// SLB (slbmte RS / RB).
const SLB_VSID_B_1T: u64 = 0x4000_0000_0000_0000;
const SLB_VSID_KP: u64 = 0x400;
const SLB_LLP_64K: u64 = 0x110;
const SLB_VSID_MASK: u64 = 0x3fff_ffff_ffff_f000;
const SLB_ESID_V: u64 = 0x0800_0000;
const SEG_256M: u32 = 28;
const SEG_1T: u32 = 40;
pub const PAGE_SHIFT: u32 = 16;

/// Kernel 1 TiB segment VSID: 38 bits at most (RS bits 2:39 for 1T segments); no 256M
/// address-space VSID (context << 24 | ESID) is used in a 1T segment.
const KERNEL_VSID_1T: u64 = 0x3f_ffff_0000;

static HTAB_MASK: AtomicU64 = AtomicU64::new(0);
static SLB_SIZE: AtomicU64 = AtomicU64::new(32);
static HPT_SHIFT: AtomicU64 = AtomicU64::new(0);

/// A slot in the HPT: PTEG index * 8 + entry, and whether it was the secondary group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub ptex: u64,
    pub secondary: bool,
}

impl Slot {
    /// The per-PTE "slot info" word kept in the PTE fragment's second half (0 = none).
    pub fn encode(self) -> u64 {
        (1 << 63) | ((self.secondary as u64) << 62) | self.ptex
    }
    pub fn decode(w: u64) -> Option<Slot> {
        (w >> 63 == 1).then_some(Slot { ptex: w & ((1 << 62) - 1), secondary: (w >> 62) & 1 == 1 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashError {
    /// Both PTEGs full and no non-bolted entry of the primary group could be evicted.
    PtegFull {
        hash: u64,
    },
    Hcall(&'static str, i64),
}

impl core::fmt::Display for HashError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HashError::PtegFull { hash } => {
                write!(f, "both PTEGs of hash {hash:#x} are full and none could be evicted")
            }
            HashError::Hcall(what, rc) => write!(f, "{what}: rc {rc}"),
        }
    }
}

/// An SLB entry's RS (VSID word) and RB (ESID word, without the slot index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub rs: u64,
    pub rb: u64,
}

pub fn kernel_segment() -> Segment {
    Segment {
        rs: SLB_VSID_B_1T | (KERNEL_VSID_1T << 24) | SLB_VSID_KP | SLB_LLP_64K,
        rb: 0xc000_0000_0000_0000 | SLB_ESID_V,
    }
}

/// VSIDs are scrambled like Linux's (`vsid_scramble`: proto-VSID × a prime, modulo
/// 2^bits - 1): without it the context bits lie above the hash mask and every address space
/// hashes its pages into the same PTEGs, which fill up. The prime does not divide the
/// modulus, so the map is a bijection and VSIDs stay unique.
const VSID_BITS: u32 = 36;
const VSID_MODULUS: u64 = (1 << VSID_BITS) - 1;
const VSID_MULTIPLIER: u64 = 12_538_073; // a 24-bit prime (Linux VSID_MULTIPLIER_256M)

fn vsid_scramble(proto: u64) -> u64 {
    ((proto as u128 * VSID_MULTIPLIER as u128) % VSID_MODULUS as u128) as u64
}

/// The 256 MiB segment of address space `ctx` containing `ea` (Ks=0, Kp=1, 64K base).
pub fn user_segment(ctx: u32, ea: u64) -> Segment {
    let esid = ea >> SEG_256M;
    let vsid = vsid_scramble(((ctx as u64) << 24) | (esid & 0xff_ffff));
    Segment { rs: (vsid << 12) | SLB_VSID_KP | SLB_LLP_64K, rb: (esid << SEG_256M) | SLB_ESID_V }
}

fn seg_shift(seg: Segment) -> u32 {
    if seg.rs & SLB_VSID_B_1T != 0 {
        SEG_1T
    } else {
        SEG_256M
    }
}

/// Primary hash of the 64K page holding `ea` in `seg`.
pub fn hash(seg: Segment, ea: u64) -> u64 {
    let shift = seg_shift(seg);
    let off = ea & ((1 << shift) - 1);
    if shift == SEG_1T {
        let vsid = (seg.rs & SLB_VSID_MASK) >> 24;
        vsid ^ (vsid << 25) ^ (off >> PAGE_SHIFT)
    } else {
        let vsid = (seg.rs & SLB_VSID_MASK) >> 12;
        vsid ^ (off >> PAGE_SHIFT)
    }
}

/// First doubleword of the HPTE translating `ea` in `seg` (without H).
pub fn hpte_v(seg: Segment, ea: u64) -> u64 {
    let shift = seg_shift(seg);
    let epn = ea & ((1 << shift) - 1) & !((1 << PAGE_SHIFT) - 1);
    (seg.rs & (SLB_VSID_MASK | HpteV::B_1T.bits()))
        | ((epn >> 16) & HPTE_V_AVPN)
        | (HpteV::LARGE | HpteV::VALID).bits()
}

fn hpte_r(pa: u64, pp: u64) -> u64 {
    (pa & HPTE_R_RPN) | (HpteR::LP_64K | HpteR::M).bits() | pp
}

fn pteg(hash: u64, secondary: bool) -> u64 {
    let mask = HTAB_MASK.load(Ordering::Relaxed);
    (if secondary { !hash } else { hash }) & mask
}

/// Inserts a 64K translation `ea` → `pa` (primary group, then secondary).
pub fn insert(seg: Segment, ea: u64, pa: u64, pp: u64, bolted: bool) -> Result<Slot, HashError> {
    let h = hash(seg, ea);
    for secondary in [false, true] {
        let mut v = hpte_v(seg, ea);
        if secondary {
            v |= HpteV::SECONDARY.bits();
        }
        if bolted {
            v |= HpteV::BOLTED.bits();
        }
        let ptex = pteg(h, secondary) * 8;
        let r = hcall_noref(H_ENTER, [0, ptex, v, hpte_r(pa, pp)]);
        match r.status {
            H_SUCCESS => return Ok(Slot { ptex: r.r[0], secondary }),
            H_PTEG_FULL => continue,
            e => return Err(HashError::Hcall("H_ENTER", e)),
        }
    }
    // Both groups full: evict a non-bolted entry of the primary group (Linux does the same
    // in hpte_remove). Its owner's recorded slot goes stale; `hash_page` and the unmap path
    // check an entry still translates their address before trusting or removing it.
    let base = pteg(h, false) * 8;
    let start = EVICT_ROTOR.fetch_add(1, Ordering::Relaxed);
    for k in 0..8 {
        let ptex = base + (start + k) % 8;
        let r = hcall_noref(H_REMOVE, [H_ANDCOND, ptex, HpteV::BOLTED.bits()]);
        if r.status != H_SUCCESS {
            continue;
        }
        EVICTIONS.fetch_add(1, Ordering::Relaxed);
        let mut v = hpte_v(seg, ea);
        if bolted {
            v |= HpteV::BOLTED.bits();
        }
        let r = hcall_noref(H_ENTER, [H_EXACT, ptex, v, hpte_r(pa, pp)]);
        if r.status == H_SUCCESS {
            return Ok(Slot { ptex: r.r[0], secondary: false });
        }
    }
    Err(HashError::PtegFull { hash: h })
}

/// HPTEs evicted to make room (figure for the hash runs).
pub static EVICTIONS: AtomicU64 = AtomicU64::new(0);
static EVICT_ROTOR: AtomicU64 = AtomicU64::new(0);

/// The AVPN-compare word H_REMOVE/H_PROTECT/H_BULK_REMOVE expect for `ea` in `seg`.
fn avpn(seg: Segment, ea: u64) -> u64 {
    hpte_v(seg, ea) & !0x7f
}

/// Removes the HPTE at `slot` if it still translates `ea` in `seg`; returns its old words.
pub fn remove(seg: Segment, ea: u64, slot: Slot) -> Result<(u64, u64), HashError> {
    let r = hcall_noref(H_REMOVE, [H_AVPN, slot.ptex, avpn(seg, ea)]);
    match r.status {
        H_SUCCESS => Ok((r.r[0], r.r[1])),
        e => Err(HashError::Hcall("H_REMOVE", e)),
    }
}

/// Removes up to four HPTEs with one H_BULK_REMOVE; returns how many were found.
pub fn bulk_remove(entries: &[(Segment, u64, Slot)]) -> Result<usize, HashError> {
    assert!(entries.len() <= 4);
    let mut args = [0u64; 8];
    for (i, (seg, ea, slot)) in entries.iter().enumerate() {
        // Control word: request (01 in bits 63:62), AVPN compare (0b10 in bits 57:56), ptex.
        args[2 * i] = (1 << 62) | (2 << 56) | slot.ptex;
        args[2 * i + 1] = avpn(*seg, *ea);
    }
    if entries.len() < 4 {
        args[2 * entries.len()] = 3 << 62; // end of list
    }
    let r = hcall_noref(H_BULK_REMOVE, args);
    if r.status != H_SUCCESS {
        return Err(HashError::Hcall("H_BULK_REMOVE", r.status));
    }
    // Response code in bits 61:60 of each control word: 0 = removed, 1 = not found.
    Ok((0..entries.len()).filter(|&i| (r.r[2 * i] >> 60) & 3 == 0).count())
}

/// Changes the protection of the HPTE at `slot` (must translate `ea`) to `pp`.
pub fn protect(seg: Segment, ea: u64, slot: Slot, pp: u64) -> Result<(), HashError> {
    let r = hcall_noref(H_PROTECT, [H_AVPN | pp, slot.ptex, avpn(seg, ea)]);
    match r.status {
        H_SUCCESS => Ok(()),
        e => Err(HashError::Hcall("H_PROTECT", e)),
    }
}

/// Reads the HPTE at `ptex` (first and second doubleword).
pub fn read(ptex: u64) -> (u64, u64) {
    let r = hcall_noref(H_READ, [0, ptex]);
    if r.status != H_SUCCESS {
        return (0, 0);
    }
    (r.r[0], r.r[1])
}

/// Whether HPTE words `v` translate `ea` in `seg` (valid, same AVPN, B).
pub fn translates(v: u64, seg: Segment, ea: u64) -> bool {
    HpteV::from_bits_truncate(v).contains(HpteV::VALID)
        && (v ^ hpte_v(seg, ea)) & 0xffff_ffff_ffff_ff80 == 0
}

/// Physical address an HPTE's second doubleword maps.
pub fn hpte_pa(r: u64) -> u64 {
    r & HPTE_R_RPN
}

/// Boot: records the HPT geometry and bolts the kernel's linear map.
pub fn init(mem_end: u64, pft_shift: u32, slb_size: u32) {
    HPT_SHIFT.store(pft_shift as u64, Ordering::Relaxed);
    HTAB_MASK.store((1u64 << (pft_shift - 7)) - 1, Ordering::Relaxed);
    SLB_SIZE.store(slb_size as u64, Ordering::Relaxed);
    let seg = kernel_segment();
    let mut pa = 0;
    while pa < mem_end {
        if let Err(e) = insert(seg, 0xc000_0000_0000_0000 | pa, pa, PP_KERNEL, true) {
            crate::fatal!("hash: bolting the linear map at {pa:#x}: {e:?}");
        }
        pa += 1 << PAGE_SHIFT;
    }
}

pub fn hpt_shift() -> u64 {
    HPT_SHIFT.load(Ordering::Relaxed)
}

pub fn slb_size() -> u64 {
    SLB_SIZE.load(Ordering::Relaxed)
}

/// Drops every SLB entry but slot 0 (the kernel's), as `slbia` IH=0 does, then reloads slot
/// 0 with the kernel segment.
pub fn slb_reset_this_cpu() {
    let k = kernel_segment();
    // SAFETY: slot 0 maps the kernel exactly as before (same VSID and ESID), so the code and
    // data in use stay translated; the other entries are address-space segments that the
    // segment-miss handler reloads on demand.
    unsafe {
        asm!("slbia", "slbmte {rs}, {rb}", "isync", rs = in(reg) k.rs, rb = in(reg) k.rb, options(nostack))
    };
}

/// Drops the address-space segments from this CPU's SLB (on an mm switch).
pub fn slb_flush_user() {
    // SAFETY: slbia (IH=0) keeps entry 0, the kernel's segment; isync discards translations
    // made with the old entries.
    unsafe { asm!("slbia", "isync", options(nostack)) };
}

/// Loads `seg` into a round-robin SLB slot (1..SLB size) of this CPU.
pub fn slb_insert(seg: Segment, next: &AtomicU64) {
    let n = slb_size().max(2);
    let slot = 1 + next.fetch_add(1, Ordering::Relaxed) % (n - 1);
    // SAFETY: slots 1.. hold only address-space segments; replacing one costs at most a
    // later segment miss. QEMU does not flush its TLB on slbmte, so the local flush below
    // drops translations made through the entry this one replaces.
    unsafe {
        asm!("slbmte {rs}, {rb}", "isync", rs = in(reg) seg.rs, rb = in(reg) seg.rb | slot, options(nostack))
    };
    super::tlb::local_flush_all();
}
