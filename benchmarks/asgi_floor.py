"""The floor of one Python HTTP process: uvicorn as ``watchkeeper serve`` runs it (uvloop, httptools, no
access log), with an ASGI app that reads the request body and answers ``202 {}`` — no token check, no
parsing, nothing stored. What it takes per second is the most any single-process Python route on this
stack can take on this machine, whatever the route does; ``intake_vs_alertmanager.py --floor`` drives it
with the same load as the two servers.

    .venv/bin/python benchmarks/asgi_floor.py PORT
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:  # read the whole body, as any route must
        message = await receive()
        more = message.get("more_body", False)
    status = 202 if scope["method"] == "POST" else 200  # 200 to the readiness probe
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
