"""Batch inference in the emulator against the host model -> emulator.json.

The firmware boots once (main runs its own test images and ends at `bkpt #0`); then for each image we restore
the post-boot machine (registers, SRAM with a freshly painted stack, XIP cache), write the raw features to
`pz_input` (uint8 pixels, or the float32 values of a model of the user's float data: build.json's `input_ctype`),
call `pz_infer` with LR = pz_halt|1 and SP = __stack_top, and read r0 (the class) and `pz_output`.
Restoring the same state before every image makes each count independent of order and of how images are split
across worker processes: the figures are deterministic.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from firmware.uf2 import MAX_UF2_BYTES
from firmware.untrusted import InputError, field, read_json_object, read_regular
from rp2040_sim import boot
from rp2040_sim.core import DEFAULT_TIMEOUT_S, Rp2040, SimConfig
from rp2040_sim.runner import CHIP_HZ, STACK_PAINT, collect, peak_stack

BUILD_JSON = "build.json"
OUTPUT_FILE = "emulator.json"
# The build.json fields eval reads, with their kinds (firmware.untrusted.FIELD_KINDS).
BUILD_FIELDS = {"model_dir": "string", "dataset": "string", "input_features": "positive int",
                "output_count": "positive int", "output_ctype": "string"}
OUTPUT_DTYPES = {"float": np.float32, "double": np.float64, "int8_t": np.int8}
INPUT_DTYPES = {"uint8_t": np.uint8, "float": np.dtype("<f4")}  # build.json's input_ctype; absent: uint8_t
CHUNK = 25                       # most images per work item: small enough for a smooth progress bar
PER_IMAGE_MAX_CYCLES = 1 << 31   # 17 s at 125 MHz: far beyond any model that fits the chip
# Unicorn 2.1.4's translation cache grew by ~190 kB per restored inference (measured on mnist_50: 300 images,
# RSS +58 MB) while flash and SRAM shared RAM addresses (writing back SRAM discarded the flash code's
# translations; core.Rp2040._map_ram); flushing it every 25 images bounds it whatever the program does, at the
# cost of translating the inference code once per 25 images. Blocks start at the same addresses after a flush.
TB_FLUSH_EVERY = 25


class EvalError(Exception):
    """A build directory eval cannot use, or a firmware that fails in the emulator; the message says why."""


# -- build directory -------------------------------------------------------------------------------------------
def read_build(build_dir: Path) -> dict:
    """build.json of `build_dir`, every field eval uses type-checked, and the SHA-256 of its firmware.uf2."""
    build_dir = Path(build_dir)
    if not build_dir.is_dir():
        raise EvalError(f"{build_dir}: not a directory; give a build directory written by "
                        f"`python -m firmware.build MODEL_DIR --out {build_dir}`")
    path = build_dir / BUILD_JSON
    fix = "rebuild with a current `python -m firmware.build`"
    try:
        build = read_json_object(path, "build record")
        for key, kind in BUILD_FIELDS.items():
            field(build, key, kind, path, fix)
        if "uf2_sha256" in build:
            field(build, "uf2_sha256", "sha256", path, fix)
        if "input_ctype" in build:
            field(build, "input_ctype", "string", path, fix)
    except InputError as e:
        raise EvalError(f"{e}; rebuild with `python -m firmware.build`" if e.missing else str(e)) from None
    if build.get("input_ctype", "uint8_t") not in INPUT_DTYPES:
        raise EvalError(f"{path}: input_ctype {build['input_ctype']!r}, expected one of {sorted(INPUT_DTYPES)}")
    if build["output_ctype"] not in OUTPUT_DTYPES:
        raise EvalError(f"{path}: output_ctype {build['output_ctype']!r}, expected one of {sorted(OUTPUT_DTYPES)}")
    for name in ("firmware.uf2", "firmware.elf"):  # what else is wrong with them (a FIFO, ...) is said when read
        if not (build_dir / name).exists():
            raise EvalError(f"{build_dir / name}: not found; rebuild with `python -m firmware.build`")
    try:
        sha = hashlib.sha256(read_regular(build_dir / "firmware.uf2", MAX_UF2_BYTES, "UF2 file")).hexdigest()
    except InputError as e:
        raise EvalError(str(e)) from None
    if build.get("uf2_sha256") not in (None, sha):
        raise EvalError(f"{build_dir / 'firmware.uf2'}: sha256 {sha} differs from build.json's "
                        f"{build['uf2_sha256']}: the UF2 is not the one this build wrote; rebuild")
    build["_uf2_sha256"] = sha
    return build


# -- one emulator per worker process -----------------------------------------------------------------------------
class Harness:
    """A booted firmware and the state every inference starts from."""

    def __init__(self, build_dir: Path, build: dict):
        self.image = boot.load_image(build_dir / "firmware.uf2", build_dir / "firmware.elf")
        if self.image.file_sha256 != build["_uf2_sha256"]:
            raise EvalError(f"{build_dir / 'firmware.uf2'} changed while eval ran (sha256 {self.image.file_sha256}, "
                            f"{build['_uf2_sha256']} when it started): was it rebuilt meanwhile? Run eval again")
        elf = self.image.elf
        self.sim = Rp2040(SimConfig(timeout=build.get("_timeout", DEFAULT_TIMEOUT_S)))
        start = boot.prepare(self.sim, self.image)
        stop = self.sim.run(start)
        self.boot_result = collect(self.sim, self.image, stop)
        if not stop.ok:
            raise EvalError(f"{build_dir}/firmware.uf2 did not reach its final bkpt while booting:\n"
                            f"{self.boot_result.fault_report}")
        self.input_addr = elf.addr("pz_input")
        self.output_addr = elf.addr("pz_output")
        self.infer = elf.addr("pz_infer")
        self.halt = elf.addr("pz_halt")
        region = elf.stack_region()
        if region is None:
            raise EvalError(f"{elf.path}: no __stack_limit/__stack_top symbols; the firmware contract needs them")
        self.stack_limit, self.stack_top = region
        self.features = int(build["input_features"])
        self.input_dtype = np.dtype(INPUT_DTYPES[build.get("input_ctype", "uint8_t")])
        self.dtype = np.dtype(OUTPUT_DTYPES[build["output_ctype"]])
        self.count = int(build["output_count"])
        # Post-boot state, with the stack painted again so each inference measures its own peak.
        sram = bytearray(self.sim.read(0x20000000, 0x42000))
        lo, hi = self.stack_limit - 0x20000000, self.stack_top - 0x20000000
        sram[lo:hi] = STACK_PAINT.to_bytes(4, "little") * ((hi - lo) // 4)
        self.sram = bytes(sram)
        self.context = self.sim.uc.context_save()
        self.runs = 0
        self.xip = self.sim.xip_snapshot()
        self.event_reg = self.sim.state.event_reg
        self.fifos = tuple(tuple(f) for f in self.sim.sio.shared.fifo)
        # A two-core build: core 1 waits (WFE) in the runtime's work loop; its registers, waiting pc, event
        # register and cache are restored too, and its count is set to core 0's before each image.
        c1 = self.sim.core1
        self.core1 = None
        if c1 is not None:
            if not c1.runnable:
                raise EvalError(f"{build_dir}/firmware.uf2: core 1 stopped while booting "
                                f"({c1.final_stop.detail}); a two-core build's core 1 waits for work forever")
            self.core1 = (c1.uc.context_save(), c1.resume_pc, c1.state.event_reg, c1.xip_snapshot())
            if elf.has("__stack1_limit"):   # core 1's stack below its reserve is a fault, as core 0's is
                c1.set_stack_limit(elf.addr("__stack1_limit"))

    def restore(self):
        """The post-boot machine: SRAM (stack repainted), both cores' registers, event registers and XIP caches,
        the FIFOs; core 1's count set to core 0's."""
        sim = self.sim
        if self.runs % TB_FLUSH_EVERY == 0:
            sim.uc.ctl_flush_tb()
            if self.core1 is not None:
                sim.core1.uc.ctl_flush_tb()
        self.runs += 1
        sim.write(0x20000000, self.sram)
        sim.uc.context_restore(self.context)
        sim.xip_restore(self.xip)
        sim.state.event_reg = self.event_reg
        for fifo, words in zip(sim.sio.shared.fifo, self.fifos):
            fifo.clear()
            fifo.extend(words)
        if self.core1 is not None:
            c1 = sim.core1
            context, c1.resume_pc, c1.state.event_reg, xip = self.core1
            c1.uc.context_restore(context)
            c1.xip_restore(xip)
            self.sync_core1()

    def sync_core1(self):
        """Core 1 (idle in WFE) at core 0's cycle count: the interleaving depends on the counts only, so each
        inference (or layer) runs the same way whatever ran before."""
        if self.core1 is not None:
            self.sim.core1.state.cycles = self.sim.state.cycles

    def infer_one(self, raw: np.ndarray):
        sim = self.sim
        self.restore()
        sim.write(self.input_addr, np.asarray(raw, dtype=self.input_dtype).tobytes())
        sim.set_regs(sp=self.stack_top, lr=self.halt | 1)
        c0, i0, h0, m0 = sim.state.cycles, sim.state.instructions, sim.state.xip_hits, sim.state.xip_misses
        stop = sim.run(self.infer, PER_IMAGE_MAX_CYCLES)
        if not stop.ok:
            from rp2040_sim.faults import format_fault
            raise EvalError("pz_infer did not return to pz_halt:\n" +
                            format_fault(sim, self.image.elf, stop, self.stack_top))
        st = sim.state
        out = np.frombuffer(sim.read(self.output_addr, self.dtype.itemsize * self.count), dtype=self.dtype)
        return (stop.regs["r0"], out.astype(np.float64), st.cycles - c0, st.instructions - i0,
                st.xip_hits - h0, st.xip_misses - m0, peak_stack(sim, self.image.elf))


_harness = None


def _worker_init(build_dir, build):
    global _harness
    _harness = Harness(Path(build_dir), build)


def _worker_run(task):
    start, raws = task
    return start, [_harness.infer_one(r) for r in raws]


# -- the whole evaluation --------------------------------------------------------------------------------------
def evaluate(build_dir, images: int | None = None, jobs: int | None = None, progress: bool = True,
             out: Path | None = None, timeout: float | None = DEFAULT_TIMEOUT_S) -> dict:
    from zoo import data, host, modeldir
    build_dir = Path(build_dir)
    build = read_build(build_dir)
    build["_timeout"] = timeout                        # the workers' wall-clock limit per run (--timeout)
    try:
        model = modeldir.load(Path(build["model_dir"]))
    except modeldir.ModelDirError as e:
        raise EvalError(f"{build_dir / BUILD_JSON}: model_dir: {e}") from None
    quantized = "quantization" in model.meta
    if quantized != (build["output_ctype"] == "int8_t"):
        raise EvalError(f"{build_dir / BUILD_JSON}: output_ctype {build['output_ctype']!r} but the model in "
                        f"{build['model_dir']} is {'int8-quantized' if quantized else 'a float model'}: the "
                        f"firmware does not implement this model's arithmetic, so it cannot match its reference; "
                        f"rebuild with a firmware.build that supports it")
    from firmware.codegen import input_ctype
    if input_ctype(model) != build.get("input_ctype", "uint8_t"):
        raise EvalError(f"{build_dir / BUILD_JSON}: input_ctype {build.get('input_ctype', 'uint8_t')!r} but the model "
                        f"in {build['model_dir']} takes {input_ctype(model)} input; rebuild with "
                        f"`python -m firmware.build`")
    try:
        ds = data.load_for_model(model.meta)  # a named dataset, or the user's file (docs/DATA.md)
    except data.DataError as e:
        raise EvalError(f"{build['model_dir']}: cannot load the data it was trained on: {e}") from None
    available = len(ds.x_test)
    n = available if images is None else images
    if not 1 <= n <= available:
        raise EvalError(f"--images {n}: the {build['dataset']} test set has {available} images; give 1..{available}")
    if ds.x_test.shape[1] != build["input_features"]:
        raise EvalError(f"{build_dir / BUILD_JSON}: input_features {build['input_features']} but "
                        f"{build['dataset']} has {ds.x_test.shape[1]}")
    x, y = ds.x_test[:n], np.asarray(ds.y_test[:n])
    # The float forward pass, or compress's int8 golden model when the model meta has "quantization".
    host_out, host_pred = host.reference(model, x)
    host_out = np.asarray(host_out, dtype=np.float64).reshape(n, -1)

    jobs = max(1, min(jobs or os.cpu_count() or 1, n))
    chunk = max(1, min(CHUNK, -(-n // (4 * jobs))))     # at least 4 work items per worker
    tasks = [(s, x[s:s + chunk]) for s in range(0, n, chunk)]
    results = [None] * n
    t0 = time.perf_counter()
    bar = _progress(progress, n)
    if jobs == 1:
        _worker_init(build_dir, build)
        boot_result = _harness.boot_result
        for task in tasks:
            s, rows = _worker_run(task)
            results[s:s + len(rows)] = rows
            bar(len(rows))
    else:
        ctx = multiprocessing.get_context("spawn")     # no fork of a process that may hold JAX threads
        with ctx.Pool(jobs, initializer=_worker_init, initargs=(str(build_dir), build)) as pool:
            for s, rows in pool.imap_unordered(_worker_run, tasks):
                results[s:s + len(rows)] = rows
                bar(len(rows))
        _worker_init(build_dir, build)                 # boot figures, in this process (deterministic)
        boot_result = _harness.boot_result
    bar(None)
    wall = time.perf_counter() - t0

    pred = np.array([r[0] for r in results], dtype=np.int64)
    outs = np.stack([r[1] for r in results])
    cycles = np.array([r[2] for r in results], dtype=np.int64)
    instr = np.array([r[3] for r in results], dtype=np.int64)
    stack = max([r[6] for r in results] + [boot_result.peak_stack_bytes or 0])
    static = boot_result.static_ram_bytes
    if outs.shape[1] != host_out.shape[1]:
        raise EvalError(f"{build_dir / BUILD_JSON}: output_count {outs.shape[1]} but the model has "
                        f"{host_out.shape[1]} outputs")
    report = {
        "build_dir": str(build_dir.resolve()),
        "model_dir": build["model_dir"],
        "dataset": build["dataset"],
        "images": n,
        "test_set_images": available,   # firmware.flash requires images == test_set_images
        "accuracy": float(np.mean(pred == y)),
        "host_accuracy": float(np.mean(host_pred == y)),
        "agreement_with_host": float(np.mean(pred == host_pred)),
        "disagreements": [int(i) for i in np.nonzero(pred != host_pred)[0][:20]],
        "max_abs_output_diff": float(np.max(np.abs(outs - host_out))),
        "cycles_per_inference": {"mean": float(cycles.mean()), "min": int(cycles.min()), "max": int(cycles.max())},
        "instructions_per_inference": {"mean": float(instr.mean()), "min": int(instr.min()),
                                       "max": int(instr.max())},
        "ms_per_inference_125mhz": float(cycles.mean() / CHIP_HZ * 1e3),
        "xip_per_inference": {"hits_mean": float(np.mean([r[4] for r in results])),
                              "misses_mean": float(np.mean([r[5] for r in results]))},
        "static_ram_bytes": static,
        "peak_stack_bytes": stack,
        "peak_ram_bytes": static + stack,
        "flash_bytes": boot_result.flash_bytes,
        "uf2_sha256": build["_uf2_sha256"],
        "boot": {"cycles": boot_result.cycles, "instructions": boot_result.instructions,
                 "uart_lines": len(boot_result.uart.splitlines())},
        "wall_seconds": round(wall, 3),
        "jobs": jobs,
    }
    write_json_atomic(Path(out) if out else build_dir / OUTPUT_FILE, report)
    return report


def write_json_atomic(path: Path, obj):
    """Write through a temporary file renamed into place (a symlink at `path` is replaced, never followed); on
    failure the temporary file, which we created, is removed and `path` is left as it was."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _progress(enabled: bool, total: int):
    if not enabled:
        return lambda k: None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
    p = Progress("emulating", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True)
    task = p.add_task("images", total=total)
    p.start()

    def advance(k):
        if k is None:
            p.stop()
        else:
            p.advance(task, k)
    return advance
