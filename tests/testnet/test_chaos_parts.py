"""Fast tests of the chaos harness's pure parts: manifests, the generator, checks, the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from testnet.chaos import checks
from testnet.chaos.generator import generate_manifest
from testnet.chaos.report import build_report, render_summary
from testnet.chaos.runner import FaultRecord, RunResult
from testnet.chaos.schema import (
    ChaosManifestError,
    load_chaos_manifest,
    parse_chaos_manifest,
)

MANIFESTS = Path(__file__).resolve().parents[2] / "testnet" / "manifests"
SHIPPED = (
    "partition-minority",
    "partition-no-quorum-then-heal",
    "kill-restart-all-in-turn",
    "pause-proposer",
    "wal-truncate",
    "double-sign",
    "churn",
    "load-under-partition",
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_manifests_load(name: str) -> None:
    manifest = load_chaos_manifest(MANIFESTS / f"{name}.toml")
    assert manifest.name == name
    assert manifest.network.validators >= 4
    # the dict form parses back to the same manifest (what the report records for a replay)
    assert parse_chaos_manifest(manifest.to_dict()) == manifest


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"network": {"validators": 0}}, "validators"),
        ({"network": {"stakes": [1, 2]}}, "one entry per validator"),
        ({"network": {"twins": [9]}}, "no validator 9"),
        ({"network": {"bogus": 1}}, "unknown key"),
        ({"perturbation": [{"kind": "explode", "at_height": 3}]}, "kind must be one of"),
        ({"perturbation": [{"kind": "kill", "nodes": [0], "duration_s": 1}]}, "exactly one"),
        ({"perturbation": [{"kind": "kill", "nodes": [0], "at_height": 3}]}, "duration_s > 0"),
        (
            {"perturbation": [{"kind": "partition", "groups": [[0]], "at_s": 1, "duration_s": 1}]},
            "two groups",
        ),
        (
            {
                "perturbation": [
                    {"kind": "partition", "groups": [[0], [0, 1]], "at_s": 1, "duration_s": 1}
                ]
            },
            "disjoint",
        ),
        (
            {"perturbation": [{"kind": "cut_link", "nodes": [0], "at_s": 1, "duration_s": 1}]},
            "exactly two",
        ),
        (
            {"perturbation": [{"kind": "kill", "nodes": [7], "at_s": 1, "duration_s": 1}]},
            "no node 7",
        ),
    ],
)
def test_bad_manifests_are_typed_errors(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ChaosManifestError, match=fragment):
        parse_chaos_manifest(raw)


def test_unparseable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("name = [")
    with pytest.raises(ChaosManifestError, match="not valid TOML"):
        load_chaos_manifest(path)
    with pytest.raises(ChaosManifestError, match="no such manifest"):
        load_chaos_manifest(tmp_path / "missing.toml")


@pytest.mark.parametrize("seed", range(20))
def test_generator_is_seeded_and_valid(seed: int) -> None:
    first = generate_manifest(seed)
    assert first == generate_manifest(seed), f"seed {seed} not reproducible"
    assert first.network.seed == seed
    assert parse_chaos_manifest(first.to_dict()) == first  # valid by the schema's own rules
    for p in first.perturbations:
        if p.kind == "partition":
            assert len(p.groups) == 2


def test_generator_covers_every_kind() -> None:
    kinds = {p.kind for seed in range(60) for p in generate_manifest(seed).perturbations}
    assert kinds == {"partition", "cut_link", "kill", "pause", "truncate_wal"}


def _block(h: int, hash_: str, app: str, txs: list[str], evidence: int = 0) -> dict[str, object]:
    return {"height": h, "hash": hash_, "app_hash": app, "txs": txs, "evidence": evidence}


def _obs() -> checks.Observation:
    obs = checks.Observation(["a", "b"], {"a": 2, "b": 2}, 2)
    for name in ("a", "b"):
        obs.blocks[name] = {1: _block(1, "h1", "x1", ["t1"]), 2: _block(2, "h2", "x2", ["t2"])}
        obs.supply[name] = {"height": 2, "computed": "10", "recorded": "10"}
        obs.validators[name] = [{"address": "v1", "jailed": True, "tombstoned": True, "power": 0}]
    return obs


def test_checks_pass_on_a_consistent_observation() -> None:
    obs = _obs()
    obs.evidence = [{"address": "v1", "height": 1}]
    assert checks.check_agreement(obs) == []
    assert checks.check_app_hash(obs) == []
    assert checks.check_txs(obs, {"t1", "t2"}) == []
    assert checks.check_supply(obs) == []
    assert checks.check_double_signs(obs, {"v1"}) == []
    assert checks.check_synthesis(obs) == []


def test_checks_bite() -> None:
    obs = _obs()
    obs.blocks["b"][2] = _block(2, "fork", "other", ["t2", "t1"])
    obs.supply["b"] = {"height": 2, "computed": "11", "recorded": "10"}
    obs.synthesis = {"a": {1: {5: 1.0}}, "b": {1: {5: 1.5}}}
    assert [v.check for v in checks.check_agreement(obs)] == ["agreement"]
    assert [v.check for v in checks.check_app_hash(obs)] == ["app_hash"]
    # the reference node ("a") lacks t3 -> lost; add a duplicate on the reference too
    obs.blocks["a"][2] = _block(2, "h2", "x2", ["t2", "t1"])
    found = {v.check for v in checks.check_txs(obs, {"t1", "t2", "t3"})}
    assert found == {"tx_lost", "tx_duplicated"}
    assert {v.check for v in checks.check_supply(obs)} == {"supply"}
    assert [v.check for v in checks.check_synthesis(obs)] == ["synthesis"]
    # evidence against an honest validator; a twin with no evidence; a twin not jailed
    obs.evidence = [{"address": "v2", "height": 3}]
    found = {v.check for v in checks.check_double_signs(obs, {"v1"})}
    assert found == {"double_sign", "evidence", "slashing"}  # v2 is not even jailed
    for name in ("a", "b"):
        obs.validators[name].append(
            {"address": "v2", "jailed": True, "tombstoned": True, "power": 0}
        )
    found = {v.check for v in checks.check_double_signs(obs, {"v1"})}
    assert found == {"double_sign", "evidence"}
    obs.evidence = [{"address": "v1", "height": 3}]
    obs.validators["a"] = [{"address": "v1", "jailed": False, "tombstoned": False}]
    assert [v.check for v in checks.check_double_signs(obs, {"v1"})] == ["slashing"]


def test_double_signer_with_power_left_is_flagged() -> None:
    obs = _obs()
    obs.evidence = [{"address": "v1", "height": 1}]
    obs.validators["b"] = [{"address": "v1", "jailed": True, "tombstoned": True, "power": 3}]
    found = [v.message for v in checks.check_double_signs(obs, {"v1"})]
    assert found == ["b: double signer v1 still has power"]


def test_report_keys_and_percentiles() -> None:
    ok = RunResult("a", 1, {}, heights={"node0": 9})
    ok.faults = [FaultRecord("pause", "pause", 3, ["node0"], {"recovery_s": 2.0})]
    ok.recovery_s = [2.0, 4.0]
    bad = RunResult("b", 2, {}, heights={"node0": 5})
    bad.recovery_s = [1.0]
    bad.violations = [checks.Violation("agreement", "fork at 3")]
    report = build_report([ok, bad])
    assert {"runs", "violations", "recovery_s_p50", "recovery_s_max", "seeds"} <= set(report)
    assert report["recovery_s_p50"] == 2.0 and report["recovery_s_max"] == 4.0
    assert report["violations"] == [
        {"run": "b", "seed": 2, "check": "agreement", "message": "fork at 3"}
    ]
    assert report["faults_injected"] == 1
    summary = render_summary(report)
    assert "FAIL b" in summary and "1 violation(s)" in summary


class FakeAdmin:
    def __init__(self) -> None:
        self.blocked: set[str] = set()

    def faults(self) -> dict[str, object]:
        return {"blocked": sorted(self.blocked)}

    def block_peers(self, peer_ids: set[str]) -> dict[str, object]:
        self.blocked |= peer_ids
        return self.faults()

    def unblock_peers(self, peer_ids: set[str] | None) -> dict[str, object]:
        self.blocked = set() if peer_ids is None else self.blocked - peer_ids
        return self.faults()

    def validators(self) -> list[dict[str, object]]:
        return [{"address": "v1", "jailed": False}]

    def supply(self) -> dict[str, object]:
        return {"height": 1, "computed": "5", "recorded": "5"}

    async def evidence(self, height: int) -> list[dict[str, object]]:
        return [{"address": "v1", "height": height - 1}]


async def test_admin_routes_validate_and_call_the_node() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from alloranet.rpc.admin import build_admin_app

    admin = FakeAdmin()
    app = web.Application()
    app.add_subapp("/v1/admin", build_admin_app(admin))
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/v1/admin/block", json={"peers": ["p1", "p2"]})
        assert resp.status == 200 and (await resp.json())["blocked"] == ["p1", "p2"]
        resp = await client.post("/v1/admin/block", json={"peers": "p1"})
        assert resp.status == 400 and "peers" in (await resp.json())["error"]["message"]
        resp = await client.post("/v1/admin/block", data=b"not json")
        assert resp.status == 400
        resp = await client.post("/v1/admin/unblock", json={"peers": ["p1"]})
        assert (await resp.json())["blocked"] == ["p2"]
        resp = await client.post("/v1/admin/unblock", json={})
        assert (await resp.json())["blocked"] == []
        assert (await (await client.get("/v1/admin/evidence/5")).json())["evidence"][0][
            "height"
        ] == 4
        assert (await client.get("/v1/admin/evidence/x")).status == 400
        assert (await (await client.get("/v1/admin/supply")).json())["computed"] == "5"
        assert (await client.get("/v1/admin/validators")).status == 200


def test_test_mode_is_off_by_default_and_signer_untouched() -> None:
    from alloranet.node import faults

    assert not faults.is_test_mode()  # nothing in the test process switched it on
    signer = object()
    assert faults.wrap_signer(signer, object()) is signer  # type: ignore[arg-type]


def test_public_validators_view_and_block_evidence_items() -> None:
    """``GET /v1/validators`` and the block view's evidence items: the chaos checks read
    slashing and committed evidence through these public views."""
    from dataclasses import replace

    from alloranet.chain.evidence import DuplicateVoteEvidence
    from alloranet.chain.genesis import build_genesis_state
    from alloranet.chain.kv import Overlay
    from alloranet.chain.ledger import Ledger
    from alloranet.crypto import PrivateKey
    from alloranet.node import queries
    from alloranet.node.chainlink import compute_chain_genesis
    from alloranet.node.genesis import GenesisSpec, GenesisValidator
    from alloranet.types import UALLO_PER_ALLO

    keys = [PrivateKey.from_label(f"views/{i}") for i in range(2)]
    spec = GenesisSpec(
        "views",
        0,
        tuple(
            GenesisValidator(k.public_key, (i + 1) * 1000 * UALLO_PER_ALLO, f"v{i}")
            for i, k in enumerate(keys)
        ),
    )
    state = build_genesis_state(compute_chain_genesis(spec))
    overlay = Overlay(state)
    ledger = Ledger(overlay)
    record = ledger.get_validator(keys[1].public_key)
    assert record is not None
    ledger.set_validator(replace(record, jailed=True, tombstoned=True))
    state = state.apply(overlay.changes())
    views = {v["address"]: v for v in queries.validators_view(state)}
    assert set(views) == {k.address for k in keys}
    first, second = views[keys[0].address], views[keys[1].address]
    assert second["power"] == 2 * first["power"] > 0  # the set signing the next block
    assert int(second["tokens"]) == 2 * int(first["tokens"])
    assert (first["jailed"], first["tombstoned"]) == (False, False)
    assert (second["jailed"], second["tombstoned"]) == (True, True)
    assert (first["missed_blocks"], second["jailed_until_ms"]) == (0, 0)
    from alloranet.chain import app as chain_app

    supply = queries.supply_view(state)  # GET /v1/supply
    assert int(supply["supply"]) == chain_app.compute_total_supply(state) > 0
    assert int(supply["bonded"]) == 3000 * UALLO_PER_ALLO

    ev = DuplicateVoteEvidence(keys[0].public_key, 1, 5, 0, b"", b"s" * 64, b"b" * 32, b"t" * 64)
    items = queries._evidence_items([ev.to_wire(), ("garbage",)])
    assert items == [{"address": keys[0].address, "vote_type": 1, "height": 5, "round": 0}]


def test_local_homes_take_stakes_and_joiners_and_chaos_homes_reuse_them(tmp_path: Path) -> None:
    from alloranet.errors import ConfigError
    from alloranet.node.genesis import load_genesis
    from alloranet.node.localnet import create_local_testnet, write_node_homes
    from alloranet.types import UALLO_PER_ALLO
    from testnet.chaos.homes import ACTORS, create_homes, faucet_path, load_account_key
    from testnet.chaos.schema import NetworkSpec

    nodes = write_node_homes(
        tmp_path / "a", chain_id="c", seed=3, stakes=[100, 300], joiners=1, label="t"
    )
    assert [(n.name, n.validator) for n in nodes] == [
        ("node0", True), ("node1", True), ("node2", False)
    ]  # fmt: skip
    genesis = load_genesis(nodes[2].home / "genesis.json")
    assert [v.stake for v in genesis.validators] == [100, 300]
    assert {n.key.address for n in nodes} <= {a for a, _ in genesis.accounts}  # joiner funded
    assert len({n.api for n in nodes}) == 3
    with pytest.raises(ConfigError):
        create_local_testnet(
            tmp_path / "b", validators=2, workers=0, forecasters=0, reputers=0, seed=1,
            stakes=[5],
        )  # fmt: skip

    spec = NetworkSpec(validators=2, stakes=(10, 20), joiners=1, seed=4)
    homes, actors = create_homes(tmp_path / "chaos", spec, "chaos-chain")
    genesis = load_genesis(homes[0].home / "genesis.json")
    assert [v.stake for v in genesis.validators] == [10 * UALLO_PER_ALLO, 20 * UALLO_PER_ALLO]
    assert [h.genesis_validator for h in homes] == [True, True, False]
    funded = {a for a, _ in genesis.accounts}
    assert load_account_key(4, 0).address in funded
    assert len(actors) == sum(count for _, count in ACTORS)
    assert faucet_path(tmp_path / "chaos").exists()
