# SPDX-License-Identifier: GPL-2.0
#
# kvmx top-level build.  The two commands the README promises:
#   make run    build, boot the default QEMU test host, load kvmx, run the demo
#   make test   install what is missing, build everything, run every test
# Everything generated goes to build/.

SHELL := /bin/bash
.DEFAULT_GOAL := all

KERNEL_LINES := 6.1 6.12
KMOD_SOURCES := Kbuild kmod arch-x86 mm include uapi
JOBS ?= 2
PYTHON := /usr/bin/python3

# Every selftest suite: a directory of selftests/ with its own CMakeLists.txt.
SUITES := $(filter-out lib,$(notdir $(patsubst %/CMakeLists.txt,%,$(wildcard selftests/*/CMakeLists.txt))))

release = $(shell cat build/kernels/$(1)/release 2>/dev/null)

.PHONY: all deps deps-build kernels modules modules-check checkpatch userspace unit \
	pytest ctest fuzz-smoke test matrix bench run shell clean help

all: modules userspace

help:
	@echo "make run      build, boot the default test host (QEMU, AMD, 6.1, kvmx, TDP), run the demo"
	@echo "make test     install missing packages, build, unit tests, the whole test-host matrix"
	@echo "make modules  kvmx.ko, kvmx-amd.ko, kvmx-intel.ko for every kernel line (build/kmod/<line>)"
	@echo "make userspace  the C++ library, tools and selftests (build/bin)"
	@echo "make unit     the build-machine tests: C++ unit tests and the ci/ pytest suite"
	@echo "make modules-check  W=1 + sparse build of the modules"
	@echo "make checkpatch  the kernel's checkpatch.pl over the kernel sources"
	@echo "make fuzz-smoke  short libFuzzer runs of the pure-logic code (clang)"
	@echo "make matrix   every suite ($(SUITES)) in every test-host cell"
	@echo "make bench    kvmx-bench on kvmx and in-tree KVM, TDP and shadow, one boot per host;"
	@echo "              table and chart in bench/results/ (BENCH_HOSTS='$(BENCH_HOSTS)')"

deps:
	scripts/deps.sh all

deps-build:
	scripts/deps.sh build

kernels:
	scripts/kernels.sh $(KERNEL_LINES)

# Each kernel line builds in its own tree of symlinks to the sources, so the
# objects of one line never satisfy the other's make.
define kmod_rules
build/kmod/$(1)/.tree: FORCE
	@mkdir -p build/kmod/$(1)
	@cp -rsf $(addprefix $(CURDIR)/,$(KMOD_SOURCES)) build/kmod/$(1)/
	@find build/kmod/$(1) -xtype l -delete

modules-$(1): kernels build/kmod/$(1)/.tree
	$(MAKE) -C /usr/src/linux-headers-$$(call release,$(1)) M=$(CURDIR)/build/kmod/$(1) W=1 modules
endef
$(foreach l,$(KERNEL_LINES),$(eval $(call kmod_rules,$(l))))
.PHONY: FORCE $(addprefix modules-,$(KERNEL_LINES))
FORCE:

modules: $(addprefix modules-,$(KERNEL_LINES))

# Sparse over every object, for both kernel lines (C=2 checks even up-to-date files).
modules-check: modules
	@for l in $(KERNEL_LINES); do \
		$(MAKE) -C /usr/src/linux-headers-$$(cat build/kernels/$$l/release) \
			M=$(CURDIR)/build/kmod/$$l W=1 C=2 modules 2>&1 | tee build/kmod/$$l/sparse.log; \
		! grep -E '(warning|error):' build/kmod/$$l/sparse.log || exit 1; \
	done

checkpatch:
	scripts/checkpatch.sh

userspace:
	cmake -S . -B build/userspace -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/userspace -j$(JOBS)

ctest: userspace
	ctest --test-dir build/userspace --output-on-failure -j$(JOBS)

# The libFuzzer targets of the pure-logic code need clang: a build of their own.
fuzz-smoke:
	cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	cmake --build build/fuzz -j$(JOBS) --target fuzzers
	ctest --test-dir build/fuzz --output-on-failure -R 'fuzz_smoke'

pytest:
	$(PYTHON) -m pytest -q ci/tests

unit: ctest fuzz-smoke pytest

# Bounded so that a hung test host cannot eat CI's 90 minutes: each boot gets
# 45 minutes of wall time (a Bochs boot with every suite takes 7-13 here), and
# a suite is killed after 10 minutes of guest time.
matrix: modules userspace
	ci/testhost matrix --jobs $(JOBS) --timeout 2700 --suite-timeout 600 \
		$(addprefix --suite ,$(SUITES))

test: deps
	$(MAKE) modules-check
	$(MAKE) checkpatch
	$(MAKE) unit
	$(MAKE) matrix

# kvmx-bench in one boot per test host: in-tree KVM (npt/ept on, then off), then kvmx (TDP,
# then shadow), each module unloaded before the next loads. Results, table and chart land in
# bench/results/<cpu>-<kernel>/ (docs/bench.md). Numbers from emulated hosts show shapes, not speed.
BENCH_HOSTS ?= amd:6.1 intel:6.1
BENCH_SCALE ?= small
bench: modules userspace
	scripts/deps.sh bench
	@status=0; for h in $(BENCH_HOSTS); do \
		ci/testhost bench --cpu $${h%%:*} --kernel $${h##*:} --scale $(BENCH_SCALE) \
			--suite-timeout 3000 --quiet --out bench/results --results build/testhost-bench \
			|| status=1; \
	done; exit $$status

run: deps
	$(MAKE) modules userspace
	ci/testhost run --kernel 6.1 --cpu amd --impl kvmx --mmu tdp --suite kvmx-demo

shell: modules userspace
	ci/testhost shell --kernel 6.1 --cpu amd --impl kvmx --mmu tdp

clean:
	rm -rf build
