"""Ed25519 keys, readable addresses and key files.

Why PyNaCl for signing and verifying: spec/limits.md measured libsodium's verify at about twice
the rate of ``cryptography`` on this machine (13-17 k/s vs 8.5 k/s), and verification is the
node's CPU wall. ``cryptography`` supplies the key-file encryption (scrypt + ChaCha20-Poly1305),
and the ``bech32`` package the checksummed address text (``allo1...``, as Allora's addresses).

Addresses are bech32(hrp="allo", first 20 bytes of SHA-256(public key)): a typo is caught by
the checksum instead of sending funds into the void.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import nacl.signing
from bech32 import bech32_decode, bech32_encode, convertbits
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from alloranet.errors import KeyFileError, SignatureError, ValidationError

ADDRESS_PREFIX: Final = "allo"
PUBLIC_KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
SEED_SIZE: Final = 32
_ADDRESS_BYTES: Final = 20
_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1


def address_from_public_key(public_key: bytes) -> str:
    """The readable, checksummed address of an Ed25519 public key."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"public key must be {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    digest = hashlib.sha256(public_key).digest()[:_ADDRESS_BYTES]
    words = convertbits(digest, 8, 5)
    assert words is not None
    return str(bech32_encode(ADDRESS_PREFIX, words))


def validate_address(address: str) -> str:
    """Return ``address`` if it is a well-formed alloranet address, else raise ValidationError."""
    if not isinstance(address, str) or len(address) > 90:
        raise ValidationError(f"invalid address {address!r}")
    hrp, words = bech32_decode(address)
    if hrp is None or words is None:
        raise ValidationError(f"invalid address {address!r}: bad bech32 checksum or characters")
    if hrp != ADDRESS_PREFIX:
        raise ValidationError(f"invalid address {address!r}: prefix must be '{ADDRESS_PREFIX}'")
    data = convertbits(words, 5, 8, False)
    if data is None or len(data) != _ADDRESS_BYTES:
        raise ValidationError(f"invalid address {address!r}: wrong payload length")
    return address


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
        return False
    return True


def require_valid_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureError` unless the signature verifies."""
    if not verify(public_key, message, signature):
        raise SignatureError("signature does not verify")


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """An Ed25519 signing key, held as its 32-byte seed."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise KeyFileError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(self.seed)}")

    @classmethod
    def generate(cls) -> PrivateKey:
        return cls(secrets.token_bytes(SEED_SIZE))

    @classmethod
    def from_label(cls, label: str) -> PrivateKey:
        """A deterministic key for tests and seeded testnets (never for real funds)."""
        return cls(hashlib.sha256(b"alloranet-test-key:" + label.encode()).digest())

    @property
    def _signer(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self._signer.verify_key)

    @property
    def address(self) -> str:
        return address_from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message).signature

    def signer(self) -> Signer:
        """A signer that keeps the expanded key, for signing in a loop."""
        return Signer(self)

    def __repr__(self) -> str:  # never print the seed
        return f"PrivateKey(address={self.address})"


class Signer:
    """Holds the expanded libsodium key so repeated signing skips the key setup."""

    __slots__ = ("_key", "address", "public_key")

    def __init__(self, key: PrivateKey) -> None:
        self._key = nacl.signing.SigningKey(key.seed)
        self.public_key: bytes = bytes(self._key.verify_key)
        self.address: str = address_from_public_key(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message).signature


# --- key files -------------------------------------------------------------------------------


def _kdf(passphrase: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P).derive(
        passphrase.encode("utf-8")
    )


def _write_private(path: Path, text: str) -> None:
    """Write a file readable only by its owner, atomically (tmp + fsync + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def save_key(path: Path, key: PrivateKey, passphrase: str | None = None, name: str = "") -> None:
    """Write ``key`` to ``path`` with mode 0600, encrypted if a passphrase is given."""
    record: dict[str, Any] = {
        "type": "ed25519",
        "name": name,
        "address": key.address,
        "public_key": key.public_key.hex(),
    }
    if passphrase:
        salt = secrets.token_bytes(16)
        nonce = secrets.token_bytes(12)
        sealed = ChaCha20Poly1305(_kdf(passphrase, salt)).encrypt(nonce, key.seed, None)
        record["encryption"] = {
            "kdf": "scrypt",
            "n": _SCRYPT_N,
            "r": _SCRYPT_R,
            "p": _SCRYPT_P,
            "salt": salt.hex(),
            "cipher": "chacha20-poly1305",
            "nonce": nonce.hex(),
            "ciphertext": sealed.hex(),
        }
    else:
        record["seed"] = key.seed.hex()
    _write_private(path, json.dumps(record, indent=2) + "\n")


def read_key_info(path: Path) -> dict[str, Any]:
    """The public part of a key file (name, address, public key, encrypted?)."""
    record = _read_record(path)
    return {
        "name": record.get("name", ""),
        "address": record["address"],
        "public_key": record["public_key"],
        "encrypted": "encryption" in record,
    }


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} not found") from None
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"key file {path} is unreadable: {exc}") from None
    if not isinstance(record, dict) or record.get("type") != "ed25519" or "address" not in record:
        raise KeyFileError(f"key file {path} is not an alloranet ed25519 key")
    return record


def load_key(path: Path, passphrase: str | None = None) -> PrivateKey:
    """Read a key file; an encrypted one needs its passphrase."""
    record = _read_record(path)
    try:
        if "encryption" in record:
            if not passphrase:
                raise KeyFileError(f"key file {path} is encrypted: a passphrase is required")
            enc = record["encryption"]
            key_bytes = Scrypt(
                salt=bytes.fromhex(enc["salt"]), length=32, n=enc["n"], r=enc["r"], p=enc["p"]
            ).derive(passphrase.encode("utf-8"))
            try:
                seed = ChaCha20Poly1305(key_bytes).decrypt(
                    bytes.fromhex(enc["nonce"]), bytes.fromhex(enc["ciphertext"]), None
                )
            except InvalidTag:
                raise KeyFileError(f"wrong passphrase for key file {path}") from None
        else:
            seed = bytes.fromhex(record["seed"])
    except (KeyError, ValueError, TypeError) as exc:
        raise KeyFileError(f"key file {path} is corrupt: {exc}") from None
    key = PrivateKey(seed)
    if key.address != record["address"]:
        raise KeyFileError(f"key file {path} is corrupt: address does not match the key")
    return key
