//! Flattened device tree writer: builds a DTB (version 17, big-endian, Devicetree
//! Specification v0.4 chapter 5) into caller-provided buffers without allocating.
//!
//! The kernel walks the Open Firmware tree through the client interface
//! (`peer`/`child`/`getprop`, as Linux's `prom_init` does) and feeds each node and property
//! here, then parses the blob with `flat_device_tree` like any other DTB.
//!
//! Invariant: `buf[STRUCT_OFF..pos]` is always a well-formed prefix of the structure block
//! (tokens 4-byte aligned, padding zeroed) and `strings[..strings_len]` holds the
//! NUL-terminated names it refers to. Header, reservation map and strings block are only laid
//! out by `finish`, once the sizes are known.

use core::fmt;

/// Header magic (spec 5.2).
const FDT_MAGIC: u32 = 0xd00d_feed;
/// Structure block tokens (spec 5.4.1).
const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_END: u32 = 0x9;
/// We write version 17; the oldest version it stays compatible with is 16 (spec 5.2).
const FDT_VERSION: u32 = 17;
const FDT_LAST_COMP_VERSION: u32 = 16;

/// Ten 32-bit header fields.
const HEADER_SIZE: usize = 40;
/// The memory reservation map is 8-byte aligned and holds only its terminating
/// `{address: 0, size: 0}` entry.
const RSVMAP_OFF: usize = HEADER_SIZE;
const RSVMAP_SIZE: usize = 16;
/// The structure block follows the reservation map directly (4-byte aligned, spec 5.4).
const STRUCT_OFF: usize = RSVMAP_OFF + RSVMAP_SIZE;

/// Why a tree could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdtWriteError {
    /// The blob or the strings scratch buffer is full.
    NoSpace,
    /// Calls out of order: a second root, a property outside any node or after a child node,
    /// `end_node` with no open node, or `finish` with open nodes or no root.
    Unbalanced,
    /// A node name that is empty (except the root's), or contains `/` or NUL; a property name
    /// that is empty or contains NUL.
    BadName,
}

impl fmt::Display for FdtWriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FdtWriteError::NoSpace => "device tree buffer full",
            FdtWriteError::Unbalanced => "device tree nodes and properties out of order",
            FdtWriteError::BadName => "invalid device tree node or property name",
        })
    }
}

/// Streaming writer of one flattened device tree.
pub struct FdtWriter<'a> {
    /// Receives the blob; the structure block is built in place at `STRUCT_OFF`.
    buf: &'a mut [u8],
    /// Scratch for the strings block until `finish` copies it after the structure block.
    strings: &'a mut [u8],
    /// End of the structure block written so far.
    pos: usize,
    strings_len: usize,
    /// Open nodes.
    depth: usize,
    root_seen: bool,
    /// False once the current node has a child: its properties must come first (spec 5.4.2).
    props_allowed: bool,
}

impl<'a> FdtWriter<'a> {
    /// Starts an empty tree. `buf` receives the blob; `strings` is scratch for the property
    /// names, which `finish` copies into `buf` as well. Fails if `buf` cannot even hold the
    /// header and reservation map.
    pub fn new(buf: &'a mut [u8], strings: &'a mut [u8]) -> Result<Self, FdtWriteError> {
        if buf.len() < STRUCT_OFF {
            return Err(FdtWriteError::NoSpace);
        }
        Ok(Self {
            buf,
            strings,
            pos: STRUCT_OFF,
            strings_len: 0,
            depth: 0,
            root_seen: false,
            props_allowed: false,
        })
    }

    /// Opens a node: the root (name `b""`) first, then its descendants by unit name
    /// (`cpu@0`, not a path).
    pub fn begin_node(&mut self, name: &[u8]) -> Result<(), FdtWriteError> {
        if self.depth == 0 {
            if self.root_seen {
                return Err(FdtWriteError::Unbalanced);
            }
            if !name.is_empty() {
                return Err(FdtWriteError::BadName);
            }
        } else if name.is_empty() || name.iter().any(|&b| b == 0 || b == b'/') {
            return Err(FdtWriteError::BadName);
        }
        self.reserve(4 + align4(name.len() + 1))?;
        self.put_u32(FDT_BEGIN_NODE);
        self.put_bytes(name);
        self.put_bytes(&[0]);
        self.pad();
        self.depth += 1;
        self.root_seen = true;
        self.props_allowed = true;
        Ok(())
    }

    /// Adds a property to the open node; must come before the node's children. Names are
    /// stored once in the strings block however often they are used.
    pub fn property(&mut self, name: &[u8], value: &[u8]) -> Result<(), FdtWriteError> {
        if self.depth == 0 || !self.props_allowed {
            return Err(FdtWriteError::Unbalanced);
        }
        if name.is_empty() || name.contains(&0) {
            return Err(FdtWriteError::BadName);
        }
        let len = u32::try_from(value.len()).map_err(|_| FdtWriteError::NoSpace)?;
        self.reserve(12 + align4(value.len()))?;
        let nameoff = self.string_offset(name)?;
        self.put_u32(FDT_PROP);
        self.put_u32(len);
        self.put_u32(nameoff);
        self.put_bytes(value);
        self.pad();
        Ok(())
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> Result<(), FdtWriteError> {
        if self.depth == 0 {
            return Err(FdtWriteError::Unbalanced);
        }
        self.reserve(4)?;
        self.put_u32(FDT_END_NODE);
        self.depth -= 1;
        // Back in the parent, which now has a child.
        self.props_allowed = false;
        Ok(())
    }

    /// Terminates the structure block, appends the strings block, writes the header and the
    /// empty reservation map, and returns the blob's total size (the valid prefix of `buf`).
    pub fn finish(mut self, boot_cpuid_phys: u32) -> Result<usize, FdtWriteError> {
        if self.depth != 0 || !self.root_seen {
            return Err(FdtWriteError::Unbalanced);
        }
        self.reserve(4 + self.strings_len)?;
        self.put_u32(FDT_END);
        let struct_size = self.pos - STRUCT_OFF;
        let strings_off = self.pos;
        let total = strings_off + self.strings_len;
        let total32 = u32::try_from(total).map_err(|_| FdtWriteError::NoSpace)?;
        self.buf[strings_off..total].copy_from_slice(&self.strings[..self.strings_len]);
        self.buf[RSVMAP_OFF..STRUCT_OFF].fill(0);
        // All offsets and sizes are below `total`, which fits in u32.
        let header = [
            FDT_MAGIC,
            total32,
            STRUCT_OFF as u32,
            strings_off as u32,
            RSVMAP_OFF as u32,
            FDT_VERSION,
            FDT_LAST_COMP_VERSION,
            boot_cpuid_phys,
            self.strings_len as u32,
            struct_size as u32,
        ];
        for (i, field) in header.iter().enumerate() {
            self.buf[i * 4..i * 4 + 4].copy_from_slice(&field.to_be_bytes());
        }
        Ok(total)
    }

    /// Offset of `name` in the strings block, appending it if no stored string ends with it.
    fn string_offset(&mut self, name: &[u8]) -> Result<u32, FdtWriteError> {
        let n = name.len();
        let stored = &self.strings[..self.strings_len];
        // Any stored string that ends with `name` will do, as dtc does (spec 5.5).
        let off = match stored.windows(n + 1).position(|w| w[n] == 0 && &w[..n] == name) {
            Some(off) => off,
            None => {
                let off = self.strings_len;
                let end = off + n + 1;
                if end > self.strings.len() {
                    return Err(FdtWriteError::NoSpace);
                }
                self.strings[off..off + n].copy_from_slice(name);
                self.strings[off + n] = 0;
                self.strings_len = end;
                off
            }
        };
        u32::try_from(off).map_err(|_| FdtWriteError::NoSpace)
    }

    /// Fails unless `n` more bytes fit in the structure block.
    fn reserve(&self, n: usize) -> Result<(), FdtWriteError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => Ok(()),
            _ => Err(FdtWriteError::NoSpace),
        }
    }

    fn put_u32(&mut self, v: u32) {
        self.put_bytes(&v.to_be_bytes());
    }

    fn put_bytes(&mut self, b: &[u8]) {
        self.buf[self.pos..self.pos + b.len()].copy_from_slice(b);
        self.pos += b.len();
    }

    /// Zero-fills up to the next 4-byte boundary.
    fn pad(&mut self) {
        let end = align4(self.pos);
        self.buf[self.pos..end].fill(0);
        self.pos = end;
    }
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;
    use flat_device_tree::node::CellSize;
    use flat_device_tree::Fdt;
    use std::vec;
    use std::vec::Vec;

    const BOOTARGS: &str = "mmu=hash hz=250";
    const STDOUT: &str = "/vdevice/vty@71000000";

    /// A small pseries-like tree; `Err` from any step is passed on.
    fn build(buf: &mut [u8], strings: &mut [u8]) -> Result<usize, FdtWriteError> {
        let mut w = FdtWriter::new(buf, strings)?;
        w.begin_node(b"")?;
        w.property(b"#address-cells", &2u32.to_be_bytes())?;
        w.property(b"#size-cells", &2u32.to_be_bytes())?;
        w.property(b"compatible", b"qemu,pseries\0")?;
        w.property(b"model", b"IBM pSeries (emulated by qemu)\0")?;

        w.begin_node(b"cpus")?;
        w.property(b"#address-cells", &1u32.to_be_bytes())?;
        w.property(b"#size-cells", &0u32.to_be_bytes())?;
        w.begin_node(b"cpu@0")?;
        w.property(b"device_type", b"cpu\0")?;
        w.property(b"reg", &0u32.to_be_bytes())?;
        w.property(b"timebase-frequency", &512_000_000u32.to_be_bytes())?;
        w.property(b"clock-frequency", &1_000_000_000u32.to_be_bytes())?;
        w.property(b"ibm,pa-features", &[])?;
        w.end_node()?;
        w.end_node()?;

        w.begin_node(b"memory@0")?;
        w.property(b"device_type", b"memory\0")?;
        let mut reg = [0u8; 16];
        reg[8..].copy_from_slice(&0x4000_0000u64.to_be_bytes());
        w.property(b"reg", &reg)?;
        w.end_node()?;

        w.begin_node(b"chosen")?;
        w.property(b"bootargs", b"mmu=hash hz=250\0")?;
        w.property(b"stdout-path", b"/vdevice/vty@71000000\0")?;
        w.end_node()?;

        w.begin_node(b"vdevice")?;
        w.property(b"#address-cells", &1u32.to_be_bytes())?;
        w.property(b"#size-cells", &0u32.to_be_bytes())?;
        w.begin_node(b"vty@71000000")?;
        w.property(b"reg", &0x7100_0000u32.to_be_bytes())?;
        w.property(b"compatible", b"hvterm1\0")?;
        w.end_node()?;
        w.end_node()?;

        w.begin_node(b"rtas")?;
        w.property(b"ibm,os-term", &0x2011u32.to_be_bytes())?;
        w.property(b"power-off", &0x2012u32.to_be_bytes())?;
        w.property(b"reg", &[])?;
        w.end_node()?;

        w.end_node()?;
        w.finish(3)
    }

    fn be32(b: &[u8], off: usize) -> u32 {
        u32::from_be_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn prop_u32(fdt: &Fdt<'_>, path: &str, name: &str) -> Option<usize> {
        fdt.find_node(path)?.property(name)?.as_usize()
    }

    #[test]
    fn round_trip_through_flat_device_tree() {
        let mut buf = vec![0xaau8; 4096];
        let mut strings = [0u8; 512];
        let size = build(&mut buf, &mut strings).unwrap();
        let blob = &buf[..size];
        let fdt = Fdt::new(blob).unwrap();
        assert_eq!(fdt.total_size(), size);

        assert_eq!(prop_u32(&fdt, "/", "#address-cells"), Some(2));
        assert_eq!(prop_u32(&fdt, "/", "#size-cells"), Some(2));
        let root = fdt.root().unwrap();
        assert_eq!(root.model(), "IBM pSeries (emulated by qemu)");

        let cpu = fdt.find_node("/cpus/cpu@0").unwrap();
        assert_eq!(cpu.name, "cpu@0");
        let regs: Vec<u64> = cpu.property("reg").unwrap().iter_cell_size(CellSize::One).collect();
        assert_eq!(regs, [0]);
        assert_eq!(cpu.property("ibm,pa-features").unwrap().value, b"");
        let cpus: Vec<_> = fdt.cpus().collect();
        assert_eq!(cpus.len(), 1);
        assert_eq!(cpus[0].timebase_frequency().unwrap(), 512_000_000);

        let mem: Vec<_> = fdt.memory().unwrap().regions().collect();
        assert_eq!(mem.len(), 1);
        assert_eq!(mem[0].starting_address as usize, 0);
        assert_eq!(mem[0].size, Some(0x4000_0000));

        let chosen = fdt.chosen().unwrap();
        assert_eq!(chosen.bootargs(), Some(BOOTARGS));
        let stdout = chosen.stdout().unwrap().node();
        assert_eq!(stdout.name, "vty@71000000");
        assert_eq!(prop_u32(&fdt, STDOUT, "reg"), Some(0x7100_0000));

        assert_eq!(prop_u32(&fdt, "/rtas", "power-off"), Some(0x2012));
        assert_eq!(prop_u32(&fdt, "/rtas", "ibm,os-term"), Some(0x2011));

        let names: Vec<&str> = fdt.all_nodes().map(|n| n.name).collect();
        assert_eq!(
            names,
            ["/", "cpus", "cpu@0", "memory@0", "chosen", "vdevice", "vty@71000000", "rtas"]
        );
        assert_eq!(fdt.memory_reservations().count(), 0);
    }

    #[test]
    fn header_fields() {
        let mut buf = [0u8; 4096];
        let mut strings = [0u8; 512];
        let size = build(&mut buf, &mut strings).unwrap();
        assert_eq!(be32(&buf, 0), 0xd00d_feed);
        assert_eq!(be32(&buf, 4) as usize, size);
        let off_struct = be32(&buf, 8) as usize;
        let off_strings = be32(&buf, 12) as usize;
        let off_rsvmap = be32(&buf, 16) as usize;
        assert_eq!(be32(&buf, 20), 17);
        assert_eq!(be32(&buf, 24), 16);
        assert_eq!(be32(&buf, 28), 3);
        let size_strings = be32(&buf, 32) as usize;
        let size_struct = be32(&buf, 36) as usize;
        assert_eq!(off_rsvmap % 8, 0);
        assert!(buf[off_rsvmap..off_rsvmap + 16].iter().all(|&b| b == 0));
        assert_eq!(off_struct % 4, 0);
        assert_eq!(off_struct + size_struct, off_strings);
        assert_eq!(off_strings + size_strings, size);
        assert_eq!(be32(&buf, off_struct), 1);
        assert_eq!(be32(&buf, off_strings - 4), 9);
    }

    #[test]
    fn property_names_are_deduplicated() {
        let mut buf = [0u8; 4096];
        let mut strings = [0u8; 512];
        let size = build(&mut buf, &mut strings).unwrap();
        let fdt = Fdt::new(&buf[..size]).unwrap();
        let all: Vec<&str> = fdt.strings().collect();
        for name in ["reg", "#address-cells", "device_type", "compatible"] {
            assert!(all.contains(&name), "{name} missing");
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "duplicate strings in {all:?}");
    }

    #[test]
    fn suffix_of_a_stored_name_is_shared() {
        let mut buf = [0u8; 256];
        let mut strings = [0u8; 32];
        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        w.begin_node(b"").unwrap();
        w.property(b"linux,phandle", &1u32.to_be_bytes()).unwrap();
        w.property(b"phandle", &1u32.to_be_bytes()).unwrap();
        w.end_node().unwrap();
        let size = w.finish(0).unwrap();
        assert_eq!(be32(&buf, 32), 14, "only \"linux,phandle\\0\" stored");
        let fdt = Fdt::new(&buf[..size]).unwrap();
        assert_eq!(prop_u32(&fdt, "/", "phandle"), Some(1));
        assert_eq!(prop_u32(&fdt, "/", "linux,phandle"), Some(1));
    }

    #[test]
    fn no_space_on_every_smaller_buffer() {
        let mut buf = [0u8; 4096];
        let mut strings = [0u8; 512];
        let size = build(&mut buf, &mut strings).unwrap();
        for len in 0..size {
            let mut small = vec![0u8; len];
            let mut strings = [0u8; 512];
            assert_eq!(
                build(&mut small, &mut strings),
                Err(FdtWriteError::NoSpace),
                "blob buffer of {len} bytes"
            );
        }
        let mut exact = vec![0u8; size];
        assert_eq!(build(&mut exact, &mut strings), Ok(size));
    }

    #[test]
    fn no_space_in_strings_scratch() {
        let mut buf = [0u8; 4096];
        let mut strings = [0u8; 512];
        build(&mut buf, &mut strings).unwrap();
        let needed = be32(&buf, 32) as usize;
        let mut short = vec![0u8; needed - 1];
        assert_eq!(build(&mut buf, &mut short), Err(FdtWriteError::NoSpace));
        let mut exact = vec![0u8; needed];
        assert!(build(&mut buf, &mut exact).is_ok());
    }

    #[test]
    fn unbalanced_finish_with_open_nodes() {
        let mut buf = [0u8; 256];
        let mut strings = [0u8; 64];
        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        w.begin_node(b"").unwrap();
        w.begin_node(b"cpus").unwrap();
        w.end_node().unwrap();
        assert_eq!(w.finish(0), Err(FdtWriteError::Unbalanced));

        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        assert_eq!(w.end_node(), Err(FdtWriteError::Unbalanced));
        assert_eq!(w.property(b"a", b""), Err(FdtWriteError::Unbalanced));
        assert_eq!(w.finish(0), Err(FdtWriteError::Unbalanced));
    }

    #[test]
    fn unbalanced_structure_rejected() {
        let mut buf = [0u8; 256];
        let mut strings = [0u8; 64];
        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        w.begin_node(b"").unwrap();
        w.begin_node(b"a").unwrap();
        w.end_node().unwrap();
        // Properties after a child node would be invisible to parsers.
        assert_eq!(w.property(b"late", b"x"), Err(FdtWriteError::Unbalanced));
        w.end_node().unwrap();
        assert_eq!(w.end_node(), Err(FdtWriteError::Unbalanced));
        assert_eq!(w.begin_node(b""), Err(FdtWriteError::Unbalanced));
        assert_eq!(w.property(b"x", b""), Err(FdtWriteError::Unbalanced));
        assert!(w.finish(0).is_ok());
    }

    #[test]
    fn bad_names_rejected() {
        let mut buf = [0u8; 256];
        let mut strings = [0u8; 64];
        let mut w = FdtWriter::new(&mut buf, &mut strings).unwrap();
        assert_eq!(w.begin_node(b"root"), Err(FdtWriteError::BadName));
        w.begin_node(b"").unwrap();
        assert_eq!(w.begin_node(b""), Err(FdtWriteError::BadName));
        assert_eq!(w.begin_node(b"a/b"), Err(FdtWriteError::BadName));
        assert_eq!(w.begin_node(b"a\0b"), Err(FdtWriteError::BadName));
        assert_eq!(w.property(b"", b"x"), Err(FdtWriteError::BadName));
        assert_eq!(w.property(b"a\0", b"x"), Err(FdtWriteError::BadName));
        w.end_node().unwrap();
        let size = w.finish(0).unwrap();
        // Rejected calls wrote nothing: the tree is just an empty root.
        let fdt = Fdt::new(&buf[..size]).unwrap();
        assert_eq!(fdt.all_nodes().count(), 1);
        assert_eq!(fdt.strings().filter(|s| !s.is_empty()).count(), 0);
    }

    #[test]
    fn tiny_buffer_fails_at_new() {
        let mut buf = [0u8; STRUCT_OFF - 1];
        let mut strings = [0u8; 0];
        assert!(matches!(FdtWriter::new(&mut buf, &mut strings), Err(FdtWriteError::NoSpace)));
    }
}
