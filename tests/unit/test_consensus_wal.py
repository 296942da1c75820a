"""WAL framing and torn tails; the signer guard's refusal rules and durability order."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from alloranet.consensus import timeouts as T
from alloranet.consensus.core import TimeoutEvent, ValueEvent
from alloranet.consensus.errors import CrashError, SignerRefusedError, WALCorruptError
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.storage import FailPoints, FileDisk, MemoryDisk
from alloranet.consensus.types import PRECOMMIT, PREVOTE, Vote, real_verify
from alloranet.consensus.wal import WAL, compute_records, decode_record, encode_event, frame
from alloranet.crypto import PrivateKey
from alloranet.errors import KeyFileError

CHAIN = "test-chain"


def events() -> list[bytes]:
    return [encode_event(TimeoutEvent(T.PROPOSE, 3, r)) for r in range(5)] + [
        encode_event(ValueEvent(3, 5, b"x" * 300))
    ]


def test_round_trip_on_real_files(tmp_path: Path) -> None:
    wal = WAL(FileDisk(tmp_path))
    for e in events():
        wal.append(e)
    wal.sync()
    again = WAL(FileDisk(tmp_path))
    assert again.load() == events()
    assert decode_record(events()[-1]) == (3, ValueEvent(3, 5, b"x" * 300))


def test_frame_is_crc32c_then_length_then_payload() -> None:
    """The CRC-32C check value of b"123456789" is 0xE3069283 (zlib's CRC-32 gives 0xCBF43926)."""
    data = frame(b"123456789")
    assert data[:4] == bytes.fromhex("e3069283")
    assert data[4:8] == (9).to_bytes(4, "big")
    assert data[8:] == b"123456789"
    assert compute_records(data) == ([b"123456789"], len(data))
    flipped = data[:-1] + bytes([data[-1] ^ 1])
    assert compute_records(flipped) == ([], 0)  # a bad CRC at the tail is a torn record


def test_every_torn_tail_is_cut_and_never_trusted(tmp_path: Path) -> None:
    data = b"".join(frame(e) for e in events())
    last_start = len(data) - len(frame(events()[-1]))
    for cut in range(last_start, len(data)):
        recs, good = compute_records(data[:cut])
        assert recs == events()[:-1] and good == last_start
    # a torn tail of garbage (random bytes) after good data
    rng = random.Random(7)
    for _ in range(50):
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 20)))
        recs, good = compute_records(data + junk)
        assert recs == events() and good == len(data)
    # load() truncates the file so later appends follow good data
    disk = FileDisk(tmp_path)
    disk.append("cs.wal", data[: len(data) - 3])
    wal = WAL(disk)
    assert wal.load() == events()[:-1]
    wal.append(events()[-1], sync=True)
    assert WAL(FileDisk(tmp_path)).load() == events()


def test_corrupt_middle_raises_unless_repairing() -> None:
    data = bytearray(b"".join(frame(e) for e in events()))
    data[12] ^= 0xFF  # inside the first record's payload
    with pytest.raises(WALCorruptError):
        compute_records(bytes(data))
    recs, good = compute_records(bytes(data), repair=True)
    assert recs == [] and good == 0


def test_memory_disk_crash_keeps_synced_data() -> None:
    disk = MemoryDisk()
    wal = WAL(disk)
    wal.append(events()[0], sync=True)
    wal.append(events()[1])
    for seed in range(20):
        d2 = MemoryDisk()
        d2.files = {k: bytearray(v) for k, v in disk.files.items()}
        d2.synced = dict(disk.synced)
        d2.crash(random.Random(seed))
        loaded = WAL(d2).load()
        assert loaded[:1] == events()[:1] and len(loaded) <= 2


def guard(tmp_path: Path, fp: FailPoints | None = None) -> SignerGuard:
    key = PrivateKey.from_label("guard").signer()
    return SignerGuard(key, FileDisk(tmp_path, fp or FailPoints()), CHAIN)


def test_signer_guard_rules_survive_restart(tmp_path: Path) -> None:
    g = guard(tmp_path)
    bid = b"\x11" * 32
    sig = g.sign_vote(PREVOTE, 5, 0, bid)
    assert Vote(PREVOTE, 5, 0, bid, g.public_key, sig).is_signed_by(CHAIN, real_verify)
    g2 = guard(tmp_path)  # a restart reads the persisted state
    assert g2.sign_vote(PREVOTE, 5, 0, bid) == sig  # same step, same bytes: same signature
    with pytest.raises(SignerRefusedError):
        g2.sign_vote(PREVOTE, 5, 0, b"")  # same step, different block: double sign
    with pytest.raises(SignerRefusedError):
        g2.sign_proposal(5, 0, -1, bid)  # proposal step is below prevote: regression
    with pytest.raises(SignerRefusedError):
        g2.sign_vote(PRECOMMIT, 4, 9, bid)  # lower height
    g2.sign_vote(PRECOMMIT, 5, 0, b"")
    g2.sign_proposal(5, 1, 0, bid)


def test_signature_never_leaves_before_state_is_durable(tmp_path: Path) -> None:
    for crash_at in (1, 2, 3):  # write tmp, fsync, rename
        d = tmp_path / str(crash_at)
        g = guard(d, FailPoints(crash_at))
        with pytest.raises(CrashError):
            g.sign_vote(PREVOTE, 1, 0, b"\x22" * 32)
        g2 = guard(d)
        assert g2.last is None  # nothing was promised, so signing anything is safe
        g2.sign_vote(PREVOTE, 1, 0, b"")


def test_corrupt_signer_state_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "priv_validator_state").write_bytes(b"\x93garbage")
    with pytest.raises(KeyFileError):
        guard(tmp_path)
