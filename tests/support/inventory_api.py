"""A real small HTTP API for OpenAPI tool tests: an inventory whose every call needs `X-Api-Key: API_KEY`, served by
the standard library's threaded HTTP server on loopback. It records each request (method, path, query, headers,
body). `DOCUMENT_YAML` describes it (its server URL is `{base}`, replaced by `document`)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

API_KEY = "inventory-key-" + uuid.uuid4().hex


@dataclass
class Inventory:
    """What the API saw: each request's method, path, query, headers and body."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""


def _handler(inventory: Inventory) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any, content_type: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            seen: dict[str, Any] = {
                "method": method,
                "path": parts.path,
                "query": parse_qs(parts.query),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body,
            }
            inventory.requests.append(seen)
            if self.headers.get("x-api-key") != API_KEY:
                return self._answer(401, {"error": "missing or wrong API key"})
            if parts.path == "/v1/broken":
                return self._answer(500, {"error": "the database is on fire"})
            if parts.path == "/v1/big":
                return self._answer(200, b"x" * 50_000, "text/plain")
            if parts.path.startswith("/v1/items/") and method == "GET":
                item_id = unquote(parts.path.rsplit("/", 1)[1])
                if item_id == "missing":
                    return self._answer(404, {"error": "no such item"})
                return self._answer(200, {"id": item_id, "name": f"Widget {item_id}", "stock": 17})
            if parts.path == "/v1/items" and method == "GET":
                return self._answer(200, {"items": [{"id": "a1"}], "tag": seen["query"].get("tag")})
            if parts.path == "/v1/items" and method == "POST":
                return self._answer(201, {"created": body, "trace": self.headers.get("x-trace")})
            return self._answer(404, {"error": "not found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

    return Handler


@contextmanager
def serve_inventory() -> Iterator[Inventory]:
    """The API on a free loopback port; `base_url` ends in `/v1`."""
    seen = Inventory()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


DOCUMENT_YAML = """
openapi: 3.0.3
info: {title: Inventory API, version: "2.1"}
servers:
  - url: "{base}"
paths:
  /items/{itemId}:
    parameters:
      - {name: itemId, in: path, required: true, description: The item's id., schema: {type: string}}
    get:
      operationId: getItemById
      summary: Read one item.
      description: Its name and how many are in stock.
  /items:
    get:
      operationId: listItems
      summary: List the items.
      parameters:
        - {name: tag, in: query, schema: {type: array, items: {type: string}}}
        - {name: limit, in: query, schema: {$ref: '#/components/schemas/Limit'}}
    post:
      operationId: create-item
      summary: Add an item.
      parameters:
        - {name: X-Trace, in: header, schema: {type: string}}
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/NewItem'}
  /broken:
    get: {operationId: getItemById, summary: Always fails.}
  /big:
    get: {summary: A long answer.}
  /upload:
    post:
      operationId: upload
      requestBody:
        required: true
        content:
          multipart/form-data: {schema: {type: object}}
components:
  schemas:
    Limit: {type: integer, minimum: 1, maximum: 50}
    NewItem:
      type: object
      required: [name]
      properties:
        name: {type: string}
        parent: {$ref: '#/components/schemas/NewItem'}
"""


def document(base_url: str) -> str:
    return DOCUMENT_YAML.replace("{base}", base_url)
