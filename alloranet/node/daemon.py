"""The node: p2p, mempool, consensus, chain state, block sync and the HTTP API in one process.

Start order (and the reverse for stop): store and state → p2p host → mempool and transaction
gossip → consensus replica (replays its WAL) → block sync → HTTP API. ``run_node`` adds
uvloop, structured logs and SIGTERM/SIGINT handling with a hard shutdown timeout, so a stuck
network thread can never keep a stopped node alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

from alloranet.chain import app as chain
from alloranet.chain.block import Block
from alloranet.chain.epoch_hook import EpochProcessor
from alloranet.chain.genesis import build_genesis_state
from alloranet.chain.kv import AppState
from alloranet.chain.ledger import ledger_of
from alloranet.codec import sha256
from alloranet.consensus.replica import Replica
from alloranet.consensus.signer import SignerGuard
from alloranet.consensus.storage import FileDisk
from alloranet.consensus.validators import compute_genesis_sets
from alloranet.consensus.wal import WAL
from alloranet.crypto import address_from_public_key, load_key
from alloranet.errors import AlloraError, ConfigError
from alloranet.mempool import DuplicateTxError, Mempool, MempoolFullError
from alloranet.node import faults, queries
from alloranet.node.app import ChainApp, Committed
from alloranet.node.chainlink import ValsetFile, compute_chain_genesis
from alloranet.node.config import (
    DATA_DIR,
    GENESIS_FILE,
    NODE_KEY_FILE,
    VALIDATOR_KEY_FILE,
    NodeConfig,
    load_config,
    parse_host_port,
)
from alloranet.node.epoch import (
    SynthesisProcessor,
    compute_module_params,
    compute_round,
    compute_topic_params,
    inference_json,
    load_losses,
    load_regrets,
    losses_json,
)
from alloranet.node.genesis import load_genesis
from alloranet.node.history import History
from alloranet.node.logs import fields, setup_logging
from alloranet.node.metrics import NodeMetrics
from alloranet.node.shell import ConsensusShell, compute_timeout_config
from alloranet.node.sync import BlockSync
from alloranet.p2p.batcher import Batcher, decode_batch
from alloranet.p2p.config import TX_CHANNEL, P2PConfig
from alloranet.p2p.host import P2PHost
from alloranet.rpc import ApiServer, NotFoundError, UnavailableError
from alloranet.state.chainstore import load_app_state, save_block_result, save_genesis_state
from alloranet.state.store import Store

log = logging.getLogger("alloranet.node")

#: Recent blocks kept in memory for the API (by bytes; older ones come from the store).
BLOCK_CACHE_BYTES = 24 << 20
#: Recent tx results kept in memory (the store's tx index answers for older ones).
TX_RESULT_CACHE = 20_000
#: Admissions of gossiped transactions between two yields to the event loop.
GOSSIP_YIELD_EVERY = 32


class Node:
    """One running node; also the :class:`alloranet.rpc.NodeApi` the HTTP server serves."""

    def __init__(
        self, home: Path, config: NodeConfig | None = None, processor: EpochProcessor | None = None
    ) -> None:
        self.home = home
        self.config = config or load_config(home)
        self.genesis_spec = load_genesis(home / GENESIS_FILE)
        if self.genesis_spec.chain_id != self.config.chain_id:
            raise ConfigError(
                f"config chain_id {self.config.chain_id!r} differs from genesis "
                f"{self.genesis_spec.chain_id!r}"
            )
        self.synthesis = SynthesisProcessor()
        self.processor: EpochProcessor = processor or self.synthesis
        self.history: History | None = None
        self._inference_cache: dict[tuple[int, int, int], dict[str, Any]] = {}
        self.prom = NodeMetrics()
        self.store: Store | None = None
        self.app: ChainApp | None = None
        self.mempool: Mempool | None = None
        self.host: P2PHost | None = None
        self.shell: ConsensusShell | None = None
        self.sync: BlockSync | None = None
        self.api: ApiServer | None = None
        self.batcher: Batcher | None = None
        self._writer_queue: asyncio.Queue[Committed | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self._blocks: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()
        self._block_bytes = 0
        self._commit_times: OrderedDict[int, float] = OrderedDict()
        self._tx_results: OrderedDict[bytes, tuple[int, int, int, str]] = OrderedDict()
        self._last_commit_time: float | None = None
        #: (height, block hash hex, time ms) of the last commit: status without re-decoding
        self._last_header: tuple[int, str, int] | None = None
        self.is_validator = False
        self.started_at = time.time()
        self._persisted_height = 0

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        t0 = time.monotonic()
        phases: dict[str, float] = {}

        def phase(name: str) -> None:
            phases[name] = round(time.monotonic() - t0, 4)

        data = self.home / DATA_DIR
        data.mkdir(parents=True, exist_ok=True)
        genesis = compute_chain_genesis(self.genesis_spec)
        self.store = await Store.open(data / "state.db")
        if not await self.store.has_genesis():
            state = build_genesis_state(genesis)
            await save_genesis_state(self.store, state)
            log.info("wrote genesis state", extra=fields(app_hash=state.app_hash.hex()))
        else:
            state = await load_app_state(self.store)
        height = chain.get_height(state)
        self._persisted_height = height
        phase("state_loaded")
        # History is read from chain state (hist/): the same on every node, restarts included.
        self.history = History(data / "history.jsonl", state=self._state)
        valset_file = ValsetFile(data / "valsets.bin")
        if height == 0:
            valsets = compute_genesis_sets(chain.get_validator_set(state))
        elif height in valset_file.entries:
            valsets = valset_file.entries[height]
        else:
            raise ConfigError(
                f"{valset_file.path} has no validator sets for height {height}: the data "
                "directory is damaged (restore it or resync from genesis)"
            )
        last_commit = b""
        last_block_id = b""
        if height > 0:
            last_commit = await self.store.load_commit(height) or b""
            block = await self.store.load_block(height)
            last_block_id = sha256(block) if block else b""

        key = None
        validator_key_path = self.home / VALIDATOR_KEY_FILE
        if cfg.validator and validator_key_path.exists():
            key = load_key(validator_key_path)
        members = {pk for pk, _ in chain.get_validator_set(state)}
        self.is_validator = key is not None and key.public_key in members
        self.app = ChainApp(
            cfg.chain_id,
            state,
            valsets,
            valset_file,
            key.public_key if key is not None and self.is_validator else None,
            self.processor,
            last_commit,
            cfg.consensus.max_block_txs,
            cfg.consensus.max_block_bytes,
        )
        self.app.last_block_id = last_block_id
        self.app.listeners.append(self._on_commit)
        self.mempool = Mempool(
            self.app, cfg.mempool.max_txs, cfg.mempool.max_bytes, cfg.mempool.max_tx_bytes
        )
        self.app.mempool = self.mempool
        self.prom.height.set(height)

        self.host = P2PHost(
            P2PConfig(
                key_file=self.home / NODE_KEY_FILE,
                listen_addrs=cfg.p2p.listen,
                bootstrap=cfg.p2p.bootstrap,
                network_id=cfg.chain_id,
                max_peers=cfg.p2p.max_peers,
                bulk_direct=cfg.p2p.tx_direct,
            )
        )
        await self.host.start()
        phase("p2p_listening")
        self.batcher = Batcher(
            self._publish_txs,
            max_bytes=cfg.mempool.gossip_batch_bytes,
            flush_interval=cfg.mempool.gossip_flush_ms / 1000,
        )
        self._tasks.append(asyncio.create_task(self._receive_txs(), name="tx-gossip"))
        self._tasks.append(asyncio.create_task(self._writer(), name="block-writer"))
        self._tasks.append(asyncio.create_task(self._gauges(), name="gauges"))

        self.shell = ConsensusShell(self.host, self.app)
        wal_disk = FileDisk(data / "consensus")
        signer = None
        if self.is_validator and key is not None:
            signer = SignerGuard(key, FileDisk(data / "signer"), cfg.chain_id)
            signer = faults.wrap_signer(signer, self.shell)  # test mode only
        timeouts = compute_timeout_config(
            cfg.consensus.timeout_propose_ms,
            cfg.consensus.timeout_propose_delta_ms,
            cfg.consensus.timeout_vote_ms,
            cfg.consensus.timeout_vote_delta_ms,
            cfg.consensus.timeout_commit_ms,
            cfg.consensus.skip_timeout_commit,
        )
        replica = Replica(cfg.chain_id, self.app, WAL(wal_disk), self.shell, timeouts, signer)
        self.shell.start(replica)
        phase("wal_replayed")

        self.sync = BlockSync(
            self.host,
            self.store,
            lambda: self.app.height if self.app else 0,
            self.shell.on_message,
            self.app.get_decision,
        )
        self.sync.start()

        host, port = parse_host_port(cfg.rpc.listen, "rpc.listen")
        self.api = ApiServer(self, host, port, cfg.rpc.max_body_bytes)
        faults.install(self)  # /v1/admin routes, only with `start --test-mode`
        await self.api.start()
        phase("api_up")
        self._watch_first_vote(height)
        log.info(
            "node started",
            extra=fields(
                start_phases_s=phases,
                moniker=cfg.moniker,
                chain_id=cfg.chain_id,
                height=height,
                peer_id=self.host.peer_id,
                validator=self.is_validator,
                api=self.api.url,
                genesis_sha256=sha256((self.home / GENESIS_FILE).read_bytes()).hex(),
            ),
        )

    def _watch_first_vote(self, start_height: int) -> None:
        """Log once when this validator's precommit is first part of a commit after start-up:
        how long a restarted validator takes to vote again (issue 7), seen from inside.

        Commits below ``start_height + 2`` are skipped: the block the node was deciding when
        it stopped may carry a precommit it signed before the restart."""
        app = self.app
        if app is None or app.my_key is None:
            return
        key = app.my_key
        started = time.monotonic()
        done = False

        def on_commit(committed: Committed) -> None:
            nonlocal done
            commit = committed.commit
            if done or commit.height < start_height + 2:
                return
            if not any(s.validator == key for s in commit.signatures):
                return
            done = True  # (the listener list is being iterated: not removed here)
            log.info(
                "first vote since start in a commit",
                extra=fields(
                    height=commit.height,
                    since_api_up_s=round(time.monotonic() - started, 3),
                    synced_blocks=self.sync.synced_blocks if self.sync else 0,
                ),
            )

        app.listeners.append(on_commit)

    async def stop(self) -> None:
        log.info("node stopping", extra=fields(height=self.app.height if self.app else 0))
        if self.api is not None:
            await self.api.stop()
        if self.sync is not None:
            await self.sync.stop()
        if self.shell is not None:
            await self.shell.stop()
        if self.batcher is not None:
            with contextlib.suppress(Exception):
                await self.batcher.close()
        self._writer_queue.put_nowait(None)
        for task in self._tasks:
            if task.get_name() != "block-writer":
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.host is not None:
            await self.host.close(timeout=3.0)
        if self.store is not None:
            await self.store.close()
        log.info("node stopped", extra=fields(persisted_height=self._persisted_height))

    # --- background tasks -----------------------------------------------------------------

    async def _publish_txs(self, data: bytes) -> None:
        assert self.host is not None
        await self.host.publish(TX_CHANNEL, data)

    async def _receive_txs(self) -> None:
        assert self.host is not None and self.mempool is not None
        subscription = self.host.subscribe(TX_CHANNEL)
        own = self.host.peer_id
        try:
            async for inbound in subscription:
                if inbound.origin == own:
                    continue
                try:
                    txs = decode_batch(
                        inbound.data, max_items=10_000, max_size=self.config.mempool.max_bytes
                    )
                except AlloraError as exc:
                    self.host.penalise(inbound.forwarder, f"bad tx batch: {exc}")
                    continue
                self.prom.txs_gossiped_in.inc(len(txs))
                for index, tx in enumerate(txs, 1):
                    with contextlib.suppress(AlloraError):
                        self.mempool.add(tx)
                    if index % GOSSIP_YIELD_EVERY == 0:
                        # A batch of a thousand admissions is ~0.1-0.3 s of CPU: let consensus
                        # messages and timers run in between, or proposals and votes arrive
                        # after their timeouts and rounds fail under load.
                        await asyncio.sleep(0)
        finally:
            subscription.close()

    async def _writer(self) -> None:
        """Persist committed blocks in order, one store transaction each."""
        assert self.store is not None
        while True:
            item = await self._writer_queue.get()
            if item is None:
                return
            try:
                await save_block_result(
                    self.store,
                    item.block_bytes,
                    item.result,
                    item.tx_hashes,
                    item.commit.encode(),
                )
                self._persisted_height = item.result.height
            except Exception:
                log.exception("failed to persist block %d", item.result.height)
                raise

    async def _gauges(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self.host is not None:
                self.prom.peers.set(len(self.host.peers()))
            if self.mempool is not None:
                self.prom.mempool_txs.set(len(self.mempool))
                self.prom.mempool_bytes.set(self.mempool.total_bytes)
            if self.sync is not None:
                self.prom.blocks_synced._value.set(self.sync.synced_blocks)

    def _on_commit(self, committed: Committed) -> None:
        result = committed.result
        height = result.height
        self._writer_queue.put_nowait(committed)
        self._blocks[height] = (committed.block_bytes, committed.commit.block_id)
        self._commit_times[height] = committed.committed_at
        while len(self._commit_times) > 100_000:
            self._commit_times.popitem(last=False)
        header = committed.block.header
        self._last_header = (height, header.hash.hex(), header.time_ms)
        self._block_bytes += len(committed.block_bytes)
        # Count and byte bounds: a full block is ~1 MB; older ones are read from the store.
        while len(self._blocks) > 256 or (
            self._block_bytes > BLOCK_CACHE_BYTES and len(self._blocks) > 1
        ):
            _, (old, _) = self._blocks.popitem(last=False)
            self._block_bytes -= len(old)
        failed = 0
        for index, (tx_hash, res) in enumerate(
            zip(committed.tx_hashes, result.tx_results, strict=True)
        ):
            self._tx_results[tx_hash] = (height, index, res.code, res.log)
            if res.code != 0:
                failed += 1
        while len(self._tx_results) > TX_RESULT_CACHE:
            self._tx_results.popitem(last=False)
        self.prom.height.set(height)
        self.prom.txs_committed.inc(len(committed.tx_hashes))
        self.prom.txs_failed.inc(failed)
        self.prom.block_txs.observe(len(committed.tx_hashes))
        now = committed.committed_at
        if self._last_commit_time is not None:
            self.prom.block_interval.observe(now - self._last_commit_time)
        self._last_commit_time = now
        for name, value in result.events:
            if name == "reputer_nonce_closed":
                self.prom.epochs_closed.inc()
                self._record_close(value)
        log.debug(
            "committed block",
            extra=fields(
                height=height, txs=len(committed.tx_hashes), app_hash=result.app_hash.hex()
            ),
        )

    def _record_close(self, value: str) -> None:
        topic_text, _, nonce_text = value.partition(":")
        topic_id, nonce = int(topic_text), int(nonce_text)
        details = self.synthesis.details.pop((topic_id, nonce), None)
        if details is None or self.history is None:
            return
        topic = ledger_of(self._state()).get_topic(topic_id)
        window = topic.worker_submission_window if topic is not None else 0
        self.history.record(topic_id, nonce, details, nonce + window)

    # --- NodeApi --------------------------------------------------------------------------

    def _state(self) -> AppState:
        assert self.app is not None
        return self.app.state

    def status(self) -> dict[str, Any]:
        assert self.app is not None and self.host is not None
        state = self.app.state
        height = self.app.height
        block_hash = None
        time_ms = None
        if self._last_header is not None and self._last_header[0] == height:
            _, block_hash, time_ms = self._last_header
        ledger = ledger_of(state)
        if block_hash is None and height > 0:
            block_hash = bytes(ledger.get_meta("block_hash", b"")).hex()
        return {
            "chain_id": self.config.chain_id,
            "moniker": self.config.moniker,
            "height": height,
            "block_hash": block_hash,
            "block_time_ms": time_ms or ledger.get_meta("time", 0),
            "app_hash": state.app_hash.hex(),
            "peers": len(self.host.peers()),
            "peer_id": self.host.peer_id,
            "listen_addrs": self.host.listen_addrs,
            "validator": self.is_validator,
            "validator_address": (
                address_from_public_key(self.app.my_key) if self.app.my_key else None
            ),
            "catching_up": bool(self.sync and self.sync.catching_up),
            "mempool_txs": len(self.mempool) if self.mempool else 0,
            "persisted_height": self._persisted_height,
            "consensus_round": self.shell.replica.state.round
            if self.shell and self.shell.replica
            else None,
            "uptime_s": round(time.time() - self.started_at, 1),
        }

    async def _load_block(self, height: int) -> tuple[bytes, bytes | None] | None:
        cached = self._blocks.get(height)
        if cached is not None:
            return cached[0], cached[1]
        assert self.store is not None
        data = await self.store.load_block(height)
        if data is None:
            return None
        return data, sha256(data)

    async def block(self, height: int | None) -> dict[str, Any]:
        assert self.app is not None
        target = self.app.height if height is None else height
        if target < 1 or target > self.app.height:
            raise NotFoundError(f"no block at height {target} (latest is {self.app.height})")
        loaded = await self._load_block(target)
        if loaded is None:
            raise NotFoundError(f"block {target} is not stored on this node")
        view = queries.block_view(Block.from_bytes(loaded[0]), loaded[1])
        committed_at = self._commit_times.get(target)
        # When this node committed it (wall clock), if it did so since it started.
        view["committed_at_ms"] = None if committed_at is None else int(committed_at * 1000)
        return view

    async def tx(self, tx_hash: bytes) -> dict[str, Any]:
        known = self._tx_results.get(tx_hash)
        if known is not None:
            height, index, code, message = known
            return {"hash": tx_hash.hex(), "height": height, "index": index, "code": code,
                    "log": message}  # fmt: skip
        assert self.store is not None
        location = await self.store.find_tx(tx_hash)
        if location is not None:
            return {"hash": tx_hash.hex(), "height": location.height, "index": location.index,
                    "code": location.code, "log": location.log}  # fmt: skip
        if self.mempool is not None and tx_hash in self.mempool:
            raise NotFoundError(f"transaction {tx_hash.hex()} is pending in the mempool")
        raise NotFoundError(f"transaction {tx_hash.hex()} is unknown")

    def account(self, address: str) -> dict[str, Any]:
        return queries.account_view(self._state(), address)

    def topics(self) -> list[dict[str, Any]]:
        return queries.topic_summaries(self._state())

    def topic(self, topic_id: int) -> dict[str, Any]:
        return queries.topic_view(self._state(), topic_id)

    def _live_inference(self, topic_id: int, nonce: int) -> dict[str, Any] | None:
        """The network inference of a nonce whose payloads are still in state (computed now)."""
        state = self._state()
        key = (topic_id, nonce, chain.get_height(state))
        cached = self._inference_cache.get(key)
        if cached is not None:
            return cached
        ledger = ledger_of(state)
        topic = ledger.get_topic(topic_id)
        if topic is None:
            raise NotFoundError(f"no topic {topic_id}")
        payloads = queries.worker_payloads(state, topic_id, nonce)
        inferences = {a: float(w[0]) for a, w in payloads if w[0] is not None}
        if not inferences:
            return None
        forecasts = {a: {i: float(v) for i, v in w[1]} for a, w in payloads if w[1]}
        families = ledger.synthesis_families(topic_id)
        round_ = compute_round(inferences, forecasts)
        from alloranet.synthesis import compute_network_inferences

        module = compute_module_params(ledger.emissions_params())
        latest_losses = load_losses(families)
        ni = compute_network_inferences(
            compute_topic_params(topic), module, round_, load_regrets(families), latest_losses
        )
        view = inference_json(topic_id, nonce, ni, round_, nonce + topic.worker_submission_window)
        if latest_losses is not None:
            view["losses"] = losses_json(latest_losses)
        previous = self.history.latest(topic_id) if self.history else None
        if previous is not None:
            view["losses"] = previous["inference"]["losses"]
            view["loss_block_height"] = previous["inference"]["loss_block_height"]
            view["losses_nonce"] = previous["nonce"]
        self._inference_cache = {key: view}
        return view

    def _open_nonces(self, topic_id: int) -> list[int]:
        """Nonces whose worker window closed and whose payloads are still in state."""
        topic = queries.topic_view(self._state(), topic_id)
        return sorted(int(n["nonce"]) for n in topic["reputer_nonces"])

    def network_inference(self, topic_id: int, nonce: int | None) -> dict[str, Any]:
        assert self.history is not None
        if nonce is None:
            for candidate in reversed(self._open_nonces(topic_id)):
                live = self._live_inference(topic_id, candidate)
                if live is not None:
                    return live
            latest = self.history.latest(topic_id)
            if latest is None:
                raise NotFoundError(f"topic {topic_id} has no network inference yet")
            inference: dict[str, Any] = latest["inference"]
            return inference
        archived = self.history.get(topic_id, nonce)
        if archived is not None:
            result: dict[str, Any] = archived["inference"]
            return result
        if nonce in self._open_nonces(topic_id):
            live = self._live_inference(topic_id, nonce)
            if live is not None:
                return live
        raise NotFoundError(f"no network inference for topic {topic_id} at nonce {nonce}")

    def network_inference_history(self, topic_id: int, limit: int) -> list[dict[str, Any]]:
        assert self.history is not None
        queries.topic_view(self._state(), topic_id)  # 404 for an unknown topic
        return [e["inference"] for e in self.history.for_topic(topic_id, limit)]

    def rewards(self, topic_id: int, nonce: int | None, actor: str | None) -> list[dict[str, Any]]:
        assert self.history is not None
        queries.topic_view(self._state(), topic_id)
        out = []
        for entry in self.history.for_topic(topic_id, 5000):
            if nonce is not None and int(entry["nonce"]) != nonce:
                continue
            for payout in entry["rewards"]:
                if actor is None or payout["actor"] == actor:
                    out.append({"nonce": entry["nonce"], "height": entry["close_height"], **payout})
        return out

    def validators(self) -> list[dict[str, Any]]:
        return queries.validators_view(self._state())

    def supply(self) -> dict[str, Any]:
        return queries.supply_view(self._state())

    def submit_tx(self, tx: bytes) -> dict[str, Any]:
        assert self.mempool is not None and self.batcher is not None
        try:
            tx_hash = self.mempool.add(tx)
        except MempoolFullError as exc:
            raise UnavailableError(str(exc)) from None
        except DuplicateTxError:
            return {"hash": sha256(tx).hex(), "status": "known"}
        self.prom.txs_submitted.inc()
        task = asyncio.get_running_loop().create_task(self.batcher.add(tx))
        task.add_done_callback(_log_task_error)
        return {"hash": tx_hash.hex(), "status": "pending"}

    def submit_txs(self, txs: list[bytes]) -> list[dict[str, Any]]:
        """Admit several transactions in order, one result each (``POST /v1/txs`` batch).

        Once the pool is full the remaining ones are not tried (status ``unavailable``), so a
        client resubmits exactly that suffix, still in sequence order."""
        assert self.mempool is not None
        results: list[dict[str, Any]] = []
        admitted: list[bytes] = []
        full: str | None = None
        for tx in txs:
            if full is not None:
                results.append(queries.tx_result(sha256(tx), "unavailable", full))
                continue
            try:
                tx_hash = self.mempool.add(tx)
            except MempoolFullError as exc:
                full = str(exc)
                results.append(queries.tx_result(sha256(tx), "unavailable", full))
            except DuplicateTxError:
                results.append(queries.tx_result(sha256(tx), "known"))
            except AlloraError as exc:
                results.append(queries.tx_result(sha256(tx), "rejected", str(exc)))
            else:
                admitted.append(tx)
                results.append(queries.tx_result(tx_hash, "pending"))
        if admitted:
            self.prom.txs_submitted.inc(len(admitted))
            task = asyncio.get_running_loop().create_task(self._gossip(admitted))
            task.add_done_callback(_log_task_error)
        return results

    async def _gossip(self, txs: list[bytes]) -> None:
        assert self.batcher is not None
        for tx in txs:
            await self.batcher.add(tx)

    def metrics(self) -> bytes:
        return self.prom.render()


def _log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("background send failed: %r", task.exception())


async def serve(home: Path) -> int:
    """Run a node until SIGTERM/SIGINT; returns the process exit code."""
    config = load_config(home)
    setup_logging(config.log.level, config.log.format)
    node = Node(home, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except AlloraError:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(node.stop(), config.shutdown_timeout_s)
        raise
    await stop.wait()
    try:
        await asyncio.wait_for(node.stop(), config.shutdown_timeout_s)
    except TimeoutError:
        log.error("graceful stop exceeded %.0fs: exiting anyway", config.shutdown_timeout_s)
        return 1
    return 0


def run_node(home: Path) -> int:
    """The ``alloranet start`` entry point: uvloop, then :func:`serve`.

    ``ALLORANET_PROFILE=FILE`` (``{pid}`` is replaced) profiles the event-loop thread and writes
    cProfile stats to FILE at stop: how we find where a node's time goes under load."""
    import os

    import uvloop

    target = os.environ.get("ALLORANET_PROFILE", "").replace("{pid}", str(os.getpid()))
    if not target:
        return int(uvloop.run(serve(home)))
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        return int(uvloop.run(serve(home)))
    finally:
        profiler.disable()
        profiler.dump_stats(target)
