"""Batched, cache-blocked weighting of many pools at once (spec/synthesis.md 2.3-2.4).

Why: an epoch weights several families of pools (forecast-implied, naive, combined, one-out,
one-in). Done one family at a time with :func:`.weights.pool_weights` and
:func:`.weights.weighted_average`, every family pays ~100 numpy calls (ruinous at 32 workers,
where the arrays are tiny) and every step makes a fresh N x (N + K) temporary (ruinous at
1,000 workers, where each pass goes to L3/DRAM instead of L2). :func:`average_pools` instead
takes all pools of one length as one batch of rows, fills reusable scratch buffers one block of
rows at a time (a block is ~512 KiB, so every step stays in cache) and runs the *same* correctly
rounded operations in the *same* order as the reference pair; every step is row-wise, so the
bits do not depend on the blocking (a test checks this against the reference functions).

Inputs are given as column segments, so the concatenated pools are never materialised: each
segment is either a full ``(B, w)`` array or one ``(w,)`` row shared by every pool.

Layout: a block is held transposed, (W entries, b pools), C-contiguous. Element-wise steps do
not care, and the pairwise sum over a pool's entries then becomes a handful of 1-D adds of
contiguous halves (numpy's cheapest call: ~0.4 us against ~3 us for a strided 2-D slice add,
which is what dominates at small sizes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis import detmath
from alloranet.synthesis.scratch import cached
from alloranet.synthesis.stats import TreeBuffer

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Elements per block of pools: 65,536 float64 = 512 KiB per scratch buffer. Measured on the
#: reference machine (1 MiB L2, 32 MiB L3) at 1,000 x 100: 16 Ki elements 52 ms per network
#: inference, 64 Ki 41 ms, 256 Ki 59 ms: smaller blocks pay numpy's per-call overhead once per
#: block, larger ones stream every step through memory.
BLOCK_ELEMENTS = 65536


@dataclass(frozen=True)
class PoolGroup:
    """``rows`` pools of one family; every pool of a batch has the same column segments.

    Per column segment: a ``(rows, w)`` array or one ``(w,)`` row shared by every pool (for
    ``mask``, None = every entry of the segment is in the pool). ``floor`` is the
    ``EpsilonSafeDiv`` floor of the weight sum (None: a plain sum), and ``single_is_one`` gives
    a lone entry weight exactly 1 (forecast-implied inferences, spec 3.1)."""

    rows: int
    regrets: Sequence[FloatArray]
    mask: Sequence[BoolArray | None]
    values: Sequence[FloatArray]
    floor: float | None = None
    single_is_one: bool = False


class _Scratch:
    """Reusable flat buffers of ``size`` elements for one pass (one block of one batch, or the
    blocks of several small batches side by side); a segment's (W, b) block is the contiguous
    view of its W * b elements at its offset (:class:`_Views`, cached per layout)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.reg = np.empty(size)
        self.val = np.empty(size)
        self.mask = np.empty(size, dtype=bool)
        self.out_mask = np.empty(size, dtype=bool)
        self.cut = np.empty(size, dtype=bool)
        self.x = np.empty(size)
        self.w = np.empty(size)
        self.tmp = [np.empty(size) for _ in range(6)]
        self.bits = np.empty(size, dtype=np.int64)
        self.layouts: dict[tuple[int, int, int], _Views] = {}
        self.prefixes: dict[int, _Prefix] = {}

    def views(self, off: int, width: int, b: int) -> _Views:
        key = (off, width, b)
        found = self.layouts.get(key)
        if found is None:
            if len(self.layouts) >= 64:
                self.layouts.clear()
            found = self.layouts[key] = _Views(self, off, width, b)
        return found

    def prefix(self, size: int) -> _Prefix:
        found = self.prefixes.get(size)
        if found is None:
            if len(self.prefixes) >= 16:
                self.prefixes.clear()
            found = self.prefixes[size] = _Prefix(self, size)
        return found


class _Views:
    """The (W, b) views of one segment and its fixed-order sum tree over x (level views built
    once: at small sizes creating the slices costs as much as the adds)."""

    def __init__(self, s: _Scratch, off: int, width: int, b: int) -> None:
        end = off + width * b
        self.reg = s.reg[off:end].reshape(width, b)
        self.val = s.val[off:end].reshape(width, b)
        self.x = s.x[off:end].reshape(width, b)
        self.w = s.w[off:end].reshape(width, b)
        self.mask = s.mask[off:end].reshape(width, b)
        self.sums = TreeBuffer(width, b, s.x[off:end]) if width else None
        self.width, self.b = width, b

    def tree(self) -> FloatArray:
        """The pools' fixed-order sums of the terms in x (overwritten): a view."""
        if self.sums is None:
            return np.zeros(self.b)
        return self.sums.run()


class _Prefix:
    """The first ``size`` elements of every scratch buffer, as views built once."""

    def __init__(self, s: _Scratch, size: int) -> None:
        self.reg, self.val, self.x, self.w = s.reg[:size], s.val[:size], s.x[:size], s.w[:size]
        self.mask, self.out_mask, self.cut = s.mask[:size], s.out_mask[:size], s.cut[:size]
        self.tmp = [t[:size] for t in s.tmp]
        self.bits = s.bits[:size]


def _scratch(size: int) -> _Scratch:
    """This thread's scratch buffers of ``size`` elements, kept between calls
    (:mod:`.scratch`): blocks of half a MiB would otherwise be mmapped, faulted in and
    unmapped again on every call by glibc's default allocator (thousands of page faults per
    epoch at 1,000 workers)."""
    return cached("pools", size, lambda: _Scratch(size))


def _put(part: npt.NDArray[np.generic], seg: FloatArray | BoolArray | None, src: slice) -> None:
    """One column segment of a block: a whole-pool mask (None), one row shared by every pool
    (1-D) or the rows ``src`` of a (rows, w) array, transposed."""
    if seg is None:  # mask only: the whole segment is in the pool
        part[...] = True
    elif seg.ndim == 1:
        part[...] = seg[:, None]
    else:
        part[...] = seg[src].T


def _fill(g: _Segment) -> None:
    """Copy the pools [r0, r1) of the segment's batch (regrets, values and mask), transposed,
    into its (W, r1 - r0) blocks."""
    bt, r0, r1 = g.batch, g.r0, g.r1
    for grp, g0 in zip(bt.groups, bt.starts, strict=True):
        a, b = max(r0, g0), min(r1, g0 + grp.rows)
        if a >= b:
            continue
        cols, src = slice(a - r0, b - r0), slice(a - g0, b - g0)
        c = 0
        for reg, mask, val, w in zip(grp.regrets, grp.mask, grp.values, bt.widths, strict=True):
            rows = slice(c, c + w)
            _put(g.reg[rows, cols], reg, src)
            _put(g.val[rows, cols], val, src)
            _put(g.mask[rows, cols], mask, src)
            c += w


def _exp_into(arg: FloatArray, s: _Prefix) -> FloatArray:
    """:func:`.detmath.exp` of the flat ``arg`` in the scratch buffers (its in-range kernel,
    :func:`.detmath.exp_in_range_into`); any other block goes through ``exp`` itself."""
    lo_x, hi_x = np.minimum.reduce(arg), np.maximum.reduce(arg)  # np.min/np.max, unwrapped
    if not (lo_x >= -700.0 and hi_x <= detmath._EXP_OVERFLOW):
        return detmath.exp(arg)
    k, hi, lo, r, t, c = s.tmp
    return detmath.exp_in_range_into(arg, k, hi, lo, r, t, c, s.bits)


class _Batch:
    """One batch of pools of equal width (the groups of one ``average_pools`` call) and its
    outputs."""

    def __init__(self, groups: Sequence[PoolGroup], weight_rows: int) -> None:
        self.groups = groups
        self.widths = [seg.shape[-1] for seg in groups[0].regrets]
        self.width = sum(self.widths)
        starts = [0]
        for g in groups:
            starts.append(starts[-1] + g.rows)
        self.rows = starts.pop()
        self.starts = starts
        floors = {-np.inf if g.floor is None else g.floor for g in groups}
        #: one floor for the whole batch, or None: then per group (``spans``)
        self.floor: float | None = floors.pop() if len(floors) == 1 else None
        self.spans = [
            (g0, g0 + g.rows, -np.inf if g.floor is None else g.floor, g.single_is_one)
            for g, g0 in zip(groups, starts, strict=True)
        ]
        self.any_single = any(g.single_is_one for g in groups)
        self.weight_rows = weight_rows
        self.out = np.empty(self.rows)
        self.dens = np.empty(self.rows)
        self.kept = np.empty((weight_rows, self.width))


class _Segment:
    """Pools [r0, r1) of a batch, held transposed (W, b) at ``off`` in the scratch buffers."""

    def __init__(self, batch: _Batch, r0: int, r1: int, off: int, s: _Scratch) -> None:
        self.batch, self.r0, self.r1 = batch, r0, r1
        v = s.views(off, batch.width, r1 - r0)
        self.v = v
        self.reg, self.val, self.x, self.w, self.mask = v.reg, v.val, v.x, v.w, v.mask
        self.n = np.empty(0)
        self.rmax = np.empty(0)

    def spans(self) -> list[tuple[int, int, float, bool]]:
        """The batch's groups within [r0, r1): (start, end) relative to r0, floor, single."""
        out = []
        for g0, g1, fl, single in self.batch.spans:
            a, b = max(self.r0, g0), min(self.r1, g1)
            if a < b:
                out.append((a - self.r0, b - self.r0, fl, single))
        return out


def _run(segs: Sequence[_Segment], s: _Prefix, p: float, c: float, eps: float) -> None:
    """Weight and average every pool of ``segs`` (which tile the first ``size`` scratch
    elements): the element-wise steps run once over all of them, the per-pool reductions per
    segment. Bit-identical, pool by pool, to ``weights.pool_weights`` + (lone-entry override)
    + ``weights.weighted_average``: every step is element-wise or within one pool."""
    cap = c + 6.75 / p
    anchor = c - 8.25 / p
    cutoff = c - 17.25 / p
    for g in segs:
        _fill(g)
    freg, fx, fw, fcut, fout = s.reg, s.x, s.w, s.cut, s.out_mask
    np.logical_not(s.mask, out=fout)
    # stats.masked_sample_std of the regrets
    zero, one = detmath._A_ZERO, detmath._A_ONE  # 0-d constants: no scalar conversions
    np.copyto(freg, zero, where=fout)  # reg: the masked regrets from here on
    np.copyto(fx, freg)
    for g in segs:
        g.n = n = np.add.reduce(g.mask, axis=0, dtype=np.float64)  # exact counts
        # n is an exact count: max(n, 1) is where(n > 0, n, 1), max(n - 1, 1) where(n > 1, ...)
        mean = g.v.tree() / np.maximum(n, one)
        np.subtract(g.reg, mean[None, :], out=g.x)
    np.copyto(fx, zero, where=fout)
    fx *= fx
    for g in segs:
        n = g.n
        var = g.v.tree() / np.maximum(n - one, one)
        std = np.where(n > 1, np.sqrt(var), 0.0)
        # normalised regrets and the un-capped maximum (weights.pool_weights)
        g.reg /= (np.abs(std) + eps)[None, :]
        g.rmax = np.maximum.reduce(g.reg, axis=0, where=g.mask, initial=-np.inf)
    np.minimum(freg, cap, out=freg)
    for g in segs:
        shift = g.rmax < anchor
        if shift.any():
            sh = np.broadcast_to(shift[None, :], g.reg.shape)
            np.subtract(g.reg, g.rmax[None, :], out=g.reg, where=sh)
            np.add(g.reg, anchor, out=g.reg, where=sh)
    # weights (weights.weight_from_normalized_regret)
    np.less(freg, cutoff, out=fcut)
    np.subtract(c, freg, out=fx)
    fx *= p
    e = _exp_into(fx, s)
    e += one
    np.divide(p, e, out=fw)
    np.copyto(fw, zero, where=fcut)
    np.copyto(fw, zero, where=fout)
    for g in segs:
        bt = g.batch
        if bt.any_single:
            for a, b, _, single in g.spans():
                if single:
                    lone = np.flatnonzero(g.n[a:b] == 1.0) + a
                    if lone.size:
                        g.w[:, lone] = g.mask[:, lone]
        if g.r0 < bt.weight_rows:
            top = min(g.r1, bt.weight_rows)
            bt.kept[g.r0 : top] = g.w[:, : top - g.r0].T
    # weights.weighted_average
    np.multiply(fw, s.val, out=fx)
    np.equal(fw, zero, out=fcut)
    np.copyto(fx, zero, where=fcut)
    nums = [g.v.tree().copy() for g in segs]
    np.copyto(fx, fw)
    for g, num in zip(segs, nums, strict=True):
        bt = g.batch
        den = g.v.tree()
        bt.dens[g.r0 : g.r1] = den
        if bt.floor is not None:
            np.divide(num, np.maximum(den, bt.floor), out=bt.out[g.r0 : g.r1])
        else:
            for a, b, fl, _ in g.spans():
                np.divide(num[a:b], np.maximum(den[a:b], fl), out=bt.out[g.r0 + a : g.r0 + b])


def average_pools(
    groups: Sequence[PoolGroup],
    p: float,
    c: float,
    epsilon: float,
    weight_rows: int = 0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Weighted average of every pool of every group (in order): returns the values (B,), the
    weight sums (B,) and the weights of the first ``weight_rows`` pools (weight_rows, W).
    Bit-identical, pool by pool, to ``weights.pool_weights`` + (lone-entry override) +
    ``weights.weighted_average``."""
    return average_pools_many([(groups, weight_rows)], p, c, epsilon)[0]


def average_pools_many(
    batches: Sequence[tuple[Sequence[PoolGroup], int]], p: float, c: float, epsilon: float
) -> list[tuple[FloatArray, FloatArray, FloatArray]]:
    """:func:`average_pools` of several independent batches (groups, weight_rows), each of
    its own width.

    Why: at small sizes an epoch's cost is numpy's per-call overhead, not arithmetic; when
    all batches fit in one block together, every element-wise step (about 45 calls, most of
    them the exp kernel) runs once over all of them instead of once per batch. Larger
    batches run block by block as before. Every step is element-wise or within one pool, so
    the bits do not depend on which pools share a pass (tests compare with the reference)."""
    plans = [_Batch(groups, weight_rows) for groups, weight_rows in batches]
    total = sum(b.rows * b.width for b in plans)
    with np.errstate(all="ignore"):
        if total <= BLOCK_ELEMENTS:
            s = _scratch(max(total, 1))
            segs: list[_Segment] = []
            off = 0
            for bt in plans:
                if bt.rows:
                    segs.append(_Segment(bt, 0, bt.rows, off, s))
                    off += bt.rows * bt.width
            if segs:
                _run(segs, s.prefix(total), p, c, epsilon)
        else:
            for bt in plans:
                step = max(1, min(bt.rows, BLOCK_ELEMENTS // max(bt.width, 1)))
                s = _scratch(max(step * bt.width, 1))
                for r0 in range(0, bt.rows, step):
                    r1 = min(bt.rows, r0 + step)
                    seg = _Segment(bt, r0, r1, 0, s)
                    _run([seg], s.prefix((r1 - r0) * bt.width), p, c, epsilon)
    return [(bt.out, bt.dens, bt.kept) for bt in plans]
