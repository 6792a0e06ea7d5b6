"""Synthetic 3-axis accelerometer windows: five gestures as parametric motions plus sensor noise, seeded.

A window is T samples at RATE_HZ of (x, y, z) acceleration in g, as a wrist-worn sensor at rest with z up would
report it, then stored the way an 8-bit accelerometer (+-2 g full scale) delivers it: round((a + 2) / 4 * 255),
clamped to 0..255. Each window draws its own orientation (gravity tilted by up to 25 degrees), amplitude, frequency,
phase, per-axis offset and noise level, so no two are alike.
"""

from __future__ import annotations

import numpy as np

GESTURES = ("still", "shake", "circle", "tap", "wave")
RATE_HZ = 50
T = 64             # samples per window: 1.28 s
FULL_SCALE_G = 2.0


def _rotation(rng, max_deg: float) -> np.ndarray:
    """A random rotation by at most `max_deg` degrees about a random axis (Rodrigues)."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(0, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _motion(kind: str, t: np.ndarray, rng) -> np.ndarray:
    """(T, 3) acceleration of the motion itself, in g, before gravity and noise."""
    a = np.zeros((len(t), 3))
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "shake":                    # fast side-to-side along x
        a[:, 0] = rng.uniform(0.7, 1.4) * np.sin(2 * np.pi * rng.uniform(4, 7) * t + phase)
    elif kind == "circle":                 # the hand draws a circle in the x-y plane
        amp, f = rng.uniform(0.4, 0.9), rng.uniform(1.0, 2.0)
        a[:, 0] = amp * np.sin(2 * np.pi * f * t + phase)
        a[:, 1] = amp * np.cos(2 * np.pi * f * t + phase)
    elif kind == "tap":                    # one to three sharp knocks along z
        for centre in rng.uniform(0.1, 1.2, rng.integers(1, 4)):
            a[:, 2] += rng.uniform(0.8, 1.6) * np.exp(-0.5 * ((t - centre) / 0.015) ** 2)
    elif kind == "wave":                   # slow swing along y, the wrist rolling with it
        f = rng.uniform(0.8, 1.6)
        a[:, 1] = rng.uniform(0.3, 0.7) * np.sin(2 * np.pi * f * t + phase)
        a[:, 0] = 0.3 * np.sin(2 * np.pi * f * t + phase + np.pi / 2)
    return a


def window(kind: str, rng) -> np.ndarray:
    """One (T, 3) window in g."""
    t = np.arange(T) / RATE_HZ
    gravity = _rotation(rng, 25) @ np.array([0.0, 0.0, 1.0])
    a = gravity + _motion(kind, t, rng) + rng.uniform(-0.05, 0.05, 3)
    return a + rng.normal(0, rng.uniform(0.02, 0.08), a.shape)


def to_uint8(a: np.ndarray) -> np.ndarray:
    """g -> the sensor's 8-bit reading (+-2 g full scale)."""
    return np.clip(np.round((a + FULL_SCALE_G) / (2 * FULL_SCALE_G) * 255), 0, 255).astype(np.uint8)


def dataset(n_train: int, n_test: int, seed: int = 0):
    """(x_train, y_train, x_test, y_test): uint8 (n, T * 3), rows of (x, y, z) samples in time order (a (1, T, 3)
    image row-major), and int32 labels (GESTURES order), classes in turn."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = np.arange(n, dtype=np.int32) % len(GESTURES)
        rng.shuffle(labels)
        x = np.stack([to_uint8(window(GESTURES[k], rng)).reshape(-1) for k in labels])
        return x, labels

    return (*split(n_train), *split(n_test))
