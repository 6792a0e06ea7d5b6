"""scikit-learn's bundled 8x8 digits, end to end to a validated UF2 that classifies them on an RP2040.

    python examples/digits/run.py [--quick] [--out runs/examples/digits] [--force]

1. The data: sklearn.datasets.load_digits() (1,797 images shipped inside scikit-learn, no download), pixel values
   0..16 scaled to 0..255 bytes, a seeded 80/20 split (1,437 training, 360 test images), with class names, written
   as OUT/digits.npz (x_train, y_train, x_test, y_test, class_names).
2. The network: digits_net.json beside this script, a spec file (docs/MODEL_FORMAT.md) - two 3x3 convolutions and
   a dense layer, 9,930 parameters.
3. The commands of examples/pipeline.py: zoo.train --spec --data, compress --quantize int8, firmware.build,
   rp2040_sim eval; the UF2 is checked by the bootrom's rules.

Target (issue 12): int8 >= 97 % on the chip, bit-exact with the host. `--quick` trains 3 epochs and emulates 60
test images (what the test suite runs); the accuracy target applies to the full run only. Needs scikit-learn (the
`dev` extra).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import ExampleError, report, to_the_chip, write_data  # noqa: E402

HERE = Path(__file__).resolve().parent
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEST_IMAGES = 360
SEED = 0
RECIPE = ["--epochs", "30", "--batch-size", "32", "--lr", "0.003", "--weight-decay", "0.01"]
QUICK = {"epochs": "3", "images": 60}
TARGET = 0.97


def digits_arrays(seed: int = SEED) -> dict:
    """The npz arrays: x uint8 (n, 8, 8, 1), pixel values 0..16 scaled to round(v * 255 / 16)."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.data * 255 / 16).astype(np.uint8).reshape(-1, 8, 8, 1)
    y = digits.target.astype(np.int32)
    order = np.random.default_rng(seed).permutation(len(y))
    test, train = order[:TEST_IMAGES], order[TEST_IMAGES:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test],
            "class_names": np.array(NAMES)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, 60 emulated images (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/digits"))
    parser.add_argument("--force", action="store_true", help="replace this example's earlier outputs in --out")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    recipe = RECIPE.copy()
    if args.quick:
        recipe[1] = QUICK["epochs"]
    try:
        data = out / "digits.npz"
        write_data(data, digits_arrays(), args.force)
        result = to_the_chip(HERE / "digits_net.json", data, out, recipe, QUICK["images"] if args.quick else None,
                             args.force, quiet=args.quick)
    except ExampleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return report("digits (8x8, sklearn) on the RP2040, int8", result, None if args.quick else TARGET)


if __name__ == "__main__":
    sys.exit(main())
