//! `refcount` (Hugh Dickins' v2, the seed): a deferral turns its plain reference into a
//! token of `PTE_FREE_DEFERRED` in the page's fragment count; the first token queues the
//! page's head, and the callback folds the tokens that came meanwhile into one more grace
//! period.

use super::{bump, free_page, queue, DeferEnv, DeferError};
use crate::pgtable_frag::FragError;
use crate::pgtable_t::PtPage;
use crate::sync::atomic::Ordering;

/// Hugh's bias: beyond any fragment count, so `refcount / PTE_FREE_DEFERRED` counts the
/// pending deferral tokens and `refcount % PTE_FREE_DEFERRED` the plain references.
pub const PTE_FREE_DEFERRED: u32 = 0x10000;

const D: u32 = PTE_FREE_DEFERRED;

/// `refcount`: changes the count with `f(old) -> new`, or refuses (changing nothing) when
/// `f` returns None.
fn refcount_update(
    page: PtPage,
    env: &impl DeferEnv,
    f: impl Fn(u32) -> Option<u32>,
) -> Result<u32, u32> {
    env.desc(page.pa()).pt_frag_refcount.fetch_update(Ordering::AcqRel, Ordering::Acquire, f)
}

/// `refcount`: drops `n` plain references; the page goes if they were all it had. Refuses a
/// put that would eat into a deferral token.
pub(super) fn refcount_put_plain(
    page: PtPage,
    n: u32,
    env: &impl DeferEnv,
    after_gp: bool,
) -> Result<(), DeferError> {
    let old = refcount_update(page, env, |c| (c % D >= n && c > 0).then(|| c - n))
        .map_err(|c| FragError::Underflow { page: page.pa(), refcount: c, put: n })?;
    if old == n {
        free_page(page, env, after_gp);
    }
    Ok(())
}

/// `refcount` deferral: turn our plain reference into a token of `PTE_FREE_DEFERRED`; queue
/// the head only if no other token is pending.
pub(super) fn refcount_defer(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    debug_assert!(env.pte_geometry().frags_per_page < D as usize);
    let old = refcount_update(page, env, |c| (c % D >= 1).then(|| c + (D - 1)))
        .map_err(|c| FragError::Underflow { page: page.pa(), refcount: c, put: 1 })?;
    if old + (D - 1) < 2 * D {
        queue(page, env)
    } else {
        bump(&env.stats().head_already_queued);
        Ok(())
    }
}

/// `refcount` callback (the seed's `pte_free_now`).
pub(super) fn refcount_callback(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    // Turn our token back into the plain reference it was.
    let old = refcount_update(page, env, |c| c.checked_sub(D - 1).filter(|&r| r >= 1))
        .map_err(|_| DeferError::NotDeferred { page })?;
    let mut refcount = old - (D - 1);
    if refcount < D {
        // Nothing came meanwhile: free our table like pte_fragment_free.
        return refcount_put_plain(page, 1, env, true);
    }
    // More deferrals came while we waited: one more grace period covers all of them, so
    // fold their tokens into one.
    let desc = env.desc(page.pa());
    while refcount >= 2 * D {
        refcount = desc.pt_frag_refcount.fetch_sub(D, Ordering::AcqRel) - D;
    }
    // Our plain reference goes now; the remaining token keeps the page for the next callback.
    desc.pt_frag_refcount.fetch_sub(1, Ordering::AcqRel);
    bump(&env.stats().redefers);
    queue(page, env)
}
