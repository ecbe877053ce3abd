//! `bitmap_sketch`: the side structure exactly as sketched in the mail, kept as a negative
//! control to show its race (see [`Strategy::BitmapSketch`](super::Strategy::BitmapSketch)).
//! It uses the low half of [`BitmapSide`](super::BitmapSide)'s phase word as its `pending` count.

use super::bitmap::mark_deferred;
use super::{bump, put_and_free_after_gp, queue, DeferEnv, DeferError};
use crate::pgtable_frag::FragGeometry;
use crate::pgtable_t::{PgTable, PtPage};
use crate::sync::atomic::Ordering;

/// `bitmap_sketch` deferral, as in the mail (with its inverted test put right): mark the
/// fragment pending, queue if nothing was.
pub(super) fn sketch_defer(
    table: PgTable,
    page: PtPage,
    geo: &FragGeometry,
    env: &impl DeferEnv,
) -> Result<(), DeferError> {
    let side = mark_deferred(table, page, geo, env)?;
    if side.phases.fetch_add(1, Ordering::AcqRel) == 0 {
        queue(page, env)
    } else {
        bump(&env.stats().head_already_queued);
        Ok(())
    }
}

/// `bitmap_sketch` callback: frees whatever is pending now, including deferrals that came
/// after the grace period ended (the race).
pub(super) fn sketch_callback(page: PtPage, env: &impl DeferEnv) -> Result<(), DeferError> {
    let pending = env.bitmap_side(page).phases.swap(0, Ordering::AcqRel);
    if pending == 0 {
        return Err(DeferError::NotDeferred { page });
    }
    put_and_free_after_gp(page, pending as u32, env)
}
