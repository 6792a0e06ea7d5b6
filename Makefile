# Two commands do everything on a fresh machine: `make demo` and `make test`.
# `setup` is idempotent: each step leaves a stamp and is skipped while its inputs are unchanged.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .stamps
# Debian packages: the cross toolchain, and Fashion-MNIST (the fashion_300 model's data).
APT_PACKAGES := gcc-arm-none-eabi binutils-arm-none-eabi picolibc-arm-none-eabi dataset-fashion-mnist
PICOLIBC_SPECS := /usr/lib/picolibc/arm-none-eabi/picolibc.specs
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: setup toolchain data test demo clean

setup: $(STAMPS)/venv toolchain data

$(STAMPS)/venv: pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	mkdir -p $(STAMPS) && touch $@

# Installed with apt-get when missing and we are root; otherwise we say exactly what to run.
toolchain:
	@if command -v arm-none-eabi-gcc >/dev/null && test -f $(PICOLIBC_SPECS) && test -d $(FASHION_DIR); then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing $(APT_PACKAGES) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else \
		echo "error: Debian packages are missing; run: sudo apt-get install -y $(APT_PACKAGES)" >&2; exit 1; \
	fi

data: $(STAMPS)/venv
	$(BIN)/python -m zoo.data fetch mnist

test: setup
	$(BIN)/python -m pytest

demo: setup
	$(BIN)/python -m zoo.demo

clean:
	rm -rf $(STAMPS) build runs reports
