"""The asyncio driver: 4 validators with real Ed25519 and real files, a restart from the WAL."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from alloranet.clock import MonotonicClock
from alloranet.codec import decode, encode
from alloranet.consensus import timeouts as T
from alloranet.consensus.driver import ConsensusDriver
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.storage import FileDisk
from alloranet.consensus.types import Commit, Decision, Vote, decode_message
from alloranet.consensus.validators import ValidatorSet, compute_genesis_sets, compute_next_sets
from alloranet.consensus.votes import verify_commit
from alloranet.consensus.wal import WAL
from alloranet.crypto import PrivateKey
from alloranet.errors import DecodeError

CHAIN = "driver-test"
KEYS = [PrivateKey.from_label(f"driver-{i}").signer() for i in range(4)]
GENESIS = [(k.public_key, p) for k, p in zip(KEYS, (4, 3, 2, 2), strict=True)]


class MemApp:
    """A durable-enough application: survives driver restarts because the test keeps it."""

    def __init__(self, name: str) -> None:
        self.name = name
        vals, self.next_set = compute_genesis_sets(GENESIS)
        self.sets: dict[int, ValidatorSet] = {1: vals}
        self.blocks: dict[int, Decision] = {}

    def get_last_height(self) -> int:
        return len(self.blocks)

    def get_validators(self, height: int) -> ValidatorSet:
        return self.sets[height]

    def propose_value(self, height: int, round_: int) -> bytes:
        return encode((height, round_, self.name))

    def is_valid_value(self, height: int, value: bytes) -> bool:
        try:
            return bool(decode(value)[0] == height)
        except (DecodeError, TypeError, IndexError):
            return False

    def commit_value(self, height: int, value: bytes, commit: Commit) -> None:
        verify_commit(CHAIN, self.sets[height], height, commit.block_id, commit)
        self.blocks[height] = Decision(value, commit)
        self.sets[height + 1], self.next_set = compute_next_sets(self.next_set, [])

    def get_decision(self, height: int) -> Decision | None:
        return self.blocks.get(height)


class Net:
    def __init__(self) -> None:
        self.drivers: dict[str, ConsensusDriver] = {}
        self.signed: dict[tuple[bytes, int, int, int], bytes] = {}
        self.double_signs = 0

    def endpoint(self, name: str) -> Endpoint:
        return Endpoint(self, name)


class Endpoint:
    def __init__(self, net: Net, name: str) -> None:
        self.net, self.name = net, name

    def broadcast(self, data: bytes) -> None:
        msg = decode_message(data)
        if isinstance(msg, Vote):
            k = (msg.validator, msg.height, msg.round, msg.vote_type)
            if self.net.signed.setdefault(k, msg.block_id) != msg.block_id:
                self.net.double_signs += 1
        for name, d in list(self.net.drivers.items()):
            if name != self.name:
                d.on_message(data, self.name)

    def send(self, peer: str, data: bytes) -> None:
        d = self.net.drivers.get(peer)
        if d is not None:
            d.on_message(data, self.name)


def make_driver(net: Net, i: int, app: MemApp, root: Path) -> ConsensusDriver:
    name = f"n{i}"
    signer = SignerGuard(KEYS[i], FileDisk(root / name / "signer"), CHAIN)
    d = ConsensusDriver(
        CHAIN,
        app,
        WAL(FileDisk(root / name / "wal")),
        net.endpoint(name),
        MonotonicClock(),
        T.LOCAL,
        signer,
        rebroadcast_interval=0.1,
    )
    net.drivers[name] = d
    return d


async def wait_for(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_four_drivers_commit_and_one_restarts_from_its_wal(tmp_path: Path) -> None:
    net = Net()
    apps = [MemApp(f"n{i}") for i in range(4)]
    drivers = [make_driver(net, i, apps[i], tmp_path) for i in range(4)]
    for d in drivers:
        await d.start()
    try:
        await wait_for(lambda: all(a.get_last_height() >= 3 for a in apps))
        # stop validator 1 mid-height, then restart it from its WAL and signer state
        await drivers[1].stop()
        del net.drivers["n1"]
        h = apps[1].get_last_height()
        restarted = make_driver(net, 1, apps[1], tmp_path)
        await restarted.start()
        drivers[1] = restarted
        await wait_for(lambda: all(a.get_last_height() >= h + 3 for a in apps))
    finally:
        for d in drivers:
            await d.stop()
    assert all(d.error is None for d in drivers)
    assert net.double_signs == 0
    top = min(a.get_last_height() for a in apps)
    for height in range(1, top + 1):
        assert len({a.blocks[height].value for a in apps}) == 1  # agreement


class FullCommitApp(MemApp):
    """Keeps the fuller commits the replica offers when a height finishes."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.final: dict[int, Commit] = {}

    def record_final_commit(self, commit: Commit) -> None:
        verify_commit(CHAIN, self.sets[commit.height], commit.height, commit.block_id, commit)
        assert commit.block_id == self.blocks[commit.height].commit.block_id
        self.final[commit.height] = commit


async def test_finished_heights_offer_every_precommit(tmp_path: Path) -> None:
    """The deciding commit holds the first precommits past 2/3 (3 of these 4 validators); the
    replica offers the app the full set it has once the height finishes (for last_commit)."""
    net = Net()
    apps = [FullCommitApp(f"n{i}") for i in range(4)]
    drivers = [make_driver(net, i, apps[i], tmp_path) for i in range(4)]
    for d in drivers:
        await d.start()
    try:
        await wait_for(lambda: all(a.get_last_height() >= 5 for a in apps))
    finally:
        for d in drivers:
            await d.stop()
    assert all(d.error is None for d in drivers)
    for app in apps:
        assert app.final, f"{app.name} was never offered a fuller commit"
        for height, commit in app.final.items():
            assert len(commit.signatures) > len(app.blocks[height].commit.signatures)
            assert len(commit.signatures) == 4


class LoneApp(MemApp):
    """One validator holding all the power: it decides inside its own precommit."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        vals, self.next_set = compute_genesis_sets([(KEYS[0].public_key, 1)])
        self.sets = {1: vals}


async def test_lone_validator_with_skip_timeout_commit_yields_between_heights(
    tmp_path: Path,
) -> None:
    """With skip_timeout_commit a lone validator's own precommit completes the commit; the
    height must still end through the timer (a zero-delay commit timeout), so heights do not
    chain inside one call (a RecursionError after ~300 heights before) and other tasks run."""
    net = Net()
    app = LoneApp("n0")
    signer = SignerGuard(KEYS[0], FileDisk(tmp_path / "n0" / "signer"), CHAIN)
    timeouts = dataclasses.replace(T.LOCAL, commit=5.0, skip_timeout_commit=True)
    driver = ConsensusDriver(
        CHAIN, app, WAL(FileDisk(tmp_path / "n0" / "wal")), net.endpoint("n0"),
        MonotonicClock(), timeouts, signer,
    )  # fmt: skip
    net.drivers["n0"] = driver
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(ticker())
    await driver.start()
    try:
        await wait_for(lambda: app.get_last_height() >= 400 or driver.error is not None, 60.0)
    finally:
        await driver.stop()
        other.cancel()
    assert driver.error is None
    assert app.get_last_height() >= 400  # a 5 s timeout_commit would allow ~12 in 60 s
    assert ticks >= 400  # the other task ran at least once per height
