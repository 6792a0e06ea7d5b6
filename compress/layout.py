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

Sparse ("pairs", `pack_sparse`): per input column, entries of two bytes (int8 weight, uint8 delta); the output
index advances by delta before each product (the first delta is the index itself); a gap over 255 is bridged by
(0, 255) filler entries. `col_len` (uint16 per input) counts each column's entries. Column order lets the kernel skip
a zero input's whole column (zero skipping: int32 accumulators on the stack, one per output; layers wider than
SPARSE_MAX_OUT outputs are not stored sparse). Bytes: 2 per entry + 2 per input.

Shared ("code3", `pack_shared`), for layers whose non-zero int8 weights take at most 7 values (compress/share.py)
and share one requantization multiplier and shift: a per-layer codebook of 8 int8 values (entry 0 is 0), and per
input column one byte per entry, `gap << 3 | code` with a 5-bit gap and a 3-bit code; the output index advances by
the gap before each product (the first gap is the index itself, so it may be 0; later gaps are 1..31). A gap over 31
is bridged by (code 0, gap 31) filler entries, whose product is 0. `col_len` (uint16 per input) counts each column's
entries. Column order lets the kernel skip a zero input's whole column (zero skipping: it reads only the columns of
the non-zero inputs and adds codebook[code] * x into int32 accumulators on the stack, at 8-byte stride so that
`entry & 0xF8` is the gap's byte offset). Layers wider than SHARED_MAX_OUT outputs are not stored shared (the
accumulators would outgrow the default stack). Bytes: 1 per entry + 2 per input + 8 per layer, and one multiplier
and shift per layer instead of one per output.
"""

from __future__ import annotations

import numpy as np

SCALAR_BYTES_PER_LAYER = 4  # out_zp, act_min, act_max, out_xor (int8 each)
SPARSE_MAX_DELTA = 255
SHARED_CODE_BITS, SHARED_GAP_BITS = 3, 5
SHARED_MAX_GAP = (1 << SHARED_GAP_BITS) - 1
SHARED_LEVELS = (1 << SHARED_CODE_BITS) - 1  # non-zero codebook values; code 0 is the value 0 (fillers)
SPARSE_MAX_OUT = 768  # 4 bytes of stack per output for the column kernel's accumulators (3 kB of the 4 kB default)
SHARED_MAX_OUT = 384  # 8 bytes of stack per output for the column kernel's accumulators (3 kB of the 4 kB default)


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
    """(entries uint8 (2 * n_entries,), col_len uint16 (in,)) of the pairs format, by input column."""
    w = np.asarray(w_out_in)
    if w.dtype != np.int8:
        raise TypeError(f"pack_sparse wants int8 weights, got {w.dtype}")
    entries, col_len = [], []
    for column in w.T:
        n, prev = 0, 0
        for j in np.flatnonzero(column):
            gap = int(j) - prev
            while gap > SPARSE_MAX_DELTA:
                entries += [0, SPARSE_MAX_DELTA]
                gap -= SPARSE_MAX_DELTA
                n += 1
            entries += [int(column[j]) & 0xFF, gap]
            n += 1
            prev = int(j)
        if n > 0xFFFF:
            raise OverflowError("a sparse column has more than 65535 entries")
        col_len.append(n)
    return np.asarray(entries, np.uint8), np.asarray(col_len, np.uint16)


def unpack_sparse(entries: np.ndarray, col_len: np.ndarray, n_out: int) -> np.ndarray:
    """The int8 (out, in) weights of a pairs layer."""
    e = np.asarray(entries, np.uint8).reshape(-1, 2)
    w = np.zeros((len(col_len), n_out), np.int8)
    pos = 0
    for k, n in enumerate(np.asarray(col_len, np.int64)):
        j = 0
        for wb, d in e[pos:pos + n]:
            j += int(d)
            if wb:
                w[k, j] = np.int8(np.uint8(wb).view(np.int8))
        pos += n
    return w.T.copy()


def shared_codebook(w_out_in: np.ndarray) -> np.ndarray | None:
    """int8 (8,) codebook [0, distinct non-zero values ascending, 0 padding], or None when the layer has more
    than 7 distinct non-zero values."""
    values = np.unique(np.asarray(w_out_in))
    values = values[values != 0]
    if values.size > SHARED_LEVELS:
        return None
    book = np.zeros(SHARED_LEVELS + 1, np.int8)
    book[1:1 + values.size] = values
    return book


def pack_shared(w_out_in: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(entries uint8 (n_entries,), col_len uint16 (in,), codebook int8 (8,)) of the code3 format, by input column."""
    w = np.asarray(w_out_in)
    if w.dtype != np.int8:
        raise TypeError(f"pack_shared wants int8 weights, got {w.dtype}")
    book = shared_codebook(w)
    if book is None:
        raise ValueError(f"pack_shared: the layer has {np.unique(w[w != 0]).size} distinct non-zero weights; the "
                         f"code3 format holds at most {SHARED_LEVELS} (compress with --share)")
    code_of = {int(v): c for c, v in enumerate(book) if c == 0 or v != 0}
    entries, col_len = [], []
    for column in w.T:
        start = len(entries)
        prev = 0
        for j in np.flatnonzero(column):
            gap = int(j) - prev
            while gap > SHARED_MAX_GAP:
                entries.append(SHARED_MAX_GAP << SHARED_CODE_BITS)  # code 0: weight 0
                gap -= SHARED_MAX_GAP
            entries.append(gap << SHARED_CODE_BITS | code_of[int(column[j])])
            prev = int(j)
        if len(entries) - start > 0xFFFF:
            raise OverflowError("a shared column has more than 65535 entries")
        col_len.append(len(entries) - start)
    return np.asarray(entries, np.uint8), np.asarray(col_len, np.uint16), book


def unpack_shared(entries: np.ndarray, col_len: np.ndarray, codebook: np.ndarray, n_out: int) -> np.ndarray:
    """The int8 (out, in) weights of a code3 layer."""
    e = np.asarray(entries, np.uint8)
    book = np.asarray(codebook, np.int8)
    w = np.zeros((len(col_len), n_out), np.int8)
    pos = 0
    for k, n in enumerate(np.asarray(col_len, np.int64)):
        j = 0
        for b in e[pos:pos + n]:
            j += int(b) >> SHARED_CODE_BITS
            code = int(b) & SHARED_LEVELS
            if code:
                w[k, j] = book[code]
        pos += n
    return w.T.copy()


def storage_tensors(storage: str, w_out_in: np.ndarray) -> dict[str, np.ndarray]:
    """The packed tensors a storage keeps besides q.layers.<i>.*, by name (saved as s.layers.<i>.<name>, read back by
    kernel_layers): none for dense (interleave4 is rebuilt from the weights), entries + col_len for sparse, entries +
    col_len + codebook for shared. kernel_layers rebuilds all three from the weights (model directories written
    before the column formats hold row-order tensors under row_len)."""
    if storage == "sparse":
        return dict(zip(("entries", "col_len"), pack_sparse(w_out_in)))
    if storage == "shared":
        return dict(zip(("entries", "col_len", "codebook"), pack_shared(w_out_in)))
    return {}


def uniform_requantization(multiplier: np.ndarray, shift: np.ndarray) -> bool:
    """Whether every output of a layer has the same multiplier and shift (a per-layer weight scale)."""
    m, s = np.asarray(multiplier), np.asarray(shift)
    return bool(m.size and np.all(m == m.flat[0]) and np.all(s == s.flat[0]))


def dense_bytes(out: int, n_in: int) -> int:
    return _pad4(out) * _pad4(n_in)


def sparse_bytes(w_out_in: np.ndarray) -> int:
    entries, col_len = pack_sparse(w_out_in)
    return entries.nbytes + col_len.nbytes


def choose_storage(w_out_in: np.ndarray, multiplier=None, shift=None) -> str:
    """The storage with the fewest bytes (int8_layer_bytes): "shared" when the layer qualifies (at most 7 distinct
    non-zero weights and one multiplier and shift; give them), else "sparse" when the pairs format takes fewer
    bytes than interleave4 (density below ~50 %), else "dense". Sparse and shared need at most SPARSE_MAX_OUT and
    SHARED_MAX_OUT outputs (their kernels keep one accumulator per output on the stack).

    Bytes decide; speed agrees roughly: all three kernels skip zero inputs, and per non-zero input the sparse kernel
    costs ~14 cycles per stored weight against ~4.3 per weight for dense (docs/BENCHMARKS.md), so it is faster below
    ~30 % density."""
    options = ["dense"] + (["sparse"] if np.asarray(w_out_in).shape[0] <= SPARSE_MAX_OUT else [])
    if (multiplier is not None and uniform_requantization(multiplier, shift) and shared_codebook(w_out_in) is not None
            and np.asarray(w_out_in).shape[0] <= SHARED_MAX_OUT):
        options.append("shared")
    return min(options, key=lambda storage: int8_layer_bytes(w_out_in, storage)["total"])


def int8_layer_bytes(w_out_in: np.ndarray, storage: str) -> dict:
    """Bytes the firmware stores for one int8 layer, by kind; "total" sums them."""
    out, n_in = w_out_in.shape
    requant = 4 * out + out  # multiplier int32, shift int8 per output
    if storage == "sparse":
        entries, col_len = pack_sparse(w_out_in)
        weights, indices = entries.nbytes // 2, entries.nbytes // 2 + col_len.nbytes
    elif storage == "shared":  # code and gap share each entry's byte: counted as weights
        entries, col_len, book = pack_shared(w_out_in)
        weights, indices, requant = entries.nbytes + book.nbytes, col_len.nbytes, 4 + 1
    else:
        weights, indices = dense_bytes(out, n_in), 0
    parts = {"weights": weights, "indices": indices, "biases": 4 * out, "scales": requant + SCALAR_BYTES_PER_LAYER}
    return {**parts, "total": sum(parts.values())}


def float_layer_bytes(w_in_out: np.ndarray, b: np.ndarray) -> dict:
    return {"weights": int(np.asarray(w_in_out).nbytes), "indices": 0, "biases": int(np.asarray(b).nbytes),
            "scales": 0}


def total(parts: list[dict]) -> dict:
    keys = ("weights", "indices", "biases", "scales")
    out = {k: int(sum(p[k] for p in parts)) for k in keys}  # a part's own "total" is recomputed here
    out["total"] = sum(out.values())
    return out


def kernel_layers(model) -> list[dict]:
    """Everything one `pz_q8_layer_t` needs, per dense layer of an int8 MLP, in order (for firmware codegen):
    `kernel_layer` of each layer, with out_xor 0x80 for hidden layers (the next layer's offset-binary input) and 0
    for the last layer, whose bytes are the int8 model output."""
    q = model.meta["quantization"]
    return [kernel_layer(lm, {name: model.extra[f"q.layers.{lm['index']}.{name}"] for name in KERNEL_TENSORS},
                         0x80 if n + 1 < len(q["layers"]) else 0)
            for n, lm in enumerate(q["layers"])]


KERNEL_TENSORS = ("w", "bias", "multiplier", "shift")  # q.layers.<i>.<name>: what kernel_layer reads


def kernel_layer(lm: dict, t: dict, out_xor: int) -> dict:
    """One int8 dense layer's `pz_q8_layer_t` contents, from its quantization meta `lm` and tensors `t`
    (KERNEL_TENSORS; the MLP and the conv-net firmware both build dense layers from it).

    Keys: index, n_in, n_out, storage ("dense" | "sparse" | "shared"), kernel (C function name), w (uint8 bytes:
    interleave4, pairs or code3 entries), row_len (uint16 entries per input column for sparse and shared, None for
    dense; the struct field keeps its name pz_q8_layer_t.row_len), codebook (int8 (8,),
    shared only, else None), bias (folded int32), multiplier (int32), shift (int8) (one per output; shared layers
    have one value, as the firmware stores them), out_zp, act_min, act_max, out_xor.
    """
    i = lm["index"]
    w = t["w"]
    storage = lm.get("storage", "dense")
    mult, shift, book = t["multiplier"], t["shift"], None
    if storage == "sparse":  # rebuilt from the weights, as interleave4 is (same bytes as s.layers.<i>.*)
        wbytes, row_len = pack_sparse(w)
        kernel = "pz_q8_sparse"
        if w.shape[0] > SPARSE_MAX_OUT:
            raise ValueError(f"layer {i} is stored 'sparse' with {w.shape[0]} outputs; the pairs kernel keeps one "
                             f"4-byte accumulator per output on the stack and takes at most {SPARSE_MAX_OUT}")
    elif storage == "shared":  # rebuilt from the weights, as interleave4 is (same bytes as s.layers.<i>.*)
        wbytes, row_len, book = pack_shared(w)
        kernel = "pz_q8_shared"
        if w.shape[0] > SHARED_MAX_OUT:
            raise ValueError(f"layer {i} is stored 'shared' with {w.shape[0]} outputs; the code3 kernel keeps one "
                             f"8-byte accumulator per output on the stack and takes at most {SHARED_MAX_OUT}")
        if not uniform_requantization(mult, shift):
            raise ValueError(f"layer {i} is stored 'shared' but its outputs have different multipliers or "
                             f"shifts; the code3 kernel applies one per layer")
        mult, shift = np.asarray(mult)[:1], np.asarray(shift)[:1]
    else:
        wbytes, row_len, kernel = pack_dense(w), None, "pz_q8_dense_m0"
    return {
        "index": i, "n_in": int(w.shape[1]), "n_out": int(w.shape[0]), "storage": storage, "kernel": kernel,
        "w": wbytes, "row_len": row_len, "codebook": book,
        "bias": folded_bias(t["bias"], w, lm["input_zero_point"]),
        "multiplier": mult, "shift": shift,
        "out_zp": lm["output_zero_point"], "act_min": lm["act_min"], "act_max": lm["act_max"],
        "out_xor": out_xor,
    }
