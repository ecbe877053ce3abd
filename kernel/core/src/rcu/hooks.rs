//! Hooks: what the core tells its user about grace periods as they happen, for a tracer
//! (the kernel's `trace=1`). An [`Rcu`](super::Rcu) takes its hooks as a type parameter, so
//! an `Rcu` without hooks (the default, [`NoHooks`]: the host tests and the loom models)
//! compiles to exactly the code it had before: every call site is behind `H::ENABLED`, a
//! constant, and makes no extra atomic access when it is false. With hooks, each site asks
//! [`RcuHooks::active`] first (the tracer's on/off switch, one relaxed load) and reads what
//! it reports only then.
//!
//! The hooks run where the event happens, possibly in the tick interrupt and with the
//! core's state mid-update: they must not call back into the `Rcu`, block or allocate.

/// Grace-period events. Every method has an empty default.
pub trait RcuHooks {
    /// False only for [`NoHooks`]: the core then skips the calls and the reads made for them.
    const ENABLED: bool = true;

    /// Whether to call the hooks now (and read what they are told): the tracer is on.
    fn active() -> bool {
        true
    }

    /// `cpu` queued the head at address `head` to run once `completed()` reaches `snap`:
    /// called once it is on the list, before the grace period it needs is requested (so a
    /// grace period that request starts comes after it).
    fn call_rcu(_cpu: usize, _head: u64, _snap: u64) {}

    /// A grace period started: its `gp_seq` (odd) and the CPUs it waits for (0 when it ends at
    /// once: no CPU online, or `rcu_gp=short`).
    fn gp_start(_gp_seq: u64, _waits_for: u32) {}

    /// A grace period ended: `gp_seq` is now `completed` (even).
    fn gp_end(_completed: u64) {}

    /// `cpu` reported the quiescent state the running grace period `gp_seq` waited for (a
    /// report that clears nothing is not one). Called before that report, if it was the
    /// last, ends the grace period.
    fn qs_report(_cpu: usize, _gp_seq: u64) {}
}

/// No hooks: the `Rcu` of the tests and models.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl RcuHooks for NoHooks {
    const ENABLED: bool = false;
}
