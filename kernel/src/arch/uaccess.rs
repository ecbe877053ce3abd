//! Kernel accesses to an address space's (quadrant-0) addresses, through the MMU. A page
//! fault is first offered to the mm fault handler (`mm::fault`); if that cannot resolve it
//! (no VMA), the access returns `Err` instead of oopsing, like Linux's exception-table
//! fixups for `get_user`/`put_user`.

use super::paca;
use core::sync::atomic::Ordering;

/// Where and how a user access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserFault {
    pub addr: u64,
    pub vector: u64,
}

impl core::fmt::Display for UserFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "access to {:#x} faulted (interrupt {:#x})", self.addr, self.vector)
    }
}

fn arm() -> &'static paca::Paca {
    let p = paca::this();
    p.fault_vector.store(0, Ordering::Relaxed);
    p.fault_fixup.store(1, Ordering::Release);
    p
}

fn disarm(p: &paca::Paca, addr: u64) -> Result<(), UserFault> {
    if p.fault_fixup.swap(0, Ordering::AcqRel) != 0 {
        return Ok(());
    }
    Err(UserFault { addr, vector: p.fault_vector.load(Ordering::Acquire) })
}

/// Loads the doubleword at `addr` in the current address space.
pub fn load_u64(addr: u64) -> Result<u64, UserFault> {
    let p = arm();
    let v: u64;
    // SAFETY: a single load; if it faults and the fault cannot be resolved, the interrupt
    // handler resumes at the next instruction (fixup armed above) and `disarm` reports it.
    unsafe {
        core::arch::asm!("ld {v}, 0({a})", a = in(reg_nonzero) addr, v = out(reg) v, options(nostack))
    };
    disarm(p, addr).map(|()| v)
}

/// Stores `val` at `addr` in the current address space.
pub fn store_u64(addr: u64, val: u64) -> Result<(), UserFault> {
    let p = arm();
    // SAFETY: as in load_u64, for one store to an address-space (not kernel) address.
    unsafe {
        core::arch::asm!("std {v}, 0({a})", a = in(reg_nonzero) addr, v = in(reg) val, options(nostack))
    };
    disarm(p, addr)
}

/// Whether `addr` is an address-space address (radix quadrant 0).
pub fn is_user_addr(addr: u64) -> bool {
    addr >> 62 == 0
}
