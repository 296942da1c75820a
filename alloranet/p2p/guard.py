"""Guard against py-libp2p 0.8.1's remote crash on a malformed pubsub frame.

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
