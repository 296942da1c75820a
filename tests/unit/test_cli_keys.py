"""The keys verbs through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alloranet.cli import main


def test_keys_add_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "add", "--name", "alice", "--home", str(tmp_path), "-o", "json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["address"].startswith("allo1")
    assert main(["keys", "list", "--home", str(tmp_path), "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["address"] for k in listed] == [created["address"]]
    assert main(["keys", "show", "--name", "alice", "--home", str(tmp_path)]) == 0
    assert created["address"] in capsys.readouterr().out


def test_keys_errors_are_one_line_with_nonzero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "show", "--name", "nobody", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert main(["keys", "add", "--name", "bad/name", "--home", str(tmp_path)]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["keys", "frobnicate"])
    assert exc.value.code == 2
