"""Keys, signatures, addresses and key files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from alloranet import crypto
from alloranet.errors import KeyFileError, ValidationError


def test_sign_and_verify_and_reject_tampering() -> None:
    key = crypto.PrivateKey.from_label("alice")
    sig = key.sign(b"hello")
    assert crypto.verify(key.public_key, b"hello", sig)
    assert not crypto.verify(key.public_key, b"hellp", sig)
    assert not crypto.verify(key.public_key, b"hello", sig[:-1] + bytes([sig[-1] ^ 1]))
    assert not crypto.verify(b"short", b"hello", sig)
    assert key.signer().sign(b"hello") == sig


def test_address_has_prefix_and_checksum() -> None:
    address = crypto.PrivateKey.from_label("bob").address
    assert address.startswith("allo1")
    assert crypto.validate_address(address) == address
    typo = address[:-1] + ("q" if address[-1] != "q" else "p")
    with pytest.raises(ValidationError, match="checksum"):
        crypto.validate_address(typo)
    with pytest.raises(ValidationError):
        crypto.validate_address("cosmos1xyz")


def test_key_file_is_private_and_round_trips(tmp_path: Path) -> None:
    key = crypto.PrivateKey.generate()
    path = tmp_path / "keys" / "k.json"
    crypto.save_key(path, key, name="k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.load_key(path) == key
    assert key.seed.hex() not in repr(key)


def test_encrypted_key_file_needs_the_right_passphrase(tmp_path: Path) -> None:
    key = crypto.PrivateKey.generate()
    path = tmp_path / "k.json"
    crypto.save_key(path, key, passphrase="correct horse")
    assert key.seed.hex() not in path.read_text()
    assert crypto.read_key_info(path)["encrypted"] is True
    with pytest.raises(KeyFileError, match="passphrase is required"):
        crypto.load_key(path)
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        crypto.load_key(path, "wrong")
    assert crypto.load_key(path, "correct horse") == key


def test_corrupt_key_file_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text("{not json")
    with pytest.raises(KeyFileError):
        crypto.load_key(path)
