"""aiohttp application and server for the node's HTTP API.

Paths (all GET unless noted; JSON bodies; errors are ``{"error": {"code", "message"}}``):

- ``/v1/status``
- ``/v1/blocks/latest``, ``/v1/blocks/{height}``
- ``/v1/txs/{hash}``; ``POST /v1/txs`` with ``{"tx": "<hex>"}`` or raw bytes
  (``application/octet-stream``), or a batch ``{"txs": ["<hex>", ...]}`` answered with
  ``{"results": [{"hash", "status", "error"?}, ...]}`` in the same order
- ``/v1/accounts/{address}``
- ``/v1/topics``, ``/v1/topics/{id}``
- ``/v1/topics/{id}/network-inference[?nonce=N]``, ``/v1/topics/{id}/network-inference/history``
- ``/v1/topics/{id}/rewards[?nonce=N&actor=ADDR]``
- ``/emissions/v1/latest_network_inferences/{id}`` (Allora's REST path, same body)
- ``/metrics`` (Prometheus text format)

Why a middleware for errors: every failure, expected or not, must leave as a JSON body with
the right 4xx/5xx status and never as a stack trace; unexpected errors are logged with their
trace on the server side only.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from alloranet.errors import AlloraError, DecodeError, ValidationError
from alloranet.rpc.api import NodeApi, NotFoundError, UnavailableError

log = logging.getLogger("alloranet.rpc")

NODE_KEY: web.AppKey[NodeApi] = web.AppKey("node", NodeApi)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except NotFoundError as exc:
        return _error(404, "not_found", str(exc))
    except UnavailableError as exc:
        response = _error(503, "unavailable", str(exc))
        response.headers["Retry-After"] = "1"
        return response
    except (DecodeError, ValidationError) as exc:
        return _error(400, "invalid", str(exc))
    except AlloraError as exc:
        return _error(400, "rejected", str(exc))
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return _error(500, "internal", "internal error (see the node's log)")


def _int_param(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValidationError(f"{name} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValidationError(f"{name} must not be negative")
    return number


def _path_int(request: web.Request, name: str) -> int:
    value = _int_param(request.match_info[name], name)
    assert value is not None
    return value


def _node(request: web.Request) -> NodeApi:
    return request.app[NODE_KEY]


async def status(request: web.Request) -> web.Response:
    return web.json_response(_node(request).status())


async def block(request: web.Request) -> web.Response:
    text = request.match_info["height"]
    height = None if text == "latest" else _path_int(request, "height")
    return web.json_response(await _node(request).block(height))


async def tx(request: web.Request) -> web.Response:
    try:
        tx_hash = bytes.fromhex(request.match_info["hash"])
    except ValueError:
        raise ValidationError("transaction hash must be hex") from None
    if len(tx_hash) != 32:
        raise ValidationError("transaction hash must be 32 bytes (64 hex characters)")
    return web.json_response(await _node(request).tx(tx_hash))


#: Most transactions one ``POST /v1/txs`` batch may carry (the body limit applies as well).
MAX_SUBMIT_BATCH = 2000


async def read_json_object(
    request: web.Request, shape: str, empty_ok: bool = False
) -> dict[str, Any]:
    """The request body as a JSON object; anything else is a ValidationError naming ``shape``.

    One parser for every JSON-body route (the public API and the admin routes), so a bad body
    gets the same 400 everywhere. ``empty_ok``: no body at all reads as ``{}``."""
    if empty_ok and not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise ValidationError(f"body must be JSON {shape}") from None
    if not isinstance(body, dict):
        raise ValidationError(f"body must be JSON {shape}")
    return body


def _unhex(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a hex string")
    try:
        data = binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{name} must be hex-encoded bytes") from None
    if not data:
        raise ValidationError(f"{name}: empty transaction")
    return data


async def submit_tx(request: web.Request) -> web.Response:
    """One transaction (raw bytes or ``{"tx": hex}``) or a batch (``{"txs": [hex, ...]}``).

    Why a batch form: HTTP handling costs about as much CPU as admitting a transaction, so a
    load-heavy client sends many per request; the answer has one result per transaction."""
    if request.content_type == "application/octet-stream":
        data = await request.read()
        if not data:
            raise ValidationError("empty transaction")
        return web.json_response(_node(request).submit_tx(data), status=202)
    shape = '{"tx": "<hex>"} or {"txs": ["<hex>", ...]} (or raw bytes)'
    body = await read_json_object(request, shape)
    if "txs" in body:
        items = body["txs"]
        if not isinstance(items, list) or not items:
            raise ValidationError('"txs" must be a non-empty list of hex strings')
        if len(items) > MAX_SUBMIT_BATCH:
            raise ValidationError(f"at most {MAX_SUBMIT_BATCH} transactions per request")
        txs = [_unhex(item, f"txs[{i}]") for i, item in enumerate(items)]
        return web.json_response({"results": _node(request).submit_txs(txs)}, status=202)
    if not isinstance(body.get("tx"), str):
        raise ValidationError(f"body must be JSON {shape}")
    return web.json_response(_node(request).submit_tx(_unhex(body["tx"], "tx")), status=202)


async def account(request: web.Request) -> web.Response:
    return web.json_response(_node(request).account(request.match_info["address"]))


async def topics(request: web.Request) -> web.Response:
    return web.json_response({"topics": _node(request).topics()})


async def topic(request: web.Request) -> web.Response:
    return web.json_response(_node(request).topic(_path_int(request, "id")))


async def network_inference(request: web.Request) -> web.Response:
    nonce = _int_param(request.query.get("nonce"), "nonce")
    return web.json_response(_node(request).network_inference(_path_int(request, "id"), nonce))


async def network_inference_history(request: web.Request) -> web.Response:
    limit = _int_param(request.query.get("limit"), "limit") or 20
    items = _node(request).network_inference_history(_path_int(request, "id"), min(limit, 500))
    return web.json_response({"network_inferences": items})


async def rewards(request: web.Request) -> web.Response:
    nonce = _int_param(request.query.get("nonce"), "nonce")
    actor = request.query.get("actor") or None
    items = _node(request).rewards(_path_int(request, "id"), nonce, actor)
    return web.json_response({"rewards": items})


async def validators(request: web.Request) -> web.Response:
    return web.json_response({"validators": _node(request).validators()})


async def supply(request: web.Request) -> web.Response:
    return web.json_response(_node(request).supply())


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=_node(request).metrics(), content_type="text/plain", charset="utf-8")


def build_app(node: NodeApi, max_body_bytes: int = 1 << 20) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=max_body_bytes)
    app[NODE_KEY] = node
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/blocks/{height}", block)
    app.router.add_get("/v1/txs/{hash}", tx)
    app.router.add_post("/v1/txs", submit_tx)
    app.router.add_get("/v1/accounts/{address}", account)
    app.router.add_get("/v1/topics", topics)
    app.router.add_get("/v1/topics/{id}", topic)
    app.router.add_get("/v1/topics/{id}/network-inference", network_inference)
    app.router.add_get("/v1/topics/{id}/network-inference/history", network_inference_history)
    app.router.add_get("/v1/topics/{id}/rewards", rewards)
    app.router.add_get("/emissions/v1/latest_network_inferences/{id}", network_inference)
    app.router.add_get("/v1/validators", validators)
    app.router.add_get("/v1/supply", supply)
    app.router.add_get("/metrics", metrics)
    return app


class ApiServer:
    """The API on ``host:port`` (port 0 picks a free one; :attr:`port` tells which)."""

    def __init__(self, node: NodeApi, host: str, port: int, max_body_bytes: int = 1 << 20):
        self._app = build_app(node, max_body_bytes)
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
