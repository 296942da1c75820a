"""What the HTTP layer needs from a node: plain JSON-ready dictionaries.

Why a protocol: the server knows nothing of chains, stores or consensus; the node (the
composition root) implements this, and the tests serve a small fake. Each method returns data
already shaped for JSON (ints beyond 2**53 as strings: token amounts reach 1e27).
"""

from __future__ import annotations

from typing import Any, Protocol

from alloranet.errors import AlloraError


class NotFoundError(AlloraError):
    """No such block, account, topic or nonce (HTTP 404)."""


class UnavailableError(AlloraError):
    """The node cannot serve this right now, e.g. a full mempool (HTTP 503, retry later)."""


class NodeApi(Protocol):
    def status(self) -> dict[str, Any]: ...

    async def block(self, height: int | None) -> dict[str, Any]: ...

    async def tx(self, tx_hash: bytes) -> dict[str, Any]: ...

    def account(self, address: str) -> dict[str, Any]: ...

    def topics(self) -> list[dict[str, Any]]: ...

    def topic(self, topic_id: int) -> dict[str, Any]: ...

    def network_inference(self, topic_id: int, nonce: int | None) -> dict[str, Any]: ...

    def network_inference_history(self, topic_id: int, limit: int) -> list[dict[str, Any]]: ...

    def rewards(
        self, topic_id: int, nonce: int | None, actor: str | None
    ) -> list[dict[str, Any]]: ...

    def validators(self) -> list[dict[str, Any]]: ...

    def supply(self) -> dict[str, Any]: ...

    def submit_tx(self, tx: bytes) -> dict[str, Any]: ...

    def submit_txs(self, txs: list[bytes]) -> list[dict[str, Any]]:
        """Admit in order; one ``{"hash", "status", "error"?}`` per tx (status ``pending``,
        ``known``, ``rejected`` or ``unavailable``: pool full, this one and the rest untried)."""
        ...

    def metrics(self) -> bytes: ...
