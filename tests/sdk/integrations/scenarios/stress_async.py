"""Stress service A: FastAPI on uvicorn fanning each request out over asyncio and a thread pool.

Usage: stress_async.py <threaded service URL>. Prints {"port": N} once its socket listens.
"""

import asyncio
import json
import socket
import sys

import fastapi
import httpx
import uvicorn
from opentelemetry import trace

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
threadline.configure(service_name="stress-async")
app = fastapi.FastAPI()
threadline.instrument(app)  # also carries context into the loop's default executor threads
tracer = trace.get_tracer("stress")
downstream = sys.argv[1]
client: httpx.AsyncClient | None = None


def blocking_work() -> dict[str, str]:
    with tracer.start_as_current_span("executor-work"):
        return current_journey()


async def call_threaded() -> object:
    global client
    client = client or httpx.AsyncClient(timeout=30)
    return (await client.get(f"{downstream}/work")).json()


@app.get("/fanout")
async def fanout() -> dict[str, object]:
    loop = asyncio.get_running_loop()
    called, worked = await asyncio.gather(
        call_threaded(), loop.run_in_executor(None, blocking_work)
    )
    return {"here": current_journey(), "executor": worked, "downstream": called}


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(512)
print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
