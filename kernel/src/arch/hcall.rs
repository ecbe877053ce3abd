//! PAPR hypervisor calls (`sc 1`). Opcodes from PAPR / Linux `arch/powerpc/include/asm/hvcall.h`
//! (facts only). The hypervisor clobbers r0 and r3-r12, CTR, XER and the volatile CR fields.

use core::arch::asm;

pub const H_SUCCESS: i64 = 0;

pub const H_PUT_TERM_CHAR: u64 = 0x58;
pub const H_EOI: u64 = 0x64;
pub const H_CPPR: u64 = 0x68;
pub const H_IPI: u64 = 0x6c;
pub const H_XIRR: u64 = 0x74;
pub const H_CEDE: u64 = 0xe0;
pub const H_CONFER: u64 = 0xe4;
pub const H_SET_MODE: u64 = 0x31c;
/// QEMU's private hcall that runs an RTAS call (hw/ppc/spapr_hcall.c, KVMPPC_H_RTAS).
pub const KVMPPC_H_RTAS: u64 = 0xf000;

/// Results of an hcall: status (r3) and the return registers r4..r11.
#[derive(Debug, Clone, Copy)]
pub struct HcallRet {
    pub status: i64,
    pub r: [u64; 8],
}

/// Raw hcall with up to eight arguments (r4..r11), returning r4..r11.
///
/// # Safety
/// The hcall must not make the hypervisor write guest memory the caller does not own
/// (arguments that are real addresses must point at buffers reserved for that call).
pub unsafe fn hcall<const N: usize>(op: u64, args: [u64; N]) -> HcallRet {
    const { assert!(N <= 8) };
    let mut a = [0u64; 8];
    a[..N].copy_from_slice(&args);
    let r3: u64;
    // SAFETY: `sc 1` enters the hypervisor, which preserves r1, r2, r13-r31 and LR; the
    // clobbers below list everything else it may change. The caller vouches for memory.
    unsafe {
        asm!(
            "sc 1",
            inlateout("r3") op => r3,
            inlateout("r4") a[0] => a[0],
            inlateout("r5") a[1] => a[1],
            inlateout("r6") a[2] => a[2],
            inlateout("r7") a[3] => a[3],
            inlateout("r8") a[4] => a[4],
            inlateout("r9") a[5] => a[5],
            inlateout("r10") a[6] => a[6],
            inlateout("r11") a[7] => a[7],
            lateout("r0") _, lateout("r12") _,
            lateout("ctr") _, lateout("xer") _,
            lateout("cr0") _, lateout("cr1") _, lateout("cr5") _, lateout("cr6") _,
            lateout("cr7") _,
            options(nostack)
        );
    }
    HcallRet { status: r3 as i64, r: a }
}

/// An hcall whose arguments are plain values (no guest memory involved).
pub fn hcall_noref<const N: usize>(op: u64, args: [u64; N]) -> HcallRet {
    // SAFETY: callers only pass hcalls whose arguments are not guest addresses.
    unsafe { hcall(op, args) }
}

/// Writes up to 16 bytes to the vty `termno`. The bytes travel in r6/r7, first byte in the
/// most significant position (PAPR H_PUT_TERM_CHAR).
pub fn put_term_chars(termno: u64, bytes: &[u8]) -> i64 {
    debug_assert!(bytes.len() <= 16);
    let mut buf = [0u8; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    let hi = u64::from_be_bytes(buf[..8].try_into().unwrap_or([0; 8]));
    let lo = u64::from_be_bytes(buf[8..].try_into().unwrap_or([0; 8]));
    hcall_noref(H_PUT_TERM_CHAR, [termno, bytes.len() as u64, hi, lo, 0, 0]).status
}

/// H_SET_MODE resource 4 (LE exceptions): mflags 1 = little-endian, 0 = big-endian.
pub fn set_interrupt_endian_le() -> i64 {
    hcall_noref(H_SET_MODE, [1, 4, 0, 0, 0, 0]).status
}

/// Idles this CPU until an interrupt or H_PROD (PAPR H_CEDE); returns with MSR[EE] set.
pub fn cede() {
    hcall_noref(H_CEDE, [0; 6]);
}

/// Gives the rest of this vCPU's time slice to the others (PAPR H_CONFER, target -1: any
/// CPU, no dispatch-count check); returns at once with nothing pending. Under QEMU it ends
/// the vCPU's turn (hw/ppc/spapr_hcall.c `h_confer`: EXCP_YIELD and `cpu_loop_exit`), which
/// is what lets the next vCPU run on single-threaded TCG (see `smp::relax`).
pub fn confer() {
    hcall_noref(H_CONFER, [u64::MAX, 0, 0, 0, 0, 0]);
}
