"""Bridge connection: one Unix-socket connection per rank (docs/bridge-protocol.md).

The engine sends first (`hello`); afterwards the agent drives the session with requests
(`fill`, `drain`, `load`, `complete`, `ping`) that a handler answers. A reader thread decodes
frames; heavy requests run on one worker thread in arrival order so that `ping` is answered
while a bucket is being copied.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import threading
from typing import Any, Callable

from . import errors
from .errors import ProtocolError, RemoteError, SeedcastError, ValidationError
from .protocol import AGENT_TO_ENGINE, FrameDecoder, encode_frame, error_message, message, parse_body, validate

log = logging.getLogger("seedcast_engine")

DEFAULT_SOCKET = "/run/seedcast/agent.sock"

# A handler gets a validated request and returns the reply (a dict) or raises SeedcastError.
Handler = Callable[[dict[str, Any]], dict[str, Any]]

_HEAVY = frozenset({"fill", "drain", "load", "complete", "cast"})
#: Answered on the reader thread, while a heavy request (a cast) runs on the worker.
_LIGHT = frozenset({"abort-cast"})


def socket_path(explicit: str | None = None) -> str:
    return explicit or os.environ.get("SEEDCAST_SOCKET") or DEFAULT_SOCKET


class _Pending:
    __slots__ = ("event", "reply", "error")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reply: dict[str, Any] | None = None
        self.error: BaseException | None = None


class BridgeConnection:
    def __init__(self, sock: socket.socket, handler: Handler | None = None, *, name: str = "bridge"):
        self._sock = sock
        self._handler = handler
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._work: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._closed = threading.Event()
        self.close_reason: SeedcastError | None = None
        self.errors: list[dict[str, Any]] = []  # unsolicited `error` frames from the agent
        self._reader = threading.Thread(target=self._read_loop, name=f"{name}-reader", daemon=True)
        self._worker = threading.Thread(target=self._work_loop, name=f"{name}-worker", daemon=True)

    @classmethod
    def connect(cls, path: str | None = None, handler: Handler | None = None, *, timeout: float = 30.0) -> "BridgeConnection":
        path = socket_path(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise SeedcastError(errors.PEER_LOST, f"cannot connect to the seedcast agent at {path}: {exc}") from exc
        sock.settimeout(None)
        conn = cls(sock, handler)
        conn.start()
        return conn

    def set_handler(self, handler: Handler) -> None:
        self._handler = handler

    def start(self) -> None:
        self._reader.start()
        self._worker.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def next_id(self) -> int:
        return next(self._ids)

    # ------------------------------------------------------------------ sending
    def send(self, msg: dict[str, Any]) -> None:
        frame = encode_frame(msg)
        with self._send_lock:
            if self._closed.is_set():
                raise SeedcastError(errors.PEER_LOST, "bridge connection is closed")
            try:
                self._sock.sendall(frame)
            except OSError as exc:
                self._shutdown(SeedcastError(errors.PEER_LOST, f"send failed: {exc}"))
                raise self.close_reason from exc  # type: ignore[misc]

    def request(self, msg: dict[str, Any], timeout: float | None = 60.0) -> dict[str, Any]:
        """Send a request carrying a fresh `id` and wait for the reply with the same id."""
        if "id" not in msg:
            msg = {**msg, "id": self.next_id()}
        pending = _Pending()
        with self._pending_lock:
            self._pending[msg["id"]] = pending
        try:
            self.send(msg)
            if not pending.event.wait(timeout):
                raise SeedcastError(errors.TIMEOUT, f"no reply to {msg['type']} (id {msg['id']}) in {timeout}s")
        finally:
            with self._pending_lock:
                self._pending.pop(msg["id"], None)
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        return pending.reply

    def ping(self, timeout: float = 10.0) -> None:
        self.request(message("ping"), timeout)

    # ------------------------------------------------------------------ receiving
    def _read_loop(self) -> None:
        decoder = FrameDecoder()
        try:
            while not self._closed.is_set():
                try:
                    data = self._sock.recv(1 << 16)
                except OSError as exc:
                    raise SeedcastError(errors.PEER_LOST, f"receive failed: {exc}") from exc
                if not data:
                    raise SeedcastError(errors.PEER_LOST, "the agent closed the bridge connection")
                for body in decoder.feed(data):
                    self._on_frame(body)
        except ProtocolError as exc:
            try:
                self.send(error_message(exc.code, exc.message))
            except SeedcastError:
                pass
            self._shutdown(exc)
        except SeedcastError as exc:
            self._shutdown(exc)
        except Exception as exc:  # pragma: no cover - defensive
            log.exception("bridge reader crashed")
            self._shutdown(SeedcastError(errors.PROTOCOL, f"reader crashed: {exc}"))

    def _on_frame(self, body: bytes) -> None:
        try:
            msg = validate(parse_body(body), AGENT_TO_ENGINE)
        except ValidationError as exc:
            log.warning("bridge: %s", exc.message)
            self.send(error_message(exc.code, exc.message, exc.msg_id))
            return
        t, mid = msg["type"], msg.get("id")
        if t in ("welcome", "pong"):
            self._resolve(mid, msg)
            return
        if t == "error":
            if mid is not None and self._resolve_error(msg):
                return
            log.warning("bridge: agent reported %s: %s", msg["code"], msg["message"])
            self.errors.append(msg)
            hook = getattr(self, "on_error", None)
            if hook is not None:
                hook(msg)
            return
        if t == "ping":
            self.send(message("pong", id=mid))
            return
        if t in _HEAVY:
            self._work.put(msg)
            return
        if t in _LIGHT:
            self._answer(msg)
            return

    def _resolve(self, mid: int, msg: dict[str, Any]) -> None:
        with self._pending_lock:
            pending = self._pending.get(mid)
        if pending is None:
            log.warning("bridge: unsolicited %s (id %s)", msg["type"], mid)
            return
        pending.reply = msg
        pending.event.set()

    def _resolve_error(self, msg: dict[str, Any]) -> bool:
        with self._pending_lock:
            pending = self._pending.get(msg["id"])
        if pending is None:
            return False
        pending.error = RemoteError(msg["code"], msg["message"], msg["id"])
        pending.event.set()
        return True

    def _work_loop(self) -> None:
        while True:
            msg = self._work.get()
            if msg is None:
                return
            if not self._answer(msg):
                return

    def _answer(self, msg: dict[str, Any]) -> bool:
        """Run the handler for one request and send its reply (or an error); False once closed."""
        try:
            if self._handler is None:
                raise SeedcastError(errors.PROTOCOL, f"no handler for {msg['type']}")
            reply = self._handler(msg)
        except SeedcastError as exc:
            reply = error_message(exc.code, exc.message, msg["id"])
        except Exception as exc:  # copy failures, CUDA errors: reported, never fatal
            log.exception("bridge: %s %s failed", msg["type"], msg.get("id"))
            reply = error_message(errors.CUDA if "cuda" in repr(exc).lower() else errors.INVALID,
                                  f"{msg['type']} failed: {exc}", msg["id"])
        try:
            self.send(reply)
        except SeedcastError:
            return False
        return True

    # ------------------------------------------------------------------ closing
    def _shutdown(self, reason: SeedcastError) -> None:
        if self._closed.is_set():
            return
        self.close_reason = reason
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        with self._pending_lock:
            for p in self._pending.values():
                if not p.event.is_set():  # keep an answer (e.g. an error frame) read before the close
                    p.error = reason
                    p.event.set()
        self._work.put(None)
        hook = getattr(self, "on_close", None)
        if hook is not None:
            hook(reason)

    def close(self, timeout: float = 30.0) -> None:
        self._shutdown(SeedcastError(errors.ABORTED, "closed by the engine"))
        # let a copy in flight finish before the caller unmaps the slots
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout)
        self._sock.close()

    def wait_closed(self, timeout: float | None = None) -> bool:
        return self._closed.wait(timeout)
