"""`python -m zoo.import MODEL.onnx (--dataset mnist | --data FILE) --out DIR`: an ONNX model as a model directory.

A thin wrapper over `zoo.onnx_import.import_onnx` (the module name `import` cannot be imported with a plain
`import` statement, so the library lives there); see that module and docs/IMPORT.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo import data, userdata
from zoo.onnx_import import SUPPORTED_OPS, TOLERANCE, OnnxImportError, import_onnx


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m zoo.import", description="Import an ONNX model (from PyTorch, Keras, ...) as a picozoo model "
        f"directory, checked against onnxruntime. Supported operators: {', '.join(SUPPORTED_OPS)}.")
    parser.add_argument("model", type=Path, help="the .onnx file")
    parser.add_argument("--out", type=Path, required=True, help="the model directory to create (new or empty)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", choices=data.DATASETS,
                        help="the data the model takes: the check against onnxruntime runs on its test images, "
                             "metrics.json gets its test accuracy, and compress, eval and firmware.build read it")
    source.add_argument("--data", type=Path, metavar="FILE",
                        help="or your own data: an .npz, a .csv or an IDX directory (docs/DATA.md), used the same way")
    parser.add_argument("--normalize", choices=("none", "scale", "standard"),
                        help="--data: what the model's input is (default: none for float data, which the model "
                             "then takes as it is; scale = raw / 255 for uint8 data)")
    userdata.add_csv_arguments(parser, "--data CSV", "seeded, seed 0")
    parser.add_argument("--data-dir", type=Path, help="directory with the dataset's IDX files (plain or .gz)")
    parser.add_argument("--input-scale", type=float,
                        help="model input = raw uint8 value * scale (default: the dataset's, 1/255 for images)")
    parser.add_argument("--name", help="model name recorded in the directory (default: the file's stem)")
    args = parser.parse_args(argv)
    if args.data is None and any(getattr(args, k) is not None for k in
                                 ("normalize", "label_column", "test_file", "test_fraction")):
        parser.error("--normalize, --label-column, --test-file and --test-fraction apply to --data FILE only")
    if args.data is not None and args.data_dir is not None:
        parser.error("--data-dir is for --dataset; --data names your file or IDX directory itself")
    try:
        if args.data is not None:
            dataset = userdata.load_file(args.data, normalize=args.normalize, float_default="none",
                                         label_column=args.label_column, test_file=args.test_file,
                                         test_fraction=args.test_fraction)
        else:
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
