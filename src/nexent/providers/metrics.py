"""Prometheus metrics of model calls: calls, tokens, latency and time to first token, by tenant and model."""

from __future__ import annotations

import uuid

from prometheus_client import Counter, Histogram

from nexent.providers.pool import CallReport

CALLS = Counter(
    "nexent_model_calls_total",
    "Model calls, by tenant, model, operation (chat, embed, rerank) and outcome (ok or an error code).",
    ["tenant", "model", "operation", "outcome"],
)
TOKENS = Counter(
    "nexent_model_tokens_total",
    "Tokens sent to (prompt) and produced by (completion) models, by tenant and model.",
    ["tenant", "model", "direction"],
)
LATENCY = Histogram(
    "nexent_model_call_seconds",
    "Duration of model calls, by model and operation.",
    ["model", "operation"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TTFT = Histogram(
    "nexent_model_time_to_first_token_seconds",
    "Time until the first streamed chunk of a chat reply, by model.",
    ["model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def observe(tenant_id: uuid.UUID, model_id: uuid.UUID | None, report: CallReport) -> None:
    tenant, model = str(tenant_id), str(model_id) if model_id else "unsaved"
    CALLS.labels(tenant, model, report.operation, report.error.value if report.error else "ok").inc()
    TOKENS.labels(tenant, model, "prompt").inc(report.usage.prompt_tokens)
    TOKENS.labels(tenant, model, "completion").inc(report.usage.completion_tokens)
    LATENCY.labels(model, report.operation).observe(report.latency_ms / 1000)
    if report.ttft_ms is not None:
        TTFT.labels(model).observe(report.ttft_ms / 1000)
