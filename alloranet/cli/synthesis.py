"""``alloranet synthesis replay CASE.json``: re-check an epoch's numbers offline.

Reads a case in the reference vectors' format (inputs, state_from_previous_epoch,
reputer_reports, params_used_by_go_tests) and prints every quantity the synthesis computes,
under the key names of the case's ``expected``. ``--history`` adds earlier epochs' cases
(most recent first) whose scores scale the worker reward fractions (spec 5.3).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from alloranet.cli.output import add_output_flag, emit, subcommand
from alloranet.errors import ConfigError
from alloranet.synthesis.case import replay_case

EPILOG = """examples:
  alloranet synthesis replay synthesis_epoch_301.json
  alloranet synthesis replay synthesis_epoch_302.json --history synthesis_epoch_301.json -o json
"""


def _load_case(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read case file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"case file {path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"case file {path} must hold a JSON object")
    return data


def _render(data: dict[str, Any]) -> str:
    lines = []
    for key, value in data.items():
        lines.append(f"{key:45s} {json.dumps(value)}")
    return "\n".join(lines)


def _replay(args: argparse.Namespace) -> int:
    case = _load_case(args.case)
    history: dict[str, list[Any]] = {"inferer": [], "forecaster": []}
    for path in args.history or []:
        prev = _load_case(path).get("expected") or {}
        for task in ("inferer", "forecaster"):
            scores = prev.get(f"{task}_scores")
            if scores is not None:
                history[task].append(np.array(scores, dtype=np.float64))
    reward = float(args.topic_reward) if args.topic_reward is not None else None
    try:
        result = replay_case(case, topic_reward=reward, score_history=history)
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise ConfigError(f"malformed case file {args.case}: {exc}") from exc
    emit(args, result, _render)
    return 0


def register(subparsers: Any) -> None:
    parser = subcommand(subparsers, "synthesis", "inference synthesis tools", EPILOG)
    sub = parser.add_subparsers(dest="synthesis_verb", metavar="VERB")
    sub.required = True
    replay = subcommand(sub, "replay", "recompute one epoch of a case file", EPILOG)
    replay.add_argument("case", help="case file in the vectors' format")
    replay.add_argument(
        "--history", nargs="*", default=[], help="earlier epochs' case files, most recent first"
    )
    replay.add_argument(
        "--topic-reward", default=None, help="topic reward E_t (default: the case's expected)"
    )
    add_output_flag(replay)
    replay.set_defaults(handler=_replay)
