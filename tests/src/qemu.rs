//! Builds the QEMU command line: the single source of truth for `make test`, `make run` and
//! `make gdb`. Machine, CPU and console flags live here and nowhere else.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::process::Command;

/// The emulator binary (Debian's `qemu-system-ppc` package).
pub const QEMU: &str = "qemu-system-ppc64";

/// Machine capabilities TCG cannot provide; setting them silences its warnings (DESIGN.md §2).
const MACHINE_CAPS: &str = "cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-ccf-assist=off";

/// Guest memory size.
const MEMORY: &str = "1G";

/// Most vCPUs the kernel supports (DESIGN.md §2).
pub const MAX_SMP: u32 = 8;

/// Which Open Firmware implementation boots the kernel. `--fw` takes the variant's name in
/// lower case (clap's `ValueEnum`), the same word `Display` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Firmware {
    /// QEMU's minimal Virtual Open Firmware (`x-vof=on`): ~0.05 s to the first character.
    Vof,
    /// SLOF, the full firmware: a few seconds to boot.
    Slof,
}

impl Firmware {
    /// The `-M` argument for this firmware.
    fn machine(self) -> String {
        match self {
            Self::Vof => format!("pseries,x-vof=on,{MACHINE_CAPS}"),
            Self::Slof => format!("pseries,{MACHINE_CAPS}"),
        }
    }
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vof => "vof",
            Self::Slof => "slof",
        })
    }
}

/// The console flags: the spapr vty (created by pseries for `-serial`) on QEMU's stdio, no
/// other default devices, no display. With stdin on a terminal, Ctrl-C ends QEMU.
pub fn console_args() -> [&'static str; 4] {
    ["-nodefaults", "-nographic", "-serial", "stdio"]
}

/// Everything that varies between QEMU invocations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuConfig {
    pub fw: Firmware,
    pub smp: u32,
    /// Kernel command line, delivered as `/chosen/bootargs`.
    pub bootargs: String,
    pub kernel: PathBuf,
    /// Appended verbatim, e.g. `-s -S` or `-d int,mmu -D file`.
    pub extra: Vec<String>,
    /// Deterministic guest time (`make bench ICOUNT=1`): [`ICOUNT`] on one TCG thread, so
    /// the timebase counts guest instructions instead of host time.
    pub icount: bool,
}

/// QEMU's instruction counter as `make bench ICOUNT=1` uses it: one instruction per
/// nanosecond of virtual time (`shift=0`), no aligning to the host clock, and idle vCPUs warp
/// the clock to the next timer instead of sleeping (`sleep=off`), so no host time leaks in.
/// QEMU refuses `-icount` with multi-threaded TCG, hence `thread=single` with it: the vCPUs
/// then take turns on one host thread, and virtual time advances with every vCPU's
/// instructions.
pub const ICOUNT: &str = "shift=0,align=off,sleep=off";

impl QemuConfig {
    /// The arguments after the program name.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |s: &str| args.push(s.into());
        push("-M");
        push(&self.fw.machine());
        push("-cpu");
        push("POWER9");
        push("-accel");
        if self.icount {
            push("tcg,thread=single");
            push("-icount");
            push(ICOUNT);
        } else {
            push("tcg,thread=multi");
        }
        push("-m");
        push(MEMORY);
        push("-smp");
        push(&self.smp.to_string());
        console_args().iter().for_each(|a| push(a));
        // A guest panic (RTAS ibm,os-term) makes QEMU exit 1; never reboot on reset.
        push("-action");
        push("panic=exit-failure");
        push("-no-reboot");
        push("-kernel");
        args.push(self.kernel.clone().into_os_string());
        args.push("-append".into());
        args.push(self.bootargs.clone().into());
        args.extend(self.extra.iter().map(OsString::from));
        args
    }

    /// A `Command` ready to spawn; stdio is left to the caller.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(QEMU);
        cmd.args(self.args());
        cmd
    }

    /// The command line as a shell would need it, for printing.
    pub fn display(&self) -> String {
        let mut out = String::from(QEMU);
        for arg in self.args() {
            out.push(' ');
            out.push_str(&shell_quote(&arg.to_string_lossy()));
        }
        out
    }
}

/// Quotes `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./,=:+@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Splits a string into words like a shell would (whitespace, '…', "…", backslash), for
/// options such as `--qemu-extra "-d int,mmu -D /tmp/q.log"`.
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated ' in {s:?}")),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => w.push(c),
                            None => return Err(format!("trailing \\ in {s:?}")),
                        },
                        Some(c) => w.push(c),
                        None => return Err(format!("unterminated \" in {s:?}")),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err(format!("trailing \\ in {s:?}")),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(fw: Firmware) -> QemuConfig {
        QemuConfig {
            fw,
            smp: 4,
            bootargs: "mmu=hash pte_free_defer=refcount".into(),
            kernel: PathBuf::from("/k/ptfrag"),
            extra: vec!["-s".into(), "-S".into()],
            icount: false,
        }
    }

    #[test]
    fn vof_command_line() {
        assert_eq!(
            config(Firmware::Vof).display(),
            "qemu-system-ppc64 -M pseries,x-vof=on,cap-cfpc=broken,cap-sbbc=broken,\
             cap-ibs=broken,cap-ccf-assist=off -cpu POWER9 -accel tcg,thread=multi -m 1G \
             -smp 4 -nodefaults -nographic -serial stdio -action panic=exit-failure \
             -no-reboot -kernel /k/ptfrag -append 'mmu=hash pte_free_defer=refcount' -s -S"
        );
    }

    #[test]
    fn icount_runs_one_tcg_thread_with_the_instruction_counter() {
        let c = QemuConfig { icount: true, ..config(Firmware::Vof) };
        let text = c.display();
        assert!(
            text.contains(" -accel tcg,thread=single -icount shift=0,align=off,sleep=off -m 1G "),
            "{text}"
        );
        assert!(!text.contains("thread=multi"));
    }

    #[test]
    fn slof_has_no_vof_flag_and_empty_append_survives() {
        let mut c = config(Firmware::Slof);
        c.bootargs.clear();
        let args: Vec<String> = c.args().iter().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args[1], format!("pseries,{MACHINE_CAPS}"));
        let append = args.iter().position(|a| a == "-append").unwrap();
        assert_eq!(args[append + 1], "");
        assert!(c.display().contains("-append '' -s"));
    }

    #[test]
    fn firmware_parses_and_prints() {
        use clap::ValueEnum;
        assert_eq!(Firmware::value_variants(), [Firmware::Vof, Firmware::Slof]);
        for fw in Firmware::value_variants() {
            assert_eq!(Firmware::from_str(&fw.to_string(), false), Ok(*fw));
        }
        assert!(Firmware::from_str("ofw", false).is_err());
    }

    #[test]
    fn split_words_like_a_shell() {
        assert_eq!(
            split_words(r#" -d int,mmu  -D "/tmp/a b.log" 'x y'z \q "#).unwrap(),
            ["-d", "int,mmu", "-D", "/tmp/a b.log", "x yz", "q"]
        );
        assert_eq!(split_words("").unwrap(), Vec::<String>::new());
        assert_eq!(split_words("''").unwrap(), [""]);
        assert!(split_words("'open").is_err());
    }

    #[test]
    fn shell_quote_round_trips() {
        for s in ["plain", "", "a b", "it's", "-d int,mmu"] {
            assert_eq!(split_words(&shell_quote(s)).unwrap(), [s]);
        }
    }
}
