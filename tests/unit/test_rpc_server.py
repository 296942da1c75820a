"""The HTTP API's routing, parameter checks and JSON error bodies, against a fake node."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from alloranet.errors import ValidationError
from alloranet.rpc import NotFoundError, UnavailableError, build_app


class FakeNode:
    def __init__(self) -> None:
        self.submitted: list[bytes] = []
        self.full = False

    def status(self) -> dict[str, Any]:
        return {"height": 7}

    async def block(self, height: int | None) -> dict[str, Any]:
        if height is not None and height > 7:
            raise NotFoundError(f"no block at height {height}")
        return {"height": height or 7}

    async def tx(self, tx_hash: bytes) -> dict[str, Any]:
        raise NotFoundError("unknown")

    def account(self, address: str) -> dict[str, Any]:
        if not address.startswith("allo1"):
            raise ValidationError("not an address")
        return {"address": address, "balance": str(10**27)}

    def topics(self) -> list[dict[str, Any]]:
        return [{"id": 1}]

    def topic(self, topic_id: int) -> dict[str, Any]:
        return {"id": topic_id}

    def network_inference(self, topic_id: int, nonce: int | None) -> dict[str, Any]:
        return {"topic_id": topic_id, "nonce": nonce}

    def network_inference_history(self, topic_id: int, limit: int) -> list[dict[str, Any]]:
        return [{"n": i} for i in range(limit)]

    def rewards(self, topic_id: int, nonce: int | None, actor: str | None) -> list[dict[str, Any]]:
        return [{"actor": actor, "nonce": nonce}]

    def submit_tx(self, tx: bytes) -> dict[str, Any]:
        if self.full:
            raise UnavailableError("mempool is full")
        if tx == b"bad":
            raise ValidationError("bad signature")
        if tx == b"boom":
            raise RuntimeError("secret internals")
        self.submitted.append(tx)
        return {"hash": "ab"}

    def submit_txs(self, txs: list[bytes]) -> list[dict[str, Any]]:
        self.submitted.extend(txs)
        return [{"hash": tx.hex(), "status": "pending"} for tx in txs]

    def validators(self) -> list[dict[str, Any]]:
        return [{"address": "allo1v", "power": 10, "jailed": False}]

    def supply(self) -> dict[str, Any]:
        return {"height": 7, "supply": "10", "bonded": "4"}

    def metrics(self) -> bytes:
        return b"alloranet_height 7\n"


async def _client(node: FakeNode) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(node)))
    await client.start_server()
    return client


async def test_routes_and_aliases() -> None:
    node = FakeNode()
    client = await _client(node)
    try:
        assert (await (await client.get("/v1/status")).json()) == {"height": 7}
        assert (await (await client.get("/v1/blocks/latest")).json()) == {"height": 7}
        resp = await client.get("/v1/topics/3/network-inference?nonce=12")
        assert await resp.json() == {"topic_id": 3, "nonce": 12}
        alias = await client.get("/emissions/v1/latest_network_inferences/3")
        assert await alias.json() == {"topic_id": 3, "nonce": None}
        hist = await (await client.get("/v1/topics/1/network-inference/history?limit=3")).json()
        assert len(hist["network_inferences"]) == 3
        rewards = await (await client.get("/v1/topics/1/rewards?nonce=5&actor=allo1x")).json()
        assert rewards == {"rewards": [{"actor": "allo1x", "nonce": 5}]}
        vals = await (await client.get("/v1/validators")).json()
        assert vals == {"validators": [{"address": "allo1v", "power": 10, "jailed": False}]}
        supply = await (await client.get("/v1/supply")).json()
        assert supply == {"height": 7, "supply": "10", "bonded": "4"}
        metrics = await client.get("/metrics")
        assert metrics.status == 200 and "alloranet_height" in await metrics.text()
        assert (await client.post("/v1/txs", json={"tx": "0102"})).status == 202
        raw = await client.post(
            "/v1/txs", data=b"\x03", headers={"Content-Type": "application/octet-stream"}
        )
        assert raw.status == 202
        assert node.submitted == [b"\x01\x02", b"\x03"]
    finally:
        await client.close()


async def test_errors_are_json_never_traces() -> None:
    node = FakeNode()
    client = await _client(node)
    try:
        cases = [
            (await client.get("/v1/blocks/99"), 404, "not_found"),
            (await client.get("/v1/blocks/abc"), 400, "invalid"),
            (await client.get("/v1/blocks/-1"), 400, "invalid"),
            (await client.get("/v1/topics/1/network-inference?nonce=x"), 400, "invalid"),
            (await client.get("/v1/accounts/nobody"), 400, "invalid"),
            (await client.get("/v1/txs/zz"), 400, "invalid"),
            (await client.get("/v1/nowhere"), 404, "not_found"),
            (
                await client.post(
                    "/v1/txs", data=b"{not json", headers={"Content-Type": "application/json"}
                ),
                400,
                "invalid",
            ),
            (await client.post("/v1/txs", json={"tx": "zz"}), 400, "invalid"),
            (await client.post("/v1/txs", json={"tx": "626164"}), 400, "invalid"),
            (await client.post("/v1/txs", json={"tx": "626f6f6d"}), 500, "internal"),
        ]
        for resp, status, code in cases:
            body = await resp.json()
            assert resp.status == status, (resp.url, body)
            assert body["error"]["code"] == code, body
            assert "Traceback" not in body["error"]["message"]
            assert "secret" not in body["error"]["message"]
        node.full = True
        resp = await client.post("/v1/txs", json={"tx": "00"})
        assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    finally:
        await client.close()


async def test_batch_submit_gives_one_result_per_tx_in_order() -> None:
    node = FakeNode()
    client = await _client(node)
    try:
        resp = await client.post("/v1/txs", json={"txs": ["0102", "03", "aa"]})
        assert resp.status == 202
        body = await resp.json()
        assert [r["hash"] for r in body["results"]] == ["0102", "03", "aa"]
        assert node.submitted == [b"\x01\x02", b"\x03", b"\xaa"]
        for bad, words in [
            ({"txs": []}, "non-empty list"),
            ({"txs": "0102"}, "non-empty list"),
            ({"txs": ["0102", "zz"]}, "txs[1] must be hex"),
            ({"txs": ["0102", 5]}, "txs[1] must be a hex string"),
            ({"txs": [""]}, "empty transaction"),
            ({"txs": ["00"] * 2001}, "at most 2000"),
            ([1, 2], "body must be JSON"),
        ]:
            resp = await client.post("/v1/txs", json=bad)
            assert resp.status == 400, bad
            assert words in (await resp.json())["error"]["message"], bad
        assert len(node.submitted) == 3  # nothing of a refused batch was submitted
    finally:
        await client.close()
