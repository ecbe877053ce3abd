//! What a debugger needs to read the RCU state (the gdb script's `ptfrag-rcu`).

use super::{CpuData, Rcu, RcuHooks, MAX_CPUS};

/// Where a debugger finds the RCU state in memory (offsets in bytes), so a gdb script can
/// list pending callbacks without knowing Rust's layout rules.
#[derive(Debug, Clone, Copy)]
pub struct RcuLayout {
    pub gp_seq: usize,
    pub qs_mask: usize,
    pub online: usize,
    pub cpus: usize,
    pub cpu_stride: usize,
    pub cpu_nesting: usize,
    pub cpu_head: usize,
    pub max_cpus: usize,
}

/// The layout of an [`Rcu`] with hooks `H` (see [`RcuLayout`]).
pub fn debug_layout<H: RcuHooks>() -> RcuLayout {
    use core::mem::{offset_of, size_of};
    RcuLayout {
        gp_seq: offset_of!(Rcu<H>, gp_seq),
        qs_mask: offset_of!(Rcu<H>, qs_mask),
        online: offset_of!(Rcu<H>, online),
        cpus: offset_of!(Rcu<H>, cpus),
        cpu_stride: size_of::<CpuData>(),
        cpu_nesting: offset_of!(CpuData, nesting),
        cpu_head: offset_of!(CpuData, head),
        max_cpus: MAX_CPUS,
    }
}
