"""firmware.export: the C library compiles with -Wall -Werror, links into a firmware with the test's own main, boots
in rp2040_sim and matches the host model (float) or the integer golden model (int8, bit for bit)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from compress import cli as compress_cli
from compress import reference
from conftest import require_tool
from firmware import export as fwexport
from firmware_support import elf_symbols, make_model
from rp2040_sim.runner import run_image
from zoo import host, modeldir
from zoo.models import get_model
from zoo.train import train_and_evaluate

IMAGES = 6

TEST_MAIN = """/* the test's own firmware: classify IMAGES images through the exported API, keep the results, halt */
#include "picozoo_model.h"
#include "runtime.h"

extern const float test_images[{n}][PZ_MODEL_INPUTS];
int test_classes[{n}];
float test_scores[{n}][PZ_MODEL_OUTPUTS];
{q8_globals}
int main(void) {{
    for (int i = 0; i < {n}; i++) test_classes[i] = pz_model_infer_f32(test_images[i], test_scores[i]);
{q8_calls}    pz_halt();
}}
"""
Q8_GLOBALS = """extern const int8_t test_q8[{n}][PZ_MODEL_INPUTS];
int test_q8_classes[{n}];
int8_t test_q8_out[{n}][PZ_MODEL_OUTPUTS];
"""
Q8_CALLS = "    for (int i = 0; i < {n}; i++) test_q8_classes[i] = pz_model_infer_q8(test_q8[i], test_q8_out[i]);\n"


@pytest.fixture(scope="module")
def toolchain():
    require_tool("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-readelf", "arm-none-eabi-nm")
    from firmware import build
    return build.find_toolchain()


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory, mnist):
    out = tmp_path_factory.mktemp("export") / "mnist_50"
    train_and_evaluate(get_model("mnist_50").with_overrides(epochs=1), out, dataset=mnist, train_limit=3000,
                       progress=False)
    assert compress_cli.main([str(out), "--quantize", "int8", "--calib-images", "500", "--quiet",
                              "--out", str(out / "int8")]) == 0
    return out / "int8"


def run_exported(tools, export_dir, tmp_path, raw, int8: bool):
    """Build a firmware from the export's files on disk plus the test's main; return its results."""
    files = {p.name: p.read_text() for sub in ("src", "include") for p in (export_dir / sub).iterdir()}
    rows = ",\n".join("{" + ", ".join(f"{v:.1f}f" for v in r) + "}" for r in raw)
    files["test_images.c"] = f'#include "picozoo_model.h"\nconst float test_images[{len(raw)}][PZ_MODEL_INPUTS] = ' \
                             f"{{\n{rows}\n}};\n"
    if int8:
        q = raw.astype(np.int64) - 128
        qrows = ",\n".join("{" + ", ".join(str(v) for v in r) + "}" for r in q)
        files["test_q8.c"] = f'#include "picozoo_model.h"\nconst int8_t test_q8[{len(raw)}][PZ_MODEL_INPUTS] = ' \
                             f"{{\n{qrows}\n}};\n"
    files["main.c"] = TEST_MAIN.format(n=len(raw), q8_globals=Q8_GLOBALS.format(n=len(raw)) if int8 else "",
                                       q8_calls=Q8_CALLS.format(n=len(raw)) if int8 else "")
    work = tmp_path / "fw"
    work.mkdir()
    elf = fwexport.link_firmware(tools, work, files)  # compiles every file with -Wall -Wextra -Werror
    result, sim = run_image(work / "firmware.uf2", elf_path=elf)
    assert result.stop.ok, result.fault_report
    syms = elf_symbols(elf)

    def read(name, dtype, shape):
        addr, size = syms[name]
        return np.frombuffer(sim.read(addr, size), dtype).reshape(shape)

    out = {"classes": read("test_classes", "<i4", (len(raw),)),
           "scores": read("test_scores", "<f4", (len(raw), -1))}
    if int8:
        out["q8_classes"] = read("test_q8_classes", "<i4", (len(raw),))
        out["q8_out"] = read("test_q8_out", "i1", (len(raw), -1))
    return out


def test_float_export_runs_in_own_firmware_and_matches_host(toolchain, tmp_path, mnist):
    model_dir = make_model(tmp_path / "m", sizes=(784, 24, 10))
    out = tmp_path / "lib"
    result = fwexport.export(model_dir, out)
    names = {p.name for p in (out / "src").iterdir()}
    assert {"model.c", "model.h", "network.c", "dense_f32.c", "picozoo_model.c"} <= names
    assert not any(n.startswith("int8") or n.endswith("f64.c") for n in names), names  # only what it uses
    cmake = (out / "CMakeLists.txt").read_text()
    assert sorted(re.findall(r"src/(\S+\.c)", cmake)) == sorted(n for n in names if n.endswith(".c"))
    header = (out / "include" / "picozoo_model.h").read_text()
    assert f"#define PZ_MODEL_STACK_BYTES {result.figures['stack_bytes']}" in header
    assert 0 < result.figures["stack_bytes"] < 1024 and result.figures["arena_bytes"] >= 784 + 4 * 10

    raw = mnist.x_test[:IMAGES]
    got = run_exported(toolchain, out, tmp_path, raw, int8=False)
    model = modeldir.load(model_dir)
    ref = host.forward(model, raw)
    assert np.array_equal(got["classes"], host.predict(model, ref))
    assert np.allclose(got["scores"], ref, rtol=1e-5, atol=1e-5)


def test_int8_export_is_bit_exact_with_the_golden_model(toolchain, tmp_path, mnist, int8_model):
    out = tmp_path / "lib"
    fwexport.export(int8_model, out)
    raw = mnist.x_test[:IMAGES]
    got = run_exported(toolchain, out, tmp_path, raw, int8=True)
    model = modeldir.load(int8_model)
    q = reference.forward(model, raw)
    assert np.array_equal(got["q8_out"], q)
    assert np.array_equal(got["q8_classes"], reference.predict(model, q))
    assert np.array_equal(got["classes"], reference.predict(model, q))
    o = model.meta["quantization"]["output"]
    assert np.allclose(got["scores"], o["scale"] * (q.astype(np.float64) - o["zero_point"]), rtol=1e-6)


def test_export_never_touches_what_it_did_not_write(toolchain, tmp_path):
    model_dir = make_model(tmp_path / "m", sizes=(784, 8, 10))
    user = tmp_path / "user"
    user.mkdir()
    (user / "main.c").write_text("my code")
    with pytest.raises(fwexport.ExportError, match="not written by firmware.export"):
        fwexport.export(model_dir, user)
    assert [p.name for p in user.iterdir()] == ["main.c"] and (user / "main.c").read_text() == "my code"
    with pytest.raises(fwexport.ExportError, match="sits inside the model directory"):
        fwexport.export(model_dir, model_dir / "lib")
    assert not (model_dir / "lib").exists()

    out = tmp_path / "lib"
    first = fwexport.export(model_dir, out)
    (out / "notes.txt").write_text("mine")
    with pytest.raises(fwexport.ExportError, match="--force"):
        fwexport.export(model_dir, out)
    second = fwexport.export(model_dir, out, force=True)
    assert second.files == first.files and (out / "notes.txt").read_text() == "mine"
    assert not list(out.rglob("*.tmp-*"))


def test_cli_errors(tmp_path, capsys):
    assert fwexport.main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_cmake_and_makefile_fragments_build_the_library(toolchain, tmp_path):
    """The export's CMakeLists.txt, added with add_subdirectory as a pico-sdk project does, and its Makefile
    fragment each build the library with the cross compiler (no pico-sdk here: a bare Generic-system project)."""
    require_tool("cmake")
    require_tool("make")
    import subprocess
    model_dir = make_model(tmp_path / "m", sizes=(784, 8, 10))
    lib = tmp_path / "app" / "picozoo_model"
    fwexport.export(model_dir, lib)
    app = lib.parent
    (app / "app.c").write_text('#include "picozoo_model.h"\nint app_classify(const float *x) '
                               '{ return pz_model_infer_f32(x, 0); }\n')
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.13)\nset(CMAKE_SYSTEM_NAME Generic)\n"
        "set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\nset(CMAKE_C_COMPILER arm-none-eabi-gcc)\n"
        'set(CMAKE_C_FLAGS "-mcpu=cortex-m0plus -mthumb -Wall -Werror")\nproject(app C)\n'
        "add_subdirectory(picozoo_model)\nadd_library(app STATIC app.c)\ntarget_link_libraries(app picozoo_model)\n")
    run = lambda *cmd, cwd=app: subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)  # noqa: E731
    r = run("cmake", "-S", ".", "-B", "b")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run("cmake", "--build", "b")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (app / "b" / "picozoo_model" / "libpicozoo_model.a").is_file() and (app / "b" / "libapp.a").is_file()

    (app / "Makefile").write_text(
        "PICOZOO_MODEL_DIR := picozoo_model\ninclude $(PICOZOO_MODEL_DIR)/picozoo_model.mk\n"
        "CFLAGS := -mcpu=cortex-m0plus -mthumb -Wall -Werror $(PICOZOO_MODEL_CFLAGS)\n"
        "OBJS := $(patsubst %.c,mk/%.o,$(notdir $(PICOZOO_MODEL_SRCS) app.c))\nvpath %.c $(PICOZOO_MODEL_DIR)/src .\n"
        "all: $(OBJS)\nmk/%.o: %.c\n\t@mkdir -p mk\n\tarm-none-eabi-gcc $(CFLAGS) -c $< -o $@\n")
    r = run("make", "-s")
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(list((app / "mk").glob("*.o"))) == len(re.findall(r"src/\S+\.c", (lib / "picozoo_model.mk").read_text())) + 1
