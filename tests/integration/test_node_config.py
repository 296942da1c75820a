"""Node home, config and genesis files: round trips and one-line errors for bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from alloranet.config import load_toml
from alloranet.consensus.validators import compute_genesis_sets
from alloranet.errors import ConfigError
from alloranet.node.chainlink import (
    compute_chain_genesis,
    validator_set_from_wire,
    validator_set_to_wire,
)
from alloranet.node.config import load_config, parse_config
from alloranet.node.genesis import load_genesis, parse_genesis
from alloranet.node.home import init_home


def test_init_writes_a_loadable_commented_home(tmp_path: Path) -> None:
    result = init_home(tmp_path / "h", moniker="val", chain_id="c1", p2p_port=1, rpc_port=2)
    config = load_config(tmp_path / "h")
    assert config.chain_id == "c1" and config.rpc.listen == "127.0.0.1:2"
    text = (tmp_path / "h" / "config.toml").read_text()
    assert text.count("# ") > 20  # every option is explained
    assert parse_config(load_toml(tmp_path / "h" / "config.toml")) == config
    assert config.p2p.tx_direct and "tx_direct = true" in text
    assert not parse_config({"p2p": {"tx_direct": False}}).p2p.tx_direct
    genesis = load_genesis(tmp_path / "h" / "genesis.json")
    assert genesis.validators[0].public_key.hex() == result.validator_public_key
    assert compute_chain_genesis(genesis).chain_id == "c1"
    key_before = (tmp_path / "h" / "validator_key.json").read_bytes()
    with pytest.raises(ConfigError, match="initialised"):
        init_home(tmp_path / "h", moniker="val", chain_id="c1")
    init_home(tmp_path / "h", moniker="v2", chain_id="c1", overwrite=True)
    assert (tmp_path / "h" / "validator_key.json").read_bytes() == key_before


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"monikr": "x"}, "unknown option 'monikr'"),
        ({"rpc": {"listen": "nowhere"}}, "host:port"),
        ({"consensus": {"preset": "fast"}}, "preset must be one of"),
        ({"consensus": {"timeout_vote_ms": -1}}, "non-negative integer"),
        ({"p2p": {"listen": ["tcp://1"]}}, "not a multiaddr"),
        ({"log": {"level": "loud"}}, "level must be"),
        ({"p2p": "x"}, "must be a table"),
        ({"validator": "yes"}, "true or false"),
        ({"p2p": {"tx_direct": 1}}, "true or false"),
    ],
)
def test_config_errors_name_the_field(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(raw)


def test_missing_home_says_to_run_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="alloranet init"):
        load_config(tmp_path / "nope")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "JSON object"),
        ({"validators": []}, "missing field 'chain_id'"),
        ({"chain_id": "c", "validators": []}, "at least one validator"),
        ({"chain_id": "c", "validators": [{"public_key": "zz", "stake": "1"}]}, "not hex"),
        ({"chain_id": "c", "validators": [{"public_key": "00" * 32, "stake": "0"}]}, "positive"),
        (
            {"chain_id": "c", "validators": [{"public_key": "00" * 32, "stake": "1"}],
             "accounts": [{"address": "bad", "balance": "1"}]},
            "accounts\\[0\\].address",
        ),
    ],
)  # fmt: skip
def test_genesis_errors(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_genesis(raw)


def test_genesis_param_overrides_are_checked(tmp_path: Path) -> None:
    init_home(tmp_path, moniker="v", chain_id="c")
    spec = load_genesis(tmp_path / "genesis.json")
    good = parse_genesis({**spec.to_json(), "params": {"emissions": {"min_epoch_length": 4}}})
    assert compute_chain_genesis(good).emissions.min_epoch_length == 4
    bad = parse_genesis({**spec.to_json(), "params": {"emissions": {"nope": 1}}})
    with pytest.raises(ConfigError, match="unknown parameter 'nope'"):
        compute_chain_genesis(bad)


def test_validator_sets_round_trip_with_priorities() -> None:
    members = [(bytes([i]) * 32, 10 * (i + 1)) for i in range(4)]
    current, nxt = compute_genesis_sets(members)
    for vs in (current, nxt, nxt.increment_proposer_priority(3)):
        back = validator_set_from_wire(validator_set_to_wire(vs))
        assert back.validators == vs.validators and back.proposer_key == vs.proposer_key
        assert back.get_proposer(2) == vs.get_proposer(2)
