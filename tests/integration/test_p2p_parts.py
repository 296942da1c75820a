"""Pure parts of alloranet.p2p: batch codec and Batcher, request framing, scores, config."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from alloranet import codec
from alloranet.errors import ConfigError, DecodeError
from alloranet.p2p.batcher import Batcher, decode_batch, encode_batch
from alloranet.p2p.config import TX_CHANNEL, P2PConfig, compute_protocol_id, compute_topic
from alloranet.p2p.errors import MessageTooLargeError, ProtocolViolationError
from alloranet.p2p.framing import (
    KEEPALIVE_FRAME,
    Status,
    decode_direct,
    decode_length,
    decode_status,
    encode_direct,
    encode_request,
    encode_response,
)
from alloranet.p2p.inbox import Inbox
from alloranet.p2p.scoring import PeerScores
from alloranet.p2p.types import Inbound

SEED = 20261122


def test_batch_round_trip_and_rejects() -> None:
    rng = random.Random(SEED)
    items = [rng.randbytes(rng.randrange(0, 70_000)) for _ in range(20)]
    data = encode_batch(items)
    assert decode_batch(data, max_items=20, max_size=len(data)) == tuple(items)
    with pytest.raises(DecodeError):
        decode_batch(data, max_items=19, max_size=len(data))
    with pytest.raises(DecodeError):
        decode_batch(data, max_items=20, max_size=len(data) - 1)
    for bad in (codec.encode((2, (b"x",))), codec.encode((1, ())), codec.encode((1, ("s",)))):
        with pytest.raises(DecodeError):
            decode_batch(bad, max_items=10, max_size=100)
    for _ in range(200):  # random garbage is always a DecodeError, never a crash
        with pytest.raises(DecodeError):
            decode_batch(rng.randbytes(rng.randrange(1, 64)), max_items=10, max_size=100)


async def test_batcher_flushes_on_bounds_and_timer() -> None:
    sent: list[bytes] = []

    async def publish(data: bytes) -> None:
        sent.append(data)

    batcher = Batcher(publish, max_items=3, max_bytes=1000, flush_interval=0.05)
    for i in range(7):
        await batcher.add(b"%d" % i)
    assert [len(decode_batch(b, max_items=9, max_size=2000)) for b in sent] == [3, 3]
    await asyncio.sleep(0.2)  # the timer flushes the 7th item
    assert decode_batch(sent[-1], max_items=9, max_size=2000) == (b"6",)
    for _ in range(3):  # byte bound: 3 x 400 B do not fit in 1000 B
        await batcher.add(b"y" * 400)
    await batcher.close()
    sizes = [len(b) for b in sent]
    assert all(size <= 1000 for size in sizes)
    assert batcher.items_sent == 10
    small = Batcher(publish, max_bytes=100)
    with pytest.raises(MessageTooLargeError):
        await small.add(b"z" * (small.max_item_size + 1))
    await small.add(b"z" * small.max_item_size)  # the largest item fits exactly
    await small.flush()
    assert len(sent[-1]) <= 100


def test_request_framing_limits() -> None:
    frame = encode_request(b"abc", 10)
    assert decode_length(frame[:4], 10) == 3 and frame[4:] == b"abc"
    with pytest.raises(MessageTooLargeError):
        encode_request(b"x" * 11, 10)
    with pytest.raises(ProtocolViolationError):
        decode_length(b"\xff\xff\xff\xff", 10)
    with pytest.raises(ProtocolViolationError):
        decode_length(b"\x00", 10)
    ok = encode_response(Status.OK, b"body", 10)
    assert decode_status(ok[:1]) is Status.OK
    too_big = encode_response(Status.OK, b"x" * 11, 10)
    assert decode_status(too_big[:1]) is Status.TOO_LARGE
    with pytest.raises(ProtocolViolationError):
        decode_status(b"\x63")


def test_scores_decay_ban_and_expiry() -> None:
    now = [0.0]
    scores = PeerScores(threshold=-30, ban_seconds=60, decay_per_s=1.0, now=lambda: now[0])
    assert not scores.penalise("p", "invalid_message")
    now[0] = 10.0  # fully recovered
    assert scores.get_score("p") == 0.0
    assert not scores.penalise("p", "invalid_message")
    assert not scores.penalise("p", "invalid_message")
    assert scores.penalise("p", "invalid_message")
    assert scores.is_banned("p") and scores.banned() == {"p"}
    now[0] = 71.0
    assert not scores.is_banned("p")
    assert scores.penalise("q", "malformed_frame")  # one malformed frame is enough


def test_config_checks(tmp_path: Path) -> None:
    key = tmp_path / "k"
    # the node and the SDK rely on the default: transaction batches never take the priority lane
    assert TX_CHANNEL in P2PConfig(key_file=key).bulk_channels
    bad: list[dict[str, object]] = [
        {"listen_addrs": ()},
        {"bootstrap": ("/ip4/127.0.0.1/tcp/1",)},
        {"network_id": "a/b"},
        {"max_gossip_size": 2 * 1024 * 1024},
        {"outbound_queue_high_water": 32},
        {"gossip_degree": 9},
        {"dial_timeout": 0},
        {"keepalive_interval": 5.0, "keepalive_timeout": 5.0},
        {"gil_switch_interval": 0},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            P2PConfig(key_file=key, **kwargs)  # type: ignore[arg-type]
    assert compute_topic("net", "vote") == "/alloranet/net/vote/1"
    assert compute_protocol_id("net", "sync") == "/alloranet/net/req/sync/1"


async def test_inbox_is_bounded_and_drops_oldest() -> None:
    inbox = Inbox("tx", limit=3)
    inbox.put_many([Inbound("tx", "o", "f", b"%d" % i) for i in range(5)])
    assert inbox.dropped == 2
    inbox.close()
    assert [m.data async for m in inbox] == [b"2", b"3", b"4"]


def test_direct_frames() -> None:
    frame = encode_direct("vote", b"payload", 100)
    assert decode_length(frame[:4], 200) == len(frame) - 4
    assert decode_direct(frame[4:]) == ("vote", b"payload")
    with pytest.raises(MessageTooLargeError):
        encode_direct("vote", b"x" * 101, 100)
    assert decode_length(KEEPALIVE_FRAME, 200) == 0  # a keep-alive: header only, no body
    for bad in (b"", b"\x00abc", b"\x05ab", b"\x02\xff\xfe"):
        with pytest.raises(ProtocolViolationError):
            decode_direct(bad)
