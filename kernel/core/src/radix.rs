//! Radix page-table and process-table entry encodings (Power ISA v3.0B Book III 5.7.10,
//! "Radix Tree Translation"; bit values as in Linux arch/powerpc/include/asm/book3s/64/
//! radix.h and pgtable.h, checked against QEMU target/ppc/mmu-radix64.h). Values here are
//! native integers; `BeEntry` is what memory holds (the MMU reads entries big-endian).

/// Valid (bit 0).
pub const VALID: u64 = 1 << 63;
/// Leaf (bit 1): a PTE, at any level.
pub const LEAF: u64 = 1 << 62;
/// Real page number field of a leaf (bits 7:51).
pub const RPN_MASK: u64 = 0x01ff_ffff_ffff_f000;
/// Next-level base of a directory entry (bits 4:55).
pub const NLB_MASK: u64 = 0x0fff_ffff_ffff_ff00;
/// Next-level size (log2 entries) of a directory entry (bits 59:63).
pub const NLS_MASK: u64 = 0x1f;
/// Reference (R) and change (C) bits; QEMU faults rather than setting them, so leaves are
/// created with both.
pub const REFERENCED: u64 = 0x100;
pub const CHANGED: u64 = 0x080;
/// Encoded access authority (EAA): privileged-only, read, write, execute.
pub const PRIVILEGED: u64 = 0x8;
pub const READ: u64 = 0x4;
pub const WRITE: u64 = 0x2;
pub const EXEC: u64 = 0x1;
/// Attribute (ATT, bits 58:59): 0 = normal cacheable memory; 0b10 = non-idempotent I/O.
pub const ATT_IO: u64 = 0x20;

/// A page-directory entry pointing at a table of 2^`nls` entries at `next_pa`.
pub const fn pde(next_pa: u64, nls: u32) -> u64 {
    VALID | (next_pa & NLB_MASK) | (nls as u64 & NLS_MASK)
}

/// A leaf for physical address `pa` with permission bits `perm` (R and C set).
pub const fn leaf(pa: u64, perm: u64) -> u64 {
    VALID | LEAF | (pa & RPN_MASK) | REFERENCED | CHANGED | perm
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
        let e = leaf(0x4000_0000, READ | WRITE);
        assert!(is_leaf(e));
        assert_eq!(target(e), 0x4000_0000);
        assert_eq!(e & (REFERENCED | CHANGED), REFERENCED | CHANGED);
        assert_eq!(e & PRIVILEGED, 0);
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
