"""`radloop serve --workers N`: a listening socket per process, TCP_NODELAY, clean stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

from radloop.review import processes

linux_only = pytest.mark.skipif(
    not processes.reuse_port_supported(), reason="SO_REUSEPORT balancing is Linux's"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@linux_only
def test_each_listening_socket_joins_the_port_group_and_accepts_with_nodelay() -> None:
    port = _free_port()
    first = processes._listening_socket("127.0.0.1", port)
    second = processes._listening_socket("127.0.0.1", port)  # a second process's socket
    try:
        for sock in (first, second):
            assert sock.proto == socket.IPPROTO_TCP
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        nodelay: list[int] = []

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                nodelay.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        async def accept_one() -> None:
            loop = asyncio.get_running_loop()
            servers = [await loop.create_server(Probe, sock=s) for s in (first, second)]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(100):
                if nodelay:
                    break
                await asyncio.sleep(0.01)
            writer.close()
            for server in servers:
                server.close()

        asyncio.run(accept_one())
        # Without it every keep-alive response waited ~40 ms (Nagle + delayed ACK).
        assert nodelay and nodelay[0] != 0
    finally:
        first.close()
        second.close()


@linux_only
def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            processes._check_port_free("127.0.0.1", port)


def _server_children(pid: int) -> list[int]:
    """The server processes under ``pid`` (not multiprocessing's resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == pid and b"spawn_main" in command and b"resource_tracker" not in command:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@linux_only
def test_serve_with_two_processes_answers_and_stops_them_all(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "RADLOOP_DATA_DIR": str(tmp_path / "data")}
    env.pop("RADLOOP_DATABASE_URL", None)
    command = [sys.executable, "-m", "radloop", "serve", "--data-dir", str(tmp_path / "data")]
    command += ["--port", str(port), "--workers", "2", "--no-worker"]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
                    assert page.status == 200
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.3)
        children = _server_children(server.pid)
        assert len(children) == 2
        for _ in range(10):  # connections land on either process; all are answered
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as page:
                assert page.status == 200
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "server processes outlived serve"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
