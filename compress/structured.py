"""Structured pruning: which output channels (conv filters, hidden neurons) can go, and the smaller network
without them.

A *channel group* starts at a conv2d or dense layer (the producer) and follows its output channels forward through
layers that keep channels apart (ReLU/ReLU6, pools, Dropout, depthwise conv, flatten, global average pooling)
to the next conv2d or dense layer (the consumer). Removing channel k removes together:
- the producer's filter k (w[..., k], b[k]),
- channel k of every depthwise conv on the way (w[..., k], b[k]),
- the consumer's input channel k: conv2d w[:, :, k, :], or for a dense layer after a flatten of (h, w, C) the rows
  p * C + k for every position p (flatten is row-major h, w, c; a dense right after a dense or a global average
  pool has P = 1).
A producer with no consumer (the output layer) is never pruned. BatchNorm must be folded first
(compress.netspec.for_inference). Each group is scored per channel by
`||producer filter k|| * prod ||depthwise channel k|| * ||consumer input channel k||` (L2 norms), which for an MLP
is exactly the old hidden-neuron score ||w_in[:, j]|| * ||w_out[j, :]||.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from compress.netspec import shapes

PASS_CHANNELS = ("relu", "relu6", "max_pool2d", "avg_pool2d", "dropout", "flatten", "global_avg_pool2d")


@dataclass(frozen=True)
class Group:
    producer: int
    depthwise: tuple  # depthwise layer indices between producer and consumer
    consumer: int
    positions: int  # P: consumer rows per channel (spatial positions flattened before a dense consumer)
    channels: int


def groups(dicts) -> list[Group]:
    sh = shapes(dicts)
    out = []
    for p, d in enumerate(dicts):
        if d["type"] not in ("conv2d", "dense"):
            continue
        channels = int(d["out"])
        positions, chain, consumer = 1, [], None
        for j in range(p + 1, len(dicts)):
            t = dicts[j]["type"]
            if t == "depthwise_conv2d":
                chain.append(j)
            elif t == "flatten":
                s = sh[j][0]
                positions = int(np.prod(s[:-1])) if len(s) == 3 else 1
            elif t in ("conv2d", "dense"):
                consumer = j
                break
            elif t not in PASS_CHANNELS:
                break  # an unknown layer: leave this group alone
        if consumer is not None:
            out.append(Group(p, tuple(chain), consumer, positions, channels))
    return out


def _channel_norms(w):
    """L2 norm per output channel (last axis) of a channel-last weight tensor."""
    w = np.asarray(w, np.float64)
    return np.linalg.norm(w.reshape(-1, w.shape[-1]), axis=0)


def _consumer_rows(g: Group, k_idx: np.ndarray) -> np.ndarray:
    """Dense consumer rows of channels k_idx (ascending), in the order the flattened input keeps them."""
    return (np.arange(g.positions)[:, None] * g.channels + np.asarray(k_idx)[None, :]).ravel()


def _consumer_norms(dicts, params, g: Group):
    w = np.asarray(params[g.consumer]["w"], np.float64)
    if dicts[g.consumer]["type"] == "conv2d":  # (kh, kw, C, K): input channel on axis 2
        return np.linalg.norm(np.moveaxis(w, 2, 0).reshape(g.channels, -1), axis=1)
    if g.positions == 1:
        return np.linalg.norm(w, axis=1)
    return np.linalg.norm(w.reshape(g.positions, g.channels, -1).transpose(1, 0, 2).reshape(g.channels, -1), axis=1)


def scores(dicts, params) -> dict:
    """{producer index: score per channel}."""
    out = {}
    for g in groups(dicts):
        s = _channel_norms(params[g.producer]["w"])
        for j in g.depthwise:
            s = s * _channel_norms(params[j]["w"])
        out[g.producer] = s * _consumer_norms(dicts, params, g)
    return out


def keep(dicts, params, fraction: float, producers=None) -> dict:
    """{producer index: bool keep-vector}: each group drops the `fraction` of its channels with the lowest score
    (ties broken by position; at least one channel stays). `producers` (layer types, e.g. ("conv2d",)) limits the
    pruning to the groups whose producer has one of those types; the others are left out (kept whole)."""
    out = {}
    for i, s in scores(dicts, params).items():
        if producers is not None and dicts[i]["type"] not in producers:
            continue
        k = min(int(round(fraction * s.size)), s.size - 1)
        v = np.ones(s.size, bool)
        v[np.argsort(s, kind="stable")[:k]] = False
        out[i] = v
    return out


def masks(dicts, params, keep_vectors) -> list:
    """0/1 float32 masks (the params' tree) zeroing every weight and bias of the removed channels."""
    m = [{k: np.ones(np.shape(v), np.float32) for k, v in p.items()} for p in params]
    by_producer = {g.producer: g for g in groups(dicts)}
    for i, v in keep_vectors.items():
        g = by_producer[i]
        f = v.astype(np.float32)
        for j in (g.producer, *g.depthwise):
            m[j]["w"] = m[j]["w"] * f
            m[j]["b"] = m[j]["b"] * f
        if dicts[g.consumer]["type"] == "conv2d":
            m[g.consumer]["w"] = m[g.consumer]["w"] * f[None, None, :, None]
        else:
            m[g.consumer]["w"] = m[g.consumer]["w"] * np.tile(f, g.positions)[:, None]
    return m


def slice_channels(dicts, params, keep_vectors):
    """(layer dicts, params) of the smaller network without the removed channels (the same function once they are
    masked to zero)."""
    dicts = [dict(d) for d in dicts]
    params = [dict(p) for p in params]
    by_producer = {g.producer: g for g in groups(dicts)}
    for i, v in keep_vectors.items():
        g = by_producer[i]
        idx = np.flatnonzero(v)
        for j in (g.producer, *g.depthwise):
            params[j] = {"w": np.asarray(params[j]["w"])[..., idx], "b": np.asarray(params[j]["b"])[idx]}
        c = g.consumer
        w = np.asarray(params[c]["w"])
        if dicts[c]["type"] == "conv2d":
            params[c] = {"w": w[:, :, idx, :], "b": np.asarray(params[c]["b"])}
        else:
            params[c] = {"w": w[_consumer_rows(g, idx), :], "b": np.asarray(params[c]["b"])}
        dicts[g.producer]["out"] = int(idx.size)
        for j in g.depthwise:
            dicts[j]["channels"] = int(idx.size)
        dicts[c]["in"] = int(params[c]["w"].shape[2] if dicts[c]["type"] == "conv2d" else params[c]["w"].shape[0])
    return dicts, params
