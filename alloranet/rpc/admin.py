"""Test-mode admin routes: fault injection and checker views, under ``/v1/admin/``.

Why a separate sub-application: these routes let anyone on the loopback partition the node
from its peers, so they must not exist on a production node. The node mounts this app only
when started with ``alloranet start --test-mode``; otherwise every ``/v1/admin/`` path is a 404.

Paths (JSON; errors ``{"error": {"code", "message"}}`` like the public API):

- ``GET  /v1/admin/faults``          blocked peer ids and this node's peer id
- ``POST /v1/admin/block``           ``{"peers": [peer_id, ...]}``: drop all traffic with them
- ``POST /v1/admin/unblock``         ``{"peers": [...]}`` or ``{}`` (lift every block)
- ``GET  /v1/admin/validators``      every validator record: tokens, jailed, tombstoned
- ``GET  /v1/admin/supply``          total supply recomputed from balances vs the recorded one
- ``GET  /v1/admin/evidence/{height}`` double-sign evidence carried by the block at ``height``
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from alloranet.errors import ValidationError
from alloranet.rpc.server import ApiServer, error_middleware, read_json_object


class AdminApi(Protocol):
    """What the admin routes need from the node (filled in by ``alloranet.node.faults``)."""

    def faults(self) -> dict[str, Any]: ...

    def block_peers(self, peer_ids: set[str]) -> dict[str, Any]: ...

    def unblock_peers(self, peer_ids: set[str] | None) -> dict[str, Any]: ...

    def validators(self) -> list[dict[str, Any]]: ...

    def supply(self) -> dict[str, Any]: ...

    async def evidence(self, height: int) -> list[dict[str, Any]]: ...


ADMIN_KEY: web.AppKey[AdminApi] = web.AppKey("admin", AdminApi)


async def _peers(request: web.Request, required: bool) -> set[str] | None:
    body = await read_json_object(request, '{"peers": ["<peer id>", ...]}', empty_ok=True)
    peers = body.get("peers")
    if peers is None and not required:
        return None
    if not isinstance(peers, list) or not all(isinstance(p, str) and p for p in peers):
        raise ValidationError('"peers" must be a list of peer id strings')
    return set(peers)


def _admin(request: web.Request) -> AdminApi:
    return request.app[ADMIN_KEY]


async def faults(request: web.Request) -> web.Response:
    return web.json_response(_admin(request).faults())


async def block(request: web.Request) -> web.Response:
    peers = await _peers(request, required=True)
    assert peers is not None
    return web.json_response(_admin(request).block_peers(peers))


async def unblock(request: web.Request) -> web.Response:
    return web.json_response(_admin(request).unblock_peers(await _peers(request, required=False)))


async def validators(request: web.Request) -> web.Response:
    return web.json_response({"validators": _admin(request).validators()})


async def supply(request: web.Request) -> web.Response:
    return web.json_response(_admin(request).supply())


async def evidence(request: web.Request) -> web.Response:
    text = request.match_info["height"]
    if not text.isdigit():
        raise ValidationError(f"height must be a non-negative integer, got {text!r}")
    return web.json_response({"evidence": await _admin(request).evidence(int(text))})


def build_admin_app(admin: AdminApi) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[ADMIN_KEY] = admin
    app.router.add_get("/faults", faults)
    app.router.add_post("/block", block)
    app.router.add_post("/unblock", unblock)
    app.router.add_get("/validators", validators)
    app.router.add_get("/supply", supply)
    app.router.add_get("/evidence/{height}", evidence)
    return app


def mount_admin(server: ApiServer, admin: AdminApi) -> None:
    """Add the admin routes to ``server`` under ``/v1/admin``; call before ``server.start()``.

    The API server owns its aiohttp application; an aiohttp sub-app is the supported way to
    add a group of routes with their own state before the application is frozen at start."""
    server._app.add_subapp("/v1/admin", build_admin_app(admin))
