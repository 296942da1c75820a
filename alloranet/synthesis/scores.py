"""Scores (spec/synthesis.md 4.1-4.4): inferers, forecasters, reputers (consensus distance,
listening coefficients by the bounded finite-difference gradient loop), score EMAs.

The reputer loop evaluates the M + 1 coefficient vectors of one iteration (the current one and
one perturbation per reputer) as one (M + 1, M) batch, so an iteration is a few matrix passes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alloranet.synthesis.ema import ema
from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.losses import LossReports
from alloranet.synthesis.scratch import cached
from alloranet.synthesis.stats import TreeBuffer, fixed_sum, py_tree

#: Above this many Gram products the tensors are built reputer by reputer (bounded memory).
_GRAM_AT_ONCE = 1 << 18

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@functools.lru_cache(maxsize=32)
def _upper_pairs(m: int) -> tuple[IntArray, IntArray]:
    """``np.triu_indices(m)`` (row-major pairs p <= q), cached read-only: it costs more than
    the rest of a small Gram build."""
    iu, ju = np.triu_indices(m)
    iu.flags.writeable = False
    ju.flags.writeable = False
    return iu, ju


class _GramScratch:
    """This thread's buffers for a small Gram build of M reputers and D values, kept between
    calls: at 32 x 6 the products are ~165 KiB, which glibc's default allocator mmaps and
    unmaps on every call (~90 page faults per epoch, more than the arithmetic). Every
    element is written before it is read, so reuse cannot change a result."""

    def __init__(self, m: int, d: int) -> None:
        npair = m * (m + 1) // 2
        self.diff = np.empty((m, m, d))
        self.prods = np.empty((npair, m + 1, d))
        self.tree = TreeBuffer(d, npair * (m + 1))


def _gram_scratch(m: int, d: int) -> _GramScratch:
    return cached("gram", (m, d), lambda: _GramScratch(m, d), limit=4)


def inferer_scores(losses_oneout_inferer: FloatArray, combined_loss: float) -> FloatArray:
    """4.1: T_j = L^{-j} - L; zero for a lone inferer."""
    out = np.asarray(losses_oneout_inferer - combined_loss, dtype=np.float64)
    if out.size == 1:
        return np.zeros(1)
    return out


def forecaster_scores(
    losses_oneout_forecaster: FloatArray,
    losses_onein: FloatArray,
    combined_loss: float,
    naive_loss: float,
) -> FloatArray:
    """4.2: T_k = f T+_k + (1 - f) T-_k with f = 1 / 2^(F - 1); zero for a lone forecaster."""
    k = losses_oneout_forecaster.size
    if k <= 1:
        return np.zeros(k)
    t_minus = losses_oneout_forecaster - combined_loss
    t_plus = naive_loss - losses_onein
    n_values = int(np.count_nonzero(~np.isnan(losses_oneout_forecaster)))
    f = float(np.ldexp(1.0, -(n_values - 1))) if n_values >= 1 else 1.0
    return np.asarray(f * t_plus + (1.0 - f) * t_minus, dtype=np.float64)


def reputer_vectors(reports: LossReports) -> FloatArray:
    """4.3 step 2: each reputer's values in Allora's ``ExtractValues`` order (M, D)."""
    m = reports.stakes.size
    return np.concatenate(
        [
            reports.combined[:, None],
            reports.naive[:, None],
            reports.inferer,
            reports.forecaster,
            reports.oneout_inferer_forecaster.reshape(m, -1),
            reports.oneout_inferer,
            reports.oneout_forecaster,
            reports.onein,
        ],
        axis=1,
    )


@dataclass(frozen=True)
class ReputerScoring:
    """Output of the reputer calibration."""

    scores: FloatArray  # (M,) with the coefficients at the start of the last iteration
    coefficients: FloatArray  # (M,) updated listening coefficients (stored for next time)
    adjusted_stakes: FloatArray  # (M,) with the coefficients the scores were computed with


def adjusted_stakes(coefficients: FloatArray, stakes: FloatArray) -> FloatArray:
    """Row-wise min(M a_m S_m / sum a S, 1) for a batch (B, M) of coefficient vectors."""
    a = np.atleast_2d(coefficients)
    m = a.shape[-1]
    prod = a * stakes[None, :]
    total = fixed_sum(prod)
    with np.errstate(all="ignore"):
        adj = float(m) * prod / total[:, None]
    return np.asarray(np.minimum(adj, 1.0), dtype=np.float64)


def consensus_scores(
    x: FloatArray, coefficients: FloatArray, stakes: FloatArray, eps_reputer: float, eps_div: float
) -> FloatArray:
    """Scores (B, M) for a batch of coefficient vectors: distance of each reputer's vector to
    the adjusted-stake-weighted consensus, NaN gaps replaced by the component's lowest value."""
    present = ~np.isnan(x)  # (M, D)
    adj = adjusted_stakes(coefficients, stakes)  # (B, M)
    x0 = np.where(present, x, 0.0)
    num = fixed_sum(np.where(present[None], adj[:, :, None] * x0[None], 0.0), axis=1)  # (B, D)
    den = fixed_sum(np.where(present[None], adj[:, :, None], 0.0), axis=1)
    with np.errstate(all="ignore"):
        cons = num / den
    lowest = np.min(np.where(present, x, np.inf), axis=0)  # (D,)
    filled = np.where(present, x, lowest[None, :])
    diff = filled[None, :, :] - cons[:, None, :]  # (B, M, D)
    dist = np.sqrt(fixed_sum(diff * diff))  # (B, M)
    norm = np.sqrt(fixed_sum(cons * cons))  # (B,)
    norm = np.where(norm == 0.0, eps_div, norm)
    return np.asarray(1.0 / (dist / norm[:, None] + eps_reputer), dtype=np.float64)


def _gram_tensor(x: FloatArray) -> FloatArray:
    """The Gram terms of reports without gaps, (M * M, M + 1): entry (p * M + q, r) is
    (x_r - x_p).(x_r - x_q) for r < M and x_p.x_q for r = M, each a fixed-order sum over D.

    Why: with no NaN the consensus is C_b = sum_p w_bp x_p (w = adjusted stakes / their
    sum), so |x_m - C_b|^2 = sum_pq w_bp w_bq (x_m - x_p).(x_m - x_q) and |C_b|^2 = sum_pq
    w_bp w_bq x_p.x_q: the tensors are built once (O(M^3 D)), then every coefficient vector
    of every iteration costs O(M^3) instead of O(M D). The differences are formed before the
    products, so near-agreeing reputers lose no precision to cancellation."""
    m = x.shape[0]
    iu, ju = _upper_pairs(m)  # the Gram tensors are symmetric in (p, q)
    npair = iu.size
    d = x.shape[1]
    mm = m * m
    if d >= 2 and (m + 1) * npair * d <= _GRAM_AT_ONCE:
        # small reports: every product at once into reused buffers, row (i, r) of pair
        # i = (p, q) (triu order) = (x_r - x_p) * (x_r - x_q) term by term for r < M and
        # x_p * x_q for r = M (one broadcast multiply per p, contiguous over D), then one
        # entry-major batch of fixed-order sums over D (stats.TreeBuffer: the tree of
        # stats.fixed_sum as contiguous 1-D adds); the sums of pair i are gh_t's row p M + q
        # and, by symmetry, row q M + p
        buf = _gram_scratch(m, d)
        diff, prods = buf.diff, buf.prods
        np.subtract(x[None, :, :], x[:, None, :], out=diff)  # diff[p, r] = x_r - x_p
        off = 0
        for p_ in range(m):
            w_ = m - p_
            np.multiply(diff[p_ : p_ + 1], diff[p_:], out=prods[off : off + w_, :m])
            np.multiply(x[p_ : p_ + 1], x[p_:], out=prods[off : off + w_, m])
            off += w_
        buf.tree.entries[...] = prods.reshape(npair * (m + 1), d).T
        upper = buf.tree.run().reshape(npair, m + 1)
        gh_t = np.empty((mm, m + 1))
        gh_t[iu * m + ju] = upper
        gh_t[ju * m + iu] = upper
        return gh_t
    g = np.empty((m, m, m))
    h = np.empty((m, m))
    if d < 2:
        # D = 0 or 1: a sum of at most one term (stats.fixed_sum)
        diffs = x[:, None, :] - x[None, :, :]
        prods_ = np.concatenate(
            [(diffs[:, iu, :] * diffs[:, ju, :]).reshape(m * npair, d), x[iu] * x[ju]]
        )
        sums = fixed_sum(prods_)
        upper_ = sums[: m * npair].reshape(m, npair)
        g[:, iu, ju] = upper_
        g[:, ju, iu] = upper_
        hu = sums[m * npair :]
    else:
        # long reports: each sum of products is formed straight into its tree's first level
        # (prod[:half] + prod[half:2 half], odd last product added to the end, exactly as
        # fixed_sum's first level) in a buffer that stays in L2, then the rest of the tree
        half = d // 2
        tree = TreeBuffer(half, 1)
        lvl = tree.flat
        tmp = np.empty(half)

        def dot(u: FloatArray, v: FloatArray) -> float:
            np.multiply(u[:half], v[:half], out=lvl)
            np.multiply(u[half : 2 * half], v[half : 2 * half], out=tmp)
            np.add(lvl, tmp, out=lvl)
            if d % 2:
                lvl[half - 1] += u[2 * half] * v[2 * half]
            return float(tree.run()[0])

        upper_all = np.empty((m, npair))
        diff = np.empty((m, d))
        for r in range(m):  # loops over reputers and their pairs (M is small), not workers
            np.subtract(x[r][None, :], x, out=diff)  # x_r - x_p
            for i, (p_, q_) in enumerate(zip(iu, ju, strict=True)):
                upper_all[r, i] = dot(diff[p_], diff[q_])
        g[:, iu, ju] = upper_all
        g[:, ju, iu] = upper_all
        hu = np.array([dot(x[p_], x[q_]) for p_, q_ in zip(iu, ju, strict=True)])
    h[iu, ju] = hu
    h[ju, iu] = hu
    # (pq, M + 1): rows 0..M-1 of each pq entry are the distances' terms, row M the norm's
    return np.ascontiguousarray(np.concatenate([g.reshape(m, mm), h.reshape(1, mm)]).T)


class _ScoreBuffers:
    """The reused arrays of one batch size of the Gram scorer (see ``_gram_scorer``), with
    their reshaped views and full-size constants built once: at M = 5 a view or a Python
    scalar operand costs a noticeable part of a numpy call, and the scorer runs ten times
    an epoch."""

    def __init__(self, m: int, b: int) -> None:
        mm = m * m
        self.total = TreeBuffer(m, b)
        self.adj_sum = TreeBuffer(m, b)
        self.both = TreeBuffer(mm, (m + 1) * b)
        self.adj = np.empty((m, b))
        self.adj0 = self.adj[:, 0]
        self.w = np.empty((m, b))
        self.w_p = self.w[:, None, :]
        self.w_q = self.w[None, :, :]
        self.ww = np.empty((m, m, b))
        self.ww3 = self.ww.reshape(mm, 1, b)
        self.both3 = self.both.entries.reshape(mm, m + 1, b)
        rows = self.both.result.reshape(m + 1, b)
        self.dist = rows[:m]
        self.norm = rows[m]
        self.norm_zero = np.empty(b, dtype=bool)
        self.t = np.empty((m, b))
        self.fm = np.full((m, b), float(m))
        self.one = np.ones((m, b))
        self.zero = np.zeros((m + 1) * b)
        # the gradient loop's own buffers (used with b = M + 1)
        self.perf = TreeBuffer(m, b)
        self.frac = TreeBuffer(m, 1)


def _score_buffers(m: int, b: int) -> _ScoreBuffers:
    """This thread's scorer buffers for M reputers and batches of b, kept between calls
    (:mod:`.scratch`; building the sum trees' level views costs more than a small run);
    callers copy what they keep."""
    return cached("score", (m, b), lambda: _ScoreBuffers(m, b))


def _gram_scorer(
    gh_t: FloatArray, stakes: FloatArray, eps_reputer: float, eps_div: float
) -> Callable[[FloatArray], tuple[FloatArray, FloatArray]]:
    """Fast exact-arithmetic-order scorer for reports without gaps (the usual case), on the
    terms of :func:`_gram_tensor`."""
    m = stakes.size
    col = stakes[:, None]
    gh3 = gh_t[:, :, None]  # (pq, M + 1, 1)

    def score(coefficients: FloatArray) -> tuple[FloatArray, FloatArray]:
        # Everything is held transposed, (M, B): the row sums over reputers are then
        # entry-major trees (stats.tree_sum_columns), a few cheap 1-D adds each. Results
        # live in buffers reused by the next call of the same batch size (the caller copies
        # what it keeps); the caller sets the floating-point error state (np.errstate).
        b = coefficients.shape[0]
        buf = _score_buffers(m, b)
        prod = np.multiply(col, coefficients.T, out=buf.total.entries)  # a_m S_m
        adj = np.multiply(buf.fm, prod, out=buf.adj)
        adj /= buf.total.run()
        np.minimum(adj, buf.one, out=adj)
        np.copyto(buf.adj_sum.entries, adj)
        np.divide(adj, buf.adj_sum.run(), out=buf.w)
        np.multiply(buf.w_p, buf.w_q, out=buf.ww)  # (p, q, B)
        np.multiply(gh3, buf.ww3, out=buf.both3)
        # rows 0..M-1: squared distances, row M: squared norm of the consensus; a sum that
        # rounding left below zero counts as zero (none is -0.0: every sum has the +0 or
        # positive p = q terms, so one maximum over all rows equals the per-row ones)
        both = buf.both.run()
        np.maximum(both, buf.zero, out=both)
        np.sqrt(both, out=both)
        norm = buf.norm
        np.equal(norm, 0.0, out=buf.norm_zero)
        np.copyto(norm, eps_div, where=buf.norm_zero)
        t = np.divide(buf.dist, norm, out=buf.t)
        t += eps_reputer
        np.divide(1.0, t, out=t)
        return t, buf.adj0

    return score


#: Up to this many reputers the gradient loop's per-reputer steps (perturbations, gradient,
#: clip, stake fraction, step size) run on Python floats: at M = 5 each is a few hundred
#: nanoseconds there against ~1 us per numpy call, and the loop makes ~20 such steps per
#: iteration. IEEE-754 +, -, *, / are correctly rounded in both, so the bits are the same
#: (tests compare the two loops); larger M keeps the array loop.
_PY_LOOP_MAX = 32


def _clip01(x: float) -> float:
    """``np.clip(x, 0.0, 1.0)`` of one value; signed zeros and NaN go through numpy itself
    (which zero numpy returns for -0.0 is its business, not ours)."""
    if 0.0 < x < 1.0:
        return x
    if x >= 1.0:
        return 1.0
    if x < 0.0:
        return 0.0
    return float(np.array([x]).clip(0.0, 1.0)[0])


def _div(a: float, b: float) -> float:
    """a / b with numpy's IEEE result for b == 0 (inf or NaN) instead of Python's exception
    (callers are inside ``np.errstate(all="ignore")``)."""
    if b == 0.0:
        return float(np.float64(a) / np.float64(b))
    return a / b


class _GradientLoop:
    """The bounded finite-difference loop of 4.3 over a scorer; two implementations of the
    same operation sequence (:meth:`run_arrays` is the reference, :meth:`run_floats` the
    small-M path) that must give the same bits."""

    def __init__(
        self,
        scorer: Callable[[FloatArray], tuple[FloatArray, FloatArray]],
        stakes: FloatArray,
        total_stake: float,
        learning_rate: float,
        min_stake_fraction: float,
    ) -> None:
        self.scorer = scorer
        self.s = stakes
        self.total_stake = total_stake
        self.lr = learning_rate
        self.msf = min_stake_fraction

    def run_arrays(
        self, a: FloatArray, max_iters: int, threshold: float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The loop on arrays: returns the coefficients, the scores (M, B) of the last batch
        (column 0: the coefficients scored) and the adjusted stakes of that column."""
        s, lr, msf, total_stake = self.s, self.lr, self.msf, self.total_stake
        m = s.size
        batch = np.empty((m + 1, m))
        perturbed = batch[1:].reshape(-1)[:: m + 1]  # the entries (i + 1, i)
        s_col = s[:, None]
        f_old: float | None = None
        loop_buf = _score_buffers(m, m + 1)
        t_perf, t_frac = loop_buf.perf, loop_buf.frac
        g_max = 1.0
        it = 0
        while it < max_iters and g_max >= threshold:
            delta = np.where(a == 1.0, -0.001, 0.001)
            batch[...] = a
            np.add(a, delta, out=perturbed)
            t, adj_scored = self.scorer(batch)
            np.multiply(s_col, t, out=t_perf.entries)
            perf = t_perf.run()  # (M + 1,)
            grad = (1.0 - perf[0] / perf[1:]) / delta
            a_new = (a + lr * grad).clip(0.0, 1.0)  # np.clip without its wrapper
            if f_old is None:
                f_old = float(fixed_sum(a * s)) / total_stake
            np.multiply(a_new, s, out=t_frac.flat)
            f_new = float(t_frac.run()[0]) / total_stake
            if f_new < msf:
                if f_new == f_old:
                    break
                a_new = a + (a_new - a) * (msf - f_old) / (f_new - f_old)
                f_next = None  # rescaled: recompute its stake fraction next time
            else:
                f_next = f_new  # the same sum of the same vector
            g_max = float(np.abs(a_new - a).max()) / lr  # np.max, unwrapped
            a = a_new
            f_old = f_next
            it += 1
        return a, t, adj_scored

    def run_floats(
        self, a_arr: FloatArray, max_iters: int, threshold: float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """:meth:`run_arrays` with every per-reputer step on Python floats (the scorer and
        the performance sums stay on arrays): element by element the same operations in
        the same order, the stake fractions by :func:`.stats.py_tree` (the tree of
        ``fixed_sum``), so the same bits."""
        s, lr, msf, total_stake = self.s, self.lr, self.msf, self.total_stake
        m = s.size
        a: list[float] = a_arr.tolist()
        sl: list[float] = s.tolist()
        batch = np.empty((m + 1, m))
        perturbed = batch[1:].reshape(-1)[:: m + 1]  # the entries (i + 1, i)
        s_col = s[:, None]
        t_perf = _score_buffers(m, m + 1).perf
        f_old: float | None = None
        g_max = 1.0
        it = 0
        while it < max_iters and g_max >= threshold:
            delta = [-0.001 if v == 1.0 else 0.001 for v in a]
            batch[...] = a
            perturbed[...] = [v + d for v, d in zip(a, delta, strict=True)]
            t, adj_scored = self.scorer(batch)
            np.multiply(s_col, t, out=t_perf.entries)
            perf: list[float] = t_perf.run().tolist()
            p0 = perf[0]
            a_new = []
            for v, p, d in zip(a, perf[1:], delta, strict=True):
                x = v + lr * ((1.0 - (p0 / p if p != 0.0 else _div(p0, p))) / d)
                a_new.append(x if 0.0 < x < 1.0 else _clip01(x))  # inlined common cases
            if f_old is None:
                f_old = py_tree([v * w for v, w in zip(a, sl, strict=True)]) / total_stake
            f_new = py_tree([v * w for v, w in zip(a_new, sl, strict=True)]) / total_stake
            if f_new < msf:
                if f_new == f_old:
                    break
                c1, c2 = msf - f_old, f_new - f_old
                a_new = [v + (u - v) * c1 / c2 for v, u in zip(a, a_new, strict=True)]
                f_next = None  # rescaled: recompute its stake fraction next time
            else:
                f_next = f_new  # the same sum of the same vector
            step = [abs(u - v) for u, v in zip(a_new, a, strict=True)]
            g_top = step[0]
            for x in step:
                if x > g_top or x != x:  # np.max: the largest, NaN if any
                    g_top = x
                    if x != x:
                        break
            g_max = g_top / lr
            a = a_new
            f_old = f_next
            it += 1
        return np.array(a, dtype=np.float64), t, adj_scored


def reputer_scores(
    reports: LossReports,
    previous_coefficients: FloatArray,
    *,
    eps_reputer: float = 0.01,
    eps_div: float = 1e-7,
    learning_rate: float = 0.05,
    max_iters: int = 10,
    max_gradient_threshold: float = 0.001,
    min_stake_fraction: float = 0.5,
) -> ReputerScoring:
    """4.3: scores and listening coefficients by the bounded gradient loop."""
    x = reputer_vectors(reports)
    s = np.asarray(reports.stakes, dtype=np.float64)
    m = s.size
    a = np.asarray(previous_coefficients, dtype=np.float64).copy()
    total_stake = float(fixed_sum(s))
    if m > 0 and not total_stake > 0.0:  # the loop divides by it (NaN stakes fail here too)
        raise SynthesisError(f"reputer scores: total reputer stake is {total_stake}, not > 0")
    scorer: Callable[[FloatArray], tuple[FloatArray, FloatArray]]  # -> ((M, B), adjusted)
    if x.shape[0] > 0 and not np.isnan(x).any():
        gh_t = _gram_tensor(x)
        scorer = _gram_scorer(gh_t, s, eps_reputer, eps_div)
    else:

        def scorer(coefficients: FloatArray) -> tuple[FloatArray, FloatArray]:
            batch = np.atleast_2d(coefficients)
            t = consensus_scores(x, batch, s, eps_reputer, eps_div)
            return np.ascontiguousarray(t.T), adjusted_stakes(batch[:1], s)[0]

    # Every scorer call also returns the adjusted stakes of its first row, which is the
    # coefficient vector being scored: the final adjusted stakes come from the last call.
    # Scorers return the scores transposed, (M, B): column b is coefficient vector b's; the
    # returned arrays may be reused by the next call, so only the last ones are copied.
    loop = _GradientLoop(scorer, s, total_stake, learning_rate, min_stake_fraction)
    with np.errstate(all="ignore"):
        if not (max_iters > 0 and max_gradient_threshold <= 1.0):
            # the loop will not run: score the coefficients as they are (otherwise row 0 of
            # its first batch scores them, with the same bits: every row is independent)
            t, adj_scored = scorer(a[None])
        elif 1 <= m <= _PY_LOOP_MAX:
            a, t, adj_scored = loop.run_floats(a, max_iters, max_gradient_threshold)
        else:
            a, t, adj_scored = loop.run_arrays(a, max_iters, max_gradient_threshold)
    scores = t[:, 0].copy()
    return ReputerScoring(
        scores=np.asarray(scores, dtype=np.float64),
        coefficients=a,
        adjusted_stakes=np.array(adj_scored, dtype=np.float64),
    )


def score_emas(alpha: float, scores: FloatArray, previous: FloatArray) -> FloatArray:
    """4.4: EMA of scores; NaN previous (first time) takes the score itself."""
    prev = np.where(np.isnan(previous), scores, previous)
    return ema(alpha, scores, prev)
