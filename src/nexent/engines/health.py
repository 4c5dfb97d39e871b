"""Probes every service answers: liveness, readiness (each engine checked) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from nexent import __version__
from nexent.core.errors import problem_response
from nexent.core.metrics import render_metrics
from nexent.core.openapi import problems
from nexent.engines.deps import EnginesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers.")
async def healthz() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    summary="Readiness: every configured engine answers.",
    responses=problems(s503="An engine does not answer; `checks` says which."),
)
async def readyz(engines: EnginesDep) -> JSONResponse:
    checks = await engines.readiness()
    if all(result == "ok" for result in checks.values()):
        return JSONResponse({"status": "ok", "checks": checks})
    return problem_response(503, "not_ready", "One or more engines do not answer.", extra={"checks": checks})


def metrics_response() -> Response:
    """Prometheus exposition of this process's metrics (the route and its authorization live in the app factory:
    the metrics name tenants and models, so only the operator and the scraper may read them)."""
    payload, content_type = render_metrics()
    return Response(payload, media_type=content_type)
