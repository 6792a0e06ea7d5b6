"""The 96x96 two-class dataset of pd_mobilenet (zoo.data.fashion_pd96)."""

import os

import numpy as np
import pytest

from zoo import data


def test_nearest_upscale_matches_loops():
    x = np.random.default_rng(0).integers(0, 256, (2, 7 * 7), dtype=np.uint8)
    out = data.upscale_nearest(x, 7, 17)
    img = x.reshape(2, 7, 7)
    want = np.array([[[img[n, (i * 7) // 17, (j * 7) // 17] for j in range(17)] for i in range(17)] for n in range(2)])
    assert np.array_equal(out, want.reshape(2, 17 * 17))


def test_fashion_pd96_is_garments_vs_footwear():
    if not data.FASHION_DEBIAN_DIR.is_dir():
        (pytest.fail if os.environ.get("CI") else pytest.skip)("apt-get install dataset-fashion-mnist")
    ds = data.load("fashion_pd96")
    src = data.load("fashion")
    assert ds.x_train.shape == (42_000, 96 * 96) and ds.x_test.shape == (7_000, 96 * 96)
    assert np.bincount(ds.y_test).tolist() == [4_000, 3_000] and np.bincount(ds.y_train).tolist() == [24_000, 18_000]
    first_shoe = int(np.flatnonzero(np.isin(src.y_test, (5, 7, 9)))[0])
    k = int(np.sum(np.isin(src.y_test[:first_shoe], (0, 2, 4, 6))))  # its index among the kept images
    assert ds.y_test[k] == 1
    assert np.array_equal(ds.x_test[k].reshape(96, 96)[::24, ::24], src.x_test[first_shoe].reshape(28, 28)[::7, ::7])
