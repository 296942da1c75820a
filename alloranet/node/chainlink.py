"""Glue from node files to chain and consensus types: genesis, validator sets.

Why here: genesis.json is the operator's format (hex keys, decimal strings); the chain's
:class:`alloranet.chain.genesis.Genesis` is typed. Validator sets carry CometBFT proposer
priorities that evolve every height, so the node persists the pair (validators for H+1,
next validators for H+2) after each commit and reloads it on restart instead of replaying
every height since genesis.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from alloranet.chain.genesis import Genesis, GenesisValidator
from alloranet.chain.params import EmissionsParams, StakingParams
from alloranet.codec import decode, encode, expect_bytes, expect_int, expect_tuple
from alloranet.consensus.validators import Validator, ValidatorSet
from alloranet.crypto import address_from_public_key
from alloranet.errors import ConfigError, DecodeError
from alloranet.node.genesis import GenesisSpec


def _override(cls: type[Any], base: Any, overrides: Any, where: str) -> Any:
    if not overrides:
        return base
    if not isinstance(overrides, dict):
        raise ConfigError(f"genesis params.{where} must be an object")
    names = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in names:
            raise ConfigError(f"genesis params.{where}: unknown parameter {name!r}")
        default = getattr(base, name)
        if isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"genesis params.{where}.{name} must be a number")
            values[name] = float(value)
        else:
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"genesis params.{where}.{name} must be an integer")
            values[name] = value
    return dataclasses.replace(base, **values)


def compute_chain_genesis(spec: GenesisSpec) -> Genesis:
    """The chain's typed genesis from the operator's file (validator operators = key address)."""
    unknown = set(spec.params) - {"emissions", "staking"}
    if unknown:
        raise ConfigError(f"genesis params: unknown section {sorted(unknown)[0]!r}")
    return Genesis(
        chain_id=spec.chain_id,
        time_ms=spec.genesis_time_ms,
        accounts=tuple(sorted(spec.accounts)),
        validators=tuple(
            GenesisValidator(v.public_key, address_from_public_key(v.public_key), v.stake)
            for v in spec.validators
        ),
        emissions=_override(
            EmissionsParams, EmissionsParams(), spec.params.get("emissions"), "emissions"
        ),
        staking=_override(StakingParams, StakingParams(), spec.params.get("staking"), "staking"),
    )


def validator_set_to_wire(vs: ValidatorSet) -> tuple[Any, ...]:
    return (
        tuple((v.public_key, v.power, v.priority) for v in vs.validators),
        vs.proposer_key or b"",
    )


def validator_set_from_wire(wire: Any) -> ValidatorSet:
    from alloranet.consensus.validators import compute_validator_address

    f = expect_tuple(wire, "valset", 2)
    members = []
    for item in expect_tuple(f[0], "valset.validators"):
        t = expect_tuple(item, "valset.validator", 3)
        key = expect_bytes(t[0], "valset.pubkey", 32)
        members.append(
            Validator(
                key,
                expect_int(t[1], "valset.power", 1),
                expect_int(t[2], "valset.priority", -(2**63), 2**63 - 1),
                compute_validator_address(key),
            )
        )
    proposer = expect_bytes(f[1], "valset.proposer", max_size=32)
    return ValidatorSet._make(members, proposer or None)


class ValsetFile:
    """``data/valsets.bin``: {height H: (validators for H+1, next validators for H+2)}.

    Keeps the last few entries so that a crash between this write and the (asynchronous) block
    write still finds the entry matching the store's height on restart."""

    KEEP = 8

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[int, tuple[ValidatorSet, ValidatorSet]] = {}
        if path.exists():
            try:
                raw = expect_tuple(decode(path.read_bytes(), max_size=64 << 20), "valsets")
                for item in raw:
                    t = expect_tuple(item, "valsets.entry", 3)
                    self.entries[expect_int(t[0], "height", 0)] = (
                        validator_set_from_wire(t[1]),
                        validator_set_from_wire(t[2]),
                    )
            except DecodeError as exc:
                raise ConfigError(f"{path} is corrupt: {exc}") from None

    def put(self, height: int, current: ValidatorSet, nxt: ValidatorSet) -> None:
        self.entries[height] = (current, nxt)
        for old in sorted(self.entries)[: -self.KEEP]:
            del self.entries[old]
        data = encode(
            tuple(
                (h, validator_set_to_wire(a), validator_set_to_wire(b))
                for h, (a, b) in sorted(self.entries.items())
            )
        )
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
