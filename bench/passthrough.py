"""The floor of `run_latency.py`: the least any Python server in the path can add, on the platform's own stack.

A bare pass-through on the same server stack as `nexent serve` (uvicorn with uvloop and httptools, Starlette's
`StreamingResponse`) and the same model client (aiohttp): `POST /run` with `{"message": ...}` streams the model's
reply back as SSE `message.delta` events, then `run.completed`. No authentication, no database, no agent, no event
log: what it adds to the first token is the cost of one HTTP hop in and one out, in Python, on this machine.

Run by `run_latency.py`: `python bench/passthrough.py MODEL_BASE_URL` prints its port, then serves.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route


def create_app(base_url: str) -> Starlette:
    client: dict[str, aiohttp.ClientSession] = {}

    async def run(request: Request) -> StreamingResponse:
        if "session" not in client:
            client["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        session = client["session"]
        message = (await request.json())["message"]
        body = {"model": "scripted", "messages": [{"role": "user", "content": message}], "stream": True}

        async def events() -> AsyncIterator[str]:
            async with session.post(f"{base_url}/chat/completions", json=body) as reply:
                async for raw in reply.content:
                    line = raw.decode().strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    choices = json.loads(line[5:]).get("choices") or [{}]
                    text = choices[0].get("delta", {}).get("content")
                    if text:
                        yield f"event: message.delta\ndata: {json.dumps({'text': text})}\n\n"
            yield "event: run.completed\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/run", run, methods=["POST"])])


def main() -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        create_app(sys.argv[1]), log_level="warning", access_log=False, lifespan="off", loop="uvloop", http="httptools"
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
