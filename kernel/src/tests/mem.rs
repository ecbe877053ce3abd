//! Frame allocator and heap tests against the real, global allocators.

use crate::arch::smp;
use crate::ktest::{Context, TestResult};
use crate::mm::frame::FreeError;
use crate::mm::{frame, heap};
use crate::{check, ktest};
use alloc::string::String;
use alloc::vec::Vec;
use ptfrag_core::frame_alloc::{FrameError, FRAME_SIZE};
use ptfrag_core::page_desc::PageFlags;

fn frame_alloc() -> TestResult {
    let before = frame::free_count();
    let mut got = Vec::new();
    for i in 0..32u64 {
        let pa = frame::alloc().with_context(|| alloc::format!("alloc {i}"))?;
        check!(pa % FRAME_SIZE == 0, "frame {pa:#x} not 64K aligned");
        check!(!got.contains(&pa), "frame {pa:#x} handed out twice");
        // Each frame must be real, writable memory of its own.
        let va = crate::arch::phys_to_virt(pa) as *mut u64;
        // SAFETY: the frame was just allocated to this test.
        unsafe { va.write_volatile(pa ^ i) };
        got.push(pa);
    }
    for (i, &pa) in got.iter().enumerate() {
        // SAFETY: still owned by this test.
        let v = unsafe { (crate::arch::phys_to_virt(pa) as *const u64).read_volatile() };
        check!(v == pa ^ i as u64, "frame {pa:#x} lost its contents");
    }
    check!(frame::free_count() == before - 32, "free count off after 32 allocations");
    let last = *got.last().unwrap_or(&0);
    for pa in got.drain(..) {
        frame::free(pa).context("free")?;
    }
    check!(frame::free_count() == before, "free count not restored");
    // The most recently freed frame is handed out first (later issues rely on it).
    let again = frame::alloc()?;
    frame::free(again)?;
    check!(again == last, "expected LIFO reuse of {last:#x}, got {again:#x}");
    Ok(())
}
ktest!(frame_alloc);

fn frame_alloc_exhaustion() -> TestResult {
    let before = frame::free_count();
    let mut got = Vec::with_capacity(before + 1);
    let err = loop {
        match frame::alloc() {
            Ok(pa) => got.push(pa),
            Err(e) => break e,
        }
        if got.len() > before {
            break FrameError::NotManaged(0);
        }
    };
    let n = got.len();
    for pa in got.drain(..) {
        frame::free(pa).context("free")?;
    }
    check!(err == FrameError::Exhausted, "expected Exhausted after {n} frames, got {err:?}");
    check!(n == before, "allocated {n} frames but {before} were free");
    check!(frame::free_count() == before, "free count not restored after exhaustion");
    Ok(())
}
ktest!(frame_alloc_exhaustion);

fn frame_double_free() -> TestResult {
    let pa = frame::alloc()?;
    frame::free(pa)?;
    let before = frame::free_count();
    let r = frame::free(pa);
    check!(
        r == Err(FreeError::Frame(FrameError::DoubleFree(pa))),
        "second free of {pa:#x} returned {r:?}"
    );
    check!(frame::free_count() == before, "double free changed the free count");
    let r = frame::free(pa + 8);
    check!(
        r == Err(FreeError::Frame(FrameError::Misaligned(pa + 8))),
        "misaligned free returned {r:?}"
    );
    Ok(())
}
ktest!(frame_double_free);

/// Every CPU allocates and frees frames as fast as it can, holding a few at a time and
/// marking each one as its owner would (PAGE_TABLE). Freed frames are reused first, so a
/// frame another CPU just freed is usually the next one handed out: a descriptor write that
/// the freeing CPU makes after the allocator's lock is released lands on the new owner's
/// frame. Every frame held must keep exactly ALLOCATED|PAGE_TABLE and its owner's mark.
const RACE_ROUNDS: u64 = 20_000;
const RACE_HELD: usize = 4;

fn race_one_cpu(cpu: usize, errors: &crate::sync::Mutex<Vec<String>>) {
    let fail = |what: String| {
        let mut e = errors.lock();
        if e.len() < 4 {
            e.push(alloc::format!("cpu {cpu}: {what}"));
        }
    };
    let mark = |pa: u64| pa ^ ((cpu as u64) << 56);
    let mut held = [0u64; RACE_HELD];
    for round in 0..RACE_ROUNDS + RACE_HELD as u64 {
        let slot = &mut held[round as usize % RACE_HELD];
        if *slot != 0 {
            let pa = core::mem::replace(slot, 0);
            let d = frame::desc(pa);
            let f = d.page_flags();
            if f != PageFlags::ALLOCATED | PageFlags::PAGE_TABLE {
                fail(alloc::format!(
                    "held frame {pa:#x} has flags {f:#x}, expected ALLOCATED|PAGE_TABLE"
                ));
            }
            // SAFETY: the frame is still allocated to this CPU.
            let m = unsafe { (crate::arch::phys_to_virt(pa) as *const u64).read_volatile() };
            if m != mark(pa) {
                fail(alloc::format!("held frame {pa:#x} lost its owner's mark ({m:#x})"));
            }
            d.clear_flag(PageFlags::PAGE_TABLE);
            if let Err(e) = frame::free(pa) {
                fail(alloc::format!("free {pa:#x}: {e}"));
            }
        }
        if round >= RACE_ROUNDS {
            continue;
        }
        let pa = match frame::alloc() {
            Ok(pa) => pa,
            Err(e) => {
                fail(alloc::format!("alloc: {e}"));
                return;
            }
        };
        let d = frame::desc(pa);
        let f = d.page_flags();
        if f != PageFlags::ALLOCATED {
            fail(alloc::format!("frame {pa:#x} handed out with flags {f:#x}, expected ALLOCATED"));
        }
        d.set_flag(PageFlags::PAGE_TABLE);
        // SAFETY: the frame was just allocated to this CPU.
        unsafe { (crate::arch::phys_to_virt(pa) as *mut u64).write_volatile(mark(pa)) };
        *slot = pa;
    }
}

fn frame_flags_survive_concurrent_reuse() -> TestResult {
    let before = frame::free_count();
    let errors = crate::sync::Mutex::new(Vec::new());
    smp::on_each_cpu(&|cpu| race_one_cpu(cpu, &errors));
    let errs = errors.lock();
    check!(
        errs.is_empty(),
        "descriptors clobbered on {} CPUs: {}",
        smp::nr_online(),
        errs.join("; ")
    );
    check!(
        frame::free_count() == before,
        "free count {} after the race, {before} before",
        frame::free_count()
    );
    Ok(())
}
ktest!(frame_flags_survive_concurrent_reuse);

fn heap() -> TestResult {
    let before = heap::used();
    {
        let mut v: Vec<u64> = Vec::new();
        for i in 0..(1u64 << 18) {
            v.push(i * 3);
        }
        check!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 3), "vector contents wrong");
        let b = alloc::boxed::Box::new([7u8; 4096]);
        check!(b.iter().all(|&x| x == 7), "box contents wrong");
        let s = alloc::format!("{}-{}", "heap", 42);
        check!(s == "heap-42", "format! gave {s}");
        check!(heap::used() > before + (1 << 21), "heap usage did not grow");
    }
    check!(heap::used() == before, "heap leaked {} bytes", heap::used() - before);
    Ok(())
}
ktest!(heap);
