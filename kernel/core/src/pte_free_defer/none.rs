//! `none`: no grace period at all; a deferral frees at once. The negative control the
//! lockless walkers (and the grace-period oracle) must catch.

use super::{put_and_free_now, DeferEnv, DeferError};
use crate::pgtable_t::PtPage;

/// `none` deferral: drop the table's reference and free the page at once if it was the last.
pub(super) fn none_defer(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    put_and_free_now(page, 1, env)
}

/// `none` never queues a head, so any callback for it is spurious.
pub(super) fn none_callback(page: PtPage) -> Result<(), DeferError> {
    Err(DeferError::NotDeferred { page })
}
