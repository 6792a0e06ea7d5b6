"""The user's own data: `.npz`, `.csv` or an IDX directory -> a validated `zoo.data.Dataset` (docs/DATA.md).

Library calls (the CLIs `python -m zoo.train --data FILE` and `python -m zoo.import --data FILE` wrap them):

- `from_arrays(x_train, y_train, x_test, y_test, class_names=None, *, input_shape=None, n_classes=None,
  normalize=None, where="arrays") -> Dataset`: NumPy arrays; x of shape (n, *sample_shape), integer labels.
- `load_file(path, *, input_shape=None, n_classes=None, normalize=None, label_column=None, test_file=None,
  test_fraction=None, seed=0) -> Dataset`: a file; its path and sha256 go into `Dataset.source`, which zoo.train
  writes into the model directory so compress, firmware.build and rp2040_sim eval reload the same data
  (`load_for_model`).

Every problem raises `zoo.data.DataError` naming the file, the array (or CSV line and column) and the value. Nothing
bigger than the limits below is read: a file's size is checked before it is opened, an npz's members' declared
sizes before any is decompressed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import zipfile
from pathlib import Path

import numpy as np

from zoo import classnames, data
from zoo.data import DataError, Dataset
from zoo.normalize import Normalization, NormalizeError, fit

FORMATS = ("npz", "csv", "idx")
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_OPTIONAL = ("class_names",)
# Limits: far above anything that fits the Pico's 264 kB SRAM / 2 MB flash model, far below what would exhaust a
# workstation (Fashion-MNIST as float32 is 220 MB).
MAX_FILE_BYTES = 1 << 30          # an .npz or .csv file
MAX_ARRAY_BYTES = 1 << 30         # all arrays of an .npz, decompressed
MAX_SAMPLES = 10_000_000
MAX_FEATURES = 1 << 17            # zoo.modeldir.MAX_WIDTH: a layer's width
MAX_CLASSES = 65_536
FLOAT32_MAX = float(np.finfo(np.float32).max)
USER_DATASET = "user"             # the model directory's `dataset` for data from a file


# -- files -----------------------------------------------------------------------------------------------------------
def _regular(path: Path, what: str) -> int:
    st = data.regular_file(path, what)
    if st.st_size > MAX_FILE_BYTES:
        raise DataError(f"{path}: {st.st_size:,} bytes is over picozoo's limit of {MAX_FILE_BYTES:,} bytes for a "
                        f"data file; use fewer samples")
    return st.st_size


def _read(path: Path, what: str) -> bytes:
    _regular(path, what)
    return Path(path).read_bytes()


def _idx_path(directory: Path, stem: str) -> Path:
    found = data._find(directory, stem)
    if found is None:
        raise DataError(f"{directory}: missing {stem} (plain or .gz); an IDX data directory holds all of "
                        f"{', '.join(data.IDX_FILES)}")
    return found


def _npz(path: Path, raw: bytes) -> dict:
    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable .npz file ({e}); write it with numpy.savez") from None
    names = {info.filename[:-4] if info.filename.endswith(".npy") else info.filename: info for info in infos}
    unknown = sorted(set(names) - set(NPZ_ARRAYS) - set(NPZ_OPTIONAL))
    if unknown:
        raise DataError(f"{path}: unexpected array(s) {', '.join(unknown)}; an .npz holds {', '.join(NPZ_ARRAYS)} "
                        f"and optionally class_names (array names are case-sensitive)")
    missing = [name for name in NPZ_ARRAYS if name not in names]
    if missing:
        raise DataError(f"{path}: missing array(s) {', '.join(missing)}; an .npz holds {', '.join(NPZ_ARRAYS)} "
                        f"(numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...))")
    total = sum(info.file_size for info in infos)
    if total > MAX_ARRAY_BYTES:
        raise DataError(f"{path}: its arrays declare {total:,} bytes decompressed, over picozoo's limit of "
                        f"{MAX_ARRAY_BYTES:,}; not read")
    arrays = {}
    for name, info in names.items():
        try:
            with zf.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
        except ValueError as e:
            raise DataError(f"{path}: array {name}: cannot be read without pickle ({e}); store plain numeric "
                            f"arrays (class_names as a string array)") from None
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"{path}: array {name} is corrupt ({e})") from None
    return arrays


def _csv_rows(path: Path, raw: bytes, label_column: str | None):
    """(features (n, f) float32, labels as strings) of a CSV with a header row."""
    if not label_column:
        raise DataError(f"{path}: a CSV file needs --label-column NAME (the header's name of the label column)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()
    if not rows:
        raise DataError(f"{path}: empty; a CSV needs a header row naming the columns, then one row per sample")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise DataError(f"{path}: no column {label_column!r} in the header ({', '.join(header[:12])}"
                        f"{', ...' if len(header) > 12 else ''}); give --label-column one of them")
    li = header.index(label_column)
    if len(rows) - 1 > MAX_SAMPLES:
        raise DataError(f"{path}: {len(rows) - 1:,} rows, over picozoo's limit of {MAX_SAMPLES:,}")
    feats, labels = [], []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {n} has {len(row)} columns, the header has {len(header)}")
        values = []
        for j, cell in enumerate(row):
            if j == li:
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise DataError(f"{path}: line {n} column {header[j]!r}: {cell!r} is not a number") from None
        feats.append(values)
        labels.append(row[li].strip())
    x = np.asarray(feats, np.float64).reshape(len(feats), len(header) - 1)
    return x, labels


def _csv_labels(path: Path, labels: list, known: list | None) -> tuple[np.ndarray, list | None]:
    """Integer labels as they are; otherwise (any non-integer label) class names, sorted, indexed."""
    try:
        return np.asarray([int(v) for v in labels], np.int64), known
    except ValueError:
        pass
    names = known if known is not None else sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    bad = [v for v in labels if v not in index]
    if bad:
        raise DataError(f"{path}: label {bad[0]!r} does not occur in the training file's labels "
                        f"({', '.join(names[:12])})")
    return np.asarray([index[v] for v in labels], np.int64), names


# -- validation ------------------------------------------------------------------------------------------------------
def _check_x(where: str, name: str, x) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "uif" or x.dtype == np.bool_:
        raise DataError(f"{where}: array {name} has dtype {x.dtype}; give numbers (uint8 for 0..255 pixels, or "
                        f"any integer or float type, read as float32)")
    if x.ndim < 2:
        raise DataError(f"{where}: array {name} has shape {x.shape}; it needs one sample per row: (n, features), "
                        f"(n, t, c) windows or (n, h, w, c) images")
    if len(x) == 0:
        raise DataError(f"{where}: array {name} is empty (0 samples); every split needs at least one")
    if len(x) > MAX_SAMPLES:
        raise DataError(f"{where}: array {name} has {len(x):,} samples, over picozoo's limit of {MAX_SAMPLES:,}")
    features = math.prod(x.shape[1:])
    if not 1 <= features <= MAX_FEATURES:
        raise DataError(f"{where}: array {name}: {features:,} values per sample; picozoo takes 1 to "
                        f"{MAX_FEATURES:,}")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DataError(f"{where}: array {name} holds NaN or infinite values (first in sample {row}); clean "
                            f"or drop those samples")
    if x.dtype != np.uint8:
        big = np.abs(x.astype(np.float64)) > FLOAT32_MAX
        if big.any():
            raise DataError(f"{where}: array {name} has values beyond float32's range (first in sample "
                            f"{int(np.argwhere(big)[0][0])}); the firmware reads float32")
    return x


def _check_y(where: str, name: str, y, n: int) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{where}: array {name} has shape {y.shape}; labels are one integer class per sample, "
                        f"shape (n,) (not one-hot)")
    if len(y) != n:
        raise DataError(f"{where}: array {name} has {len(y)} labels for {n} samples")
    if y.dtype.kind == "f":
        whole = np.isfinite(y) & (y == np.round(y))
        if not whole.all():
            i = int(np.argmin(whole))
            raise DataError(f"{where}: array {name}: label {float(y[i])!r} (sample {i}) is not an integer; labels are "
                            f"class indices 0, 1, 2, ...")
    elif y.dtype.kind not in "ui" or y.dtype == np.bool_:
        raise DataError(f"{where}: array {name} has dtype {y.dtype}; labels are integer class indices")
    if y.min() < 0 or y.max() >= MAX_CLASSES:
        i = int(np.argmin(y) if y.min() < 0 else np.argmax(y))
        raise DataError(f"{where}: array {name}: label {int(y[i])} (sample {i}) is out of range; labels are class "
                        f"indices from 0 to {MAX_CLASSES - 1}")
    return y.astype(np.int32)


def _sample_shape(where: str, shape: tuple, input_shape: tuple | None) -> None:
    if input_shape is None:
        return
    input_shape = tuple(input_shape)
    if shape == input_shape or (1,) + shape == input_shape or shape + (1,) == input_shape:
        return  # the same, (t, c) windows of a (1, t, c) input, or (h, w) images of a one-channel input
    if len(input_shape) == 1 and math.prod(shape) == input_shape[0]:
        return
    raise DataError(f"{where}: array x_train holds samples of shape {shape}; the model's input is {input_shape} "
                    f"({math.prod(input_shape)} values): give samples of that shape, (t, c) windows for a (1, t, c) "
                    f"input, (h, w) images for an (h, w, 1) input, or any shape of {math.prod(input_shape)} values "
                    f"for a flat input")


def from_arrays(x_train, y_train, x_test, y_test, class_names=None, *, input_shape=None, n_classes=None,
                normalize: str | None = None, normalization: Normalization | None = None, where: str = "arrays",
                source: dict | None = None, float_default: str = "standard") -> Dataset:
    """A validated Dataset from NumPy arrays.

    x_*: (n, *sample_shape), any integer or float dtype (uint8 stays bytes for `normalize="scale"`, everything else
    is read as float32); y_*: (n,) integer class indices. `input_shape` (the spec's, e.g. `spec.input_shape`) and
    `n_classes` (the model's outputs; 2 for a binary output) are checked when given. `normalize` (none, scale,
    standard; default scale for uint8, `float_default` otherwise) is fitted on x_train only, unless `normalization` (an
    already fitted one, e.g. from a model directory) is given. Rows come back flat, (n, features)."""
    x_train, x_test = _check_x(where, "x_train", x_train), _check_x(where, "x_test", x_test)
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{where}: x_train samples have shape {x_train.shape[1:]}, x_test samples "
                        f"{x_test.shape[1:]}; both splits need the same sample shape")
    _sample_shape(where, x_train.shape[1:], input_shape)
    y_train, y_test = _check_y(where, "y_train", y_train, len(x_train)), _check_y(where, "y_test", y_test,
                                                                                   len(x_test))
    present = np.unique(y_train)
    if len(present) < 2:
        raise DataError(f"{where}: array y_train has only {len(present)} class ({present.tolist()}); a classifier "
                        f"needs at least 2")
    classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes is not None and classes > n_classes:
        split = "y_train" if y_train.max() >= n_classes else "y_test"
        bad = int(max(y_train.max(), y_test.max()))
        raise DataError(f"{where}: array {split}: label {bad} is out of range for the model's {n_classes} "
                        f"outputs (labels 0..{n_classes - 1})")
    if class_names is not None:
        names = np.asarray(class_names)
        if names.ndim != 1 or names.dtype.kind not in "US":
            raise DataError(f"{where}: array class_names must be a 1-D array of strings, got {names.dtype} "
                            f"{names.shape}")
        names = [str(v) for v in names.tolist()]
        if len(names) < classes or len(names) > MAX_CLASSES:
            raise DataError(f"{where}: array class_names has {len(names)} names for labels 0..{classes - 1}; give "
                            f"one name per class")
        try:  # one rule for class names everywhere: they become C strings on the UART (zoo/classnames.py)
            names = classnames.check(names, n_classes if n_classes is not None else len(names),
                                     f"{where}: array class_names")
        except classnames.ClassNamesError as e:
            raise DataError(str(e)) from None
        class_names = names
    if normalization is None:
        try:
            normalization = fit(x_train.reshape(len(x_train), -1),
                                normalize or ("scale" if x_train.dtype == np.uint8 else float_default))
        except NormalizeError as e:
            raise DataError(str(e)) from None
    dtype = np.uint8 if normalization.raw == "uint8" else np.float32
    if dtype == np.uint8 and x_train.dtype != np.uint8:
        raise DataError(f"{where}: the model takes uint8 input (0..255 bytes) but array x_train has dtype "
                        f"{x_train.dtype}")
    x_train, x_test = (x.reshape(len(x), -1).astype(dtype) for x in (x_train, x_test))
    scale = normalization.scale if normalization.legacy else normalization
    return Dataset(USER_DATASET, x_train, y_train, x_test, y_test, input_scale=scale, class_names=class_names,
                   source=source)


def load_file(path, *, input_shape=None, n_classes=None, normalize: str | None = None,
              normalization: Normalization | None = None, label_column: str | None = None, test_file=None,
              test_fraction: float | None = None, seed: int = 0, expect_sha256: str | None = None,
              float_default: str = "standard") -> Dataset:
    """A Dataset from the user's file: `.npz` (x_train, y_train, x_test, y_test, optional class_names), `.csv`
    (a header row; `label_column` names the label column, every other column is a feature; the test split from
    `test_file` (same columns) or a seeded `test_fraction` of the rows), or a directory of the four IDX files.
    The other arguments are from_arrays'. `Dataset.source` records the file's path, format, sha256 and options;
    `expect_sha256` (what a model directory recorded) refuses a file that changed since."""
    path = Path(path)
    if path.is_dir():
        fmt = "idx"
    elif path.suffix.lower() in (".npz", ".csv"):
        fmt = path.suffix.lower()[1:]
    else:
        if not path.exists():
            raise DataError(f"{path}: no such file; give an .npz, .csv or IDX directory")
        raise DataError(f"{path}: unknown data format {path.suffix!r}; give an .npz (x_train, y_train, x_test, "
                        f"y_test), a .csv with a header row, or a directory of IDX files")
    if (test_file is not None or test_fraction is not None) and fmt != "csv":
        raise DataError(f"{path}: --test-file and --test-fraction are for .csv data; an .npz or IDX directory "
                        f"holds its own test split")
    source = {"path": str(path.resolve()), "format": fmt}
    where = str(path)
    if fmt == "idx":
        raws = [data.read_idx_bytes(_idx_path(path, stem)) for stem in data.IDX_FILES]
        sha = hashlib.sha256(b"".join(raws)).hexdigest()
        _same(path, sha, expect_sha256)
        arrays = [data.parse_idx(b, str(_idx_path(path, s))) for b, s in zip(raws, data.IDX_FILES)]
        x_train, y_train, x_test, y_test = arrays
        names = None
    elif fmt == "npz":
        raw = _read(path, "the .npz file")
        sha = hashlib.sha256(raw).hexdigest()
        _same(path, sha, expect_sha256)
        arrays = _npz(path, raw)
        x_train, y_train, x_test, y_test = (arrays[n] for n in NPZ_ARRAYS)
        names = arrays.get("class_names")
    else:
        raw = _read(path, "the .csv file")
        sha = hashlib.sha256(raw).hexdigest()
        _same(path, sha, expect_sha256)
        x, labels = _csv_rows(path, raw, label_column)
        y, names = _csv_labels(path, labels, None)
        source["label_column"] = label_column
        if test_file is not None:
            if test_fraction is not None:
                raise DataError(f"{path}: give --test-file or --test-fraction, not both")
            test_path = Path(test_file)
            test_raw = _read(test_path, "--test-file CSV")
            x_test, test_labels = _csv_rows(test_path, test_raw, label_column)
            if x_test.shape[1] != x.shape[1]:
                raise DataError(f"{test_path}: {x_test.shape[1]} feature columns, {path} has {x.shape[1]}")
            y_test, _ = _csv_labels(test_path, test_labels, names)
            x_train, y_train = x, y
            source.update(test_file=str(test_path.resolve()), test_sha256=hashlib.sha256(test_raw).hexdigest())
        elif test_fraction is not None:
            if not (isinstance(test_fraction, (int, float)) and 0 < test_fraction < 1):
                raise DataError(f"--test-fraction {test_fraction}: must be between 0 and 1 (e.g. 0.2)")
            n_test = int(round(len(x) * test_fraction))
            if not 1 <= n_test < len(x):
                raise DataError(f"{path}: --test-fraction {test_fraction} of {len(x)} rows leaves an empty split; "
                                f"give more rows or another fraction")
            order = np.random.default_rng(seed).permutation(len(x))
            x_test, y_test = x[order[:n_test]], y[order[:n_test]]
            x_train, y_train = x[order[n_test:]], y[order[n_test:]]
            source.update(test_fraction=float(test_fraction), seed=int(seed))
        else:
            raise DataError(f"{path}: a CSV file needs its test split: --test-file TEST.csv or --test-fraction F "
                            f"(a seeded random fraction of the rows)")
        if names is not None:
            names = np.asarray(names)
    source["sha256"] = sha
    return from_arrays(x_train, y_train, x_test, y_test, names, input_shape=input_shape, n_classes=n_classes,
                       normalize=normalize, normalization=normalization, where=where, source=source,
                       float_default=float_default)


def _same(path: Path, sha: str, expect: str | None):
    if expect is not None and sha != expect:
        raise DataError(f"{path}: sha256 {sha} differs from {expect}, recorded when the model was trained on it: "
                        f"the data changed since; restore the original file or retrain the model")


ARRAYS_FILE = "data.npz"  # zoo.train's copy of a from_arrays dataset in its model directory


def save_npz(path: Path, ds: Dataset) -> dict:
    """Write a dataset's raw arrays as an .npz that load_file reads back identically (deterministic bytes: fixed
    zip timestamps, no compression); returns its `source` record. zoo.train does this for from_arrays data, so the
    model directory names a file that compress, firmware.build and rp2040_sim eval can reload."""
    arrays = {"x_train": ds.x_train, "y_train": ds.y_train, "x_test": ds.x_test, "y_test": ds.y_test}
    if ds.class_names is not None:
        arrays["class_names"] = np.asarray(ds.class_names)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue())
    raw = buffer.getvalue()
    Path(path).write_bytes(raw)
    return {"format": "npz", "sha256": hashlib.sha256(raw).hexdigest()}


def load_for_model(meta: dict, data_dir=None) -> Dataset:
    """The dataset a model directory was trained on: a named one (zoo.data.load), or the user's file recorded in
    its metadata (`data`), refused if gone or changed; normalised as the model's `input` says, never re-fitted."""
    if meta.get("dataset") != USER_DATASET:
        return data.load(meta["dataset"], data_dir)
    src = meta.get("data")
    if not isinstance(src, dict) or not isinstance(src.get("path"), str):
        raise DataError("the model directory's metadata has dataset 'user' but no 'data' record of the file; "
                        "retrain it with `python -m zoo.train --data FILE`")
    path = Path(src["path"])
    if not path.exists():
        raise DataError(f"{path}: the data file this model was trained on (recorded in its model directory) is gone; "
                        f"put it back at that path or retrain the model")
    test_file = src.get("test_file")
    if test_file is not None and hashlib.sha256(_read(Path(test_file), "--test-file CSV")).hexdigest() \
            != src.get("test_sha256"):
        raise DataError(f"{test_file}: the test CSV changed since the model was trained on it; restore it or "
                        f"retrain the model")
    norm = Normalization.from_meta(meta["input"])
    return load_file(path, normalization=norm, label_column=src.get("label_column"), test_file=test_file,
                     test_fraction=src.get("test_fraction"), seed=src.get("seed", 0), expect_sha256=src.get("sha256"))


def add_csv_arguments(parser, prefix: str = "CSV", seeded: str = "seeded by --seed"):
    """The .csv options of --data (zoo.train and zoo.import): the label column and the test split."""
    parser.add_argument("--label-column", metavar="NAME", help=f"{prefix}: the header name of the label column")
    parser.add_argument("--test-file", type=Path, metavar="CSV", help=f"{prefix}: the test split, same columns")
    parser.add_argument("--test-fraction", type=float, metavar="F",
                        help=f"{prefix}: hold out this fraction of the rows for testing ({seeded})")
