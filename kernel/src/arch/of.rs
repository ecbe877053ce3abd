//! The Open Firmware client interface (IEEE 1275 as implemented by SLOF and QEMU's VOF),
//! used only at boot: read the device tree and flatten it (like Linux's `prom_init`).
//! Arguments are big-endian 32-bit cells; addresses passed to firmware are real addresses.

use ptfrag_core::fdt_writer::{FdtWriteError, FdtWriter};

unsafe extern "C" {
    fn of_call_asm(args: *mut u32, entry: u64) -> i32;
}

/// A handle on the firmware's client interface.
pub struct Of {
    entry: u64,
}

pub type Phandle = u32;

const MAX_ARGS: usize = 12;
/// Property-name buffer: IEEE 1275 says 32 bytes, but LoPAPR names are longer and QEMU's
/// VOF allows 64 (hw/ppc/vof.c, OF_PROPNAME_LEN_MAX).
const PROPNAME_MAX: usize = 65;
/// Largest property value `flatten` copies.
const PROP_MAX: usize = 16 * 1024;

impl Of {
    /// # Safety
    /// `entry` must be the client-interface entry the firmware passed in r5, and the
    /// firmware's memory must still be intact.
    pub unsafe fn new(entry: u64) -> Self {
        Of { entry }
    }

    /// Calls service `name` with `args`; returns `nret` results (0xffff_ffff = failure).
    fn call(&self, name: &[u8], args: &[u32], nret: usize) -> Option<[u32; 4]> {
        assert!(name.last() == Some(&0) && 3 + args.len() + nret <= MAX_ARGS);
        let mut cells = [0u32; MAX_ARGS];
        cells[0] = (phys32(name.as_ptr())).to_be();
        cells[1] = (args.len() as u32).to_be();
        cells[2] = (nret as u32).to_be();
        for (i, a) in args.iter().enumerate() {
            cells[3 + i] = a.to_be();
        }
        // SAFETY: `entry` is the client interface (Of::new's contract) and every address in
        // `cells` points at a buffer that outlives the call.
        let rc = unsafe { of_call_asm(cells.as_mut_ptr(), self.entry) };
        if rc != 0 {
            return None;
        }
        let mut out = [0u32; 4];
        for (i, o) in out.iter_mut().enumerate().take(nret) {
            *o = u32::from_be(cells[3 + args.len() + i]);
        }
        Some(out)
    }

    pub fn finddevice(&self, path: &[u8]) -> Option<Phandle> {
        let r = self.call(b"finddevice\0", &[phys32(path.as_ptr())], 1)?;
        valid(r[0])
    }

    pub fn peer(&self, ph: Phandle) -> Option<Phandle> {
        let r = self.call(b"peer\0", &[ph], 1)?;
        valid(r[0]).filter(|&p| p != 0)
    }

    pub fn child(&self, ph: Phandle) -> Option<Phandle> {
        let r = self.call(b"child\0", &[ph], 1)?;
        valid(r[0]).filter(|&p| p != 0)
    }

    /// Copies property `name` (NUL-terminated) into `buf`; returns its full length.
    pub fn getprop(&self, ph: Phandle, name: &[u8], buf: &mut [u8]) -> Option<usize> {
        let args = [ph, phys32(name.as_ptr()), phys32(buf.as_ptr()), buf.len() as u32];
        let r = self.call(b"getprop\0", &args, 1)?;
        valid(r[0]).map(|n| n as usize)
    }

    pub fn getproplen(&self, ph: Phandle, name: &[u8]) -> Option<usize> {
        let r = self.call(b"getproplen\0", &[ph, phys32(name.as_ptr())], 1)?;
        valid(r[0]).map(|n| n as usize)
    }

    /// Next property name after `prev` ("" for the first) into `buf` (NUL-terminated);
    /// false at the end.
    pub fn nextprop(&self, ph: Phandle, prev: &[u8], buf: &mut [u8; PROPNAME_MAX]) -> bool {
        let args = [ph, phys32(prev.as_ptr()), phys32(buf.as_ptr())];
        matches!(self.call(b"nextprop\0", &args, 1), Some([1, ..]))
    }

    /// Full path of a node into `buf`; returns its length.
    pub fn package_to_path(&self, ph: Phandle, buf: &mut [u8]) -> Option<usize> {
        let args = [ph, phys32(buf.as_ptr()), buf.len() as u32];
        let r = self.call(b"package-to-path\0", &args, 1)?;
        valid(r[0]).map(|n| n as usize)
    }

    /// Opens a device; returns its ihandle.
    pub fn open(&self, path: &[u8]) -> Option<u32> {
        let r = self.call(b"open\0", &[phys32(path.as_ptr())], 1)?;
        valid(r[0]).filter(|&i| i != 0)
    }

    /// `call-method`: returns [catch result, first return cell].
    pub fn call_method(&self, method: &[u8], ihandle: u32, args: &[u32]) -> Option<[u32; 4]> {
        let mut a = [0u32; 6];
        a[0] = phys32(method.as_ptr());
        a[1] = ihandle;
        a[2..2 + args.len()].copy_from_slice(args);
        self.call(b"call-method\0", &a[..2 + args.len()], 2)
    }

    /// Copies a property of the node at `path` into `buf`; returns its length.
    pub fn getprop_path(&self, path: &[u8], name: &[u8], buf: &mut [u8]) -> Option<usize> {
        let ph = self.finddevice(path)?;
        self.getprop(ph, name, buf)
    }

    /// Property-value scratch for `flatten` (device trees carry properties of several KiB).
    #[allow(clippy::mut_from_ref)]
    fn scratch(&self) -> &mut [u8; PROP_MAX] {
        static mut SCRATCH: [u8; PROP_MAX] = [0; PROP_MAX];
        // SAFETY: only the boot CPU calls the firmware, and `flatten_node` (the only user) is
        // not reentrant across the borrow: each level takes the buffer after its children
        // are done with it.
        unsafe { &mut *core::ptr::addr_of_mut!(SCRATCH) }
    }

    /// The vty's termno for /chosen/stdout, found through the client interface, so errors
    /// before the device tree is flattened can still be printed.
    pub fn stdout_termno(&self) -> Option<u64> {
        let chosen = self.finddevice(b"/chosen\0")?;
        let mut ih = [0u8; 4];
        self.getprop(chosen, b"stdout\0", &mut ih)?;
        let r = self.call(b"instance-to-package\0", &[u32::from_be_bytes(ih)], 1)?;
        let ph = valid(r[0])?;
        let mut reg = [0u8; 4];
        self.getprop(ph, b"reg\0", &mut reg)?;
        Some(u32::from_be_bytes(reg) as u64)
    }

    /// An RTAS token from the /rtas node, read through the client interface.
    pub fn rtas_token(&self, name: &[u8]) -> Option<u32> {
        let rtas = self.finddevice(b"/rtas\0")?;
        let mut v = [0u8; 4];
        self.getprop(rtas, name, &mut v)?;
        Some(u32::from_be_bytes(v))
    }

    /// Flattens the whole tree into `buf` (strings scratch in `strings`); returns the size.
    pub fn flatten(
        &self,
        buf: &mut [u8],
        strings: &mut [u8],
        boot_cpu: u32,
    ) -> Result<usize, FlattenError> {
        let root = self.peer(0).ok_or(FlattenError::NoRoot)?;
        let mut w = FdtWriter::new(buf, strings)?;
        self.flatten_node(&mut w, root, 0)?;
        Ok(w.finish(boot_cpu)?)
    }

    fn flatten_node(
        &self,
        w: &mut FdtWriter<'_>,
        ph: Phandle,
        depth: usize,
    ) -> Result<(), FlattenError> {
        if depth > 16 {
            return Err(FlattenError::TooDeep);
        }
        let mut path = [0u8; 256];
        let n =
            self.package_to_path(ph, &mut path).ok_or(FlattenError::Firmware("package-to-path"))?;
        let path = &path[..n.min(path.len())];
        let path = path.split(|&b| b == 0).next().unwrap_or(path);
        let name =
            if depth == 0 { &b""[..] } else { path.rsplit(|&b| b == b'/').next().unwrap_or(path) };
        w.begin_node(name)?;
        let mut prev = [0u8; PROPNAME_MAX];
        let mut cur = [0u8; PROPNAME_MAX];
        let value = &mut self.scratch()[..];
        while self.nextprop(ph, &prev, &mut cur) {
            let len = cstr_len(&cur);
            let pname = &cur[..=len.min(PROPNAME_MAX - 1)];
            let plen = self.getproplen(ph, pname).ok_or(FlattenError::Firmware("getproplen"))?;
            if plen > value.len() {
                return Err(FlattenError::PropTooBig);
            }
            let got = self.getprop(ph, pname, &mut value[..plen.max(1)]).unwrap_or(0).min(plen);
            // Linux's prom_init also skips the synthetic "name" property of FDT nodes.
            if &cur[..len] != b"name" {
                w.property(&cur[..len], &value[..got])?;
            }
            prev = cur;
        }
        let mut c = self.child(ph);
        while let Some(ch) = c {
            self.flatten_node(w, ch, depth + 1)?;
            c = self.peer(ch);
        }
        w.end_node()?;
        Ok(())
    }
}

#[derive(Debug)]
pub enum FlattenError {
    NoRoot,
    TooDeep,
    PropTooBig,
    Firmware(&'static str),
    Write(FdtWriteError),
}

impl core::fmt::Display for FlattenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlattenError::NoRoot => write!(f, "the firmware has no root node"),
            FlattenError::TooDeep => write!(f, "the tree is more than 16 levels deep"),
            FlattenError::PropTooBig => write!(f, "a property is larger than {PROP_MAX} bytes"),
            FlattenError::Firmware(call) => write!(f, "client-interface call {call} failed"),
            FlattenError::Write(e) => write!(f, "building the blob: {e}"),
        }
    }
}

impl From<FdtWriteError> for FlattenError {
    fn from(e: FdtWriteError) -> Self {
        FlattenError::Write(e)
    }
}

fn valid(v: u32) -> Option<u32> {
    (v != u32::MAX).then_some(v)
}

fn cstr_len(b: &[u8]) -> usize {
    b.iter().position(|&c| c == 0).unwrap_or(b.len())
}

/// A kernel pointer as the 32-bit real address the firmware understands. The kernel is
/// loaded below 4 GiB, so the truncation is exact.
fn phys32<T>(p: *const T) -> u32 {
    super::virt_to_phys(p as u64) as u32
}
