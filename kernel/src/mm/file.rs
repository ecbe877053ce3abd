//! A shared "file": a page cache of 64 KiB frames with recognisable contents, mapped into
//! many address spaces. Optionally a PMD-sized range is also held in one huge, physically
//! contiguous frame (what a khugepaged collapse produces). Invariant: `pages` never changes
//! after creation; a huge frame, once installed, replaces its range's pages for new faults;
//! once a collapse has freed a range's small pages (`free_small_pages`), `phys` never hands
//! them out again. A reusable file (`make bench`'s, collapsed again every round) keeps its
//! small pages and its huge copies across collapses instead: its contents never change, so a
//! collapse installs the kept copy rather than copying 2–16 MiB again.

use super::frame;
use super::Mm;
use alloc::sync::Weak;
use alloc::vec::Vec;
use ptfrag_core::frame_alloc::{FrameError, FRAME_SIZE};

/// One mapping of the file (Linux: a VMA on the file's i_mmap tree).
pub struct IMmap {
    pub mm: Weak<Mm>,
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
}

pub struct File {
    pub id: u32,
    /// Every address space mapping this file; the read side is Linux's i_mmap_lock_read.
    pub i_mmap: crate::sync::RwLock<Vec<IMmap>>,
    pages: Vec<u64>,
    /// Huge frames by PMD-sized chunk index (`chunk_size` bytes each), if any.
    huge: crate::sync::Mutex<Vec<Option<u64>>>,
    /// Chunks whose small pages a collapse has freed (they are not ours any more).
    small_freed: crate::sync::Mutex<Vec<bool>>,
    chunk_size: u64,
    /// Reusable: collapses keep the small pages, and `unhuge` keeps the huge copy in `kept`
    /// for the next collapse of the chunk.
    reuse: bool,
    kept: crate::sync::Mutex<Vec<Option<u64>>>,
}

/// The word a fresh file holds at byte offset `off`.
pub fn pattern(file_id: u32, off: u64) -> u64 {
    (0xf11e_u64 << 48) | ((file_id as u64 & 0xff) << 40) | (off >> 3)
}

impl File {
    /// A file of `npages` 64 KiB pages; `chunk_size` is the PMD size of the MMU mode.
    pub fn new(id: u32, npages: usize, chunk_size: u64) -> Result<Self, FrameError> {
        let mut pages = Vec::with_capacity(npages);
        for i in 0..npages {
            let pa = match frame::alloc() {
                Ok(pa) => pa,
                Err(e) => {
                    for pa in pages {
                        let _ = frame::free(pa);
                    }
                    return Err(e);
                }
            };
            let va = crate::arch::phys_to_virt(pa) as *mut u64;
            for w in 0..(FRAME_SIZE / 8) {
                let off = i as u64 * FRAME_SIZE + w * 8;
                // SAFETY: a fresh frame owned by this file.
                unsafe { va.add(w as usize).write(pattern(id, off)) };
            }
            pages.push(pa);
        }
        let chunks = (npages as u64 * FRAME_SIZE).div_ceil(chunk_size) as usize;
        Ok(File {
            id,
            i_mmap: crate::sync::RwLock::new(Vec::new()),
            pages,
            huge: crate::sync::Mutex::new(alloc::vec![None; chunks]),
            small_freed: crate::sync::Mutex::new(alloc::vec![false; chunks]),
            chunk_size,
            reuse: false,
            kept: crate::sync::Mutex::new(alloc::vec![None; chunks]),
        })
    }

    /// A file collapsed again and again (`make bench`): its huge copies are made once, here,
    /// and a collapse neither copies nor frees the small pages, so every round costs the same
    /// and allocates nothing for the file.
    pub fn new_reusable(id: u32, npages: usize, chunk_size: u64) -> Result<Self, FrameError> {
        let mut f = Self::new(id, npages, chunk_size)?;
        f.reuse = true;
        let chunks = f.huge.lock().len() as u64;
        for c in 0..chunks {
            f.make_huge(c * chunk_size)?;
            f.unhuge(c * chunk_size);
        }
        Ok(f)
    }

    pub fn size(&self) -> u64 {
        self.pages.len() as u64 * FRAME_SIZE
    }

    /// Physical address of file byte `off` (the huge frame's copy if one is installed).
    pub fn phys(&self, off: u64) -> Option<u64> {
        if off >= self.size() {
            return None;
        }
        if let Some(h) = self.huge_frame(off) {
            return Some(h + off % self.chunk_size);
        }
        if self.small_freed.lock()[(off / self.chunk_size) as usize] {
            return None;
        }
        Some(self.pages[(off / FRAME_SIZE) as usize] + off % FRAME_SIZE)
    }

    /// The huge frame holding the chunk that contains `off`, if any.
    pub fn huge_frame(&self, off: u64) -> Option<u64> {
        self.huge.lock().get((off / self.chunk_size) as usize).copied().flatten()
    }

    /// Copies the chunk containing `off` into a new huge frame and makes it the page cache's
    /// copy of that range (the first half of a collapse).
    pub fn make_huge(&self, off: u64) -> Result<u64, FrameError> {
        let chunk = off / self.chunk_size;
        let frames = (self.chunk_size / FRAME_SIZE) as usize;
        let kept = self.kept.lock()[chunk as usize].take();
        if let Some(pa) = kept {
            let old = self.huge.lock()[chunk as usize].replace(pa);
            if let Some(old) = old {
                free_huge(old, frames);
            }
            return Ok(pa);
        }
        let pa = frame::alloc_contig(frames, frames)?;
        for i in 0..frames {
            let src = self.pages[chunk as usize * frames + i];
            // SAFETY: both frames are owned (the file's page and the new huge frame) and do
            // not overlap.
            unsafe {
                core::ptr::copy_nonoverlapping(
                    crate::arch::phys_to_virt(src) as *const u8,
                    crate::arch::phys_to_virt(pa + i as u64 * FRAME_SIZE) as *mut u8,
                    FRAME_SIZE as usize,
                )
            };
        }
        if let Some(old) = self.huge.lock()[chunk as usize].replace(pa) {
            free_huge(old, frames);
        }
        Ok(pa)
    }
}

impl File {
    /// Drops the huge copy of the chunk containing `off` (nothing may map it any more): the
    /// next faults map the small pages again, so the range can be collapsed once more.
    pub fn unhuge(&self, off: u64) {
        let frames = (self.chunk_size / FRAME_SIZE) as usize;
        let chunk = (off / self.chunk_size) as usize;
        let huge = self.huge.lock()[chunk].take();
        if let Some(pa) = huge {
            let mut kept = self.kept.lock();
            match &mut kept[chunk] {
                slot @ None if self.reuse => *slot = Some(pa),
                _ => free_huge(pa, frames),
            }
        }
    }
}

fn free_huge(pa: u64, frames: usize) {
    for i in 0..frames as u64 {
        let _ = frame::free(pa + i * FRAME_SIZE);
    }
}

impl File {
    /// The last step of a collapse (Linux `collapse_file` putting the old pages): the small
    /// pages of the chunk containing `off`, unmapped everywhere and replaced by the huge
    /// frame, are poisoned and freed. Freed frames are handed out first, so a translation
    /// that should have been flushed now reads POISON or someone else's data.
    pub fn free_small_pages(&self, off: u64) {
        let chunk = (off / self.chunk_size) as usize;
        if self.reuse || core::mem::replace(&mut self.small_freed.lock()[chunk], true) {
            return;
        }
        let frames = (self.chunk_size / FRAME_SIZE) as usize;
        for &pa in &self.pages[chunk * frames..(chunk + 1) * frames] {
            poison_and_free(pa);
        }
    }
}

fn poison_and_free(pa: u64) {
    // The POISON pattern is one byte repeated (0x6b), so a memset writes it.
    const _: () = assert!(super::pgalloc::POISON == u64::from_ne_bytes([0x6b; 8]));
    // SAFETY: a frame of this file that no translation maps any more (the collapse unmapped
    // it and flushed every CPU); it is ours until frame::free below.
    unsafe {
        core::ptr::write_bytes(crate::arch::phys_to_virt(pa) as *mut u8, 0x6b, FRAME_SIZE as usize)
    };
    if let Err(e) = frame::free(pa) {
        crate::fatal!("freeing a collapsed file page {pa:#x}: {e}");
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let frames = (self.chunk_size / FRAME_SIZE) as usize;
        let freed = self.small_freed.lock().clone();
        for (i, &pa) in self.pages.iter().enumerate() {
            if freed[i / frames] {
                continue;
            }
            if let Err(e) = frame::free(pa) {
                crate::fatal!("file {}: freeing page {pa:#x}: {e}", self.id);
            }
        }
        for pa in self.huge.lock().iter().chain(self.kept.lock().iter()).flatten() {
            free_huge(*pa, frames);
        }
    }
}
