# Two commands do everything on a fresh machine: `make demo` and `make test`.
# `setup` is idempotent: each step leaves a stamp and is skipped while its inputs are unchanged.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .stamps
TOOLCHAIN_PACKAGES := gcc-arm-none-eabi binutils-arm-none-eabi picolibc-arm-none-eabi
PICOLIBC_SPECS := /usr/lib/picolibc/arm-none-eabi/picolibc.specs

.PHONY: setup toolchain data test demo clean

setup: $(STAMPS)/venv toolchain data

$(STAMPS)/venv: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	mkdir -p $(STAMPS) && touch $@

# Debian's cross toolchain; installed with apt-get when we are root, otherwise we say exactly what to run.
toolchain:
	@if command -v arm-none-eabi-gcc >/dev/null && test -f $(PICOLIBC_SPECS); then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing $(TOOLCHAIN_PACKAGES) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TOOLCHAIN_PACKAGES) >/dev/null; \
	else \
		echo "error: the ARM toolchain is missing; run: sudo apt-get install -y $(TOOLCHAIN_PACKAGES)" >&2; exit 1; \
	fi

data: $(STAMPS)/venv
	$(BIN)/python -m zoo.data fetch mnist

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m zoo.train mnist_300

clean:
	rm -rf $(STAMPS) build runs reports
