# Loaded by `make gdb` (tests/src/gdb.rs starts QEMU with -s -S, then gdb-multiarch with the
# kernel ELF). The firmware enters the kernel big-endian (../shared/DESIGN.md section 2) and
# QEMU's stub sends registers in the CPU's current byte order, so: talk big-endian until the
# kernel has switched to little-endian 64-bit (label boot_high in boot/entry.S), then
# little-endian for the rest of the session. Breakpoints are handled by QEMU, not written
# into memory, so they work on every vCPU (one gdb thread per vCPU).
set pagination off
source tests/gdb/ptfrag.py
set confirm off
set architecture powerpc:common64
set endian big
break *boot_high
continue
set endian little
# The stop above was decoded big-endian; re-read the registers in the new byte order.
maintenance flush register-cache
delete
echo \nptfrag: stopped at boot_high (little-endian, 64-bit, MMU off). Set breakpoints, then `continue`.\n
echo ptfrag: helpers (once the kernel is past boot): ptfrag-info, ptfrag-page ADDR, ptfrag-walk PID EA, ptfrag-rcu\n
