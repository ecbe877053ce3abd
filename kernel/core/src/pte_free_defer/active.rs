//! `active` (Linux v6.6): a deferral marks the page Active and drops its reference (the
//! dispatch in `mod.rs` does both); the last reference frees the page through one `call_rcu`
//! if Active was set, at once otherwise.

use super::{free_page, queue, DeferEnv, DeferError};
use crate::page_desc::PageFlags;
use crate::pgtable_frag::{self as frag, FragError};
use crate::pgtable_t::PtPage;
use crate::sync::atomic::Ordering;

/// `active`: drops `n` references; the last one frees through one `call_rcu` if a deferral
/// marked the page, at once otherwise (Linux v6.6 `pte_fragment_free`).
pub(super) fn put_active(page: PtPage, n: u32, env: &impl DeferEnv) -> Result<(), DeferError> {
    // The put is AcqRel, so the last dropper sees every earlier deferral's ACTIVE.
    if frag::pt_frag_ref_put(page, n, env)? != 0 {
        return Ok(());
    }
    if env.desc(page.pa()).test_and_clear_flag(PageFlags::ACTIVE) {
        queue(page, env)
    } else {
        free_page(page, env, false);
        Ok(())
    }
}

/// `active` callback: the last reference went after a deferral, a grace period ago; the page
/// must still be a page table with no reference left.
pub(super) fn active_callback(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    let desc = env.desc(page.pa());
    if !desc.has_flag(PageFlags::PAGE_TABLE) {
        return Err(FragError::NotPageTable { page: page.pa() }.into());
    }
    if desc.pt_frag_refcount.load(Ordering::Acquire) != 0 {
        return Err(DeferError::NotDeferred { page });
    }
    free_page(page, env, true);
    Ok(())
}
