# Interrupt vectors and the common save/restore path.
#
# The .text.vectors block is linked position-independently and copied by the kernel to real
# address 0 (Power ISA v3.0B Book III 7.5: vectors at 0x100..0x1800, AIL=0). Each vector
# stashes r13 in SPRG2, loads the per-CPU area (PACA) from SPRG0, saves r12 there and
# branches to exc_tramp; exc_tramp jumps through the PACA to exc_common at its 0xc... link
# address, which works with translation on or off (real mode ignores the top EA bits).
#
# PACA offsets below are asserted on the Rust side (arch/paca.rs).

.equ SPRN_SPRG0, 272
.equ SPRN_SPRG2, 274
.equ PACA_TOC,      0x08
.equ PACA_COMMON,   0x10
.equ PACA_R10,      0x20
.equ PACA_R11,      0x28
.equ PACA_R12,      0x30
.equ PACA_CTR,      0x38

# Trap frame layout (arch/trapframe.rs asserts the same numbers).
.equ TF_GPR,   0
.equ TF_CR,    256
.equ TF_LR,    264
.equ TF_CTR,   272
.equ TF_XER,   280
.equ TF_SRR0,  288
.equ TF_SRR1,  296
.equ TF_DAR,   304
.equ TF_DSISR, 312
.equ TF_VEC,   320
.equ TF_FPSCR, 328
.equ TF_VSCR,  336
.equ TF_VSR,   352
.equ TF_SIZE,  1376
.equ STACK_HDR, 32              # ELFv2 minimal frame header below the trap frame
.equ RED_ZONE,  288             # ELFv2: the interrupted code may use 288 bytes below r1
.equ EXC_FRAME, (STACK_HDR + TF_SIZE)

# MSR bits: Power ISA v3.0B Book III 4.2.1.
.equ MSR_RI,  0x2
.equ MSR_FP,  0x2000
.equ MSR_VEC_VSX_HI, 0x0280     # (MSR_VEC | MSR_VSX) >> 16

.macro VECTOR off
    .org \off
    mtspr   SPRN_SPRG2, 13
    mfspr   13, SPRN_SPRG0
    std     12, PACA_R12(13)
    li      12, \off
    b       exc_tramp
.endm

    .section .text.vectors, "ax"
    .balign 0x1000
    .globl vectors_block
vectors_block:
    VECTOR 0x100    # system reset
    VECTOR 0x200    # machine check
    VECTOR 0x300    # data storage
    VECTOR 0x380    # data segment
    VECTOR 0x400    # instruction storage
    VECTOR 0x480    # instruction segment
    VECTOR 0x500    # external
    VECTOR 0x600    # alignment
    VECTOR 0x700    # program
    VECTOR 0x800    # floating-point unavailable
    VECTOR 0x900    # decrementer
    VECTOR 0x980    # hypervisor decrementer (never expected)
    VECTOR 0xa00    # directed privileged doorbell
    VECTOR 0xb00    # reserved
    VECTOR 0xc00    # system call
    VECTOR 0xd00    # trace
    VECTOR 0xe00    # hypervisor data storage
    VECTOR 0xe20    # hypervisor instruction storage
    VECTOR 0xe40    # hypervisor emulation assistance
    VECTOR 0xe60    # hypervisor maintenance
    VECTOR 0xe80    # directed hypervisor doorbell
    VECTOR 0xea0    # hypervisor virtualization
    VECTOR 0xf00    # performance monitor
    VECTOR 0xf20    # vector unavailable
    VECTOR 0xf40    # VSX unavailable
    VECTOR 0xf60    # facility unavailable
    VECTOR 0xf80    # hypervisor facility unavailable
    VECTOR 0x1500   # softpatch / denormalisation
    VECTOR 0x1600
    VECTOR 0x1700
    .org 0x1800
exc_tramp:
    std     11, PACA_R11(13)
    mfctr   11
    std     11, PACA_CTR(13)
    ld      11, PACA_COMMON(13)
    mtctr   11
    bctr
    .org 0x1900
    .globl vectors_block_end
vectors_block_end:

# Common entry: r12 = vector, r13 = PACA; r11, r12, CTR in the PACA, r13 in SPRG2.
    .text
    .globl exc_common
exc_common:
    std     10, PACA_R10(13)
    mr      11, 1
    addi    1, 1, -(RED_ZONE + EXC_FRAME)
    clrrdi  1, 1, 4
    std     11, 0(1)                      # back chain to the interrupted frame
    addi    10, 1, STACK_HDR              # r10 = trap frame
    std     11, (TF_GPR + 1 * 8)(10)
    std     0,  (TF_GPR + 0 * 8)(10)
    .irp n, 2,3,4,5,6,7,8,9
    std     \n, (TF_GPR + \n * 8)(10)
    .endr
    .irp n, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     \n, (TF_GPR + \n * 8)(10)
    .endr
    ld      11, PACA_R10(13)
    std     11, (TF_GPR + 10 * 8)(10)
    ld      11, PACA_R11(13)
    std     11, (TF_GPR + 11 * 8)(10)
    ld      11, PACA_R12(13)
    std     11, (TF_GPR + 12 * 8)(10)
    mfspr   11, SPRN_SPRG2
    std     11, (TF_GPR + 13 * 8)(10)
    std     12, TF_VEC(10)
    ld      11, PACA_CTR(13)
    std     11, TF_CTR(10)
    mflr    11
    std     11, TF_LR(10)
    mfcr    11
    std     11, TF_CR(10)
    mfxer   11
    std     11, TF_XER(10)
    mfsrr0  11
    std     11, TF_SRR0(10)
    mfsrr1  11
    std     11, TF_SRR1(10)
    mfdar   11
    std     11, TF_DAR(10)
    mfdsisr 11
    std     11, TF_DSISR(10)
    # SRR0/1 are safe: mark the state recoverable and turn on FP/VMX/VSX to save them.
    mfmsr   11
    ori     11, 11, (MSR_RI | MSR_FP)
    oris    11, 11, MSR_VEC_VSX_HI
    mtmsrd  11
    li      11, TF_VSR
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
    stxvd2x \n, 10, 11
    addi    11, 11, 16
    .endr
    mffs    0
    stfd    0, TF_FPSCR(10)
    mfvscr  0
    li      11, TF_VSCR
    stvx    0, 10, 11
    ld      2, PACA_TOC(13)
    mr      3, 10
    bl      exception_entry
    nop
    # Restore everything from the (possibly edited) trap frame.
    addi    10, 1, STACK_HDR
    li      11, TF_VSCR
    lvx     0, 10, 11
    mtvscr  0
    lfd     0, TF_FPSCR(10)
    mtfsf   0xff, 0
    li      11, TF_VSR
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
    lxvd2x  \n, 10, 11
    addi    11, 11, 16
    .endr
    ld      11, TF_CR(10)
    mtcr    11
    ld      11, TF_LR(10)
    mtlr    11
    ld      11, TF_CTR(10)
    mtctr   11
    ld      11, TF_XER(10)
    mtxer   11
    # From here SRR0/1 hold live state: clear MSR[RI] (and EE) until rfid.
    li      11, 0
    mtmsrd  11, 1
    ld      11, TF_SRR0(10)
    mtsrr0  11
    ld      11, TF_SRR1(10)
    mtsrr1  11
    ld      0, (TF_GPR + 0 * 8)(10)
    .irp n, 2,3,4,5,6,7,8,9,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      \n, (TF_GPR + \n * 8)(10)
    .endr
    ld      1, (TF_GPR + 1 * 8)(10)
    ld      10, (TF_GPR + 10 * 8)(10)
    rfid
