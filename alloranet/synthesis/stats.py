"""Fixed-order reductions and the order statistics of spec/synthesis.md section 0.

Why fixed order: a floating-point sum depends on the order of its terms. numpy's ``sum`` is
pairwise with an unrolled block whose shape is an implementation detail of the numpy build and
of the array's memory layout, so no reduction on the consensus path uses it. ``fixed_sum``
instead adds in an explicit pairwise tree written here: the axis is split into halves
[0, h) and [h, 2h) (h = n // 2), added element-wise, an odd last term is added to the end, and
this repeats until one term is left. Every step is a correctly rounded element-wise add, so the
result is a pure function of the inputs' bits, the same on every CPU, and vectorised (a batch
of rows costs a few array passes). Callers sort workers by address first, so a result never
depends on input order. Masked entries contribute an exact ``0.0``.
"""

from __future__ import annotations

import bisect
import itertools
import math

import numpy as np
import numpy.typing as npt

from alloranet.synthesis.errors import SynthesisError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _tree_plan(n: int) -> tuple[tuple[int, bool], ...]:
    """The levels of the tree for n terms: (half, odd) per level."""
    plan = _PLANS.get(n)
    if plan is None:
        levels = []
        m = n
        while m > 1:
            levels.append((m >> 1, bool(m & 1)))
            m >>= 1
        plan = _PLANS[n] = tuple(levels)
    return plan


_PLANS: dict[int, tuple[tuple[int, bool], ...]] = {}


def tree_sum_columns(flat: FloatArray, n: int, b: int) -> FloatArray:
    """:func:`fixed_sum` of b sums of n terms each, stored entry-major in the contiguous 1-D
    ``flat`` (term i of sum j at ``flat[i * b + j]``), in place; returns a view of the b sums.

    Why entry-major: every level of the tree is then one add of two contiguous 1-D halves,
    numpy's cheapest call (a strided 2-D slice add costs several times more per call, which
    is what dominates when the arrays are small)."""
    if n == 0:
        flat[:b] = 0.0
        return flat[:b]
    for h, odd in _tree_plan(n):
        hb = h * b
        np.add(flat[:hb], flat[hb : 2 * hb], out=flat[:hb])
        if odd:
            np.add(flat[hb - b : hb], flat[2 * hb : 2 * hb + b], out=flat[hb - b : hb])
    return flat[:b]


class TreeBuffer:
    """A reusable buffer for :func:`tree_sum_columns` of a fixed shape (n terms, b sums) with
    its level views built once: for the reputer loop, which sums the same shapes ~50 times an
    epoch and where creating the slices would cost more than the adds."""

    def __init__(self, n: int, b: int, flat: FloatArray | None = None) -> None:
        """``flat``: an existing contiguous 1-D buffer of at least max(n, 1) * b elements to
        work in (its first ones), instead of a new one."""
        self.n, self.b = n, b
        size = max(n, 1) * b
        self.flat = np.empty(size) if flat is None else flat[:size]
        self.entries = self.flat.reshape(max(n, 1), b)
        self.ops: list[tuple[FloatArray, FloatArray]] = []
        f = self.flat
        for h, odd in _tree_plan(n):
            hb = h * b
            self.ops.append((f[:hb], f[hb : 2 * hb]))
            if odd:
                self.ops.append((f[hb - b : hb], f[2 * hb : 2 * hb + b]))
        self.result = f[:b]

    def run(self) -> FloatArray:
        """Sum the terms written into ``entries`` (overwritten); returns a view of b sums."""
        if self.n == 0:
            self.result[...] = 0.0
        for out, other in self.ops:
            np.add(out, other, out=out)
        return self.result


def _tree_sum_last_axis(arr: FloatArray, n: int) -> FloatArray:
    """The tree along the last axis with strided slices (long rows: few, large adds)."""
    h = n // 2
    buf = arr[..., :h] + arr[..., h : 2 * h]  # the one allocation; later levels work in place
    if n % 2:
        buf[..., h - 1] += arr[..., 2 * h]
    n = h
    while n > 1:
        h = n // 2
        np.add(buf[..., :h], buf[..., h : 2 * h], out=buf[..., :h])
        if n % 2:
            buf[..., h - 1] += buf[..., 2 * h]
        n = h
    return np.array(buf[..., 0], dtype=np.float64)


#: 1-D sums up to this length run on Python floats (IEEE binary64 adds, the same bits),
#: cheaper than a numpy call per tree level.
_PY_TREE_MAX = 64


def py_tree(v: list[float]) -> float:
    """The tree of the module docstring on a list of Python floats (0.0 for none): the bits
    of :func:`fixed_sum` of the same values, for the small sums of the Python-float paths."""
    n = len(v)
    if n == 0:
        return 0.0
    for h, odd in _tree_plan(n):
        last = v[2 * h] if odd else 0.0
        v = [v[i] + v[i + h] for i in range(h)]
        if odd:
            v[h - 1] = v[h - 1] + last
    return v[0]


def fixed_sum(values: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """Sum along ``axis`` in the explicit pairwise order of the module docstring.

    Short axes (the many small sums of an epoch) are summed entry-major with
    :func:`tree_sum_columns`; long ones in place along the rows. Same tree, same bits."""
    arr = np.asarray(values, dtype=np.float64)
    if axis != -1 and axis != arr.ndim - 1:
        arr = np.moveaxis(arr, axis, -1)
    n = arr.shape[-1]
    lead = arr.shape[:-1]
    if n == 0:
        return np.zeros(lead, dtype=np.float64)
    if n == 1:
        return np.array(arr[..., 0], dtype=np.float64)
    if arr.ndim == 1:
        if n <= _PY_TREE_MAX:
            return np.array(py_tree(arr.tolist()), dtype=np.float64)
        flat = arr.copy()
        return np.array(tree_sum_columns(flat, n, 1)[0], dtype=np.float64)
    if n >= 256:
        return _tree_sum_last_axis(arr, n)
    b = arr.size // n
    flat = np.empty(arr.size)
    flat.reshape(n, b)[...] = arr.reshape(b, n).T
    return tree_sum_columns(flat, n, b).copy().reshape(lead)


def fixed_sum_scalar(values: npt.ArrayLike) -> float:
    """:func:`fixed_sum` of a 1-D sequence, as a Python float."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    n = arr.size
    if 0 < n <= _PY_TREE_MAX:
        return py_tree(arr.tolist())
    return float(fixed_sum(arr))


def masked_sample_std(values: FloatArray, mask: BoolArray) -> FloatArray:
    """Row-wise sample standard deviation (divisor n - 1) over the entries where ``mask``;
    0 for rows with fewer than two entries (Allora's ``StdDev``)."""
    n = np.count_nonzero(mask, axis=-1).astype(np.float64)  # exact integer counts
    outside = ~mask
    with np.errstate(all="ignore"):
        x = np.array(values, dtype=np.float64, copy=True)
        np.copyto(x, 0.0, where=outside)
        mean = fixed_sum(x) / np.where(n > 0, n, 1.0)
        np.subtract(values, mean[..., None], out=x)  # deviations
        np.copyto(x, 0.0, where=outside)
        x *= x
        var = fixed_sum(x) / np.where(n > 1, n - 1.0, 1.0)
    return np.asarray(np.where(n > 1, np.sqrt(var), 0.0), dtype=np.float64)


def sample_std(values: npt.ArrayLike) -> float:
    """Sample std of a 1-D sequence (0 for fewer than two values).

    Up to ``_PY_TREE_MAX`` values on Python floats: the operations of
    :func:`masked_sample_std` in the same order (their sums are :func:`py_tree`), without
    its ~15 numpy calls."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    n = arr.size
    if n > _PY_TREE_MAX:
        return float(masked_sample_std(arr, np.ones(arr.shape, dtype=bool)))
    if n < 2:
        return 0.0
    v: list[float] = arr.tolist()
    mean = py_tree(v) / float(n)
    dev = [x - mean for x in v]
    return math.sqrt(py_tree([d * d for d in dev]) / float(n - 1))


def median(values: npt.ArrayLike) -> float:
    """Median; mean of the two middle values for an even count (Allora's ``Median``)."""
    arr = np.sort(np.asarray(values, dtype=np.float64).ravel())
    n = arr.size
    if n == 0:
        raise SynthesisError("median of no values")
    if n % 2 == 1:
        return float(arr[n // 2])
    return float((arr[n // 2 - 1] + arr[n // 2]) / 2.0)


def quantile(values: npt.ArrayLike, q: float) -> float:
    """Allora's ``GetQuantileOfDecs``: sort descending, position (1 - q)(n - 1), linear
    interpolation between the neighbours."""
    arr = np.sort(np.asarray(values, dtype=np.float64).ravel())[::-1]
    n = arr.size
    if n == 0:
        raise SynthesisError("quantile of no values")
    if n == 1:
        return float(arr[0])
    pos = (1.0 - q) * float(n - 1)
    lower = math.floor(pos)
    if lower >= n - 1:
        return float(arr[n - 1])
    frac = pos - float(lower)
    return float(arr[lower] + frac * (arr[lower + 1] - arr[lower]))


def weighted_percentiles(
    values: npt.ArrayLike, weights: npt.ArrayLike, percentiles: npt.ArrayLike
) -> FloatArray:
    """Allora's ``WeightedPercentile``: sort by value, position of each value = (cumulative
    weight - half its own weight) / total weight, linear interpolation, clamped at the ends."""
    v = np.asarray(values, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    ps = np.asarray(percentiles, dtype=np.float64).ravel() / 100.0
    if v.size == 0:
        raise SynthesisError("weighted percentile of no values")
    if w.shape != v.shape:
        raise SynthesisError(f"{v.size} values but {w.size} weights")
    order = np.argsort(v, kind="stable")
    sv = v[order]
    sw = w[order]
    total = fixed_sum_scalar(sw)
    if not (0.0 < total < math.inf) or not bool(np.all(sw >= 0.0)):
        # an infinite, NaN or negative weight (or an overflowing total) has no positions:
        # (cum - w/2) / total would be NaN, which no interpolation can place
        raise SynthesisError(
            "weighted percentile needs finite, non-negative weights with a positive total"
        )
    cum = np.cumsum(sw)  # a sequential scan: fixed order by construction
    pos = (cum - 0.5 * sw) / total
    pos_list: list[float] = pos.tolist()
    if all(a <= b for a, b in itertools.pairwise(pos_list)):  # ascending, no NaN
        # the usual case: the same interpolation on Python floats (IEEE binary64, the same
        # bits); on ascending positions bisect_right finds what searchsorted does
        return np.array(_interpolate(pos_list, sv.tolist(), ps.tolist()), dtype=np.float64)
    return _interpolate_arrays(pos, sv, ps)


def _interpolate_arrays(pos: FloatArray, sv: FloatArray, ps: FloatArray) -> FloatArray:
    """The clamped linear interpolation of :func:`weighted_percentiles` (any positions)."""
    out = np.empty(ps.shape, dtype=np.float64)
    for i, p in enumerate(ps):
        if p <= pos[0]:
            out[i] = sv[0]
        elif p >= pos[-1]:
            out[i] = sv[-1]
        else:
            hi = int(np.searchsorted(pos, p, side="right"))
            lo = hi - 1
            frac = (p - pos[lo]) / (pos[hi] - pos[lo])
            out[i] = sv[lo] + frac * (sv[hi] - sv[lo])
    return out


def _interpolate(pos: list[float], sv: list[float], ps: list[float]) -> list[float]:
    """The clamped linear interpolation of :func:`weighted_percentiles` for ascending
    positions."""
    out = []
    first, last = pos[0], pos[-1]
    for p in ps:
        if p <= first:
            out.append(sv[0])
        elif p >= last:
            out.append(sv[-1])
        else:
            hi = bisect.bisect_right(pos, p)
            lo = hi - 1
            frac = (p - pos[lo]) / (pos[hi] - pos[lo])
            out.append(sv[lo] + frac * (sv[hi] - sv[lo]))
    return out
