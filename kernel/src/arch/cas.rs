//! `ibm,client-architecture-support` (CAS): tells the platform which MMU the kernel wants
//! before any secondary CPU starts, through the firmware's root node (`call-method` on the
//! ihandle of "/"; QEMU hw/ppc/vof.c and SLOF forward it to spapr's CAS handler).
//!
//! The vector (LoPAPR B.5.2, parsed by QEMU hw/ppc/spapr_hcall.c `cas_check_pvr` and
//! hw/ppc/spapr_ovec.c): a list of big-endian {PVR mask, PVR value} pairs ended by a pair with
//! bits outside its mask; then a byte "number of option vectors - 1"; then each vector as a
//! length byte (data bytes - 1) and its data bytes, numbered from 1. Option vector 5 byte 24
//! bit 0x40 selects radix (QEMU OV5_MMU_RADIX_300), byte 26 bit 0x40 guest TLB shootdown
//! (OV5_MMU_RADIX_GTSE); byte 23 stays 0 to keep the XICS interrupt controller. Option vector
//! 1 byte 3 bit 0x80 says ISA 3.00 (OV1_PPC_3_00).

use super::of::Of;
use ptfrag_core::cmdline::MmuMode;

/// POWER9 (PVR version 0x004e), any revision.
const PVR_POWER9: (u32, u32) = (0xffff_0000, 0x004e_0000);
/// Terminator: value bits outside the mask.
const PVR_END: (u32, u32) = (0x0000_0000, 0xffff_ffff);
const OV5_BYTES: usize = 26;

#[repr(C, align(8))]
struct Vector([u8; 64]);

static mut VECTOR: Vector = Vector([0; 64]);

/// Builds the CAS vector for `mode` into `buf`; returns its length.
fn build(mode: MmuMode, buf: &mut [u8; 64]) -> usize {
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    for (mask, val) in [PVR_POWER9, PVR_END] {
        put(&mask.to_be_bytes());
        put(&val.to_be_bytes());
    }
    put(&[4]); // five option vectors
    put(&[2, 0, 0, 0x80]); // OV1: ISA 3.00
    put(&[0, 0]); // OV2..OV4: nothing
    put(&[0, 0]);
    put(&[0, 0]);
    let mut ov5 = [0u8; OV5_BYTES];
    if mode.is_radix() {
        ov5[24 - 1] = 0x40;
        ov5[26 - 1] = 0x40;
    }
    put(&[(OV5_BYTES - 1) as u8]);
    put(&ov5);
    n
}

/// Negotiates `mode` with the platform. Must run before the device tree is flattened (CAS
/// rewrites it) and before any secondary CPU starts.
pub fn negotiate(of: &Of, mode: MmuMode) -> Result<(), &'static str> {
    // SAFETY: boot CPU only, before anything else runs; the firmware reads the buffer
    // during the call below and never after.
    let buf = unsafe { &mut (*core::ptr::addr_of_mut!(VECTOR)).0 };
    build(mode, buf);
    let root = of.open(b"/\0").ok_or("cannot open \"/\" through the client interface")?;
    let addr = super::virt_to_phys(buf.as_ptr() as u64) as u32;
    match of.call_method(b"ibm,client-architecture-support\0", root, &[addr]) {
        Some([0, 0, ..]) => Ok(()),
        Some(_) => Err("the platform refused ibm,client-architecture-support"),
        None => Err("ibm,client-architecture-support call failed"),
    }
}
