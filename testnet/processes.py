"""OS processes of a local testnet: spawn with a PID file and a log, stop by PID, cleanly.

Why PID files and a command-line check: ``testnet down`` may run in another shell hours later,
after the PIDs could have been reused by unrelated programs. A PID is only signalled if the
process's command line still names this testnet's home directory, so we never kill a stranger.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Spawned:
    name: str
    pid: int
    log: Path


def pid_file(root: Path, name: str) -> Path:
    return root / "pids" / f"{name}.pid"


def log_file(root: Path, name: str) -> Path:
    return root / "logs" / f"{name}.log"


def spawn(root: Path, name: str, argv: list[str], env: dict[str, str] | None = None) -> Spawned:
    """Start ``argv`` in its own session (so Ctrl-C in the launcher's terminal reaches only us),
    appending stdout and stderr to ``logs/NAME.log`` and writing ``pids/NAME.pid``."""
    log = log_file(root, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_path = pid_file(root, name)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=str(root),
        )
    pid_path.write_text(f"{proc.pid}\n")
    return Spawned(name, proc.pid, log)


def read_pid(root: Path, name: str) -> int | None:
    try:
        return int(pid_file(root, name).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def is_ours(pid: int, root: Path) -> bool:
    """True if ``pid`` is alive and its command line mentions this testnet's root."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            _reap(pid)
            return False
    except (FileNotFoundError, IndexError):
        return False
    return str(root.resolve()).encode() in cmdline


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def is_running(root: Path, name: str) -> bool:
    pid = read_pid(root, name)
    return pid is not None and is_ours(pid, root)


def stop(root: Path, name: str, timeout: float = 10.0, sig: int = signal.SIGTERM) -> bool:
    """Signal one process by its PID file and wait for it to exit; SIGKILL after ``timeout``.

    Returns True if a process was stopped. The PID file is removed either way."""
    pid = read_pid(root, name)
    stopped = False
    if pid is not None and is_ours(pid, root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while is_ours(pid, root) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if is_ours(pid, root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while is_ours(pid, root):
                _reap(pid)
                time.sleep(0.02)
        stopped = True
    with contextlib.suppress(FileNotFoundError):
        pid_file(root, name).unlink()
    return stopped


def kill(root: Path, name: str) -> bool:
    """SIGKILL one process (crash tests): no graceful shutdown, the PID file stays for restart."""
    pid = read_pid(root, name)
    if pid is None or not is_ours(pid, root):
        return False
    os.kill(pid, signal.SIGKILL)
    while is_ours(pid, root):
        _reap(pid)
        time.sleep(0.02)
    return True


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a log file (read from the end, logs can be large)."""
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        chunk = min(size, max(4096, lines * 400))
        handle.seek(size - chunk)
        data = handle.read().decode("utf-8", errors="replace")
    return "\n".join(data.splitlines()[-lines:])
