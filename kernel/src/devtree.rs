//! What the kernel needs from the flattened device tree, gathered once at boot. Every
//! property the kernel cannot run without is checked here, with an error naming it.

use flat_device_tree::Fdt;

pub const MAX_MEM_RANGES: usize = 8;
pub const MAX_CPUS: usize = crate::arch::paca::MAX_CPUS;

#[derive(Debug, Clone, Copy, Default)]
pub struct MemRange {
    pub start: u64,
    pub size: u64,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CpuInfo {
    /// Hardware interrupt server number (`ibm,ppc-interrupt-server#s`[0], else `reg`).
    pub server: u32,
}

#[derive(Debug)]
pub struct DevTree<'a> {
    pub stdout_path: &'a str,
    pub vty_termno: u64,
    pub mem: [MemRange; MAX_MEM_RANGES],
    pub nmem: usize,
    pub cpus: [CpuInfo; MAX_CPUS],
    pub ncpus: usize,
    /// CPUs in the tree beyond MAX_CPUS (reported, not started).
    pub cpus_ignored: usize,
    pub tb_freq: u64,
    /// log2 of the hashed page table's size (`ibm,pft-size`[1]; hash mode).
    pub pft_shift: Option<u32>,
    /// SLB entries per CPU (`ibm,slb-size`).
    pub slb_size: Option<u32>,
    pub rtas: crate::arch::rtas::Tokens,
}

#[derive(Debug)]
pub enum DtError {
    Missing(&'static str),
    Bad(&'static str),
}

impl core::fmt::Display for DtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DtError::Missing(p) => write!(f, "device tree lacks {p}"),
            DtError::Bad(p) => write!(f, "device tree has a malformed {p}"),
        }
    }
}

fn be32(b: &[u8], i: usize) -> Option<u32> {
    b.get(i * 4..i * 4 + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_cells(b: &[u8], at: usize, n: usize) -> Option<u64> {
    (0..n).try_fold(0u64, |acc, k| Some((acc << 32) | be32(b, at + k)? as u64))
}

fn cstr(b: &[u8]) -> Option<&str> {
    let b = b.split(|&c| c == 0).next()?;
    core::str::from_utf8(b).ok()
}

impl<'a> DevTree<'a> {
    pub fn parse(fdt: &'a Fdt<'a>) -> Result<Self, DtError> {
        let root = fdt.find_node("/").ok_or(DtError::Missing("/"))?;
        let cells = |name: &'static str, dflt: u32| -> Result<usize, DtError> {
            Ok(match root.property(name) {
                Some(p) => be32(p.value, 0).ok_or(DtError::Bad(name))? as usize,
                None => dflt as usize,
            })
        };
        let ac = cells("#address-cells", 2)?;
        let sc = cells("#size-cells", 1)?;

        let chosen = fdt.find_node("/chosen").ok_or(DtError::Missing("/chosen"))?;
        let stdout_path = chosen
            .property("stdout-path")
            .or_else(|| chosen.property("linux,stdout-path"))
            .and_then(|p| cstr(p.value))
            .ok_or(DtError::Missing("/chosen/stdout-path"))?;
        let stdout_path = stdout_path.split(':').next().unwrap_or(stdout_path);
        let vty = fdt.find_node(stdout_path).ok_or(DtError::Missing("the stdout-path node"))?;
        let reg = vty.property("reg").ok_or(DtError::Missing("reg of the stdout-path node"))?;
        let vty_termno = be32(reg.value, 0).ok_or(DtError::Bad("vty reg"))? as u64;

        let mut mem = [MemRange::default(); MAX_MEM_RANGES];
        let mut nmem = 0;
        for n in fdt.all_nodes() {
            let is_mem = n.property("device_type").and_then(|p| cstr(p.value)) == Some("memory");
            if !is_mem {
                continue;
            }
            let reg = n.property("reg").ok_or(DtError::Missing("reg of a memory node"))?;
            let stride = ac + sc;
            let count = reg.value.len() / 4 / stride;
            for i in 0..count {
                let start =
                    be_cells(reg.value, i * stride, ac).ok_or(DtError::Bad("memory reg"))?;
                let size =
                    be_cells(reg.value, i * stride + ac, sc).ok_or(DtError::Bad("memory reg"))?;
                if size == 0 {
                    continue;
                }
                if nmem == MAX_MEM_RANGES {
                    return Err(DtError::Bad("memory: more ranges than MAX_MEM_RANGES"));
                }
                mem[nmem] = MemRange { start, size };
                nmem += 1;
            }
        }
        if nmem == 0 {
            return Err(DtError::Missing("a memory node"));
        }

        let cpus_node = fdt.find_node("/cpus").ok_or(DtError::Missing("/cpus"))?;
        let mut cpus = [CpuInfo::default(); MAX_CPUS];
        let mut ncpus = 0;
        let mut cpus_ignored = 0;
        let mut tb_freq = 0u64;
        let (mut pft_shift, mut slb_size) = (None, None);
        for c in cpus_node.children() {
            let is_cpu = c.property("device_type").and_then(|p| cstr(p.value)) == Some("cpu");
            if !is_cpu {
                continue;
            }
            let server = c
                .property("ibm,ppc-interrupt-server#s")
                .or_else(|| c.property("reg"))
                .and_then(|p| be32(p.value, 0))
                .ok_or(DtError::Missing("reg of a cpu node"))?;
            if let Some(p) = c.property("timebase-frequency") {
                tb_freq = be_cells(p.value, 0, p.value.len() / 4)
                    .ok_or(DtError::Bad("timebase-frequency"))?;
            }
            if let Some(p) = c.property("ibm,pft-size") {
                pft_shift = Some(be32(p.value, 1).ok_or(DtError::Bad("ibm,pft-size"))?);
            }
            if let Some(p) = c.property("ibm,slb-size") {
                slb_size = Some(be32(p.value, 0).ok_or(DtError::Bad("ibm,slb-size"))?);
            }
            if ncpus == MAX_CPUS {
                cpus_ignored += 1;
                continue;
            }
            cpus[ncpus] = CpuInfo { server };
            ncpus += 1;
        }
        if ncpus == 0 {
            return Err(DtError::Missing("a cpu node"));
        }
        if tb_freq == 0 {
            return Err(DtError::Missing("/cpus/*/timebase-frequency"));
        }

        let rtas_node = fdt.find_node("/rtas").ok_or(DtError::Missing("/rtas"))?;
        let tok = |name: &str| rtas_node.property(name).and_then(|p| be32(p.value, 0));
        let rtas = crate::arch::rtas::Tokens {
            start_cpu: tok("start-cpu"),
            power_off: tok("power-off"),
            os_term: tok("ibm,os-term"),
        };
        if rtas.power_off.is_none() {
            return Err(DtError::Missing("/rtas/power-off"));
        }
        if rtas.os_term.is_none() {
            return Err(DtError::Missing("/rtas/ibm,os-term"));
        }

        Ok(DevTree {
            stdout_path,
            vty_termno,
            mem,
            nmem,
            cpus,
            ncpus,
            cpus_ignored,
            tb_freq,
            pft_shift,
            slb_size,
            rtas,
        })
    }

    pub fn mem(&self) -> &[MemRange] {
        &self.mem[..self.nmem]
    }

    pub fn cpus(&self) -> &[CpuInfo] {
        &self.cpus[..self.ncpus]
    }
}
