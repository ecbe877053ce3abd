//! The kernel's own symbol table, for naming backtrace addresses. The `.ksyms` section is
//! reserved at link time and filled afterwards by `harness ksyms` (tests/src/ksyms.rs) with:
//! magic u64, count u64, then `count` entries {addr u64, name_off u32, name_len u32} sorted by
//! address, then the names. An empty (all-zero) table means "no names".

pub const KSYMS_SIZE: usize = 512 * 1024;
const MAGIC: u64 = 0x6b73_796d_7331_0001;

#[repr(C, align(8))]
pub struct Table([u8; KSYMS_SIZE]);

#[unsafe(link_section = ".ksyms")]
#[used]
#[unsafe(no_mangle)]
pub static KSYMS: Table = Table([0; KSYMS_SIZE]);

fn word(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Name and offset of the symbol containing `addr`.
pub fn lookup(addr: u64) -> Option<(&'static str, u64)> {
    // SAFETY: KSYMS is patched in the ELF file before boot, never written at run time; a
    // volatile read keeps the compiler from folding the all-zero initializer.
    let table: &'static Table = unsafe { core::ptr::read_volatile(&&KSYMS) };
    let t: &'static [u8] = &table.0;
    if word(t, 0)? != MAGIC {
        return None;
    }
    let count = word(t, 8)? as usize;
    let entry = |i: usize| -> Option<(u64, usize, usize)> {
        let at = 16 + i * 16;
        let a = word(t, at)?;
        let x = word(t, at + 8)?;
        Some((a, (x & 0xffff_ffff) as usize, (x >> 32) as usize))
    };
    // Last entry with address <= addr.
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = (lo + hi) / 2;
        if entry(mid)?.0 <= addr {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let (a, off, len) = entry(lo.checked_sub(1)?)?;
    let name = core::str::from_utf8(t.get(off..off + len)?).ok()?;
    Some((name, addr - a))
}
