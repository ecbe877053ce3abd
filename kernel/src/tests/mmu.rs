//! Address spaces through the real MMU: faults fill PTEs from the shared file, writes are
//! shared, 16 PTE tables share one 64K page, the hardware walks our tables, huge PMD
//! leaves, and an unmap is seen by every CPU before it returns.

use super::{reference_loop, MmGuard};
use crate::arch::mmu::{pte, tlb};
use crate::arch::uaccess::{load_u64, store_u64};
use crate::arch::{paca, smp, timer};
use crate::ktest::{Context, TestError, TestResult};
use crate::mm::file::{pattern, File};
use crate::mm::mm_types::activate;
use crate::mm::{frame, Mm};
use crate::{check, ktest, println};
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use ptfrag_core::frame_alloc::FRAME_SIZE;
use ptfrag_core::pgtable::Level;
use ptfrag_core::pgtable_frag::page_of;

/// Where tests map things: PMD-aligned in both MMU modes, far from zero.
const BASE: u64 = 0x0000_1000_0000_0000;

static FILE_IDS: AtomicU32 = AtomicU32::new(1);

fn new_file(npages: usize) -> Result<Arc<File>, TestError> {
    let id = FILE_IDS.fetch_add(1, Ordering::Relaxed);
    File::new(id, npages, pte::geometry().pmd_size())
        .map(Arc::new)
        .with_context(|| format!("file of {npages} pages"))
}

/// An address space torn down when the test is done with it (or fails).
fn new_mm() -> Result<MmGuard, TestError> {
    MmGuard::new().context("Mm::new")
}

fn page() -> u64 {
    pte::geometry().page_size()
}

fn mm_fault_read_write() -> TestResult {
    let before = frame::free_count();
    {
        let file = new_file(32)?;
        let mm = new_mm()?;
        mm.mmap(BASE, file.size(), &file, 0, true)?;
        let touched = file.size() / page();
        {
            let _a = activate(&mm);
            for i in 0..touched {
                let off = i * page() + 8;
                let v = load_u64(BASE + off).context("read")?;
                check!(v == pattern(file.id, off), "read {off:#x}: {v:#x}");
            }
            let f = mm.faults.load(Ordering::Relaxed);
            check!(f == touched, "{f} faults for {touched} pages touched");
            for i in 0..touched {
                load_u64(BASE + i * page())?;
            }
            let f2 = mm.faults.load(Ordering::Relaxed);
            check!(f2 == touched, "re-reading mapped pages faulted ({f2} faults)");
            store_u64(BASE + 0x18, 0x1234_5678).context("write")?;
            let v = load_u64(BASE + 0x18)?;
            check!(v == 0x1234_5678, "read back {v:#x} after write");
        }
        let pa = file.phys(0x18).ok_or("file page 0 missing")?;
        // SAFETY: the file's frame, alive while `file` is.
        let v = unsafe { (crate::arch::phys_to_virt(pa) as *const u64).read_volatile() };
        check!(v == 0x1234_5678, "the write did not reach the file's frame ({v:#x})");
        mm.destroy();
    }
    let after = frame::free_count();
    check!(after == before, "leaked {} frames", before as i64 - after as i64);
    Ok(())
}
ktest!(mm_fault_read_write);

fn mm_shared_between_mms() -> TestResult {
    let file = new_file(4)?;
    let (a, b) = (new_mm()?, new_mm()?);
    a.mmap(BASE, file.size(), &file, 0, true)?;
    b.mmap(BASE + (64 << 20), file.size(), &file, 0, true)?;
    {
        let _g = activate(&a);
        store_u64(BASE + 0x2000, 0xabcd)?;
    }
    let v = {
        let _g = activate(&b);
        load_u64(BASE + (64 << 20) + 0x2000)?
    };
    a.destroy();
    b.destroy();
    check!(v == 0xabcd, "mm B read {v:#x}, mm A wrote 0xabcd");
    Ok(())
}
ktest!(mm_shared_between_mms);

fn mm_all_cpus_share_file() -> TestResult {
    let before = frame::free_count();
    let n = smp::nr_online();
    // One base page per CPU after a first untouched one. Sized from the CPU count and the
    // base page: with 8 CPUs and 64K pages (hash) a fixed 8-frame file ended at CPU 7's slot.
    let slots_end = (n as u64 + 1) * page();
    let file = new_file(slots_end.div_ceil(FRAME_SIZE) as usize)?;
    let arrived = AtomicUsize::new(0);
    // CPUs whose store landed: the others' slots are not checked, so one CPU's failure is
    // reported once, not again by every reader that found its slot unwritten.
    let stored = AtomicU64::new(0);
    let errors = crate::sync::Mutex::new(Vec::<String>::new());
    smp::on_each_cpu(&|cpu| {
        let mut counted = false;
        let r = (|| -> TestResult {
            let mm = new_mm()?;
            let base = BASE + cpu as u64 * (1 << 30);
            mm.mmap(base, file.size(), &file, 0, true)?;
            let _g = activate(&mm);
            let slot = |c: usize| base + page() + c as u64 * page();
            let st = store_u64(slot(cpu), 0xc0de_0000 + cpu as u64)
                .with_context(|| format!("cpu {cpu}: store"));
            if st.is_ok() {
                stored.fetch_or(1 << cpu, Ordering::AcqRel);
            }
            arrived.fetch_add(1, Ordering::AcqRel);
            counted = true;
            st?;
            let t0 = timer::now();
            while arrived.load(Ordering::Acquire) < n {
                if timer::tb_to_us(timer::now() - t0) > 5_000_000 {
                    return Err(format!("cpu {cpu}: others did not arrive").into());
                }
                crate::arch::smp::relax();
            }
            let ok = stored.load(Ordering::Acquire);
            for c in (0..n).filter(|c| ok & (1 << c) != 0) {
                let v = load_u64(slot(c)).with_context(|| format!("cpu {cpu}"))?;
                if v != 0xc0de_0000 + c as u64 {
                    return Err(format!("cpu {cpu} sees {v:#x} from cpu {c}").into());
                }
            }
            Ok(())
        })();
        if !counted {
            arrived.fetch_add(1, Ordering::AcqRel);
        }
        if let Err(e) = r {
            errors.lock().push(e.message().into());
        }
    });
    drop(file);
    let errs = errors.lock();
    check!(errs.is_empty(), "{}", errs.join("; "));
    check!(frame::free_count() == before, "frames leaked across {n} CPUs' address spaces");
    Ok(())
}
ktest!(mm_all_cpus_share_file);

fn pte_frag_per_page() -> TestResult {
    let file = new_file(1)?;
    let mm = new_mm()?;
    let pmd = pte::geometry().pmd_size();
    // 16 tables per page (256 under radix64), and one more.
    let per_page = crate::mm::mm_types::pte_frag().frags_per_page;
    let n = per_page as u64 + 1;
    for i in 0..n {
        mm.mmap(BASE + i * pmd, file.size(), &file, 0, false)?;
    }
    let mut tables = Vec::new();
    {
        let _g = activate(&mm);
        for i in 0..n {
            load_u64(BASE + i * pmd)?;
            let (slot, level) =
                mm.lookup_slot(BASE + i * pmd).ok_or("no translation after fault")?;
            check!(level == Level::Pte, "expected a PTE, got a {level:?} leaf");
            tables.push(page_of(slot.pa()));
        }
    }
    let first = tables[0];
    let same = tables.iter().filter(|&&p| p == first).count();
    let refc = frame::desc(first).pt_frag_refcount.load(Ordering::Acquire);
    mm.destroy();
    check!(
        same == per_page,
        "{same} of the first PTE tables share page {first:#x}, expected {per_page}"
    );
    check!(tables[per_page] != first, "table {} is in the full page {first:#x}", per_page + 1);
    check!(refc == per_page as u32, "pt_frag_refcount {refc} with {per_page} live tables");
    Ok(())
}
ktest!(pte_frag_per_page);

fn mm_one_translation_per_page() -> TestResult {
    // One fault maps a whole base page of the mode (4K radix, 64K radix64 and hash): a load
    // at the page's last word then needs no fault and reads the file's bytes there. Under
    // radix64 this is the check that QEMU's walker gives a PTE-level leaf of a 5-bit table
    // a 64K page (target/ppc/mmu-radix64.c: each level takes its NLS bits off the page
    // size, so 52 - 13 - 9 - 9 - 5 = 16 bits are left for the page offset); with a 4K page
    // the last word would come from the wrong place in the frame.
    let file = new_file(2)?;
    let mm = new_mm()?;
    mm.mmap(BASE, file.size(), &file, 0, false)?;
    let _a = activate(&mm);
    let v = load_u64(BASE + 8)?;
    check!(v == pattern(file.id, 8), "first word read {v:#x}");
    let f = mm.faults.load(Ordering::Relaxed);
    let last = page() - 8;
    let v = load_u64(BASE + last)?;
    check!(
        v == pattern(file.id, last),
        "word {last:#x} read {v:#x}, file has {:#x}",
        pattern(file.id, last)
    );
    let f2 = mm.faults.load(Ordering::Relaxed);
    check!(
        f2 == f,
        "the page's last word faulted ({} faults): pages are smaller than {:#x}",
        f2 - f,
        page()
    );
    let v = load_u64(BASE + page() + 8)?;
    check!(v == pattern(file.id, page() + 8), "next page read {v:#x}");
    let f3 = mm.faults.load(Ordering::Relaxed);
    check!(f3 == f + 1, "the next page took {} faults, not 1", f3 - f);
    Ok(())
}
ktest!(mm_one_translation_per_page);

fn hardware_walks_our_tables() -> TestResult {
    if !crate::arch::mmu::radix_enabled() {
        return hash_hardware_uses_the_hpt();
    }
    let file = new_file(2)?;
    let mm = new_mm()?;
    mm.mmap(BASE, file.size(), &file, 0, true)?;
    let _g = activate(&mm);
    let v0 = load_u64(BASE)?;
    check!(v0 == pattern(file.id, 0), "first read {v0:#x}");
    // Point the PTE at file page 1 behind the fault handler's back: only a hardware
    // walk of this very table can make the next load return page 1's contents.
    let (slot, _) = mm.lookup_slot(BASE).ok_or("no PTE")?;
    let other = file.phys(FRAME_SIZE).ok_or("no page 1")?;
    {
        let ptl = mm.ptl.lock();
        slot.set(pte::mk_leaf(other, true), &*ptl);
    }
    tlb::flush_all_cpus(mm.pid);
    let v1 = load_u64(BASE)?;
    check!(v1 == pattern(file.id, FRAME_SIZE), "after retargeting the PTE read {v1:#x}");
    // Clear it: the access must fault (and be refilled from the VMA).
    let faults = mm.faults.load(Ordering::Relaxed);
    {
        let ptl = mm.ptl.lock();
        slot.set(0, &*ptl);
    }
    tlb::flush_all_cpus(mm.pid);
    let v2 = load_u64(BASE)?;
    let f2 = mm.faults.load(Ordering::Relaxed);
    check!(f2 == faults + 1, "a cleared PTE did not raise a storage interrupt");
    check!(v2 == pattern(file.id, 0), "refilled PTE read {v2:#x}");
    Ok(())
}
ktest!(hardware_walks_our_tables);

/// Hash: the hardware walks the hashed page table, which only our hcalls fill. Check that
/// the slot recorded in the PTE fragment holds the right HPTE (H_READ), that removing that
/// HPTE behind the fault handler's back makes the next access fault, and that munmap
/// removes the HPTE through the recorded slot.
fn hash_hardware_uses_the_hpt() -> TestResult {
    use crate::arch::mmu::hash;
    let file = new_file(2)?;
    let mm = new_mm()?;
    mm.mmap(BASE, file.size(), &file, 0, true)?;
    let seg = hash::user_segment(mm.pid, BASE);
    let slot_of = |mm: &Mm| -> Result<hash::Slot, TestError> {
        let leaf = mm.lookup_leaf(BASE).ok_or("no leaf after the fault")?;
        let word = pte::slot_info(leaf.table, pte::geometry().index(Level::Pte, BASE));
        Ok(hash::Slot::decode(word.load(core::sync::atomic::Ordering::Relaxed))
            .ok_or("no slot recorded")?)
    };
    {
        let _g = activate(&mm);
        load_u64(BASE)?;
    }
    let slot = slot_of(&mm)?;
    let (v, r) = hash::read(slot.ptex);
    check!(
        hash::translates(v, seg, BASE),
        "H_READ({:#x}) = {v:#x}: not {BASE:#x}'s HPTE",
        slot.ptex
    );
    let want = file.phys(0).ok_or("no page 0")?;
    check!(hash::hpte_pa(r) == want, "HPTE maps {:#x}, file page is {want:#x}", hash::hpte_pa(r));
    hash::remove(seg, BASE, slot)?;
    tlb::flush_all_cpus(mm.pid);
    let faults = mm.faults.load(Ordering::Relaxed);
    {
        let _g = activate(&mm);
        let v = load_u64(BASE)?;
        check!(v == pattern(file.id, 0), "re-read {v:#x}");
    }
    let f = mm.faults.load(Ordering::Relaxed);
    check!(f == faults + 1, "removing the HPTE did not make the access fault");
    // H_PROTECT the HPTE read-only: a store must fault and be upgraded in place.
    let slot = slot_of(&mm)?;
    hash::protect(seg, BASE, slot, hash::PP_RO)?;
    tlb::flush_all_cpus(mm.pid);
    {
        let _g = activate(&mm);
        store_u64(BASE + 8, 0x77).context("store after H_PROTECT")?;
    }
    let f3 = mm.faults.load(Ordering::Relaxed);
    check!(f3 == f + 1, "a store to a read-only HPTE did not fault");
    let (_, r) = hash::read(slot.ptex);
    check!(r & 3 == hash::PP_RW, "HPTE protection {:#x} after the upgrade", r & 3);
    check!(mm.munmap(BASE), "munmap found no VMA");
    let (v, _) = hash::read(slot.ptex);
    check!(!hash::translates(v, seg, BASE), "munmap left the HPTE at {:#x}", slot.ptex);
    Ok(())
}

fn fault_outside_vma_is_an_error() -> TestResult {
    let mm = new_mm()?;
    let r = {
        let _g = activate(&mm);
        load_u64(BASE + 0x1234_0000)
    };
    mm.destroy();
    match r {
        Ok(v) => Err(format!("load outside any VMA returned {v:#x}").into()),
        Err(e) => {
            check!(e.vector == 0x300, "vector {:#x}, expected a data storage interrupt", e.vector);
            Ok(())
        }
    }
}
ktest!(fault_outside_vma_is_an_error);

fn huge_pmd_leaf() -> TestResult {
    let g = pte::geometry();
    let pages = (g.pmd_size() / FRAME_SIZE) as usize;
    let file = new_file(pages)?;
    let huge = file.make_huge(0).context("huge frame")?;
    let mm = new_mm()?;
    mm.mmap(BASE, file.size(), &file, 0, false)?;
    let _g = activate(&mm);
    let mut off = 0;
    while off < g.pmd_size() {
        let v = load_u64(BASE + off)?;
        check!(v == pattern(file.id, off), "huge read at {off:#x}: {v:#x}");
        off += g.page_size() * 7 + 8;
    }
    // Radix: one fault maps the whole PMD. Hash: one fault per 64K subpage touched, each
    // inserting an HPTE for that subpage (Linux hash THP does the same).
    let touched = {
        let mut pages = Vec::new();
        let mut off = 0;
        while off < g.pmd_size() {
            let p = off >> 16;
            if !pages.contains(&p) {
                pages.push(p);
            }
            off += g.page_size() * 7 + 8;
        }
        pages.len() as u64
    };
    let want = if crate::arch::mmu::radix_enabled() { 1 } else { touched };
    let f = mm.faults.load(Ordering::Relaxed);
    check!(f == want, "{f} faults to map a huge PMD leaf, expected {want}");
    let (slot, level) = mm.lookup_slot(BASE).ok_or("no translation")?;
    check!(level == Level::Pmd, "mapped by a {level:?} entry, expected a PMD leaf");
    // A live entry of this mm.
    let e = slot.get();
    check!(pte::target(e) == huge, "PMD leaf maps {:#x}, huge frame is {huge:#x}", pte::target(e));
    Ok(())
}
ktest!(huge_pmd_leaf);

fn unmap_is_seen_by_every_cpu() -> TestResult {
    // Readers on the other CPUs load X in a loop (so their TLBs hold it); CPU 0 unmaps X and
    // then raises a flag. A reader that sees the flag must fault on X: had munmap returned
    // before its TLB entry was gone, the load would still succeed.
    let file = new_file(1)?;
    let mm = new_mm()?;
    let x = BASE + 0x3000;
    mm.mmap(BASE, file.size(), &file, 0, false)?;
    let n = smp::nr_online();
    let reads: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let unmapped = AtomicU32::new(0);
    let bad = crate::sync::Mutex::new(Vec::<String>::new());
    smp::on_each_cpu(&|cpu| {
        let _g = activate(&mm);
        if cpu == 0 {
            let t0 = timer::now();
            while (1..n).any(|c| reads[c].load(Ordering::Acquire) < 1000) {
                if timer::tb_to_us(timer::now() - t0) > 5_000_000 {
                    bad.lock().push("readers did not start".into());
                    break;
                }
                crate::arch::smp::relax();
            }
            mm.munmap(BASE);
            unmapped.store(1, Ordering::Release);
            if let Ok(v) = load_u64(x) {
                bad.lock().push(format!("cpu 0 read {v:#x} after munmap returned"));
            }
        } else {
            // A fault here is fine only once munmap has started; the check that matters is
            // the load after the flag.
            while unmapped.load(Ordering::Acquire) == 0 && load_u64(x).is_ok() {
                reads[cpu].fetch_add(1, Ordering::AcqRel);
            }
            while unmapped.load(Ordering::Acquire) == 0 {
                crate::arch::smp::relax();
            }
            if let Ok(v) = load_u64(x) {
                bad.lock().push(format!("cpu {cpu} read {v:#x} after munmap returned"));
            }
        }
    });
    mm.destroy();
    let bad = bad.lock();
    check!(bad.is_empty(), "{}", bad.join("; "));
    let total: u64 = reads.iter().map(|r| r.load(Ordering::Relaxed)).sum();
    check!(n == 1 || total >= 1000 * (n as u64 - 1), "readers made only {total} reads");
    Ok(())
}
ktest!(unmap_is_seen_by_every_cpu);

/// Iterations of the fault figure's reference loop.
const REFERENCE_ITERS: u64 = 1 << 20;

/// A fault's time in units of the reference loop's iteration, on this CPU: 16 blocks of
/// faults, each followed by a sixteenth of the reference loop, so that host load coming and
/// going during the test falls on both alike.
fn fault_ref_units(file: &Arc<File>, pages: u64) -> Result<f64, TestError> {
    const BLOCKS: u64 = 16;
    let mm = new_mm()?;
    mm.mmap(BASE, file.size(), file, 0, false)?;
    let (mut faults, mut reference) = (0, 0);
    {
        let _g = activate(&mm);
        for b in 0..BLOCKS {
            let t0 = timer::now();
            for i in b * pages / BLOCKS..(b + 1) * pages / BLOCKS {
                load_u64(BASE + i * page())?;
            }
            faults += timer::now() - t0;
            reference += reference_loop(REFERENCE_ITERS / BLOCKS);
        }
    }
    mm.destroy();
    let per_iter = reference as f64 / REFERENCE_ITERS as f64;
    Ok(faults as f64 / pages as f64 / per_iter.max(f64::MIN_POSITIVE))
}

fn figures_fault_rate() -> TestResult {
    // Single CPU, then every CPU at once, each faulting its own address space; then the
    // single CPU against the in-boot reference loop.
    let pages_per_cpu = 4096u64;
    let file = new_file(((pages_per_cpu * page()) / FRAME_SIZE) as usize)?;
    // Returns (start, end) timebase of the fault loop and the page-table frames it used.
    let run = |cpu: usize| -> Result<(u64, u64, u64), TestError> {
        let mm = new_mm()?;
        let base = BASE + cpu as u64 * (1 << 32);
        mm.mmap(base, file.size(), &file, 0, false)?;
        let before = frame::free_count();
        let t0 = timer::now();
        {
            let _g = activate(&mm);
            for i in 0..pages_per_cpu {
                load_u64(base + i * page())?;
            }
        }
        let t1 = timer::now();
        let pt_frames = (before - frame::free_count()) as u64;
        let faults = mm.faults.load(Ordering::Relaxed);
        mm.destroy();
        if faults != pages_per_cpu {
            return Err(format!("{faults} faults for {pages_per_cpu} pages").into());
        }
        Ok((t0, t1, pt_frames))
    };
    let (s1, e1, pt_frames) = run(0)?;
    let dt1 = e1 - s1;
    let fault_ref_units = fault_ref_units(&file, pages_per_cpu)?;
    // All CPUs at once: throughput over the span from the first loop's start to the last
    // loop's end (address-space set-up and teardown excluded, as for the single CPU).
    let n = smp::nr_online();
    let total = AtomicU64::new(0);
    let first = AtomicU64::new(u64::MAX);
    let last = AtomicU64::new(0);
    let errs = crate::sync::Mutex::new(Vec::<String>::new());
    smp::on_each_cpu(&|cpu| match run(cpu) {
        Ok((s, e, _)) => {
            total.fetch_add(pages_per_cpu, Ordering::Relaxed);
            first.fetch_min(s, Ordering::Relaxed);
            last.fetch_max(e, Ordering::Relaxed);
        }
        Err(e) => errs.lock().push(e.message().into()),
    });
    let dtn = last.load(Ordering::Relaxed).saturating_sub(first.load(Ordering::Relaxed));
    check!(errs.lock().is_empty(), "{}", errs.lock().join("; "));
    let rate = |faults: u64, dt: u64| faults * timer::tb_freq() / dt.max(1);
    let r1 = rate(pages_per_cpu, dt1);
    let rn = rate(total.load(Ordering::Relaxed), dtn);
    println!(
        "figure: mmu={} faults_per_s_1cpu={} fault_ref_units={:.1} faults_per_s_all{}cpu={} pt_frames_per_1000_pages={:.2} (page {} KiB, cpu {})",
        crate::arch::mmu::mode().name(),
        r1,
        fault_ref_units,
        n,
        rn,
        pt_frames as f64 * 1000.0 / pages_per_cpu as f64,
        page() >> 10,
        paca::cpu_id()
    );
    Ok(())
}
ktest!(figures_fault_rate);
