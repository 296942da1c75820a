"""``genesis.json``: the operator-facing description of a chain's first state.

Why the node has its own file format: genesis.json is edited by people and shared between
machines, so it is JSON with hex keys and decimal-string amounts; the chain's pure genesis
builder takes typed values. :func:`load_genesis` validates the file and the node converts it
(alloranet.node.chainlink) into the chain's genesis object. The file's SHA-256 is logged at start
so operators can compare it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alloranet.crypto import address_from_public_key, validate_address
from alloranet.errors import AlloraError, ConfigError
from alloranet.types import UALLO_PER_ALLO

#: Default self-stake of a testnet validator (voting power follows stake).
DEFAULT_VALIDATOR_STAKE = 100_000 * UALLO_PER_ALLO
#: Default balance of each testnet actor account.
DEFAULT_ACCOUNT_BALANCE = 100_000 * UALLO_PER_ALLO


@dataclass(frozen=True)
class GenesisValidator:
    public_key: bytes
    stake: int
    moniker: str = ""


@dataclass(frozen=True)
class GenesisSpec:
    chain_id: str
    genesis_time_ms: int
    validators: tuple[GenesisValidator, ...]
    accounts: tuple[tuple[str, int], ...] = ()
    #: Module parameter overrides by name (e.g. shorter windows for a local testnet).
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "validators": [
                {
                    "public_key": v.public_key.hex(),
                    "address": address_from_public_key(v.public_key),
                    "stake": str(v.stake),
                    "moniker": v.moniker,
                }
                for v in self.validators
            ],
            "accounts": [{"address": a, "balance": str(b)} for a, b in self.accounts],
            "params": self.params,
        }


def single_validator_genesis(chain_id: str, public_key: bytes, moniker: str) -> GenesisSpec:
    return GenesisSpec(
        chain_id=chain_id,
        genesis_time_ms=0,
        validators=(GenesisValidator(public_key, DEFAULT_VALIDATOR_STAKE, moniker),),
        accounts=((address_from_public_key(public_key), DEFAULT_ACCOUNT_BALANCE),),
    )


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer")
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and value >= 0:
        return value
    raise ConfigError(f"{where} must be a non-negative integer (a decimal string for amounts)")


def parse_genesis(raw: Any, source: str = "genesis.json") -> GenesisSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    try:
        chain_id = raw["chain_id"]
        if not isinstance(chain_id, str) or not chain_id:
            raise ConfigError(f"{source}: chain_id must be a non-empty string")
        validators = []
        for i, v in enumerate(raw["validators"]):
            try:
                public_key = bytes.fromhex(v["public_key"])
            except (ValueError, TypeError):
                raise ConfigError(f"{source}: validators[{i}].public_key is not hex") from None
            if len(public_key) != 32:
                raise ConfigError(f"{source}: validators[{i}].public_key must be 32 bytes")
            stake = _int(v["stake"], f"{source}: validators[{i}].stake")
            if stake == 0:
                raise ConfigError(f"{source}: validators[{i}].stake must be positive")
            validators.append(GenesisValidator(public_key, stake, str(v.get("moniker", ""))))
        if not validators:
            raise ConfigError(f"{source}: needs at least one validator")
        accounts = []
        for i, a in enumerate(raw.get("accounts", [])):
            try:
                address = validate_address(a["address"])
            except AlloraError as exc:
                raise ConfigError(f"{source}: accounts[{i}].address: {exc}") from None
            accounts.append((address, _int(a["balance"], f"{source}: accounts[{i}].balance")))
        params = raw.get("params", {})
        if not isinstance(params, dict):
            raise ConfigError(f"{source}: params must be an object")
        return GenesisSpec(
            chain_id=chain_id,
            genesis_time_ms=_int(raw.get("genesis_time_ms", 0), f"{source}: genesis_time_ms"),
            validators=tuple(validators),
            accounts=tuple(accounts),
            params=params,
        )
    except KeyError as exc:
        raise ConfigError(f"{source}: missing field {exc.args[0]!r}") from None
    except TypeError:
        raise ConfigError(f"{source}: wrong structure") from None


def load_genesis(path: Path) -> GenesisSpec:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    return parse_genesis(raw, str(path))


def save_genesis(path: Path, spec: GenesisSpec) -> None:
    path.write_text(json.dumps(spec.to_json(), indent=2) + "\n")
