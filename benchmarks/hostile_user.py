"""A hostile new user against the pipeline commands (issue 10): every attack run as a subprocess, then classified.

    python benchmarks/hostile_user.py                 # all attacks, a markdown table (docs/RELIABILITY.md)
    python benchmarks/hostile_user.py --only compress  # the attacks whose name contains "compress"
    python benchmarks/hostile_user.py --list

Commands covered: zoo.train, zoo.eval, zoo.data, compress, firmware.build, zoo.report, zoo.demo (firmware.flash,
firmware.uf2 and rp2040_sim have their own attacks elsewhere). Each attack gets a fresh copy of a small world (a
trained XOR model written by zoo.train, a 2-4-2 ReLU model a user saved, a user's directory with notes, a plain
file) and is classified as:

- good: refused with an `error:` line and a non-zero exit, or accepted with the right result; nothing lost
- data loss: a file that existed before the command is gone or changed (except the outputs it was asked to replace)
- traceback: a Python traceback on stderr
- hang: still running after the attack's time limit (60 s; 600 s for the zoo.report run)
- crash: killed by a signal
- silent wrong result: exit 0 where a refusal was due, or an accepted run whose result is wrong
- refused wrongly: a legitimate request refused
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from safetensors.numpy import save_file  # noqa: E402

from zoo import modeldir  # noqa: E402
from zoo.nn import Dense, ReLU, Sequential  # noqa: E402

MANIFEST = ".picozoo-manifest.json"  # zoo/outputs.py; spelled here so the script also runs against older trees
CLASSES = ("good", "data loss", "traceback", "hang", "crash", "silent wrong result", "refused wrongly")
TINY = Sequential([Dense(2, 4), ReLU(), Dense(4, 2)])
TINY_META = {"model": "tiny", "dataset": "xor", "input": {"scale": 1.0, "features": 2}, "dtype": "float32",
             "seed": 0}
INT8 = ["--quantize", "int8", "--calib-images", "4", "--quiet"]
IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass
class Attack:
    name: str
    kind: str  # which finding of the issue it re-runs
    argv: list  # after `python -m`; "{w}" is the world directory
    expect: str = "refuse"  # or "accept"
    prepare: Callable | None = None  # (world) -> None, before the snapshot
    may_change: tuple = ()  # world-relative paths an accepted run may replace
    check: Callable | None = None  # (world, proc) -> reason it is wrong, or None
    timeout: int = 60
    removes_staging: bool = False  # a killed run's `.NAME.tmp-PID` may go (that is the point)


# -- the world ---------------------------------------------------------------------------------------------------
def tiny_params(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return [{"w": rng.normal(size=(2, 4)).astype(dtype), "b": np.zeros(4, dtype)}, {},
            {"w": rng.normal(size=(4, 2)).astype(dtype), "b": np.zeros(2, dtype)}]


def make_world(path: Path):
    from zoo.models import get_model
    from zoo.train import train_and_evaluate

    train_and_evaluate(get_model("xor").with_overrides(epochs=300), path / "runs" / "xor", progress=False)
    modeldir.save(path / "runs" / "tiny", TINY, tiny_params(), TINY_META, {"test_accuracy": 0.5})
    modeldir.save(path / "runs" / "tiny" / "p", TINY, tiny_params(seed=1), TINY_META, {"test_accuracy": 0.5})
    (path / "mine").mkdir()
    (path / "mine" / "notes.txt").write_text("a user's notes")
    shutil.copy(path / "runs" / "tiny" / "model.safetensors", path / "mine" / "model.safetensors")
    (path / "afile").write_text("a user's file")


def raw_model(world, name, tensors=None, meta_changes=None, meta_text=None, metrics=None):
    """A model directory as someone else might write it."""
    d = world / name
    d.mkdir(parents=True, exist_ok=True)
    meta = {**TINY_META, "spec": TINY.to_dict(), "format_version": 1, **(meta_changes or {})}
    tensors = tensors if tensors is not None else modeldir.params_to_tensors(TINY, tiny_params())
    save_file(tensors, str(d / modeldir.MODEL_FILE), metadata={modeldir.META_KEY: meta_text or json.dumps(meta)})
    (d / modeldir.METRICS_FILE).write_text(metrics or '{"test_accuracy": 0.5}')


def bad_tensors(dtype=np.float32, nan=False):
    t = {k: v.astype(dtype) for k, v in modeldir.params_to_tensors(TINY, tiny_params()).items()}
    if nan:
        t["layers.0.w"][0, 0] = np.nan
    return t


MALFORMED = {  # name -> prepare(world) writing world/bad
    "spec is a string": lambda w: raw_model(w, "bad", meta_changes={"spec": "picozoo.sequential/1"}),
    "spec 784x10^6": lambda w: raw_model(w, "bad", meta_changes={
        "spec": Sequential([Dense(2, 10**6), ReLU(), Dense(10**6, 2)]).to_dict()}),
    "spec width a string": lambda w: raw_model(w, "bad", meta_changes={"spec": {**TINY.to_dict(), "layers": [
        {"type": "dense", "in": "2", "out": 4}, {"type": "relu"}, {"type": "dense", "in": 4, "out": 2}]}}),
    "NaN weight": lambda w: raw_model(w, "bad", tensors=bad_tensors(nan=True)),
    "float16 tensors": lambda w: raw_model(w, "bad", tensors=bad_tensors(np.float16)),
    "int32 tensors": lambda w: raw_model(w, "bad", tensors=bad_tensors(np.int32)),
    "metadata not JSON": lambda w: raw_model(w, "bad", meta_text="{spec"),
    "metadata a list": lambda w: raw_model(w, "bad", meta_text="[1]"),
    "seed -1 in metadata": lambda w: raw_model(w, "bad", meta_changes={"seed": -1}),
    "input scale a string": lambda w: raw_model(w, "bad", meta_changes={"input": {"scale": "1", "features": 2}}),
    "model name with a quote": lambda w: raw_model(w, "bad", meta_changes={"model": 'x" /* C */'}),
    "metrics accuracy a string": lambda w: raw_model(w, "bad", metrics='{"test_accuracy": "0.9"}'),
    "metrics accuracy NaN": lambda w: raw_model(w, "bad", metrics='{"test_accuracy": NaN}'),
    "metrics a list": lambda w: raw_model(w, "bad", metrics="[1]"),
    "truncated safetensors": lambda w: (raw_model(w, "bad"), _truncate(w / "bad" / modeldir.MODEL_FILE)),
    "model.safetensors is /dev/zero": lambda w: (w.joinpath("bad").mkdir(),
                                                 os.symlink("/dev/zero", w / "bad" / modeldir.MODEL_FILE)),
    "model.safetensors is a FIFO": lambda w: (w.joinpath("bad").mkdir(), os.mkfifo(w / "bad" / modeldir.MODEL_FILE)),
    "metrics.json is /dev/zero": lambda w: (raw_model(w, "bad"), (w / "bad" / "metrics.json").unlink(),
                                            os.symlink("/dev/zero", w / "bad" / "metrics.json")),
}


def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[:-7])


def idx(array) -> bytes:
    return bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape) + array.tobytes()


def data_dir(world, how):
    d = world / "data"
    d.mkdir()
    for stem in IDX_STEMS:
        target = d / (stem + ".gz")
        if how == "declared bomb":
            header = bytes([0, 0, 8, 3]) + b"".join(x.to_bytes(4, "big") for x in (4_000_000, 28, 28))
            target.write_bytes(gzip.compress(header + bytes(1 << 16)))
        elif how == "zeros bomb":
            with gzip.open(target, "wb", compresslevel=1) as f:
                f.write(idx(np.zeros(4, np.uint8)))
                for _ in range(200):
                    f.write(bytes(1 << 20))  # 200 MB of zeros after a 4-byte file
        elif how == "/dev/zero":
            os.symlink("/dev/zero", d / stem)
        elif how == "FIFO":
            os.mkfifo(d / stem)
        elif how == "wrong file":
            target.write_bytes(gzip.compress(idx(np.zeros((3, 28, 28), np.uint8))))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_staging(world):
    pid = dead_pid()
    subprocess.run([sys.executable, "-m", "compress", "runs/tiny", *INT8, "--out", "out"], cwd=world, check=True,
                   capture_output=True, env=_env())
    (world / f".out.tmp-{pid}").mkdir()
    (world / f".out.tmp-{pid}" / "model.safetensors").write_bytes(b"half")
    (world / "out" / f".model.safetensors.tmp-{pid}").write_bytes(b"half")


def no_stale(world, proc):
    left = [p.name for p in [*world.iterdir(), *(world / "out").iterdir()] if ".tmp-" in p.name]
    return f"left behind: {left}" if left else None


def has_manifest(path, tool):
    def check(world, proc):
        try:
            found = json.loads((world / path / MANIFEST).read_text())["tool"]
        except (OSError, ValueError, KeyError):
            return f"no manifest in {path}"
        return None if found == tool else f"manifest of {found} in {path}"
    return check


def report_ok(world, proc):
    text = (world / "reports" / "RESULTS.md").read_text() if (world / "reports" / "RESULTS.md").is_file() else ""
    return None if "| xor |" in text else "RESULTS.md has no xor row"


# -- the attacks -------------------------------------------------------------------------------------------------
def attacks() -> list[Attack]:
    a = []
    # 1: data loss
    for force in ([], ["--force"]):
        f = " --force" if force else ""
        a += [
            Attack(f"compress into the directory holding its input{f}", "data loss",
                   ["compress", "runs/tiny/p", *INT8, *force, "--out", "runs/tiny"]),
            Attack(f"compress --out its input{f}", "data loss", ["compress", "runs/tiny", *INT8, *force, "--out",
                                                                   "runs/tiny"]),
            Attack(f"compress over another trained model{f}", "data loss",
                   ["compress", "runs/tiny", *INT8, *force, "--out", "runs/xor"]),
            Attack(f"compress into a user's directory{f}", "data loss",
                   ["compress", "runs/tiny", *INT8, *force, "--out", "mine"]),
            Attack(f"zoo.train into a user's directory{f}", "data loss",
                   ["zoo.train", "xor", "--epochs", "1", "--no-progress", *force, "--out", "mine"]),
            Attack(f"firmware.build into a user's directory{f}", "data loss",
                   ["firmware.build", "runs/tiny", *force, "--out", "mine"]),
            Attack(f"firmware.build into its input{f}", "data loss",
                   ["firmware.build", "runs/tiny", *force, "--out", "runs/tiny"]),
            Attack(f"firmware.build into the runs directory holding its input{f}", "data loss",
                   ["firmware.build", "runs/tiny", *force, "--out", "runs"]),
        ]
    a += [
        Attack("zoo.train over its earlier output without --force", "data loss",
               ["zoo.train", "xor", "--epochs", "1", "--no-progress", "--out", "runs/xor"]),
        Attack("zoo.train --force over its earlier output keeps a user's file", "data loss",
               ["zoo.train", "xor", "--epochs", "1", "--no-progress", "--force", "--out", "runs/xor"],
               expect="accept", prepare=lambda w: (w / "runs" / "xor" / "notes.txt").write_text("mine"),
               may_change=("runs/xor/model.safetensors", "runs/xor/metrics.json", "runs/xor/training.png",
                           f"runs/xor/{MANIFEST}"), check=has_manifest("runs/xor", "zoo.train")),
        Attack("compress --force over an output whose metrics.json was edited", "data loss",
               ["compress", "runs/tiny", *INT8, "--force", "--out", "out"],
               prepare=lambda w: (subprocess.run([sys.executable, "-m", "compress", "runs/tiny", *INT8, "--out",
                                                  "out"], cwd=w, check=True, capture_output=True, env=_env()),
                                  (w / "out" / "metrics.json").write_text("{}"))),
        Attack("zoo.report --out holding runs/ and build/", "data loss",
               ["zoo.report", "--models", "xor", "--images", "1", "--out", "."]),
        Attack("zoo.demo over a user's runs/mnist_300", "data loss", ["zoo.demo", "--epochs", "1", "--images", "1"],
               prepare=lambda w: shutil.copytree(w / "runs" / "tiny", w / "runs" / "mnist_300")),
        Attack("zoo.demo --epochs 0", "argument", ["zoo.demo", "--epochs", "0"]),
        Attack("zoo.report --epochs 0", "argument", ["zoo.report", "--models", "xor", "--epochs", "0"]),
        Attack("zoo.report over a user's runs/xor", "data loss", ["zoo.report", "--models", "xor", "--images", "4"]),
        Attack("zoo.report --models xor", "wrong result", ["zoo.report", "--models", "xor", "--images", "4",
                                                           "--runs", "r", "--builds", "b"],
               expect="accept", timeout=600, check=report_ok),
        Attack("compress a nested variant (the README's layout)", "output", ["compress", "runs/tiny", *INT8,
                                                                                "--out", "runs/tiny/int8"],
               expect="accept", check=has_manifest("runs/tiny/int8", "compress")),
        Attack("firmware.build a model", "output", ["firmware.build", "runs/tiny", "--out", "build/tiny"],
               expect="accept", check=has_manifest("build/tiny", "firmware.build"), timeout=180),
        Attack("staging of a killed compress is cleaned", "stale temp", ["compress", "runs/tiny", *INT8, "--force",
                                                                         "--out", "out"],
               expect="accept", prepare=stale_staging, check=no_stale, removes_staging=True,
               may_change=("out/model.safetensors", "out/metrics.json", f"out/{MANIFEST}")),
    ]
    # 8: output paths checked before the work
    for cmd in (["zoo.train", "xor", "--no-progress"], ["compress", "runs/tiny", *INT8],
                ["firmware.build", "runs/tiny"]):
        for out, what in (("afile", "a file"), ("afile/sub", "below a file"), ("/proc/picozoo", "read-only")):
            a.append(Attack(f"{cmd[0]} --out {what}", "output path", [*cmd, "--out", out]))
    a.append(Attack("zoo.eval --out (no such option)", "output path", ["zoo.eval", "runs/xor", "--out", "x.json"]))
    # 9: malformed model directories, through every command that reads one
    for name in MALFORMED:
        for cmd in (["zoo.eval", "bad"], ["compress", "bad", *INT8, "--out", "o"], ["firmware.build", "bad", "--out",
                                                                                      "b"]):
            a.append(Attack(f"{cmd[0]}: {name}", "malformed model", cmd, prepare=MALFORMED[name],
                            timeout=30 if "FIFO" in name else 60))
    # arguments
    a += [Attack("zoo.train --seed -1", "argument", ["zoo.train", "xor", "--seed", "-1", "--out", "o"]),
          Attack("zoo.train --seed 2^32", "argument", ["zoo.train", "xor", "--seed", str(2**32), "--out", "o"]),
          Attack("zoo.train --epochs 0", "argument", ["zoo.train", "xor", "--epochs", "0", "--out", "o"]),
          Attack("zoo.train --lr nan", "argument", ["zoo.train", "xor", "--lr", "nan", "--out", "o"]),
          Attack("compress --seed -1", "argument", ["compress", "runs/tiny", *INT8, "--seed", "-1", "--out", "o"]),
          Attack("compress --prune 1.5", "argument", ["compress", "runs/tiny", "--prune", "1.5", "--out", "o"]),
          Attack("zoo.eval a missing directory", "argument", ["zoo.eval", "nowhere"]),
          Attack("zoo.data an unknown dataset", "argument", ["zoo.data", "fetch", "cifar"])]
    # 7: resource bombs in --data-dir
    for how in ("declared bomb", "zeros bomb", "/dev/zero", "FIFO", "wrong file"):
        a.append(Attack(f"zoo.data --data-dir with {how}", "resource", ["zoo.data", "fetch", "mnist", "--data-dir",
                                                                         "data"],
                        prepare=lambda w, how=how: data_dir(w, how)))
        a.append(Attack(f"zoo.train --data-dir with {how}", "resource", ["zoo.train", "mnist_50", "--data-dir",
                                                                          "data", "--out", "o", "--no-progress"],
                        prepare=lambda w, how=how: data_dir(w, how)))
    a.append(Attack("zoo.data --data-dir a file", "resource", ["zoo.data", "fetch", "mnist", "--data-dir", "afile"]))
    a.append(Attack("zoo.eval with a spec of 784x10^6", "resource", ["zoo.eval", "bad"],
                    prepare=lambda w: raw_model(w, "bad", meta_changes={
                        "spec": Sequential([Dense(784, 10**6), ReLU(), Dense(10**6, 10)]).to_dict(),
                        "dataset": "mnist", "input": {"scale": 1 / 255, "features": 784}})))
    return a


# -- running and classifying ---------------------------------------------------------------------------------------
# Runs `python -m MODULE ARGS` and reports the process's peak resident memory on stderr, however it exits.
_WRAPPER = """import resource, runpy, sys
module, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
try:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
finally:
    print(f"pz-max-rss-kb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
"""


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def snapshot(world: Path) -> dict:
    out = {}
    for p in world.rglob("*"):
        if p.is_symlink() or not p.is_file():
            out[str(p.relative_to(world))] = "link" if p.is_symlink() else None
            continue
        out[str(p.relative_to(world))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def run_attack(attack: Attack, template: Path, scratch: Path) -> dict:
    world = scratch / "world"
    if world.exists():
        shutil.rmtree(world)
    shutil.copytree(template, world, symlinks=True)
    if attack.prepare:
        attack.prepare(world)
    before = snapshot(world)
    start = time.perf_counter()
    argv = [sys.executable, "-c", _WRAPPER, *attack.argv]
    try:
        proc = subprocess.run(argv, cwd=world, capture_output=True, text=True, timeout=attack.timeout, env=_env())
    except subprocess.TimeoutExpired:
        return {"name": attack.name, "kind": attack.kind, "command": "python -m " + " ".join(attack.argv),
                "class": "hang", "exit": None, "seconds": attack.timeout, "detail": f"> {attack.timeout} s"}
    seconds = round(time.perf_counter() - start, 1)
    rss = [line for line in proc.stderr.splitlines() if line.startswith("pz-max-rss-kb ")]
    proc.stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("pz-max-rss-kb "))
    max_rss_mb = round(int(rss[-1].split()[1]) / 1024) if rss else None
    after = snapshot(world)
    lost = [p for p, h in before.items() if p not in attack.may_change and after.get(p, "gone") != h
            and not (attack.removes_staging and ".tmp-" in p)]
    err = proc.stderr.strip().splitlines()
    detail = err[-1][:200] if err else ""
    if "Traceback (most recent call last)" in proc.stderr:
        cls = "traceback"
    elif proc.returncode < 0:
        cls, detail = "crash", f"signal {-proc.returncode}"
    elif lost:
        cls, detail = "data loss", f"changed or gone: {sorted(lost)[:5]}"
    elif attack.expect == "refuse":
        cls = "good" if proc.returncode != 0 and err else "silent wrong result"
        if cls != "good":
            detail = f"exit {proc.returncode}"
    elif proc.returncode != 0:
        cls = "refused wrongly"
    else:
        reason = attack.check(world, proc) if attack.check else None
        cls, detail = ("silent wrong result", reason) if reason else ("good", detail)
    return {"name": attack.name, "kind": attack.kind, "command": "python -m " + " ".join(attack.argv),
            "class": cls, "exit": proc.returncode, "seconds": seconds, "max_rss_mb": max_rss_mb, "detail": detail}


def table(results) -> str:
    counts = Counter(r["class"] for r in results)
    lines = ["| attempts | " + " | ".join(CLASSES) + " |", "|---" * (len(CLASSES) + 1) + "|",
             f"| {len(results)} | " + " | ".join(str(counts.get(c, 0)) for c in CLASSES) + " |", "",
             "| kind | attempts | good | not good |", "|---|---|---|---|"]
    for kind in dict.fromkeys(r["kind"] for r in results):
        rows = [r for r in results if r["kind"] == kind]
        bad = [f"{r['name']} ({r['class']})" for r in rows if r["class"] != "good"]
        lines.append(f"| {kind} | {len(rows)} | {len(rows) - len(bad)} | {'; '.join(bad)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", help="run the attacks whose name contains this text")
    p.add_argument("--list", action="store_true")
    p.add_argument("--json", type=Path, help="also write every result here")
    args = p.parse_args(argv)
    chosen = [a for a in attacks() if not args.only or args.only in a.name]
    if args.list:
        print("\n".join(f"{a.kind:16} {a.name}" for a in chosen))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="pz-hostile-") as tmp:
        template = Path(tmp) / "template"
        make_world(template)
        for i, attack in enumerate(chosen, 1):
            r = run_attack(attack, template, Path(tmp))
            results.append(r)
            print(f"[{i}/{len(chosen)}] {r['class']:>20}  {attack.name}  ({r['seconds']} s, "
                  f"{r.get('max_rss_mb')} MB) {r['detail']}", file=sys.stderr, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0 if all(r["class"] == "good" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
