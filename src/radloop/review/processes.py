"""Several server processes on one port, each with its own listening socket (SO_REUSEPORT).

Uvicorn's ``--workers`` shares one listening socket between the processes, and whichever
process wakes first accepts every waiting connection: clients that connect together (a
reading room opening the workstation at 8 am) end up mostly on one process, which then
answers them at half the speed while the other idles. With a socket per process and
``SO_REUSEPORT``, Linux spreads new connections over the processes by a hash of the
connection, so the load divides evenly whatever the timing.

The parent only supervises: it starts the processes, restarts one that dies, and on SIGINT
or SIGTERM stops them all (each finishes the requests it has). It never listens itself,
since a listening socket in the group would be handed connections it never accepts.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import socket
import sys
import time
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["reuse_port_supported", "serve_processes"]

APP = "radloop.review.app:app_from_env"
_RESTART_PAUSE_S = 1.0
_FAILED_START_S = 10.0  # a process that dies this soon after starting will not do better


def reuse_port_supported() -> bool:
    """Whether the kernel balances connections between SO_REUSEPORT sockets (Linux does)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _check_port_free(host: str, port: int) -> None:
    """Fail now, in the parent, if anything (another radloop included) holds the port."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
        probe.bind((host, port))
    except OSError as error:
        raise OSError(error.errno, f"cannot listen on {host}:{port}: {error.strerror}") from None
    finally:
        probe.close()


def _listening_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
    # they are TCP, and without it every keep-alive response waits ~40 ms on Nagle's
    # algorithm and the client's delayed ACK (headers and body go out as two writes).
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_one(host: str, port: int, log_level: str) -> None:
    """One server process: its own socket in the port's group, the app from RADLOOP_*."""
    import uvicorn

    sock = _listening_socket(host, port)
    config = uvicorn.Config(APP, factory=True, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


def serve_processes(host: str, port: int, workers: int, *, log_level: str = "warning") -> None:
    """Serve the app from the environment (RADLOOP_*) in ``workers`` processes until stopped."""
    if not reuse_port_supported():
        import uvicorn

        uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, log_level=log_level)
        return
    _check_port_free(host, port)
    context = multiprocessing.get_context("spawn")
    stopping = False

    started: dict[int, float] = {}

    def start() -> BaseProcess:
        process = context.Process(
            target=_serve_one, args=(host, port, log_level), name="radloop-serve"
        )
        process.start()
        started[id(process)] = time.monotonic()
        return process

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start() for _ in range(workers)]
    try:
        while not stopping:
            for i, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    if time.monotonic() - started[id(process)] < _FAILED_START_S:
                        raise RuntimeError(
                            f"a server process exited {process.exitcode} while starting "
                            "(see the messages above)"
                        )
                    print(
                        f"radloop: server process {process.pid} exited "
                        f"(code {process.exitcode}); starting another",
                        file=sys.stderr,
                    )
                    time.sleep(_RESTART_PAUSE_S)
                    processes[i] = start()
            time.sleep(0.2)
    finally:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    process.terminate()  # SIGTERM: uvicorn finishes open requests
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
