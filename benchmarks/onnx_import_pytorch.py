"""PyTorch -> ONNX -> picozoo on MNIST -> the chip: identical predictions to onnxruntime on all 10,000 test images,
the int8 variant's accuracy change (issue target: within 0.3 points), and that int8 model on the emulated RP2040
(bit-exact with the integer golden model).

    python benchmarks/onnx_import_pytorch.py [--models mlp cnn] [--epochs 2] [--out runs/onnx]
                                             [--chip-images 10000] [--jobs 2]

Needs torch (the `bench` extra: pip install -e '.[bench]'). Each model is trained on the CPU with a fixed seed,
exported with torch.onnx.export (TorchScript exporter), imported with `python -m zoo.import --dataset mnist` (whose
check runs onnxruntime on the 10,000 test images), quantized with `python -m compress --quantize int8`, built with
`python -m firmware.build` and run with `python -m rp2040_sim eval --images N` (`--chip-images 0` skips the chip). The CNN is ~6.1 M emulated cycles per
image, which the development machine emulated at only ~13 M cycles per CPU second (the MLP's 67 k cycles run
10,000 images in minutes): all 10,000 CNN images are over an hour of CPU there, so docs/BENCHMARKS.md used
`--chip-images 500` for it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from zoo import data


def make(name, torch):
    nn = torch.nn
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.1), nn.Linear(128, 10))
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def train(module, ds, epochs, torch, seed=0):
    torch.manual_seed(seed)
    x = torch.tensor(ds.x_train.reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)
    y = torch.tensor(ds.y_train, dtype=torch.long)
    opt = torch.optim.Adam(module.parameters(), 1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        module.train()
        for idx in torch.randperm(len(x), generator=gen).split(128):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(x[idx]), y[idx]).backward()
            opt.step()
    module.eval()
    with torch.no_grad():
        xt = torch.tensor(ds.x_test.reshape(-1, 1, 28, 28) / 255.0, dtype=torch.float32)
        return float((module(xt).argmax(1).numpy() == ds.y_test).mean())


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["mlp", "cnn"], choices=["mlp", "cnn"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/onnx"))
    parser.add_argument("--chip-images", type=int, default=10000,
                        help="MNIST test images run on the emulated chip (0: no firmware build)")
    parser.add_argument("--jobs", type=int, default=2, help="emulator worker processes")
    args = parser.parse_args(argv)
    import torch
    torch.set_num_threads(2)
    ds = data.load("mnist")
    rows = []
    for name in args.models:
        module = make(name, torch)
        t0 = time.perf_counter()
        torch_acc = train(module, ds, args.epochs, torch)
        out = args.out / name
        out.mkdir(parents=True, exist_ok=True)
        onnx_path = out / f"{name}.onnx"
        torch.onnx.export(module, (torch.zeros(1, 1, 28, 28),), str(onnx_path), dynamo=False, input_names=["x"],
                          dynamic_axes={"x": {0: "N"}})
        run([sys.executable, "-m", "zoo.import", str(onnx_path), "--dataset", "mnist", "--out", str(out / "imported")])
        run([sys.executable, "-m", "compress", str(out / "imported"), "--quantize", "int8", "--quiet",
             "--out", str(out / "imported" / "int8")])
        imported = json.loads((out / "imported" / "metrics.json").read_text())
        int8 = json.loads((out / "imported" / "int8" / "metrics.json").read_text())
        check = imported["import_check"]
        chip = None
        if args.chip_images:
            build = out / "build-int8"
            run([sys.executable, "-m", "firmware.build", str(out / "imported" / "int8"), "--out", str(build),
                 "--force"])
            run([sys.executable, "-m", "rp2040_sim", "eval", str(build), "--images", str(args.chip_images),
                 "--jobs", str(args.jobs), "--timeout", "0", "--no-progress"])  # wall time: the machine's load
            chip = json.loads((build / "emulator.json").read_text())
        rows.append((name, torch_acc, check, imported["test_accuracy"], int8["test_accuracy"],
                     time.perf_counter() - t0, chip))
    print("\n| model | torch accuracy | import check (onnxruntime) | imported float | int8 (golden model) | "
          "int8 change |")
    print("|---|---|---|---|---|---|")
    for name, tacc, check, facc, qacc, _, _ in rows:
        print(f"| {name} | {tacc:.2%} | {check['same_predictions']:,}/{check['inputs']:,} same, max abs diff "
              f"{check['max_abs_output_diff']:.1e} | {facc:.2%} | {qacc:.2%} | {100 * (qacc - facc):+.2f} points |")
    chips = [(name, chip) for name, *_, chip in rows if chip]
    if chips:
        print("\n| model | images on the chip | int8 accuracy on the chip | agreement with the golden model | "
              "max output diff | cycles / image | ms / image at 125 MHz | peak RAM |")
        print("|---|---|---|---|---|---|---|---|")
        for name, chip in chips:
            print(f"| {name} | {chip['images']:,} | {chip['accuracy']:.2%} | {chip['agreement_with_host']} | "
                  f"{chip['max_abs_output_diff']:g} | {chip['cycles_per_inference']['mean']:,.0f} | "
                  f"{chip['ms_per_inference_125mhz']:.2f} | {chip['peak_ram_bytes']:,} B |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
