//! RTAS calls without instantiating RTAS: QEMU runs them on hcall KVMPPC_H_RTAS with r4 =
//! the real address of a big-endian `{token, nargs, nret, args.., rets..}` buffer
//! (hw/ppc/spapr_rtas.c). Tokens come from the `/rtas` node's properties.

use super::hcall::{hcall, KVMPPC_H_RTAS};
use crate::sync::Mutex;

const MAX_WORDS: usize = 16;

#[repr(C, align(16))]
struct RtasBuf([u32; MAX_WORDS]);

static BUF: Mutex<RtasBuf> = Mutex::new(RtasBuf([0; MAX_WORDS]));

/// Tokens the kernel uses, read from the device tree at boot.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tokens {
    pub start_cpu: Option<u32>,
    pub power_off: Option<u32>,
    pub os_term: Option<u32>,
}

static TOKENS: spin::Once<Tokens> = spin::Once::new();

pub fn set_tokens(t: Tokens) {
    TOKENS.call_once(|| t);
}

pub fn tokens() -> Tokens {
    TOKENS.get().copied().unwrap_or_default()
}

/// Runs RTAS call `token`; returns the first `nret` return words (the first is the status).
pub fn call(token: u32, args: &[u32], nret: usize) -> [u32; 4] {
    assert!(3 + args.len() + nret <= MAX_WORDS && nret <= 4);
    let mut b = BUF.lock();
    b.0[0] = token.to_be();
    b.0[1] = (args.len() as u32).to_be();
    b.0[2] = (nret as u32).to_be();
    for (i, a) in args.iter().enumerate() {
        b.0[3 + i] = a.to_be();
    }
    let base = 3 + args.len();
    for w in &mut b.0[base..base + nret] {
        *w = 0;
    }
    let real = super::virt_to_phys(b.0.as_ptr() as u64);
    // SAFETY: the buffer is ours (locked) and big enough for nargs + nret words.
    unsafe { hcall(KVMPPC_H_RTAS, [real, 0, 0, 0, 0, 0]) };
    let mut out = [0u32; 4];
    for (i, o) in out.iter_mut().enumerate().take(nret) {
        *o = u32::from_be(b.0[base + i]);
    }
    out
}
