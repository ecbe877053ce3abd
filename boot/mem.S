# memcpy, memmove, memset, memcmp and bcmp for the kernel: the Rust target's
# compiler_builtins leaves them to libc, which a bare-metal kernel does not have.
# Written in assembly so the compiler cannot turn a loop back into a call to itself.
# Doubleword loops when both pointers are 8-byte aligned, bytes otherwise.

    .text
    .globl memcpy
    .globl memmove
# void *memmove(void *dst, const void *src, size_t n) -- also serves memcpy.
memcpy:
memmove:
    mr      6, 3                    # r6 = cursor in dst; r3 is returned unchanged
    cmpld   3, 4
    beqlr
    bgt     .Lmm_backward           # dst > src: copy from the end
    or      7, 3, 4
    andi.   7, 7, 7
    bne     .Lmm_fwd_bytes
.Lmm_fwd_dw:
    cmpldi  5, 8
    blt     .Lmm_fwd_bytes
    ld      7, 0(4)
    std     7, 0(6)
    addi    4, 4, 8
    addi    6, 6, 8
    addi    5, 5, -8
    b       .Lmm_fwd_dw
.Lmm_fwd_bytes:
    cmpldi  5, 0
    beqlr
    lbz     7, 0(4)
    stb     7, 0(6)
    addi    4, 4, 1
    addi    6, 6, 1
    addi    5, 5, -1
    b       .Lmm_fwd_bytes
.Lmm_backward:
    add     4, 4, 5
    add     6, 6, 5
    or      7, 6, 4
    andi.   7, 7, 7
    bne     .Lmm_bwd_bytes
.Lmm_bwd_dw:
    cmpldi  5, 8
    blt     .Lmm_bwd_bytes
    ldu     7, -8(4)
    stdu    7, -8(6)
    addi    5, 5, -8
    b       .Lmm_bwd_dw
.Lmm_bwd_bytes:
    cmpldi  5, 0
    beqlr
    lbzu    7, -1(4)
    stbu    7, -1(6)
    addi    5, 5, -1
    b       .Lmm_bwd_bytes

# void *memset(void *dst, int c, size_t n)
    .globl memset
memset:
    mr      6, 3
    andi.   4, 4, 0xff
    andi.   7, 3, 7
    bne     .Lms_bytes
    # replicate the byte into a doubleword
    insrdi  4, 4, 8, 48
    insrdi  4, 4, 16, 32
    insrdi  4, 4, 32, 0
.Lms_dw:
    cmpldi  5, 8
    blt     .Lms_bytes
    std     4, 0(6)
    addi    6, 6, 8
    addi    5, 5, -8
    b       .Lms_dw
.Lms_bytes:
    cmpldi  5, 0
    beqlr
    stb     4, 0(6)
    addi    6, 6, 1
    addi    5, 5, -1
    b       .Lms_bytes

# int memcmp(const void *a, const void *b, size_t n); bcmp has the same contract for 0/!0.
    .globl memcmp
    .globl bcmp
memcmp:
bcmp:
    cmpldi  5, 0
    beq     .Lmc_equal
    lbz     6, 0(3)
    lbz     7, 0(4)
    subf.   8, 7, 6
    bne     .Lmc_diff
    addi    3, 3, 1
    addi    4, 4, 1
    addi    5, 5, -1
    b       memcmp
.Lmc_diff:
    extsw   3, 8
    blr
.Lmc_equal:
    li      3, 0
    blr
