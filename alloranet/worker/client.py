"""An asyncio client for the node's HTTP API (what the SDK reads: heights, windows, receipts).

Why HTTP for reading and p2p for submitting: a worker's submissions must travel the same way as
everyone's (gossip, batched), but watching its topic's windows and finding out whether a
submission was included are queries that any node answers directly.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from alloranet.errors import AlloraError


class ApiError(AlloraError):
    """The node answered with an error (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"node API: {message} (HTTP {status})")
        self.status = status
        self.reason = message


class NodeClient:
    def __init__(self, api: str, timeout: float = 5.0) -> None:
        self.api = api.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> NodeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _check(self, resp: aiohttp.ClientResponse) -> Any:
        try:
            body = await resp.json(content_type=None)
        except ValueError:
            body = None
        if resp.status >= 400:
            message = resp.reason or "error"
            if isinstance(body, dict) and isinstance(body.get("error"), dict):
                message = str(body["error"].get("message", message))
            raise ApiError(resp.status, message)
        return body

    async def get(self, path: str, **params: Any) -> Any:
        query = {k: str(v) for k, v in params.items() if v is not None}
        try:
            async with self._get_session().get(self.api + path, params=query) as resp:
                return await self._check(resp)
        except aiohttp.ClientError as exc:
            raise ApiError(0, f"cannot reach {self.api}: {exc}") from None

    async def post_tx(self, tx: bytes) -> dict[str, Any]:
        try:
            async with self._get_session().post(
                self.api + "/v1/txs",
                data=tx,
                headers={"Content-Type": "application/octet-stream"},
            ) as resp:
                result: dict[str, Any] = await self._check(resp)
                return result
        except aiohttp.ClientError as exc:
            raise ApiError(0, f"cannot reach {self.api}: {exc}") from None

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/v1/status")
        return result

    async def topic(self, topic_id: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v1/topics/{topic_id}")
        return result

    async def account(self, address: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v1/accounts/{address}")
        return result

    async def tx(self, tx_hash: bytes) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/v1/txs/{tx_hash.hex()}")
        return result

    async def network_inference(self, topic_id: int, nonce: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(
            f"/v1/topics/{topic_id}/network-inference", nonce=nonce
        )
        return result
