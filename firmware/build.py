"""Build RP2040 firmware for a model directory: generate C, cross-compile, link, and write the build directory.

    python -m firmware.build MODEL_DIR [--images N] [--out DIR] [--weights-in auto|flash|ram] [--stack BYTES]
                                       [--boot2 quad|serial] [--cores auto|1|2] [--ram-budget BYTES]

Weight placement (`--weights-in`, default auto): float models keep their weights in flash; int8 models (from
`python -m compress`) copy their weights, indices and requantization tables to SRAM at boot when they fit next to
the activation buffers, the static data and the stack reserve with SRAM_HEADROOM to spare, because streaming them
through the XIP cache costs ~56 cycles per 8-byte line miss (docs/COMPRESS.md has both placements measured).

Outputs (docs/FIRMWARE.md): firmware.elf, firmware.bin (flash image from 0x10000000), firmware.uf2, firmware.map,
size.json, build.json. Everything is built in a temporary directory with relative paths and
-ffile-prefix-map, then moved into place with atomic renames: same inputs -> same bytes, and a failed build leaves
the previous outputs untouched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from firmware import codegen, convgen, planner, uf2
from zoo import classnames, data, modeldir, outputs

PACKAGE_DIR = Path(__file__).resolve().parent
RUNTIME_DIR = PACKAGE_DIR / "runtime"
KERNELS_DIR = PACKAGE_DIR / "kernels"

CROSS_PREFIX = "arm-none-eabi-"
TOOLS = ("gcc", "objcopy", "readelf")
DEBIAN_PACKAGES = "gcc-arm-none-eabi picolibc-arm-none-eabi"
PICOLIBC_SPECS = Path("/usr/lib/picolibc/arm-none-eabi/picolibc.specs")
CPU_FLAGS = ["-mcpu=cortex-m0plus", "-mthumb"]
C_FLAGS = ["-O2", "-std=c11", "-g", "-Wall", "-Wextra", "-Werror", "-ffunction-sections", "-fdata-sections",
           "-fno-common", "-DPICOLIBC_INTEGER_PRINTF_SCANF"]
RAM_BYTES = 264 * 1024  # datasheet §2.6.2; must equal rp2040.ld
FLASH_BYTES = 2 * 1024 * 1024  # Pico W25Q16
DEFAULT_STACK = 4096  # measured peak 208 bytes in rp2040_sim (printf); the linker script asserts the reserve fits
MIN_STACK = 1024  # same floor as the ASSERT in rp2040.ld
DEFAULT_IMAGES = 50
# SRAM left unused after an automatic sram-copy: the model shares the chip with an application (a USB stack or
# a sensor driver needs several kB). 32 kB is one eighth of the SRAM.
SRAM_HEADROOM = 32 * 1024
RUNTIME_STATIC_RAM = 1024  # .data + .bss of the runtime without the model (measured: ~0.3 kB; rounded up)
# --cores (docs/FIRMWARE.md "Two cores"): an int8 dense, sparse or shared layer of at least SPLIT_MIN_MACS
# multiply-accumulates (n_in x n_out) runs on both cores; smaller ones stay on core 0. Measured in rp2040_sim
# (docs/BENCHMARKS.md "Two cores"): a 300x10 layer (3,000 MACs) takes 21-42 % fewer cycles split, so the bar sits
# below it. int8 conv, depthwise and pool layers and float conv and depthwise layers of as many MACs split their
# output rows (convgen.split_rows). "auto" builds for 2 cores when at least one layer is split, else 1: other float
# layers run on core 0, so a float MLP's second core would only idle.
CORES_CHOICES = ("auto", "1", "2")
SPLIT_MIN_MACS = convgen.SPLIT_MIN_MACS
PLACEMENTS = {"flash": "flash", "ram": "sram-copy", "staged": "staged"}  # -> size.json weights_placement
# A layer's weights up to half the 16 kB XIP cache (datasheet §2.6.3.1) are assumed to stay cached across the pixels
# of one inference (the other half holds code); larger ones stream from flash once per output pixel.
XIP_CACHE_SHARE = 8 * 1024
# Weight staging (docs/FIRMWARE.md "Weight staging") copies a layer's weights once per inference, ~8.7 cycles per
# byte. Weights that fit in the 16 kB XIP cache mostly stay cached across the pixels anyway: measured on
# pd_mobilenet's 64->128 pointwise layer (8.7 kB, read 36x), flash 1.514 M cycles, staged 1.529 M, SRAM 1.448 M;
# its 128->128 layers (18.4 kB, read 36x) flash 3.95 M, staged 2.75 M. So only larger weights are staged.
STAGE_MIN_BYTES = 16 * 1024

OUTPUTS = ("firmware.elf", "firmware.bin", "firmware.uf2", "firmware.map", "size.json", "build.json")
RUN_OUTPUTS = ("run.json", "emulator.json")  # rp2040_sim writes these beside a build; a rebuild leaves them


class BuildError(Exception):
    """A build that cannot succeed; the message names the input at fault and the fix."""


@dataclass
class BuildResult:
    out_dir: Path
    size: dict
    build: dict


def find_toolchain() -> dict[str, str]:
    tools = {}
    for tool in TOOLS:
        path = shutil.which(CROSS_PREFIX + tool)
        if path is None:
            raise BuildError(f"{CROSS_PREFIX}{tool} not found on PATH; install the cross toolchain: "
                             f"apt-get install {DEBIAN_PACKAGES}")
        tools[tool] = path
    if not PICOLIBC_SPECS.is_file():
        raise BuildError(f"{PICOLIBC_SPECS} not found; install picolibc: apt-get install picolibc-arm-none-eabi")
    return tools


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


def explain_link_failure(stderr: str, weights_in: str, weights_bytes: int) -> str:
    """Re-word the linker's region overflow into what to do about it."""
    found = {region: int(n) for region, n in _OVERFLOW.findall(stderr)}
    if "RAM" in found:
        over = found["RAM"]
        hint = (f"the weights alone are {weights_bytes} bytes; keep them in flash (--weights-in flash)"
                if weights_in == "ram" else "shrink the model or the stack reserve (--stack)")
        return (f"firmware does not fit in SRAM: .data + .bss + stack reserve exceed the RP2040's "
                f"{RAM_BYTES // 1024} kB ({RAM_BYTES} bytes) by {over} bytes; {hint}")
    if "FLASH" in found:
        return (f"firmware does not fit in flash: it exceeds the Pico's {FLASH_BYTES // (1024 * 1024)} MB "
                f"({FLASH_BYTES} bytes) by {found['FLASH']} bytes (weights: {weights_bytes} bytes); use a smaller "
                f"model, fewer --images, or a compressed (int8) model")
    return "link failed:\n" + stderr.strip()


# --boot2: the boot2 source per flash read mode (firmware/runtime/; docs/FIRMWARE.md "Boot").
BOOT2_SOURCES = {"quad": "boot2_quad.S",      # EBh quad I/O continuous read, sets QE: W25Q-family flash (the Pico)
                 "serial": "boot2.S"}         # 0Bh serial fast read: any SPI NOR flash
DEFAULT_BOOT2 = "quad"


def boot2_source(tools: dict, work: Path, boot2: str = DEFAULT_BOOT2) -> None:
    """Assemble the boot2 source, check it is position independent, append its CRC, emit boot2_crc.S for the link."""
    name = BOOT2_SOURCES[boot2]
    step(run([tools["gcc"], *CPU_FLAGS, "-c", f"src/{name}", "-o", "boot2.o"], work), "assemble boot2")
    relocs = step(run([tools["readelf"], "-r", "boot2.o"], work), "readelf boot2").stdout
    if "R_ARM" in relocs:
        raise BuildError(f"{RUNTIME_DIR / name}: has relocations, so it is not position independent:\n{relocs}")
    step(run([tools["objcopy"], "-O", "binary", "-j", ".boot2", "boot2.o", "boot2.bin"], work), "extract boot2")
    try:
        blob = uf2.boot2_with_crc((work / "boot2.bin").read_bytes())
    except ValueError as e:
        raise BuildError(f"{RUNTIME_DIR / name}: {e}") from None
    lines = [", ".join(f"0x{b:02x}" for b in blob[i:i + 16]) for i in range(0, len(blob), 16)]
    text = (f"/* GENERATED by firmware/build.py: {name} code, zero padded to 252 bytes, CRC-32/MPEG-2 appended */\n"
            '    .section .boot2, "ax"\n' + "".join(f"    .byte {line}\n" for line in lines))
    (work / "boot2_crc.S").write_text(text)


def step(result: subprocess.CompletedProcess, what: str) -> subprocess.CompletedProcess:
    if result.returncode != 0:
        raise BuildError(f"{what} failed:\n{' '.join(result.args)}\n{result.stderr.strip()}")
    return result


def compile_and_link(tools: dict, work: Path, *, boot2: str = DEFAULT_BOOT2, stack: int = DEFAULT_STACK,
                     core1_stack: int = 0, defines=()) -> subprocess.CompletedProcess:
    """Compile every .c/.S in work/src (the boot2 sources apart: the chosen one is assembled with its CRC) and link
    work/firmware.elf with src/rp2040.ld and a map file; returns the link's result, whose failure the caller words."""
    boot2_source(tools, work, boot2)
    prefix_map = [f"-ffile-prefix-map={work}=.", f"-fdebug-prefix-map={work}=."]
    objects = []
    c_files = sorted(p.name for p in (work / "src").iterdir() if p.suffix in (".c", ".S")
                     and p.name not in BOOT2_SOURCES.values())
    for name in c_files:
        obj = f"{Path(name).stem}.o"
        step(run([tools["gcc"], *CPU_FLAGS, f"--specs={PICOLIBC_SPECS}", *C_FLAGS, *prefix_map, "-Isrc",
                  *defines, "-c", f"src/{name}", "-o", obj], work), f"compile {name}")
        objects.append(obj)
    objects.append("boot2_crc.o")
    step(run([tools["gcc"], *CPU_FLAGS, "-c", "boot2_crc.S", "-o", "boot2_crc.o"], work), "assemble boot2_crc")
    return run([tools["gcc"], *CPU_FLAGS, f"--specs={PICOLIBC_SPECS}", "-DPICOLIBC_INTEGER_PRINTF_SCANF",
                "-nostartfiles", "-Tsrc/rp2040.ld", f"-Wl,--defsym=PZ_STACK_SIZE={stack}",
                f"-Wl,--defsym=PZ_CORE1_STACK_SIZE={core1_stack}",
                "-Wl,--gc-sections", "-Wl,-Map=firmware.map", "-Wl,--build-id=none",
                "-o", "firmware.elf", *objects], work)


def elf_figures(elf_path: Path) -> dict:
    """Section and symbol sizes from the ELF (pyelftools)."""
    from elftools.elf.elffile import ELFFile

    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        sections = {s.name: s for s in elf.iter_sections()}
        sizes = {name: sections[name]["sh_size"] if name in sections else 0
                 for name in (".boot2", ".vectors", ".text", ".rodata", ".data", ".bss", ".stack",
                              ".stack1")}
        symbols = {}
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            if sym.name.startswith("pz_"):
                symbols[sym.name] = (sym["st_value"], sym["st_size"])
    weights = sum(size for name, (_, size) in symbols.items() if re.fullmatch(r"pz_l\d+_\w+", name))
    images = symbols.get("pz_test_images", (0, 0))[1] + symbols.get("pz_test_labels", (0, 0))[1]
    return {"sections": sizes, "weights_bytes": weights, "images_bytes": images}


def size_report(elf_path: Path, bin_path: Path) -> dict:
    fig = elf_figures(elf_path)
    s = fig["sections"]
    flash = bin_path.stat().st_size
    ram_static = s[".data"] + s[".bss"]
    return {
        "flash_bytes": flash,  # firmware.bin: everything from 0x10000000 incl. boot2 and the .data load image
        "flash_capacity_bytes": FLASH_BYTES,
        "ram_static_bytes": ram_static,  # .data + .bss
        "ram_capacity_bytes": RAM_BYTES,
        "stack_reserved_bytes": s[".stack"],
        "core1_stack_reserved_bytes": s[".stack1"],
        "weights_bytes": fig["weights_bytes"],
        "images_bytes": fig["images_bytes"],
        "code_bytes": s[".text"],  # machine code (runtime, kernels, picolibc, libgcc soft float)
        "boot2_bytes": s[".boot2"],
        "vectors_bytes": s[".vectors"],
        "rodata_bytes": s[".rodata"],
        "data_bytes": s[".data"],
        "bss_bytes": s[".bss"],
        # the 12 KB budget: flash that is neither weights nor test images (with --weights-in ram the weights
        # still occupy flash, as the .data load image)
        "flash_other_bytes": flash - fig["weights_bytes"] - fig["images_bytes"],
    }


def usage_bars(size: dict) -> None:
    """PlatformIO-style usage bars."""
    from rich.console import Console

    console = Console(highlight=False, width=100)

    def bar(label, used, total):
        frac = used / total
        filled = min(10, int(round(frac * 10)))
        colour = "green" if frac < 0.8 else "yellow" if frac <= 1 else "red"
        console.print(f"{label:<7}[[{colour}]{'=' * filled}{' ' * (10 - filled)}[/{colour}]] {frac * 100:5.1f}% "
                      f"(used {used} bytes from {total} bytes)")

    ram_used = size["ram_static_bytes"] + size["stack_reserved_bytes"] + size["core1_stack_reserved_bytes"]
    bar("RAM:", ram_used, size["ram_capacity_bytes"])
    bar("Flash:", size["flash_bytes"], size["flash_capacity_bytes"])
    console.print(f"       RAM = static {size['ram_static_bytes']} (.data + .bss) + stack reserve "
                  f"{size['stack_reserved_bytes']}" + (f" + core 1 stack {size['core1_stack_reserved_bytes']}"
                                                       if size["core1_stack_reserved_bytes"] else ""))
    console.print(f"       Flash = weights {size['weights_bytes']} + test images {size['images_bytes']} + other "
                  f"{size['flash_other_bytes']}")
    if "arena_bytes" in size:
        bar("Arena:", size["arena_bytes"], size["ram_capacity_bytes"])
        overlaps = len(size.get("arena_overlaps", []))
        console.print(f"       Arena = {size['arena_bytes']} bytes of activations and scratch, planned from the "
                      f"layer shapes (part of .bss)" + (f"; {overlaps} layer(s) write their output over their input"
                                                         if overlaps else ""))
    if "weights_placement" in size:
        console.print(f"       Weights: {size['weights_placement']} ({size['weights_placement_reason']})")


def choose_layer_placement(model: modeldir.SavedModel, weights_in: str, stack: int, source: str,
                           cores: int = 1, ram_budget: int | None = None) -> tuple[dict[int, str], list[dict]]:
    """Per-layer weight placement of an image model: ({spec index: flash | ram | staged}, report rows for size.json).

    With --weights-in auto every layer's arrays are copied to SRAM at boot while they fit next to the planned
    activations, the runtime's static data, pz_output and the stack(s) within the limit (--ram-budget, else the
    SRAM less SRAM_HEADROOM), the layers that would fetch the most bytes from flash per inference first: a conv reads
    its weights once per output pixel, but weights that fit in XIP_CACHE_SHARE stay cached after the first pixel and
    cost one fetch; a dense layer reads its weights once. Every 8-byte XIP cache miss costs ~56 cycles. A conv or
    depthwise layer that does not fit, whose weights exceed STAGE_MIN_BYTES and would be read more than once is staged
    when the arena with its weights
    beside that layer's activations stays within the limit (copied from flash right before it runs, once per
    inference: docs/FIRMWARE.md "Weight staging"). The rest stay in flash. A --ram-budget that even all-flash
    weights exceed is refused."""
    try:
        ops, int8 = convgen.network_ops(model, source)
    except convgen.ConvCodegenError as e:
        raise BuildError(str(e)) from None
    weighted = [op for op in ops if op.weight_bytes]
    features, in_bytes, float_in = int(model.meta["input"]["features"]), convgen.input_bytes(model), \
        codegen.float_input(model)
    fixed = ops[-1].out_elems * (1 if int8 else 4) + RUNTIME_STATIC_RAM + stack  # pz_output, runtime, stack(s)
    limit = ram_budget if ram_budget is not None else RAM_BYTES - SRAM_HEADROOM
    what = f"--ram-budget {ram_budget}" if ram_budget is not None else f"{SRAM_HEADROOM} bytes of headroom"

    def need(ram_bytes: int, staged: dict[int, int]) -> int:  # SRAM: arena (with staging) + copied weights + fixed
        return planner.plan(convgen.steps_of(ops, int8, features, cores, staged, float_in), in_bytes).arena_bytes \
            + ram_bytes + fixed

    def flash_reads(op):  # weight bytes fetched from flash per inference if left there
        return op.reads_per_weight if op.weight_bytes > XIP_CACHE_SHARE else 1

    def passes(op):  # output channels per staging pass, fewest passes first (conv2d: groups of 8 channels)
        k = op.rows.out_shape[2]
        if not op.group_bytes:
            return [k]
        groups = (k + 7) // 8
        return sorted({-(-groups // n) * 8 for n in range(1, groups + 1)}, reverse=True)

    placement, rows, ram_bytes, staged = {}, {}, 0, {}
    for op in sorted(weighted, key=lambda op: (-flash_reads(op), op.weight_bytes, op.index)):
        pass_c = None
        if weights_in == "auto":
            with_ram = need(ram_bytes + op.weight_bytes, staged)
            if with_ram > limit and op.stage_bytes > STAGE_MIN_BYTES and flash_reads(op) > 1:
                pass_c = next((c for c in passes(op) if need(ram_bytes, {**staged, op.index: c}) <= limit), None)
            if with_ram <= limit:
                where, why = "ram", f"read {op.reads_per_weight}x per inference, fits"
            elif pass_c is not None:
                where = "staged" if pass_c >= op.rows.out_shape[2] else f"staged:{pass_c}"
                why = (f"read {op.reads_per_weight}x per inference; {with_ram} bytes of SRAM with it copied at "
                       f"boot, over the {limit} allowed ({what}): copied before the layer runs instead"
                       + (f", in passes of {pass_c} output channels" if ":" in where else ""))
            else:
                where = "flash"
                why = (f"{op.weight_bytes} bytes: {with_ram} bytes of SRAM with it copied at boot, over the {limit} "
                       f"allowed ({what})")
        else:
            where, why = weights_in, "forced by --weights-in"
        if where == "ram":
            ram_bytes += op.weight_bytes
        elif pass_c is not None:
            staged[op.index] = pass_c
        placement[op.index] = where
        rows[op.index] = {"index": op.index, "op": op.op, "bytes": op.weight_bytes,
                          "placement": PLACEMENTS[where.split(":")[0]], "reads_per_inference": op.reads_per_weight,
                          "reason": why}
        if pass_c is not None:
            rows[op.index]["channels_per_pass"] = pass_c
    if convgen.in_flash(placement):  # a layer left in flash may get another weight layout (conv_weight_layout)
        final = {op.index: op.weight_bytes for op in convgen.network_ops(model, source, convgen.in_flash(placement))[0]}
        for row in rows.values():
            row["bytes"] = final[row["index"]]
    total = need(ram_bytes, staged)
    if ram_budget is not None and total > ram_budget:
        raise BuildError(f"{source}: does not fit --ram-budget {ram_budget}: it needs {total} bytes of SRAM (arena "
                         f"{total - ram_bytes - fixed} bytes of activations, scratch and staged weights, "
                         f"{ram_bytes} bytes of weights copied at boot, {fixed} bytes of pz_output, runtime data and "
                         f"stack reserve), {total - ram_budget} over; raise --ram-budget, lower --stack"
                         + (", build with --cores 1 (no second stack and scratch)" if cores == 2 else "")
                         + (", let the build choose with --weights-in auto" if weights_in == "ram" else "")
                         + " or use a smaller model")
    return placement, [rows[op.index] for op in weighted]


def plan_image_model(model: modeldir.SavedModel, model_dir: Path, weights_in: str, stack: int, cores: int = 1,
                     ram_budget: int | None = None):
    """(activation plan, {spec index: flash | ram | staged}, size.json rows) for an image model, refusing one whose
    arena does not fit; (None, None, []) for an MLP (two ping-pong buffers, whole-model placement). stack: both
    cores' stack reserves. The plan is the final one: with the staged layers' weight buffers."""
    try:
        plan = codegen.activation_plan(model, str(model_dir), cores)
    except codegen.CodegenError as e:
        raise BuildError(str(e)) from None
    if plan is None:
        return None, None, []
    try:
        planner.check_fits(plan, codegen.activation_bytes(model, cores) - plan.arena_bytes + RUNTIME_STATIC_RAM
                           + stack, RAM_BYTES, str(model_dir))
    except planner.PlanError as e:
        raise BuildError(str(e)) from None
    placement, rows = choose_layer_placement(model, weights_in, stack, str(model_dir), cores, ram_budget)
    staged = convgen.staged_of(placement, convgen.network_ops(model, str(model_dir))[0])
    return (convgen.plan(model, str(model_dir), cores, staged) if staged else plan), placement, rows


def choose_placement(model: modeldir.SavedModel, weights_in: str, stack: int,
                     ram_budget: int | None = None) -> tuple[str, str]:
    """(flash | ram, why) for --weights-in auto|flash|ram."""
    if weights_in in ("flash", "ram"):
        return weights_in, "forced by --weights-in"
    if codegen.convgen.is_image_model(model):
        return "auto", "decided per layer (choose_layer_placement)"
    if not codegen.is_int8(model):
        return "flash", "float model: weights stay in flash"
    need = codegen.model_arrays_bytes(model) + codegen.activation_bytes(model) + RUNTIME_STATIC_RAM + stack
    if ram_budget is not None and need > ram_budget:
        return "flash", f"copying would need {need} bytes of SRAM, over --ram-budget {ram_budget}"
    if need + SRAM_HEADROOM <= RAM_BYTES:
        return "ram", f"{need} bytes of SRAM needed, {RAM_BYTES - need} left (>= {SRAM_HEADROOM} headroom)"
    return "flash", (f"copying would need {need} bytes of SRAM, leaving {RAM_BYTES - need} < {SRAM_HEADROOM} "
                     f"headroom")


def split_layers(model: modeldir.SavedModel) -> list[int]:
    """Indexes of the layers a two-core build runs on both cores (int8 dense layers of >= SPLIT_MIN_MACS MACs; in
    an image model also the conv, depthwise and pool layers convgen.split_rows picks, float conv layers too)."""
    if convgen.is_image_model(model):
        try:
            ops, int8 = convgen.network_ops(model, "<model>")
        except convgen.ConvCodegenError:
            return []   # the build refuses it with the message later
        rows = convgen.split_rows(ops, 2)
        return sorted(op.index for op in ops if op.index in rows
                      or (int8 and op.op == "dense" and op.in_elems * op.out_elems >= SPLIT_MIN_MACS))
    if not codegen.is_int8(model):
        return []
    n_in, split = int(model.meta["input"]["features"]), []
    for i, layer in enumerate(model.spec.layers):
        if layer.kind != "dense":
            continue
        if n_in * layer.out_features >= SPLIT_MIN_MACS:
            split.append(i)
        n_in = layer.out_features
    return split


def choose_cores(model: modeldir.SavedModel, cores: str) -> int:
    """--cores (already checked against CORES_CHOICES) -> 1 or 2."""
    if cores == "auto":
        return 2 if split_layers(model) else 1
    return int(cores)


def default_out_dir(model_dir: Path) -> Path:
    """build/<name>, or build/<parent>-<name> for a compressed variant nested in its source model's directory
    (runs/mnist_300/prune90-int8 -> build/mnist_300-prune90-int8)."""
    parent = model_dir.parent
    if (parent / modeldir.MODEL_FILE).is_file():
        return Path("build") / f"{parent.name}-{model_dir.name}"
    return Path("build") / model_dir.name


def load_test_images(model: modeldir.SavedModel, model_dir: Path, images: int | None):
    dataset = model.meta.get("dataset")
    try:
        ds = data.load_for_model(model.meta)  # a named dataset, or the user's file (docs/DATA.md)
    except data.DataError as e:
        raise BuildError(f"{model_dir}: cannot load its dataset {dataset!r}: {e}") from None
    features = int(model.meta["input"]["features"])
    if ds.x_test.shape[1] != features:
        raise BuildError(f"{model_dir}: model takes {features} features, dataset {dataset} has {ds.x_test.shape[1]}")
    available = len(ds.x_test)
    n = min(DEFAULT_IMAGES, available) if images is None else images
    if not 0 <= n <= available:
        raise BuildError(f"--images {n}: the {dataset} test set has {available} images; pick 0..{available}")
    return dataset, ds.x_test[:n], ds.y_test[:n]


def model_class_names(model: modeldir.SavedModel, model_dir: Path) -> list[str] | None:
    """The metadata's class_names (zoo/classnames.py), checked again: they become C strings."""
    names = model.meta.get("class_names")
    if names is None:
        return None
    if not isinstance(names, list):
        raise BuildError(f"{model_dir}: class_names in the metadata is a {type(names).__name__}, not a list")
    try:
        return classnames.check(names, classnames.n_classes(model.spec), f"{model_dir}: class_names")
    except classnames.ClassNamesError as e:
        raise BuildError(str(e)) from None


def build(model_dir: Path, out_dir: Path | None = None, images: int | None = None, weights_in: str = "auto",
          stack: int = DEFAULT_STACK, quiet: bool = False, force: bool = False,
          boot2: str = DEFAULT_BOOT2, cores: str = "auto", ram_budget: int | None = None) -> BuildResult:
    model_dir = Path(model_dir).resolve() if Path(model_dir).exists() else Path(model_dir)
    if weights_in not in ("auto", "flash", "ram"):
        raise BuildError(f"--weights-in {weights_in!r}: use auto, flash or ram")
    if boot2 not in BOOT2_SOURCES:
        raise BuildError(f"--boot2 {boot2!r}: use {' or '.join(BOOT2_SOURCES)}")
    if str(cores) not in CORES_CHOICES:
        raise BuildError(f"--cores {cores!r}: use 1, 2 or auto (2 when the model has an int8 layer of at least "
                         f"{SPLIT_MIN_MACS} multiply-accumulates, else 1)")
    if ram_budget is not None and not (isinstance(ram_budget, int) and 0 < ram_budget <= RAM_BYTES):
        raise BuildError(f"--ram-budget {ram_budget!r}: give the SRAM the firmware may use, 1..{RAM_BYTES} bytes "
                         f"(e.g. 65536 or 64K)")
    if stack < MIN_STACK or stack % 8:
        raise BuildError(f"--stack {stack}: the stack reserve must be a multiple of 8 bytes and at least {MIN_STACK} "
                         f"(printf alone needs a few hundred bytes; the default is {DEFAULT_STACK})")
    try:
        model = modeldir.load(model_dir)
    except modeldir.ModelDirError as e:
        raise BuildError(str(e)) from None
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(model_dir)
    out = outputs.OutputDir(out_dir, "firmware.build", OUTPUTS, inputs=[model_dir], force=force,
                            companions=RUN_OUTPUTS)
    try:  # before any work; only an earlier firmware.build output is replaced, and only with --force
        out.check()
    except outputs.OutputError as e:
        raise BuildError(str(e)) from None
    n_cores = choose_cores(model, str(cores))
    core1_stack = stack if n_cores == 2 else 0   # core 1 gets a reserve of the same size, below core 0's
    weights_in, placement_reason = choose_placement(model, weights_in, stack + core1_stack, ram_budget)
    tools = find_toolchain()
    plan, layer_placement, placement_rows = plan_image_model(model, model_dir, weights_in, stack + core1_stack,
                                                             n_cores, ram_budget)
    dataset, x, y = load_test_images(model, model_dir, images)
    if plan is not None:
        kinds = {row["placement"] for row in placement_rows}
        weights_in = "ram" if kinds == {"sram-copy"} else "flash" if kinds <= {"flash"} else "mixed"
        placement_reason = ", ".join(f"layer {r['index']} {r['op']} {r['bytes']} B {r['placement']}"
                                     for r in placement_rows)
    try:
        sources = codegen.generate_model(model, str(model_dir), "flash" if weights_in == "mixed" else weights_in,
                                         layer_placement, n_cores)
        sources.update(codegen.generate_testdata(x, y, f"{dataset} test set, first {len(x)} images",
                                                 model_class_names(model, model_dir)))
    except codegen.CodegenError as e:
        raise BuildError(str(e)) from None

    weights_bytes = codegen.model_arrays_bytes(model)
    if weights_bytes + x.nbytes + y.size > FLASH_BYTES:
        raise BuildError(f"{model_dir}: model too large for flash: weights {weights_bytes} bytes + test images "
                         f"{x.nbytes + y.size} bytes exceed the Pico's {FLASH_BYTES // (1024 * 1024)} MB "
                         f"({FLASH_BYTES} bytes) flash by {weights_bytes + x.nbytes + y.size - FLASH_BYTES} bytes; "
                         f"use a smaller model, fewer --images, or a compressed (int8) model")

    outputs.remove_stale_work_dirs("build")     # what a killed build left in the temp dir
    with tempfile.TemporaryDirectory(prefix=outputs.work_dir_prefix("build")) as tmp:
        work = Path(tmp)
        src = work / "src"
        src.mkdir()
        for directory in (RUNTIME_DIR, KERNELS_DIR):
            for f in sorted(directory.iterdir()):
                if f.suffix in (".c", ".h", ".S", ".ld"):
                    shutil.copyfile(f, src / f.name)
        for name, text in sources.items():
            (src / name).write_text(text)
        link = compile_and_link(tools, work, boot2=boot2, stack=stack, core1_stack=core1_stack,
                                defines=[f"-DPZ_CORES={n_cores}", f"-DPZ_SPLIT_MIN_MACS={SPLIT_MIN_MACS}u"])
        if link.returncode != 0:
            raise BuildError(f"{model_dir}: " + explain_link_failure(link.stderr, weights_in, weights_bytes))
        step(run([tools["objcopy"], "-O", "binary", "firmware.elf", "firmware.bin"], work), "objcopy")
        image = (work / "firmware.bin").read_bytes()
        uf2_bytes = uf2.write_uf2(image)
        base, flash = uf2.read_uf2(uf2_bytes, "firmware.uf2")
        uf2.check_image(base, flash, "firmware.uf2")
        (work / "firmware.uf2").write_bytes(uf2_bytes)
        size = size_report(work / "firmware.elf", work / "firmware.bin")
        if ram_budget is not None:   # what the link reserved: .data + .bss + both stack reserves
            used = size["ram_static_bytes"] + stack + core1_stack
            if used > ram_budget:
                raise BuildError(f"{model_dir}: the linked firmware reserves {used} bytes of SRAM (.data + .bss "
                                 f"{size['ram_static_bytes']}, stack reserve {stack + core1_stack}), over "
                                 f"--ram-budget {ram_budget} by {used - ram_budget}; raise --ram-budget or lower "
                                 f"--stack")
            size["ram_budget_bytes"] = ram_budget
        size["weights_placement"] = PLACEMENTS.get(weights_in, weights_in)
        size["weights_placement_reason"] = placement_reason
        if plan is not None:
            size["arena_bytes"] = plan.arena_bytes  # firmware/planner.py: every intermediate activation
            # the layers that write their output over their own input, and how far before it the output starts
            size["arena_overlaps"] = [{"layer": out.name.removesuffix(" output"), "lead_bytes": lead}
                                      for step, out, _, lead in plan.overlaps if step in plan.overlapped()]
            size["weights_placement_layers"] = placement_rows
        if "model_bytes" in (model.metrics or {}):
            size["model_bytes"] = int(model.metrics["model_bytes"])  # compress's count (docs/COMPRESS.md)
        info = {
            "model_dir": str(model_dir),
            "images": len(x),
            "first_image": 0,
            "dataset": dataset,
            "input_features": int(model.meta["input"]["features"]),
            "output_count": model.spec.out_features,  # activations keep the width
            "weights_in": weights_in,
            "output_ctype": codegen.output_ctype(model, str(model_dir)),
            "boot2": boot2,
            "cores": n_cores,
            "uf2_sha256": hashlib.sha256(uf2_bytes).hexdigest(),
        }
        if codegen.float_input(model):  # the user's float data (docs/DATA.md); absent: uint8_t pixels, as always
            info["input_ctype"] = codegen.input_ctype(model)
        (work / "size.json").write_text(json.dumps(size, indent=2, sort_keys=True) + "\n")
        (work / "build.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        try:  # copy everything first, so a full disk changes nothing, then rename each into place
            with out.staging() as stage:
                for name in OUTPUTS:
                    shutil.copyfile(work / name, stage / name)
                out.commit(stage)
        except outputs.OutputError as e:
            raise BuildError(f"{e} (it changed while building; nothing written)") from None
        except OSError as e:
            raise BuildError(f"{out_dir}: cannot write the build outputs ({e.strerror}); pick another --out") from None
    if not quiet:
        usage_bars(size)
        print(f"wrote {out_dir}/firmware.uf2 ({len(uf2_bytes) // uf2.UF2_BLOCK_SIZE} blocks)")
    return BuildResult(out_dir, size, info)


def parse_bytes(text: str) -> int:
    """'65536', '64K' or '64k' (x 1024) -> bytes, for --ram-budget."""
    t = text.strip()
    scale = 1024 if t[-1:] in ("K", "k") else 1
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit() or int(digits) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give bytes or kB, e.g. 65536 or 64K")
    return int(digits) * scale


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware.build", description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--images", type=int, default=None,
                        help=f"test images stored in flash and classified at boot (default {DEFAULT_IMAGES})")
    parser.add_argument("--out", type=Path, default=None,
                        help="build directory (default build/<model dir name>, build/<parent>-<name> for a "
                             "compressed variant inside its model directory)")
    parser.add_argument("--weights-in", choices=["auto", "flash", "ram"], default="auto",
                        help="where the weights live: auto (int8 models copied to SRAM when they fit with "
                             f"{SRAM_HEADROOM // 1024} kB to spare, float models in flash), flash, or ram")
    parser.add_argument("--stack", type=int, default=DEFAULT_STACK, help="stack reserve in bytes")
    parser.add_argument("--cores", default="auto",
                        help="1 or 2 (int8 layers and float conv layers of >= %d MACs split between both cores) or "
                             "auto (default: 2 when such a layer exists, else 1)" % SPLIT_MIN_MACS)
    parser.add_argument("--ram-budget", type=parse_bytes, default=None, metavar="BYTES",
                        help="most SRAM the firmware may reserve (.data + .bss + stack reserves), e.g. 65536 or 64K: "
                             "an image model's weights are then copied at boot, staged before their layer or left in "
                             "flash to fit, and a model that cannot fit is refused")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier firmware.build output in --out (only the files it wrote)")
    parser.add_argument("--boot2", choices=list(BOOT2_SOURCES), default=DEFAULT_BOOT2,
                        help="flash read mode boot2 sets up: quad (EBh continuous read, sets the QE bit; W25Q flash "
                             "as on the Pico) or serial (0Bh fast read, any SPI NOR flash)")
    args = parser.parse_args(argv)
    try:
        build(args.model_dir, args.out, args.images, args.weights_in, args.stack, force=args.force,
              boot2=args.boot2, cores=args.cores, ram_budget=args.ram_budget)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
