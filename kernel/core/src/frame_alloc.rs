//! Physical frame allocator: 64 KiB frames tracked in a caller-provided bitmap.
//!
//! Invariant: a bit is set if and only if its frame is free, `free` always equals the number
//! of set bits, and bits past `nframes` stay clear so no scan can hand out an unmanaged
//! frame. The LIFO cache of recently freed frames is only a hint: every entry is checked
//! against the bitmap before it is handed out, so a stale entry is harmless.
//!
//! Recently freed frames are reused first (like Linux's per-CPU page lists) so that a freed
//! page-table page is handed out again while any dangling walker may still read it; the
//! poison checks of section 5 of DESIGN.md depend on that order.

use core::fmt;

/// log2 of the frame size (`PAGE_SHIFT` on book3s64 with 64K pages).
pub const FRAME_SHIFT: u32 = 16;
/// Size of one frame in bytes.
pub const FRAME_SIZE: u64 = 1 << FRAME_SHIFT;

/// How many recently freed frames are remembered for LIFO reuse.
const RECENT_LEN: usize = 64;

/// Why an allocation or a free failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// No free frame (or no free run of the requested size and alignment) is left.
    Exhausted,
    /// The frame at this address is already free.
    DoubleFree(u64),
    /// The address is outside the managed range.
    NotManaged(u64),
    /// The address is not 64 KiB aligned.
    Misaligned(u64),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::Exhausted => write!(f, "out of physical frames"),
            FrameError::DoubleFree(a) => write!(f, "double free of frame {a:#x}"),
            FrameError::NotManaged(a) => {
                write!(f, "address {a:#x} is not a frame managed by this allocator")
            }
            FrameError::Misaligned(a) => {
                write!(f, "address {a:#x} is not aligned to a {FRAME_SIZE:#x}-byte frame")
            }
        }
    }
}

/// Allocator of the frames `[base, base + nframes * FRAME_SIZE)`.
pub struct FrameAllocator<'a> {
    /// One bit per frame, set = free; exactly `bitmap_words(nframes)` words.
    bitmap: &'a mut [u64],
    base: u64,
    nframes: usize,
    free: usize,
    /// Word index where the next bitmap scan starts (next fit).
    next_word: usize,
    /// Ring of recently freed frame indices; `recent_top` is where the next push goes.
    recent: [usize; RECENT_LEN],
    recent_top: usize,
    recent_len: usize,
}

impl<'a> FrameAllocator<'a> {
    /// Manages frames `[base, base + nframes * FRAME_SIZE)`; every frame starts *used* (not
    /// allocatable) until [`add_free_range`](Self::add_free_range) says otherwise.
    ///
    /// Panics if `bitmap` is shorter than [`bitmap_words(nframes)`](Self::bitmap_words), if
    /// `base` is not frame aligned, or if the range does not fit in the address space.
    pub fn new(bitmap: &'a mut [u64], base: u64, nframes: usize) -> Self {
        let words = Self::bitmap_words(nframes);
        assert!(
            bitmap.len() >= words,
            "frame bitmap has {} words, {nframes} frames need {words}",
            bitmap.len()
        );
        assert!(
            base.is_multiple_of(FRAME_SIZE),
            "frame allocator base {base:#x} is not frame aligned"
        );
        let size = (nframes as u64).checked_mul(FRAME_SIZE).and_then(|s| base.checked_add(s));
        assert!(size.is_some(), "frame range at {base:#x} overflows the address space");
        let bitmap = &mut bitmap[..words];
        bitmap.fill(0);
        Self {
            bitmap,
            base,
            nframes,
            free: 0,
            next_word: 0,
            recent: [0; RECENT_LEN],
            recent_top: 0,
            recent_len: 0,
        }
    }

    /// Number of `u64` bitmap words needed to manage `nframes` frames.
    pub const fn bitmap_words(nframes: usize) -> usize {
        nframes.div_ceil(64)
    }

    /// Frames lying entirely inside `[start, end)` become free; the range is clipped to the
    /// managed range. Frames that were already free stay free.
    pub fn add_free_range(&mut self, start: u64, end: u64) {
        let (start, end) = self.clip(start, end);
        let first = (start - self.base).div_ceil(FRAME_SIZE) as usize;
        let last = ((end - self.base) / FRAME_SIZE) as usize;
        if first < last {
            self.set_run(first, last, true);
        }
    }

    /// Frames overlapping `[start, end)` become used; the range is clipped to the managed
    /// range. Use it to carve out the kernel image, firmware and RTAS areas.
    pub fn reserve_range(&mut self, start: u64, end: u64) {
        let (start, end) = self.clip(start, end);
        let first = ((start - self.base) / FRAME_SIZE) as usize;
        let last = (end - self.base).div_ceil(FRAME_SIZE) as usize;
        if first < last {
            self.set_run(first, last, false);
        }
    }

    /// Allocates one frame and returns its physical address. The most recently freed frame
    /// comes first; otherwise the bitmap is scanned next-fit.
    pub fn alloc(&mut self) -> Result<u64, FrameError> {
        if self.free == 0 {
            return Err(FrameError::Exhausted);
        }
        while self.recent_len > 0 {
            self.recent_top = (self.recent_top + RECENT_LEN - 1) % RECENT_LEN;
            self.recent_len -= 1;
            let idx = self.recent[self.recent_top];
            if self.bit(idx) {
                self.take(idx);
                return Ok(self.addr_of(idx));
            }
        }
        let words = self.bitmap.len();
        for i in 0..words {
            let w = (self.next_word + i) % words;
            let bits = self.bitmap[w];
            if bits != 0 {
                let idx = w * 64 + bits.trailing_zeros() as usize;
                self.next_word = w;
                self.take(idx);
                return Ok(self.addr_of(idx));
            }
        }
        // `free > 0` promised a set bit; reaching here means the invariant broke.
        unreachable!("frame allocator: free count {} but empty bitmap", self.free);
    }

    /// Allocates `n` contiguous frames whose first physical frame number
    /// (`addr >> FRAME_SHIFT`) is a multiple of `align_frames` (0 is taken as 1), and returns
    /// the address of the first. Does not consult the LIFO cache.
    ///
    /// Panics if `n` is 0.
    pub fn alloc_contig(&mut self, n: usize, align_frames: usize) -> Result<u64, FrameError> {
        assert!(n > 0, "alloc_contig of zero frames");
        let align = align_frames.max(1) as u64;
        if n > self.free {
            return Err(FrameError::Exhausted);
        }
        let base_pfn = self.base >> FRAME_SHIFT;
        // Index of the first frame at or after `pfn` whose PFN is aligned.
        let aligned_index = |pfn: u64| {
            pfn.checked_next_multiple_of(align)
                .map(|p| usize::try_from(p - base_pfn).unwrap_or(usize::MAX))
        };
        let mut start = aligned_index(base_pfn);
        while let Some(first) = start {
            if first.checked_add(n).is_none_or(|end| end > self.nframes) {
                break;
            }
            match (first..first + n).rev().find(|&i| !self.bit(i)) {
                None => {
                    self.set_run(first, first + n, false);
                    return Ok(self.addr_of(first));
                }
                // No run starting at or before `used` can work; jump past it.
                Some(used) => start = aligned_index(base_pfn + used as u64 + 1),
            }
        }
        Err(FrameError::Exhausted)
    }

    /// Returns the frame at `addr` to the allocator; it will be the next one `alloc` hands
    /// out.
    pub fn free(&mut self, addr: u64) -> Result<(), FrameError> {
        let idx = self.index_of(addr)?;
        if self.bit(idx) {
            return Err(FrameError::DoubleFree(addr));
        }
        self.bitmap[idx / 64] |= 1 << (idx % 64);
        self.free += 1;
        self.recent[self.recent_top] = idx;
        self.recent_top = (self.recent_top + 1) % RECENT_LEN;
        self.recent_len = (self.recent_len + 1).min(RECENT_LEN);
        Ok(())
    }

    /// True if `addr` lies in a managed frame that is free.
    pub fn is_free(&self, addr: u64) -> bool {
        match self.index_of(addr & !(FRAME_SIZE - 1)) {
            Ok(idx) => self.bit(idx),
            Err(_) => false,
        }
    }

    /// Number of free frames, in O(1).
    pub fn free_count(&self) -> usize {
        self.free
    }

    /// Number of managed frames, free or not.
    pub fn total_count(&self) -> usize {
        self.nframes
    }

    /// One past the last managed byte.
    fn limit(&self) -> u64 {
        // Cannot overflow: checked in `new`.
        self.base + self.nframes as u64 * FRAME_SIZE
    }

    /// `[start, end)` intersected with the managed range, as a possibly empty range.
    fn clip(&self, start: u64, end: u64) -> (u64, u64) {
        let start = start.clamp(self.base, self.limit());
        let end = end.clamp(start, self.limit());
        (start, end)
    }

    fn index_of(&self, addr: u64) -> Result<usize, FrameError> {
        if addr < self.base || addr >= self.limit() {
            return Err(FrameError::NotManaged(addr));
        }
        if !addr.is_multiple_of(FRAME_SIZE) {
            return Err(FrameError::Misaligned(addr));
        }
        Ok(((addr - self.base) >> FRAME_SHIFT) as usize)
    }

    fn addr_of(&self, idx: usize) -> u64 {
        self.base + ((idx as u64) << FRAME_SHIFT)
    }

    fn bit(&self, idx: usize) -> bool {
        self.bitmap[idx / 64] & (1 << (idx % 64)) != 0
    }

    /// Marks the free frame `idx` used.
    fn take(&mut self, idx: usize) {
        debug_assert!(self.bit(idx));
        self.bitmap[idx / 64] &= !(1 << (idx % 64));
        self.free -= 1;
    }

    /// Sets frames `[first, last)` free or used, word by word, keeping `free` exact.
    fn set_run(&mut self, first: usize, last: usize, free: bool) {
        let mut i = first;
        while i < last {
            let bit = i % 64;
            let len = (64 - bit).min(last - i);
            let mask = if len == 64 { u64::MAX } else { ((1u64 << len) - 1) << bit };
            let word = &mut self.bitmap[i / 64];
            let before = word.count_ones() as usize;
            if free {
                *word |= mask;
            } else {
                *word &= !mask;
            }
            let after = word.count_ones() as usize;
            self.free = self.free + after - before;
            i += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x100_0000;

    fn frame(i: u64) -> u64 {
        BASE + i * FRAME_SIZE
    }

    /// Counts free frames the slow way, to check the O(1) counter.
    fn count_bits(a: &FrameAllocator<'_>) -> usize {
        (0..a.total_count() as u64).filter(|&i| a.is_free(frame(i))).count()
    }

    #[test]
    fn bitmap_words_rounds_up() {
        assert_eq!(FrameAllocator::bitmap_words(0), 0);
        assert_eq!(FrameAllocator::bitmap_words(1), 1);
        assert_eq!(FrameAllocator::bitmap_words(64), 1);
        assert_eq!(FrameAllocator::bitmap_words(65), 2);
    }

    #[test]
    fn starts_all_used_even_with_dirty_bitmap() {
        let mut bm = [u64::MAX; 2];
        let mut a = FrameAllocator::new(&mut bm, BASE, 100);
        assert_eq!(a.free_count(), 0);
        assert_eq!(a.total_count(), 100);
        assert_eq!(count_bits(&a), 0);
        assert_eq!(a.alloc(), Err(FrameError::Exhausted));
    }

    #[test]
    #[should_panic(expected = "need")]
    fn new_panics_on_small_bitmap() {
        let mut bm = [0u64; 1];
        let _ = FrameAllocator::new(&mut bm, BASE, 65);
    }

    #[test]
    #[should_panic(expected = "not frame aligned")]
    fn new_panics_on_misaligned_base() {
        let mut bm = [0u64; 1];
        let _ = FrameAllocator::new(&mut bm, BASE + 0x1000, 8);
    }

    #[test]
    fn alloc_free_round_trip() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, BASE, 8);
        a.add_free_range(frame(0), frame(8));
        assert_eq!(a.free_count(), 8);
        let f = a.alloc().unwrap();
        assert_eq!(f % FRAME_SIZE, 0);
        assert!((frame(0)..frame(8)).contains(&f));
        assert!(!a.is_free(f));
        assert_eq!(a.free_count(), 7);
        a.free(f).unwrap();
        assert!(a.is_free(f));
        assert_eq!(a.free_count(), 8);
    }

    #[test]
    fn exhaustion_hands_out_each_frame_once() {
        let mut bm = [0u64; 2];
        let mut a = FrameAllocator::new(&mut bm, BASE, 70);
        a.add_free_range(frame(0), frame(70));
        let mut seen = [false; 70];
        for _ in 0..70 {
            let f = a.alloc().unwrap();
            assert!((frame(0)..frame(70)).contains(&f), "bogus frame {f:#x}");
            let i = ((f - BASE) / FRAME_SIZE) as usize;
            assert!(!seen[i], "frame {f:#x} handed out twice");
            seen[i] = true;
        }
        assert_eq!(a.free_count(), 0);
        for _ in 0..3 {
            assert_eq!(a.alloc(), Err(FrameError::Exhausted));
        }
        assert_eq!(a.alloc_contig(1, 1), Err(FrameError::Exhausted));
    }

    #[test]
    fn double_free_detected() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, BASE, 4);
        a.add_free_range(frame(0), frame(4));
        let f = a.alloc().unwrap();
        a.free(f).unwrap();
        assert_eq!(a.free(f), Err(FrameError::DoubleFree(f)));
        assert_eq!(a.free_count(), 4);
        // A frame that was never allocated is free too.
        assert_eq!(a.free(frame(3)), Err(FrameError::DoubleFree(frame(3))));
    }

    #[test]
    fn out_of_range_and_misaligned_detected() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, BASE, 4);
        assert_eq!(a.free(BASE - FRAME_SIZE), Err(FrameError::NotManaged(BASE - FRAME_SIZE)));
        assert_eq!(a.free(frame(4)), Err(FrameError::NotManaged(frame(4))));
        assert_eq!(a.free(u64::MAX), Err(FrameError::NotManaged(u64::MAX)));
        assert_eq!(a.free(frame(1) + 8), Err(FrameError::Misaligned(frame(1) + 8)));
        assert_eq!(a.free_count(), 0);
        assert!(!a.is_free(frame(4)));
        assert!(!a.is_free(0));
    }

    #[test]
    fn error_messages_name_the_address() {
        use std::string::ToString;
        assert_eq!(FrameError::DoubleFree(0x1230000).to_string(), "double free of frame 0x1230000");
        assert!(FrameError::NotManaged(0xdead0000).to_string().contains("0xdead0000"));
        assert!(FrameError::Misaligned(0x10008).to_string().contains("0x10008"));
        assert_eq!(FrameError::Exhausted.to_string(), "out of physical frames");
    }

    #[test]
    fn add_free_range_takes_only_whole_frames_and_clips() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, BASE, 8);
        // Partial frames at both ends are not freed.
        a.add_free_range(frame(1) + 1, frame(5) - 1);
        assert_eq!(a.free_count(), 2);
        assert!(!a.is_free(frame(1)) && a.is_free(frame(2)) && a.is_free(frame(3)));
        assert!(!a.is_free(frame(4)) && !a.is_free(frame(4) + 0x8000));
        // Clipped to the managed range; overlapping frees are idempotent.
        a.add_free_range(0, u64::MAX);
        assert_eq!(a.free_count(), 8);
        a.add_free_range(frame(2), frame(3));
        assert_eq!(a.free_count(), 8);
        // Empty and inverted ranges do nothing.
        a.reserve_range(frame(5), frame(5));
        a.reserve_range(frame(6), frame(5));
        assert_eq!(a.free_count(), 8);
    }

    #[test]
    fn reserve_range_carve_outs_respected() {
        let mut bm = [0u64; 3];
        let mut a = FrameAllocator::new(&mut bm, BASE, 150);
        a.add_free_range(frame(0), frame(150));
        // Any overlap reserves the whole frame.
        a.reserve_range(frame(10) + 5, frame(20) + 1);
        a.reserve_range(frame(60), frame(130));
        a.reserve_range(frame(149), u64::MAX);
        let reserved = |i: u64| (10..=20).contains(&i) || (60..130).contains(&i) || i == 149;
        let expect = (0..150).filter(|&i| !reserved(i)).count();
        assert_eq!(a.free_count(), expect);
        assert_eq!(count_bits(&a), expect);
        for _ in 0..expect {
            let f = a.alloc().unwrap();
            let i = (f - BASE) / FRAME_SIZE;
            assert!(!reserved(i), "reserved frame {i} handed out");
        }
        assert_eq!(a.alloc(), Err(FrameError::Exhausted));
    }

    #[test]
    fn lifo_reuse_of_freed_frames() {
        let mut bm = [0u64; 4];
        let mut a = FrameAllocator::new(&mut bm, BASE, 256);
        a.add_free_range(frame(0), frame(256));
        let f: [u64; 5] = core::array::from_fn(|_| a.alloc().unwrap());
        a.free(f[1]).unwrap();
        a.free(f[3]).unwrap();
        a.free(f[0]).unwrap();
        assert_eq!(a.alloc(), Ok(f[0]));
        assert_eq!(a.alloc(), Ok(f[3]));
        assert_eq!(a.alloc(), Ok(f[1]));
        // Freshly freed beats never-allocated, also right after a scan.
        let g = a.alloc().unwrap();
        a.free(f[4]).unwrap();
        assert_eq!(a.alloc(), Ok(f[4]));
        a.free(g).unwrap();
        assert_eq!(a.alloc(), Ok(g));
    }

    #[test]
    fn lifo_skips_stale_entries() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, BASE, 16);
        a.add_free_range(frame(0), frame(16));
        let x = a.alloc().unwrap();
        let y = a.alloc().unwrap();
        a.free(x).unwrap();
        a.free(y).unwrap();
        // Both remembered frames are taken behind the cache's back.
        a.reserve_range(y, y + FRAME_SIZE);
        assert_eq!(a.alloc_contig(1, 1), Ok(x));
        let z = a.alloc().unwrap();
        assert!(z != x && z != y);
        assert_eq!(a.free_count(), 13);
    }

    #[test]
    fn lifo_ring_overflow_keeps_newest() {
        let n = RECENT_LEN + 20;
        let mut bm = [0u64; 2];
        let mut a = FrameAllocator::new(&mut bm, BASE, n);
        a.add_free_range(frame(0), frame(n as u64));
        for _ in 0..n {
            a.alloc().unwrap();
        }
        for i in 0..n as u64 {
            a.free(frame(i)).unwrap();
        }
        // The newest RECENT_LEN frees come back newest first, then the scan finds the rest.
        for i in (n - RECENT_LEN..n).rev() {
            assert_eq!(a.alloc(), Ok(frame(i as u64)));
        }
        for _ in 0..n - RECENT_LEN {
            let f = a.alloc().unwrap();
            assert!(f < frame((n - RECENT_LEN) as u64));
        }
        assert_eq!(a.alloc(), Err(FrameError::Exhausted));
    }

    #[test]
    fn alloc_contig_alignment() {
        // Base PFN 0x100 is itself 256-aligned; start one frame later to make it interesting.
        let base = BASE + FRAME_SIZE;
        let mut bm = [0u64; 8];
        let mut a = FrameAllocator::new(&mut bm, base, 512);
        a.add_free_range(base, base + 512 * FRAME_SIZE);
        let p = a.alloc_contig(4, 16).unwrap();
        assert_eq!((p >> FRAME_SHIFT) % 16, 0);
        assert!(p >= base);
        for i in 0..4 {
            assert!(!a.is_free(p + i * FRAME_SIZE));
        }
        assert_eq!(a.free_count(), 508);
        // 16M-aligned (256 frames), as for a radix huge PMD... with 64K frames
        let q = a.alloc_contig(256, 256).unwrap();
        assert_eq!(q % (256 * FRAME_SIZE), 0);
        assert_eq!(a.free_count(), 252);
        // The whole aligned 256-frame block is gone now; a second one does not exist.
        assert_eq!(a.alloc_contig(256, 256), Err(FrameError::Exhausted));
        // align 0 means 1.
        let r = a.alloc_contig(3, 0).unwrap();
        assert_eq!(a.free_count(), 249);
        assert!(!a.is_free(r + 2 * FRAME_SIZE));
    }

    #[test]
    fn alloc_contig_skips_holes_and_fails_cleanly() {
        let mut bm = [0u64; 1];
        let mut a = FrameAllocator::new(&mut bm, BASE, 32);
        a.add_free_range(frame(0), frame(32));
        a.reserve_range(frame(3), frame(4));
        a.reserve_range(frame(9), frame(10));
        // The first run of 5 free frames is 4..9.
        assert_eq!(a.alloc_contig(5, 1), Ok(frame(4)));
        // Runs of 6: 10..16 is the first.
        assert_eq!(a.alloc_contig(6, 2), Ok(frame(10)));
        let before = a.free_count();
        assert_eq!(a.alloc_contig(17, 1), Err(FrameError::Exhausted));
        assert_eq!(a.alloc_contig(33, 1), Err(FrameError::Exhausted));
        assert_eq!(a.alloc_contig(usize::MAX, 1), Err(FrameError::Exhausted));
        assert_eq!(a.alloc_contig(1, usize::MAX), Err(FrameError::Exhausted));
        assert_eq!(a.alloc_contig(1, 1 << 40), Err(FrameError::Exhausted));
        assert_eq!(a.free_count(), before);
        assert_eq!(count_bits(&a), before);
    }

    #[test]
    fn counts_stay_consistent() {
        let mut bm = [0u64; 3];
        let mut a = FrameAllocator::new(&mut bm, BASE, 130);
        a.add_free_range(frame(0), frame(130));
        a.reserve_range(frame(64), frame(66));
        let mut held = std::vec::Vec::new();
        for round in 0..200u64 {
            if round % 3 == 2 {
                if let Some(f) = held.pop() {
                    a.free(f).unwrap();
                }
            } else if let Ok(f) = a.alloc() {
                held.push(f);
            }
            assert_eq!(a.free_count(), count_bits(&a));
            assert_eq!(a.free_count() + held.len() + 2, a.total_count());
        }
        let c = a.alloc_contig(4, 4).unwrap();
        assert_eq!(a.free_count(), count_bits(&a));
        for i in 0..4 {
            a.free(c + i * FRAME_SIZE).unwrap();
        }
        assert_eq!(a.free_count() + held.len() + 2, a.total_count());
    }
}
