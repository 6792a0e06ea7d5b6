"""The gesture classifier: a spec file for `python -m zoo.train --spec` (zoo/specfile.py runs it and takes `model`
and `recipe`). One window is a (1, 64, 3) image: 64 time steps, 3 axes as channels; the convolutions run along
time only ((1, k) kernels), pooling halves the time axis, a global average pool makes it position-free."""

from zoo.nn import Conv2D, Dense, GlobalAvgPool2D, Input, MaxPool2D, ReLU, Sequential

T, AXES, GESTURES = 64, 3, 5

model = Sequential([
    Input(1, T, AXES),
    Conv2D(AXES, 16, (1, 5), 1, "same"), ReLU(), MaxPool2D((1, 2)),   # (1, 32, 16)
    Conv2D(16, 24, (1, 5), 1, "same"), ReLU(), MaxPool2D((1, 2)),     # (1, 16, 24)
    Conv2D(24, 32, (1, 3), 1, "same"), ReLU(),                         # (1, 16, 32)
    GlobalAvgPool2D(),                                                 # (32,)
    Dense(32, GESTURES),
])

recipe = {"epochs": 25, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01, "label_smoothing": 0.05}
