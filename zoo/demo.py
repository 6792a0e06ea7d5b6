"""`make demo` (`python -m zoo.demo`): the mnist_300 flow end to end, then a short comparison and a validated UF2.

Train mnist_300, prune it to 90 % with 7 shared int8 values per layer (fine-tuned on 1-pixel shifted images:
docs/COMPRESS.md), build both firmwares, boot each in the emulator (the
firmware's own run over the first 50 test images), emulate the compressed one over all 10,000 test images, and
check its UF2 by the bootrom's rules. Steps whose inputs are unchanged are reused (zoo.report's cache), so a
second run takes seconds. The float firmware is not emulated over all 10,000 images here: in soft float that is
~120 ms of chip time per image (`python -m zoo.report` does it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from firmware import uf2
from zoo.report import ORIGINAL, SHARED90_COMPRESS, SHARED90_LABEL, ReportError, Variant, make_report

MODEL = "mnist_300"


def demo_variants(images: int) -> list[Variant]:
    return [Variant(MODEL, MODEL, "float32", images=0),
            Variant(f"{MODEL}-prune90-share7-int8", MODEL, SHARED90_LABEL, compress=SHARED90_COMPRESS,
                    images=images)]


def comparison(rows) -> Table:
    original = ORIGINAL[MODEL]
    float_row, small = rows
    table = Table(title="784-300-10 on the RP2040: the original C++ project vs picozoo")
    for column in ("", "original (float)", "picozoo float32", "picozoo pruned 90 %, shared int8"):
        table.add_column(column, justify="right" if column else "left")

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f} %"

    table.add_row("test accuracy (host, 10,000)", pct(original["accuracy"]), pct(float_row["host_accuracy"]),
                  pct(small["host_accuracy"]))
    table.add_row("on the chip, first 50", "-", f"{float_row['first_correct']}/50", f"{small['first_correct']}/50")
    table.add_row("on the chip, all images", "-", "-" if not float_row["chip_images"] else pct(float_row["chip_accuracy"]),
                  f"{pct(small['chip_accuracy'])} of {small['chip_images']:,}")
    table.add_row("agreement with host", "-", "-" if float_row["agreement"] is None else pct(float_row["agreement"]),
                  pct(small["agreement"]))
    table.add_row("binary (flash)", f"{original['bytes'] / 1e6:.2f} MB", f"{float_row['flash_bytes'] / 1e3:,.1f} kB",
                  f"{small['flash_bytes'] / 1e3:,.1f} kB")
    table.add_row("time per image", f"{original['seconds']:.2f} s", f"{float_row['ms']:.1f} ms",
                  f"{small['ms']:.2f} ms")
    table.add_row("peak RAM", "-", f"{float_row['peak_ram']:,} B", f"{small['peak_ram']:,} B")
    table.caption = ("time per image: float32 by the firmware's own µs timer over the first 50 images, int8 by the "
                     "mean emulated cycles over all evaluated images, both at 125 MHz")
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zoo.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10_000, help="test images to emulate for the int8 firmware")
    parser.add_argument("--out", type=Path, default=Path("reports/demo"))
    parser.add_argument("--epochs", type=int, help="override the training epochs (a quick smoke run)")
    parser.add_argument("--runs", type=Path, default=Path("runs"),
                        help="where the model directories go (a runs/mnist_300 this demo did not make is left alone)")
    parser.add_argument("--builds", type=Path, default=Path("build"), help="where the build directories go")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier zoo.demo output in --out written before picozoo kept manifests")
    args = parser.parse_args(argv)
    if not 1 <= args.images <= 10_000:
        parser.error(f"--images must be 1..10000, got {args.images}")
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs} (leave it out for the full recipe)")
    console = Console()
    try:
        rows = make_report([MODEL], args.out, args.runs, args.builds, args.images, console,
                           variants=demo_variants(args.images), epochs=args.epochs, tool="zoo.demo",
                           force=args.force)
        path = Path(rows[1]["uf2"])
        base, image = uf2.read_uf2(path.read_bytes(), str(path))
        uf2.check_image(base, image, str(path))
    except (ReportError, uf2.Uf2Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    console.print(comparison(rows))
    console.print(f"validated UF2 (bootrom rules, boot2 CRC, vector table): [bold]{path}[/bold]")
    console.print(f"flash it: hold BOOTSEL, plug the Pico in, then  python -m firmware.flash {path}")
    console.print(f"full write-up with plots: {args.out / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
