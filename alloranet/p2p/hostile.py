"""A hostile peer for tests: sends what an attacker would, each attack from a fresh identity.

Why in the package: it needs libp2p internals (raw pubsub frames), and only alloranet.p2p may
import libp2p. Run ``python -m alloranet.p2p.hostile --target MULTIADDR ...``; it prints one
JSON line per attack. Attacks (spec/libp2p.md §5): raw random bytes to the TCP port, a
malformed protobuf frame on /meshsub (the remote crash the guard fixes), oversize frames,
bad signatures, validly signed invalid payloads, floods of one duplicate message.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V12
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.utils.varint import encode_uvarint
from multiaddr import Multiaddr

#: Field 1 (subscriptions) declared with a length far past the end: protobuf DecodeError.
MALFORMED_FRAME: Final = b"\x0a\xff\xff\xff\xff\x0f\x01\x02"
ATTACKS: Final = (
    "random_tcp",
    "malformed",
    "oversize",
    "bad_signature",
    "invalid_data",
    "dup_flood",
)

Attack = Callable[[Any, Any, Any, str, random.Random], Awaitable[dict[str, Any]]]


def _frame(payload: bytes) -> bytes:
    return bytes(encode_uvarint(len(payload))) + payload


def _message(key_pair: Any, topic: str, data: bytes, *, sign: bool) -> Any:
    msg = rpc_pb2.Message(
        data=data,
        topicIDs=[topic],
        from_id=ID.from_pubkey(key_pair.public_key).to_bytes(),
        seqno=os.urandom(8),
    )
    if sign:
        signature = key_pair.private_key.sign(
            PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString()
        )
    else:
        signature = os.urandom(64)
    msg.key = key_pair.public_key.serialize()
    msg.signature = signature
    return msg


async def _meshsub(host: Any, info: Any) -> Any:
    await host.connect(info)
    return await host.new_stream(info.peer_id, [PROTOCOL_ID_V12])


async def _write_frames(stream: Any, frames: list[bytes]) -> int:
    sent = 0
    try:
        for frame in frames:
            await stream.write(frame)
            sent += 1
    except Exception:
        pass  # the victim resetting the stream is the expected outcome
    await trio.sleep(0.3)
    return sent


async def attack_random_tcp(
    host: Any, kp: Any, info: Any, topic: str, rng: random.Random
) -> dict[str, Any]:
    maddr = info.addrs[0]
    ip, port = maddr.value_for_protocol("ip4"), int(maddr.value_for_protocol("tcp"))
    done = 0
    for i in range(20):
        try:
            stream = await trio.open_tcp_stream(ip, port)
            with trio.move_on_after(0.5):
                prefix = b"\x13/multistream/1.0.0\n\x07/noise\n" if i % 2 else b""
                await stream.send_all(prefix + rng.randbytes(rng.choice((16, 4096))))
            await stream.aclose()
            done += 1
        except OSError:
            pass
    return {"connections": done}


async def attack_malformed(
    host: Any, kp: Any, info: Any, topic: str, rng: random.Random
) -> dict[str, Any]:
    stream = await _meshsub(host, info)
    return {"frames": await _write_frames(stream, [_frame(MALFORMED_FRAME)])}


async def attack_oversize(
    host: Any, kp: Any, info: Any, topic: str, rng: random.Random
) -> dict[str, Any]:
    stream = await _meshsub(host, info)
    big = _frame(rng.randbytes(1536 * 1024))
    sent = await _write_frames(stream, [big])
    stream = await _meshsub(host, info)
    claim = bytes(encode_uvarint(100 * 1024 * 1024)) + rng.randbytes(1024)
    return {"frames": sent + await _write_frames(stream, [claim])}


async def attack_bad_signature(
    host: Any, kp: Any, info: Any, topic: str, rng: random.Random
) -> dict[str, Any]:
    stream = await _meshsub(host, info)
    rpc = rpc_pb2.RPC(publish=[_message(kp, topic, b"forged", sign=False)])
    return {"frames": await _write_frames(stream, [_frame(rpc.SerializeToString())] * 20)}


async def attack_invalid_data(
    host: Any, kp: Any, info: Any, topic: str, rng: random.Random
) -> dict[str, Any]:
    stream = await _meshsub(host, info)
    frames = [
        _frame(
            rpc_pb2.RPC(
                publish=[_message(kp, topic, rng.randbytes(64), sign=True)]
            ).SerializeToString()
        )
        for _ in range(5)
    ]
    return {"frames": await _write_frames(stream, frames)}


async def attack_dup_flood(
    host: Any, kp: Any, info: Any, topic: str, rng: random.Random
) -> dict[str, Any]:
    """One valid-looking message (a one-item batch) written 500 times."""
    from alloranet.p2p.batcher import encode_batch
    from alloranet.p2p.node_demo import FOREIGN_ORIGIN, encode_item

    stream = await _meshsub(host, info)
    data = encode_batch([encode_item(FOREIGN_ORIGIN, rng.randrange(2**63), 64)])
    frame = _frame(rpc_pb2.RPC(publish=[_message(kp, topic, data, sign=True)]).SerializeToString())
    return {"frames": await _write_frames(stream, [frame] * 500), "data": data.hex()}


_TABLE: Final[dict[str, Attack]] = {
    "random_tcp": attack_random_tcp,
    "malformed": attack_malformed,
    "oversize": attack_oversize,
    "bad_signature": attack_bad_signature,
    "invalid_data": attack_invalid_data,
    "dup_flood": attack_dup_flood,
}


async def run_attack(kind: str, target: str, topic: str, seed: int) -> dict[str, Any]:
    """Run one attack from a fresh Ed25519 identity; never raises for a refused attack."""
    kp = create_new_key_pair()
    noise = create_x25519_key_pair()
    listen = [Multiaddr("/ip4/127.0.0.1/tcp/0")]
    host = new_host(
        key_pair=kp,
        listen_addrs=listen,
        sec_opt={NOISE_PROTOCOL_ID: NoiseTransport(kp, noise.private_key)},
        muxer_preference="YAMUX",
    )
    info = info_from_p2p_addr(Multiaddr(target))
    result: dict[str, Any] = {"attack": kind, "attacker": ID.from_pubkey(kp.public_key).to_base58()}
    async with host.run(listen):
        try:
            with trio.fail_after(15):
                result.update(await _TABLE[kind](host, kp, info, topic, random.Random(seed)))
            result["outcome"] = "sent"
        except Exception as exc:
            result["outcome"] = f"refused: {type(exc).__name__}"
        await host.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", action="append", required=True)
    parser.add_argument("--topic", required=True, help="full gossipsub topic string")
    parser.add_argument("--attack", action="append", choices=ATTACKS)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    async def all_attacks() -> None:
        for kind in args.attack or ATTACKS:
            for target in args.target:
                result = await run_attack(kind, target, args.topic, args.seed)
                print(json.dumps(result), flush=True)

    trio.run(all_attacks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
