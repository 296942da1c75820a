"""Is the network inference better than any single model? (issue 3, "prove it")

Runs the synthesis end to end in a loop — network inference -> reputer losses -> network
losses -> regret update (and the topic's initial regret) — on seeded synthetic topics, and
scores the second half of each run by mean log10 squared error:

* Setup A (Allora's synthetic set-up): truth is a random walk; 5 inferers with fixed error
  and bias; each epoch one random inferer is the outperformer (error and bias halved);
  3 forecasters report each inferer's realised log10 loss with 0.2 dex noise, blended with
  the inferer's running mean loss by a per-forecaster context weight (0.9, 0.7, 0.5).
* Setup B (context): a hidden context picks the one good inferer each epoch; forecasters
  see the context (not the realised loss) and forecast the expected loss with 0.2 dex noise.
  Variant "useless": forecasters forecast random numbers.

Reported per setup: mean log10 loss of the network inference, the naive network inference,
the simple average of inferences and the best single inferer (chosen in hindsight), and the
ratios in loss (10^difference). One reputer reports exact losses.

Usage: python benchmarks/self_improvement.py [--quick] [--seeds N] [--epochs N]
Last line: JSON with A_network_over_best, A_network_over_naive, B_network_over_best,
B_network_over_naive, B_useless_forecasters_dex_vs_naive.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from alloranet.synthesis import (
    LossReports,
    ModuleParams,
    RegretState,
    ReputerReports,
    TopicParams,
    WorkerRound,
    compute_network_inferences,
    compute_network_losses,
    compute_regret_update,
)

N_INF, N_FC = 5, 3
INFERERS = tuple(f"inferer-{j}" for j in range(N_INF))
FORECASTERS = tuple(f"forecaster-{k}" for k in range(N_FC))
TOPIC = TopicParams(p_norm=3.0, alpha_regret=0.1, epsilon=0.01)
MODULE = ModuleParams()


def log_loss(pred: np.ndarray, truth: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.log10(np.maximum((pred - truth) ** 2, 1e-300))


@dataclass
class Totals:
    network: list[float]
    naive: list[float]
    average: list[float]
    workers: list[np.ndarray]


# A forecaster model: (rng, epoch state) -> (K, N) forecasted log10 losses
Forecaster = Callable[[np.random.Generator, dict[str, np.ndarray]], np.ndarray]


def run(seed: int, epochs: int, setup: str) -> Totals:
    rng = np.random.default_rng(seed)
    truth = 0.0
    err = np.array([0.10, 0.13, 0.16, 0.19, 0.22]) if setup == "A" else np.full(N_INF, 1.0)
    bias = rng.normal(0.0, 0.05, N_INF) if setup == "A" else rng.normal(0.0, 0.02, N_INF)
    context_w = np.array([0.9, 0.7, 0.5])
    mean_loss = np.full(N_INF, np.log10(0.02))
    state = RegretState.empty(0.0)
    latest = None
    out = Totals([], [], [], [])
    half = epochs // 2
    for t in range(epochs):
        truth += rng.normal(0.0, 0.1)
        if setup == "A":
            star = rng.integers(N_INF)
            e, b = err.copy(), bias.copy()
            e[star] /= 2.0
            b[star] /= 2.0
        else:
            star = rng.integers(N_INF)
            e, b = err.copy(), bias.copy()
            e[star] = 0.1
        inferences = truth + b + rng.normal(0.0, 1.0, N_INF) * e
        real = log_loss(inferences, truth)
        if setup == "A":
            fc = context_w[:, None] * real[None, :] + (1 - context_w[:, None]) * mean_loss[None, :]
            fc = fc + rng.normal(0.0, 0.2, (N_FC, N_INF))
        elif setup == "B":
            expected = np.log10(e**2 + b**2)
            fc = expected[None, :] + rng.normal(0.0, 0.2, (N_FC, N_INF))
        else:  # useless forecasters
            fc = rng.normal(-1.0, 1.0, (N_FC, N_INF))
        mean_loss = 0.9 * mean_loss + 0.1 * real
        round_ = WorkerRound(INFERERS, inferences, FORECASTERS, fc)
        net = compute_network_inferences(TOPIC, MODULE, round_, state, latest)
        v = net.values
        if t >= half:
            out.network.append(float(log_loss(np.array([v.combined]), truth)[0]))
            out.naive.append(float(log_loss(np.array([v.naive]), truth)[0]))
            out.average.append(float(log_loss(np.array([inferences.mean()]), truth)[0]))
            out.workers.append(real)
        reports = ReputerReports(
            ("reputer-0",),
            INFERERS,
            FORECASTERS,
            LossReports(
                stakes=np.array([1.0]),
                combined=log_loss(np.array([v.combined]), truth),
                naive=log_loss(np.array([v.naive]), truth),
                inferer=real[None, :],
                forecaster=log_loss(v.forecast_implied, truth)[None, :],
                oneout_inferer=log_loss(v.oneout_inferers, truth)[None, :],
                oneout_forecaster=log_loss(v.oneout_forecasters, truth)[None, :],
                onein=log_loss(v.onein, truth)[None, :],
                oneout_inferer_forecaster=log_loss(v.forecast_implied_oneout, truth)[None, :, :],
            ),
        )
        latest = compute_network_losses(reports)
        experienced = frozenset(INFERERS) if t >= 10 else frozenset()
        state = compute_regret_update(
            TOPIC,
            MODULE,
            state,
            latest,
            experienced,
            frozenset(FORECASTERS) if t >= 10 else frozenset(),
        )
    return out


def summarise(setup: str, seeds: int, epochs: int) -> dict[str, float]:
    net, naive, avg, best = [], [], [], []
    for s in range(seeds):
        r = run(1000 + s, epochs, setup)
        net.append(statistics.fmean(r.network))
        naive.append(statistics.fmean(r.naive))
        avg.append(statistics.fmean(r.average))
        best.append(float(np.min(np.mean(np.array(r.workers), axis=0))))
    m = {
        k: statistics.fmean(v)
        for k, v in (("network", net), ("naive", naive), ("average", avg), ("best", best))
    }
    m["network_over_best"] = 10 ** (m["network"] - m["best"])
    m["network_over_naive"] = 10 ** (m["network"] - m["naive"])
    m["network_over_average"] = 10 ** (m["network"] - m["average"])
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description="network inference vs single models")
    parser.add_argument("--quick", action="store_true", help="3 seeds x 200 epochs")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=1000)
    args = parser.parse_args()
    seeds, epochs = (3, 200) if args.quick else (args.seeds, args.epochs)
    print(f"seeds={seeds} epochs={epochs} (second half scored; mean log10 squared error)")
    print(
        f"{'setup':>9} {'network':>8} {'naive':>8} {'average':>8} {'best':>8} "
        f"{'net/best':>9} {'net/naive':>10} {'net/avg':>8}"
    )
    res = {}
    for setup in ("A", "B", "B-useless"):
        m = summarise(setup, seeds, epochs)
        res[setup] = m
        print(
            f"{setup:>9} {m['network']:8.3f} {m['naive']:8.3f} {m['average']:8.3f} "
            f"{m['best']:8.3f} {m['network_over_best']:9.3f} {m['network_over_naive']:10.3f} "
            f"{m['network_over_average']:8.3f}"
        )
    print("targets: A net/best <= 0.15, net/naive <= 0.15; B net/best <= 0.35, net/naive <= 0.40;")
    print("         B with useless forecasters: network - naive <= +0.03 dex")
    print(
        json.dumps(
            {
                "A_network_over_best": round(res["A"]["network_over_best"], 4),
                "A_network_over_naive": round(res["A"]["network_over_naive"], 4),
                "B_network_over_best": round(res["B"]["network_over_best"], 4),
                "B_network_over_naive": round(res["B"]["network_over_naive"], 4),
                "B_useless_forecasters_dex_vs_naive": round(
                    res["B-useless"]["network"] - res["B-useless"]["naive"], 4
                ),
                "seeds": seeds,
                "epochs": epochs,
            }
        )
    )


if __name__ == "__main__":
    main()
