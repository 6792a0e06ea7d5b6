"""Call one int8 kernel (firmware/kernels/int8_*.c) of a bare Cortex-M0+ build in the emulator, outside any firmware.

    image = KernelImage.build(tmp_dir)           # the kernel sources, cross-compiled and linked at 0x10000000
    run = image.call(layer, "pz_q8_sparse")      # layer: a dict of integer tensors (random_layer below)
    run.y, run.cycles, run.instructions          # int8 outputs per input row, rp2040_sim's counts per call

Each call gets a fresh Rp2040 (core.py): the ELF goes into flash, the layer's packed arrays and its pz_q8_layer_t go
into SRAM through a bump allocator, and the kernel is called with r0-r2 = layer, x, y and LR pointing at a
`bkpt #0` in SRAM, so the run ends the way a firmware call does (Stop "halt") and a fault is reported as one. Cycles
are the emulator's own (native/cycles.c: the M0+ timing table plus the XIP cache, cold at the start of every call).
A caller that wants its own per-instruction accounting passes `hook(addr, size)`; it sees only the kernel
image's instructions, not the halt.

The layer tensors and the NumPy golden model used to check the outputs are here too (random_layer, shared_layer,
golden), so tests and benchmarks draw the same layers.
"""

from __future__ import annotations

import ctypes
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from compress import conv_layout, layout, reference
from rp2040_sim.core import Rp2040, SimConfig
from rp2040_sim.elfinfo import ElfInfo
from rp2040_sim.faults import format_fault
from rp2040_sim.memory import SRAM_BASE, SRAM_END, XIP_BASE

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "firmware" / "kernels"
SOURCES = [KERNELS / n for n in ("int8_common.c", "int8_dense_ref.c", "int8_dense_m0.c", "int8_sparse.c",
                                  "int8_shared.c")]
ARM_GCC = "arm-none-eabi-gcc"
# firmware.build's CPU_FLAGS + C_FLAGS (without its picolibc define), freestanding: no libc here.
# tests/test_compress_kernels.py checks the two stay the same.
ARM_FLAGS = ["-mcpu=cortex-m0plus", "-mthumb", "-O2", "-std=c11", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
             "-g", "-ffunction-sections", "-fdata-sections", "-fno-common"]

FLASH = XIP_BASE
HALT = SRAM_BASE                 # bkpt #0: where every kernel call returns to
HEAP = SRAM_BASE + 0x100         # the layer's arrays, its struct, then x and y of each row
STACK_TOP = SRAM_END
DEFAULT_MAX_CYCLES = 1 << 30     # per row; the slowest layer anyone calls (784x300 reference) takes 15 M
GUARD = 8                        # 0xA5 bytes after y: the kernel must write only n_out
STORAGE = {"pz_q8_dense_m0": "dense", "pz_q8_dense_ref": "dense", "pz_q8_sparse": "sparse",
           "pz_q8_shared": "shared"}

# pz_q8_layer_t (firmware/kernels/int8.h is the source of truth), the only copy of it in Python: the ARM layout
# below and the host's ctypes view in the tests are both made from this list. "ptr" is a pointer.
LAYER_FIELDS = (("n_in", ctypes.c_uint32), ("n_out", ctypes.c_uint32), ("w", "ptr"), ("row_len", "ptr"),
                ("bias", "ptr"), ("multiplier", "ptr"), ("shift", "ptr"), ("out_zp", ctypes.c_int8),
                ("act_min", ctypes.c_int8), ("act_max", ctypes.c_int8), ("out_xor", ctypes.c_uint8),
                ("codebook", "ptr"))


def layer_fields(pointer) -> list:
    """ctypes _fields_ of pz_q8_layer_t with `pointer` as the pointer type."""
    return [(name, pointer if kind == "ptr" else kind) for name, kind in LAYER_FIELDS]


class ArmLayer(ctypes.LittleEndianStructure):
    """pz_q8_layer_t as the M0+ build lays it out: 32-bit pointers, natural alignment (AAPCS) = ctypes'."""
    _fields_ = layer_fields(ctypes.c_uint32)


assert ctypes.sizeof(ArmLayer) == 36


class KernelBuildError(RuntimeError):
    """arm-none-eabi-gcc is missing or rejected the kernels; the message holds its output."""


class KernelFault(RuntimeError):
    """The kernel did not return to the halt: the message is rp2040_sim's fault report."""


@dataclass
class KernelRun:
    y: np.ndarray                # (rows, n_out) int8, out_xor undone
    cycles: list[int]            # emulator cycles of each row's call
    instructions: list[int]
    entries: int                 # weight entries the kernel reads: n_in*n_out (dense), pairs, code3 bytes


def _link_bare(out: Path, sources, entry: str) -> Path:
    """Cross-compile `sources` into one bare ELF linked at the start of flash: no startup code, no libc."""
    out = Path(out)
    cmd = [ARM_GCC, *ARM_FLAGS, f"-I{KERNELS}", "-nostdlib", f"-Wl,-Ttext=0x{FLASH:08x}", f"-Wl,-e,{entry}",
           *map(str, sources), "-lgcc", "-o", str(out)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError:
        raise KernelBuildError(f"{ARM_GCC} not found (apt-get install gcc-arm-none-eabi)") from None
    if r.returncode != 0:
        raise KernelBuildError(f"{' '.join(cmd)}\n{r.stderr}")
    return out


def build(out: Path) -> Path:
    """The dense kernels (SOURCES) as one bare ELF."""
    return _link_bare(out, SOURCES, "pz_q8_dense_m0")


def prepared_sim(flash: bytes, hook: Callable[[int, int], None] | None = None, config: SimConfig | None = None):
    """A fresh emulator with a kernel image in flash and the halt `bkpt #0` at HALT, an optional code hook over the
    image, and `put(data, skew=0) -> address`, a word-aligned bump allocator from HEAP for the layer's data (`skew`
    bytes past the aligned address, to prove a kernel needs no alignment)."""
    from unicorn import UC_HOOK_CODE

    sim = Rp2040(config)
    sim.load_flash(flash)
    sim.write(HALT, b"\x00\xbe")  # bkpt #0
    if hook is not None:
        sim.uc.hook_add(UC_HOOK_CODE, lambda uc, addr, size, _: hook(addr, size), None, FLASH,
                        FLASH + len(flash) - 1)
    heap = [HEAP]

    def put(data: bytes, skew: int = 0) -> int:
        addr = heap[0] + skew
        sim.write(addr, data)
        heap[0] = (addr + len(data) + 3) & ~3
        return addr

    return sim, put


class KernelImage:
    def __init__(self, elf_path):
        self.path = Path(elf_path)
        self.elf = ElfInfo(self.path)
        self.flash = self.elf.flash_image()

    @classmethod
    def build(cls, out_dir) -> KernelImage:
        return cls(build(Path(out_dir) / "kernels.elf"))

    def call(self, t: dict, fn: str, out_xor: int = 0, hook: Callable[[int, int], None] | None = None,
             config: SimConfig | None = None, max_cycles: int = DEFAULT_MAX_CYCLES) -> KernelRun:
        """Run kernel `fn` on layer `t` once per row of t["xu"]."""
        sim, put = prepared_sim(self.flash, hook, config)

        n_out, n_in = t["w"].shape
        storage = STORAGE[fn]
        book_addr = 0
        if storage == "sparse":
            entries, row_len = layout.pack_sparse(t["w"])
            w_addr, rl_addr = put(entries.tobytes() or b"\0\0\0\0"), put(row_len.tobytes() or b"\0\0")
            n_entries = len(entries) // 2
        elif storage == "shared":
            entries, row_len, book = layout.pack_shared(t["w"])   # row_len: the col_len of the column format
            # the code3 entries need no alignment: prove it with an odd address
            w_addr = put(entries.tobytes() or b"\0", skew=1)
            rl_addr, book_addr = put(row_len.tobytes()), put(book.tobytes())
            n_entries = entries.size
        else:
            w_addr, rl_addr = put(layout.pack_dense(t["w"]).tobytes()), 0
            n_entries = n_in * n_out
        fb = layout.folded_bias(t["bias"], t["w"], t["zp_in"])
        b_addr, m_addr, s_addr = put(fb.tobytes()), put(t["mult"].tobytes()), put(t["shift"].tobytes())
        l_addr = put(bytes(ArmLayer(n_in, n_out, w_addr, rl_addr, b_addr, m_addr, s_addr, t["zp_out"],
                                    t["act_min"], t["act_max"], out_xor, book_addr)))
        ys, cycles, instructions = [], [], []
        for row in t["xu"]:
            x_addr, y_addr = put(row.tobytes()), put(b"\xa5" * (n_out + GUARD))
            sim.set_regs(r0=l_addr, r1=x_addr, r2=y_addr, sp=STACK_TOP, lr=HALT | 1)
            c0, i0 = sim.state.cycles, sim.state.instructions
            stop = sim.run(self.elf.addr(fn), max_cycles)
            if not stop.ok:
                raise KernelFault(f"{fn} on a {n_in}x{n_out} layer:\n{format_fault(sim, self.elf, stop, STACK_TOP)}")
            cycles.append(sim.state.cycles - c0)
            instructions.append(sim.state.instructions - i0)
            y = np.frombuffer(sim.read(y_addr, n_out + GUARD), np.uint8)
            if np.any(y[n_out:] != 0xA5):
                raise KernelFault(f"{fn} wrote past y[{n_out}]")
            ys.append((y[:n_out] ^ out_xor).view(np.int8))
        sim.close()
        return KernelRun(np.array(ys), cycles, instructions, n_entries)


# -- layers to call the kernels with, and what they must answer -----------------------------------------------------
def random_layer(rng, n_in, n_out, density=1.0, edge=None):
    """Integer tensors of one layer plus an input batch; `edge` pushes weights/inputs/scales to their limits."""
    w = rng.integers(-127, 128, (n_out, n_in))
    w[rng.random((n_out, n_in)) >= density] = 0
    xu = rng.integers(0, 256, (3, n_in))
    mult = rng.integers(2**30, 2**31, n_out)
    shift = rng.integers(-1, 16, n_out)
    bias = rng.integers(-2**20, 2**20, n_out)
    if edge == "max":  # the largest products, multipliers and accumulators: outputs saturate at +127 / -128
        w = np.where(rng.random((n_out, n_in)) < 0.5, 127, -127)
        xu[:] = 255
        mult[:] = 2**31 - 1
        shift[:] = -1
    elif edge == "zero":  # zero inputs and weights: only bias and zero points remain
        xu[:] = 0
        w[:, ::2] = 0
    elif edge == "tiny":  # multiplier so small everything rounds to the zero point (total shift 62)
        shift[:] = 31
        mult[:] = rng.integers(0, 2**31, n_out)
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
    relu = bool(rng.integers(0, 2))
    return dict(w=w.astype(np.int8), xu=xu.astype(np.uint8), bias=bias.astype(np.int32),
                mult=mult.astype(np.int32), shift=shift.astype(np.int8), zp_in=zp_in, zp_out=zp_out,
                act_min=zp_out if relu else -128, act_max=127)


def shared_layer(rng, n_in, n_out, density=1.0, levels=7, edge=None):
    """A layer the code3 format holds: at most `levels` distinct non-zero weights, one multiplier and shift."""
    t = random_layer(rng, n_in, n_out, density, edge)
    values = np.array([127, -127]) if edge == "max" else rng.choice(np.r_[-127:0, 1:128], levels, replace=False)
    w = rng.choice(values, t["w"].shape)
    w[t["w"] == 0] = 0
    t["w"] = w.astype(np.int8)
    t["mult"][:] = t["mult"][0]
    t["shift"][:] = t["shift"][0]
    return t


def golden(t):
    """compress.reference's int8 outputs of the layer for every row of t["xu"]."""
    q = t["xu"].astype(np.int64) - 128
    return reference.dense_layer(q, t["w"], t["bias"], t["mult"], t["shift"], t["zp_in"], t["zp_out"],
                                 t["act_min"], t["act_max"]).astype(np.int8)


# -- conv kernels (firmware/kernels/conv*.c) ----------------------------------------------------------------------
CONV_SOURCES = [KERNELS / n for n in ("int8_common.c", "conv_q8_ref.c", "conv_q8_m0.c", "dwconv_q8_m0.c",
                                       "pwconv_q8_m0.c")]
CONV_SHAPE_FIELDS = ([(n, ctypes.c_uint16) for n in ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c")]
                     + [(n, ctypes.c_uint8) for n in ("k_h", "k_w", "stride_h", "stride_w", "pad_top", "pad_left")])


class ConvShape(ctypes.LittleEndianStructure):
    """pz_conv_shape_t (firmware/kernels/conv.h), the same on the host and the M0+ (no pointers)."""
    _fields_ = CONV_SHAPE_FIELDS


def conv_fields(pointer) -> list:
    """ctypes _fields_ of pz_q8_conv_t with `pointer` as the pointer type."""
    return [("s", ConvShape), ("w", pointer), ("bias", pointer), ("multiplier", pointer), ("shift", pointer),
            ("out_zp", ctypes.c_int8), ("act_min", ctypes.c_int8), ("act_max", ctypes.c_int8),
            ("out_xor", ctypes.c_uint8), ("pad", ctypes.c_uint8), ("scratch", pointer), ("rq", pointer),
            ("w_layout", ctypes.c_uint8)]


class ArmConv(ctypes.LittleEndianStructure):
    _fields_ = conv_fields(ctypes.c_uint32)


assert ctypes.sizeof(ArmConv) == 56


def conv_shape(h, w, c, kernel, stride, padding, out_c) -> ConvShape:
    oh, pt = conv_layout.window(h, kernel[0], stride[0], padding)
    ow, pl = conv_layout.window(w, kernel[1], stride[1], padding)
    return ConvShape(h, w, c, oh, ow, out_c, kernel[0], kernel[1], stride[0], stride[1], pt, pl)


def timed_shifts(shift: np.ndarray, lo: int = 6) -> np.ndarray:
    """conv_case's shifts (-1..11, to cover the requantization's range) moved to lo..lo + 5, the same seed keeping the
    same weights and inputs. int8 conv layers have scales s_in s_w / s_out well below 1/4 (the int8 registry models:
    shifts 6-12), which the kernels' output stage is fast for (conv_q8_m0.c, requant_init): the default lo = 6 is
    what benchmarks time and cycle budgets assert."""
    return (lo + (np.asarray(shift).astype(np.int64) + 1) % 6).astype(np.int8)


def conv_case(rng, h, w, c, k, kernel, stride, padding, depthwise, edge=None):
    """Integer tensors of one conv layer (OHWI, or (kh, kw, C) for depthwise) and an offset-binary (h, w, C) input;
    `edge` = "max" saturates the outputs, "tiny" rounds everything to the zero point, "shifts" draws every shift."""
    if depthwise:
        k = c
    wshape = (*kernel, c) if depthwise else (k, *kernel, c)
    wt = rng.integers(-127, 128, wshape)
    xu = rng.integers(0, 256, (h, w, c))
    mult = rng.integers(2**30, 2**31, k)
    shift = rng.integers(-1, 12, k)
    bias = rng.integers(-2**16, 2**16, k)
    if edge == "shifts":  # every total shift 31 + shift from 1 (saturating) to 62
        shift = rng.integers(-30, 32, k)
    elif edge == "max":
        wt = np.where(rng.random(wshape) < 0.5, 127, -127)
        xu[:] = rng.choice([0, 255], xu.shape)
        mult[:] = 2**31 - 1
        shift[:] = -1
    elif edge == "tiny":
        shift[:] = 31
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
    act = int(rng.integers(0, 3))  # none, ReLU, ReLU6-like clamp
    act_min, act_max = [(-128, 127), (zp_out, 127), (zp_out, min(127, zp_out + 40))][act]
    return dict(w=wt.astype(np.int8), xu=xu.astype(np.uint8), bias=bias.astype(np.int32), mult=mult.astype(np.int32),
                shift=shift.astype(np.int8), zp_in=zp_in, zp_out=zp_out, act_min=act_min, act_max=act_max,
                shape=conv_shape(h, w, c, kernel, stride, padding, k), depthwise=depthwise)


def conv_weight_layout(t, records: bool = True) -> str:
    """"conv8" or "pw16": the layout the build gives a conv_case conv2d layer (compress.conv_layout.conv_weight_layout)
    with its one-multiply records where the build would give them (records: False, never)."""
    s = t["shape"]
    return conv_layout.conv_weight_layout(
        t["w"], (s.in_h, s.in_w, s.in_c), (s.out_h, s.out_w, s.out_c), (s.stride_h, s.stride_w),
        (s.pad_top, s.pad_left), t["zp_in"], records and conv_records(t) is not None)


def conv_packed(t, layout: str = "conv8") -> tuple[np.ndarray, np.ndarray]:
    """(weight bytes, folded bias) of a conv_case layer in `layout` (conv2d: "conv8", or "pw16" with the layer's
    records inside)."""
    if t["depthwise"]:
        fb = conv_layout.folded_depthwise_bias(t["bias"], t["w"], t["zp_in"])
        return conv_layout.pack_depthwise(t["w"], fb), fb
    fb = conv_layout.folded_conv_bias(t["bias"], t["w"], t["zp_in"])
    if layout == "pw16":
        rec = conv_records(t)
        if rec is None:
            raise ValueError("pw16 needs the layer's one-multiply records; this layer has none (conv_records)")
        return conv_layout.pack_pw16(t["w"], fb, rec), fb
    return conv_layout.pack_conv8(t["w"], fb), fb


def conv_records(t) -> np.ndarray | None:
    """The one-multiply output stage records the build gives a conv_case layer (firmware/requant.py), or None."""
    from firmware import requant

    return requant.output_records(t["w"], t["bias"], t["mult"], t["shift"], t["zp_in"], t["zp_out"], t["act_min"],
                                  t["act_max"], -1 if t["depthwise"] else 0)


def conv_rq(t, layout: str) -> np.ndarray | None:
    """The pz_q8_conv_t rq array the build gives a conv_case layer in `layout`: None for pw16 (its records are inside
    the weights) and where it has no records; conv8's padded to whole groups (conv_layout.conv8_records)."""
    rec = None if layout == "pw16" else conv_records(t)
    if rec is None or t["depthwise"]:
        return rec
    return conv_layout.conv8_records(rec, t["shape"].out_c)


def conv_macs(t) -> int:
    s = t["shape"]
    per_out = s.k_h * s.k_w * (1 if t["depthwise"] else s.in_c)
    return s.out_h * s.out_w * s.out_c * per_out


def build_conv(out: Path) -> Path:
    """The conv kernels (CONV_SOURCES) as one bare ELF, as build() does for the dense kernels."""
    return _link_bare(out, CONV_SOURCES, "pz_conv2d_q8_m0")


@dataclass
class ConvRun:
    y: np.ndarray   # (out_h, out_w, out_c) int8, out_xor undone
    cycles: int
    instructions: int
    macs: int


def put_conv_layer(put, t: dict, layout: str, packed: np.ndarray, rec: np.ndarray | None, out_xor: int = 0,
                   in_flash: tuple[int, int] | None = None) -> int:
    """Layer t's arrays and its pz_q8_conv_t through prepared_sim's `put` (weights, multipliers, shifts, records,
    scratch, the struct, in that order); returns the struct's address. packed: the weights in `layout`; rec: the
    records (None: rq NULL); in_flash: (weights, records) already at those flash addresses. The bias pointer is NULL:
    the folded bias is inside the conv8 / pw16 groups and the dw records."""
    s = t["shape"]
    w_addr = in_flash[0] if in_flash else put(packed.tobytes())
    m_addr, sh_addr = put(t["mult"].tobytes()), put(t["shift"].tobytes())
    rq_addr = 0 if rec is None else in_flash[1] if in_flash else put(rec.tobytes())
    # >= pz_conv_q8_scratch_bytes: depthwise (43 C), a window, a conv2d row band (k_h rows of the row's columns)
    band = s.k_h * (((s.out_w - 1) * s.stride_w + s.k_w) * s.in_c + 3)
    scratch = put(bytes(43 * s.in_c + s.k_h * s.k_w * s.in_c + 4 + band))
    return put(bytes(ArmConv(s, w_addr, 0, m_addr, sh_addr, t["zp_out"], t["act_min"], t["act_max"], out_xor,
                             (t["zp_in"] + 128) & 0xFF, scratch, rq_addr, conv_layout.W_LAYOUT_CODES[layout])))


class ConvImage(KernelImage):
    """The conv kernels of one bare M0+ build: `ConvImage.build(dir).call(conv_case(...), "pz_conv2d_q8_m0")`."""

    @classmethod
    def build(cls, out_dir) -> ConvImage:
        return cls(build_conv(Path(out_dir) / "conv_kernels.elf"))

    def call_entering(self, t: dict, fn: str, symbols, out_xor: int = 0, **kw) -> tuple[ConvRun, set[str]]:
        """call(), and the names among `symbols` (functions of the image) that the run entered: which loop or
        output stage a layer took."""
        entries = {self.elf.addr(name) & ~1: name for name in symbols}
        entered: set[str] = set()
        run = self.call(t, fn, out_xor, hook=lambda addr, size: entered.add(entries[addr]) if addr in entries else None,
                        **kw)
        return run, entered

    def call(self, t: dict, fn: str, out_xor: int = 0, hook: Callable[[int, int], None] | None = None,
             config: SimConfig | None = None, max_cycles: int = DEFAULT_MAX_CYCLES, warm: bool = False,
             records: bool = True, layout: str | None = None, weights_in_flash: bool = False,
             x_skew: int = 0) -> ConvRun:
        """Run `fn` on layer `t` once, or with `warm` twice and count the second call: the XIP cache then holds the
        code, as it does from the second inference of a firmware on. `records`: give the layer its one-multiply
        output stage records where the build would (conv_records); False: never. `layout`: the conv2d weight layout,
        by default the build's (conv_weight_layout). `weights_in_flash`: the weights and records after the image in
        flash (8-byte aligned, as the build aligns them), read through the XIP cache, as a layer the build leaves in
        flash. `x_skew`: the input that many bytes past a word boundary."""
        s = t["shape"]
        layout = layout or ("conv8" if t["depthwise"] else conv_weight_layout(t, records))
        packed, _ = conv_packed(t, layout)
        rec = conv_rq(t, layout) if records else None
        flash = self.flash
        if weights_in_flash:
            flash += bytes(-len(flash) % 8)
            w_off = len(flash)
            flash += packed.tobytes() + bytes(-packed.nbytes % 8)
            rq_off = len(flash)
            flash += b"" if rec is None else rec.tobytes()
        sim, put = prepared_sim(flash, hook, config)
        l_addr = put_conv_layer(put, t, layout, packed, rec, out_xor,
                                (FLASH + w_off, FLASH + rq_off) if weights_in_flash else None)
        n = s.out_h * s.out_w * s.out_c
        x_addr, y_addr = put(t["xu"].tobytes(), x_skew), put(b"\xa5" * (n + GUARD))
        for _ in range(2 if warm else 1):
            sim.set_regs(r0=l_addr, r1=x_addr, r2=y_addr, sp=STACK_TOP, lr=HALT | 1)
            c0, i0 = sim.state.cycles, sim.state.instructions
            stop = sim.run(self.elf.addr(fn), max_cycles)
            if not stop.ok:
                raise KernelFault(f"{fn}:\n{format_fault(sim, self.elf, stop, STACK_TOP)}")
        y = np.frombuffer(sim.read(y_addr, n + GUARD), np.uint8)
        if np.any(y[n:] != 0xA5):
            raise KernelFault(f"{fn} wrote past its {n} outputs")
        run = ConvRun((y[:n] ^ out_xor).view(np.int8).reshape(s.out_h, s.out_w, s.out_c), sim.state.cycles - c0,
                      sim.state.instructions - i0, conv_macs(t))
        sim.close()
        return run
