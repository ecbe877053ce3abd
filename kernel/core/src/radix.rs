//! Radix page-table and process-table entry encodings (Power ISA v3.0B Book III 5.7.10,
//! "Radix Tree Translation"; bit values as in Linux arch/powerpc/include/asm/book3s/64/
//! radix.h and pgtable.h, checked against QEMU target/ppc/mmu-radix64.h). Values here are
//! native integers; `BeEntry` is what memory holds (the MMU reads entries big-endian).

bitflags::bitflags! {
    /// The single-bit fields of a radix entry (Power ISA v3.0B Book III 5.7.10, the figures
    /// of the Radix Tree Page Directory Entry and Page Table Entry). Bit numbers are the
    /// ISA's (0 = most significant); the values are native masks.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct PteBits: u64 {
        /// V, bit 0: the entry is valid (directory and leaf).
        const VALID = 1 << 63;
        /// L, bit 1: a leaf (PTE), at any level; clear in a directory entry.
        const LEAF = 1 << 62;
        /// R, bit 55: referenced. QEMU raises a storage interrupt instead of setting R or C,
        /// so leaves are made with both.
        const REFERENCED = 1 << 8;
        /// C, bit 56: changed.
        const CHANGED = 1 << 7;
        /// ATT bits 58:59 = 0b10, non-idempotent I/O (the field's only non-zero value
        /// used here: 0 is normal cacheable memory).
        const ATT_IO = 1 << 5;
        /// EAA bit 60: privileged-only access.
        const PRIVILEGED = 1 << 3;
        /// EAA bit 61: read.
        const READ = 1 << 2;
        /// EAA bit 62: read-write.
        const WRITE = 1 << 1;
        /// EAA bit 63: execute.
        const EXEC = 1 << 0;
    }
}

pub const VALID: u64 = PteBits::VALID.bits();
pub const LEAF: u64 = PteBits::LEAF.bits();
/// Real page number field of a leaf (bits 7:51).
pub const RPN_MASK: u64 = 0x01ff_ffff_ffff_f000;
/// Next-level base of a directory entry (bits 4:55).
pub const NLB_MASK: u64 = 0x0fff_ffff_ffff_ff00;
/// Next-level size (log2 entries) of a directory entry (bits 59:63).
pub const NLS_MASK: u64 = 0x1f;

/// A page-directory entry pointing at a table of 2^`nls` entries at `next_pa`.
pub const fn pde(next_pa: u64, nls: u32) -> u64 {
    VALID | (next_pa & NLB_MASK) | (nls as u64 & NLS_MASK)
}

/// A leaf for physical address `pa` with permission bits `perm` (R and C set).
pub const fn leaf(pa: u64, perm: PteBits) -> u64 {
    PteBits::VALID.union(PteBits::LEAF).union(PteBits::REFERENCED).union(PteBits::CHANGED).bits()
        | (pa & RPN_MASK)
        | perm.bits()
}

/// The single-bit fields set in `e` (for decoding and printing an entry).
pub const fn bits(e: u64) -> PteBits {
    PteBits::from_bits_truncate(e)
}

pub const fn is_valid(e: u64) -> bool {
    e & VALID != 0
}

pub const fn is_leaf(e: u64) -> bool {
    e & (VALID | LEAF) == VALID | LEAF
}

/// Physical address a leaf maps (its RPN) or a directory points at (its NLB).
pub const fn target(e: u64) -> u64 {
    if is_leaf(e) {
        e & RPN_MASK
    } else {
        e & NLB_MASK
    }
}

/// Process-table entry, first doubleword: radix tree size RTS = log2(EA space) - 31 split
/// into RTS1 (bits 1:2) and RTS2 (bits 56:58), root base RPDB and root size RPDS.
pub const fn prtb0(root_pa: u64, ea_bits: u32, root_index_bits: u32) -> u64 {
    let rts = (ea_bits - 31) as u64;
    ((rts >> 3) << 61)
        | (root_pa & NLB_MASK)
        | ((rts & 7) << 5)
        | (root_index_bits as u64 & NLS_MASK)
}

/// A table entry as stored: big-endian.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct BeEntry(u64);

impl BeEntry {
    pub const fn new(v: u64) -> Self {
        BeEntry(v.to_be())
    }
    pub const fn get(self) -> u64 {
        u64::from_be(self.0)
    }
    pub const fn raw(self) -> u64 {
        self.0
    }
    pub const fn from_raw(r: u64) -> Self {
        BeEntry(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pde_fields() {
        let e = pde(0x1234_5000, 9);
        assert!(is_valid(e) && !is_leaf(e));
        assert_eq!(target(e), 0x1234_5000);
        assert_eq!(e & NLS_MASK, 9);
    }

    #[test]
    fn leaf_fields() {
        let e = leaf(0x4000_0000, PteBits::READ | PteBits::WRITE);
        assert!(is_leaf(e));
        assert_eq!(target(e), 0x4000_0000);
        assert!(bits(e).contains(PteBits::REFERENCED | PteBits::CHANGED));
        assert!(!bits(e).contains(PteBits::PRIVILEGED));
        // The ISA's bit numbers: V is bit 0, EAA's execute bit is bit 63.
        let ibm = |bit: u32| 1u64 << (63 - bit);
        assert_eq!(PteBits::VALID.bits(), ibm(0));
        assert_eq!(PteBits::EXEC.bits(), ibm(63));
        assert_eq!(PteBits::REFERENCED.bits(), ibm(55));
    }

    #[test]
    fn prtb0_matches_linux_52_bit_rts() {
        // Linux radix__get_tree_size() for 52 bits: (0x5 << 5) | (0x2 << 61).
        let v = prtb0(0x10_0000, 52, 13);
        assert_eq!(v & !(NLB_MASK | NLS_MASK), (0x5 << 5) | (0x2 << 61));
        assert_eq!(v & NLS_MASK, 13);
        assert_eq!(v & NLB_MASK, 0x10_0000);
    }

    #[test]
    fn big_endian_storage() {
        let e = BeEntry::new(VALID | 1);
        assert_eq!(e.raw().to_ne_bytes()[0], 0x80);
        assert_eq!(e.get(), VALID | 1);
    }
}
