//! rcutorture's check, shared by the host torture test and the kernel's `rcu_torture_pipe`.

/// rcutorture's pipe check: may a reader find the element it holds aged `age`? An element's
/// age counts the grace periods that ended since the writer unpublished it (each callback
/// adds one and re-queues). The writers here do not age an element when they unpublish it,
/// unlike Linux's `rcu_torture_pipe_update_one` (hence Linux's `> 1`), so any age at all
/// means a grace period ended under the reader: an RCU one grace period short shows as 1.
pub const fn torture_pipe_age_ok(age: u64) -> bool {
    age == 0
}
