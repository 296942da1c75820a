"""A tiny HTTP client for the node API (stdlib only: testnet/ talks to nodes over HTTP)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def _fetch(request: str | urllib.request.Request, timeout: float) -> Any:
    """The decoded JSON answer; an HTTP error becomes an ApiError carrying the API's own
    message (``{"error": {"code", "message"}}``), else the HTTP reason."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise ApiError(exc.code, str(message)) from None


def get_json(url: str, timeout: float = 2.0) -> Any:
    return _fetch(url, timeout)


def post_json(url: str, body: Any, timeout: float = 5.0) -> Any:
    data = json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    return _fetch(req, timeout)


def try_get_json(url: str, timeout: float = 2.0) -> Any | None:
    """Like :func:`get_json` but None when the node is down or answers with an error."""
    try:
        return get_json(url, timeout)
    except (ApiError, OSError, ValueError):
        return None
