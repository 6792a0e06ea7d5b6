"""Hostile-user attacks on firmware.flash, firmware.uf2 and rp2040_sim's input artifacts (issue 10), classified.

    .venv/bin/python benchmarks/hostile_inputs.py [--tree DIR] [--elf-mutations 1000] [--uf2-mutations 300]

Every attack runs the real command line in a subprocess (cwd and PYTHONPATH = --tree, default this checkout, so the
same attacks can be replayed on an older tree) with a wall-clock limit and a 4 GiB address-space limit, then is
classified from the outside:
  data loss    a file the command did not write changed or disappeared (victims are hashed before and after)
  traceback    "Traceback (most recent call last)" on stderr
  hang         still running at the limit (killed)
  crash        killed by a signal
  wrong        rc 0 (or other bytes on the drive) where the input had to be refused, or a wrong explanation
  good         refused with rc != 0 and a message, or the expected success
The mutation classes (truncated/mutated ELFs through `rp2040_sim run`, mutated UF2s through `firmware.uf2 check`)
run in one worker process per class, in-process, one alarm per case. Needs arm-none-eabi-gcc (it builds the xor
firmware and two small programs once). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 30
MEMORY_LIMIT = 4 << 30
INFO_TEXT = "UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\nBoard-ID: RPI-RP2\n"
KINDS = ("good", "data loss", "traceback", "hang", "crash", "wrong")


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(tree: Path, args: list[str], timeout: float = LIMIT_S) -> tuple[int | None, str, str]:
    """(rc or None on timeout, stdout, stderr) of `python ARGS` in `tree`."""
    env = dict(os.environ, PYTHONPATH=str(tree), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen([sys.executable, *args], cwd=tree, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", preexec_fn=limit_memory,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if not path.is_symlink() else "link:" + os.readlink(path)
    except OSError:
        return None


def classify(rc, err: str, *, refuse: bool, victims=(), before=None, wrong: bool = False) -> str:
    if before is not None and [digest(v) for v in victims] != before:
        return "data loss"
    if rc is None:
        return "hang"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if rc < 0:
        return "crash"
    if wrong or (refuse and rc == 0):
        return "wrong"
    return "good" if (rc != 0) == refuse else "wrong"


# -- fixtures ------------------------------------------------------------------------------------------------------
PROGRAM_PAD = 700  # bytes of code space in the alpha/bravo programs (tests/untrusted_files.py)


def build_fixtures(tree: Path, work: Path) -> dict:
    script = f"""
import sys, json
from pathlib import Path
from zoo import train
from zoo.models import get_model
from firmware import build as fw_build
from rp2040_sim import asm
from tests.untrusted_files import program
work = Path({str(work)!r})
train.train_and_evaluate(get_model("xor").with_overrides(epochs=200), work / "xor", progress=False)
assert fw_build.main([str(work / "xor"), "--images", "4", "--out", str(work / "build")]) == 0
for name in ("alpha", "bravo"):
    asm.build_image(program(name, {PROGRAM_PAD}), work / name)
"""
    rc, out, err = run(ROOT, ["-c", script], timeout=600)  # fixtures always come from this checkout
    if rc != 0:
        sys.exit(f"building fixtures failed:\n{err[-3000:]}")
    build = work / "build"
    rc, out, err = run(ROOT, ["-m", "rp2040_sim", "eval", str(build), "--jobs", "1", "--no-progress"], timeout=600)
    if rc != 0:
        sys.exit(f"eval failed:\n{err[-3000:]}")
    return {"build": build, "alpha": work / "alpha", "bravo": work / "bravo"}


def fresh_build(fx, case_dir: Path) -> Path:
    build = case_dir / "build"
    shutil.copytree(fx["build"], build)
    return build


def fresh_drive(case_dir: Path) -> Path:
    drive = case_dir / "media" / "RPI-RP2"
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text(INFO_TEXT)
    (drive / "INDEX.HTM").write_text("<html></html>")
    return drive


def sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        f.truncate(size)
    return path


# -- firmware.flash --------------------------------------------------------------------------------------------------
def flash_cases(tree, fx, work):
    results = []

    def flash(case, argv_of, setup, refuse=True, drive_check=None):
        case_dir = work / f"flash-{len(results)}"
        case_dir.mkdir()
        build, drive = fresh_build(fx, case_dir), fresh_drive(case_dir)
        victims = setup(case_dir, build, drive) or []
        before = [digest(v) for v in victims]
        rc, out, err = run(tree, ["-m", "firmware.flash", *argv_of(build, drive), "--drive", str(drive),
                                  "--timeout", "0.2"])
        wrong = drive_check(build, drive) if drive_check else False
        # a copy that waited for a reboot no fake bootrom does ends with "still there": the copy itself succeeded
        copied = rc == 2 and "still there" in err
        kind = classify(0 if copied else rc, err, refuse=refuse, victims=victims, before=before, wrong=wrong)
        results.append(("firmware.flash", case, kind, (err.strip().splitlines() or [""])[-1][:110]))

    uf2_arg = lambda b, d: [str(b / "firmware.uf2")]  # noqa: E731

    def verified_bytes_only(build, drive):
        wanted = (fx["build"] / "firmware.uf2").read_bytes()
        written = [p for p in drive.glob("*.uf2") if not p.is_symlink() and p.read_bytes() != wanted]
        return bool(written)

    flash("control: valid UF2 + full record", uf2_arg, lambda c, b, d: [], refuse=False,
          drive_check=lambda b, d: (d / "firmware.uf2").read_bytes() != (fx["build"] / "firmware.uf2").read_bytes())

    def planted_symlink(c, b, d):
        victim = c / "thesis.tex"
        victim.write_text("years of work")
        (d / "firmware.uf2").symlink_to(victim)
        return [victim]
    flash("drive/firmware.uf2 -> ~/thesis.tex", uf2_arg, planted_symlink)

    def dangling(c, b, d):
        (d / "firmware.uf2").symlink_to(c / "created-elsewhere")
        return [c / "created-elsewhere"]
    flash("dangling symlink on the drive", uf2_arg, dangling)

    def existing(c, b, d):
        (d / "firmware.uf2").write_text("someone else's file")
        return [d / "firmware.uf2"]
    flash("existing firmware.uf2 on the drive", uf2_arg, existing)

    def on_drive(c, b, d):
        shutil.copy(b / "firmware.uf2", d / "firmware.uf2")
        shutil.copy(b / "emulator.json", d / "emulator.json")
        return [d / "firmware.uf2"]
    flash("source == target (UF2 on the drive)", lambda b, d: [str(d / "firmware.uf2")], on_drive)

    def fifo_feeder(c, b, d):
        """A FIFO that hands out the verified UF2 on the first open and another valid UF2 on the second."""
        good = (b / "firmware.uf2").read_bytes()
        other = (fx["alpha"] / "image.uf2").read_bytes()
        (b / "firmware.uf2").unlink()
        os.mkfifo(b / "firmware.uf2")

        def feed():
            for payload in (good, other, other):
                try:
                    with open(b / "firmware.uf2", "wb") as f:
                        f.write(payload)
                except OSError:
                    pass
                time.sleep(1.0)  # no writer for a while: the reader sees the end of this payload
        threading.Thread(target=feed, daemon=True).start()
        return []
    flash("UF2 is a FIFO (verified bytes, then others)", uf2_arg, fifo_feeder, drive_check=verified_bytes_only)
    flash("UF2 is /dev/zero", lambda b, d: ["/dev/zero"], lambda c, b, d: [])
    flash("UF2 is a 1 GiB sparse file", lambda b, d: [str(sparse(b / "huge.uf2", 1 << 30))], lambda c, b, d: [])

    race = ("import sys; from pathlib import Path; from firmware import flash, uf2\n"
            "p = Path(sys.argv[1]); other = Path(sys.argv[2]).read_bytes(); real = flash.choose_drive\n"
            "def racing(*a, **k):\n    p.write_bytes(other)\n    return real(*a, **k)\n"
            "flash.choose_drive = racing\nsys.exit(flash.main(sys.argv[3:]))\n")

    def raced(case_dir_unused=None):
        case_dir = work / f"flash-{len(results)}"
        case_dir.mkdir()
        build, drive = fresh_build(fx, case_dir), fresh_drive(case_dir)
        rc, out, err = run(tree, ["-c", race, str(build / "firmware.uf2"), str(fx["alpha"] / "image.uf2"),
                                  str(build / "firmware.uf2"), "--drive", str(drive), "--timeout", "0.2"])
        wrong = verified_bytes_only(build, drive)
        copied = rc == 2 and "still there" in err
        results.append(("firmware.flash", "rebuild between check and copy", classify(
            0 if copied else rc, err, refuse=False, wrong=wrong), (err.strip().splitlines() or [""])[-1][:110]))
    raced()

    def record(mutate):
        def setup(c, b, d):
            path = b / "emulator.json"
            rec = json.loads(path.read_text())
            text = mutate(rec)
            if isinstance(text, str):
                path.write_text(text)
            elif text is not None:
                text(path)
            else:
                path.write_text(json.dumps(rec))
            return []
        return setup

    def set_field(key, value):
        def mutate(rec):
            if value is KeyError:
                rec.pop(key, None)
            else:
                rec[key] = value
        return mutate
    for label, mutate in [
        ("record: agreement NaN", lambda r: json.dumps(r).replace('"agreement_with_host": 1.0',
                                                                 '"agreement_with_host": NaN')),
        ("record: agreement '1.0' (string)", set_field("agreement_with_host", "1.0")),
        ("record: agreement missing", set_field("agreement_with_host", KeyError)),
        ("record: images a list", set_field("images", [4])),
        ("record: images 0", set_field("images", 0)),
        ("record: uf2_sha256 a list", lambda r: json.dumps({**r, "uf2_sha256": [r["uf2_sha256"]]})),
        ("record: top level a list", lambda r: json.dumps([r])),
        ("record: 1 of 4 test images", lambda r: json.dumps({**r, "images": 1})),
        ("record: 1 GiB sparse file", lambda r: (lambda p: sparse(p, 1 << 30))),
        ("record: FIFO", lambda r: (lambda p: (p.unlink(), os.mkfifo(p)))),
        ("record: -> /dev/zero", lambda r: (lambda p: (p.unlink(), p.symlink_to("/dev/zero")))),
    ]:
        flash(label, uf2_arg, record(mutate))

    def info_fifo(c, b, d):
        (d / "INFO_UF2.TXT").unlink()
        os.mkfifo(d / "INFO_UF2.TXT")
    flash("drive's INFO_UF2.TXT is a FIFO", uf2_arg, info_fifo)
    return results


# -- firmware.uf2 check and rp2040_sim run/eval with whole files -------------------------------------------------------
def truncated_uf2(src: Path, dst: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from firmware.uf2 import read_uf2, write_uf2
    base, image = read_uf2(src.read_bytes())
    dst.write_bytes(write_uf2(image[:(len(image) - 1) // 256 * 256], base))
    return dst


def even_reset(src_bin: Path, dst: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from firmware.uf2 import write_uf2
    data = bytearray(src_bin.read_bytes())
    struct.pack_into("<I", data, 0x104, struct.unpack_from("<I", data, 0x104)[0] & ~1)
    dst.write_bytes(write_uf2(bytes(data)))
    return dst


def file_cases(tree, fx, work):
    results = []
    d = work / "files"
    d.mkdir()
    os.mkfifo(d / "pipe.uf2")
    os.mkfifo(d / "pipe.elf")
    alpha, bravo = fx["alpha"], fx["bravo"]
    cut_dir = d / "cut"
    cut_dir.mkdir()
    truncated_uf2(alpha / "image.uf2", cut_dir / "image.uf2")
    shutil.copy(alpha / "image.elf", cut_dir / "image.elf")
    stale = d / "stale"
    stale.mkdir()
    shutil.copy(alpha / "image.uf2", stale / "image.uf2")
    shutil.copy(bravo / "image.elf", stale / "image.elf")
    even = even_reset(alpha / "image.bin", d / "even.uf2")

    def case(tool, label, args, refuse=True, expect_in_err=None):
        rc, out, err = run(tree, args)
        wrong = expect_in_err is not None and expect_in_err not in err
        results.append((tool, label, classify(rc, err, refuse=refuse, wrong=wrong),
                        (err.strip().splitlines() or [""])[-1][:110]))

    check = ["-m", "firmware.uf2", "check"]
    simrun = ["-m", "rp2040_sim", "run", "--quiet", "--max-cycles", "10000000"]
    case("firmware.uf2 check", "/dev/zero", check + ["/dev/zero"])
    case("firmware.uf2 check", "FIFO", check + [str(d / "pipe.uf2")])
    case("firmware.uf2 check", "1 GiB sparse .uf2", check + [str(sparse(d / "huge.uf2", 1 << 30))])
    case("firmware.uf2 check", "truncated-but-renumbered UF2, ELF beside it", check + [str(cut_dir / "image.uf2")])
    case("firmware.uf2 check", "even reset vector", check + [str(even)])
    case("rp2040_sim run", "/dev/zero", simrun[:3] + ["/dev/zero", *simrun[3:]])
    case("rp2040_sim run", "FIFO .uf2", simrun[:3] + [str(d / "pipe.uf2"), *simrun[3:]])
    case("rp2040_sim run", "1 GiB sparse .uf2", simrun[:3] + [str(d / "huge.uf2"), *simrun[3:]])
    case("rp2040_sim run", "1 GiB sparse .bin", simrun[:3] + [str(sparse(d / "huge.bin", 1 << 30)), *simrun[3:]])
    case("rp2040_sim run", "1 GiB sparse .elf", simrun[:3] + [str(sparse(d / "huge.elf", 1 << 30)), *simrun[3:]])
    case("rp2040_sim run", "--elf is a FIFO", simrun[:3] + [str(alpha / "image.uf2"), "--elf", str(d / "pipe.elf"),
                                                           *simrun[3:]])
    case("rp2040_sim run", "--elf of another program", simrun[:3] + [str(alpha / "image.uf2"), "--elf",
                                                                    str(bravo / "image.elf"), *simrun[3:]])
    case("rp2040_sim run", "stale ELF beside a rebuilt UF2", simrun[:3] + [str(stale / "image.uf2"), *simrun[3:]])
    case("rp2040_sim run", "truncated UF2 with its ELF beside", simrun[:3] + [str(cut_dir / "image.uf2"),
                                                                             *simrun[3:]])
    case("rp2040_sim run", "even reset vector: names the Thumb state", simrun[:3] + [str(even), *simrun[3:]],
         expect_in_err="INVSTATE")
    for cut in (0, 4, 52, 200, 1000):
        path = d / f"cut{cut}.elf"
        path.write_bytes((alpha / "image.elf").read_bytes()[:cut])
        case("rp2040_sim run", f"ELF truncated to {cut} bytes", simrun[:3] + [str(path), *simrun[3:]])

    def build_json(label, mutate):
        case_dir = work / f"eval-{len(results)}"
        case_dir.mkdir()
        build = fresh_build(fx, case_dir)
        path = build / "build.json"
        info = json.loads(path.read_text())
        text = mutate(info)
        if callable(text):
            text(path)
        else:
            path.write_text(text if isinstance(text, str) else json.dumps(info))
        case("rp2040_sim eval", label, ["-m", "rp2040_sim", "eval", str(build), "--jobs", "1", "--no-progress"])

    def set_field(key, value):
        def mutate(info):
            if value is KeyError:
                info.pop(key, None)
            else:
                info[key] = value
        return mutate
    for label, mutate in [
        ("build.json: input_features '2'", set_field("input_features", "2")),
        ("build.json: input_features 2.5", set_field("input_features", 2.5)),
        ("build.json: output_count [1]", set_field("output_count", [1])),
        ("build.json: output_count true", set_field("output_count", True)),
        ("build.json: dataset 7", set_field("dataset", 7)),
        ("build.json: model_dir null", set_field("model_dir", None)),
        ("build.json: output_ctype {}", set_field("output_ctype", {})),
        ("build.json: uf2_sha256 42", set_field("uf2_sha256", 42)),
        ("build.json: input_features NaN", lambda i: json.dumps(i).replace('"input_features": 2',
                                                                          '"input_features": NaN')),
        ("build.json: top level a list", lambda i: json.dumps([i])),
        ("build.json: FIFO", lambda i: (lambda p: (p.unlink(), os.mkfifo(p)))),
        ("build.json: -> /dev/zero", lambda i: (lambda p: (p.unlink(), p.symlink_to("/dev/zero")))),
        ("firmware.uf2 -> /dev/zero", lambda i: (lambda p: ((p.parent / "firmware.uf2").unlink(),
                                                           (p.parent / "firmware.uf2").symlink_to("/dev/zero")))),
    ]:
        build_json(label, mutate)
    return results


# -- mutation classes, in one worker process each --------------------------------------------------------------------
WORKER = r"""
import contextlib, gc, io, json, random, signal, sys
from pathlib import Path
kind, src, n, start, scratch = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
sys.path.append(sys.argv[6])  # this checkout's tests/: the mutations, whatever tree's tools run
from untrusted_files import mutate
if kind == "elf":
    from rp2040_sim import __main__ as tool
    argv = lambda p: ["run", str(p), "--quiet", "--max-cycles", "1000000"]
else:
    from firmware import uf2 as tool
    argv = lambda p: ["check", str(p)]
def alarm(*_):
    raise TimeoutError("case over its time limit")
signal.signal(signal.SIGALRM, alarm)
original = src.read_bytes()
for i in range(start, n):
    path = scratch / f"m{i}.{kind}"
    path.write_bytes(mutate(original, random.Random(i)))
    signal.alarm(20)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            rc = tool.main(argv(path))
        verdict = "good"
    except TimeoutError:
        verdict = "hang"
    except SystemExit as e:
        verdict = "good" if e.code in (0, 1, 2) else "traceback"
    except BaseException as e:
        verdict = "traceback:" + type(e).__name__
    signal.alarm(0)
    gc.collect()  # free the case's emulator now: each reserves a large translation buffer (RLIMIT_AS applies)
    path.unlink()
    print(json.dumps([i, verdict]), flush=True)
"""


def mutation_class(tree, kind: str, src: Path, n: int, work: Path):
    """Counts per verdict; a worker that dies (a crash) is restarted after the case that killed it."""
    scratch = work / f"mut-{kind}"
    scratch.mkdir()
    counts, done = collections.Counter(), 0
    escapes = collections.Counter()
    while done < n:
        rc, out, err = run(tree, ["-c", WORKER, kind, str(src), str(n), str(done), str(scratch), str(ROOT / "tests")],
                           timeout=max(600, n * 2))
        seen = [json.loads(line) for line in out.splitlines() if line.startswith("[")]
        for i, verdict in seen:
            kind_ = verdict.split(":")[0]
            counts[kind_] += 1
            if ":" in verdict:
                escapes[verdict.split(":")[1]] += 1
        done = (seen[-1][0] + 1) if seen else done
        if done < n:  # the worker died on case `done` or timed out
            counts["crash" if rc is not None else "hang"] += 1
            done += 1
    return counts, escapes


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tree", type=Path, default=ROOT, help="checkout whose commands are attacked")
    p.add_argument("--elf-mutations", type=int, default=1000)
    p.add_argument("--uf2-mutations", type=int, default=300)
    args = p.parse_args(argv)
    tree = args.tree.resolve()
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        work = Path(tmp)
        fx = build_fixtures(tree, work)
        rows = flash_cases(tree, fx, work) + file_cases(tree, fx, work)
        print("| command | attack | result | last line of stderr |")
        print("|---|---|---|---|")
        for tool, label, kind, last in rows:
            print(f"| {tool} | {label} | {kind} | {last.replace('|', '/')} |")
        totals = collections.Counter(kind for _, _, kind, _ in rows)
        mutations = {
            "rp2040_sim run: mutated/truncated firmware ELF": mutation_class(
                tree, "elf", fx["build"] / "firmware.elf", args.elf_mutations, work),
            "firmware.uf2 check: mutated/truncated UF2": mutation_class(
                tree, "uf2", fx["build"] / "firmware.uf2", args.uf2_mutations, work),
        }
        print()
        print("| class | attempts | " + " | ".join(KINDS) + " | escaping exceptions |")
        print("|---|---|" + "---|" * len(KINDS) + "---|")
        print(f"| single attacks above | {len(rows)} | " + " | ".join(str(totals[k]) for k in KINDS) + " | |")
        for label, (counts, escapes) in mutations.items():
            print(f"| {label} | {sum(counts.values())} | " + " | ".join(str(counts[k]) for k in KINDS) +
                  f" | {dict(escapes) or ''} |")
            totals.update(counts)
        print(f"| **all** | {sum(totals.values())} | " + " | ".join(str(totals[k]) for k in KINDS) + " | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
