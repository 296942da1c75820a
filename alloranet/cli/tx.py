"""``alloranet tx ...``: sign a transaction with a local key and submit it to a node.

The sequence number and chain id are read from the node; ``--wait`` polls until the
transaction is in a block and reports its result code (a failed message exits 1).
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path
from typing import Any

from alloranet.chain.msgs import (
    Msg,
    MsgAddStake,
    MsgCreateTopic,
    MsgCreateValidator,
    MsgDelegate,
    MsgDelegateStake,
    MsgFundTopic,
    MsgInsertReputerPayload,
    MsgInsertWorkerPayload,
    MsgRegister,
    MsgRemoveDelegateStake,
    MsgRemoveStake,
    MsgSend,
    MsgUndelegate,
    MsgUnjail,
    ValueBundle,
)
from alloranet.chain.tx import sign_tx
from alloranet.cli.keys import key_path, passphrase_from
from alloranet.cli.output import emit, subcommand
from alloranet.cli.query import ApiCallError, add_api_flags, api_url, call
from alloranet.codec import sha256
from alloranet.crypto import PrivateKey, load_key, validate_address
from alloranet.errors import AlloraError, ConfigError

TOPIC_FIELDS = (
    "metadata", "loss_method", "epoch_length", "ground_truth_lag", "worker_submission_window",
    "p_norm", "alpha_regret", "allow_negative", "epsilon", "merit_sortition_alpha",
    "active_inferer_quantile", "active_forecaster_quantile", "active_reputer_quantile",
)  # fmt: skip
TOPIC_DEFAULTS: dict[str, Any] = {
    "metadata": "",
    "loss_method": "mse",
    "epoch_length": 12,
    "ground_truth_lag": 12,
    "worker_submission_window": 6,
    "p_norm": 3.0,
    "alpha_regret": 0.1,
    "allow_negative": False,
    "epsilon": 0.01,
    "merit_sortition_alpha": 0.1,
    "active_inferer_quantile": 0.25,
    "active_forecaster_quantile": 0.25,
    "active_reputer_quantile": 0.25,
}


class TxFailedError(AlloraError):
    """The transaction was included but its messages failed (the message says why)."""


def _key(args: argparse.Namespace) -> PrivateKey:
    if args.key_file:
        return load_key(args.key_file, passphrase_from(args, confirm=False))
    if not args.from_:
        raise ConfigError("name the signing key with --from NAME (in --home) or --key-file PATH")
    home = args.home or Path.home() / ".alloranet"
    return load_key(key_path(home, args.from_), passphrase_from(args, confirm=False))


def _amount(text: str) -> int:
    """``10allo`` (whole ALLO) or a plain integer of base units (uallo)."""
    from alloranet.types import UALLO_PER_ALLO

    t = text.strip().lower()
    try:
        if t.endswith("allo") and not t.endswith("uallo"):
            return int(t[:-4]) * UALLO_PER_ALLO
        return int(t.removesuffix("uallo"))
    except ValueError:
        raise ConfigError(f"amount {text!r}: use an integer of uallo or e.g. 10allo") from None


def _topic_msg(args: argparse.Namespace) -> MsgCreateTopic:
    values = dict(TOPIC_DEFAULTS)
    if args.file:
        try:
            text = Path(args.file).read_text()
            loaded = json.loads(text) if args.file.suffix == ".json" else tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read topic file {args.file}: {exc}") from None
        unknown = set(loaded) - set(TOPIC_FIELDS)
        if unknown:
            raise ConfigError(f"topic file: unknown field {sorted(unknown)[0]!r}")
        values.update(loaded)
    for name in TOPIC_FIELDS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    msg = MsgCreateTopic(**{n: values[n] for n in TOPIC_FIELDS})
    msg.validate_basic()
    return msg


def _bundle(path: Path) -> ValueBundle:
    """A reputer bundle from JSON: {"combined": x, "naive": y, "inferer_values": {addr: v}, ...}."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read losses file {path}: {exc}") from None

    def pairs(name: str) -> tuple[tuple[str, float], ...]:
        return tuple(sorted((a, float(v)) for a, v in raw.get(name, {}).items()))

    nested = tuple(
        sorted(
            (f, tuple(sorted((a, float(v)) for a, v in values.items())))
            for f, values in raw.get("one_out_inferer_forecaster_values", {}).items()
        )
    )
    return ValueBundle(
        float(raw["combined"]),
        float(raw["naive"]),
        pairs("inferer_values"),
        pairs("forecaster_values"),
        pairs("one_out_inferer_values"),
        pairs("one_out_forecaster_values"),
        pairs("one_in_forecaster_values"),
        nested,
    )


def _consensus_key(args: argparse.Namespace) -> bytes:
    """The new validator's consensus public key: ``--pubkey`` hex or a node's key file."""
    if (args.pubkey is None) == (args.validator_key_file is None):
        raise ConfigError("give exactly one of --pubkey and --validator-key-file")
    if args.validator_key_file is not None:
        return load_key(args.validator_key_file).public_key
    return _validator_pubkey(args.pubkey, "--pubkey")


def _validator_pubkey(text: str, flag: str = "--validator") -> bytes:
    """A validator's consensus public key given as 64 hex characters."""
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"{flag} must be hex (the validator's consensus public key)") from None
    if len(key) != 32:
        raise ConfigError(f"{flag} must be 32 bytes (64 hex characters), got {len(key)}")
    return key


def _msgs(args: argparse.Namespace) -> list[Msg]:
    verb = args.tx_verb
    if verb == "send":
        return [MsgSend(validate_address(args.to), _amount(args.amount))]
    if verb == "stake":
        return [MsgDelegate(_validator_pubkey(args.validator), _amount(args.amount))]
    if verb == "unstake":
        return [MsgUndelegate(_validator_pubkey(args.validator), _amount(args.amount))]
    if verb == "unjail":
        return [MsgUnjail(_consensus_key(args))]
    if verb == "create-validator":
        return [MsgCreateValidator(_consensus_key(args), _amount(args.amount))]
    if verb == "create-topic":
        return [_topic_msg(args)]
    if verb == "fund-topic":
        return [MsgFundTopic(args.topic, _amount(args.amount))]
    if verb == "register":
        msgs: list[Msg] = [MsgRegister(args.topic, args.role == "reputer")]
        if args.stake:
            msgs.append(MsgAddStake(args.topic, _amount(args.stake)))
        return msgs
    if verb == "add-stake":
        return [MsgAddStake(args.topic, _amount(args.amount))]
    if verb == "remove-stake":
        return [MsgRemoveStake(args.topic, _amount(args.amount))]
    if verb == "delegate-stake":
        return [MsgDelegateStake(args.topic, validate_address(args.reputer), _amount(args.amount))]
    if verb == "remove-delegate-stake":
        reputer = validate_address(args.reputer)
        return [MsgRemoveDelegateStake(args.topic, reputer, _amount(args.amount))]
    if verb == "submit-inference":
        forecast = []
        for item in args.forecast or ():
            address, _, value = item.partition("=")
            forecast.append((address, float(value)))
        return [MsgInsertWorkerPayload(args.topic, args.nonce, args.value, tuple(sorted(forecast)))]
    if verb == "submit-losses":
        return [MsgInsertReputerPayload(args.topic, args.nonce, _bundle(args.file))]
    raise ConfigError(f"unknown tx verb {verb}")  # pragma: no cover


def _cmd(args: argparse.Namespace) -> int:
    key = _key(args)
    msgs = _msgs(args)
    base = api_url(args)
    status = call(f"{base}/v1/status")
    account = call(f"{base}/v1/accounts/{key.address}")
    sequence = args.sequence if args.sequence is not None else int(account["sequence"])
    tx = sign_tx(key, status["chain_id"], sequence, _amount(args.fee), msgs)
    submitted = call(f"{base}/v1/txs", tx)
    result: dict[str, Any] = {"hash": sha256(tx).hex(), "status": submitted.get("status")}
    if args.wait:
        deadline = time.monotonic() + args.wait_timeout
        while True:
            try:
                info = call(f"{base}/v1/txs/{result['hash']}")
                result.update(status="included", height=info["height"], code=info["code"],
                              log=info.get("log", ""))  # fmt: skip
                break
            except ApiCallError:
                if time.monotonic() > deadline:
                    raise ApiCallError(
                        f"transaction {result['hash']} not included after {args.wait_timeout}s"
                    ) from None
                time.sleep(0.3)
    emit(args, result, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))
    if args.wait and result.get("code"):
        raise TxFailedError(f"transaction failed: {result.get('log')}")
    return 0


def register(subparsers: Any) -> None:
    parser = subcommand(
        subparsers,
        "tx",
        "sign and submit transactions",
        "examples:\n  alloranet tx send --from alice --to allo1... --amount 10allo --wait\n"
        "  alloranet tx create-topic --from alice --file topic.toml --wait\n"
        "  alloranet tx fund-topic --from alice --topic 1 --amount 100allo\n"
        "  alloranet tx create-validator --from op --validator-key-file node/validator_key.json"
        " --amount 1000allo\n"
        "  alloranet tx unjail --from op --validator-key-file node/validator_key.json --wait\n"
        "  alloranet tx register --from bob --topic 1 --role reputer --stake 1000allo\n"
        "  alloranet tx delegate-stake --from carol --topic 1 --reputer allo1... --amount 50allo\n"
        "  alloranet tx submit-inference --from bob --topic 1 --nonce 96 --value 101.5",
    )
    verbs = parser.add_subparsers(dest="tx_verb", metavar="VERB")
    verbs.required = True

    def common(name: str, text: str, example: str) -> argparse.ArgumentParser:
        sub = subcommand(verbs, name, text, f"example:\n  {example}")
        sub.add_argument("--from", dest="from_", metavar="NAME", help="key name in --home/keys")
        sub.add_argument("--key-file", type=Path, help="signing key file instead of --from")
        sub.add_argument("--passphrase-env", metavar="VAR", help="passphrase of an encrypted key")
        sub.add_argument("--fee", default="0", help="fee in uallo (or e.g. 1allo)")
        sub.add_argument("--sequence", type=int, help="override the account sequence")
        sub.add_argument("--wait", action="store_true", help="wait until included")
        sub.add_argument("--wait-timeout", type=float, default=30.0)
        add_api_flags(sub)
        sub.set_defaults(handler=_cmd)
        return sub

    send = common("send", "send tokens", "alloranet tx send --from a --to allo1... --amount 5allo")
    send.add_argument("--to", required=True)
    send.add_argument("--amount", required=True)

    def delegation_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--validator", required=True, help="validator public key (hex)")
        sub.add_argument("--amount", required=True)

    def consensus_key_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--pubkey", help="the validator's consensus public key (64 hex chars)")
        sub.add_argument(
            "--validator-key-file",
            type=Path,
            help="read the public key from the node's validator_key.json instead",
        )

    delegation_flags(
        common(
            "stake",
            "delegate stake to a validator",
            "alloranet tx stake --from a --validator PUBKEY_HEX --amount 100allo",
        )
    )
    delegation_flags(
        common(
            "unstake",
            "start unbonding stake from a validator (returned after the unbonding period)",
            "alloranet tx unstake --from a --validator PUBKEY_HEX --amount 100allo",
        )
    )
    consensus_key_flags(
        common(
            "unjail",
            "return your downtime-jailed validator to the set once its jail period is over",
            "alloranet tx unjail --from op --validator-key-file ~/.alloranet/validator_key.json "
            "--wait\n  alloranet tx unjail --from op --pubkey 3f1c...e2",
        )
    )
    create = common(
        "create-validator",
        "become a validator: self-bond --amount under a consensus key",
        "alloranet tx create-validator --from op --validator-key-file "
        "~/.alloranet/validator_key.json --amount 1000allo --wait\n"
        "  alloranet tx create-validator --from op --pubkey 3f1c...e2 --amount 1000allo",
    )
    consensus_key_flags(create)
    create.add_argument("--amount", required=True, help="self-bond, e.g. 1000allo")
    topic = common(
        "create-topic",
        "create a topic from flags and/or a TOML/JSON file",
        "alloranet tx create-topic --from a --metadata 'ETH 10m' --epoch-length 12",
    )
    topic.add_argument("--file", type=Path, help="topic fields in TOML or JSON")
    for name in TOPIC_FIELDS:
        kind = type(TOPIC_DEFAULTS[name])
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            topic.add_argument(flag, dest=name, action="store_true", default=None)
        else:
            topic.add_argument(flag, dest=name, type=kind)
    fund = common(
        "fund-topic",
        "pay what you want into a topic",
        "alloranet tx fund-topic --from a --topic 1 --amount 10allo",
    )
    fund.add_argument("--topic", type=int, required=True)
    fund.add_argument("--amount", required=True)
    reg = common(
        "register",
        "register as a topic's worker or reputer",
        "alloranet tx register --from a --topic 1 --role worker",
    )
    reg.add_argument("--topic", type=int, required=True)
    reg.add_argument("--role", choices=("worker", "reputer"), required=True)
    reg.add_argument("--stake", help="reputer stake to add in the same transaction")
    reputer_stake_verbs = (
        ("add-stake", "add to your own reputer stake in a topic (counts at once)", False),
        (
            "remove-stake",
            "withdraw own reputer stake: paid back after the topic's removal delay",
            False,
        ),
        (
            "delegate-stake",
            "delegate stake to a topic's reputer: it weighs its reports, you share its rewards",
            True,
        ),
        (
            "remove-delegate-stake",
            "withdraw stake delegated to a reputer: paid back after the removal delay",
            True,
        ),
    )
    for name, text, to_reputer in reputer_stake_verbs:
        target = " --reputer allo1..." if to_reputer else ""
        sub = common(
            name, text, f"alloranet tx {name} --from a --topic 1{target} --amount 100allo --wait"
        )
        sub.add_argument("--topic", type=int, required=True)
        if to_reputer:
            sub.add_argument("--reputer", required=True, help="the reputer's allo1... address")
        sub.add_argument("--amount", required=True, help="e.g. 100allo or a uallo integer")
    inf = common(
        "submit-inference",
        "submit an inference (and forecast) for a worker nonce",
        "alloranet tx submit-inference --from a --topic 1 --nonce 96 --value 3.2",
    )
    inf.add_argument("--topic", type=int, required=True)
    inf.add_argument("--nonce", type=int, required=True)
    inf.add_argument("--value", type=float)
    inf.add_argument("--forecast", action="append", metavar="ADDR=LOG10LOSS")
    losses = common(
        "submit-losses",
        "submit a reputer's loss bundle (JSON file)",
        "alloranet tx submit-losses --from r --topic 1 --nonce 96 --file l.json",
    )
    losses.add_argument("--topic", type=int, required=True)
    losses.add_argument("--nonce", type=int, required=True)
    losses.add_argument("--file", type=Path, required=True)
