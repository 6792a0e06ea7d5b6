"""Gestures from a 3-axis accelerometer, classified on an RP2040: the data is generated here (motions.py, seeded).

    python examples/gestures/run.py [--quick] [--out runs/examples/gestures] [--force]

1. The data: 2,000 training and 500 test windows of 64 samples (1.28 s at 50 Hz) x 3 axes, five gestures (still,
   shake, circle, tap, wave) as parametric motions with random orientation, amplitude, frequency and noise, as an
   8-bit +-2 g sensor reports them; written as OUT/gestures.npz with x of shape (n, 64, 3) and the class names.
2. The network: gesture_net.py beside this script, a Python spec file (`model` and `recipe`): three (1, k)
   convolutions along time, pools, a global average pool and a dense layer.
3. The commands of examples/pipeline.py: zoo.train --spec --data, compress --quantize int8, firmware.build,
   rp2040_sim eval; the UF2 is checked by the bootrom's rules.

`--quick` trains 8 epochs on the same data and emulates 50 test windows (what the test suite runs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipeline import ExampleError, report, to_the_chip, write_data  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import motions  # noqa: E402

TRAIN, TEST, SEED = 2000, 500, 0
QUICK = {"epochs": "8", "images": 50}


def gesture_arrays(seed: int = SEED) -> dict:
    import numpy as np
    x_train, y_train, x_test, y_test = motions.dataset(TRAIN, TEST, seed)
    return {"x_train": x_train.reshape(-1, motions.T, 3), "y_train": y_train,
            "x_test": x_test.reshape(-1, motions.T, 3), "y_test": y_test, "class_names": np.array(motions.GESTURES)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 epochs, 50 emulated windows (a smoke run)")
    parser.add_argument("--out", type=Path, default=Path("runs/examples/gestures"))
    parser.add_argument("--force", action="store_true", help="replace this example's earlier outputs in --out")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    try:
        data = out / "gestures.npz"
        write_data(data, gesture_arrays(), args.force)
        result = to_the_chip(HERE / "gesture_net.py", data, out, ["--epochs", QUICK["epochs"]] if args.quick else [],
                             QUICK["images"] if args.quick else None, args.force, quiet=args.quick)
    except ExampleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return report("gestures (3-axis accelerometer, 5 classes) on the RP2040, int8", result, None)


if __name__ == "__main__":
    sys.exit(main())
