"use client";

import { Alert, Card, Descriptions, Flex, Tag, Timeline, Typography } from "antd";
import { useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { api, unwrap } from "@/api/client";
import { followRun, type RunEvent } from "@/api/stream";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import "./messages";

type StepEvent = Extract<RunEvent, { type: "step.completed" }>;
type CallEvent = Extract<RunEvent, { type: "tool.call" }>;
type ResultEvent = Extract<RunEvent, { type: "tool.result" }>;

interface Row {
  step: StepEvent;
  calls: { call: CallEvent; result?: ResultEvent }[];
}

/** Steps of a run in order: each with its duration, tokens, and the tool calls it made (grouped by the step end). */
function rows(events: RunEvent[]): Row[] {
  const out: Row[] = [];
  let pending: Row["calls"] = [];
  const byId = new Map<string, Row["calls"][number]>();
  for (const event of events) {
    if (event.type === "tool.call") {
      const entry = { call: event };
      pending.push(entry);
      byId.set(event.call_id, entry);
    } else if (event.type === "tool.result") {
      const entry = byId.get(event.call_id);
      if (entry) entry.result = event;
    } else if (event.type === "step.completed") {
      const mine = pending.filter((entry) => (entry.call.agent ?? null) === (event.agent ?? null));
      pending = pending.filter((entry) => !mine.includes(entry));
      out.push({ step: event, calls: mine });
    }
  }
  return out;
}

export function TimelinePage() {
  const t = useT();
  const runId = useSearchParams().get("id");
  const run = useAsync(
    () => (runId ? unwrap(api.GET("/api/runs/{run_id}", { params: { path: { run_id: runId } } })) : Promise.resolve(null)),
    [runId],
  );
  const [events, setEvents] = useState<RunEvent[]>([]);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(true);

  useEffect(() => {
    if (!runId) return;
    const controller = new AbortController();
    const seen: RunEvent[] = [];
    setEvents([]);
    followRun(runId, 0, (event) => {
      seen.push(event);
      setEvents([...seen]);
    }, controller.signal)
      .then(() => {
        setLive(false);
        run.reload();
      })
      .catch((caught: unknown) => !controller.signal.aborted && setError(caught));
    return () => controller.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId]);

  if (!runId) return <EmptyState title={t("runs.missing")} />;
  const data = run.data;
  const steps = rows(events);
  const recalled = events.flatMap((event) => (event.type === "memory.recalled" ? event.memories : []));
  const saved = events.flatMap((event) =>
    event.type === "memory.saved"
      ? [
          ...(event.added ?? []).map((memory) => t("runs.memory.added", { text: memory.text })),
          ...(event.updated ?? []).map((memory) => t("runs.memory.updated", { text: memory.text })),
        ]
      : [],
  );
  return (
    <Flex vertical gap={16}>
      <Typography.Title level={1} style={{ fontSize: 24, margin: 0 }}>
        {t("runs.title")}
      </Typography.Title>
      <ErrorAlert error={run.error ?? error} />
      {data ? (
        <Card>
          <Descriptions
            column={{ xs: 1, md: 2 }}
            items={[
              { key: "status", label: t("runs.status"), children: <Tag>{data.status}</Tag> },
              {
                key: "total",
                label: t("runs.total"),
                children: `${
                  data.started_at && data.finished_at
                    ? t("runs.duration", {
                        seconds: ((Date.parse(data.finished_at) - Date.parse(data.started_at)) / 1000).toFixed(2),
                      })
                    : "—"
                } · ${t("runs.tokens", {
                  input: Number(data.usage.input_tokens ?? 0),
                  output: Number(data.usage.output_tokens ?? 0),
                })}`,
              },
              { key: "input", label: t("runs.input"), children: data.input, span: 2 },
              ...(data.final_answer ? [{ key: "answer", label: t("runs.answer"), children: data.final_answer, span: 2 }] : []),
              ...(data.error_message
                ? [{ key: "error", label: t("runs.error"), children: `${data.error_code}: ${data.error_message}`, span: 2 }]
                : []),
            ]}
          />
        </Card>
      ) : null}
      {recalled.length || saved.length ? (
        <Card size="small" title={<h2 style={{ fontSize: 16, margin: 0, fontWeight: 600 }}>{t("runs.memory")}</h2>} data-testid="timeline-memory">
          {recalled.length ? (
            <>
              <Typography.Text strong>{t("runs.memory.recalled", { n: recalled.length })}</Typography.Text>
              <ul style={{ marginTop: 4 }}>
                {recalled.map((memory) => (
                  <li key={memory.id}>{memory.text}</li>
                ))}
              </ul>
            </>
          ) : null}
          {saved.map((line, index) => (
            <div key={index}>
              <Typography.Text>{line}</Typography.Text>
            </div>
          ))}
        </Card>
      ) : null}
      {live && data && (data.status === "running" || data.status === "queued") ? <Alert type="info" title={t("runs.live")} /> : null}
      {steps.length === 0 ? (
        <EmptyState title={t("runs.noSteps")} />
      ) : (
        <Timeline
          items={steps.map(({ step, calls }, index) => ({
            key: index,
            color: step.error ? "red" : step.is_final_answer ? "green" : "blue",
            content: (
              <Flex vertical gap={4} data-testid="timeline-step">
                <Typography.Text strong>
                  {step.kind === "planning" ? t("runs.planning") : t("runs.step", { n: step.step ?? index + 1 })}
                  {step.agent ? ` · ${t("runs.subAgent", { agent: step.agent })}` : ""}
                  {step.is_final_answer ? ` · ${t("runs.finalAnswer")}` : ""}
                </Typography.Text>
                <Typography.Text type="secondary">
                  {step.duration != null ? t("runs.duration", { seconds: step.duration.toFixed(2) }) : ""}
                  {step.usage ? ` · ${t("runs.tokens", { input: step.usage.input_tokens, output: step.usage.output_tokens })}` : ""}
                </Typography.Text>
                {calls.map(({ call, result }) => (
                  <Typography.Text key={call.call_id} code>
                    {call.name}({JSON.stringify(call.arguments)}){result ? ` → ${String(result.error ?? result.output).slice(0, 160)}` : ""}
                  </Typography.Text>
                ))}
                {step.error ? <Typography.Text type="danger">{step.error}</Typography.Text> : null}
              </Flex>
            ),
          }))}
        />
      )}
    </Flex>
  );
}
