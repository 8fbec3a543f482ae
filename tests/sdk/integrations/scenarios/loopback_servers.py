"""Serving a scenario's apps on free 127.0.0.1 ports, each in a daemon thread.

Shared by the scenarios that send requests through every server integration
(``http_boundaries``, ``journey_sampling``); they import it as a sibling module, since
a scenario runs as a script with this folder first on ``sys.path``.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from aiohttp import web
from werkzeug.serving import make_server

import threadline

STARTUP_TIMEOUT_S = 5.0


def serve_wsgi(app: Any) -> int:
    """Serve a WSGI app with werkzeug's threaded server; returns its port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_port)


def serve_asgi(app: Any) -> int:
    """Serve an ASGI app with uvicorn; returns its port once uvicorn has started."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return int(listener.getsockname()[1])


def serve_aiohttp(route: str, answer: Callable[[], Any]) -> int:
    """An instrumented aiohttp app answering ``answer()`` as JSON at ``route``; its port."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(answer())

    app = web.Application()
    app.router.add_get(route, handler)
    threadline.instrument(app)
    loop = asyncio.new_event_loop()
    port: list[int] = []
    ready = threading.Event()

    async def start() -> None:
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port.append(runner.addresses[0][1])
        ready.set()

    def run(starting: Awaitable[None]) -> None:
        loop.run_until_complete(starting)
        loop.run_forever()

    threading.Thread(target=run, args=(start(),), daemon=True).start()
    ready.wait(STARTUP_TIMEOUT_S * 2)
    return port[0]
