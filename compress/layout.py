"""The byte layouts the int8 C kernels read, and the count of every byte the firmware stores (model_bytes).

All int8 kernels (firmware/kernels/int8.h) share one contract:
    xu = q + 128 (activations as offset-binary bytes; for the first layer these are the raw pixels)
    acc_j = bias_folded_j + sum_k xu_k * w_jk
    bias_folded_j = bias_j - (128 + zp_in) * sum_k w_jk          (exact integer identity; computed here)
so the kernels multiply unsigned activation bytes by signed weights and never see a zero point.

Dense ("interleave4", `pack_dense`): outputs padded to a multiple of 4 and inputs to a multiple of 4 with zero
weights. Outputs are walked in groups of 8 (then one group of 4 if 4 remain); inside a group, for each input k, one
32-bit little-endian word per 4 outputs holds their weights in bytes b0..b3, where b0 and b2 are stored as w + 128
(unsigned) and b1, b3 as plain int8. Then `sxth(W)` = 256*w1 + (w0+128), `sxth(W) >> 8` = w1, `W >> 16` =
256*w3 + (w2+128) and `W >> 24` = w3 are one instruction each on the M0+; the kernel recovers
sum w0*xu = A0 - 256*A1 - 128*sum(xu) (mod 2^32, exact) and likewise for lane 2. Bytes: out_pad * in_pad.

Sparse ("pairs", `pack_sparse`): per output row, entries of two bytes (int8 weight, uint8 delta) read as one
little-endian halfword; the input index advances by delta before each product (the first delta is the index itself);
a gap over 255 is bridged by (0, 255) filler entries and an odd row gets one (0, 0) entry, so every row is a whole
number of 32-bit words (two entries per load; the array must be 4-byte aligned). `row_len` (uint16 per output)
counts each row's entries. Bytes: 2 per entry + 2 per output.
"""

from __future__ import annotations

import numpy as np

SCALAR_BYTES_PER_LAYER = 4  # out_zp, act_min, act_max, out_xor (int8 each)
SPARSE_MAX_DELTA = 255


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4


def folded_bias(bias: np.ndarray, w_out_in: np.ndarray, in_zero_point: int) -> np.ndarray:
    """bias - (128 + zp_in) * sum_k w_jk as int32 (raises if it does not fit)."""
    b = np.asarray(bias, np.int64) - (128 + int(in_zero_point)) * np.asarray(w_out_in, np.int64).sum(axis=1)
    if np.any(np.abs(b) > 2**31 - 1):
        raise OverflowError("a folded bias does not fit int32")
    return b.astype(np.int32)


def dense_groups(out: int):
    """[(first output, lanes)] of the interleave4 layout: groups of 8, then one of 4 if 4 outputs remain."""
    out_pad, groups, j = _pad4(out), [], 0
    while j < out_pad:
        g = 8 if out_pad - j >= 8 else 4
        groups.append((j, g))
        j += g
    return groups


def pack_dense(w_out_in: np.ndarray) -> np.ndarray:
    """uint8 bytes of the interleave4 layout for an int8 (out, in) matrix."""
    w = np.asarray(w_out_in)
    if w.dtype != np.int8:
        raise TypeError(f"pack_dense wants int8 weights, got {w.dtype}")
    out, n_in = w.shape
    wp = np.zeros((_pad4(out), _pad4(n_in)), np.int16)
    wp[:out, :n_in] = w
    lane_offset = np.array([128, 0, 128, 0], np.int16)
    chunks = []
    for j, g in dense_groups(out):
        block = wp[j:j + g, :].T + np.tile(lane_offset, g // 4)[None, :]  # (in_pad, g)
        chunks.append((block & 0xFF).astype(np.uint8).ravel())
    return np.concatenate(chunks)


def unpack_dense(packed: np.ndarray, out: int, n_in: int) -> np.ndarray:
    """Inverse of pack_dense (for tests and tools)."""
    packed = np.asarray(packed, np.uint8)
    in_pad, rows, pos = _pad4(n_in), [], 0
    for _, g in dense_groups(out):
        block = packed[pos:pos + in_pad * g].reshape(in_pad, g).astype(np.int16)
        pos += in_pad * g
        block = block - np.tile(np.array([128, 0, 128, 0], np.int16), g // 4)[None, :]
        rows.append(((block + 128) % 256 - 128).T)
    return np.concatenate(rows)[:out, :n_in].astype(np.int8)


def pack_sparse(w_out_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(entries uint8 (2 * n_entries,), row_len uint16 (out,)) of the pairs format."""
    w = np.asarray(w_out_in)
    if w.dtype != np.int8:
        raise TypeError(f"pack_sparse wants int8 weights, got {w.dtype}")
    entries, row_len = [], []
    for row in w:
        n, prev = 0, 0
        for k in np.flatnonzero(row):
            gap = int(k) - prev
            while gap > SPARSE_MAX_DELTA:
                entries += [0, SPARSE_MAX_DELTA]
                gap -= SPARSE_MAX_DELTA
                n += 1
            entries += [int(row[k]) & 0xFF, gap]
            n += 1
            prev = int(k)
        if n % 2:  # rows hold an even number of entries: the kernel reads two per 32-bit load
            entries += [0, 0]
            n += 1
        if n > 0xFFFF:
            raise OverflowError("a sparse row has more than 65535 entries")
        row_len.append(n)
    return np.asarray(entries, np.uint8), np.asarray(row_len, np.uint16)


def unpack_sparse(entries: np.ndarray, row_len: np.ndarray, n_in: int) -> np.ndarray:
    e = np.asarray(entries, np.uint8).reshape(-1, 2)
    w = np.zeros((len(row_len), n_in), np.int8)
    pos = 0
    for j, n in enumerate(np.asarray(row_len, np.int64)):
        k = 0
        for wb, d in e[pos:pos + n]:
            k += int(d)
            if wb:
                w[j, k] = np.int8(np.uint8(wb).view(np.int8))
        pos += n
    return w


def dense_bytes(out: int, n_in: int) -> int:
    return _pad4(out) * _pad4(n_in)


def sparse_bytes(w_out_in: np.ndarray) -> int:
    entries, row_len = pack_sparse(w_out_in)
    return entries.nbytes + row_len.nbytes


def choose_storage(w_out_in: np.ndarray) -> str:
    """"sparse" when the pairs format takes fewer bytes than interleave4 (density below ~50 %), else "dense".

    Bytes decide; speed agrees to within a few points of density: the sparse kernel costs ~2.4x the dense kernel
    per stored weight (docs/COMPRESS.md), so it is faster below ~40 % density."""
    out, n_in = w_out_in.shape
    return "sparse" if sparse_bytes(w_out_in) < dense_bytes(out, n_in) else "dense"


def int8_layer_bytes(w_out_in: np.ndarray, storage: str) -> dict:
    out, n_in = w_out_in.shape
    if storage == "sparse":
        entries, row_len = pack_sparse(w_out_in)
        weights, indices = entries.nbytes // 2, entries.nbytes // 2 + row_len.nbytes
    else:
        weights, indices = dense_bytes(out, n_in), 0
    return {"weights": weights, "indices": indices, "biases": 4 * out,
            "scales": 4 * out + out + SCALAR_BYTES_PER_LAYER}  # multiplier int32, shift int8, per-layer scalars


def float_layer_bytes(w_in_out: np.ndarray, b: np.ndarray) -> dict:
    return {"weights": int(np.asarray(w_in_out).nbytes), "indices": 0, "biases": int(np.asarray(b).nbytes),
            "scales": 0}


def total(parts: list[dict]) -> dict:
    keys = ("weights", "indices", "biases", "scales")
    out = {k: int(sum(p[k] for p in parts)) for k in keys}
    out["total"] = sum(out.values())
    return out


def kernel_layers(model) -> list[dict]:
    """Everything one `pz_q8_layer_t` needs, per dense layer of an int8 model, in order (for firmware codegen).

    Keys: index, n_in, n_out, storage ("dense" | "sparse"), kernel (C function name), w (uint8 bytes: interleave4 or
    pairs entries), row_len (uint16, sparse only, else None), bias (folded int32), multiplier (int32),
    shift (int8), out_zp, act_min, act_max, out_xor (0x80 for hidden layers: the next layer's offset-binary input;
    0 for the last layer, whose bytes are the int8 model output).
    """
    q = model.meta["quantization"]
    layers = []
    for n, lm in enumerate(q["layers"]):
        i = lm["index"]
        w = model.extra[f"q.layers.{i}.w"]
        storage = lm.get("storage", "dense")
        if storage == "sparse":
            wbytes, row_len, kernel = model.extra[f"s.layers.{i}.entries"], model.extra[f"s.layers.{i}.row_len"], \
                "pz_q8_sparse"
        else:
            wbytes, row_len, kernel = pack_dense(w), None, "pz_q8_dense_m0"
        layers.append({
            "index": i, "n_in": int(w.shape[1]), "n_out": int(w.shape[0]), "storage": storage, "kernel": kernel,
            "w": wbytes, "row_len": row_len,
            "bias": folded_bias(model.extra[f"q.layers.{i}.bias"], w, lm["input_zero_point"]),
            "multiplier": model.extra[f"q.layers.{i}.multiplier"], "shift": model.extra[f"q.layers.{i}.shift"],
            "out_zp": lm["output_zero_point"], "act_min": lm["act_min"], "act_max": lm["act_max"],
            "out_xor": 0x80 if n + 1 < len(q["layers"]) else 0,
        })
    return layers
