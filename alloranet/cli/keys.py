"""``alloranet keys add|list|show``: Ed25519 account keys in ``HOME/keys/NAME.json`` (0600)."""

from __future__ import annotations

import argparse
import getpass
import os
import re
from pathlib import Path
from typing import Any

from alloranet.cli.output import add_output_flag, emit, subcommand
from alloranet.crypto import PrivateKey, read_key_info, save_key
from alloranet.errors import ConfigError, KeyFileError

DEFAULT_HOME = Path(os.environ.get("ALLORANET_HOME", Path.home() / ".alloranet"))
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def add_home_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        type=Path,
        default=DEFAULT_HOME,
        help="node/client home directory (default: $ALLORANET_HOME or ~/.alloranet)",
    )


def key_path(home: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise ConfigError(f"invalid key name {name!r}: use letters, digits, '.', '_' or '-'")
    return home / "keys" / f"{name}.json"


def passphrase_from(args: argparse.Namespace, confirm: bool) -> str | None:
    """The passphrase from ``--passphrase-env VAR``, or a prompt with ``--encrypt``."""
    if getattr(args, "passphrase_env", None):
        value = os.environ.get(args.passphrase_env)
        if not value:
            raise ConfigError(f"environment variable {args.passphrase_env} is empty or unset")
        return value
    if getattr(args, "encrypt", False):
        first = getpass.getpass("passphrase: ")
        if confirm and getpass.getpass("repeat passphrase: ") != first:
            raise ConfigError("passphrases do not match")
        return first
    return None


def _cmd_add(args: argparse.Namespace) -> int:
    path = key_path(args.home, args.name)
    if path.exists() and not args.overwrite:
        raise KeyFileError(f"key {args.name!r} already exists at {path} (use --overwrite)")
    key = PrivateKey.generate()
    save_key(path, key, passphrase_from(args, confirm=True), name=args.name)
    info = read_key_info(path)
    info["path"] = str(path)
    emit(args, info, lambda d: f"created key {d['name']}: {d['address']}\nfile: {d['path']}")
    return 0


def _list_keys(home: Path) -> list[dict[str, Any]]:
    directory = home / "keys"
    if not directory.is_dir():
        return []
    return [read_key_info(path) for path in sorted(directory.glob("*.json"))]


def _cmd_list(args: argparse.Namespace) -> int:
    keys = _list_keys(args.home)

    def render(items: list[dict[str, Any]]) -> str:
        if not items:
            return f"no keys in {args.home / 'keys'}"
        return "\n".join(
            f"{k['name']:<20} {k['address']}{'  (encrypted)' if k['encrypted'] else ''}"
            for k in items
        )

    emit(args, keys, render)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    info = read_key_info(key_path(args.home, args.name))
    emit(
        args,
        info,
        lambda d: f"name: {d['name']}\naddress: {d['address']}\npublic key: {d['public_key']}",
    )
    return 0


def register(subparsers: Any) -> None:
    keys = subcommand(
        subparsers,
        "keys",
        "manage account keys",
        "examples:\n  alloranet keys add --name alice\n  alloranet keys add --name bob --encrypt\n"
        "  alloranet keys list -o json\n  alloranet keys show --name alice",
    )
    verbs = keys.add_subparsers(dest="keys_verb", metavar="VERB")
    verbs.required = True

    add = subcommand(
        verbs, "add", "create a new key", "example:\n  alloranet keys add --name alice"
    )
    add.add_argument("--name", required=True, help="key name")
    add.add_argument("--encrypt", action="store_true", help="encrypt with a passphrase (prompted)")
    add.add_argument("--passphrase-env", metavar="VAR", help="read the passphrase from env VAR")
    add.add_argument("--overwrite", action="store_true", help="replace an existing key file")
    add_home_flag(add)
    add_output_flag(add)
    add.set_defaults(handler=_cmd_add)

    lst = subcommand(verbs, "list", "list keys", "example:\n  alloranet keys list -o json")
    add_home_flag(lst)
    add_output_flag(lst)
    lst.set_defaults(handler=_cmd_list)

    show = subcommand(
        verbs, "show", "show one key's address", "example:\n  alloranet keys show --name alice"
    )
    show.add_argument("--name", required=True, help="key name")
    add_home_flag(show)
    add_output_flag(show)
    show.set_defaults(handler=_cmd_show)
