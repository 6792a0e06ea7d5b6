"""`python -m zoo.eval DIR`: re-evaluate a saved model on its full test set and print its metrics.

The evaluation uses zoo.host.reference (NumPy float, or the integer golden model for int8 variants: the same
reference the firmware is compared with), so it needs neither the training code nor an accelerator; the saved
metrics.json is checked against what it measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from zoo import data, host, modeldir


CHUNK_BYTES = 256 * 2**20  # activations held at once: the test set is evaluated in chunks of rows


def evaluate_dir(directory: Path, data_dir: Path | None = None) -> dict:
    model = modeldir.load(directory)  # validated, sizes within modeldir's limits
    ds = data.load_for_model(model.meta, data_dir)  # a named dataset, or the user's file (docs/DATA.md)
    widest = max(max(d.in_features, d.out_features) for d in model.spec.dense_layers)
    rows = max(1, CHUNK_BYTES // (8 * widest))
    classes = np.concatenate([host.reference(model, ds.x_test[i:i + rows])[1]
                              for i in range(0, len(ds.x_test), rows)])
    accuracy = float(np.mean(classes == ds.y_test))
    return {"model": model.meta.get("model"), "dataset": ds.name, "dtype": model.meta["dtype"],
            "test_accuracy": accuracy, "saved_test_accuracy": model.metrics.get("test_accuracy"),
            "test_images": len(ds.y_test), "params": model.spec.param_count()}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.eval", description="Re-evaluate a saved model directory.")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--data-dir", type=Path, help="directory with the dataset's IDX files (plain or .gz)")
    args = parser.parse_args(argv)
    try:
        result = evaluate_dir(args.model_dir, args.data_dir)
    except (modeldir.ModelDirError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{args.model_dir}")
    for key, value in result.items():
        shown = f"{value:.2%}" if "accuracy" in key and value is not None else str(value)
        table.add_row(key, shown)
    Console().print(table)
    saved = result["saved_test_accuracy"]
    if saved is not None and abs(saved - result["test_accuracy"]) > 2e-4:
        # The saved figure came from JAX; NumPy sums in another order, so allow two images of slack.
        print(f"warning: metrics.json says test_accuracy {saved:.4f}, re-evaluated {result['test_accuracy']:.4f}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
