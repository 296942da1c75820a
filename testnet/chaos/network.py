"""``ChaosNetwork``: real node processes plus the faults a chaos run injects into them.

Why one object for pytest and the CLI: both need the same moves (start N nodes, wait on a
condition, partition, kill, pause, truncate a WAL, start a twin) and the same clean-up, and a
fault that the CLI can replay from a seed must be the very code a test ran.

Every wait is a condition polled until a deadline; deadlines are multiplied by the environment
variable ``ALLORANET_TIMEOUT_FACTOR`` (default 1) so a slow CI machine can stretch them all.
Partitions go through each node's test-mode admin route, which calls the p2p layer's fault
hook: traffic with blocked peers is refused in both directions, on existing and new connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from alloranet.node.config import NODE_KEY_FILE
from alloranet.node.localnet import ActorPlan
from alloranet.p2p.identity import load_peer_id
from testnet import processes
from testnet.chaos.homes import NodeHome, create_homes, create_twin_home
from testnet.chaos.schema import NetworkSpec
from testnet.client import ApiError, get_json, post_json, try_get_json
from testnet.launcher import alloranet_argv

T = TypeVar("T")

WAL_FILE = Path("data") / "consensus" / "cs.wal"


class ChaosError(Exception):
    """A chaos run could not proceed (a node did not start, a wait timed out, ...)."""


def timeout_factor() -> float:
    raw = os.environ.get("ALLORANET_TIMEOUT_FACTOR", "1")
    try:
        value = float(raw)
    except ValueError:
        raise ChaosError(f"ALLORANET_TIMEOUT_FACTOR must be a number, got {raw!r}") from None
    if value <= 0:
        raise ChaosError("ALLORANET_TIMEOUT_FACTOR must be positive")
    return value


class ChaosNetwork:
    """N node processes (and twins) under ``root``, named ``node{i}`` and ``node{i}-twin``."""

    def __init__(self, root: Path, spec: NetworkSpec, chain_id: str = "alloranet-chaos") -> None:
        self.root = root.resolve()
        self.spec = spec
        self.chain_id = chain_id
        self.factor = timeout_factor()
        self.homes: dict[str, NodeHome] = {}
        self.paused: set[str] = set()
        self.blocked: dict[str, set[str]] = {}
        self.started_at: dict[str, float] = {}
        self.actors: list[ActorPlan] = []

    # --- set-up and processes -------------------------------------------------------------

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        nodes, self.actors = create_homes(self.root, self.spec, self.chain_id)
        for home in nodes:
            self.homes[home.name] = home
        for index in self.spec.twins:
            twin = create_twin_home(self.root, nodes[index], nodes)
            self.homes[twin.name] = twin

    @property
    def names(self) -> list[str]:
        return list(self.homes)

    def name_of(self, index: int) -> str:
        return f"node{index}"

    def initial(self) -> list[str]:
        """Processes started with the network: all but late validators and joiners."""
        late = {self.name_of(i) for i in self.spec.late}
        late |= {self.name_of(self.spec.validators + j) for j in range(self.spec.joiners)}
        if self.spec.twins_start_late:
            late |= {f"{self.name_of(i)}-twin" for i in self.spec.twins}
        return [n for n in self.names if n not in late]

    def is_running(self, name: str) -> bool:
        return processes.is_running(self.root, name)

    def start(self, name: str) -> None:
        home = self.homes[name]
        argv = alloranet_argv("start", "--home", str(home.home), "--test-mode")
        if home.index in self.spec.equivocators and not name.endswith("-twin"):
            argv.append("--test-unsafe-equivocate")
        if self.is_running(name):
            raise ChaosError(f"{name} is already running")
        processes.spawn(self.root, name, argv)
        self.started_at[name] = time.monotonic()

    def start_many(self, names: Iterable[str]) -> None:
        for name in names:
            self.start(name)

    def wait_up(self, names: Iterable[str], timeout: float = 60.0) -> None:
        """Wait until every named node answers its admin route, then re-apply its blocks."""
        for name in names:
            self.wait_for(f"{name}'s API", partial(self.admin_up, name), timeout)
            if self.blocked.get(name):
                self._admin_post(name, "block", {"peers": sorted(self.blocked[name])})

    def admin_up(self, name: str) -> bool:
        return try_get_json(f"{self.homes[name].api}/v1/admin/faults", timeout=1.0) is not None

    def kill(self, name: str) -> None:
        self.paused.discard(name)
        processes.kill(self.root, name)

    def pause(self, name: str) -> None:
        pid = self._pid(name)
        os.kill(pid, signal.SIGSTOP)
        self.paused.add(name)

    def resume(self, name: str) -> None:
        pid = self._pid(name)
        os.kill(pid, signal.SIGCONT)
        self.paused.discard(name)

    def _pid(self, name: str) -> int:
        pid = processes.read_pid(self.root, name)
        if pid is None or not processes.is_ours(pid, self.root):
            raise ChaosError(f"{name} is not running")
        return pid

    def truncate_wal(self, name: str, nbytes: int) -> int:
        """Cut ``nbytes`` off the tail of a stopped node's consensus WAL; returns bytes cut."""
        if self.is_running(name):
            raise ChaosError(f"{name} must be stopped before its WAL is truncated")
        path = self.homes[name].home / WAL_FILE
        if not path.exists():
            return 0
        size = path.stat().st_size
        cut = min(nbytes, size)
        os.truncate(path, size - cut)
        return cut

    def stop_all(self) -> None:
        """Resume paused processes, then stop everything by PID (SIGTERM, SIGKILL on timeout)."""
        for name in list(self.paused):
            with contextlib.suppress(ChaosError, ProcessLookupError):
                self.resume(name)
        for name in self.names:
            processes.stop(self.root, name, timeout=8.0)

    # --- observation ----------------------------------------------------------------------

    def api(self, name: str) -> str:
        return self.homes[name].api

    def status(self, name: str) -> dict[str, Any] | None:
        if name in self.paused:
            return None
        value = try_get_json(f"{self.api(name)}/v1/status", timeout=1.5)
        return value if isinstance(value, dict) else None

    def height(self, name: str) -> int:
        status = self.status(name)
        return int(status["height"]) if status else -1

    def heights(self, names: Iterable[str]) -> dict[str, int]:
        return {name: self.height(name) for name in names}

    def get(self, name: str, path: str) -> Any:
        return get_json(f"{self.api(name)}{path}", timeout=5.0)

    def wait_for(
        self, what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.1
    ) -> T:
        """Poll ``probe`` until truthy; ChaosError after ``timeout`` x the timeout factor."""
        deadline = time.monotonic() + timeout * self.factor
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                raise ChaosError(f"timed out after {timeout * self.factor:.0f}s: {what}")
            time.sleep(interval)

    def wait_height(self, names: Iterable[str], height: int, timeout: float) -> None:
        names = list(names)
        self.wait_for(
            f"{names} at height {height}",
            lambda: all(self.height(n) >= height for n in names),
            timeout,
        )

    # --- partitions -----------------------------------------------------------------------

    def peer_id(self, name: str) -> str:
        return load_peer_id(self.homes[name].home / NODE_KEY_FILE)

    def _with_twins(self, indexes: Iterable[int]) -> list[str]:
        out = []
        for index in indexes:
            out.append(self.name_of(index))
            twin = f"{self.name_of(index)}-twin"
            if twin in self.homes:
                out.append(twin)
        return out

    def _admin_post(self, name: str, verb: str, body: dict[str, Any]) -> None:
        if not self.is_running(name) or name in self.paused:
            return  # re-applied by wait_up when it starts again
        try:
            post_json(f"{self.api(name)}/v1/admin/{verb}", body, timeout=5.0)
        except (ApiError, OSError) as exc:
            raise ChaosError(f"admin {verb} on {name} failed: {exc}") from None

    def block(self, name: str, peers: set[str]) -> None:
        self.blocked.setdefault(name, set()).update(peers)
        self._admin_post(name, "block", {"peers": sorted(peers)})

    def partition(self, groups: Iterable[Iterable[int]]) -> None:
        """Split the network: no traffic between nodes of different groups (twins follow their
        validator's group; nodes in no group are cut off from everyone)."""
        named = [self._with_twins(group) for group in groups]
        everyone = set(self.names)
        for group in named:
            others = {self.peer_id(n) for n in everyone - set(group)}
            for name in group:
                self.block(name, others)
        for name in everyone - {n for g in named for n in g}:
            self.block(name, {self.peer_id(n) for n in everyone - {name}})

    def cut_link(self, a: int, b: int) -> None:
        name_a, name_b = self.name_of(a), self.name_of(b)
        self.block(name_a, {self.peer_id(name_b)})
        self.block(name_b, {self.peer_id(name_a)})

    def heal(self) -> None:
        self.blocked.clear()
        for name in self.names:
            self._admin_post(name, "unblock", {})
