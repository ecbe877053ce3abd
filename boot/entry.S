# ptfrag boot entry, secondary-CPU entry and the Open Firmware call gate.
#
# Assembled by the kernel crate (global_asm!, LLVM's integrated assembler), little-endian.
# Entry state, as measured on QEMU 7.2 with VOF and SLOF (../shared/DESIGN.md section 2):
# big-endian, possibly 32-bit (MSR[SF]=0), real mode, EE=0; r5 = client-interface entry.
# A secondary started by RTAS start-cpu is in the same state with r3 = the value we passed.

.equ MSR_SF_BIT,    63
.equ MSR_LE,        0x1
.equ PHYS_MASK_BITS, 4             # real mode ignores the top four EA bits

# Load a 64-bit link-time address into \reg without the TOC (r2 is not set up yet).
.macro LOAD_ADDR reg, sym
    lis     \reg, \sym@highest
    ori     \reg, \reg, \sym@higher
    rldicr  \reg, \reg, 32, 31
    oris    \reg, \reg, \sym@high
    ori     \reg, \reg, \sym@l
.endm

# Byte-swap a 32-bit instruction word so a big-endian CPU fetches it as written.
.macro BE_INSN w
    .long ((\w >> 24) & 0xff) | ((\w >> 8) & 0xff00) | ((\w << 8) & 0xff0000) | ((\w << 24) & 0xff000000)
.endm

# Switch a CPU that may be big-endian and 32-bit into little-endian 64-bit mode, in place.
# Word 1 reads as "tdi 0,0,0x48" (never traps) when fetched little-endian, and as "b .+8"
# when fetched big-endian, which skips word 2 and runs the byte-swapped trampoline below.
# The trampoline sets MSR[LE] and MSR[SF] and rfid's to the first instruction after it.
# Clobbers r10, r11, r12, LR, SRR0, SRR1. Power ISA v3.0B Book III 4.3 (MSR), 6.4 (rfid).
.macro FIXUP_ENDIAN
    tdi     0, 0, 0x48
    b       191f
    BE_INSN 0x7d6000a6      # mfmsr  r11
    BE_INSN 0x616b0001      # ori    r11, r11, MSR_LE
    BE_INSN 0x39800001      # li     r12, 1
    BE_INSN 0x798cf806      # rldicr r12, r12, 63, 0     (r12 = MSR_SF)
    BE_INSN 0x7d6b6378      # or     r11, r11, r12
    BE_INSN 0x429f0005      # bcl    20, 31, .+4
    BE_INSN 0x7d4802a6      # mflr   r10
    BE_INSN 0x394a0014      # addi   r10, r10, 20        (the word after rfid)
    BE_INSN 0x7d5a03a6      # mtsrr0 r10
    BE_INSN 0x7d7b03a6      # mtsrr1 r11
    BE_INSN 0x4c000024      # rfid
191:
.endm

# The compiler may use FP, VMX and VSX registers anywhere: turn them on (with MSR[RI]).
.macro ENABLE_FP_VSX
    mfmsr   11
    ori     11, 11, 0x2002          # MSR_FP | MSR_RI
    oris    11, 11, 0x0280          # (MSR_VEC | MSR_VSX) >> 16
    mtmsrd  11
.endm

    .section .text.boot, "ax"
    .globl _start
_start:
    FIXUP_ENDIAN
    # Little-endian and 64-bit now, still at the low (physical) address. Jump to the
    # link address so absolute and PC-relative addresses agree from here on.
    LOAD_ADDR 12, boot_high
    mtctr   12
    bctr
boot_high:
    ENABLE_FP_VSX
    LOAD_ADDR 2, .TOC.
    # Clear BSS (the boot stack lives there; nothing uses it yet).
    LOAD_ADDR 6, __bss_start
    LOAD_ADDR 7, __bss_end
    li      0, 0
2:  cmpld   6, 7
    bge     3f
    std     0, 0(6)
    addi    6, 6, 8
    b       2b
3:
    LOAD_ADDR 1, BOOT_STACK
    addis   1, 1, BOOT_STACK_SIZE@ha
    addi    1, 1, BOOT_STACK_SIZE@l
    li      0, 0
    stdu    0, -64(1)             # terminate the back chain
    mr      3, 5                  # client-interface entry
    bl      boot_main               # never returns
    nop
4:  b       4b

# Secondary CPUs: RTAS start-cpu entry (real address of this label), r3 = logical CPU index.
    .globl secondary_entry
secondary_entry:
    FIXUP_ENDIAN
    LOAD_ADDR 12, secondary_high
    mtctr   12
    bctr
secondary_high:
    ENABLE_FP_VSX
    LOAD_ADDR 2, .TOC.
    clrldi  3, 3, 32
    LOAD_ADDR 4, SECONDARY_STACKS  # table of stack tops, indexed by CPU
    sldi    5, 3, 3
    ldx     1, 4, 5
    li      0, 0
    stdu    0, -64(1)
    bl      secondary_main          # never returns
    nop
2:  b       2b

# int of_call_asm(args: *mut u32, entry: usize)
# Calls the Open Firmware client interface, which runs big-endian and 32-bit: switch MSR to
# that, rfid into the firmware, and come back through FIXUP_ENDIAN at the physical address
# of the return label (a 32-bit LR cannot hold our 0xc... link address). Saves every
# non-volatile register and the MSR around the call; r1 comes back from a global because a
# 32-bit firmware may not preserve the top half of r1.
.equ OFC_FRAME, 256
    .text
    .globl of_call_asm
of_call_asm:
    mflr    0
    std     0, 16(1)
    mfcr    0
    std     0, 8(1)
    stdu    1, -OFC_FRAME(1)
    std     2, 40(1)
    .irp n, 13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, (48 + (\n - 13) * 8)(1)
    .endr
    mfmsr   0
    std     0, 208(1)
    LOAD_ADDR 12, OF_SAVED_SP
    std     1, 0(12)
    # Return address: physical address of 1f.
    LOAD_ADDR 12, of_return_low
    clrldi  12, 12, PHYS_MASK_BITS
    mtlr    12
    mtsrr0  4
    mfmsr   11
    li      12, 1
    rldicr  12, 12, MSR_SF_BIT, 0
    andc    11, 11, 12           # 32-bit
    li      12, MSR_LE
    andc    11, 11, 12           # big-endian
    mtsrr1  11
    clrldi  3, 3, PHYS_MASK_BITS    # firmware sees real addresses only
    clrldi  1, 1, PHYS_MASK_BITS
    rfid
of_return_low:
    FIXUP_ENDIAN
    LOAD_ADDR 12, of_return_high
    mtctr   12
    bctr
of_return_high:
    LOAD_ADDR 12, OF_SAVED_SP
    ld      1, 0(12)
    ld      0, 208(1)
    mtmsrd  0
    ld      2, 40(1)
    .irp n, 13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      \n, (48 + (\n - 13) * 8)(1)
    .endr
    clrldi  3, 3, 32
    extsw   3, 3
    addi    1, 1, OFC_FRAME
    ld      0, 8(1)
    mtcr    0
    ld      0, 16(1)
    mtlr    0
    blr
