"""The C half of the cycle model (cycles.c), compiled on first use and loaded with ctypes.

The library is a plain shared object, not a Python extension: libunicorn calls its hooks directly, so counting
cycles costs tens of nanoseconds per block instead of a Python call (~1.2 us). It is compiled with the system C
compiler into a cache directory keyed by the source's hash (`python -m rp2040_sim build-native` does it ahead of
time; `make setup` runs that), so an editable install always runs the code it was built from.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("cycles.c")
CFLAGS = ["-O2", "-shared", "-fPIC", "-std=c11", "-Wall", "-Wextra", "-Werror"]


class NativeBuildError(RuntimeError):
    """The C cycle-accounting library could not be built; the message says what to install."""


def cache_dir() -> Path:
    base = os.environ.get("PICOZOO_NATIVE_CACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "picozoo" / "rp2040_sim"


def library_path() -> Path:
    digest = hashlib.sha256(SOURCE.read_bytes() + " ".join(CFLAGS).encode()).hexdigest()[:16]
    return cache_dir() / f"libsimcycles-{digest}.so"


def compiler() -> str:
    if os.environ.get("CC"):
        cc = shutil.which(os.environ["CC"])
        if not cc:
            raise NativeBuildError(f"$CC is {os.environ['CC']!r}, which is not an executable on PATH: rp2040_sim "
                                   f"compiles {SOURCE.name} for its cycle accounting; set CC to a C compiler")
        return cc
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise NativeBuildError(
            f"no C compiler found (tried $CC, cc, gcc, clang): rp2040_sim compiles {SOURCE.name} for its cycle "
            "accounting; install one, e.g. `sudo apt-get install -y gcc`, then rerun")
    return cc


def build(force: bool = False) -> Path:
    """Compile cycles.c into the cache unless an up-to-date copy is there; returns the library path."""
    out = library_path()
    if out.is_file() and not force:
        return out
    cc = compiler()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=out.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, "-o", tmp, str(SOURCE)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise NativeBuildError(f"{cc} failed to compile {SOURCE}:\n{proc.stderr.strip()}")
        os.replace(tmp, out)  # atomic: parallel workers never load half a library
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


class Block(ctypes.Structure):
    _fields_ = [("addr", ctypes.c_uint32), ("size", ctypes.c_uint32), ("cycles", ctypes.c_uint32),
                ("insns", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("last_kind", ctypes.c_uint32),
                ("checksum", ctypes.c_uint32), ("used", ctypes.c_uint32), ("execs", ctypes.c_uint64),
                ("total_cycles", ctypes.c_uint64)]


class State(ctypes.Structure):
    """The head of `sim_state` in cycles.c: the counters Python reads and writes."""
    _fields_ = [("cycles", ctypes.c_uint64), ("instructions", ctypes.c_uint64), ("xip_hits", ctypes.c_uint64),
                ("xip_accesses", ctypes.c_uint64), ("xip_misses", ctypes.c_uint64), ("budget", ctypes.c_uint64),
                ("stop_reason", ctypes.c_uint32), ("stack_limit", ctypes.c_uint32), ("min_sp", ctypes.c_uint32),
                ("xip_miss_penalty", ctypes.c_uint32), ("xip_cache_enabled", ctypes.c_uint32),
                ("fault_addr", ctypes.c_uint32), ("block_hook_calls", ctypes.c_uint64),
                ("wall_deadline_ns", ctypes.c_uint64), ("irq_hint", ctypes.c_uint32), ("event_reg", ctypes.c_uint32),
                ("other_event", ctypes.c_void_p), ("stop_pc", ctypes.c_uint32), ("stop_before", ctypes.c_uint32)]


class UartRegs(ctypes.Structure):
    """`uart_native` in cycles.c: UARTFR as the Python model published it, whether UARTDR stores only append, and
    the bytes they appended."""
    _fields_ = [("fr", ctypes.c_uint32), ("tx_direct", ctypes.c_uint32), ("len", ctypes.c_uint32),
                ("cap", ctypes.c_uint32), ("buf", ctypes.POINTER(ctypes.c_uint8))]


class SsiPoll(ctypes.Structure):
    """`ssi_native` in cycles.c: a flash status transaction run natively, and what the Python models published for
    it (peripherals/xip.py Ssi._publish)."""
    _fields_ = [("poll_ok", ctypes.c_uint32), ("sr1", ctypes.c_uint32), ("sr2", ctypes.c_uint32),
                ("cmd", ctypes.c_uint32), ("nargs", ctypes.c_uint32), ("rx_head", ctypes.c_uint32),
                ("rx_len", ctypes.c_uint32), ("rx", ctypes.c_uint32 * 64), ("selected", ctypes.c_uint32),
                ("ss_ctrl", ctypes.c_uint32), ("ss_written", ctypes.c_uint32), ("pad_", ctypes.c_uint32),
                ("busy_until", ctypes.c_uint64),
                ("time_a", ctypes.c_void_p), ("time_b", ctypes.c_void_p)]


# The Python side of a peripheral port (cycles.c sim_mmio_read/sim_mmio_write): (offset, size[, value]).
PORT_READ = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64, ctypes.c_uint32)
PORT_WRITE = ctypes.CFUNCTYPE(None, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint64)

STOP_NONE, STOP_BUDGET, STOP_STACK, STOP_DECODE, STOP_WALL, STOP_SPECIAL = 0, 1, 2, 3, 4, 5

_lib = None


def load() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    lib = ctypes.CDLL(str(build()))
    vp, u32, u64, i64 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint64, ctypes.c_int64
    lib.sim_new.restype = ctypes.POINTER(State)
    lib.sim_free.argtypes = [vp]
    lib.sim_bind.argtypes = [vp, vp, vp, vp, vp]
    lib.sim_reset_prev.argtypes = [vp]
    lib.sim_add_cycles.argtypes = [vp, i64]
    lib.sim_settle.argtypes = [vp, u32]
    lib.sim_abort_block.argtypes = [vp, u32]
    lib.sim_abort_block.restype = u32
    lib.sim_prev_end.argtypes = [vp]
    lib.sim_prev_end.restype = u32
    lib.sim_set_other_event.argtypes = [vp, vp]
    lib.sim_xip_flush.argtypes = [vp]
    lib.sim_share_xip.argtypes = [vp, vp]
    lib.sim_xip_state_size.restype = u32
    lib.sim_xip_save.argtypes = [vp, ctypes.c_char_p]
    lib.sim_xip_load.argtypes = [vp, ctypes.c_char_p]
    lib.sim_profile.restype = u32
    lib.sim_profile.argtypes = [vp, ctypes.POINTER(u32), ctypes.POINTER(u32), ctypes.POINTER(u64),
                                ctypes.POINTER(u64), u32]
    lib.sim_decode_cost.restype = u32
    lib.sim_decode_cost.argtypes = [ctypes.c_char_p, u32, ctypes.POINTER(u32), ctypes.POINTER(u32)]
    lib.sim_forget_blocks.argtypes = [vp]
    lib.sim_set_flash.argtypes = [vp, vp]
    lib.sim_port_new.restype = vp
    lib.sim_port_new.argtypes = [vp, ctypes.c_int32, ctypes.c_int32, vp, vp]
    lib.sim_port_free.argtypes = [vp]
    lib.sim_port_set_native.argtypes = [vp, vp, vp, vp]
    lib.sim_sio_new.restype = vp
    lib.sim_sio_new.argtypes = [vp, vp, u32]
    lib.sim_sio_set_time_b.argtypes = [vp, vp]
    lib.sim_sio_free.argtypes = [vp]
    lib.sim_sio_owns.restype = ctypes.c_int
    lib.sim_sio_owns.argtypes = [u32]
    lib.sim_sio_read.restype = ctypes.c_int
    lib.sim_sio_read.argtypes = [vp, u32, u32, ctypes.POINTER(u64)]
    lib.sim_sio_write.restype = ctypes.c_int
    lib.sim_sio_write.argtypes = [vp, u32, u32, u64]
    lib.sim_uart_new.restype = ctypes.POINTER(UartRegs)
    lib.sim_uart_free.argtypes = [vp]
    lib.sim_uart_size.restype = u32
    lib.sim_ssi_new.restype = ctypes.POINTER(SsiPoll)
    lib.sim_ssi_new.argtypes = [vp]
    lib.sim_ssi_size.restype = u32
    lib.sim_ssi_set_time_b.argtypes = [vp, vp]
    lib.sim_ssi_free.argtypes = [vp]
    lib.sim_block_count.restype = u32
    lib.sim_block_count.argtypes = [vp]
    lib.sim_state_size.restype = u32
    lib.sim_block_size.restype = u32
    if lib.sim_block_size() != ctypes.sizeof(Block):
        raise NativeBuildError(f"{SOURCE}: block_t layout does not match native/__init__.py's Block")
    if lib.sim_ssi_size() != ctypes.sizeof(SsiPoll):
        raise NativeBuildError(f"{SOURCE}: ssi_native layout does not match native/__init__.py's SsiPoll")
    if lib.sim_uart_size() != ctypes.sizeof(UartRegs):
        raise NativeBuildError(f"{SOURCE}: uart_native layout does not match native/__init__.py's UartRegs")
    _lib = lib
    return lib


def function(name: str) -> ctypes.c_void_p:
    """The address of one of the library's functions (a native register set's read/write for sim_port_set_native)."""
    return ctypes.cast(getattr(load(), name), ctypes.c_void_p)


def decode_cost(code: bytes) -> tuple[int, int, bool]:
    """(static cycles, instructions, ends with a conditional branch) of a run of Thumb code."""
    insns, cond = ctypes.c_uint32(), ctypes.c_uint32()
    cycles = load().sim_decode_cost(code, len(code), ctypes.byref(insns), ctypes.byref(cond))
    return cycles, insns.value, bool(cond.value)


if __name__ == "__main__":
    print(build(force="--force" in sys.argv))
