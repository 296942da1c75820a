"""Guards against two py-libp2p 0.8.1 bugs that kill the p2p thread.

1. A remote crash on a malformed pubsub frame (``install_pubsub_guard``).
2. A teardown race when a peer is blacklisted (``patch_pubsub_teardown``).

Why: ``Pubsub.continuously_read_stream`` parses each frame with protobuf and catches only
libp2p's own errors; a ``google.protobuf.message.DecodeError`` from one garbage frame sent by
any peer escapes into the swarm's connection task and kills ``host.run`` (spec/libp2p.md §5).
We wrap the method: any ordinary exception from the reader resets that stream, forgets the
peer's pubsub state (``_handle_dead_peer``), and reports the peer through the instance's
``alloranet_on_malformed`` callback (the host scores it down). Re-check on every upgrade:
``tests/integration/test_p2p_libp2p.py`` sends such a frame.
"""

from __future__ import annotations

import logging
from typing import Any

from libp2p.pubsub.pubsub import Pubsub

log = logging.getLogger(__name__)

_MARK = "_alloranet_guarded"


def install_pubsub_guard() -> None:
    """Patch ``Pubsub.continuously_read_stream`` once per process (idempotent)."""
    original = Pubsub.continuously_read_stream
    if getattr(original, _MARK, False):
        return

    async def guarded(self: Any, stream: Any) -> None:
        try:
            await original(self, stream)
        except Exception as exc:  # protobuf DecodeError and any other reader bug
            peer_id = stream.muxed_conn.peer_id
            log.warning("p2p: malformed pubsub frame from %s: %s: %s", peer_id, type(exc), exc)
            try:
                await stream.reset()
            except Exception:
                log.debug("p2p: reset after malformed frame failed", exc_info=True)
            try:
                self._handle_dead_peer(peer_id)
            except Exception:
                log.debug("p2p: dead-peer cleanup failed", exc_info=True)
            callback = getattr(self, "alloranet_on_malformed", None)
            if callback is not None:
                callback(peer_id, exc)

    setattr(guarded, _MARK, True)
    Pubsub.continuously_read_stream = guarded  # type: ignore[method-assign]


def patch_pubsub_teardown() -> None:
    """Work around a py-libp2p race that kills the p2p thread when a peer is blocked.

    ``Pubsub.add_to_blacklist`` schedules ``_teardown_if_connected``, which awaits
    ``stream.reset()`` and then does ``del self.peers[peer_id]``; while it waits, the closing
    connection's own dead-peer handler removes the entry, so the ``del`` raises KeyError and
    the task's error tears down the whole trio nursery (observed on every partition of a
    4-node network). Removing the entry *before* the await makes the two paths idempotent.
    Found by the chaos harness; it also guards bans through ``penalise``, which blacklist too.
    """
    if getattr(Pubsub, "_alloranet_safe_teardown", False):
        return

    async def _teardown_if_connected(self: Any, peer_id: Any) -> None:
        stream = self.peers.get(peer_id)
        if stream is None:
            self._forget_all_subscriptions(peer_id)
            return
        # The library's full dead-peer clean-up: drop the peer, close its outbound queue and
        # take it out of the router's mesh. Only popping ``peers`` (as the original does)
        # leaves the blocked peer in the gossipsub mesh with a live queue, and publishing
        # among the *remaining* peers stalled (observed: a 3-of-4 majority stopped
        # committing for the whole partition).
        self._handle_dead_peer(peer_id)
        try:
            await stream.reset()
        except Exception:  # the stream may already be gone: exactly the race fixed here
            log.debug("pubsub stream reset failed for %s", peer_id)

    Pubsub._teardown_if_connected = _teardown_if_connected  # type: ignore[method-assign]
    Pubsub._alloranet_safe_teardown = True  # type: ignore[attr-defined]
