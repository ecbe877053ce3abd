# gdb helpers for ptfrag, loaded by tests/gdb/ptfrag.gdb (`make gdb`).
#
# Everything is read through the kernel's PTFRAG_DEBUG table (kernel/src/debuginfo.rs): a
# fixed array of 64-bit words with addresses and offsets, so these commands do not depend
# on how rustc lays out the kernel's types. Page-table entries are big-endian in memory in
# both MMU modes; everything else is the kernel's native little-endian.
#
# Commands:
#   ptfrag-info                 mode, strategy, RCU state, live address spaces
#   ptfrag-page ADDR            page descriptor of the 64K frame holding ADDR (physical or
#                               0xc... kernel address): flags, pt_frag_refcount, rcu_head,
#                               bitmap side state, and which 4K fragments live PMDs point at
#   ptfrag-walk PID EA          walk address space PID's tables for EA, level by level
#   ptfrag-rcu                  grace-period state and every CPU's pending callbacks

import gdb
import re
import struct

FIELDS = [
    "Magic", "Version", "MemMap", "NrFrames", "DescSize", "DescFlags", "DescRefcount",
    "DescOwner", "DescRcuHead", "FrameSize", "MmuMode", "ProcessTable", "MmPgds", "MaxPid",
    "Rcu", "RcuGpSeq", "RcuQsMask", "RcuOnline", "RcuCpus", "RcuCpuStride", "RcuCpuNesting",
    "RcuCpuHead", "RcuMaxCpus", "PteFragSize", "PteIndexBits0", "PteIndexBits1",
    "PteIndexBits2", "PteIndexBits3", "PageShift", "BitmapSides", "BitmapSideSize", "Strategy",
    "BitmapPhases",
]
MAGIC = 0x7074667261676462
VERSION = 1
STRATEGIES = ["naive", "refcount", "active", "bitmap", "bitmap_sketch", "none"]
PHYS_OFFSET = 0xC000000000000000
FLAG_NAMES = [(1, "RESERVED"), (2, "ALLOCATED"), (4, "PAGE_TABLE"), (8, "ACTIVE")]
PTE_FREE_DEFERRED = 0x10000
POISON = 0x6B6B6B6B6B6B6B6B
LEVELS = ["PGD", "PUD", "PMD", "PTE"]

# Radix entry bits (ptfrag_core::radix); hash mode uses the same software layout.
VALID = 1 << 63
LEAF = 1 << 62
RPN_MASK = 0x01FFFFFFFFFFF000
NLB_MASK = 0x0FFFFFFFFFFFFF00
HASHPTE = 0x400


def read(addr, n):
    return bytes(gdb.selected_inferior().read_memory(addr, n))


def u64(addr):
    return struct.unpack("<Q", read(addr, 8))[0]


def u32(addr):
    return struct.unpack("<I", read(addr, 4))[0]


def be64(addr):
    return struct.unpack(">Q", read(addr, 8))[0]


def virt(pa):
    return pa | PHYS_OFFSET


def phys(addr):
    return addr & ~PHYS_OFFSET & 0x0FFFFFFFFFFFFFFF


def debug_table():
    out = gdb.execute("info address PTFRAG_DEBUG", to_string=True)
    m = re.search(r"0x[0-9a-fA-F]+", out)
    if not m:
        raise gdb.GdbError("PTFRAG_DEBUG not found: is the kernel ELF loaded?")
    base = int(m.group(0), 16)
    words = struct.unpack("<%dQ" % len(FIELDS), read(base, 8 * len(FIELDS)))
    d = dict(zip(FIELDS, words))
    if d["Magic"] != MAGIC:
        raise gdb.GdbError("PTFRAG_DEBUG not filled yet (the kernel fills it after the MMU "
                           "is on): continue past boot first")
    if d["Version"] != VERSION:
        raise gdb.GdbError("PTFRAG_DEBUG version %d, this script knows %d" % (d["Version"], VERSION))
    return d


def symbol(addr):
    try:
        s = gdb.execute("info symbol 0x%x" % addr, to_string=True).strip()
        return s.split(" in section")[0]
    except gdb.error:
        return "?"


def flags_str(f):
    names = [n for bit, n in FLAG_NAMES if f & bit]
    return "|".join(names) if names else "0"


def live_mms(d):
    pgds = read(d["MmPgds"], 8 * (d["MaxPid"] + 1))
    out = []
    for pid in range(d["MaxPid"] + 1):
        pgd = struct.unpack_from("<Q", pgds, 8 * pid)[0]
        if pgd:
            out.append((pid, pgd))
    return out


def index_bits(d):
    return [d["PteIndexBits0"], d["PteIndexBits1"], d["PteIndexBits2"], d["PteIndexBits3"]]


def entry_shift(d, level):
    bits = index_bits(d)
    return d["PageShift"] + sum(bits[level + 1:])


def read_table(pa, entries):
    raw = read(virt(pa), 8 * entries)
    return struct.unpack(">%dQ" % entries, raw)


def decode(e, level, mode):
    if e == POISON:
        return "POISON (a freed page-table page!)"
    if not e & VALID:
        return "none"
    if e & LEAF:
        perm = "".join(c for bit, c in [(4, "r"), (2, "w"), (1, "x")] if e & bit) or "-"
        extra = []
        if e & 0x8:
            extra.append("privileged")
        if e & 0x100:
            extra.append("R")
        if e & 0x80:
            extra.append("C")
        if mode == 2 and e & HASHPTE:
            extra.append("HASHPTE")
        size = "huge " if level < 3 else ""
        return "%sleaf -> pa 0x%x %s %s" % (size, e & RPN_MASK, perm, " ".join(extra))
    return "table -> 0x%x (NLS %d)" % (e & NLB_MASK, e & 0x1F)


class PtfragInfo(gdb.Command):
    """Summary: MMU mode, pte_free_defer strategy, RCU state, live address spaces."""

    def __init__(self):
        super().__init__("ptfrag-info", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        d = debug_table()
        mode = {1: "radix", 2: "hash", 3: "radix64"}.get(d["MmuMode"], "?")
        st = d["Strategy"]
        print("mmu=%s strategy=%s frames=%d mem_map=0x%x" % (
            mode, STRATEGIES[st] if st < len(STRATEGIES) else "?", d["NrFrames"], d["MemMap"]))
        rcu_summary(d)
        mms = live_mms(d)
        print("address spaces: %s" % (", ".join("pid %d (pgd 0x%x)" % m for m in mms) or "none"))


def rcu_summary(d):
    rcu = d["Rcu"]
    gp = u64(rcu + d["RcuGpSeq"])
    print("rcu: gp_seq=%d (%s), completed=%d, waiting for cpus mask 0x%x, online 0x%x" % (
        gp, "grace period in progress" if gp & 1 else "idle", gp & ~1,
        u32(rcu + d["RcuQsMask"]), u32(rcu + d["RcuOnline"])))


class PtfragPage(gdb.Command):
    """ptfrag-page ADDR: the page descriptor of the 64K frame holding ADDR."""

    def __init__(self):
        super().__init__("ptfrag-page", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        d = debug_table()
        if not arg:
            raise gdb.GdbError("usage: ptfrag-page ADDR")
        addr = int(gdb.parse_and_eval(arg)) & 0xFFFFFFFFFFFFFFFF
        fs = d["FrameSize"]
        page = phys(addr) & ~(fs - 1)
        idx = page // fs
        if idx >= d["NrFrames"]:
            raise gdb.GdbError("0x%x is beyond the %d managed frames" % (addr, d["NrFrames"]))
        desc = d["MemMap"] + idx * d["DescSize"]
        flags = u32(desc + d["DescFlags"])
        ref = u32(desc + d["DescRefcount"])
        owner = u64(desc + d["DescOwner"])
        head = desc + d["DescRcuHead"]
        nxt, func = u64(head), u64(head + 8)
        print("page 0x%x (frame %d, descriptor 0x%x)" % (page, idx, desc))
        print("  flags            %s (0x%x)" % (flags_str(flags), flags))
        if ref >= PTE_FREE_DEFERRED:
            print("  pt_frag_refcount %d = %d x PTE_FREE_DEFERRED + %d (refcount strategy: deferred)"
                  % (ref, ref // PTE_FREE_DEFERRED, ref % PTE_FREE_DEFERRED))
        else:
            print("  pt_frag_refcount %d" % ref)
        print("  owner            mm %d" % owner)
        if func:
            print("  rcu_head 0x%x    QUEUED: callback 0x%x <%s>, next 0x%x" % (head, func, symbol(func), nxt))
        else:
            print("  rcu_head 0x%x    not queued" % head)
        if d["BitmapSides"]:
            base = d["BitmapSides"] + idx * d["BitmapSideSize"]
            phases = u64(base + d["BitmapPhases"])
            words = (d["BitmapPhases"]) // 8
            bits = 0
            for w in range(words):
                bits |= u64(base + 8 * w) << (64 * w)
            print("  bitmap side      %d fragment(s) covered by the queued call_rcu, %d for the "
                  "next; deferred since the page was allocated: %#x"
                  % (phases & 0xFFFFFFFF, phases >> 32, bits))
        if flags & 4:
            live_fragments(d, page)
        if u64(virt(page)) == POISON:
            print("  contents         POISON: this page was freed")


def live_fragments(d, page):
    fsz = d["PteFragSize"]
    n = d["FrameSize"] // fsz
    bits = index_bits(d)
    users = {}
    for pid, pgd in live_mms(d):
        for i0, e0 in enumerate(read_table(pgd, 1 << bits[0])):
            if not e0 & VALID or e0 & LEAF:
                continue
            for i1, e1 in enumerate(read_table(e0 & NLB_MASK, 1 << bits[1])):
                if not e1 & VALID or e1 & LEAF:
                    continue
                for i2, e2 in enumerate(read_table(e1 & NLB_MASK, 1 << bits[2])):
                    if not e2 & VALID or e2 & LEAF:
                        continue
                    t = e2 & NLB_MASK
                    if t & ~(d["FrameSize"] - 1) == page:
                        ea = (i0 << entry_shift(d, 0)) | (i1 << entry_shift(d, 1)) | (i2 << entry_shift(d, 2))
                        users.setdefault((t - page) // fsz, []).append("pid %d ea 0x%x" % (pid, ea))
    print("  fragments        %d x %d bytes; in use by a live PMD: %s" % (
        n, fsz, ", ".join("#%d (%s)" % (k, "; ".join(v)) for k, v in sorted(users.items())) or "none"))


class PtfragWalk(gdb.Command):
    """ptfrag-walk PID EA: walk address space PID's page tables for EA."""

    def __init__(self):
        super().__init__("ptfrag-walk", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        d = debug_table()
        argv = gdb.string_to_argv(arg)
        if len(argv) != 2:
            raise gdb.GdbError("usage: ptfrag-walk PID EA")
        pid = int(gdb.parse_and_eval(argv[0]))
        ea = int(gdb.parse_and_eval(argv[1])) & 0xFFFFFFFFFFFFFFFF
        pgd = dict(live_mms(d)).get(pid)
        if not pgd:
            raise gdb.GdbError("no live address space with pid %d" % pid)
        mode = d["MmuMode"]
        bits = index_bits(d)
        table = pgd
        print("pid %d ea 0x%x (%s)" % (pid, ea, {1: "radix 13/9/9/9, 4K", 2: "hash 8/10/10/8, 64K"}[mode]))
        for level in range(4):
            idx = (ea >> entry_shift(d, level)) & ((1 << bits[level]) - 1)
            slot = table + 8 * idx
            e = be64(virt(slot))
            print("  %s[%4d] @0x%x = 0x%016x  %s" % (LEVELS[level], idx, slot, e, decode(e, level, mode)))
            if not e & VALID or e & LEAF or e == POISON:
                if mode == 2 and e & VALID and e & LEAF and level == 3:
                    half = (1 << bits[3]) * 8
                    w = u64(virt(table + half + 8 * idx))
                    if w >> 63:
                        print("        HPTE slot: ptex 0x%x (%s group), recorded in the fragment's "
                              "second half" % (w & ((1 << 62) - 1), "secondary" if (w >> 62) & 1 else "primary"))
                    else:
                        print("        no HPTE recorded (not hashed yet)")
                break
            table = e & NLB_MASK


class PtfragRcu(gdb.Command):
    """ptfrag-rcu: grace-period state and every CPU's pending callbacks."""

    def __init__(self):
        super().__init__("ptfrag-rcu", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        d = debug_table()
        rcu_summary(d)
        online = u32(d["Rcu"] + d["RcuOnline"])
        waiting = u32(d["Rcu"] + d["RcuQsMask"])
        fs, mm, n = d["FrameSize"], d["MemMap"], d["NrFrames"]
        for cpu in range(d["RcuMaxCpus"]):
            if not online & (1 << cpu):
                continue
            base = d["Rcu"] + d["RcuCpus"] + cpu * d["RcuCpuStride"]
            nesting = u32(base + d["RcuCpuNesting"])
            head = u64(base + d["RcuCpuHead"])
            cbs = []
            while head and len(cbs) < 64:
                func = u64(head + 8)
                desc_off = head - d["DescRcuHead"] - mm
                what = ""
                if 0 <= desc_off < n * d["DescSize"] and desc_off % d["DescSize"] == 0:
                    what = " (page 0x%x)" % ((desc_off // d["DescSize"]) * fs)
                cbs.append("0x%x <%s>%s" % (head, symbol(func), what))
                head = u64(head)
            state = "in a read-side section (nesting %d)" % nesting if nesting else "outside read sections"
            owes = ", owes the current grace period a quiescent state" if waiting & (1 << cpu) else ""
            print("cpu %d: %s%s; %d pending callback(s)" % (cpu, state, owes, len(cbs)))
            for c in cbs:
                print("    " + c)


PtfragInfo()
PtfragPage()
PtfragWalk()
PtfragRcu()


# Breakpoints by Linux name (`break hash_page`): the kernel exports those names
# (#[export_name] in kernel/src), but the optimised code's first line after the prologue
# often belongs to something inlined into the function (an atomic load, mfmsr), and gdb
# then reports the stop in that inlined callee. When a breakpoint set on a function name
# stops in code inlined into that very function, select the function's own frame and show
# it, so the stop reads as "in hash_page (mm=..., ea=...)". Breakpoints on addresses or
# file:line are left alone.
def _function_frame(spec):
    f = gdb.newest_frame()
    if f.type() != gdb.INLINE_FRAME:
        return None
    while f is not None and f.type() == gdb.INLINE_FRAME:
        f = f.older()
    if f is None:
        return None
    name = f.name() or ""
    return f if name == spec or name.endswith("::" + spec) else None


def _on_stop(event):
    if not isinstance(event, gdb.BreakpointEvent):
        return
    for bp in event.breakpoints:
        spec = bp.location or ""
        if not spec or spec.startswith("*") or ":" in spec.replace("::", ""):
            continue
        try:
            frame = _function_frame(spec)
        except gdb.error:
            return
        if frame is not None:
            frame.select()
            gdb.write("ptfrag: breakpoint %d (%s) stopped in code inlined into it; "
                      "its frame:\n" % (bp.number, spec))
            gdb.execute("frame")
            return


gdb.events.stop.connect(_on_stop)
