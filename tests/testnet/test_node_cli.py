"""The CLI on real processes: init, start, tx --wait, query, clean SIGTERM stop; testnet up
stopping every process it started on Ctrl-C or kill."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from alloranet.crypto import PrivateKey, load_key, save_key

pytestmark = [pytest.mark.testnet, pytest.mark.timeout(180)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "alloranet", *args], capture_output=True, text=True, timeout=60
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def query(api: str, *args: str) -> Any:
    return json.loads(cli("query", *args, "--api", api, "-o", "json").stdout)


def test_single_node_cli_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "node"
    rpc = _free_port()
    cli("init", "--home", str(home), "--p2p-port", str(_free_port()), "--rpc-port", str(rpc))
    api = f"http://127.0.0.1:{rpc}"
    log = (tmp_path / "node.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alloranet", "start", "--home", str(home)], stderr=log, stdout=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            done = cli("query", "status", "--api", api, "-o", "json", check=False)
            if done.returncode == 0 and json.loads(done.stdout)["height"] >= 2:
                break
            assert time.monotonic() < deadline, (tmp_path / "node.log").read_text()[-2000:]
            time.sleep(0.3)
        recipient = PrivateKey.from_label("cli-test-recipient").address
        sent = json.loads(
            cli("tx", "send", "--key-file", str(home / "validator_key.json"), "--to", recipient,
                "--amount", "5allo", "--wait", "--api", api, "-o", "json").stdout
        )  # fmt: skip
        assert sent["code"] == 0 and sent["status"] == "included"
        account = query(api, "account", "--address", recipient)
        assert account["balance"] == str(5 * 10**18)
        assert query(api, "tx", "--hash", sent["hash"])["height"] == sent["height"]
        block = query(api, "block", "--height", str(sent["height"]))
        assert sent["hash"] in block["txs"]
        # reputer stake from the command line: the validator creates a topic and registers as
        # its reputer with stake; the recipient delegates to it; the topic view shows both
        owner = ("--key-file", str(home / "validator_key.json"), "--api", api, "--wait")
        cli("tx", "create-topic", *owner, "--metadata", "cli test", "--epoch-length", "12")
        topic_id = max(t["id"] for t in query(api, "topics")["topics"])
        me = load_key(home / "validator_key.json").address
        cli("tx", "register", *owner, "--topic", str(topic_id), "--role", "reputer",
            "--stake", "10allo")  # fmt: skip
        carol_file = tmp_path / "carol.json"
        save_key(carol_file, PrivateKey.from_label("cli-test-recipient"))
        cli("tx", "delegate-stake", "--key-file", str(carol_file), "--api", api, "--wait",
            "--topic", str(topic_id), "--reputer", me, "--amount", "2allo")  # fmt: skip
        view = query(api, "topic", "--id", str(topic_id))
        assert view["reputer_stakes"] == [
            {"address": me, "stake": str(10 * 10**18), "delegated": str(2 * 10**18)}
        ]
        typo = cli("tx", "delegate-stake", "--key-file", str(carol_file), "--api", api,
                   "--topic", str(topic_id), "--reputer", me[:-1], "--amount", "1",
                   check=False)  # fmt: skip
        assert typo.returncode == 1 and "invalid address" in typo.stderr
        bad = cli("query", "account", "--address", "nope", "--api", api, check=False)
        assert bad.returncode == 1 and bad.stderr.startswith("error: ")
        assert bad.stderr.count("\n") == 1
        missing = cli("query", "network-inference", "--topic", "9", "--api", api, check=False)
        assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        log.close()
    assert "node stopped" in (tmp_path / "node.log").read_text()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_testnet_up_in_the_foreground_stops_every_process_on_a_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C or kill of `testnet up` stops the nodes it started (they run in their own
    sessions and would otherwise be orphaned), even when the shell started it with SIGINT
    ignored, as it does for a background job."""
    from testnet import processes
    from testnet.manifest import load_manifest

    root = tmp_path / "net"
    proc = subprocess.Popen(
        [sys.executable, "-m", "alloranet", "testnet", "up", "--validators", "1",
         "--workers", "0", "--forecasters", "0", "--reputers", "0", "--home", str(root),
         "--refresh", "0.2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            status = cli("testnet", "status", "--home", str(root), "-o", "json", check=False)
            if status.returncode == 0:
                nodes = json.loads(status.stdout)["nodes"]
                if nodes and all(int(n.get("height") or 0) >= 2 for n in nodes):
                    break
            assert proc.poll() is None and time.monotonic() < deadline, status.stderr
            time.sleep(0.3)
        manifest = load_manifest(root)
        pids = [processes.read_pid(root, n.name) for n in manifest.nodes]
        assert all(pid is not None and processes.is_ours(pid, root) for pid in pids)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        assert not any(pid is not None and processes.is_ours(pid, root) for pid in pids)
    finally:
        if proc.poll() is None:
            proc.kill()
        cli("testnet", "down", "--home", str(root), check=False)
