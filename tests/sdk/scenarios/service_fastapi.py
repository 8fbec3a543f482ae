"""Scenario service B: a FastAPI app on uvicorn that reports the journey it sees.

Prints {"port": N} once its socket listens (requests queue until uvicorn accepts them).
"""

import json
import socket

import fastapi
import uvicorn

import threadline
from threadline.sdk import guard
from threadline.sdk.journey import current_journey

guard.raise_internal_errors(True)
threadline.configure(service_name="svc-b")
app = fastapi.FastAPI()
threadline.instrument(app)


@app.get("/stock")
async def stock() -> dict[str, object]:
    return {"journey": current_journey()}


@app.get("/stock-sync")
def stock_sync() -> dict[str, object]:
    # Runs in Starlette's thread pool, which is handed the request's context.
    return {"journey": current_journey()}


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
