"""``alloranet synthesis replay``: every computed quantity under the case's key names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alloranet.cli import main
from tests.vectors._vectors import VECTORS, rel_error, requires_vectors


@requires_vectors
def test_replay_prints_expected_keys(capsys: pytest.CaptureFixture[str]) -> None:
    case = VECTORS / "synthesis_epoch_302.json"
    hist = [str(VECTORS / "synthesis_epoch_301.json"), str(VECTORS / "synthesis_epoch_300.json")]
    assert main(["synthesis", "replay", str(case), "--history", *hist, "-o", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    expected = json.loads(case.read_text())["expected"]
    assert set(got) == set(expected)
    assert rel_error(got["network_inference_oneout"], expected["network_inference_oneout"]) < 1e-12
    assert rel_error(got["reputer_scores"], expected["reputer_scores"]) < 1e-10
    assert rel_error(got["inferer_reward_fractions"], expected["inferer_reward_fractions"]) < 1e-12


def test_replay_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthesis", "replay", str(tmp_path / "missing.json")]) == 1
    assert capsys.readouterr().err.startswith("error: cannot read case file")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"inputs": {"inferences": [1.0], "forecasted_losses": [[1.0, 2.0]]}}))
    assert main(["synthesis", "replay", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("error:")
    bad.write_text("[1, 2]")
    assert main(["synthesis", "replay", str(bad)]) == 1
