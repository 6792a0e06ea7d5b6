"""`python -m zoo.import MODEL.onnx --dataset mnist --out DIR`: an ONNX model as a picozoo model directory.

A thin wrapper over `zoo.onnx_import.import_onnx` (the module name `import` cannot be imported with a plain
`import` statement, so the library lives there); see that module and docs/IMPORT.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo import data
from zoo.onnx_import import SUPPORTED_OPS, TOLERANCE, OnnxImportError, import_onnx


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zoo.import", description="Import an ONNX model (from PyTorch, Keras, ...) as a picozoo model "
        f"directory, checked against onnxruntime. Supported operators: {', '.join(SUPPORTED_OPS)}.")
    parser.add_argument("model", type=Path, help="the .onnx file")
    parser.add_argument("--out", type=Path, required=True, help="the model directory to create (new or empty)")
    parser.add_argument("--dataset", choices=data.DATASETS, required=True,
                        help="the data the model takes: the check against onnxruntime runs on its test images, "
                             "metrics.json gets its test accuracy, and compress, eval and firmware.build read it")
    parser.add_argument("--data-dir", type=Path, help="directory with the dataset's IDX files (plain or .gz)")
    parser.add_argument("--input-scale", type=float,
                        help="model input = raw uint8 value * scale (default: the dataset's, 1/255 for images)")
    parser.add_argument("--name", help="model name recorded in the directory (default: the file's stem)")
    args = parser.parse_args(argv)
    try:
        dataset = data.load(args.dataset, args.data_dir)
        metrics = import_onnx(args.model, args.out, dataset=dataset, input_scale=args.input_scale, name=args.name)
    except (OnnxImportError, data.DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    check = metrics["import_check"]
    print(f"imported {args.model} -> {args.out}: {metrics['params']} parameters")
    print(f"check against onnxruntime on {check['inputs']} inputs: predictions identical, max abs output difference "
          f"{check['max_abs_output_diff']:.2e} (tolerance {TOLERANCE})")
    print(f"test accuracy {metrics['test_accuracy']:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
