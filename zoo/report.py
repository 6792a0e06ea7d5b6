"""`python -m zoo.report`: train -> compress -> build -> emulate every variant, and answer the original tables.

Every figure comes from a command, run here as a subprocess exactly as a user would type it; RESULTS.md lists them
all. A step is skipped when its stamp says the inputs (the command and the SHA-256 of its input files) are
unchanged, so a second run redoes only what changed.

The four tables have the shape of the original C++ project's evaluation: double vs float; network sizes
50/100/200/300/300-100; original vs pruned; original vs quantized. Plots: accuracy against time per image (the
Pareto front over all variants), flash and RAM per variant, cycles per function (layer kernels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from zoo import data
from zoo import outputs as output_dirs
from zoo.modeldir import atomic_write_bytes, write_json
from zoo.models import MODELS

SIZES = ("mnist_50", "mnist_100", "mnist_200", "mnist_300", "mnist_300_100")
CONV_NETS = ("mnist_cnn", "fashion_cnn")
DEFAULT_MODELS = SIZES + CONV_NETS
FIRST_IMAGES = 50  # the original project evaluated the first 50 (and 20) test images on the chip
# A float32 conv net runs every MAC in soft float (hundreds of ms per image on the chip, minutes per 100 images in
# the emulator): its boot run and eval cover this many test images; int8 conv nets get the full --images.
FLOAT_CONV_IMAGES = 20
MNIST_TEST_IMAGES = 10_000  # MNIST and Fashion-MNIST; XOR has its four points
OUTPUT_FILES = ("RESULTS.md", "results.json", "report.log", "accuracy_vs_time.png", "memory.png",
                "cycles_per_function.png")
STAMP_PREFIX = ".step-"  # Runner's record, in each step's output directory, that this report made it
TABLES = {
    "dtype": "Double vs float",
    "sizes": "Network sizes",
    "pruned": "Original vs pruned",
    "quantized": "Original vs quantized",
}
# The original C++ project's figures, as our brief quotes its report; absent where it gave none.
ORIGINAL = {
    "mnist_50": {"accuracy": 0.8611, "seconds": 0.25},
    "mnist_100": {"accuracy": 0.8902, "seconds": 0.50},
    "mnist_200": {"accuracy": 0.9016, "seconds": 0.99},
    "mnist_300": {"accuracy": 0.9158, "seconds": 1.48, "bytes": 1_370_000},
    "mnist_300_100": {"accuracy": 0.8489, "seconds": 1.67},
    "mnist_300-f64": {"bytes": 1_670_000},
    "mnist_300-prune90": {"bytes": 737_000, "seconds": 0.50},
    "mnist_300-int8": {"accuracy": 0.1081},
}


class ReportError(Exception):
    """A step failed or an argument is unusable; the message names the command and its last output lines."""


@dataclass
class Variant:
    key: str  # build directory name, e.g. mnist_300-prune90-int8
    model: str  # registry name
    label: str  # how the tables name it
    dtype: str = "float32"
    compress: tuple = ()  # `python -m compress` arguments after the model directory
    tables: set = field(default_factory=set)
    images: int | None = None  # images for `rp2040_sim eval`; None: the report's --images; 0: boot run only
    first: int = FIRST_IMAGES  # test images built into the firmware and classified by its boot run

    @property
    def train_dir_name(self):
        return self.model if self.dtype == "float32" else f"{self.model}-{self.dtype}"


# The smallest accurate variant of a detailed model, also what `make demo` builds (zoo/demo.py)
SHARED90_LABEL = "pruned 90 % + 7 shared values + int8"
SHARED90_COMPRESS = ("--prune", "0.9", "--augment-shift", "1", "--quantize", "int8", "--share", "7")


MNIST_CNN_SMALL = ("--structured", "--prune", "0.55", "--augment-shift", "1", "--epochs", "10", "--lr", "2e-3",
                   "--quantize", "int8")


def variants_for(models, detailed=("mnist_300",)) -> list[Variant]:
    """Every model in float32 and int8; the `detailed` ones also in float64, pruned, pruned + int8 and pruned + 7
    shared values + int8 (the original project ran those comparisons on 784-300-10); mnist_300_100 also pruned
    92 % + int8 and its
    smallest variant: pruned 95 % + 7 shared weight values per layer + int8, fine-tuned on 1-pixel shifted images
    (issue 5's size target: <= 30 KB of model bytes at >= 98.3 %)."""
    from compress.quantize import QuantizationError, check_supported

    out = []
    for model in models:
        base = Variant(model, model, "float32", tables={"sizes", "quantized"})
        if len(MODELS[model].spec.input_shape) == 3:  # an image (conv) net: float32 on a few images only
            base.images = base.first = FLOAT_CONV_IMAGES
        out.append(base)
        try:
            check_supported(MODELS[model].spec, model)
        except QuantizationError:  # e.g. xor's sigmoid layers: float only (int8 takes ReLU networks)
            base.tables = {"sizes"}
            continue
        out.append(Variant(f"{model}-int8", model, "int8", compress=("--quantize", "int8"), tables={"quantized"}))
        if model in detailed:
            base.tables |= {"dtype", "pruned"}
            out += [Variant(f"{model}-float64", model, "float64", dtype="float64", tables={"dtype"}),
                    Variant(f"{model}-prune90", model, "pruned 90 %", compress=("--prune", "0.9"),
                            tables={"pruned"}),
                    Variant(f"{model}-prune90-int8", model, "pruned 90 % + int8",
                            compress=("--prune", "0.9", "--quantize", "int8"), tables={"pruned", "quantized"}),
                    Variant(f"{model}-prune90-share7-int8", model, SHARED90_LABEL, compress=SHARED90_COMPRESS,
                            tables={"pruned", "quantized"})]
        if model == "mnist_cnn":  # issue 11's small variant (docs/COMPRESS.md "Conv nets")
            out.append(Variant(f"{model}-s55-int8", model, "structured 55 % + int8", compress=MNIST_CNN_SMALL,
                               tables={"pruned", "quantized"}))
        if model == "mnist_300_100":
            base.tables.add("pruned")
            out.append(Variant(f"{model}-prune92-int8", model, "pruned 92 % + int8",
                               compress=("--prune", "0.92", "--quantize", "int8"), tables={"pruned", "quantized"}))
            out.append(Variant(f"{model}-prune95-share7-int8", model, "pruned 95 % + 7 shared values + int8",
                               compress=("--prune", "0.95", "--augment-shift", "1", "--quantize", "int8",
                                         "--share", "7"), tables={"pruned", "quantized"}))
    return out


# -- steps with caching ------------------------------------------------------------------------------------------
def _digest(paths) -> str:
    h = hashlib.sha256()
    for path in map(Path, paths):
        h.update(path.name.encode())
        h.update(hashlib.sha256(path.read_bytes()).digest() if path.is_file() else b"<missing>")
    return h.hexdigest()


class Runner:
    """Runs `python -m ...` steps; a step whose stamp matches its command and inputs is reused.

    A step's output directory that exists without any of this report's stamps is someone else's (a model the user
    trained): it is refused, never overwritten. One the report made is redone with --force, which replaces only
    the files that command wrote (zoo/outputs.py)."""

    def __init__(self, console, log_path: Path, shown_log: Path | None = None):
        self.console, self.log_path, self.commands = console, log_path, []
        self.shown_log = shown_log or log_path

    def step(self, name: str, argv, out_dir: Path, inputs=(), outputs=(), forceable=False):
        out_dir = Path(out_dir)
        shown = "python -m " + " ".join(map(str, argv))
        self.commands.append(shown)
        stamp = {"command": shown, "inputs": _digest(inputs)}
        stamp_path = out_dir / f"{STAMP_PREFIX}{name}.json"
        output_dirs.remove_stale(out_dir, {stamp_path.name})  # a stamp half-written by a killed report
        if stamp_path.is_file() and all((out_dir / o).is_file() for o in outputs):
            if _read_stamp(stamp_path) == stamp:
                self.console.print(f"  [dim]cached {shown}[/dim]")
                return
        ours = out_dir.is_dir() and any(p.name.startswith(STAMP_PREFIX) for p in out_dir.iterdir())
        if out_dir.exists() and not ours and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise ReportError(f"`{shown}` would write into {out_dir}, which exists and was not made by this report; "
                              f"it is left alone: move it away, or give other --runs/--builds directories")
        self.console.print(f"  run    {shown}")
        start = time.perf_counter()
        extra = ["--force"] if forceable and ours else []  # only this report's own earlier output
        proc = subprocess.run([sys.executable, "-m", *map(str, argv), *extra], capture_output=True, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
        with open(self.log_path, "a") as log:
            log.write(f"$ {shown}\n{proc.stdout}{proc.stderr}\n")
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ReportError(f"`{shown}` failed with exit code {proc.returncode} (full output in "
                              f"{self.shown_log}):\n{tail}")
        missing = [o for o in outputs if not (out_dir / o).is_file()]
        if missing:
            raise ReportError(f"`{shown}` succeeded but did not write {', '.join(missing)} in {out_dir}")
        write_json(stamp_path, stamp)
        self.console.print(f"         [dim]{time.perf_counter() - start:.1f} s[/dim]")


def _read_stamp(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # unreadable: redo the step


def test_set_size(model: str) -> int:
    return len(data.xor().y_test) if MODELS[model].dataset == "xor" else MNIST_TEST_IMAGES


def run_variant(runner: Runner, v: Variant, runs: Path, builds: Path, images: int, epochs: int | None = None) -> dict:
    trained = runs / v.train_dir_name
    epoch_args = ["--epochs", epochs] if epochs else []
    first, images = min(v.first, test_set_size(v.model)), min(images, test_set_size(v.model))
    runner.step("train", ["zoo.train", v.model, "--dtype", v.dtype, *epoch_args, "--out", trained, "--no-progress"],
                trained, outputs=["model.safetensors", "metrics.json"], forceable=True)
    model_dir = trained
    if v.compress:  # nested in the trained model's directory, as the README's compress example does
        model_dir = trained / v.key.split("-", 1)[1]
        runner.step("compress", ["compress", trained, *v.compress, "--out", model_dir], model_dir,
                    inputs=[trained / "model.safetensors"], outputs=["model.safetensors", "metrics.json"],
                    forceable=True)
    build = builds / v.key
    runner.step("build", ["firmware.build", model_dir, "--images", first, "--out", build], build,
                inputs=[model_dir / "model.safetensors"], outputs=["firmware.uf2", "size.json", "build.json"],
                forceable=True)
    uf2 = build / "firmware.uf2"
    runner.step("run", ["rp2040_sim", "run", uf2, "--quiet", "--json", build / "run.json"], build, inputs=[uf2],
                outputs=["run.json"])
    if images:
        runner.step("eval", ["rp2040_sim", "eval", build, "--images", images, "--no-progress"], build,
                    inputs=[uf2], outputs=["emulator.json"])
    return collect(v, model_dir, build, evaluated=bool(images))


_SUMMARY = re.compile(r"summary images (\d+) correct (\d+) us_total (\d+)")


def collect(v: Variant, model_dir: Path, build: Path, evaluated: bool = True) -> dict:
    """One row: host figures, the firmware's own boot run over the first images, and `eval` when it ran."""
    metrics = json.loads((model_dir / "metrics.json").read_text())
    size = json.loads((build / "size.json").read_text())
    run = json.loads((build / "run.json").read_text())
    summary = _SUMMARY.search(run["uart"])
    if summary is None:
        raise ReportError(f"{build / 'run.json'}: the firmware printed no summary line; see its uart text")
    first_images, first_correct, us_total = map(int, summary.groups())
    row = {
        "key": v.key, "model": v.model, "label": v.label, "tables": sorted(v.tables),
        "host_accuracy": metrics["test_accuracy"], "model_bytes": metrics.get("model_bytes"),
        "flash_bytes": size["flash_bytes"], "first_correct": first_correct, "first_images": first_images,
        # The firmware times each image with the chip's µs TIMER (emulated from cycles).
        "ms": us_total / 1000 / max(first_images, 1), "peak_ram": run["peak_ram_bytes"],
        "chip_accuracy": None, "chip_images": 0, "agreement": None, "cycles": None,
        "functions": run.get("functions", {}), "uf2": str(build / "firmware.uf2"),
        "class_names": metrics.get("class_names"),  # the model's, when its data named the classes
    }
    if evaluated:
        emu = json.loads((build / "emulator.json").read_text())
        row.update(chip_accuracy=emu["accuracy"], chip_images=emu["images"], agreement=emu["agreement_with_host"],
                   ms=emu["ms_per_inference_125mhz"], cycles=emu["cycles_per_inference"]["mean"],
                   peak_ram=max(emu["peak_ram_bytes"], row["peak_ram"]))
    return row


# -- the report ----------------------------------------------------------------------------------------------------
def _pct(x):
    return "" if x is None else f"{100 * x:.2f} %"


def _kb(x):
    return "" if x is None else f"{x / 1000:,.1f} kB"


def table(rows, key_filter) -> list[str]:
    lines = ["| model | variant | host accuracy (10,000) | binary (flash) | chip, boot run | chip, all images "
             "| time / image at 125 MHz | peak RAM | original accuracy | original binary | original time |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not key_filter(r):
            continue
        orig = ORIGINAL.get(r["key"], {})
        first = f"{r['first_correct']}/{r['first_images']}" if r["first_images"] else ""
        chip = f"{_pct(r['chip_accuracy'])} of {r['chip_images']:,}" if r["chip_images"] else "not run"
        lines.append(f"| {r['model']} | {r['label']} | {_pct(r['host_accuracy'])} | {_kb(r['flash_bytes'])} | "
                     f"{first} | {chip} | {r['ms']:.2f} ms | {r['peak_ram']:,} B | {_pct(orig.get('accuracy'))} | "
                     f"{_kb(orig.get('bytes'))} | {'' if 'seconds' not in orig else str(orig['seconds']) + ' s'} |")
    return lines


def summary_table(rows) -> list[str]:
    """One line per variant with the original project's figures beside ours: the README's results table."""
    lines = ["| model | variant | accuracy, host (10,000) | accuracy on the chip | agreement with host | flash "
             "| time / image | peak RAM | original: accuracy, time, binary |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o = ORIGINAL.get(r["key"], {})
        original = ", ".join(x for x in (_pct(o.get("accuracy")), f"{o['seconds']} s" if "seconds" in o else "",
                                         f"{o['bytes'] / 1e6:.2f} MB" if "bytes" in o else "") if x)
        chip = f"{_pct(r['chip_accuracy'])} of {r['chip_images']:,}" if r["chip_images"] else "not run"
        agreement = _pct(r["agreement"]) if r["agreement"] is not None else ""
        lines.append(f"| {r['model']} | {r['label']} | {_pct(r['host_accuracy'])} | {chip} | {agreement} | "
                     f"{_kb(r['flash_bytes'])} | {r['ms']:.2f} ms | {_kb(r['peak_ram'])} | {original} |")
    return lines


def class_names_section(rows) -> list[str]:
    """The class names of the models that have them (label order), as the firmware prints them after `class`."""
    named = {r["model"]: r["class_names"] for r in rows if r.get("class_names")}
    if not named:
        return []
    return ["## Classes", "", "| model | classes (label 0 first) |", "|---|---|",
            *(f"| {model} | {', '.join(f'{i}: {n}' for i, n in enumerate(names))} |" for model, names in named.items()),
            ""]


def write_results(out: Path, rows, commands, images: int):
    lines = ["# Results", "",
             "Produced by `python -m zoo.report` (every command it ran is listed at the end). Host accuracy is on "
             "the full 10,000-image MNIST (fashion_*: Fashion-MNIST) test set; chip figures come from the RP2040 "
             f"emulator running the exact UF2: the firmware's own boot run over the first {FIRST_IMAGES} test images "
             f"(as the original project evaluated; {FLOAT_CONV_IMAGES} for float32 conv nets, which run in soft "
             f"float), and `rp2040_sim eval` over {images:,} images ({FLOAT_CONV_IMAGES} for float32 conv nets). Time "
             "per image is emulated cycles at 125 MHz. Original figures are the C++ project's, where it gave them.", "",
             "## Summary", "", *summary_table(rows), ""]
    for name, title in TABLES.items():
        selected = [r for r in rows if name in r["tables"]]
        if selected:
            lines += [f"## {title}", "", *table(selected, lambda r: True), ""]
    lines += class_names_section(rows)
    lines += ["## All variants", "", *table(rows, lambda r: True), "",
              "![accuracy vs time](accuracy_vs_time.png)", "", "![flash and RAM](memory.png)", "",
              "![cycles per function](cycles_per_function.png)", "",
              "## Commands", "", "```", *dict.fromkeys(commands), "```", ""]
    atomic_write_bytes(out / "RESULTS.md", "\n".join(lines).encode())


def write_plots(out: Path, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def save(fig, name):
        tmp = out / f".{name}.tmp.png"
        fig.tight_layout()
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        tmp.replace(out / name)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    # Host accuracy on the full test set for every variant (eval checks the chip agrees with it), emulated time.
    ax.scatter([r["ms"] for r in rows], [100 * r["host_accuracy"] for r in rows])
    for r in rows:
        ax.annotate(r["key"], (r["ms"], 100 * r["host_accuracy"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    front, best = [], -1.0
    for r in sorted(rows, key=lambda r: r["ms"]):
        if r["host_accuracy"] > best:
            front.append(r)
            best = r["host_accuracy"]
    ax.plot([r["ms"] for r in front], [100 * r["host_accuracy"] for r in front], "--", alpha=0.6,
            label="Pareto front")
    ax.set(xscale="log", xlabel="ms per image at 125 MHz (emulated)", ylabel="test accuracy (%)",
           title="Accuracy vs time per image")
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, "accuracy_vs_time.png")

    fig, (ax_flash, ax_ram) = plt.subplots(1, 2, figsize=(10, 4.5))
    keys = [r["key"] for r in rows]
    ax_flash.barh(keys, [r["flash_bytes"] / 1000 for r in rows])
    ax_flash.axvline(2048 * 1.024, color="red", alpha=0.5)
    ax_flash.set(xlabel="flash (kB); red: 2 MB", title="Flash per variant")
    ax_ram.barh(keys, [r["peak_ram"] / 1000 for r in rows])
    ax_ram.axvline(270.336, color="red", alpha=0.5)
    ax_ram.set(xlabel="peak RAM (kB); red: 264 kB", title="RAM per variant")
    save(fig, "memory.png")

    fig, ax = plt.subplots(figsize=(10, 0.5 * len(rows) + 2))
    # Share of each variant's cycles (firmware boot run) spent in its five most expensive functions: the layer
    # kernels and the soft-float helpers they call. Totals differ by 100x between variants, so shares, not cycles.
    top = sorted({f for r in rows for f, _ in sorted(r["functions"].items(), key=lambda kv: -kv[1])[:5]})
    left, bars, names = [0.0] * len(rows), [], [*top, "other"]
    colors = plt.get_cmap("tab20")  # 20 distinct colours: the default cycle repeats after 10
    for i, name in enumerate(names):
        values = []
        for r in rows:
            total = max(sum(r["functions"].values()), 1)
            cycles = (sum(c for f, c in r["functions"].items() if f not in top) if name == "other"
                      else r["functions"].get(name, 0))
            values.append(100 * cycles / total)
        bars.append(ax.barh(keys, values, left=left, color=colors(i % 20)))
        left = [a + b for a, b in zip(left, values)]
    for y, r in enumerate(rows):
        ax.text(101, y, f"{r['ms']:.2f} ms/image", va="center", fontsize=7)
    ax.set(xlim=(0, 125), xlabel="% of cycles", title="Where the cycles go (per function)")
    # Handles passed explicitly: matplotlib drops labels that start with "_" (all of libgcc's __aeabi_*).
    ax.legend(bars, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    save(fig, "cycles_per_function.png")


def make_report(models, out: Path, runs: Path, builds: Path, images: int, console=None,
                variants: list[Variant] | None = None, detailed=("mnist_300",), epochs: int | None = None,
                tool: str = "zoo.report", force: bool = False):
    """Run every variant and write `out`: its own files only (OUTPUT_FILES); an earlier output of this same
    command is refreshed, anything else there is left alone (zoo/outputs.py)."""
    from rich.console import Console
    console = console or Console()
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ReportError(f"unknown models {unknown}; known models: {', '.join(MODELS)}")
    if epochs is not None and epochs < 1:
        raise ReportError(f"--epochs {epochs}: must be at least 1 (leave it out for each model's own recipe)")
    if not 1 <= images <= MNIST_TEST_IMAGES:
        raise ReportError(f"--images {images}: must be 1..{MNIST_TEST_IMAGES}")
    od = output_dirs.OutputDir(out, tool, OUTPUT_FILES, inputs=[runs, builds], force=force, regenerate=True)
    try:
        od.check()
        with od.staging() as stage:
            runner = Runner(console, stage / "report.log", shown_log=out / "report.log")
            variants = variants if variants is not None else variants_for(models, detailed)
            rows = []
            try:
                for i, v in enumerate(variants, 1):
                    console.print(f"[bold][{i}/{len(variants)}] {v.key}[/bold]")
                    n = images if v.images is None else min(v.images, images)
                    rows.append(run_variant(runner, v, runs, builds, n, epochs))
            except ReportError:
                od.commit(stage, partial=True)  # the log the message points to; earlier results stay
                raise
            write_json(stage / "results.json", rows)
            write_results(stage, rows, runner.commands, images)
            write_plots(stage, rows)
            od.commit(stage)
    except output_dirs.OutputError as e:
        raise ReportError(str(e)) from None
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.report", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registry names")
    parser.add_argument("--images", type=int, default=10_000, help="test images emulated per variant")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="where model directories go")
    parser.add_argument("--builds", type=Path, default=Path("build"), help="where build directories go")
    parser.add_argument("--detailed", nargs="*", default=["mnist_300"],
                        help="models also built in float64, pruned, and pruned + int8")
    parser.add_argument("--epochs", type=int, help="override the training epochs (quick runs; figures then differ)")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier zoo.report output in --out written before picozoo kept manifests")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= 10_000:
        parser.error(f"--images must be 1..10000, got {args.images}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    try:
        make_report(args.models, args.out, args.runs, args.builds, args.images, detailed=args.detailed,
                    epochs=args.epochs, force=args.force)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
