"""An ASGI app served over real HTTP for tests (schemathesis, httpx), on a thread of its own."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from eropaf_platform.local.ports import free_port

__all__ = ["serve_in_thread"]


@asynccontextmanager
async def serve_in_thread(
    app: Any, dispose: Callable[[], Awaitable[object]], *, timeout: float = 30.0
) -> AsyncIterator[str]:
    """Serve ``app`` (no lifespan) on 127.0.0.1 and a free port; yields its base URL. The
    server runs its own event loop, the only one that ever uses the app's database
    connections, and calls ``dispose`` (e.g. the engine's) on that loop when it stops."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, lifespan="off", log_level="warning"))

    def serve() -> None:
        async def run() -> None:
            try:
                await server.serve()
            finally:
                await dispose()

        asyncio.run(run())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the HTTP server did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.to_thread(thread.join, timeout)
