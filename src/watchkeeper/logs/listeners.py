"""Syslog listeners on sockets (threads; bound to 127.0.0.1 unless configured otherwise). They
cut bytes into frames and hand them on; what a frame means is the handler's business. A handler's
error never ends a listener: it is logged and the next datagram or connection goes on.

- :class:`UdpListener`: one datagram is one message; datagrams waiting are handed on together.
- :class:`TcpListener`: one thread per connection (at most ``max_connections``), RFC 6587
  framing by :class:`~watchkeeper.logs.syslog.Framer`; a fatal framing error closes that
  connection only.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from typing import Any

import structlog

from watchkeeper.logs.syslog import BadFrame, Framer

log = structlog.get_logger("watchkeeper.logs")

#: (frames or bad frames, the peer's address)
Handler = Callable[[list[bytes | BadFrame], str], None]
#: Datagrams handed on together at most.
UDP_BATCH = 2048
#: A UDP datagram can be at most this long.
UDP_MAX = 65_535


class UdpListener:
    def __init__(self, address: tuple[str, int], handler: Handler, max_frame: int) -> None:
        self.handler = handler
        self.max_frame = max_frame
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self.sock.bind(address)
        self.sock.settimeout(0.25)
        self.address: tuple[str, int] = self.sock.getsockname()[:2]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchkeeper-syslog-udp", daemon=True)

    def start(self) -> UdpListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)
        self.sock.close()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                data, peer = self.sock.recvfrom(UDP_MAX)
            except TimeoutError:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                continue
            frames: list[bytes | BadFrame] = [self._frame(data)]
            self.sock.setblocking(False)
            try:
                while len(frames) < UDP_BATCH:
                    data, _ = self.sock.recvfrom(UDP_MAX)
                    frames.append(self._frame(data))
            except (BlockingIOError, OSError):
                pass
            finally:
                self.sock.settimeout(0.25)
            try:
                self.handler(frames, str(peer[0]))
            except Exception as exc:  # the listener lives on
                with contextlib.suppress(Exception):
                    log.error("syslog udp batch failed", error=str(exc))

    def _frame(self, data: bytes) -> bytes | BadFrame:
        if len(data) > self.max_frame:
            return BadFrame(f"a datagram of {len(data)} bytes, above the limit of {self.max_frame}")
        return data


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], listener: TcpListener) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.listener = listener
        super().__init__(address, _Connection)


class _Connection(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        listener = self.server.listener
        if not listener._slots.acquire(blocking=False):
            listener.handler([BadFrame(f"more than {listener.max_connections} connections at once")],
                             str(self.client_address[0]))
            return
        try:
            self._serve(listener)
        finally:
            listener._slots.release()

    def _serve(self, listener: TcpListener) -> None:
        framer = Framer(listener.max_frame)
        peer = str(self.client_address[0])
        sock: Any = self.request
        sock.settimeout(300)
        while True:
            try:
                data = sock.recv(256 * 1024)
            except OSError:
                return
            if not data:
                rest = framer.rest()
                if rest:
                    listener.deliver([rest], peer)
                return
            frames = framer.feed(data)
            if frames:
                listener.deliver(frames, peer)
                if any(isinstance(f, BadFrame) and f.fatal for f in frames):
                    return  # the framing is lost: this connection ends, the listener goes on


class TcpListener:
    def __init__(self, address: tuple[str, int], handler: Handler, max_frame: int, max_connections: int = 256) -> None:
        self.handler = handler
        self.max_frame = max_frame
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self.server = _Server(address, self)
        self.address: tuple[str, int] = self.server.server_address[:2]  # type: ignore[assignment]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="watchkeeper-syslog-tcp", daemon=True)

    def deliver(self, frames: list[bytes | BadFrame], peer: str) -> None:
        try:
            self.handler(frames, peer)
        except Exception as exc:
            with contextlib.suppress(Exception):
                log.error("syslog tcp frames failed", error=str(exc))

    def start(self) -> TcpListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)
