//! A stand-in guest for testing the harness against the real QEMU before the kernel boots: a
//! hand-assembled big-endian ELF that prints a canned serial log through `H_PUT_TERM_CHAR` in
//! the firmware's entry state (BE, 32-bit, real mode) and then powers off, terminates or hangs.
//! RTAS tokens and the vty address are QEMU 7.2's fixed values (hw/ppc/spapr.h
//! `RTAS_TOKEN_BASE`); the real kernel reads them from the device tree.

use std::path::Path;

/// How the fake guest ends after printing.
#[derive(Clone, Copy, Debug)]
pub enum End {
    /// RTAS `power-off`: QEMU exits 0.
    PowerOff,
    /// RTAS `ibm,os-term`: QEMU exits 1 with `-action panic=exit-failure`.
    OsTerm,
    /// Spin forever.
    Hang,
}

const H_PUT_TERM_CHAR: u16 = 0x58;
const KVMPPC_H_RTAS: u16 = 0xf000;
const VTY_REG_HI: u16 = 0x7100;
const RTAS_POWER_OFF: u32 = 0x2003;
const RTAS_IBM_OS_TERM: u32 = 0x201f;

/// Where the loaded segment starts in the file (after the ELF and program headers).
const TEXT_OFFSET: usize = 0x100;

fn d_form(op: u32, rt: u32, ra: u32, imm: u16) -> u32 {
    op << 26 | rt << 21 | ra << 16 | u32::from(imm)
}
fn addi(rt: u32, ra: u32, imm: u16) -> u32 {
    d_form(14, rt, ra, imm)
}
fn li(rt: u32, imm: u16) -> u32 {
    addi(rt, 0, imm)
}
/// A relative `b` from word `from` to word `to`.
fn branch(from: usize, to: usize) -> u32 {
    let offset = (to as i64 - from as i64) * 4;
    0x4800_0000 | (offset as u32 & 0x03ff_fffc)
}

/// `beq cr0` from word `from` to word `to` (forward only).
fn beq(from: usize, to: usize) -> u32 {
    0x4182_0000 | ((to - from) as u32 * 4)
}

/// The guest's code and data, loaded at the lowest address the firmware jumps to.
fn image(text: &str, end: End) -> Vec<u8> {
    const MSG: usize = 20 * 4; // byte offset of the message from the image start
    let rtas_at = (MSG + text.len() + 1).next_multiple_of(8);
    // addi's immediate is signed: offsets from label 1 (byte 4) must stay below 32 KiB.
    let rel = |at: usize| i16::try_from(at - 4).expect("fake log too long") as u16;
    let mut code = vec![
        0x4800_0005,                                         // 0: bl 1f
        0x7fe8_02a6,                                         // 1: mflr r31
        addi(30, 31, rel(MSG)),                              // 2: r30 = message
        addi(29, 31, rel(rtas_at)),                          // 3: r29 = RTAS buffer
        li(8, 56),                                           // 4: shift for char 0 of r6
        d_form(34, 6, 30, 0),                                // 5: loop: lbz r6,0(r30)
        0x2c06_0000,                                         // 6: cmpwi r6,0
        beq(7, 15),                                          // 7: beq done
        li(3, H_PUT_TERM_CHAR),                              // 8
        d_form(15, 4, 0, VTY_REG_HI),                        // 9: lis r4,0x7100
        li(5, 1),                                            // 10: one character
        31 << 26 | 6 << 21 | 6 << 16 | 8 << 11 | 27 << 1,    // 11: sld r6,r6,r8
        0x4400_0022,                                         // 12: sc 1
        addi(30, 30, 1),                                     // 13
        branch(14, 5),                                       // 14: b loop
        li(3, 0),                                            // 15: done:
        d_form(24, 3, 3, KVMPPC_H_RTAS),                     // 16: ori r3,r3,0xf000
        31 << 26 | 29 << 21 | 4 << 16 | 29 << 11 | 444 << 1, // 17: mr r4,r29
        0x4400_0022,                                         // 18: sc 1
        branch(19, 19),                                      // 19: b .
    ];
    if let End::Hang = end {
        code[15] = branch(15, 15);
    }
    assert_eq!(code.len() * 4, MSG);
    let mut bytes: Vec<u8> = code.iter().flat_map(|w| w.to_be_bytes()).collect();
    bytes.extend(text.as_bytes());
    bytes.resize(rtas_at, 0);
    // {token, nargs, nret, args.., rets..}, big-endian.
    let rtas: &[u32] = match end {
        End::OsTerm => &[RTAS_IBM_OS_TERM, 1, 1, 0, 0],
        _ => &[RTAS_POWER_OFF, 2, 1, 0, 0, 0],
    };
    bytes.extend(rtas.iter().flat_map(|w| w.to_be_bytes()));
    bytes
}

/// A big-endian ELF64 (EM_PPC64) with one loadable segment at physical address 0.
pub fn elf(text: &str, end: End) -> Vec<u8> {
    let image = image(text, end);
    let mut f = Vec::new();
    f.extend(b"\x7fELF\x02\x02\x01\x00"); // 64-bit, big-endian, version 1
    f.resize(16, 0);
    f.extend(2u16.to_be_bytes()); // ET_EXEC
    f.extend(21u16.to_be_bytes()); // EM_PPC64
    f.extend(1u32.to_be_bytes());
    f.extend(0u64.to_be_bytes()); // entry (ignored: the firmware jumps to the segment)
    f.extend(64u64.to_be_bytes()); // phoff
    f.extend(0u64.to_be_bytes()); // shoff
    f.extend(0u32.to_be_bytes()); // flags
    for half in [64u16, 56, 1, 64, 0, 0] {
        f.extend(half.to_be_bytes()); // ehsize phentsize phnum shentsize shnum shstrndx
    }
    f.extend(1u32.to_be_bytes()); // PT_LOAD
    f.extend(7u32.to_be_bytes()); // RWX
    let size = image.len() as u64;
    for word in [TEXT_OFFSET as u64, 0, 0, size, size, 8] {
        f.extend(word.to_be_bytes()); // offset vaddr paddr filesz memsz align
    }
    f.resize(TEXT_OFFSET, 0);
    f.extend(image);
    f
}

/// Writes the fake kernel to `path`.
pub fn write(path: &Path, text: &str, end: End) -> std::io::Result<()> {
    std::fs::write(path, elf(text, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qemu::{Firmware, QEMU};
    use crate::scenario::{Expect, Scenario};
    use crate::suite::{run_scenario, Verdict};
    use std::path::PathBuf;
    use std::process::Command;
    use std::time::Duration;

    const GOOD: &str = include_str!("../fixtures/good-vof-smp1.txt");
    const SELFTEST: &str = include_str!("../fixtures/selftest-fail.txt");
    const BAD_CMDLINE: &str = include_str!("../fixtures/bad-cmdline.txt");
    const HUNG: &str = include_str!("../fixtures/hung.txt");

    fn have_qemu() -> bool {
        let found = Command::new(QEMU).arg("--version").output().is_ok();
        if !found {
            eprintln!("{QEMU} not installed: skipping");
        }
        found
    }

    /// A private directory per test, removed when the test passes.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("ptfrag-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn kernel(&self, text: &str, end: End) -> PathBuf {
            let path = self.0.join("kernel.elf");
            write(&path, text, end).unwrap();
            path
        }

        /// Boots the fake kernel printing `text` as scenario `s`.
        fn boot(&self, s: &Scenario, text: &str, end: End) -> Verdict {
            run_scenario(s, &self.kernel(text, end), &self.0)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn boot(name: &'static str, fw: Firmware, text: &str, end: End, expect: Expect) -> Vec<String> {
        let scenario = Scenario::new(name, fw, 1, "")
            .expect(expect)
            .base_required(crate::check::tests::FIXTURE_REQUIRED)
            .timeout(Duration::from_secs(60));
        let v = Scratch::new(name).boot(&scenario, text, end);
        let run = v.run.as_ref().expect("QEMU ran");
        assert_eq!(run.first_test.is_some(), text.contains("\nrunning "));
        v.why
    }

    #[test]
    fn image_layout() {
        let elf = elf("hi\n", End::PowerOff);
        assert_eq!(&elf[..6], b"\x7fELF\x02\x02");
        assert_eq!(&elf[TEXT_OFFSET..TEXT_OFFSET + 4], [0x48, 0, 0, 5]);
        assert_eq!(&elf[TEXT_OFFSET + 80..TEXT_OFFSET + 84], b"hi\n\0");
        assert_eq!(elf.len() % 4, 0);
    }

    #[test]
    fn good_run_on_qemu_passes() {
        if have_qemu() {
            let why = boot("fake-good", Firmware::Vof, GOOD, End::PowerOff, Expect::Success);
            assert_eq!(why, Vec::<String>::new());
        }
    }

    #[test]
    fn os_term_exits_1_for_the_negative_controls() {
        if have_qemu() {
            let expect = Expect::TestFails("selftest_fail");
            let why = boot("fake-selftest", Firmware::Vof, SELFTEST, End::OsTerm, expect);
            assert_eq!(why, Vec::<String>::new());
            let expect = Expect::Fatal("bogus");
            let why = boot("fake-fatal", Firmware::Vof, BAD_CMDLINE, End::OsTerm, expect);
            assert_eq!(why, Vec::<String>::new());
        }
    }

    #[test]
    fn a_failing_test_with_power_off_is_caught() {
        if have_qemu() {
            let why =
                boot("fake-wrong-exit", Firmware::Vof, SELFTEST, End::PowerOff, Expect::Success);
            assert!(why.iter().any(|w| w.contains("selftest_fail FAILED")), "{why:?}");
        }
    }

    /// SLOF takes seconds to boot: run with `cargo test -p ptfrag-tests -- --ignored`.
    #[test]
    #[ignore]
    fn slof_boots_the_fake() {
        if have_qemu() {
            let why = boot("fake-slof", Firmware::Slof, GOOD, End::PowerOff, Expect::Success);
            assert_eq!(why, Vec::<String>::new());
        }
    }

    #[test]
    fn a_hang_times_out() {
        if have_qemu() {
            let scenario =
                Scenario::new("fake-hang", Firmware::Vof, 1, "").timeout(Duration::from_secs(3));
            let v = Scratch::new("fake-hang").boot(&scenario, HUNG, End::Hang);
            assert!(v.why[0].contains("timed out after 3 s"), "{:?}", v.why);
            assert!(v.run.unwrap().first_test.is_some());
        }
    }
}
