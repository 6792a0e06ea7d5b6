"""What both examples do once their data file exists: the commands a user types, run one after the other.

    python -m zoo.train --spec SPEC --data DATA.npz --out OUT/model [recipe flags]
    python -m compress OUT/model --quantize int8 --out OUT/model/int8
    python -m firmware.build OUT/model/int8 --out OUT/build
    python -m rp2040_sim eval OUT/build [--images N]

then the UF2 is checked by the bootrom's rules (firmware.uf2) and the figures are collected into OUT/result.json.
Each command runs as a subprocess exactly as typed (printed first), in the repository root, so nothing here reaches
inside picozoo: a user's spec and data file get to the chip through the command-line tools alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULT_FILE = "result.json"


class ExampleError(Exception):
    """A step failed or a result is off; the message says which."""


def run(cmd: list[str], quiet: bool = False) -> None:
    shown = " ".join(str(c) for c in cmd)
    print(f"$ {shown}", flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, *map(str, cmd)], cwd=REPO, env=env, text=True,
                          stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout or "").splitlines()[-15:])
        raise ExampleError(f"`{shown}` failed with exit code {proc.returncode}" + (f":\n{tail}" if tail else ""))


def write_data(path: Path, arrays: dict, force: bool) -> None:
    """Write the example's .npz (deterministic bytes: same seed, same file); an existing file with other contents
    is only replaced with --force, so the example never overwrites data it did not make."""
    import io

    import numpy as np
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    new = buf.getvalue()
    if path.exists() and path.read_bytes() != new and not force:
        raise ExampleError(f"{path} exists with other contents; give --force to replace it, or another --out")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(new)
    os.replace(tmp, path)


def to_the_chip(spec: Path, data: Path, out: Path, recipe_flags: list[str], images: int | None, force: bool,
                quiet: bool) -> dict:
    """Train, quantize, build, emulate; returns the figures (also written to OUT/result.json)."""
    from firmware import uf2

    model, int8, build = out / "model", out / "model" / "int8", out / "build"
    forced = ["--force"] if force else []
    progress = ["--no-progress"] if quiet else []
    run(["-m", "zoo.train", "--spec", spec, "--data", data, "--out", model, *recipe_flags, *forced, *progress],
        quiet)
    run(["-m", "compress", model, "--quantize", "int8", "--out", int8, *forced, *(["--quiet"] if quiet else [])],
        quiet)
    run(["-m", "firmware.build", int8, "--out", build, *forced], quiet)
    run(["-m", "rp2040_sim", "eval", build, *(["--images", str(images)] if images else []), "--no-progress"], quiet)
    uf2_path = build / "firmware.uf2"
    try:
        base, image = uf2.read_uf2(uf2_path.read_bytes(), str(uf2_path))
        uf2.check_image(base, image, str(uf2_path))
    except uf2.Uf2Error as e:
        raise ExampleError(str(e)) from None
    float_metrics = json.loads((model / "metrics.json").read_text())
    int8_metrics = json.loads((int8 / "metrics.json").read_text())
    emu = json.loads((build / "emulator.json").read_text())
    result = {
        "spec": str(spec), "data": str(data), "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "class_names": int8_metrics.get("class_names"),
        "float_test_accuracy": float_metrics["test_accuracy"], "int8_test_accuracy": int8_metrics["test_accuracy"],
        "test_images": int8_metrics.get("test_images"), "epochs": float_metrics["epochs"],
        "params": float_metrics["params"], "model_bytes": int8_metrics["model_bytes"],
        "chip_images": emu["images"], "chip_accuracy": emu["accuracy"], "chip_host_accuracy": emu["host_accuracy"],
        "agreement_with_host": emu["agreement_with_host"], "max_abs_output_diff": emu["max_abs_output_diff"],
        "cycles_per_inference": emu["cycles_per_inference"]["mean"],
        "ms_per_inference_125mhz": emu["ms_per_inference_125mhz"], "peak_ram_bytes": emu["peak_ram_bytes"],
        "flash_bytes": emu["flash_bytes"], "uf2": str(uf2_path), "uf2_sha256": emu["uf2_sha256"],
    }
    tmp = out / f".{RESULT_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out / RESULT_FILE)
    return result


def report(title: str, result: dict, target: float | None) -> int:
    """Print the figures; exit status 1 when the chip is not bit-exact with the host or misses `target`."""
    print(f"\n{title}")
    print(f"  host: float {result['float_test_accuracy']:.2%}, int8 {result['int8_test_accuracy']:.2%} "
          f"({result['test_images']} test samples)")
    print(f"  chip: {result['chip_accuracy']:.2%} on {result['chip_images']} samples, agreement with the host "
          f"{result['agreement_with_host']:.4f}, max output difference {result['max_abs_output_diff']:g}")
    print(f"  {result['ms_per_inference_125mhz']:.3f} ms per inference at 125 MHz "
          f"({result['cycles_per_inference']:,.0f} cycles), peak RAM {result['peak_ram_bytes']:,} B, "
          f"flash {result['flash_bytes']:,} B, model {result['model_bytes']:,} B")
    print(f"  validated UF2 (bootrom rules): {result['uf2']}")
    status = 0
    if result["agreement_with_host"] != 1.0 or result["max_abs_output_diff"] != 0.0:
        print("  NOT bit-exact with the integer golden model", file=sys.stderr)
        status = 1
    if target is not None:
        met = result["chip_accuracy"] >= target
        print(f"  target: >= {target:.0%} on the chip: {'met' if met else 'NOT met'}")
        status = status or (0 if met else 1)
    return status
