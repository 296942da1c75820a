"""Conformance of alloranet.synthesis with the reference vectors (spec/synthesis.md 8).

Every epoch case in the directory (``synthesis_epoch_*.json``: 300-302 today, and any
other epoch dropped in beside them) and the same epochs as flat rows, the weight and
gradient tables, the tokenomics and sortition rows. Agreement: 1e-12 relative (1e-10 for
the iterative reputer calibration). ``test_worst_error_table`` prints the worst error per
quantity (``pytest -s tests/vectors``) and writes it to the test's tmp dir.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from alloranet.synthesis import detmath
from alloranet.synthesis.case import replay_case
from alloranet.synthesis.emissions import max_emission_per_staked, target_emission_per_staked
from alloranet.synthesis.rewards import task_entropy, task_split, topic_target_weight
from alloranet.synthesis.sortition import compute_sortition_update, select_active
from alloranet.synthesis.weights import gradient, weight_from_normalized_regret
from tests.vectors._vectors import VECTORS, load, rel_error, requires_vectors

pytestmark = requires_vectors

#: Every epoch case present (discovered, so a new case file is checked without a code change).
EPOCHS = tuple(
    sorted(int(p.stem.rsplit("_", 1)[1]) for p in VECTORS.glob("synthesis_epoch_*.json"))
) or (300, 301, 302)
ITERATIVE = {"reputer_scores", "reputer_listening_coefficients", "reputer_adjusted_stakes"}
#: Depend on forecaster score records of epochs before 300 (not in the vectors); checked
#: below by feeding the expected upstream values instead.
NEEDS_OLDER_HISTORY = {
    "forecaster_reward_fractions",
    "forecaster_reward_fractions_smooth",
    "entropies",
    "task_reward_fractions",
    "inferer_rewards",
    "forecaster_rewards",
    "reputer_rewards",
}
#: Scaled by the score records of earlier epochs: when a case's previous epoch is not among
#: the cases (a lone case dropped in), the replay cannot know them, so these are left out too
#: and the downstream checks are fed the expected values.
NEEDS_PREVIOUS_CASE = {"inferer_reward_fractions", "inferer_reward_fractions_smooth"}
WORST: dict[str, float] = {}


def _cases() -> dict[int, dict[str, Any]]:
    return {ep: load(f"synthesis_epoch_{ep}.json") for ep in EPOCHS}


def _history(cases: dict[int, dict[str, Any]], ep: int) -> dict[str, list[Any]]:
    prev = []  # the run of consecutive earlier epochs that have cases, newest first
    while ep - 1 - len(prev) in cases:
        prev.append(ep - 1 - len(prev))
    return {
        task: [np.array(cases[e]["expected"][f"{task}_scores"], dtype=np.float64) for e in prev]
        for task in ("inferer", "forecaster")
    }


def _flatten(value: Any) -> Any:
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return value


def _record(name: str, err: float) -> None:
    WORST[name] = max(WORST.get(name, 0.0), err)


def _history_known(cases: dict[int, dict[str, Any]], ep: int) -> bool:
    """Whether the replay of ``ep`` has the score records it needs: it starts a run (no
    previous state), or the previous epoch's case is there."""
    return not cases[ep]["state_from_previous_epoch"] or ep - 1 in cases


def _check_case(
    case: dict[str, Any], got: dict[str, Any], epoch: int, history_known: bool = True
) -> int:
    skip = NEEDS_OLDER_HISTORY if history_known else NEEDS_OLDER_HISTORY | NEEDS_PREVIOUS_CASE
    checked = 0
    for key, expected in case["expected"].items():
        if key not in got or key in skip:
            continue
        err = rel_error(_flatten(got[key]), _flatten(expected))
        _record(key, err)
        tol = 1e-10 if key in ITERATIVE else 1e-12
        assert err <= tol, f"epoch {epoch} {key}: relative error {err:.3e} > {tol}"
        checked += 1
    return checked


@pytest.mark.parametrize("epoch", EPOCHS)
def test_epoch_case(epoch: int) -> None:
    cases = _cases()
    case = cases[epoch]
    got = replay_case(case, score_history=_history(cases, epoch))
    known = _history_known(cases, epoch)
    checked = _check_case(case, got, epoch, known)
    # a case without previous state (epoch 300): only losses and worker scores are determined
    assert checked >= (8 if not case["state_from_previous_epoch"] else 30 if known else 28)


def _case_from_row(row: dict[str, str]) -> dict[str, Any]:
    """Rebuild the case layout from a flat sim_synthesis row (spec 8 column conventions)."""

    def f(key: str) -> float:
        return float(row[key])

    n, k, m = 5, 3, 5
    reps: dict[str, Any] = {
        "stakes": [f(f"reputer_stake_{r}") for r in range(m)],
        "loss_network_inference": [f(f"reputer_{r}_loss_network_inference") for r in range(m)],
        "loss_naive_network_inference": [
            f(f"reputer_{r}_loss_naive_network_inference") for r in range(m)
        ],
        "loss_inference": [
            [f(f"reputer_{r}_loss_inference_{j}") for j in range(n)] for r in range(m)
        ],
        "loss_forecast_implied_inference": [
            [f(f"reputer_{r}_loss_forecast_implied_inference_{c}") for c in range(k)]
            for r in range(m)
        ],
        "loss_forecast_implied_inference_oneout": [
            [
                [f(f"reputer_{r}_loss_forecast_implied_inference_{c}_oneout_{j}") for j in range(n)]
                for c in range(k)
            ]
            for r in range(m)
        ],
        "loss_network_inference_oneout": [
            [f(f"reputer_{r}_loss_network_inference_oneout_{b}") for b in range(n + k)]
            for r in range(m)
        ],
        "loss_naive_network_inference_onein": [
            [f(f"reputer_{r}_loss_naive_network_inference_onein_{c}") for c in range(k)]
            for r in range(m)
        ],
    }
    return {
        "inputs": {
            "inferences": [f(f"inference_{j}") for j in range(n)],
            "forecasted_losses": [
                [f(f"forecasted_loss_{c}_for_{j}") for j in range(n)] for c in range(k)
            ],
        },
        "reputer_reports": reps,
        "state_from_previous_epoch": None,
    }


def test_flat_rows_agree_with_columns() -> None:
    """Every epoch of sim_synthesis.json: network losses and worker scores from the flat row's
    reports, and the row's regret-dependent quantities via the structured case state."""
    sim = load("sim_synthesis.json")
    cases = _cases()
    assert set(sim["epochs"]) & {str(e) for e in EPOCHS}
    for ep_s, row in sorted(sim["epochs"].items()):
        got = replay_case(_case_from_row(row))
        pairs = {
            "network_loss": [row["network_loss"]],
            "network_naive_loss": [row["network_naive_loss"]],
            "network_loss_oneout": [row[f"network_loss_oneout_{b}"] for b in range(8)],
            "network_naive_loss_onein": [row[f"network_naive_loss_onein_{c}"] for c in range(3)],
            "inference_losses": [row[f"inference_loss_{j}"] for j in range(5)],
            "forecast_implied_inference_losses": [
                row[f"forecast_implied_inference_loss_{c}"] for c in range(3)
            ],
            "inferer_scores": [row[f"inferer_score_{j}"] for j in range(5)],
            "forecaster_scores": [row[f"forecaster_score_{c}"] for c in range(3)],
        }
        for key, expected in pairs.items():
            value = got[key] if isinstance(got[key], list) else [got[key]]
            err = rel_error(value, expected)
            _record(key, err)
            assert err <= 1e-12, f"row {ep_s} {key}: {err:.3e}"
        ep = int(ep_s)
        if ep in cases and cases[ep]["state_from_previous_epoch"]:
            full = replay_case(cases[ep], score_history=_history(cases, ep))
            net = [row["network_inference"]] + [
                row[f"network_inference_oneout_{b}"] for b in range(8)
            ]
            mine = [full["network_inference"], *full["network_inference_oneout"]]
            assert rel_error(mine, net) <= 1e-12
            regrets = [
                [row[f"inference_regret_worker_{a}_oneout_{b}"] for b in range(8)] for a in range(8)
            ]
            assert rel_error(full["regrets_oneout"], regrets) <= 1e-12


def _epochs_with_state() -> list[int]:
    """The cases that carry the previous epoch's state (all but the first of a run)."""
    if not (VECTORS / f"synthesis_epoch_{EPOCHS[0]}.json").is_file():
        return [301, 302]  # vectors absent: the tests are skipped anyway
    return [e for e in EPOCHS if load(f"synthesis_epoch_{e}.json")["state_from_previous_epoch"]]


@pytest.mark.parametrize("epoch", _epochs_with_state())
def test_downstream_of_forecaster_fractions(epoch: int) -> None:
    """Entropy smoothing, the task split and payouts, fed with the expected forecaster
    fractions (whose score-record history predates the vectors)."""
    case = _cases()[epoch]
    exp, state = case["expected"], case["state_from_previous_epoch"]
    u_fc = np.array(exp["forecaster_reward_fractions"], dtype=np.float64)
    ent = task_entropy(
        u_fc, np.array(state["forecaster_reward_fractions_smooth"], dtype=np.float64), 0.1, 0.25
    )
    _record(
        "forecaster_reward_fractions_smooth",
        rel_error(ent.smoothed, exp["forecaster_reward_fractions_smooth"]),
    )
    _record("entropies", rel_error([ent.entropy], [exp["entropies"]["forecasters"]]))
    cases = _cases()
    got = replay_case(case, score_history=_history(cases, epoch))
    if _history_known(cases, epoch):
        _record(
            "entropies", rel_error([got["entropies"]["inferers"]], [exp["entropies"]["inferers"]])
        )
    _record("entropies", rel_error([got["entropies"]["reputers"]], [exp["entropies"]["reputers"]]))
    reward = float(exp["topic_rewards"])
    e = {k: float(v) for k, v in exp["entropies"].items()}
    split = task_split(
        reward, e["inferers"], e["forecasters"], e["reputers"], float(exp["forecasters_utility"])
    )
    fr = [split.forecasters / reward, split.inferers / reward, split.reputers / reward]
    _record("task_reward_fractions", rel_error(fr, _flatten(exp["task_reward_fractions"])))
    known = _history_known(cases, epoch)
    u_inf = np.array(
        got["inferer_reward_fractions"] if known else exp["inferer_reward_fractions"],
        dtype=np.float64,
    )
    v_rep = np.array(got["reputer_reward_fractions"], dtype=np.float64)
    _record("inferer_rewards", rel_error(u_inf * split.inferers, exp["inferer_rewards"]))
    _record("forecaster_rewards", rel_error(u_fc * split.forecasters, exp["forecaster_rewards"]))
    _record("reputer_rewards", rel_error(v_rep * split.reputers, exp["reputer_rewards"]))
    for key in (
        "forecaster_reward_fractions_smooth",
        "entropies",
        "task_reward_fractions",
        "inferer_rewards",
        "forecaster_rewards",
        "reputer_rewards",
    ):
        assert WORST[key] <= 1e-12, (key, WORST[key])


def test_weight_table() -> None:
    table = load("table_calc_weight_from_regret.json")
    p, c = float(table["p_norm"]), float(table["c_norm"])
    for case in table["cases"]:
        w = weight_from_normalized_regret(
            float(case["normalized_regret"]), float(case["max_normalized_regret"]), p, c
        )
        err = rel_error([float(w)], [case["expected_weight"]])
        _record("table_calc_weight_from_regret", err)
        assert err <= 1e-12


def test_gradient_table() -> None:
    for case in load("table_gradient.json")["cases"]:
        g = gradient(float(case["p"]), float(case["c"]), float(case["x"]))
        err = rel_error([float(g)], [case["expected"]])
        _record("table_gradient", err)
        assert err <= 1e-12


def test_tokenomics_rows() -> None:
    """Emission rates month by month (outside the vesting months 12-36, where the simulator's
    circulating-supply bookkeeping is not reproducible from its columns), the cap, the 0.1-EMA,
    the monthly emission, the validator share, first-month topic weights and every month's
    topic reward share."""
    rows = load("sim_tokenomics.json")["epochs"]

    def f(m: int, key: str) -> float:
        return float(rows[str(m)][key])

    months = sorted(int(m) for m in rows)
    for m in months[1:]:
        max_rate = f(m, "ehat_max_i")
        reputer_share = (0.0095 / max_rate - 0.25) / 0.75
        _record(
            "ehat_max",
            rel_error([max_emission_per_staked(0.0095, 0.25, reputer_share)], [max_rate]),
        )
        if not 12 <= m <= 36:
            target = target_emission_per_staked(
                0.025,
                f(m - 1, "ecosystem_tokens_total"),
                f(m - 1, "network_tokens_staked"),
                f(m - 1, "network_tokens_circulating"),
                1e9,
            )
            _record("ehat_target", rel_error([target], [f(m, "ehat_target_i")]))
            assert WORST["ehat_target"] <= 1e-12, m
        ehat = min(f(m, "ehat_target_i"), max_rate)
        _record("ehat", rel_error([ehat], [f(m, "ehat_i")]))
        e = ehat if m == 1 else 0.1 * ehat + 0.9 * f(m - 1, "e_i")
        _record("e", rel_error([e], [f(m, "e_i")]))
        if not 12 <= m <= 36:
            monthly = e * f(m - 1, "network_tokens_staked")
            _record("monthly_emission", rel_error([monthly], [f(m, "ecosystem_tokens_emission")]))
        validators = 0.25 * f(m, "ecosystem_tokens_emission")
        _record("validator_rewards", rel_error([validators], [f(m, "validator_rewards")]))
        total_w = f(m, "all_topic_weight_sum")
        for i in range(3):
            if rows[str(m)].get(f"topic_id_{i}") is None:
                continue
            share = f(m, f"topic_weights_{i}") / total_w * f(m, "topics_rewards")
            _record("topic_reward", rel_error([share], [f(m, f"topic_rewards_{i}")]))
            if m == 1:
                w = topic_target_weight(
                    f(m, f"topic_total_stake_{i}"),
                    f(m, f"topic_total_fee_revenue_{i}"),
                    1,
                    0.5,
                    0.5,
                )
                _record("topic_weight_first_month", rel_error([w], [f(m, f"topic_weights_{i}")]))
    for key in (
        "ehat_max",
        "ehat",
        "e",
        "monthly_emission",
        "validator_rewards",
        "topic_reward",
        "topic_weight_first_month",
    ):
        assert WORST[key] <= 1e-12, (key, WORST[key])


def test_sortition_rows() -> None:
    rows = load("sim_sortition.json")["epochs"]
    assert len(rows) >= 50
    for ep, r in rows.items():
        n = int(r["n_participants"])
        prev = np.array([float(r[f"{i}_prev_quality_ema"]) for i in range(n)])
        active = select_active(prev, int(r["n_participants_drawn"]))
        assert list(active) == [r[f"{i}_active"] == "true" for i in range(n)], ep
        metric = np.array(
            [
                float(r[f"{i}_quality_metric"]) if r[f"{i}_quality_metric"] else np.nan
                for i in range(n)
            ]
        )
        up = compute_sortition_update(
            prev, active, metric, float(r["alpha_quality"]), float(r["percentile"]) / 100.0
        )
        _record(
            "sortition_quality_ema",
            rel_error(up.emas, [float(r[f"{i}_quality_ema"]) for i in range(n)]),
        )
        _record("sortition_quantile", rel_error([up.quantile_score], [r["quality_percentile"]]))
        _record("sortition_cutoff", rel_error([up.cutoff], [r["quality_cutoff"]]))
    for key in ("sortition_quality_ema", "sortition_quantile", "sortition_cutoff"):
        assert WORST[key] <= 1e-12, (key, WORST[key])


def test_detmath_agrees_with_reference_gradient_cases() -> None:
    # the gradient table is built on exp: exercise exp directly at the same points
    for case in load("table_gradient.json")["cases"]:
        p, c, x = float(case["p"]), float(case["c"]), float(case["x"])
        assert float(detmath.exp(p * (c - x))) == detmath.exp_scalar(p * (c - x))


def test_worst_error_table(tmp_path: Any) -> None:
    """Runs last in this module: prints and stores the worst relative error per quantity."""
    if not WORST:
        pytest.skip("run with the other conformance tests")
    lines = [f"{k:45s} {v:.3e}" for k, v in sorted(WORST.items())]
    text = "worst relative error per quantity\n" + "\n".join(lines) + "\n"
    (tmp_path / "worst_errors.txt").write_text(text)
    print("\n" + text)
    assert max(WORST.values()) <= 1e-10
