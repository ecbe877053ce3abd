//! Frame allocator and heap tests against the real, global allocators.

use crate::mm::frame::FreeError;
use crate::mm::{frame, heap};
use crate::{check, ktest};
use alloc::vec::Vec;
use ptfrag_core::frame_alloc::{FrameError, FRAME_SIZE};

ktest! {
fn frame_alloc() -> TestResult {
    let before = frame::free_count();
    let mut got = Vec::new();
    for i in 0..32u64 {
        let pa = frame::alloc().map_err(|e| alloc::format!("alloc {i}: {e}"))?;
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
        frame::free(pa).map_err(|e| alloc::format!("free: {e}"))?;
    }
    check!(frame::free_count() == before, "free count not restored");
    // The most recently freed frame is handed out first (later issues rely on it).
    let again = frame::alloc().map_err(|e| alloc::format!("{e}"))?;
    frame::free(again).map_err(|e| alloc::format!("{e}"))?;
    check!(again == last, "expected LIFO reuse of {last:#x}, got {again:#x}");
    Ok(())
}
}

ktest! {
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
        frame::free(pa).map_err(|e| alloc::format!("free: {e}"))?;
    }
    check!(err == FrameError::Exhausted, "expected Exhausted after {n} frames, got {err:?}");
    check!(n == before, "allocated {n} frames but {before} were free");
    check!(frame::free_count() == before, "free count not restored after exhaustion");
    Ok(())
}
}

ktest! {
fn frame_double_free() -> TestResult {
    let pa = frame::alloc().map_err(|e| alloc::format!("{e}"))?;
    frame::free(pa).map_err(|e| alloc::format!("{e}"))?;
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
}

ktest! {
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
}
