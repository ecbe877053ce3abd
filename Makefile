# ptfrag: build, run and test the kernel. `make run` and `make test` install what is
# missing (tests/ensure-deps: the pinned toolchain's target and components through rustup;
# QEMU and gdb-multiarch through apt when root).

FW    ?= vof
SMP   ?= 1
ARGS  ?=
QEMU_EXTRA ?=
FILTER ?=
# ICOUNT=1: QEMU's instruction counter (-icount shift=0 on one TCG thread) for run and bench:
# guest time counts instructions, the same from run to run.
ICOUNT ?=
# CELLS=substr: only the bench cells whose name contains it (bench-radix-smp4-mms1, ...).
CELLS ?=
ICOUNT_FLAG := $(if $(filter-out 0,$(ICOUNT)),--icount)

TARGET  := powerpc64le-unknown-linux-gnu
KERNEL  := target/$(TARGET)/release/ptfrag
HARNESS := cargo run -q --release -p ptfrag-tests --bin harness --

SOAK_ROUNDS ?= 400
STRATEGY ?= active
MMU ?= radix

.PHONY: all deps kernel run test soak mutants bench bench-quick trace gdb lint clippy fmt fmt-check host-test clean

all: kernel

deps:
	@tests/ensure-deps

kernel: deps
	cargo build --release -p ptfrag-kernel --target $(TARGET)
	$(HARNESS) ksyms $(KERNEL)

run: kernel
	$(HARNESS) run --fw $(FW) --smp $(SMP) --args "$(ARGS)" --qemu-extra "$(QEMU_EXTRA)" $(ICOUNT_FLAG)

gdb: kernel
	$(HARNESS) gdb --fw $(FW) --smp $(SMP) --args "$(ARGS)"

test: kernel lint
	$(HARNESS) test --jobs 2 $(if $(FILTER),--filter $(FILTER))

# The retract matrix with many more collapse rounds (minutes): every strategy, both MMUs,
# and the negative controls, which must still be caught.
soak: kernel
	$(HARNESS) test --skip-host --jobs 2 --soak $(SOAK_ROUNDS)

# The mutant catalogue (tests/src/mutants/catalogue.rs): each small bug built and booted in a
# copy of the tree; prints which of the kernel's checks caught it, exits 1 on any miss.
mutants: kernel
	$(HARNESS) mutants

# The retract benchmark (docs/bench.md): {radix, radix64, hash} x (vCPUs, address spaces) in
# {1,2,4} x {1,4} and (8, 1), one boot at a time, each running every strategy round by round in
# two phases; results.json/.csv, tables.txt and SVG plots in target/bench (ICOUNT=1:
# target/bench-icount, the same cells, instruction counts).
BENCH_FLAGS = $(ICOUNT_FLAG) $(if $(CELLS),--cells $(CELLS))
bench: kernel
	$(HARNESS) bench $(BENCH_FLAGS)

# vCPUs {1,4} with one address space.
bench-quick: kernel
	$(HARNESS) bench --quick $(BENCH_FLAGS)

# One boot with trace=1 of the late_deferral schedule (2 vCPUs unless SMP= is given):
# target/trace/$(STRATEGY)-$(MMU).json (ui.perfetto.dev, chrome://tracing) and .svg.
trace: kernel
	$(HARNESS) trace --strategy $(STRATEGY) --mmu $(MMU) $(if $(filter-out file,$(origin SMP)),--smp $(SMP))

lint: clippy fmt-check

clippy: deps
	cargo clippy -q -p ptfrag-core -p ptfrag-tests --all-targets -- -D warnings
	cargo clippy -q -p ptfrag-kernel --target $(TARGET) --release -- -D warnings

fmt:
	cargo fmt --all

fmt-check:
	cargo fmt --all --check

host-test:
	cargo test -p ptfrag-core -p ptfrag-tests

clean:
	cargo clean
