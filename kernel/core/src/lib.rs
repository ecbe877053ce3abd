//! Portable logic of ptfrag: everything that does not touch the hardware, so it builds and
//! is unit-tested on the host as well as in the kernel.
#![cfg_attr(not(test), no_std)]

pub mod sync;

pub mod cmdline;
pub mod fdt_writer;
pub mod frame_alloc;
pub mod gp_oracle;
pub mod ktest_report;
pub mod page_desc;
pub mod pgtable;
pub mod pgtable_frag;
pub mod pgtable_t;
pub mod pte_free_defer;
pub mod radix;
pub mod rcu;
pub mod trace;

#[cfg(all(test, loom))]
mod loom_tests;
