"""Issue 10, item 1: a command never deletes or overwrites what it did not write (zoo/outputs.py).

Every scenario snapshots the files around the output before and after and requires them unchanged when the command
refuses. Models are tiny (2-4-2 ReLU on XOR, or XOR itself), so each command runs in about a second.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from compress import cli
from firmware import build as fwbuild
from zoo import demo, modeldir, outputs, report, train
from zoo.models import get_model
from zoo.nn import Dense, ReLU, Sequential

INT8 = ["--quantize", "int8", "--calib-images", "4", "--quiet"]


def tiny_model(path, seed=0):
    """A 2-4-2 ReLU classifier on XOR written by modeldir.save alone (no manifest: like a user's or an old one)."""
    spec = Sequential([Dense(2, 4), ReLU(), Dense(4, 2)])
    rng = np.random.default_rng(seed)
    params = [{"w": rng.normal(size=(2, 4)).astype(np.float32), "b": np.zeros(4, np.float32)}, {},
              {"w": rng.normal(size=(4, 2)).astype(np.float32), "b": np.zeros(2, np.float32)}]
    meta = {"model": "tiny", "dataset": "xor", "input": {"scale": 1.0, "features": 2}, "dtype": "float32", "seed": 0}
    modeldir.save(path, spec, params, meta, {"test_accuracy": 0.5})
    return path


def snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def xor_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained") / "xor"
    train.train_and_evaluate(get_model("xor").with_overrides(epochs=2), out, progress=False)
    return out


# -- compress: the findings of the issue -------------------------------------------------------------------------
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_compress_refuses_the_directory_holding_its_input(tmp_path, capsys, force):
    """`compress runs/m/p --out runs/m` deleted the trained model, its variants and the input itself."""
    parent = tiny_model(tmp_path / "runs" / "m")
    (parent / "training.png").write_bytes(b"plot")
    child = tiny_model(parent / "p", seed=1)
    before = snapshot(tmp_path)
    assert cli.main([str(child), *INT8, *force, "--out", str(parent)]) == 2
    assert "contains the input" in capsys.readouterr().err
    assert cli.main([str(child), *INT8, *force, "--out", str(child)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_compress_never_replaces_another_commands_model(tmp_path, xor_run, capsys, force):
    """Another trained model (zoo.train's output) was replaced with rc 0."""
    source = tiny_model(tmp_path / "src")
    before = snapshot(xor_run)
    assert cli.main([str(source), *INT8, *force, "--out", str(xor_run)]) == 2
    err = capsys.readouterr().err
    assert ("--force" in err) if not force else ("holds the outputs of zoo.train" in err)
    assert snapshot(xor_run) == before


def test_compress_leaves_a_users_directory_alone_even_with_force(tmp_path, capsys):
    source = tiny_model(tmp_path / "src")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    (mine / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    before = snapshot(mine)
    assert cli.main([str(source), *INT8, "--out", str(mine)]) == 2
    assert "model.safetensors, notes.txt" in capsys.readouterr().err
    assert cli.main([str(source), *INT8, "--force", "--out", str(mine)]) == 2
    assert "does not write (notes.txt)" in capsys.readouterr().err
    assert snapshot(mine) == before


def test_earlier_output_is_replaced_only_with_force_and_only_its_own_files(tmp_path, capsys):
    source, out = tiny_model(tmp_path / "src"), tmp_path / "out"
    assert cli.main([str(source), *INT8, "--out", str(out)]) == 0
    manifest = json.loads((out / outputs.MANIFEST).read_text())
    assert manifest["tool"] == "compress" and sorted(manifest["files"]) == ["metrics.json", "model.safetensors"]
    (out / "notes.txt").write_text("mine")
    first = (out / "model.safetensors").read_bytes()
    assert cli.main([str(source), *INT8, "--out", str(out)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert cli.main([str(source), "--prune", "0.5", "--epochs", "1", *INT8, "--force", "--out", str(out)]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.safetensors").read_bytes() != first
    assert "sparsity" in modeldir.load(out).meta
    # A file it wrote and someone edited since is not its own any more.
    (out / "metrics.json").write_text("{}")
    before = snapshot(out)
    assert cli.main([str(source), *INT8, "--force", "--out", str(out)]) == 2
    assert "metrics.json changed since compress wrote it" in capsys.readouterr().err
    assert snapshot(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging left behind"


def test_output_of_an_older_picozoo_is_adopted_only_with_force(tmp_path, capsys):
    """Written before manifests: refused naming its files; with --force adopted, as its files are all compress's."""
    source, out = tiny_model(tmp_path / "src"), tmp_path / "old"
    tiny_model(out, seed=3)  # model.safetensors + metrics.json and nothing else, as compress wrote them
    before = snapshot(out)
    assert cli.main([str(source), *INT8, "--out", str(out)]) == 2
    assert "(metrics.json, model.safetensors)" in capsys.readouterr().err
    assert snapshot(out) == before
    assert cli.main([str(source), *INT8, "--force", "--out", str(out)]) == 0
    assert json.loads((out / outputs.MANIFEST).read_text())["tool"] == "compress"


def test_staging_left_by_a_killed_run_is_removed_next_time(tmp_path):
    """Item 11: only this output's staging of a dead process; anything else is left."""
    source, out = tiny_model(tmp_path / "src"), tmp_path / "out"
    pid = dead_pid()
    stale_dir = tmp_path / f".out.tmp-{pid}"
    stale_dir.mkdir()
    (stale_dir / "model.safetensors").write_bytes(b"half")
    other = tmp_path / f".src.tmp-{pid}"  # another output's staging
    other.mkdir()
    live = tmp_path / f".out.tmp-{os.getppid()}"  # a live process's staging
    live.mkdir()
    assert cli.main([str(source), *INT8, "--out", str(out)]) == 0
    stale_file = out / f".model.safetensors.tmp-{pid}"
    stale_file.write_bytes(b"half")
    user_file = out / f".notes.tmp-{pid}"
    user_file.write_bytes(b"not ours")
    assert cli.main([str(source), *INT8, "--force", "--out", str(out)]) == 0
    assert not stale_dir.exists() and not stale_file.exists()
    assert other.exists() and live.exists() and user_file.exists()


# -- the shared rule, for each command ---------------------------------------------------------------------------
def test_train_checks_out_before_training(tmp_path, capsys, monkeypatch):
    """`zoo.train xor --out AFILE` trained fully and then died with a traceback."""
    monkeypatch.setattr(train.data, "load", lambda *a, **k: pytest.fail("trained before checking --out"))
    afile = tmp_path / "afile"
    afile.write_text("keep")
    assert train.main(["xor", "--out", str(afile), "--no-progress"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert train.main(["xor", "--out", str(afile / "sub"), "--no-progress"]) == 2
    assert "so no directory can be made below it" in capsys.readouterr().err
    assert afile.read_text() == "keep"


def test_train_replaces_its_earlier_output_only_with_force(xor_run, tmp_path, capsys):
    out = tmp_path / "xor"
    assert train.main(["xor", "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    assert train.main(["xor", "--epochs", "1", "--out", str(out), "--no-progress"]) == 2
    assert "already holds a zoo.train output" in capsys.readouterr().err
    assert snapshot(out) == before
    assert train.main(["xor", "--epochs", "2", "--seed", "5", "--force", "--out", str(out), "--no-progress"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and modeldir.load(out).meta["seed"] == 5


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_train_rejects_a_seed_out_of_range(seed, capsys, tmp_path):
    with pytest.raises(SystemExit) as e:
        train.main(["xor", "--seed", seed, "--out", str(tmp_path / "o")])
    assert e.value.code == 2 and "--seed must be 0 to 4294967295" in capsys.readouterr().err


def test_build_refuses_its_input_and_another_builds_files_before_compiling(tmp_path, monkeypatch):
    monkeypatch.setattr(fwbuild, "find_toolchain", lambda: pytest.fail("started building"))
    model = tiny_model(tmp_path / "runs" / "m")
    before = snapshot(tmp_path)
    for out, what in ((model, "is the input"), (model / "fw", "is inside the input"),
                      (tmp_path / "runs", "contains the input")):
        with pytest.raises(fwbuild.BuildError, match=what):
            fwbuild.build(model, out, quiet=True)
    assert snapshot(tmp_path) == before
    # an earlier build output (as firmware.build records it) is replaced only with force=True
    earlier = outputs.OutputDir(tmp_path / "b", "firmware.build", fwbuild.OUTPUTS)
    with earlier.staging() as stage:
        (stage / "firmware.uf2").write_bytes(b"earlier")
        earlier.commit(stage)
    with pytest.raises(fwbuild.BuildError, match="already holds a firmware.build output"):
        fwbuild.build(model, tmp_path / "b", quiet=True)
    assert cli.main([str(model), *INT8, "--out", str(tmp_path / "c")]) == 0
    with pytest.raises(fwbuild.BuildError, match="holds the outputs of compress"):
        fwbuild.build(model, tmp_path / "c", quiet=True, force=True)


def test_demo_validates_epochs_and_never_overwrites_a_users_model(tmp_path, monkeypatch, capsys):
    """`zoo.demo --epochs 0` silently ran 30 epochs and overwrote runs/mnist_300."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        demo.main(["--epochs", "0"])
    assert e.value.code == 2 and "--epochs must be at least 1" in capsys.readouterr().err
    mine = tmp_path / "runs" / "mnist_300"
    tiny_model(mine)
    before = snapshot(tmp_path)
    assert demo.main(["--epochs", "1", "--images", "1"]) == 2
    assert "runs/mnist_300, which exists and was not made by this report" in capsys.readouterr().err
    assert snapshot(tmp_path / "runs") == {k.removeprefix("runs/"): v for k, v in before.items()
                                           if k.startswith("runs/")}


def test_report_refuses_an_output_that_holds_its_inputs(tmp_path):
    with pytest.raises(report.ReportError, match="contains the input"):
        report.make_report(["xor"], tmp_path, tmp_path / "runs", tmp_path / "build", images=1)
    with pytest.raises(report.ReportError, match="--epochs 0: must be at least 1"):
        report.make_report(["xor"], tmp_path / "r", tmp_path / "runs", tmp_path / "build", images=1, epochs=0)


def test_output_dir_rules_directly(tmp_path):
    with pytest.raises(outputs.OutputError, match="cannot create anything in /proc"):
        outputs.OutputDir("/proc/picozoo-out", "compress", ["a"]).check()  # not writable, even for root
    (tmp_path / "manifest").mkdir()
    (tmp_path / "manifest" / outputs.MANIFEST).write_text("not json")
    with pytest.raises(outputs.OutputError, match="not a readable picozoo manifest"):
        outputs.OutputDir(tmp_path / "manifest", "compress", ["a"], force=True).check()
    od = outputs.OutputDir(tmp_path / "new", "compress", ["a"])
    with od.staging() as stage:
        (stage / "b").write_bytes(b"undeclared")
        with pytest.raises(ValueError, match="does not declare"):
            od.commit(stage)
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_build_adopts_an_old_build_dir_with_the_emulators_files_beside_it(tmp_path, monkeypatch):
    """A build directory from before manifests also holds rp2040_sim's run.json/emulator.json: --force adopts it
    (those two are left alone); without --force it is refused, naming the files."""
    def reached():
        raise fwbuild.BuildError("output check passed")

    monkeypatch.setattr(fwbuild, "find_toolchain", reached)
    model, old = tiny_model(tmp_path / "m"), tmp_path / "build"
    old.mkdir()
    for name in (*fwbuild.OUTPUTS, *fwbuild.RUN_OUTPUTS):
        (old / name).write_bytes(b"old " + name.encode())
    with pytest.raises(fwbuild.BuildError, match="no record of writing .*build.json, emulator.json"):
        fwbuild.build(model, old, quiet=True)
    with pytest.raises(fwbuild.BuildError, match="output check passed"):
        fwbuild.build(model, old, quiet=True, force=True)
    (old / "notes.txt").write_text("mine")
    with pytest.raises(fwbuild.BuildError, match=r"firmware.build does not write \(notes.txt\)"):
        fwbuild.build(model, old, quiet=True, force=True)


def test_a_forged_manifest_claims_nothing_outside_the_commands_own_names(tmp_path):
    """A manifest listing "../victim" or a user's file does not make them the command's: they stay."""
    (tmp_path / "victim").write_text("keep")
    out = tmp_path / "out"
    od = outputs.OutputDir(out, "compress", ["model.safetensors"])
    with od.staging() as stage:
        (stage / "model.safetensors").write_bytes(b"v1")
        od.commit(stage)
    manifest = json.loads((out / outputs.MANIFEST).read_text())
    digest = outputs.sha256_file(tmp_path / "victim")
    (out / "notes.txt").write_text("mine")
    manifest["files"].update({"../victim": [digest], "notes.txt": [outputs.sha256_file(out / "notes.txt")]})
    (out / outputs.MANIFEST).write_text(json.dumps(manifest))
    again = outputs.OutputDir(out, "compress", ["model.safetensors"], force=True)
    with again.staging() as stage:
        (stage / "model.safetensors").write_bytes(b"v2")
        again.commit(stage)
    assert (tmp_path / "victim").read_text() == "keep" and (out / "notes.txt").read_text() == "mine"
    assert (out / "model.safetensors").read_bytes() == b"v2"
    os.mkfifo(out / "fifo")
    (out / outputs.MANIFEST).unlink()
    os.symlink(out / "fifo", out / outputs.MANIFEST)  # reading it would block
    with pytest.raises(outputs.OutputError, match="not a readable picozoo manifest"):
        again.check()


def test_a_killed_runs_temp_work_dir_is_removed_by_the_next_run(tmp_path, monkeypatch):
    """firmware.build works in `pz-build-PID-*` in the temp dir; a killed build's leftover (dead PID) goes, a live
    one's and other files stay."""
    import subprocess
    import sys
    import tempfile

    from zoo import outputs
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"pz-build-{dead.pid}-abc"
    (stale / "src").mkdir(parents=True)
    live = tmp_path / f"{outputs.work_dir_prefix('build')}xyz"
    live.mkdir()
    other = tmp_path / f"pz-export-{dead.pid}-abc"
    other.mkdir()
    assert outputs.remove_stale_work_dirs("build") == [stale.name]
    assert not stale.exists() and live.is_dir() and other.is_dir()
