"""Prometheus metrics of the runs this process executes: started and finished (by outcome, and by agent), duration,
time to the agent's first event, and how many are in flight. Agent ids are the only per-resource label (bounded by
the agents that exist); no user id or free text is a label."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RUNS_STARTED = Counter("nexent_runs_started_total", "Runs this process started executing.")
RUNS_FINISHED = Counter(
    "nexent_runs_finished_total",
    "Runs this process executed that ended, by outcome (completed, failed, stopped; ended_elsewhere when another "
    "process had ended the run first).",
    ["outcome"],
)
AGENT_RUNS = Counter(
    "nexent_agent_runs_total",
    "Runs this process executed that ended, by agent id and status (completed, failed, stopped, ended_elsewhere).",
    ["agent", "status"],
)
RUN_DURATION = Histogram(
    "nexent_run_duration_seconds",
    "Time from a run being handed to this process's run manager to its end, by outcome.",
    ["outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
RUN_FIRST_EVENT = Histogram(
    "nexent_run_time_to_first_event_seconds",
    "Time from a run being handed to this process's run manager to the agent's first event (a token, a tool call, "
    "or its end).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNS_IN_FLIGHT = Gauge(
    "nexent_runs_in_flight",
    "Runs of this process not ended yet, by state: queued (waiting for a slot) or executing.",
    ["state"],
)
QUEUED, EXECUTING = RUNS_IN_FLIGHT.labels("queued"), RUNS_IN_FLIGHT.labels("executing")
