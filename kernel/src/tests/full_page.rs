//! Every PTE table of one page deferred inside one grace period: the case the single
//! `rcu_head` per page is hardest for. One address space maps the same PMD range of a file
//! at as many PMD-aligned places as a page holds PTE tables (16; 256 under radix64), so
//! its tables are the consecutive fragments of one page; one `retract_page_tables()` of that
//! range (one range, many mappings, as in Linux) detaches them all while a read section on
//! this CPU keeps the grace period that is running from ending. The figure line reports how
//! many deferrals found the page's head already queued and how many `call_rcu`s the page
//! cost; the oracle checks the free.

use super::MmGuard;
use crate::arch::mmu::pte;
use crate::arch::uaccess::load_u64;
use crate::ktest::{Context, TestResult};
use crate::mm::file::{pattern, File};
use crate::mm::mm_types::{activate, pte_frag};
use crate::mm::{frame, khugepaged, pte_free};
use crate::{check, ktest, println, rcu};
use alloc::sync::Arc;
use alloc::vec::Vec;
use ptfrag_core::frame_alloc::FRAME_SIZE;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::page_of;

const BASE: u64 = 0x0000_4000_0000_0000;

fn retract_full_page() -> TestResult {
    let g = pte::geometry();
    let n = pte_frag().frags_per_page;
    let pmd = g.pmd_size();
    let frames0 = frame::free_count();
    let file = Arc::new(File::new(3000, (pmd / FRAME_SIZE) as usize, pmd).context("file")?);
    let mm = MmGuard::new().context("Mm::new")?;
    for i in 0..n as u64 {
        mm.mmap(BASE + i * pmd, pmd, &file, 0, false).context("mmap")?;
    }
    {
        let _g = activate(&mm);
        for i in 0..n as u64 {
            let v = load_u64(BASE + i * pmd + 8).context("prefault")?;
            check!(v == pattern(file.id, 8), "mapping {i} read {v:#x}");
        }
    }
    pte_free::pte_frag_destroy(&mut mm.ptl.lock().pte);
    let mut tables = Vec::new();
    for i in 0..n as u64 {
        let (slot, level) = mm.lookup_slot(BASE + i * pmd).ok_or("no translation")?;
        check!(level == Level::Pte, "mapping {i} has a {level:?} leaf");
        let bytes = g.table_bytes(Level::Pte).next_power_of_two() as u64;
        tables.push(slot.pa() & !(bytes - 1));
    }
    let page = page_of(tables[0]);
    check!(tables.iter().all(|&t| page_of(t) == page), "the {n} tables are not in one page");
    let d0 = pte_free::stats();
    let oracle0 = pte_free::oracle_bugs();
    let retracted = {
        // Our own read section: the grace period that starts with the first deferral cannot
        // end before the last one.
        let _r = rcu::read();
        khugepaged::collapse_file(&file, 0).context("collapse")?
    };
    rcu::rcu_barrier();
    rcu::rcu_barrier();
    let d = pte_free::stats();
    let freed = (d.pages_freed - d0.pages_freed) + (d.pages_freed_now - d0.pages_freed_now);
    println!(
        "figure: full_page mmu={} strategy={} tables={n} deferrals={} head_already_queued={} \
         call_rcu={} redefers={} pages_freed={freed} rcu_check_bugs={}",
        crate::arch::mmu::mode().name(),
        pte_free::strategy().name(),
        d.deferrals - d0.deferrals,
        d.head_already_queued - d0.head_already_queued,
        d.call_rcu - d0.call_rcu,
        d.redefers - d0.redefers,
        pte_free::oracle_bugs() - oracle0
    );
    check!(retracted == n, "retract detached {retracted} of {n} tables");
    check!(freed == 1, "the tables' page was freed {freed} times, not once");
    check!(pte_free::oracle_bugs() == oracle0, "rcu_check reported an early free");
    mm.destroy();
    file.unhuge(0);
    drop(file);
    rcu::rcu_barrier();
    let leaked = frames0 as i64 - frame::free_count() as i64;
    check!(leaked == 0, "{leaked} frames leaked");
    Ok(())
}
ktest!(retract_full_page);
