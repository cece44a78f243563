"""A fake OpenAI-compatible model server on loopback, for the fault benchmarks and tests.

``FakeModelServer(mode="slow", latency_s=1.0, slots=8)`` answers ``POST /v1/chat/completions``
after ``latency_s`` seconds (or a random latency in ``latency_s=(low, high)``), serving at
most ``slots`` requests at once: a request beyond them waits for a slot, as on a GPU server
with a fixed batch. The reply is a valid structured draft (or, when the request's JSON schema
asks for an answer, a valid answer), so the ``openai`` backend and the safety layer accept it.
``mode="hang"`` accepts every connection and reads the request, then never answers until the
server stops. ``GET /v1/models`` lists the one served model in either mode.

Threads of the standard library's HTTP server only: no model, no GPU, no network beyond
127.0.0.1.
"""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

__all__ = ["ANSWER_REPLY", "DRAFT_REPLY", "FakeModelServer"]

DRAFT_REPLY: dict[str, Any] = {
    "findings": [],
    "normal_sections": ["lungs", "pleura", "heart_mediastinum", "bones"],
    "impression": "No acute cardiopulmonary abnormality.",
}
"""A normal study as the draft schema wants it (``radloop.assist.schema.findings_schema``)."""

ANSWER_REPLY: dict[str, Any] = {
    "answer": "no",
    "text": "There is no pneumothorax.",
    "finding": None,
}
"""An answer as the ask schema wants it (``radloop.assist.schema.answer_schema``)."""


class FakeModelServer:
    """A threaded HTTP server speaking enough of the OpenAI chat-completions API.

    Counters (read them while it runs or after): ``requests`` (completions received),
    ``completed`` (answered), ``in_flight`` (being served now, slots held), ``waiting``
    (received, waiting for a slot or hanging), ``max_in_flight`` (the most served at once),
    ``busy_s`` (slot-seconds spent on answered requests),
    ``first_at`` and ``last_done_at`` (``time.monotonic()`` of the first request and of the
    last answer).
    """

    def __init__(
        self,
        mode: Literal["slow", "hang"] = "slow",
        *,
        latency_s: float | tuple[float, float] = 1.0,
        slots: int | None = 8,
        model: str = "fake-slow-model",
        seed: int = 0,
    ) -> None:
        if mode not in ("slow", "hang"):
            raise ValueError(f"mode must be 'slow' or 'hang', got {mode!r}")
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be at least 1 (or None: unlimited), got {slots}")
        self.mode = mode
        self.latency_s = latency_s
        self.slots = slots
        self.model = model
        self._rng = random.Random(seed)
        self._slots = threading.Semaphore(slots) if slots is not None else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests = 0
        self.completed = 0
        self.in_flight = 0
        self.waiting = 0
        self.max_in_flight = 0
        self.busy_s = 0.0
        self.first_at: float | None = None
        self.last_done_at: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeModelServer:
        handler = _handler_for(self)
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging requests are let go (their connections are closed)."""
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake model server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """What ``RADLOOP_MODEL_BASE_URL`` (the ``openai`` backend's ``base_url``) takes."""
        return f"http://127.0.0.1:{self.port}/v1"

    # --- serving -------------------------------------------------------------------------------

    def _latency(self) -> float:
        if isinstance(self.latency_s, tuple):
            low, high = self.latency_s
            with self._lock:
                return self._rng.uniform(low, high)
        return float(self.latency_s)

    def _complete(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The completion for ``body`` after the latency, or None when stopped (hang mode)."""
        with self._lock:
            self.requests += 1
            self.waiting += 1
            if self.first_at is None:
                self.first_at = time.monotonic()
        if self.mode == "hang":
            self._stop.wait()
            with self._lock:
                self.waiting -= 1
            return None
        if self._slots is not None:
            while not self._slots.acquire(timeout=0.1):
                if self._stop.is_set():
                    return None
        try:
            with self._lock:
                self.waiting -= 1
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            latency = self._latency()
            if self._stop.wait(latency):
                return None
            with self._lock:
                self.completed += 1
                self.busy_s += latency
                self.last_done_at = time.monotonic()
        finally:
            with self._lock:
                self.in_flight -= 1
            if self._slots is not None:
                self._slots.release()
        content = ANSWER_REPLY if _asks_for_answer(body) else DRAFT_REPLY
        return {
            "id": f"chatcmpl-fake-{self.completed}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model") or self.model),
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": json.dumps(content)},
                    "finish_reason": "stop",
                }
                for i in range(max(1, int(body.get("n") or 1)))
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }


class _QuietServer(ThreadingHTTPServer):
    """Clients that vanish mid-request (killed workers, cancelled questions) are expected."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


def _asks_for_answer(body: dict[str, Any]) -> bool:
    try:
        schema = body["response_format"]["json_schema"]["schema"]
        return "answer" in schema.get("properties", {})
    except (KeyError, TypeError, AttributeError):
        text = json.dumps(body.get("messages", ""))[-4000:].lower()
        return "question" in text


def _handler_for(server: FakeModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except OSError:  # the client went away (a killed worker): nothing to answer
                self.close_connection = True

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": server.model}]})
            else:
                self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._send(404, {"error": {"message": f"no route {self.path}"}})
                return
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                self._send(400, {"error": {"message": "expected a JSON body"}})
                return
            reply = server._complete(body if isinstance(body, dict) else {})
            if reply is None:  # stopped while hanging or waiting: drop the connection
                self.close_connection = True
                return
            self._send(200, reply)

    return Handler
