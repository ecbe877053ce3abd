//! Interrupt handling: an expected storage interrupt is caught and reported.

use crate::arch::exceptions::probe_load;
use crate::ktest::TestResult;
use crate::{check, ktest};

fn storage_interrupt_caught() -> TestResult {
    // No SLB entry and no page table maps this address: with MSR[DR]=1 the load must take a
    // data segment (0x380) or data storage (0x300) interrupt with DAR = the address.
    let addr = 0x0000_1234_5678_0000u64;
    match probe_load(addr) {
        None => Err(alloc::format!("load from {addr:#x} with DR=1 did not fault").into()),
        Some((v, dar)) => {
            check!(v == 0x380 || v == 0x300, "unexpected vector {v:#x}");
            check!(dar == addr, "DAR {dar:#x}, expected {addr:#x}");
            Ok(())
        }
    }
}
ktest!(storage_interrupt_caught);
