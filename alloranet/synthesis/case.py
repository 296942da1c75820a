"""Replay of one epoch in the reference vectors' case format (vectors/allora/README.md).

Pure: a parsed JSON object in, a JSON-ready object out, under the same key names as the case's
``expected``. Workers are named by slot ("inferer-0", ...), which sort in slot order, so the
vectors' slot order is our address order. Used by ``alloranet synthesis replay`` and the
conformance tests; anyone can re-check the network's numbers offline with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from alloranet.synthesis.errors import SynthesisError
from alloranet.synthesis.inference import (
    InferenceRegrets,
    SynthesisConfig,
    compute_inference_arrays,
)
from alloranet.synthesis.losses import LossReports, compute_loss_arrays
from alloranet.synthesis.regrets import compute_regret_arrays
from alloranet.synthesis.rewards import (
    forecasting_utility,
    reputer_reward_fractions,
    task_entropy,
    task_split,
    worker_reward_fractions,
)
from alloranet.synthesis.scores import forecaster_scores, inferer_scores, reputer_scores

FloatArray = npt.NDArray[np.float64]


def _arr(value: Any, name: str) -> FloatArray:
    try:
        out = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise SynthesisError(f"case field {name}: not numbers ({exc})") from exc
    return out


def _get(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise SynthesisError(f"case is missing {where}.{key}")
    return obj[key]


def _list(a: FloatArray) -> Any:
    return (
        [None if np.isnan(v) else float(v) for v in a.ravel()]
        if a.ndim == 1
        else [_list(row) for row in a]
    )


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def parse_reports(rep: Mapping[str, Any]) -> LossReports:
    """The ``reputer_reports`` section as :class:`LossReports` (one-out column b < N withholds
    inferer b, b >= N forecaster b - N)."""
    inf = _arr(_get(rep, "loss_inference", "reputer_reports"), "loss_inference")
    n = inf.shape[1]
    oneout = _arr(_get(rep, "loss_network_inference_oneout", "reputer_reports"), "oneout")
    return LossReports(
        stakes=_arr(_get(rep, "stakes", "reputer_reports"), "stakes"),
        combined=_arr(_get(rep, "loss_network_inference", "reputer_reports"), "combined"),
        naive=_arr(_get(rep, "loss_naive_network_inference", "reputer_reports"), "naive"),
        inferer=inf,
        forecaster=_arr(_get(rep, "loss_forecast_implied_inference", "reputer_reports"), "fi"),
        oneout_inferer=oneout[:, :n],
        oneout_forecaster=oneout[:, n:],
        onein=_arr(_get(rep, "loss_naive_network_inference_onein", "reputer_reports"), "onein"),
        oneout_inferer_forecaster=_arr(
            _get(rep, "loss_forecast_implied_inference_oneout", "reputer_reports"), "fi oneout"
        ),
    )


def parse_regrets(state: Mapping[str, Any], n: int, k: int) -> InferenceRegrets:
    """The regrets of ``state_from_previous_epoch`` (slots 0..N-1 inferers, N.. forecasters)."""
    r = _arr(_get(state, "regrets", "state"), "regrets")
    oo = _arr(
        _get(state, "regrets_oneout", "state"), "regrets_oneout"
    ).T  # file: [worker][withheld]
    oi = _arr(_get(state, "regrets_onein", "state"), "regrets_onein")  # [k][inferers..., self]
    return InferenceRegrets(
        inferer=r[:n],
        forecaster=r[n:],
        naive=_arr(_get(state, "naive_regrets", "state"), "naive_regrets"),
        oneout_inferer_inferer=oo[:n, :n],
        oneout_inferer_forecaster=oo[:n, n:],
        oneout_forecaster_inferer=oo[n:, :n],
        oneout_forecaster_forecaster=oo[n:, n:],
        onein_inferer=oi[:, :n],
        onein_self=oi[:, n],
    )


def _f(params: Mapping[str, Any], key: str, default: float) -> float:
    return float(params[key]) if key in params else default


def score_samples(current: FloatArray, history: list[FloatArray], limit: int = 10) -> FloatArray:
    """The ``MaxSamplesToScaleScores`` most recent score records: this round's, then earlier
    rounds' (most recent first)."""
    return np.concatenate([current, *history])[:limit]


def replay_case(
    case: Mapping[str, Any],
    topic_reward: float | None = None,
    score_history: Mapping[str, list[FloatArray]] | None = None,
) -> dict[str, Any]:
    """Every quantity of one epoch the case's inputs determine, keyed as ``expected``.

    ``score_history`` ("inferer"/"forecaster" -> earlier rounds' scores, most recent first)
    supplies the score records that scale the worker reward fractions (spec 5.3); the case
    format does not carry them, so without it only this round's scores are used.

    Without ``state_from_previous_epoch`` only what needs no history is computed (losses,
    inferer and forecaster scores). The topic reward is an input of the simulator: taken
    from ``topic_reward`` or the case's ``expected.topic_rewards``."""
    params = case.get("params_used_by_go_tests", {}) or {}
    cfg = SynthesisConfig(
        p_norm=_f(params, "p_norm", 3.0),
        c_norm=_f(params, "c_norm", 0.75),
        epsilon=_f(params, "epsilon_topic", 0.01),
        epsilon_safe_div=_f(params, "epsilon_safe_div", 1e-7),
    )
    alpha = _f(params, "alpha_regret", 0.1)
    inputs = _get(case, "inputs", "case")
    inferences = _arr(_get(inputs, "inferences", "inputs"), "inferences")
    forecasts = _arr(_get(inputs, "forecasted_losses", "inputs"), "forecasted_losses")
    n, k = inferences.size, forecasts.shape[0]
    reports = parse_reports(_get(case, "reputer_reports", "case"))
    losses = compute_loss_arrays(reports)
    out: dict[str, Any] = {
        "network_loss": losses.combined,
        "network_naive_loss": losses.naive,
        "network_loss_oneout": _list(
            np.concatenate([losses.oneout_inferer, losses.oneout_forecaster])
        ),
        "network_naive_loss_onein": _list(losses.onein),
        "inference_losses": _list(losses.inferer),
        "forecast_implied_inference_losses": _list(losses.forecaster),
    }
    t_inf = inferer_scores(losses.oneout_inferer, losses.combined)
    t_fc = forecaster_scores(losses.oneout_forecaster, losses.onein, losses.combined, losses.naive)
    out["inferer_scores"] = _list(t_inf)
    out["forecaster_scores"] = _list(t_fc)
    state = case.get("state_from_previous_epoch")
    if not state:
        return out
    prev = parse_regrets(state, n, k)
    latest = float(_get(state, "network_loss", "state"))
    net = compute_inference_arrays(inferences, forecasts, prev, latest, 1.0, cfg)
    out["forecast_implied_inferences"] = _list(net.forecast_implied)
    out["forecast_implied_inferences_oneout_inferer"] = _list(net.forecast_implied_oneout)
    out["network_inference"] = net.combined
    out["network_naive_inference"] = net.naive
    out["network_inference_oneout"] = _list(
        np.concatenate([net.oneout_inferers, net.oneout_forecasters])
    )
    out["network_naive_inference_onein"] = _list(net.onein)
    out["network_inference_errorbar"] = _list(net.confidence_band)
    out["forecasted_regrets"] = _list(latest - forecasts)
    new = compute_regret_arrays(losses, prev, alpha)
    out["regrets"] = _list(np.concatenate([new.inferer, new.forecaster]))
    out["naive_regrets"] = _list(new.naive)
    oo = np.block(
        [
            [new.oneout_inferer_inferer, new.oneout_inferer_forecaster],
            [new.oneout_forecaster_inferer, new.oneout_forecaster_forecaster],
        ]
    )
    out["regrets_oneout"] = _list(oo.T)
    out["regrets_onein"] = _list(np.concatenate([new.onein_inferer, new.onein_self[:, None]], 1))
    rep = reputer_scores(
        reports, _arr(_get(state, "reputer_listening_coefficients", "state"), "coefficients")
    )
    out["reputer_scores"] = _list(rep.scores)
    out["reputer_listening_coefficients"] = _list(rep.coefficients)
    out["reputer_adjusted_stakes"] = _list(rep.adjusted_stakes)
    # the simulator's reward parameters: p_reward 3 (inference, forecast), 1 (reputer)
    hist = score_history or {}
    s_inf = score_samples(t_inf, list(hist.get("inferer", [])))
    s_fc = score_samples(t_fc, list(hist.get("forecaster", [])))
    u_inf = worker_reward_fractions(t_inf, s_inf, 3.0, cfg.c_norm, cfg.epsilon)
    u_fc = worker_reward_fractions(t_fc, s_fc, 3.0, cfg.c_norm, cfg.epsilon)
    v_rep = reputer_reward_fractions(reports.stakes, rep.scores, 1.0)
    out["inferer_reward_fractions"] = _list(u_inf)
    out["forecaster_reward_fractions"] = _list(u_fc)
    out["reputer_reward_fractions"] = _list(v_rep)
    e_inf = task_entropy(u_inf, _arr(state["inferer_reward_fractions_smooth"], "smooth"), 0.1, 0.25)
    e_fc = task_entropy(
        u_fc, _arr(state["forecaster_reward_fractions_smooth"], "smooth"), 0.1, 0.25
    )
    e_rep = task_entropy(v_rep, _arr(state["reputer_reward_fractions_smooth"], "smooth"), 0.1, 0.25)
    out["inferer_reward_fractions_smooth"] = _list(e_inf.smoothed)
    out["forecaster_reward_fractions_smooth"] = _list(e_fc.smoothed)
    out["reputer_reward_fractions_smooth"] = _list(e_rep.smoothed)
    g = e_fc.entropy if n > 1 and k > 0 else 0.0
    out["entropies"] = {"inferers": e_inf.entropy, "forecasters": g, "reputers": e_rep.entropy}
    util = forecasting_utility(
        losses.naive, losses.combined, t_inf, float(state["forecaster_score_ratio"]), 0.1
    )
    out["forecaster_task_score"] = util.task_score
    out["forecaster_score_ratio"] = util.score_ratio
    out["forecasters_utility"] = util.chi
    reward = topic_reward
    if reward is None:
        exp = case.get("expected", {}) or {}
        if "topic_rewards" not in exp:
            return out
        reward = float(exp["topic_rewards"])
    split = task_split(reward, e_inf.entropy, g, e_rep.entropy, util.chi)
    out["task_reward_fractions"] = {
        "inferers": split.inferers / reward,
        "forecasters": split.forecasters / reward,
        "reputers": split.reputers / reward,
    }
    out["topic_rewards"] = reward
    out["inferer_rewards"] = _list(u_inf * split.inferers)
    out["forecaster_rewards"] = _list(u_fc * split.forecasters)
    out["reputer_rewards"] = _list(v_rep * split.reputers)
    return out
