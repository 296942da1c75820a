"""``alloranet tx`` message building (no node needed): validator key sources, unjail, unstake."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from alloranet.chain.msgs import (
    Msg,
    MsgAddStake,
    MsgCreateValidator,
    MsgDelegateStake,
    MsgRemoveDelegateStake,
    MsgRemoveStake,
    MsgUndelegate,
    MsgUnjail,
)
from alloranet.cli.tx import _msgs
from alloranet.crypto import PrivateKey, save_key
from alloranet.errors import ConfigError, ValidationError
from alloranet.types import UALLO_PER_ALLO


def _args(**kw: object) -> argparse.Namespace:
    base = {"tx_verb": "create-validator", "pubkey": None, "validator_key_file": None}
    return argparse.Namespace(**{**base, **kw})


def test_create_validator_from_hex_or_key_file(tmp_path: Path) -> None:
    key = PrivateKey.from_label("validator-x")
    msgs = _msgs(_args(pubkey=key.public_key.hex(), amount="1000allo"))
    assert msgs == [MsgCreateValidator(key.public_key, 1000 * UALLO_PER_ALLO)]
    path = tmp_path / "validator_key.json"
    save_key(path, key)
    assert _msgs(_args(validator_key_file=path, amount="5")) == [
        MsgCreateValidator(key.public_key, 5)
    ]


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({}, "exactly one"),
        ({"pubkey": "ab", "validator_key_file": Path("x")}, "exactly one"),
        ({"pubkey": "zz"}, "must be hex"),
        ({"pubkey": "ab" * 31}, "32 bytes"),
    ],
)
def test_create_validator_refuses_bad_keys(kw: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        _msgs(_args(amount="1", **kw))


def test_unjail_and_unstake_messages(tmp_path: Path) -> None:
    key = PrivateKey.from_label("validator-y")
    path = tmp_path / "validator_key.json"
    save_key(path, key)
    assert _msgs(_args(tx_verb="unjail", validator_key_file=path)) == [MsgUnjail(key.public_key)]
    assert _msgs(_args(tx_verb="unjail", pubkey=key.public_key.hex())) == [
        MsgUnjail(key.public_key)
    ]
    unstake = _args(tx_verb="unstake", validator=key.public_key.hex(), amount="2allo")
    assert _msgs(unstake) == [MsgUndelegate(key.public_key, 2 * UALLO_PER_ALLO)]
    with pytest.raises(ConfigError, match="--validator must be 32 bytes"):
        _msgs(_args(tx_verb="unstake", validator="abcd", amount="1"))
    with pytest.raises(ConfigError, match="exactly one"):
        _msgs(_args(tx_verb="unjail"))


def test_reputer_stake_verbs_build_their_messages() -> None:
    reputer = PrivateKey.from_label("reputer-z").address
    amount = 3 * UALLO_PER_ALLO

    def msgs(verb: str, **kw: object) -> list[Msg]:
        return _msgs(argparse.Namespace(tx_verb=verb, topic=7, amount="3allo", **kw))

    assert msgs("add-stake") == [MsgAddStake(7, amount)]
    assert msgs("remove-stake") == [MsgRemoveStake(7, amount)]
    assert msgs("delegate-stake", reputer=reputer) == [MsgDelegateStake(7, reputer, amount)]
    assert msgs("remove-delegate-stake", reputer=reputer) == [
        MsgRemoveDelegateStake(7, reputer, amount)
    ]
    # a mistyped address is refused here, before anything is signed or sent
    with pytest.raises(ValidationError, match="invalid address"):
        msgs("delegate-stake", reputer=reputer[:-1] + ("q" if reputer[-1] != "q" else "p"))


def test_tx_verbs_are_listed_with_help() -> None:
    """Every reputer-stake verb is reachable from the command line."""
    from alloranet.cli import build_parser

    parser = build_parser()
    for verb in ("add-stake", "remove-stake", "delegate-stake", "remove-delegate-stake"):
        argv = ["tx", verb, "--topic", "1", "--amount", "1"]
        if "delegate" in verb:
            argv += ["--reputer", "allo1x"]
        args = parser.parse_args(argv)
        assert args.tx_verb == verb and args.topic == 1
