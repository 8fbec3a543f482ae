"""Scenario service for the logs end-to-end test: a FastAPI app on uvicorn, configured
with ``logs=True``, that logs at WARNING inside its requests.

``logging_shop.py checkout <payments-url>``: ``GET /checkout`` opens a journey for the
``X-User`` header, warns, calls payments with httpx, and warns again after the answer.
``logging_shop.py payments``: ``GET /charge`` warns that the card was declined.
Prints ``{"port": N}`` once its socket listens.
"""

import json
import logging
import socket
import sys

import fastapi
import httpx
import uvicorn

import threadline

role = sys.argv[1]
threadline.configure(service_name=f"shop-{role}", logs=True, export_delay_ms=50)
app = fastapi.FastAPI()
threadline.instrument(app)
log = logging.getLogger(f"shop.{role}")


@app.get("/checkout")
async def checkout(request: fastapi.Request) -> dict[str, object]:
    with threadline.journey(user_id=request.headers["x-user"]):
        log.warning("stock is low for sku-7")
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{sys.argv[2]}/charge", timeout=10)
        log.warning("payment refused (%s), order kept", answer.json()["code"])
    return {"paid": False}


@app.get("/charge")
async def charge() -> dict[str, object]:
    log.warning("card declined by the issuer")
    return {"code": 51}


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(128)
print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
