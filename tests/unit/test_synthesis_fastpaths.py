"""The speed paths of synthesis (batched pools, entry-major sums, fused regret update, one-matrix
losses, transposed reputer loop) against the reference functions and against output hashes
recorded from the code *before* those paths existed (commit e228e3b), over epochs the golden
file does not cover: reputer gaps, changed worker sets, missing latest loss, all-new topics,
one-element forecasts, other parameters, zero stakes, identical reputers.

The hashes are SHA-256 over an exact bit dump of every output (NaN included), so a change of
one bit anywhere fails; the variant inputs are built here from seeded generators.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import struct

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloranet.synthesis import (
    ModuleParams,
    RegretState,
    ReputerReports,
    TopicParams,
    WorkerRound,
    compute_network_losses,
    pools,
    regrets,
    scores,
    stats,
)
from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.inference import InferenceRegrets
from alloranet.synthesis.losses import LossReports, stake_weighted_mean
from alloranet.synthesis.scenario import Scenario, make_scenario, run_epoch
from alloranet.synthesis.weights import pool_weights, weighted_average

FloatArray = npt.NDArray[np.float64]

#: scenario variant -> sha256 of the five stage hashes (inf, loss, reg, rw, sc), recorded
#: with the pre-optimisation code.
EXPECTED = {
    "nofc": "b83e7a738fc5e142536bbae90e83a105906ff354de95fed07e73e97671362eb1",
    "onefc": "2c1cdc6afd4db2d4096ffa88e64cfb108688a5c0599ba2d07781652150157fd0",
    "rows": "48b8a3dc13d2c0ebc81ba2fc8814c330b4f560105aa5e48192ae4b4676a26d12",
    "s11_256x32_m5": "b7eb2d4a4c35dca0e1787f4519505577eb5d9ddef1bd93c0174429148e75eccb",
    "s11_256x32_m5_e1": "6af6846ff1a56a2b9294828e6329160c326cb1613332393a213d9cd2faadc057",
    "s11_256x32_m5_e3": "546ce7aa1e2c11c923ccab7e8dfe28f9fd72460b730ef28caf3b486998c8351c",
    "s11_256x32_m5_empty": "a565e535b33871662132e7cd502dd6c37cb3739d1c1f328713e6bfbf0e5a98ce",
    "s11_256x32_m5_init0": "cb24c7c8b1d5e3ee5f1a7ee9b942f6756135e2a90ff147433af46ac185748f27",
    "s11_256x32_m5_nanrep": "f65e033a9a7ce6488037b6a2da6cb8b27eb9261a695980ec7dd9311906c7bbc4",
    "s11_256x32_m5_nanrep_heavy": "47909bda17bcfe53e4de1e86b4f2d10e48c8302caa1e83e11a06a57342976a4a",  # noqa: E501
    "s11_256x32_m5_nolatest": "246203fbd949ceeb5d916a08a256cdd965e8941d6c1d5c7f8b7aa90bf4aff6a8",
    "s11_256x32_m5_shift": "4f1cb5d3dc6a5274be8ca2a76ab2d83467a44d6034203e275b5d66733177e65e",
    "s11_2x1_m5": "43bb43ce5e3167584dd00807a12d0b998a591b449cbfcab55271e645a68010c0",
    "s11_2x1_m5_e1": "a65aadec9b3c14bb0c7ace668249fb96a428e2ad6abe4a3ebda9ed5e9a212633",
    "s11_2x1_m5_e3": "43bb43ce5e3167584dd00807a12d0b998a591b449cbfcab55271e645a68010c0",
    "s11_2x1_m5_empty": "dc14d6389190e77440863acb76526188f94200a24ef5ee7a8dc85084168c9550",
    "s11_2x1_m5_init0": "0c50f75457bb1f57f1957efc867d62196f8dcc29719e014f0f3fb387e64a17b2",
    "s11_2x1_m5_nanrep": "45e2746635e3c5d6dce20dba1ae10d5c62bf85ee94692529d1080c1a1ad5457c",
    "s11_2x1_m5_nanrep_heavy": "94a11dbd4510c0ce93159854a6330c077a739f1e0d0b474a526c6e629f56a173",
    "s11_2x1_m5_nolatest": "c8b74faf584a6330033be25590d9c0f6d7c49c8b2ce864b8a229ab63d48bb068",
    "s11_2x1_m5_shift": "56ec8e51d8281230165dec6c9a7afdb2918d5027a515531137125490fd1a8306",
    "s11_32x6_m5": "993a8cebb8cc9705faefa04df9af5f0f8eb509ac34689bdec8c9366aefa73341",
    "s11_32x6_m5_coef0": "9e12eb66b7ddbc59cba4cd168315856df0d7afaa185a3b81167ff6785c125853",
    "s11_32x6_m5_coef1": "d2f83daf2fae5995065229bc48b19f02d10d0e46c012641f455f6154ffb7a349",
    "s11_32x6_m5_e1": "31c5b9e860ab2503147dd66f3449ec81692f998884be403e3f86aaee14edf2d6",
    "s11_32x6_m5_e3": "e714087b8a48154fb0d07940e14785cfe8d64c591ac69341dc3f82dce90d5e7c",
    "s11_32x6_m5_empty": "85789d23b8682356d86f2a2b4187b7184a258a2475ae8be49afd0b26c8bb143c",
    "s11_32x6_m5_init0": "1ab190ca04ed687d8fde4e003bf4d7085f710be4b594df6bbf8359c87ae26543",
    "s11_32x6_m5_mp0": "7fa429abd3adafa2c4a3b38eed6337fad4d5ecafade708a7105eec654b195d62",
    "s11_32x6_m5_mp1": "1bfd5d95652dfc44e8f554829a4749c8e3c9b9fe0e1fcc999a0872dfa01317a5",
    "s11_32x6_m5_mp2": "929f6b31f39d1900f8be0de384bf0d5a898eb30ed1988b96ad591fd73e5db658",
    "s11_32x6_m5_nanrep": "a544c9d4f2f8213cb3335448e6acb706753b0262b275f855c8f054e39d30ac2f",
    "s11_32x6_m5_nanrep_heavy": "a466f13b1891970c4f459a98e066ca8b15122119f5153c48974ebf4b9e6690fe",
    "s11_32x6_m5_nolatest": "256740587c83bff20fb35460ef5770f0ba81da7dc1153d5bbf8f73a1dab8f0b9",
    "s11_32x6_m5_shift": "ce8e586c7452c24564de1b9722c00c8db6bf8aa6640cae04be354a69dac20599",
    "s11_32x6_m5_tp0": "7429682abc6a820b313d155e34aeec016fbf5b81877650285c508ef780188908",
    "s11_32x6_m5_tp1": "daab629ce816db76da4e77518b4a0979942ce3c69045ebbfab30c97b886f42ec",
    "s12_13x5_m2": "382f7d74c52e6b3c9db72a06dc2610be8f62788c0748d5dad0cc5c5962bd1a83",
    "s12_13x5_m2_e1": "2a54dd821e4050cdccf418ae1f8214bbfd8df3542eb971096dcce7f9cf192c7d",
    "s12_13x5_m2_e3": "771618fce10cc7a115434002a0b3557aa0e7083860a210572d3b890b15be9c3f",
    "s12_13x5_m2_empty": "a7eeca42e787a34a0cafad7f54cef4b29bc7417521adced5eb815d4564210ec4",
    "s12_13x5_m2_init0": "1bd780b0eb1336868ad355b2ecb7560a4f05e1a41972e5377236a3bc14cea5d3",
    "s12_13x5_m2_nanrep": "da3c7a09ed2a630e0f171c28cc226a51a600ecd4af31a1664f98be727a80900d",
    "s12_13x5_m2_nanrep_heavy": "76a8f342ec88d37710e41b56598730c7376de14d264a6963ce364f8255bce6c4",
    "s12_13x5_m2_nolatest": "e5cbab872f7bdf13c57b71295be09df93d2934e76b8f17c484f6fcbb1cca0f99",
    "s12_13x5_m2_shift": "5641c7d7619c2a95de28ae8527ec5d50aeb9cd92f7d6802b54bdb962049a2747",
    "s12_1x3_m5": "e28ac782d807cf07ced46cbcd9cd05964ba90ca8e52bae35203642c63803a9db",
    "s12_1x3_m5_e1": "e28ac782d807cf07ced46cbcd9cd05964ba90ca8e52bae35203642c63803a9db",
    "s12_1x3_m5_e3": "e28ac782d807cf07ced46cbcd9cd05964ba90ca8e52bae35203642c63803a9db",
    "s12_1x3_m5_empty": "565be0fa0708073c0917d04a5597f979d11b0a205fdae5bba4303269aba42126",
    "s12_1x3_m5_init0": "e28ac782d807cf07ced46cbcd9cd05964ba90ca8e52bae35203642c63803a9db",
    "s12_1x3_m5_nanrep": "b89d6334ba84e304d250ea079fcfc39239754aa903bc94d8ed4e5ade4e45c0cc",
    "s12_1x3_m5_nanrep_heavy": "91f79221d9422bde983bff62899ad48b912bcf2412811bbc353a64e55ac44444",
    "s12_1x3_m5_nolatest": "e28ac782d807cf07ced46cbcd9cd05964ba90ca8e52bae35203642c63803a9db",
    "s12_1x3_m5_shift": "bd06bae629c610cbadcde5b5aef6be6f8a8e29e9ff82f7768a8e1d36df588384",
    "s12_3x2_m1": "35500098a8e9ba5e5c4e41f113d7f250d0e5afe16cafd427622832afa6b22998",
    "s12_3x2_m1_e1": "3711f1e09c00b4ec3a8d2b1342ef3d2543904c87ce1d419d0431a36fb29744e8",
    "s12_3x2_m1_e3": "35500098a8e9ba5e5c4e41f113d7f250d0e5afe16cafd427622832afa6b22998",
    "s12_3x2_m1_empty": "306a515369f60ca633c2c751fabf4b1b9d4334e2a23d5456532fa67867ee5523",
    "s12_3x2_m1_init0": "831ac9f449c941846df7fb20e77476e7bb6b6d8a0e17b8d1f5d2fcb2f10eb88b",
    "s12_3x2_m1_nanrep": "0c57d9d9af9a7ea4b8a930becad22b895219de3198096e245aef7e5445ece5a1",
    "s12_3x2_m1_nanrep_heavy": "912b850852151832f770b5a69f98ef30a37a792b2948356979a06c37c8b62e57",
    "s12_3x2_m1_nolatest": "65f7d9c28084078ec082abb4aa0ec0a2f7b387f99cf7c918d85f598590538bc4",
    "s12_3x2_m1_shift": "f2859080b5e0660238c184a72bdd56a40ea5fb93a4a3a14d900574a21ee1e186",
    "samereps": "c7c8e76027d91cc7244b701d4fd4d176826bb702096c4f914c4f1ce7290e8f98",
    "zerostake": "8955b5cf42ed8feb0f5da02bd2eefa299bdab33853a4936633ccc565b4e5a203",
}


def _canon(v: object) -> str:
    if isinstance(v, float):
        return "f" + struct.pack("<d", v).hex()
    if isinstance(v, (tuple, list)):
        return "[" + ",".join(_canon(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_canon(k) + ":" + _canon(v[k]) for k in sorted(v)) + "}"
    if isinstance(v, bytes):
        return "b" + v.hex()
    if isinstance(v, np.ndarray):
        return "a" + str(v.shape) + v.astype(np.float64).tobytes().hex()
    return type(v).__name__ + repr(v)


def _h(v: object) -> str:
    return hashlib.sha256(_canon(v).encode()).hexdigest()


def _epoch_hash(
    s: Scenario, topic: TopicParams | None = None, module: ModuleParams | None = None
) -> str:
    e = run_epoch(s, topic, module)
    parts = {
        "inf": _h(e.inferences.to_wire()),
        "loss": _h(e.losses.to_wire()),
        "reg": _h(e.regrets.to_wire()),
        "sc": _h(e.scores.to_wire()),
        "rw": _h(e.rewards.to_wire()),
    }
    return hashlib.sha256("".join(parts[p] for p in sorted(parts)).encode()).hexdigest()


def _with_nan_reports(s: Scenario, seed: int, frac: float) -> Scenario:
    rng = np.random.default_rng(seed)
    r = s.reports.reports

    def holes(a: FloatArray) -> FloatArray:
        a = a.copy()
        a[rng.random(a.shape) < frac] = np.nan
        return a

    rr = LossReports(
        r.stakes,
        holes(r.combined),
        holes(r.naive),
        holes(r.inferer),
        holes(r.forecaster),
        holes(r.oneout_inferer),
        holes(r.oneout_forecaster),
        holes(r.onein),
        holes(r.oneout_inferer_forecaster),
    )
    reps = ReputerReports(s.reports.reputers, s.reports.inferers, s.reports.forecasters, rr)
    return dataclasses.replace(s, reports=reps, latest=compute_network_losses(reps))


def _shifted(s: Scenario, seed: int) -> Scenario:
    """The stored regrets cover a subset of this round's workers."""
    rng = np.random.default_rng(seed)
    st = s.regrets
    keep_i = tuple(a for a in st.inferers if rng.random() > 0.2) or st.inferers[:1]
    keep_f = tuple(a for a in st.forecasters if rng.random() > 0.2)
    ii = [st.inferers.index(a) for a in keep_i]
    ff = [st.forecasters.index(a) for a in keep_f]
    R = st.regrets
    sub = InferenceRegrets(
        R.inferer[ii],
        R.forecaster[ff],
        R.naive[ii],
        R.oneout_inferer_inferer[np.ix_(ii, ii)],
        R.oneout_inferer_forecaster[np.ix_(ii, ff)],
        R.oneout_forecaster_inferer[np.ix_(ff, ii)],
        R.oneout_forecaster_forecaster[np.ix_(ff, ff)],
        R.onein_inferer[np.ix_(ff, ii)],
        R.onein_self[ff],
    )
    return dataclasses.replace(s, regrets=RegretState(keep_i, keep_f, sub, st.initial_regret))


def _variants() -> dict[str, tuple[Scenario, TopicParams | None, ModuleParams | None]]:
    out: dict[str, tuple[Scenario, TopicParams | None, ModuleParams | None]] = {}
    for seed, n, k, m in (
        (11, 32, 6, 5),
        (12, 13, 5, 2),
        (11, 256, 32, 5),
        (12, 3, 2, 1),
        (11, 2, 1, 5),
        (12, 1, 3, 5),
    ):
        base = f"s{seed}_{n}x{k}_m{m}"
        s = make_scenario(seed, n, k, m)
        out[base] = (s, None, None)
        out[base + "_nanrep"] = (_with_nan_reports(s, seed, 0.1), None, None)
        out[base + "_nanrep_heavy"] = (_with_nan_reports(s, seed + 1, 0.6), None, None)
        out[base + "_shift"] = (_shifted(s, seed), None, None)
        out[base + "_nolatest"] = (dataclasses.replace(s, latest=None), None, None)
        zero = dataclasses.replace(s.regrets, initial_regret=0.0)
        out[base + "_init0"] = (dataclasses.replace(s, regrets=zero), None, None)
        out[base + "_empty"] = (dataclasses.replace(s, regrets=RegretState.empty(-0.2)), None, None)
        out[base + "_e1"] = (make_scenario(seed, n, k, m, elements=1), None, None)
        out[base + "_e3"] = (make_scenario(seed, n, k, m, elements=3), None, None)
        if (n, k, m) == (32, 6, 5):
            topics = [
                TopicParams(p_norm=2.5, alpha_regret=1.0, epsilon=0.5),
                TopicParams(p_norm=4.5, epsilon=1e-6),
            ]
            for i, tp in enumerate(topics):
                out[base + f"_tp{i}"] = (s, tp, None)
            modules = [
                ModuleParams(
                    p_reward_inference=1.7,
                    p_reward_forecast=2.5,
                    p_reward_reputer=0.5,
                    learning_rate=0.5,
                    max_gradient_threshold=0.0,
                    min_stake_fraction=0.95,
                ),
                ModuleParams(gradient_descent_max_iters=0, c_norm=0.0, beta_entropy=0.0),
                ModuleParams(
                    learning_rate=5.0,
                    min_stake_fraction=0.99,
                    max_gradient_threshold=1e-9,
                    gradient_descent_max_iters=30,
                ),
            ]
            for i, mp in enumerate(modules):
                out[base + f"_mp{i}"] = (s, None, mp)
            ones = {a: 1.0 for a in s.coefficients}
            out[base + "_coef1"] = (dataclasses.replace(s, coefficients=ones), None, None)
            zeros = {a: 0.0 for a in s.coefficients}
            out[base + "_coef0"] = (dataclasses.replace(s, coefficients=zeros), None, None)
    s = make_scenario(5, 20, 4)
    r = s.round

    def with_forecasts(f: FloatArray) -> Scenario:
        return dataclasses.replace(s, round=WorkerRound(r.inferers, r.inferences, r.forecasters, f))

    f = r.forecasts.copy()
    f[0, :] = np.nan
    f[1, :] = np.nan
    f[1, 3] = -1.5
    out["rows"] = (with_forecasts(f), None, None)
    f = np.full_like(r.forecasts, np.nan)
    out["nofc"] = (with_forecasts(f), None, None)
    f = np.full_like(r.forecasts, np.nan)
    f[2, 5] = -1.0
    out["onefc"] = (with_forecasts(f), None, None)
    rep = s.reports.reports
    rr = dataclasses.replace(rep, stakes=np.array([0.0, 1e5, 0.0, 3e5, 0.0]))
    out["zerostake"] = (
        dataclasses.replace(s, reports=dataclasses.replace(s.reports, reports=rr)),
        None,
        None,
    )
    same = LossReports(
        rep.stakes,
        *[
            np.broadcast_to(getattr(rep, fl.name)[:1], getattr(rep, fl.name).shape).copy()
            for fl in dataclasses.fields(rep)[1:]
        ],
    )
    out["samereps"] = (
        dataclasses.replace(s, reports=dataclasses.replace(s.reports, reports=same)),
        None,
        None,
    )
    return out


def test_outputs_match_pre_optimisation_hashes() -> None:
    variants = _variants()
    assert set(variants) == set(EXPECTED)
    changed = sorted(
        name for name, (s, tp, mp) in variants.items() if _epoch_hash(s, tp, mp) != EXPECTED[name]
    )
    assert not changed, f"outputs changed bits: {changed}"


def test_small_blocks_and_gram_branches_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocking and the two Gram builds are free choices: tiny blocks (many blocks, ragged
    last block) and the long-report Gram build must reproduce the default bits."""
    s = make_scenario(21, 40, 7)
    s_gaps = _with_nan_reports(s, 22, 0.05)
    want = [_epoch_hash(x) for x in (s, s_gaps)]
    monkeypatch.setattr(pools, "BLOCK_ELEMENTS", 97)
    monkeypatch.setattr(regrets, "_BLOCK_ELEMENTS", 53)
    monkeypatch.setattr(scores, "_GRAM_AT_ONCE", 0)
    assert [_epoch_hash(x) for x in (s, s_gaps)] == want


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_average_pools_equals_reference_functions(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    monkeypatch.setattr(pools, "BLOCK_ELEMENTS", int(rng.integers(1, 400)))
    b, w1, w2 = int(rng.integers(1, 40)), int(rng.integers(1, 30)), int(rng.integers(0, 9))
    reg = rng.normal(-0.5, 2.0, (b, w1 + w2))
    mask = rng.random((b, w1 + w2)) < 0.8
    mask[0] = False
    mask[min(1, b - 1)] = False
    mask[min(1, b - 1), 0] = True  # a lone entry
    vals = rng.normal(0.0, 1.0, (b, w1 + w2))
    single = rng.random() < 0.5
    floor = None if rng.random() < 0.5 else 1e-7
    p, c, eps = float(rng.uniform(2.5, 4.5)), float(rng.uniform(0.0, 1.0)), 0.01
    group = pools.PoolGroup(
        b,
        [reg[:, :w1], reg[:, w1:]],
        [mask[:, :w1], mask[:, w1:]],
        [vals[:, :w1], vals[:, w1:]],
        floor,
        single,
    )
    got, den, kept = pools.average_pools([group], p, c, eps, weight_rows=b)
    w = pool_weights(reg, mask, p, c, eps)
    if single:
        count = mask.sum(axis=1)
        w = np.where((count == 1)[:, None], mask.astype(np.float64), w)
    ref, ref_den = weighted_average(vals, w, floor)
    assert got.tobytes() == ref.tobytes(), f"seed {seed}"
    assert den.tobytes() == ref_den.tobytes()
    assert kept.tobytes() == w.tobytes()


def _tree_reference(v: list[float]) -> float:
    """The documented order, written as plainly as possible (pure Python floats)."""
    while len(v) > 1:
        h = len(v) // 2
        nxt = [v[i] + v[i + h] for i in range(h)]
        if len(v) % 2:
            nxt[h - 1] = nxt[h - 1] + v[2 * h]
        v = nxt
    return v[0] if v else 0.0


@pytest.mark.parametrize(
    "shape", [(1,), (2,), (7,), (33,), (300,), (4, 5), (3, 255), (2, 257), (2, 3, 17)]
)
def test_fixed_sum_paths_follow_the_documented_tree(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(sum(shape))
    a = rng.normal(0.0, 1.0, shape) * 10.0 ** rng.integers(-8, 9, shape)
    got = stats.fixed_sum(a)
    flat = a.reshape(-1, shape[-1])
    want = np.array([_tree_reference(row.tolist()) for row in flat]).reshape(shape[:-1])
    assert np.asarray(got).tobytes() == want.tobytes()
    if len(shape) > 1:
        got0 = stats.fixed_sum(a, axis=0)
        moved = np.moveaxis(a, 0, -1).reshape(-1, shape[0])
        want0 = np.array([_tree_reference(row.tolist()) for row in moved])
        assert got0.tobytes() == want0.tobytes()
    tb = stats.TreeBuffer(shape[-1], flat.shape[0])
    tb.entries[...] = flat.T
    assert tb.run().tobytes() == want.reshape(-1).tobytes()


def test_same_worker_regret_update_equals_general_path() -> None:
    rng = np.random.default_rng(5)
    s = make_scenario(5, 17, 4)
    losses = compute_network_losses(_with_nan_reports(s, 6, 0.2).reports).values
    state = s.regrets
    for alpha in (0.1, 1.0, float(rng.uniform(0.01, 1.0))):
        merged, vectors = regrets.update_same_workers(state, losses, alpha)
        stored = state.project(state.inferers, state.forecasters, np.nan)
        prev = InferenceRegrets(
            **{
                f.name: np.where(
                    np.isnan(getattr(stored, f.name)), state.initial_regret, getattr(stored, f.name)
                )
                for f in dataclasses.fields(stored)
            }
        )
        new = regrets.compute_regret_arrays(losses, prev, alpha)
        ref = regrets.merge_regrets(state, state.inferers, state.forecasters, new, 0.0)
        for f in dataclasses.fields(merged):
            assert getattr(merged, f.name).tobytes() == getattr(ref.regrets, f.name).tobytes(), (
                f.name
            )
        assert vectors.inferer.tobytes() == new.inferer.tobytes()
        assert vectors.forecaster.tobytes() == new.forecaster.tobytes()


def test_loss_matrix_equals_per_family_means() -> None:
    for frac in (0.0, 0.3):
        s = _with_nan_reports(make_scenario(8, 11, 3), 9, frac)
        r = s.reports.reports
        got = compute_network_losses(s.reports).values
        for name in (
            "inferer",
            "forecaster",
            "oneout_inferer",
            "oneout_forecaster",
            "onein",
            "oneout_inferer_forecaster",
        ):
            want = stake_weighted_mean(getattr(r, name), r.stakes)
            assert getattr(got, name).tobytes() == want.tobytes(), (name, frac)
        assert got.combined == float(stake_weighted_mean(r.combined, r.stakes))


def test_batched_reward_kernels_equal_single_task_ones() -> None:
    from alloranet.synthesis import rewards as rw

    rng = np.random.default_rng(31)
    for sizes in ((7, 3, 5), (0, 1, 4), (12, 0, 1), (2, 2, 2)):
        tasks = [rng.normal(0.0, 1.0, n) for n in sizes]
        flat = [rng.normal(0.0, 0.001 if i == 1 else 1.0, n + 3) for i, n in enumerate(sizes)]
        params = [(1.0, 0.75), (3.0, 0.75), (2.2, 0.1)]
        got = rw.worker_reward_fractions_batch(
            [(t, smp, p, c) for t, smp, (p, c) in zip(tasks, flat, params, strict=True)], 0.01
        )
        for g, t, smp, (p, c) in zip(got, tasks, flat, params, strict=True):
            want = rw.worker_reward_fractions(t, smp, p, c, 0.01)
            assert g.tobytes() == want.tobytes(), sizes
        fracs = [np.abs(t) / max(float(np.abs(t).sum()), 1.0) for t in tasks]
        prevs = [None, rng.uniform(0.0, 1.0, sizes[1]), np.full(sizes[2], np.nan)]
        ents = rw.task_entropies(list(zip(fracs, prevs, strict=True)), 0.1, 0.25)
        for e, f, pv in zip(ents, fracs, prevs, strict=True):
            want_e = rw.task_entropy(f, pv, 0.1, 0.25)
            assert struct.pack("<d", e.entropy) == struct.pack("<d", want_e.entropy), sizes
            assert e.smoothed.tobytes() == want_e.smoothed.tobytes()


@pytest.mark.parametrize("at_once", [True, False])
@pytest.mark.parametrize(("m", "d"), [(1, 2), (2, 1), (3, 0), (5, 2), (5, 276), (4, 33), (6, 7)])
def test_gram_terms_equal_plain_sums(
    m: int, d: int, at_once: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every Gram term of the reputer scorer is the documented fixed-order sum over D of
    (x_r - x_p)(x_r - x_q) (r < M) or x_p x_q (r = M), whichever build runs."""
    if not at_once:
        monkeypatch.setattr(scores, "_GRAM_AT_ONCE", 0)
    rng = np.random.default_rng(100 * m + d)
    x = rng.normal(-2.0, 0.5, (m, d))
    x[:, : d // 3] = x[0, : d // 3]  # some exactly agreeing values: zero differences
    got = scores._gram_tensor(x)
    assert got.shape == (m * m, m + 1)
    rows = x.tolist()
    for p in range(m):
        for q in range(m):
            for r in range(m):
                want = _tree_reference(
                    [(a - b) * (a - c) for a, b, c in zip(rows[r], rows[p], rows[q], strict=True)]
                )
                assert struct.pack("<d", got[p * m + q, r]) == struct.pack("<d", want), (p, q, r)
            norm = _tree_reference([b * c for b, c in zip(rows[p], rows[q], strict=True)])
            assert struct.pack("<d", got[p * m + q, m]) == struct.pack("<d", norm), (p, q)


def _random_batch(
    rng: np.random.Generator, rows: int, widths: list[int]
) -> tuple[list[pools.PoolGroup], int]:
    """A batch of one or two groups of random pools (shared rows, gaps, lone entries)."""
    groups = []
    for g in range(int(rng.integers(1, 3))):
        regs, masks, vals = [], [], []
        for w in widths:
            shared = rng.random() < 0.3
            shape = (w,) if shared else (rows + g, w)
            regs.append(rng.normal(-0.5, 2.0, shape))
            vals.append(rng.normal(0.0, 1.0, shape))
            masks.append(None if shared or rng.random() < 0.3 else rng.random(shape) < 0.7)
        floor = None if rng.random() < 0.5 else 1e-7
        groups.append(pools.PoolGroup(rows + g, regs, masks, vals, floor, rng.random() < 0.3))
    return groups, int(rng.integers(0, rows + 1))


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    block=st.sampled_from([1, 7, 64, 500, 65536]),
    sizes=st.lists(
        st.tuples(st.integers(0, 12), st.lists(st.integers(1, 9), min_size=1, max_size=3)),
        min_size=1,
        max_size=4,
    ),
)
def test_batches_in_one_pass_equal_separate_calls(
    seed: int, block: int, sizes: list[tuple[int, list[int]]]
) -> None:
    """average_pools_many shares the element-wise steps of small batches of different widths;
    every pool must come out as average_pools of its batch alone computes it, whether the
    batches share one pass or run block by block (the block size decides)."""
    rng = np.random.default_rng(seed)
    batches = [_random_batch(rng, rows, widths) for rows, widths in sizes]
    p, c, eps = float(rng.uniform(2.5, 4.5)), float(rng.uniform(0.0, 1.0)), 0.01
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pools, "BLOCK_ELEMENTS", block)
        together = pools.average_pools_many(batches, p, c, eps)
    alone = [pools.average_pools(groups, p, c, eps, weight_rows=wr) for groups, wr in batches]
    for i, (got, want) in enumerate(zip(together, alone, strict=True)):
        for a, b in zip(got, want, strict=True):
            assert a.tobytes() == b.tobytes(), f"seed {seed}, batch {i}"


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(-1e3, 1e3),
            st.sampled_from([0.0, -0.0, 1e-300, -1e300]),
        ),
        min_size=0,
        max_size=70,
    )
)
def test_sample_std_python_path_equals_masked_numpy_path(values: list[float]) -> None:
    """Up to stats._PY_TREE_MAX values sample_std runs on Python floats; it must give the
    bits of masked_sample_std (the numpy path) for any input, on both sides of the limit."""
    arr = np.array(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        want = float(stats.masked_sample_std(arr, np.ones(arr.shape, dtype=bool)))
        got = stats.sample_std(arr)
    assert struct.pack("<d", got) == struct.pack("<d", want), values


@pytest.mark.parametrize("block", [0, 10**9])
@pytest.mark.parametrize(("n", "k"), [(1, 0), (2, 1), (17, 4), (40, 9)])
def test_regret_update_all_at_once_equals_per_family(
    n: int, k: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small topics update all nine families as one flat vector; it must equal the general
    path (project + compute_regret_arrays + merge_regrets), with and without gaps."""
    monkeypatch.setattr(regrets, "_BLOCK_ELEMENTS", block)
    s = make_scenario(n * 10 + k, n, k)
    for frac in (0.0, 0.3):
        losses = compute_network_losses(_with_nan_reports(s, n + k, frac).reports).values
        state = s.regrets
        for alpha in (0.1, 1.0):
            merged, vectors = regrets.update_same_workers(state, losses, alpha)
            stored = state.project(state.inferers, state.forecasters, np.nan)
            prev = InferenceRegrets(
                **{
                    f.name: np.where(
                        np.isnan(getattr(stored, f.name)),
                        state.initial_regret,
                        getattr(stored, f.name),
                    )
                    for f in dataclasses.fields(stored)
                }
            )
            new = regrets.compute_regret_arrays(losses, prev, alpha)
            ref = regrets.merge_regrets(state, state.inferers, state.forecasters, new, 0.0)
            for f in dataclasses.fields(merged):
                got, want = getattr(merged, f.name), getattr(ref.regrets, f.name)
                assert got.shape == want.shape and got.tobytes() == want.tobytes(), f.name
            assert vectors.inferer.tobytes() == new.inferer.tobytes()
            assert vectors.forecaster.tobytes() == new.forecaster.tobytes()


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40),
    weights=st.lists(
        st.one_of(st.floats(0.0, 1e3), st.sampled_from([0.0, 1e-320, 1.0])),
        min_size=40,
        max_size=40,
    ),
    percentiles=st.lists(st.floats(-10.0, 110.0), min_size=1, max_size=6),
)
def test_weighted_percentiles_python_path_equals_array_path(
    values: list[float], weights: list[float], percentiles: list[float]
) -> None:
    """Ascending positions are interpolated on Python floats; the result must be the bits of
    the numpy loop (searchsorted) it replaces."""
    v = np.array(values)
    w = np.array(weights[: len(values)])
    w[0] += 1.0  # a positive total
    ps = np.array([*percentiles, 2.28, 50.0, 97.72])
    got = stats.weighted_percentiles(v, w, ps)
    order = np.argsort(v, kind="stable")
    sw = w[order]
    pos = (np.cumsum(sw) - 0.5 * sw) / stats.fixed_sum_scalar(sw)
    want = stats._interpolate_arrays(pos, v[order], ps / 100.0)
    assert got.tobytes() == want.tobytes()


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=20),
    weights=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([math.inf, -math.inf, math.nan, -1.0, 0.0, 1e308]),
        ),
        min_size=20,
        max_size=20,
    ),
)
def test_weighted_percentiles_bad_weights_are_a_synthesis_error(
    values: list[float], weights: list[float]
) -> None:
    """Infinite, NaN, negative or overflowing weights give a SynthesisError (hypothesis once
    found an IndexError here); otherwise five finite band values within the values' range."""
    w = weights[: len(values)]
    try:
        band = stats.weighted_percentiles(values, w, [2.28, 15.87, 50.0, 84.13, 97.72])
    except SynthesisError:
        finite_non_negative = all(0.0 <= x < math.inf for x in w)
        assert not finite_non_negative or not 0.0 < stats.fixed_sum_scalar(w) < math.inf
        return
    assert all(0.0 <= x < math.inf for x in w)
    assert band.shape == (5,) and bool(np.all(np.isfinite(band)))
    assert min(values) <= float(band.min()) and float(band.max()) <= max(values)
