"""Epoch throughput of zoo training (mnist_300) against an equivalent plain PyTorch CPU loop.

Same network (784-300-10, ReLU), same batch size, AdamW with the same learning rate and weight decay, same
label-smoothed cross-entropy, same per-epoch shuffle. Epochs alternate between the two (zoo, torch, zoo, torch, ...)
so both see the same machine load; compilation (JAX) and warm-up (torch) happen in an untimed first epoch.

    pip install torch==2.13.0        # the optional `bench` extra
    python benchmarks/train_speed.py --epochs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from zoo import data
from zoo.models import get_model
from zoo.train import make_mesh, make_optimizer, make_train_step, run_epoch


def zoo_epoch_runner(cfg, ds):
    steps = len(ds.x_train) // cfg.batch_size
    mesh = make_mesh(cfg.batch_size)
    replicated = NamedSharding(mesh, PartitionSpec())
    optimizer = make_optimizer(cfg, steps)
    state = {"params": jax.device_put(cfg.spec.init(jax.random.key(0)), replicated)}
    state["opt"] = jax.device_put(optimizer.init(state["params"]), replicated)
    step = make_train_step(cfg, optimizer, ds.input_scale, jax.numpy.float32)
    rng = np.random.default_rng(0)

    def epoch():
        order = rng.permutation(len(ds.x_train))[:steps * cfg.batch_size].reshape(steps, cfg.batch_size)
        state["params"], state["opt"], losses, _ = run_epoch(step, state["params"], state["opt"], mesh,
                                                             ds.x_train, ds.y_train, order)
        jax.block_until_ready(losses[-1])

    return epoch


def torch_epoch_runner(cfg, ds):
    import torch

    torch.manual_seed(0)
    dims = [layer.in_features for layer in cfg.spec.dense_layers] + [cfg.spec.out_features]
    layers = []
    for a, b in zip(dims, dims[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    x_all = torch.from_numpy(ds.x_train.copy())  # the IDX arrays are read-only views
    y_all = torch.from_numpy(ds.y_train.astype(np.int64))
    steps = len(ds.x_train) // cfg.batch_size
    rng = np.random.default_rng(0)

    def epoch():
        order = torch.from_numpy(rng.permutation(len(ds.x_train))[:steps * cfg.batch_size])
        for idx in order.view(steps, cfg.batch_size):
            x = x_all[idx].float() * ds.input_scale
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y_all[idx])
            loss.backward()
            optimizer.step()

    return epoch, torch


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs per framework")
    args = parser.parse_args()
    cfg = get_model("mnist_300")
    ds = data.load("mnist")
    zoo_epoch = zoo_epoch_runner(cfg, ds)
    torch_epoch, torch = torch_epoch_runner(cfg, ds)
    zoo_epoch(), torch_epoch()  # compile / warm up, untimed
    times = {"zoo (JAX)": [], "PyTorch": []}
    for _ in range(args.epochs):
        for name, fn in (("zoo (JAX)", zoo_epoch), ("PyTorch", torch_epoch)):
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    images = (len(ds.x_train) // cfg.batch_size) * cfg.batch_size
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, jax {jax.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)")
    print(f"mnist_300, batch {cfg.batch_size}, {args.epochs} interleaved epochs each (median)")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in medians.items():
        print(f"  {name:10s} {seconds:6.2f} s/epoch  {images / seconds:9.0f} images/s")
    print(f"  zoo is {medians['PyTorch'] / medians['zoo (JAX)']:.2f}x the PyTorch throughput")


if __name__ == "__main__":
    main()
