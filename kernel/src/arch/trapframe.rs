//! The register state saved by boot/vectors.S on every interrupt. Offsets are fixed there.

#[repr(C, align(16))]
pub struct TrapFrame {
    pub gpr: [u64; 32],
    pub cr: u64,
    pub lr: u64,
    pub ctr: u64,
    pub xer: u64,
    pub srr0: u64,
    pub srr1: u64,
    pub dar: u64,
    pub dsisr: u64,
    pub vector: u64,
    pub fpscr: u64,
    pub vscr: [u64; 2],
    pub vsr: [[u64; 2]; 64],
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(offset_of!(TrapFrame, cr) == 256);
    assert!(offset_of!(TrapFrame, srr0) == 288);
    assert!(offset_of!(TrapFrame, dsisr) == 312);
    assert!(offset_of!(TrapFrame, vector) == 320);
    assert!(offset_of!(TrapFrame, fpscr) == 328);
    assert!(offset_of!(TrapFrame, vscr) == 336);
    assert!(offset_of!(TrapFrame, vsr) == 352);
    assert!(size_of::<TrapFrame>() == 1376);
};
