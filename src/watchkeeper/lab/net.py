"""Small, dependency-free HTTP and port helpers shared by the lab's processes (stdlib only, so a
service starts fast; no proxy settings are ever honoured: everything is on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

HOST = "127.0.0.1"


def now_iso() -> str:
    """The current time as ISO-8601 UTC with milliseconds (the lab files' time format)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports free on 127.0.0.1 right now (the sockets are held until all are found)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def request(method: str, url: str, body: Any = None, timeout: float = 3.0,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One HTTP request; returns (status, body). Raises ``OSError`` when the server cannot be reached
    (``ConnectionRefusedError``, ``TimeoutError`` …) and ``http.client.HTTPException`` on a broken reply."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or HOST, parts.port or 80, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = ({"Content-Type": "application/json"} if payload is not None else {}) | (headers or {})
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(url: str, timeout: float = 2.0) -> Any:
    """GET ``url`` and decode its JSON body; ``None`` when unreachable or not 200."""
    with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
        status, body = request("GET", url, timeout=timeout)
        if status == 200:
            return json.loads(body)
    return None


def append_line(path: Any, record: dict[str, Any]) -> None:
    """Append one JSON line with a single ``write`` on an ``O_APPEND`` descriptor, so lines written by
    several processes (the CLI and the services) never interleave."""
    data = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
