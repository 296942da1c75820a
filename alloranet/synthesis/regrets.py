"""Regrets (spec/synthesis.md 2.1) and the topic's initial regret for newcomers (2.2).

The stored state of a topic is :class:`RegretState`: the nine families as arrays over sorted
inferer and forecaster addresses, NaN where a worker (or pair) has no regret yet. ``aligned``
projects it onto one round's workers, filling the gaps with the topic's initial regret, which
is exactly what Allora's ``Get*NetworkRegret`` returns for a missing entry.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from alloranet import codec
from alloranet.synthesis.ema import ema
from alloranet.synthesis.errors import SynthesisError, require_sorted_unique
from alloranet.synthesis.inference import InferenceRegrets
from alloranet.synthesis.losses import LossArrays
from alloranet.synthesis.scratch import cached
from alloranet.synthesis.stats import quantile, sample_std

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: (family, row axis, column axis) with "i" = inferers, "f" = forecasters, "" = a vector.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("inferer", "i", ""),
    ("forecaster", "f", ""),
    ("naive", "i", ""),
    ("oneout_inferer_inferer", "i", "i"),
    ("oneout_inferer_forecaster", "i", "f"),
    ("oneout_forecaster_inferer", "f", "i"),
    ("oneout_forecaster_forecaster", "f", "f"),
    ("onein_inferer", "f", "i"),
    ("onein_self", "f", ""),
)


def _index(
    stored: tuple[str, ...], wanted: tuple[str, ...]
) -> tuple[npt.NDArray[np.intp], BoolArray]:
    """Positions of ``wanted`` in sorted ``stored`` and whether each was found."""
    if not stored:
        return np.zeros(len(wanted), dtype=np.intp), np.zeros(len(wanted), dtype=bool)
    s = np.asarray(stored)
    w = np.asarray(wanted) if wanted else np.zeros(0, dtype=s.dtype)
    pos = np.searchsorted(s, w)
    pos = np.minimum(pos, len(stored) - 1)
    return pos.astype(np.intp), np.asarray(s[pos] == w, dtype=bool)


@dataclass(frozen=True)
class RegretState:
    """A topic's regrets: every family over its own sorted address sets (NaN = no entry)."""

    inferers: tuple[str, ...]
    forecasters: tuple[str, ...]
    regrets: InferenceRegrets
    initial_regret: float = 0.0

    @staticmethod
    def empty(initial_regret: float = 0.0) -> RegretState:
        z1 = np.zeros(0)
        z2 = np.zeros((0, 0))
        arrays = {name: (z1 if col == "" else z2) for name, _, col in FAMILIES}
        return RegretState((), (), InferenceRegrets(**arrays), initial_regret)

    def _axis(self, axis: str) -> tuple[str, ...]:
        return self.inferers if axis == "i" else self.forecasters

    def aligned(self, inferers: tuple[str, ...], forecasters: tuple[str, ...]) -> InferenceRegrets:
        """Regrets of this round's workers; missing entries take the initial regret."""
        return self.project(inferers, forecasters, self.initial_regret)

    def project(
        self, inferers: tuple[str, ...], forecasters: tuple[str, ...], fill: float
    ) -> InferenceRegrets:
        """Every family re-indexed onto the given address sets, gaps filled with ``fill``."""
        require_sorted_unique(inferers, "inferer")
        require_sorted_unique(forecasters, "forecaster")
        if inferers == self.inferers and forecasters == self.forecasters:
            # the usual case: the same workers as stored, no re-indexing needed; all nine
            # families filled as one flat vector (one pass instead of one per family)
            arrays = [getattr(self.regrets, name) for name, _, _ in FAMILIES]
            flat = np.concatenate([a.ravel() for a in arrays])
            np.copyto(flat, fill, where=np.isnan(flat))
            filled: dict[str, FloatArray] = {}
            pos = 0
            for (name, _, _), a in zip(FAMILIES, arrays, strict=True):
                filled[name] = flat[pos : pos + a.size].reshape(a.shape)
                pos += a.size
            return InferenceRegrets(**filled)
        want = {"i": inferers, "f": forecasters}
        idx = {a: _index(self._axis(a), want[a]) for a in ("i", "f")}
        out: dict[str, FloatArray] = {}
        for name, row, col in FAMILIES:
            src = getattr(self.regrets, name)
            rpos, rok = idx[row]
            if col == "":
                vals = src[rpos] if src.size else np.zeros(len(rpos))
                out[name] = np.where(rok, vals, fill)
            else:
                cpos, cok = idx[col]
                vals = src[np.ix_(rpos, cpos)] if src.size else np.zeros((len(rpos), len(cpos)))
                ok = rok[:, None] & cok[None, :]
                out[name] = np.where(ok, vals, fill)
            out[name] = np.where(np.isnan(out[name]), fill, out[name])
        return InferenceRegrets(**out)

    def stored_mask(
        self, inferers: tuple[str, ...], forecasters: tuple[str, ...]
    ) -> InferenceRegrets:
        """1.0 where a stored entry exists for this round's workers, else 0.0."""
        proj = self.project(inferers, forecasters, np.nan)
        return InferenceRegrets(
            **{f.name: (~np.isnan(getattr(proj, f.name))).astype(np.float64) for f in fields(proj)}
        )

    def to_wire(self) -> tuple[codec.Value, ...]:
        """(inferers, forecasters, initial_regret, per family (values, present-bitmap))."""
        fams: list[codec.Value] = []
        for name, _, _ in FAMILIES:
            arr = np.asarray(getattr(self.regrets, name), dtype=np.float64)
            present = ~np.isnan(arr)
            fams.append(
                (
                    tuple(float(v) for v in np.where(present, arr, 0.0).ravel()),
                    np.packbits(present.ravel()).tobytes(),
                )
            )
        return (self.inferers, self.forecasters, float(self.initial_regret), tuple(fams))

    @staticmethod
    def from_wire(value: codec.Value) -> RegretState:
        t = codec.expect_tuple(value, "regret state", 4)
        inferers = tuple(
            codec.expect_str(a, "inferer") for a in codec.expect_tuple(t[0], "inferers")
        )
        forecasters = tuple(
            codec.expect_str(a, "forecaster") for a in codec.expect_tuple(t[1], "forecasters")
        )
        require_sorted_unique(inferers, "inferer")
        require_sorted_unique(forecasters, "forecaster")
        initial = codec.expect_float(t[2], "initial regret")
        fams = codec.expect_tuple(t[3], "families", len(FAMILIES))
        size = {"i": len(inferers), "f": len(forecasters), "": 1}
        out: dict[str, FloatArray] = {}
        for (name, row, col), fam in zip(FAMILIES, fams, strict=True):
            pair = codec.expect_tuple(fam, name, 2)
            vals = codec.expect_tuple(pair[0], name)
            n = size[row] * size[col]
            if len(vals) != n:
                raise SynthesisError(f"regret family {name}: expected {n} values, got {len(vals)}")
            arr = np.array([codec.expect_float(v, name) for v in vals], dtype=np.float64)
            bits = codec.expect_bytes(pair[1], name)
            present = np.unpackbits(np.frombuffer(bits, dtype=np.uint8), count=n).astype(bool)
            arr = np.where(present, arr, np.nan)
            out[name] = arr if col == "" else arr.reshape(size[row], size[col])
        return RegretState(inferers, forecasters, InferenceRegrets(**out), initial)


def compute_regret_arrays(
    losses: LossArrays, previous: InferenceRegrets, alpha: float
) -> InferenceRegrets:
    """2.1: R <- alpha (L_A - L_B) + (1 - alpha) R_prev for every family, NaN where a loss is
    missing. ``previous`` is aligned to the same workers (gaps = initial regret)."""
    L = losses

    def upd(ref: npt.ArrayLike, worker: npt.ArrayLike, prev: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore"):
            delta = np.asarray(ref, dtype=np.float64) - np.asarray(worker, dtype=np.float64)
        return ema(alpha, delta, prev)

    return InferenceRegrets(
        inferer=upd(L.combined, L.inferer, previous.inferer),
        forecaster=upd(L.combined, L.forecaster, previous.forecaster),
        naive=upd(L.naive, L.inferer, previous.naive),
        oneout_inferer_inferer=upd(
            L.oneout_inferer[:, None], L.inferer[None, :], previous.oneout_inferer_inferer
        ),
        oneout_inferer_forecaster=upd(
            L.oneout_inferer[:, None],
            L.oneout_inferer_forecaster.T,
            previous.oneout_inferer_forecaster,
        ),
        oneout_forecaster_inferer=upd(
            L.oneout_forecaster[:, None], L.inferer[None, :], previous.oneout_forecaster_inferer
        ),
        oneout_forecaster_forecaster=upd(
            L.oneout_forecaster[:, None],
            L.forecaster[None, :],
            previous.oneout_forecaster_forecaster,
        ),
        onein_inferer=upd(L.onein[:, None], L.inferer[None, :], previous.onein_inferer),
        onein_self=upd(L.onein, L.forecaster, previous.onein_self),
    )


def merge_regrets(
    state: RegretState,
    inferers: tuple[str, ...],
    forecasters: tuple[str, ...],
    updated: InferenceRegrets,
    initial_regret: float,
) -> RegretState:
    """New state: the union of stored and this round's workers; updated (non-NaN) entries
    replace stored ones, everything else is carried over unchanged."""
    if inferers == state.inferers and forecasters == state.forecasters:
        # the usual case: same workers as stored; overwrite where updated
        same = {
            name: np.where(
                np.isnan(getattr(updated, name)),
                getattr(state.regrets, name),
                getattr(updated, name),
            )
            for name, _, _ in FAMILIES
        }
        return RegretState(inferers, forecasters, InferenceRegrets(**same), initial_regret)
    all_inf = tuple(sorted(set(state.inferers) | set(inferers)))
    all_fc = tuple(sorted(set(state.forecasters) | set(forecasters)))
    base = state.project(all_inf, all_fc, np.nan)
    want = {"i": inferers, "f": forecasters}
    pos = {"i": _index(all_inf, inferers)[0], "f": _index(all_fc, forecasters)[0]}
    out: dict[str, FloatArray] = {}
    for name, row, col in FAMILIES:
        arr = np.array(getattr(base, name), dtype=np.float64, copy=True)
        new = getattr(updated, name)
        if len(want[row]) and (col == "" or len(want[col])):
            if col == "":
                cur = arr[pos[row]]
                arr[pos[row]] = np.where(np.isnan(new), cur, new)
            else:
                sub = np.ix_(pos[row], pos[col])
                cur = arr[sub]
                arr[sub] = np.where(np.isnan(new), cur, new)
        out[name] = arr
    return RegretState(all_inf, all_fc, InferenceRegrets(**out), initial_regret)


def compute_initial_regret(
    experienced_regrets: FloatArray,
    current: float,
    p_norm: float,
    c_norm: float,
    epsilon: float,
    quantile_q: float = 0.25,
    p_norm_safe_div: float = 8.25,
) -> float:
    """2.2: Q_q(r) + (c - D/p)(sigma(r) + epsilon) over experienced workers' regrets
    (inferers then forecasters, each by address); unchanged if nobody is experienced."""
    r = np.asarray(experienced_regrets, dtype=np.float64)
    r = r[~np.isnan(r)]
    if r.size == 0:
        return current
    return quantile(r, quantile_q) + (c_norm - p_norm_safe_div / p_norm) * (sample_std(r) + epsilon)


#: Elements per block of rows in the fused update (512 KiB of float64: stays in cache; the
#: size measured fastest for the pool engine, see ``pools.BLOCK_ELEMENTS``).
_BLOCK_ELEMENTS = 65536


def _family_scratch(
    rows: int, cols: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
    """This thread's block buffers for :func:`_update_family`, kept between calls
    (:mod:`.scratch`: avoids an mmap, page faults and munmap per family per epoch)."""

    def make() -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray]:
        shape = (rows, cols)
        return (
            np.empty(shape),
            np.empty(shape),
            np.empty(shape),
            np.empty(shape),
            np.empty(shape, dtype=bool),
        )

    return cached("regrets", (rows, cols), make)


def _update_family(
    raw: FloatArray, ref: FloatArray, worker: FloatArray, initial: float, alpha: float
) -> FloatArray:
    """One matrix family of the same-workers update, fused and blocked by rows: exactly
    ``where(isnan(new), raw, new)`` with ``new = ema(alpha, ref - worker, prev)`` and
    ``prev = where(isnan(raw), initial, raw)`` (``ref`` (R, 1), ``worker`` (1, C) or (R, C))."""
    rows, cols = raw.shape
    out = np.empty((rows, cols))
    if out.size == 0:
        return out
    step = max(1, _BLOCK_ELEMENTS // max(cols, 1))
    b0 = min(step, rows)
    prev, cur, t, u, eq = _family_scratch(b0, cols)
    beta = 1.0 - alpha
    with np.errstate(invalid="ignore"):
        for r0 in range(0, rows, step):
            r1 = min(rows, r0 + step)
            b = r1 - r0
            pv, cu, tt, uu, ee = prev[:b], cur[:b], t[:b], u[:b], eq[:b]
            blk = raw[r0:r1]
            np.isnan(blk, out=ee)
            np.copyto(pv, blk)
            np.copyto(pv, initial, where=ee)
            np.subtract(ref[r0:r1], worker if worker.shape[0] == 1 else worker[r0:r1], out=cu)
            np.multiply(alpha, cu, out=tt)
            np.multiply(beta, pv, out=uu)
            tt += uu
            np.equal(cu, pv, out=ee)
            np.copyto(tt, cu, where=ee)
            np.isnan(tt, out=ee)
            np.copyto(tt, blk, where=ee)
            out[r0:r1] = tt
    return out


def update_same_workers(
    state: RegretState, losses: LossArrays, alpha: float
) -> tuple[InferenceRegrets, InferenceRegrets]:
    """2.1 when the round's workers are exactly the stored ones (the usual case): returns the
    merged families to store and the updated vectors (matrices left as the merged ones, which
    the caller does not read). Same bits as ``project`` + :func:`compute_regret_arrays` +
    :func:`merge_regrets`, without their nine full-size temporaries per family."""
    R = state.regrets
    L = losses
    init = state.initial_regret
    if sum(getattr(R, name).size for name, _, _ in FAMILIES) <= _BLOCK_ELEMENTS:
        return _update_all_at_once(state, losses, alpha)

    def vec(ref: npt.ArrayLike, worker: npt.ArrayLike, raw: FloatArray) -> FloatArray:
        prev = np.where(np.isnan(raw), init, raw)
        with np.errstate(invalid="ignore"):
            delta = np.asarray(ref, dtype=np.float64) - np.asarray(worker, dtype=np.float64)
        return ema(alpha, delta, prev)

    new_inf = vec(L.combined, L.inferer, R.inferer)
    new_fc = vec(L.combined, L.forecaster, R.forecaster)
    new_naive = vec(L.naive, L.inferer, R.naive)
    new_self = vec(L.onein, L.forecaster, R.onein_self)

    def merged(new: FloatArray, raw: FloatArray) -> FloatArray:
        return np.where(np.isnan(new), raw, new)

    oi = L.oneout_inferer[:, None]
    of = L.oneout_forecaster[:, None]
    li = L.inferer[None, :]
    out = InferenceRegrets(
        inferer=merged(new_inf, R.inferer),
        forecaster=merged(new_fc, R.forecaster),
        naive=merged(new_naive, R.naive),
        oneout_inferer_inferer=_update_family(R.oneout_inferer_inferer, oi, li, init, alpha),
        oneout_inferer_forecaster=_update_family(
            R.oneout_inferer_forecaster, oi, L.oneout_inferer_forecaster.T, init, alpha
        ),
        oneout_forecaster_inferer=_update_family(R.oneout_forecaster_inferer, of, li, init, alpha),
        oneout_forecaster_forecaster=_update_family(
            R.oneout_forecaster_forecaster, of, L.forecaster[None, :], init, alpha
        ),
        onein_inferer=_update_family(R.onein_inferer, L.onein[:, None], li, init, alpha),
        onein_self=merged(new_self, R.onein_self),
    )
    vectors = dataclasses.replace(out, inferer=new_inf, forecaster=new_fc)
    return out, vectors


@functools.lru_cache(maxsize=16)
def _flat_positions(n: int, k: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """For :func:`_update_all_at_once`: where each entry's reference loss and worker loss sit
    in its vector of network losses [combined, naive, inferer (N), forecaster (K), one-out
    inferer (N), one-out forecaster (K), one-in (K), one-out inferer-forecaster (K, N)],
    in the flat layout of the nine families (read-only, cached per size)."""
    comb, naive = 0, 1
    inf = 2 + np.arange(n)
    fc = 2 + n + np.arange(k)
    oi = 2 + n + k + np.arange(n)
    of = 2 + 2 * n + k + np.arange(k)
    on = 2 + 2 * n + 2 * k + np.arange(k)
    oif = (2 + 2 * n + 3 * k + np.arange(k * n)).reshape(k, n)
    ref = np.concatenate(
        [
            np.full(n + k, comb),
            np.full(n, naive),
            on,
            np.repeat(oi, n),
            np.repeat(oi, k),
            np.repeat(of, n),
            np.repeat(of, k),
            np.repeat(on, n),
        ]
    ).astype(np.intp)
    worker = np.concatenate(
        [
            inf,
            fc,
            inf,
            fc,
            np.tile(inf, n),
            oif.T.ravel(),
            np.tile(inf, k),
            np.tile(fc, k),
            np.tile(inf, k),
        ]
    ).astype(np.intp)
    ref.flags.writeable = False
    worker.flags.writeable = False
    return ref, worker


def _update_all_at_once(
    state: RegretState, losses: LossArrays, alpha: float
) -> tuple[InferenceRegrets, InferenceRegrets]:
    """:func:`update_same_workers` for small topics: all nine families as one flat vector
    (each family's reference and worker losses laid out beside its regrets), so the fused
    update is ~10 numpy calls in all instead of ~10 per family; the same element-wise
    operations in the same order, so the same bits."""
    R, L = state.regrets, losses
    n, k = R.inferer.size, R.forecaster.size
    raw = np.concatenate(
        [
            R.inferer,
            R.forecaster,
            R.naive,
            R.onein_self,
            R.oneout_inferer_inferer.ravel(),
            R.oneout_inferer_forecaster.ravel(),
            R.oneout_forecaster_inferer.ravel(),
            R.oneout_forecaster_forecaster.ravel(),
            R.onein_inferer.ravel(),
        ]
    )
    # every reference and worker loss is an entry of one vector of all network losses, so
    # both sides are one gather each (cached positions) instead of ~17 full/repeat/tile calls
    loss_vec = np.concatenate(
        [
            np.array([L.combined, L.naive]),
            L.inferer,
            L.forecaster,
            L.oneout_inferer,
            L.oneout_forecaster,
            L.onein,
            L.oneout_inferer_forecaster.ravel(),
        ]
    )
    ref_at, worker_at = _flat_positions(n, k)
    ref = loss_vec[ref_at]
    worker = loss_vec[worker_at]
    missing = np.isnan(raw)
    prev = raw.copy()
    np.copyto(prev, state.initial_regret, where=missing)  # gaps: the initial regret
    with np.errstate(invalid="ignore"):
        cur = np.subtract(ref, worker, out=ref)  # L_A - L_B
        new = alpha * cur
        new += (1.0 - alpha) * prev  # ema: alpha cur + (1 - alpha) prev ...
        same = np.equal(cur, prev, out=missing)
        np.copyto(new, cur, where=same)  # ... or cur where cur == prev
        unmerged = new[: n + k].copy()
        np.copyto(new, raw, where=np.isnan(new))  # no loss: the stored regret stays
    sizes = (n, k, n, k, n * n, n * k, k * n, k * k, k * n)
    parts: list[FloatArray] = []
    pos = 0
    for size in sizes:
        parts.append(new[pos : pos + size])
        pos += size
    out = InferenceRegrets(
        inferer=parts[0],
        forecaster=parts[1],
        naive=parts[2],
        oneout_inferer_inferer=parts[4].reshape(n, n),
        oneout_inferer_forecaster=parts[5].reshape(n, k),
        oneout_forecaster_inferer=parts[6].reshape(k, n),
        oneout_forecaster_forecaster=parts[7].reshape(k, k),
        onein_inferer=parts[8].reshape(k, n),
        onein_self=parts[3],
    )
    vectors = InferenceRegrets(
        unmerged[:n],
        unmerged[n:],
        out.naive,
        out.oneout_inferer_inferer,
        out.oneout_inferer_forecaster,
        out.oneout_forecaster_inferer,
        out.oneout_forecaster_forecaster,
        out.onein_inferer,
        out.onein_self,
    )
    return out, vectors
