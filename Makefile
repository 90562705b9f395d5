# rsqasr: one-command install, tests and the mini recipe.
#   make install   Debian packages (if missing), .venv with pinned requirements, the package, native builds
#   make test      install, then the Python test suite and the native kernel tests (host, ARMv7 under qemu, ASan)
#   make demo      install, then egs/mini_aishell/run.sh end to end with its defaults
#   make bench     install, then the INT8 Winograd / GEMM kernel benchmark (src_arm/BENCH.md)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install system-packages native test pytest native-test demo bench clean

install: $(STAMP) native

system-packages:
	tools/install_system_packages.sh

# Re-run when a requirement file changes; pip itself skips what is already installed.
$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml tools/install_system_packages.sh
	$(MAKE) system-packages
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

native: $(STAMP)
	@if [ -x src_arm/build.sh ]; then src_arm/build.sh host && src_arm/build.sh armv7 && src_arm/build.sh aarch64; fi

pytest: $(STAMP)
	$(PY) -m pytest -q test

native-test: native
	@if [ -x src_arm/test.sh ]; then src_arm/test.sh; fi

test: install
	$(MAKE) native-test
	$(MAKE) pytest

demo: install
	cd egs/mini_aishell && ./run.sh

bench: install
	src_arm/bench.sh

clean:
	rm -rf src_arm/build-host src_arm/build-armv7 src_arm/build-aarch64 src_arm/build-asan
