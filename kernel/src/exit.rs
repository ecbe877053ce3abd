//! Leaving QEMU with a status the host harness can read: RTAS `power-off` exits 0, RTAS
//! `ibm,os-term` exits 1 because the harness runs QEMU with `-action panic=exit-failure`
//! (hw/ppc/spapr_rtas.c: os-term raises a guest panic).

use crate::arch::rtas;
use qemu_exit::QEMUExit;

pub struct Pseries;

impl QEMUExit for Pseries {
    fn exit(&self, code: u32) -> ! {
        if code == 0 {
            let t = rtas::tokens();
            if let Some(tok) = t.power_off {
                rtas::call(tok, &[0, 0], 1);
            }
        } else {
            self.os_term(b"ptfrag: failure exit\0");
        }
        halt()
    }

    fn exit_success(&self) -> ! {
        self.exit(0)
    }

    fn exit_failure(&self) -> ! {
        self.exit(1)
    }
}

impl Pseries {
    fn os_term(&self, msg: &'static [u8]) {
        if let Some(tok) = rtas::tokens().os_term {
            let real = crate::arch::virt_to_phys(msg.as_ptr() as u64) as u32;
            rtas::call(tok, &[real], 1);
        }
    }
}

/// Parks the CPU for good (RTAS had no token, or QEMU kept running).
pub fn halt() -> ! {
    crate::arch::irq::disable();
    loop {
        core::hint::spin_loop();
    }
}

pub fn success() -> ! {
    Pseries.exit_success()
}

pub fn failure() -> ! {
    Pseries.exit_failure()
}
