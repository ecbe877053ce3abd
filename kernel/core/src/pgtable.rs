//! Page-table geometry per MMU mode, and the index arithmetic of a four-level walk
//! (PGD → PUD → PMD → PTE), as Linux book3s64 lays it out. Invariant: the index bits of the
//! four levels plus the page shift cover exactly the effective-address bits the mode
//! translates, so every address maps to one slot per level.

/// Levels of a walk, root first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Pgd = 0,
    Pud = 1,
    Pmd = 2,
    Pte = 3,
}

pub const LEVELS: [Level; 4] = [Level::Pgd, Level::Pud, Level::Pmd, Level::Pte];

/// Bytes per table entry at every level.
pub const ENTRY_BYTES: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Index bits of PGD, PUD, PMD and PTE tables.
    pub index_bits: [u32; 4],
    /// log2 of the base (leaf) page size.
    pub page_shift: u32,
    /// Extra bytes after each PTE table (hash keeps HPTE slot information there).
    pub pte_extra: usize,
}

/// Radix with 4K pages: 13/9/9/9 + 12 = 52 bits (Linux radix-4K; QEMU's walker accepts NLS
/// 13 at the root and 9 below, target/ppc/mmu-radix64.c).
pub const RADIX_4K: Geometry = Geometry { index_bits: [13, 9, 9, 9], page_shift: 12, pte_extra: 0 };

/// Radix with 64K pages, Linux's distribution layout (radix-64K: `RADIX_PTE_INDEX_SIZE` 5,
/// PMD 9, PUD 9, PGD 13; arch/powerpc/include/asm/book3s/64/radix-64k.h): 13/9/9/5 + 16 = 52
/// bits. A PTE table is 32 entries, 256 bytes (`RADIX_PTE_FRAG_NR` = 256 of them share a
/// 64K page); a PMD leaf maps 2M, one PTE table's worth. QEMU's walker accepts NLS 5 (its
/// minimum) and takes the page size from the bits left below the last level
/// (target/ppc/mmu-radix64.c, `ppc_radix64_walk_tree`).
pub const RADIX_64K: Geometry =
    Geometry { index_bits: [13, 9, 9, 5], page_shift: 16, pte_extra: 0 };

/// Hash with 64K pages: 8/10/10/8 + 16 = 52 bits (Linux hash-64K); each PTE table is followed
/// by as many bytes again for the HPTE slot of each entry (Linux keeps it in the second half
/// of the PTE fragment).
pub const HASH_64K: Geometry =
    Geometry { index_bits: [8, 10, 10, 8], page_shift: 16, pte_extra: (1 << 8) * ENTRY_BYTES };

impl Geometry {
    /// Address bits translated (the sum of all index bits and the page shift).
    pub const fn ea_bits(&self) -> u32 {
        self.index_bits[0]
            + self.index_bits[1]
            + self.index_bits[2]
            + self.index_bits[3]
            + self.page_shift
    }

    /// log2 of the bytes one entry of `level` maps.
    pub const fn entry_shift(&self, level: Level) -> u32 {
        let mut s = self.page_shift;
        let mut l = 3;
        while l > level as usize {
            s += self.index_bits[l];
            l -= 1;
        }
        s
    }

    /// Entries in a table of `level`.
    pub const fn entries(&self, level: Level) -> usize {
        1 << self.index_bits[level as usize]
    }

    /// Bytes of a table of `level` (the PTE level includes `pte_extra`).
    pub const fn table_bytes(&self, level: Level) -> usize {
        let b = self.entries(level) * ENTRY_BYTES;
        match level {
            Level::Pte => b + self.pte_extra,
            _ => b,
        }
    }

    /// Index into the `level` table for effective address `ea` (top bits beyond `ea_bits`,
    /// such as the radix quadrant, are ignored).
    pub const fn index(&self, level: Level, ea: u64) -> usize {
        let shift = self.entry_shift(level);
        ((ea >> shift) & ((1u64 << self.index_bits[level as usize]) - 1)) as usize
    }

    /// Bytes mapped by one PMD entry (the huge-PMD leaf size).
    pub const fn pmd_size(&self) -> u64 {
        1 << self.entry_shift(Level::Pmd)
    }

    /// Mask of the address bits inside one entry of `level` (the offset a leaf there adds).
    pub const fn entry_shift_mask(&self, level: Level) -> u64 {
        (1 << self.entry_shift(level)) - 1
    }

    pub const fn page_size(&self) -> u64 {
        1 << self.page_shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mode_covers_52_bits() {
        assert_eq!(RADIX_4K.ea_bits(), 52);
        assert_eq!(RADIX_64K.ea_bits(), 52);
        assert_eq!(HASH_64K.ea_bits(), 52);
    }

    #[test]
    fn radix_shifts_and_sizes() {
        assert_eq!(RADIX_4K.entry_shift(Level::Pte), 12);
        assert_eq!(RADIX_4K.entry_shift(Level::Pmd), 21);
        assert_eq!(RADIX_4K.entry_shift(Level::Pud), 30);
        assert_eq!(RADIX_4K.entry_shift(Level::Pgd), 39);
        assert_eq!(RADIX_4K.pmd_size(), 2 << 20);
        assert_eq!(RADIX_4K.table_bytes(Level::Pgd), 64 * 1024);
        assert_eq!(RADIX_4K.table_bytes(Level::Pte), 4096);
        assert_eq!(RADIX_4K.table_bytes(Level::Pmd), 4096);
    }

    #[test]
    fn radix64_shifts_and_sizes() {
        assert_eq!(RADIX_64K.entry_shift(Level::Pte), 16);
        assert_eq!(RADIX_64K.entry_shift(Level::Pmd), 21);
        assert_eq!(RADIX_64K.entry_shift(Level::Pud), 30);
        assert_eq!(RADIX_64K.entry_shift(Level::Pgd), 39);
        assert_eq!(RADIX_64K.pmd_size(), 2 << 20);
        assert_eq!(RADIX_64K.table_bytes(Level::Pte), 256);
        assert_eq!(RADIX_64K.table_bytes(Level::Pmd), 4096);
        assert_eq!(RADIX_64K.table_bytes(Level::Pgd), 64 * 1024);
        // The PTE table's entries, each one 64K page, cover the 2M of a PMD entry.
        assert_eq!(RADIX_64K.entries(Level::Pte) as u64 * RADIX_64K.page_size(), 2 << 20);
    }

    #[test]
    fn hash_shifts_and_sizes() {
        assert_eq!(HASH_64K.entry_shift(Level::Pmd), 24);
        assert_eq!(HASH_64K.pmd_size(), 16 << 20);
        assert_eq!(HASH_64K.table_bytes(Level::Pte), 4096);
        assert_eq!(HASH_64K.table_bytes(Level::Pmd), 8192);
        assert_eq!(HASH_64K.table_bytes(Level::Pgd), 2048);
    }

    #[test]
    fn indices_pick_the_right_bits() {
        let ea = 0xc000_0000_0000_0000u64 | (3 << 39) | (5 << 30) | (7 << 21) | (9 << 12) | 0x123;
        assert_eq!(RADIX_4K.index(Level::Pgd, ea), 3);
        assert_eq!(RADIX_4K.index(Level::Pud, ea), 5);
        assert_eq!(RADIX_4K.index(Level::Pmd, ea), 7);
        assert_eq!(RADIX_4K.index(Level::Pte, ea), 9);
        let ea = (200u64 << 44) | (1000 << 34) | (3 << 24) | (255 << 16);
        assert_eq!(HASH_64K.index(Level::Pgd, ea), 200);
        assert_eq!(HASH_64K.index(Level::Pud, ea), 1000);
        assert_eq!(HASH_64K.index(Level::Pmd, ea), 3);
        assert_eq!(HASH_64K.index(Level::Pte, ea), 255);
    }
}
