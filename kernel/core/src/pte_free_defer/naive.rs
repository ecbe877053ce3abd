//! `naive` (patch v1 of the series): a `call_rcu` for every deferred table. A second
//! deferral on the same page within a grace period queues the page's one `rcu_head` while it
//! is still queued; the env must refuse that (Linux's debug objects), which is how this
//! strategy is caught.

use super::{free_page, queue, DeferEnv, DeferError};
use crate::pgtable_frag as frag;
use crate::pgtable_t::PtPage;

/// `naive` deferral: one `call_rcu` per table; the second within a grace period is refused.
pub(super) fn naive_defer(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    queue(page, env)
}

/// `naive` callback: the grace period of one table is over; drop its reference and free the
/// page if it was the last.
pub(super) fn naive_callback(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    if frag::pt_frag_ref_put(page, 1, env)? == 0 {
        free_page(page, env, true);
    }
    Ok(())
}
