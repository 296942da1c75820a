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

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis import detmath
from alloranet.synthesis.stats import tree_sum_columns

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
    """Reusable flat block buffers for one batch (allocated once per call, reused per block);
    ``view(buf, b)`` is the contiguous (W, b) block of its first W * b elements."""

    def __init__(self, rows: int, width: int) -> None:
        size = rows * width
        self.width = width
        self.reg = np.empty(size)
        self.val = np.empty(size)
        self.mask = np.empty(size, dtype=bool)
        self.out_mask = np.empty(size, dtype=bool)
        self.cut = np.empty(size, dtype=bool)
        self.x = np.empty(size)
        self.w = np.empty(size)
        self.tmp = [np.empty(size) for _ in range(6)]
        self.bits = np.empty(size, dtype=np.int64)

    def view(self, buf: FloatArray, b: int) -> FloatArray:
        return buf[: self.width * b].reshape(self.width, b)

    def view_mask(self, buf: BoolArray, b: int) -> BoolArray:
        return buf[: self.width * b].reshape(self.width, b)


_LOCAL = threading.local()


def _scratch(rows: int, width: int) -> _Scratch:
    """This thread's scratch buffers for (rows, width), kept between calls: blocks of half a
    MiB would otherwise be mmapped, faulted in and unmapped again on every call by glibc's
    default allocator (thousands of page faults per epoch at 1,000 workers). Every buffer is
    fully written before it is read, so reuse cannot change a result."""
    cache: dict[tuple[int, int], _Scratch] | None = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = {}
    key = (rows, width)
    found = cache.get(key)
    if found is None:
        if len(cache) >= 8:  # a handful of shapes per epoch; bound the memory kept
            cache.clear()
        found = cache[key] = _Scratch(rows, width)
    return found


def _fill(
    dst: npt.NDArray[np.generic],
    groups: Sequence[PoolGroup],
    starts: Sequence[int],
    widths: Sequence[int],
    what: str,
    r0: int,
    r1: int,
) -> None:
    """Copy pools [r0, r1)'s ``what`` segments, transposed, into ``dst`` (W, r1 - r0)."""
    for g, g0 in zip(groups, starts, strict=True):
        a, b = max(r0, g0), min(r1, g0 + g.rows)
        if a >= b:
            continue
        c = 0
        for seg, w in zip(getattr(g, what), widths, strict=True):
            part = dst[c : c + w, a - r0 : b - r0]
            if seg is None:  # mask only: the whole segment is in the pool
                part[...] = True
            elif seg.ndim == 1:
                part[...] = seg[:, None]
            else:
                part[...] = seg[a - g0 : b - g0].T
            c += w


def _exp_into(arg: FloatArray, s: _Scratch, size: int) -> FloatArray:
    """:func:`.detmath.exp` of the flat ``arg`` (overwritten) in the scratch buffers: the
    identical operation sequence of its in-range fast path; any other block goes through
    ``exp`` itself."""
    lo_x, hi_x = np.minimum.reduce(arg), np.maximum.reduce(arg)  # np.min/np.max, unwrapped
    if not (lo_x >= -700.0 and hi_x <= detmath._EXP_OVERFLOW):
        return detmath.exp(arg)
    k, hi, lo, r, t, c = (x[:size] for x in s.tmp)
    np.multiply(arg, detmath._INV_LN2, out=k)
    k += 0.5
    np.floor(k, out=k)
    np.multiply(k, detmath._LN2_HI, out=hi)
    np.subtract(arg, hi, out=hi)
    np.multiply(k, detmath._LN2_LO, out=lo)
    np.subtract(hi, lo, out=r)
    np.multiply(r, r, out=t)
    np.multiply(t, detmath._P5, out=c)
    c += detmath._P4
    c *= t
    c += detmath._P3
    c *= t
    c += detmath._P2
    c *= t
    c += detmath._P1
    c *= t
    np.subtract(r, c, out=c)
    y = t
    np.multiply(r, c, out=y)
    den = r
    np.subtract(2.0, c, out=den)
    y /= den
    np.subtract(lo, y, out=y)
    y -= hi
    np.subtract(1.0, y, out=y)
    bits = s.bits[:size]
    np.copyto(bits, k, casting="unsafe")
    bits += 1022
    bits <<= 52
    y *= bits.view(np.float64)
    y *= 2.0
    return y


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
    widths = [seg.shape[-1] for seg in groups[0].regrets]
    width = sum(widths)
    starts = [0]
    for g in groups:
        starts.append(starts[-1] + g.rows)
    rows = starts.pop()
    floors = {-np.inf if g.floor is None else g.floor for g in groups}
    floor: FloatArray | float
    if len(floors) == 1:
        floor = floors.pop()
    else:
        floor = np.concatenate(
            [np.full(g.rows, -np.inf if g.floor is None else g.floor) for g in groups]
        )
    any_single = any(g.single_is_one for g in groups)
    single = (
        np.concatenate([np.full(g.rows, g.single_is_one) for g in groups]) if any_single else None
    )
    out = np.empty(rows)
    dens = np.empty(rows)
    kept = np.empty((weight_rows, width))
    if rows == 0:
        return out, dens, kept
    step = max(1, min(rows, BLOCK_ELEMENTS // max(width, 1)))
    s = _scratch(step, width)
    cap = c + 6.75 / p
    anchor = c - 8.25 / p
    cutoff = c - 17.25 / p
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        b = r1 - r0
        size = b * width
        reg, val, x = s.view(s.reg, b), s.view(s.val, b), s.view(s.x, b)
        mask = s.view_mask(s.mask, b)
        _fill(reg, groups, starts, widths, "regrets", r0, r1)
        _fill(val, groups, starts, widths, "values", r0, r1)
        _fill(mask, groups, starts, widths, "mask", r0, r1)
        freg, fx, fw, fcut = s.reg[:size], s.x[:size], s.w[:size], s.cut[:size]
        fout = s.out_mask[:size]
        np.logical_not(s.mask[:size], out=fout)
        with np.errstate(all="ignore"):
            # stats.masked_sample_std of the regrets
            n = np.add.reduce(mask, axis=0, dtype=np.float64)  # exact counts
            np.copyto(freg, 0.0, where=fout)  # reg: the masked regrets from here on
            np.copyto(fx, freg)
            mean = tree_sum_columns(fx, width, b) / np.where(n > 0, n, 1.0)
            np.subtract(reg, mean[None, :], out=x)
            np.copyto(fx, 0.0, where=fout)
            fx *= fx
            var = tree_sum_columns(fx, width, b) / np.where(n > 1, n - 1.0, 1.0)
            std = np.where(n > 1, np.sqrt(var), 0.0)
            # normalised regrets, the un-capped maximum, weights (weights.pool_weights)
            reg /= (np.abs(std) + epsilon)[None, :]
            rmax = np.maximum.reduce(reg, axis=0, where=mask, initial=-np.inf)
            np.minimum(freg, cap, out=freg)
            shift = rmax < anchor
            if shift.any():
                sh = np.broadcast_to(shift[None, :], reg.shape)
                np.subtract(reg, rmax[None, :], out=reg, where=sh)
                np.add(reg, anchor, out=reg, where=sh)
            np.less(freg, cutoff, out=fcut)
            np.subtract(c, freg, out=fx)
            fx *= p
            e = _exp_into(fx, s, size)
            e += 1.0
            np.divide(p, e, out=fw)
            np.copyto(fw, 0.0, where=fcut)
            np.copyto(fw, 0.0, where=fout)
            w = s.view(s.w, b)
            if single is not None:
                lone = single[r0:r1] & (n == 1.0)
                if lone.any():
                    w[:, lone] = mask[:, lone]
            if r0 < weight_rows:
                top = min(r1, weight_rows)
                kept[r0:top] = w[:, : top - r0].T
            # weights.weighted_average
            np.multiply(fw, s.val[:size], out=fx)
            np.equal(fw, 0.0, out=fcut)
            np.copyto(fx, 0.0, where=fcut)
            num = tree_sum_columns(fx, width, b).copy()
            np.copyto(fx, fw)
            den = tree_sum_columns(fx, width, b)
            dens[r0:r1] = den
            fl = floor if isinstance(floor, float) else floor[r0:r1]
            np.divide(num, np.maximum(den, fl), out=out[r0:r1])
    return out, dens, kept
