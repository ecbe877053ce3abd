//! `harness ksyms <elf>`: writes the kernel's symbol table into its reserved `.ksyms`
//! section after linking, so the oops backtrace can name functions. Format (little-endian,
//! read by kernel/src/ksyms.rs): magic u64, count u64, `count` entries {addr u64, name_off
//! u32, name_len u32} sorted by address, then the names. Addresses do not move: the
//! section's size is fixed at link time and the table is padded to it.

use std::path::{Path, PathBuf};
use std::process::Command;

const MAGIC: u64 = 0x6b73_796d_7331_0001;
const SECTION: &str = ".ksyms";

/// The host's LLVM tools shipped with the pinned toolchain (component llvm-tools).
fn llvm_tool(name: &str) -> Result<PathBuf, String> {
    let out = |args: &[&str]| -> Result<String, String> {
        let o = Command::new("rustc").args(args).output().map_err(|e| format!("rustc: {e}"))?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let sysroot = out(&["--print", "sysroot"])?.trim().to_string();
    let host = out(&["-vV"])?
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or("rustc -vV printed no host triple")?;
    let p = Path::new(&sysroot).join("lib/rustlib").join(host).join("bin").join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not found: add the llvm-tools component (rust-toolchain.toml lists it)",
            p.display()
        ))
    }
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let o = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !o.status.success() {
        return Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// Size of the `.ksyms` section in `elf`.
fn section_size(elf: &Path) -> Result<usize, String> {
    let out = run(Command::new(llvm_tool("llvm-size")?).arg("-A").arg(elf))?;
    out.lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(SECTION)).then(|| f.next()?.parse().ok())?
        })
        .ok_or_else(|| format!("{} has no {SECTION} section", elf.display()))
}

/// Text symbols of `elf`, demangled, sorted by address.
fn symbols(elf: &Path) -> Result<Vec<(u64, String)>, String> {
    let out = run(Command::new(llvm_tool("llvm-nm")?).args(["--defined-only", "-n"]).arg(elf))?;
    let mut syms: Vec<(u64, String)> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let addr = u64::from_str_radix(f.next()?, 16).ok()?;
            let kind = f.next()?;
            let name = f.next()?;
            matches!(kind, "t" | "T" | "W" | "w")
                .then(|| (addr, format!("{:#}", rustc_demangle::demangle(name))))
        })
        .collect();
    syms.sort_by_key(|s| s.0);
    syms.dedup_by_key(|s| s.0);
    Ok(syms)
}

/// Encodes the table; fails if it does not fit in `size` bytes.
pub fn encode(syms: &[(u64, String)], size: usize) -> Result<Vec<u8>, String> {
    let header = 16 + syms.len() * 16;
    let mut names = Vec::new();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&(syms.len() as u64).to_le_bytes());
    for (addr, name) in syms {
        let off = header + names.len();
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(off as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        names.extend_from_slice(name.as_bytes());
    }
    out.extend_from_slice(&names);
    if out.len() > size {
        return Err(format!(
            "symbol table needs {} bytes, {SECTION} holds {size}: raise KSYMS_SIZE",
            out.len()
        ));
    }
    out.resize(size, 0);
    Ok(out)
}

/// Fills `elf`'s `.ksyms` section with its own symbol table.
pub fn patch(elf: &Path) -> Result<usize, String> {
    let size = section_size(elf)?;
    let syms = symbols(elf)?;
    let table = encode(&syms, size)?;
    let tmp = elf.with_extension("ksyms.bin");
    std::fs::write(&tmp, &table).map_err(|e| format!("{}: {e}", tmp.display()))?;
    run(Command::new(llvm_tool("llvm-objcopy")?)
        .arg(format!("--update-section={SECTION}={}", tmp.display()))
        .arg(elf))?;
    let _ = std::fs::remove_file(&tmp);
    Ok(syms.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_layout() {
        let t = encode(&[(0x10, "a".into()), (0x20, "bc".into())], 128).unwrap();
        assert_eq!(t.len(), 128);
        assert_eq!(u64::from_le_bytes(t[0..8].try_into().unwrap()), MAGIC);
        assert_eq!(u64::from_le_bytes(t[8..16].try_into().unwrap()), 2);
        assert_eq!(u64::from_le_bytes(t[16..24].try_into().unwrap()), 0x10);
        let off = u32::from_le_bytes(t[24..28].try_into().unwrap()) as usize;
        let len = u32::from_le_bytes(t[28..32].try_into().unwrap()) as usize;
        assert_eq!(&t[off..off + len], b"a");
        let off2 = u32::from_le_bytes(t[40..44].try_into().unwrap()) as usize;
        assert_eq!(&t[off2..off2 + 2], b"bc");
    }

    #[test]
    fn encode_too_small() {
        assert!(encode(&[(0, "x".repeat(100))], 64).is_err());
    }
}
