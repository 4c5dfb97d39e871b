"""The web UI: the static export of `web/` served from the same port as the API, and the runtime configuration that
tells the browser where each service answers.

The export has no server of its own: every page is an HTML file (`agents/edit.html` for `/agents/edit`), ids travel
in query parameters, and hashed assets live under `/_next/static/`. API paths are never answered with HTML: they are
not the UI's (`UIRoute.matches`), so an unknown API path stays a 404 problem document.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from nexent import __version__
from nexent.settings import Service, Settings

# Paths the services own; the UI answers none of them, whatever the method.
API_PREFIXES = ("/api", "/v1", "/a2a", "/mcp", "/healthz", "/readyz", "/metrics", "/openapi.json")
# Hashed by the build: a new build writes new names, so browsers may keep these for good.
IMMUTABLE_PREFIX = "/_next/static/"
IMMUTABLE = "public, max-age=31536000, immutable"
# Everything else (HTML, the runtime configuration) is revalidated on each load, so a new build shows at once.
REVALIDATE = "no-cache"
# Written beside each text asset by `scripts/web` (`.gz`): compressed once at build time, not on every request.
_COMPRESSIBLE = {".html", ".js", ".css", ".json", ".svg", ".txt", ".map"}


def default_web_dir() -> Path:
    """`web/out` of the source tree this package runs from (an editable install, as `scripts/start` makes)."""
    return Path(__file__).resolve().parents[2] / "web" / "out"


def is_api_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PREFIXES)


def content_security_policy(connect: Iterable[str] = ()) -> str:
    """The pages' policy: scripts, styles and connections from this origin only (and the services' origins in the
    split shape), no plugins, no framing. Inline scripts and styles stay allowed: the export inlines its hydration
    data, and Ant Design writes its styles at run time."""
    origins = " ".join(sorted({origin for origin in connect if origin}))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            f"connect-src 'self' {origins}".strip(),
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


class UIRoute(BaseRoute):
    """Answers GET and HEAD of every non-API path from the export folder: the file, else the page of that name
    (`/chat` is `chat.html`), else the export's 404 page with status 404."""

    def __init__(self, directory: Path, *, connect: Iterable[str] = ()) -> None:
        self.directory = directory.resolve()
        self.not_found = self.directory / "404.html"
        self.policy = content_security_policy(_origin(url) for url in connect)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["method"] in {"GET", "HEAD"} and not is_api_path(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        response = self.respond(request.url.path, request.headers.get("accept-encoding", ""))
        await response(scope, receive, send)

    def respond(self, path: str, accept_encoding: str) -> Response:
        found = self._find(path)
        status = 200
        if found is None:
            found, status = self.not_found, 404
        cache = IMMUTABLE if path.startswith(IMMUTABLE_PREFIX) and status == 200 else REVALIDATE
        headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
        media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if media_type == "text/html":
            headers |= {"Content-Security-Policy": self.policy, "Referrer-Policy": "same-origin"}
        if found.suffix in _COMPRESSIBLE:
            headers["Vary"] = "Accept-Encoding"
            gz = found.with_name(found.name + ".gz")
            if "gzip" in accept_encoding and gz.is_file():
                headers["Content-Encoding"] = "gzip"
                return FileResponse(gz, status_code=status, headers=headers, media_type=media_type)
        return FileResponse(found, status_code=status, headers=headers, media_type=media_type)

    def _find(self, path: str) -> Path | None:
        relative = path.strip("/")
        if ".." in relative.split("/") or "\\" in relative or "\x00" in relative:
            return None
        candidates = [f"{relative}/index.html" if relative else "index.html"]
        if relative:
            candidates[:0] = [relative, f"{relative}.html"]
        for candidate in candidates:
            target = (self.directory / candidate).resolve()
            if target.is_file() and target.is_relative_to(self.directory) and not target.name.endswith(".gz"):
                return target
        return None


class ServiceEndpoint(BaseModel):
    """Where one service answers, and the routes it owns (only when it is not on the UI's own origin)."""

    url: str = Field(description="Base URL of the service; empty: the UI's own origin.")
    routes: list[tuple[str, str]] = Field(
        default_factory=list, description="(method, path template) pairs this service answers, when `url` is set."
    )


class UIConfig(BaseModel):
    """What the browser needs before its first request: where each service answers and how people sign in."""

    version: str
    services: dict[str, ServiceEndpoint]
    sso: bool = Field(description="Single sign-on (OpenID Connect) is configured.")
    open_signup: bool


def _routes_of(routers: Iterable[APIRouter]) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )


def config_router(settings: Settings, service_routers: dict[Service, list[APIRouter]]) -> APIRouter:
    """`GET /api/ui/config`, served by the config service (and the embedded app)."""
    services = {
        service.value: ServiceEndpoint(
            url=settings.service_urls.get(service, ""),
            routes=_routes_of(service_routers[service]) if settings.service_urls.get(service) else [],
        )
        for service in Service
    }
    config = UIConfig(
        version=__version__,
        services=services,
        sso=bool(settings.oidc_issuer and settings.oidc_client_id),
        open_signup=settings.open_signup,
    )
    router = APIRouter(prefix="/api/ui", tags=["ui"])

    @router.get("/config", summary="Runtime configuration of the web UI: where each service answers.")
    async def ui_config() -> UIConfig:
        return config

    return router


def mount_ui(app: FastAPI, directory: Path, settings: Settings) -> bool:
    """Serve the export in `directory` from `app`, after every other route; False when it was not built."""
    if not (directory / "index.html").is_file():
        return False
    app.router.routes.append(UIRoute(directory, connect=settings.service_urls.values()))
    return True
