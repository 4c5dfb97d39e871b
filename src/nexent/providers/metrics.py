"""Prometheus metrics of model calls: calls, tokens, latency and time to first token, by tenant and model; tokens
and cost by agent and model (the agent's id, `none` for calls outside runs such as embeddings; the model config's
id)."""

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
AGENT_TOKENS = Counter(
    "nexent_agent_tokens_total",
    "Tokens of model calls, by agent, model and direction (prompt, completion).",
    ["agent", "model", "direction"],
)
AGENT_COST = Counter(
    "nexent_agent_cost_total",
    "Cost of model calls by agent and model, from the prices in NEXENT_MODEL_PRICES (calls of unpriced models add "
    "nothing).",
    ["agent", "model"],
)


def observe_agent(
    agent_id: uuid.UUID | None, model_id: uuid.UUID | None, report: CallReport, price: tuple[float, float] | None
) -> None:
    agent, model = str(agent_id) if agent_id else "none", str(model_id) if model_id else "unsaved"
    AGENT_TOKENS.labels(agent, model, "prompt").inc(report.usage.prompt_tokens)
    AGENT_TOKENS.labels(agent, model, "completion").inc(report.usage.completion_tokens)
    if price is not None:
        cost = (report.usage.prompt_tokens * price[0] + report.usage.completion_tokens * price[1]) / 1_000_000
        AGENT_COST.labels(agent, model).inc(cost)


def observe(tenant_id: uuid.UUID, model_id: uuid.UUID | None, report: CallReport) -> None:
    tenant, model = str(tenant_id), str(model_id) if model_id else "unsaved"
    CALLS.labels(tenant, model, report.operation, report.error.value if report.error else "ok").inc()
    TOKENS.labels(tenant, model, "prompt").inc(report.usage.prompt_tokens)
    TOKENS.labels(tenant, model, "completion").inc(report.usage.completion_tokens)
    LATENCY.labels(model, report.operation).observe(report.latency_ms / 1000)
    if report.ttft_ms is not None:
        TTFT.labels(model).observe(report.ttft_ms / 1000)
