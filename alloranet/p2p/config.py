"""Configuration of a p2p host, as one frozen dataclass checked on construction.

Why the defaults are what they are: see ../shared/spec/libp2p.md section 6. The gossip cap stays
below libp2p's hard-coded 1 MiB RPC limit (which drops silently) so that we can refuse oversize
payloads loudly ourselves; the redial backoff tops out at 2 s so a restarted validator rejoins
within seconds (libp2p's own reconnect takes about a minute).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from alloranet.errors import ConfigError

#: libp2p refuses (silently) any pubsub RPC over 1 MiB; we keep room for the envelope
#: (signature, public key, signed peer record, topic name, protobuf tags).
LIBP2P_RPC_LIMIT: Final = 1024 * 1024
GOSSIP_ENVELOPE_ROOM: Final = 16 * 1024


#: The channel of transaction batches (docs/protocol.md 2.1), bulk by default: one name for the
#: node, the SDK and the benchmarks, so that none of them sends transactions on the priority lane
#: by accident.
TX_CHANNEL = "txs"


@dataclass(frozen=True, slots=True)
class P2PConfig:
    """Everything a host needs; ``key_file`` is the persistent Ed25519 node identity (0600)."""

    key_file: Path
    listen_addrs: tuple[str, ...] = ("/ip4/127.0.0.1/tcp/0",)
    bootstrap: tuple[str, ...] = ()
    network_id: str = "alloranet-local"
    max_peers: int = 64
    redial_initial: float = 0.25
    redial_backoff_max: float = 2.0
    dial_timeout: float = 3.0
    max_gossip_size: int = LIBP2P_RPC_LIMIT - GOSSIP_ENVELOPE_ROOM
    max_request_size: int = 1024 * 1024
    max_response_size: int = 16 * 1024 * 1024
    #: Publishes per second handed to gossipsub (0 = no rate cap, queue-depth pacing only).
    publish_rate: float = 0.0
    #: Pause publishing while any peer's outbound RPC queue (32 slots in libp2p) holds more.
    outbound_queue_high_water: int = 12
    max_inflight_publishes: int = 64
    inbound_queue_limit: int = 20_000
    #: Channels carrying bulk batches; every other channel is published with priority.
    bulk_channels: tuple[str, ...] = (TX_CHANNEL, "submissions")
    gossip_degree: int = 3
    gossip_degree_low: int = 2
    gossip_degree_high: int = 4
    heartbeat_interval: int = 1
    #: A peer whose score falls to this value is disconnected and banned for ``ban_seconds``.
    ban_threshold: float = -30.0
    ban_seconds: float = 60.0
    #: Score points regained per second (so rare mistakes of an honest peer are forgotten).
    score_decay_per_s: float = 1.0
    start_timeout: float = 20.0
    request_handler_timeout: float = 10.0
    #: A keep-alive frame goes on a peer's priority direct stream after this many idle seconds.
    keepalive_interval: float = 1.0
    #: A peer that has spoken on a direct stream and then stays silent this long (no frame,
    #: not even a keep-alive) is taken for dead: its connection is closed and redialled.
    keepalive_timeout: float = 5.0
    #: Send bulk channels (tx batches) over the per-peer direct streams instead of gossipsub:
    #: one copy per connected peer, no forwarding (so only for a full mesh, e.g. validators).
    #: benchmarks/p2p_gossip.py: about 2x less CPU per transaction and votes no longer queue
    #: behind gossip bursts.
    bulk_direct: bool = False
    #: CPython's GIL switch interval set at host start (process-wide; only ever lowered).
    #: The network thread and the asyncio thread share the GIL; at the default 5 ms a frame
    #: that arrives while the other thread computes waits up to 5 ms per hand-over.
    gil_switch_interval: float = 0.001

    def __post_init__(self) -> None:
        if not self.listen_addrs:
            raise ConfigError("p2p: at least one listen multiaddr is required")
        for addr in (*self.listen_addrs, *self.bootstrap):
            if not addr.startswith("/"):
                raise ConfigError(f"p2p: {addr!r} is not a multiaddr")
        for addr in self.bootstrap:
            if "/p2p/" not in addr:
                raise ConfigError(f"p2p: bootstrap address {addr!r} lacks a /p2p/<peer id> part")
        if not self.network_id or "/" in self.network_id:
            raise ConfigError("p2p: network_id must be a non-empty name without '/'")
        positive = {
            "max_peers": self.max_peers,
            "redial_initial": self.redial_initial,
            "redial_backoff_max": self.redial_backoff_max,
            "dial_timeout": self.dial_timeout,
            "max_gossip_size": self.max_gossip_size,
            "max_request_size": self.max_request_size,
            "max_response_size": self.max_response_size,
            "outbound_queue_high_water": self.outbound_queue_high_water,
            "max_inflight_publishes": self.max_inflight_publishes,
            "inbound_queue_limit": self.inbound_queue_limit,
            "heartbeat_interval": self.heartbeat_interval,
            "ban_seconds": self.ban_seconds,
            "start_timeout": self.start_timeout,
            "request_handler_timeout": self.request_handler_timeout,
            "keepalive_interval": self.keepalive_interval,
            "keepalive_timeout": self.keepalive_timeout,
            "gil_switch_interval": self.gil_switch_interval,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"p2p: {name} must be positive, got {value}")
        if self.max_gossip_size > LIBP2P_RPC_LIMIT - GOSSIP_ENVELOPE_ROOM:
            raise ConfigError(
                f"p2p: max_gossip_size {self.max_gossip_size} exceeds what libp2p carries "
                f"({LIBP2P_RPC_LIMIT - GOSSIP_ENVELOPE_ROOM})"
            )
        if self.keepalive_timeout <= self.keepalive_interval:
            raise ConfigError("p2p: keepalive_timeout must exceed keepalive_interval")
        if self.outbound_queue_high_water >= 32:
            raise ConfigError("p2p: outbound_queue_high_water must stay below libp2p's 32 slots")
        if not 1 <= self.gossip_degree_low <= self.gossip_degree <= self.gossip_degree_high:
            raise ConfigError("p2p: need 1 <= gossip_degree_low <= gossip_degree <= high")
        if self.publish_rate < 0 or self.score_decay_per_s < 0 or self.ban_threshold >= 0:
            raise ConfigError("p2p: publish_rate/score_decay_per_s >= 0 and ban_threshold < 0")


def compute_topic(network_id: str, channel: str) -> str:
    """The gossipsub topic string of a channel (docs/protocol.md, "Topics")."""
    return f"/alloranet/{network_id}/{channel}/1"


def compute_protocol_id(network_id: str, protocol: str) -> str:
    """The libp2p stream protocol id of a request/response protocol."""
    return f"/alloranet/{network_id}/req/{protocol}/1"


def compute_direct_protocol_id(network_id: str) -> str:
    """The stream protocol of persistent per-peer direct channels (docs/protocol.md §2.6)."""
    return f"/alloranet/{network_id}/direct/1"


def validate_channel_name(name: str) -> str:
    """Channel and protocol names are short lowercase identifiers; raises ConfigError."""
    if not name or len(name) > 32 or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"p2p: {name!r} is not a valid channel/protocol name")
    return name
