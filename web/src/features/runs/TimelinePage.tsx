"use client";

import { ApiOutlined, CodeOutlined, ToolOutlined } from "@ant-design/icons";
import { Alert, Card, Descriptions, Flex, Tag, Timeline, Typography } from "antd";
import { useSearchParams } from "next/navigation";
import { useEffect, useRef, useState } from "react";
import { api, unwrap, type Schemas } from "@/api/client";
import { followRun, type RunEvent } from "@/api/stream";
import { useT, type Translate } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import "./messages";

type RunTimeline = Schemas["RunTimeline"];
type ToolCallTiming = Schemas["ToolCallTiming"];
type Usage = Schemas["Usage"];

/** While a run goes on, its timeline is read again at most this often (the stream says when something happened). */
const REFRESH_MS = 500;

function readTimeline(runId: string): Promise<RunTimeline> {
  return unwrap(api.GET("/api/runs/{run_id}/timeline", { params: { path: { run_id: runId } } }));
}

/** Seconds as people read them: milliseconds under a second. */
function duration(t: Translate, seconds: number | null | undefined): string {
  if (seconds == null) return t("runs.running");
  return seconds < 1 ? t("runs.ms", { ms: Math.round(seconds * 1000) }) : t("runs.duration", { seconds: seconds.toFixed(2) });
}

function tokens(t: Translate, usage: Usage | null | undefined): string {
  return usage ? ` · ${t("runs.tokens", { input: usage.input_tokens, output: usage.output_tokens })}` : "";
}

function ToolCallRow({ call }: { call: ToolCallTiming }) {
  const t = useT();
  const outcome = call.finished_at ? ` → ${String(call.error ?? call.output).slice(0, 160)}` : "";
  return (
    <Flex gap={8} align="baseline" wrap data-testid="timeline-tool-call" style={{ minWidth: 0 }}>
      {call.kind === "code" ? <CodeOutlined aria-hidden /> : <ToolOutlined aria-hidden />}
      <Typography.Text code style={{ overflowWrap: "anywhere" }}>
        {call.kind === "code" ? String(call.arguments ?? "") : `${call.name}(${JSON.stringify(call.arguments)})`}
        {outcome}
      </Typography.Text>
      <Typography.Text type={call.error ? "danger" : "secondary"} data-testid="timeline-duration">
        {call.error ? `${t("runs.failed")} · ` : ""}
        {duration(t, call.duration)}
      </Typography.Text>
    </Flex>
  );
}

/**
 * A run's timeline: each step with its duration and tokens, the model call that opened it and the tool calls it
 * made, each with its own duration (`GET /api/runs/{id}/timeline`, read again while the run goes on).
 */
export function TimelinePage() {
  const t = useT();
  const runId = useSearchParams().get("id");
  const run = useAsync(
    () => (runId ? unwrap(api.GET("/api/runs/{run_id}", { params: { path: { run_id: runId } } })) : Promise.resolve(null)),
    [runId],
  );
  const [timeline, setTimeline] = useState<RunTimeline | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(true);
  // What memory recalled before the run and saved after it (its events; the timeline has neither).
  const [memoryEvents, setMemoryEvents] = useState<RunEvent[]>([]);
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  useEffect(() => {
    if (!runId) return;
    const controller = new AbortController();
    let stale = false;
    const refresh = () =>
      readTimeline(runId).then(
        (value) => !stale && setTimeline(value),
        (caught: unknown) => !stale && setError(caught),
      );
    setTimeline(null);
    setMemoryEvents([]);
    void refresh();
    followRun(
      runId,
      0,
      (event) => {
        if (event.type === "memory.recalled" || event.type === "memory.saved") setMemoryEvents((previous) => [...previous, event]);
        if (event.type === "thinking.delta" || event.type === "message.delta" || timer.current) return;
        timer.current = setTimeout(() => {
          timer.current = undefined;
          void refresh();
        }, REFRESH_MS);
      },
      controller.signal,
    )
      .then(() => {
        clearTimeout(timer.current);
        timer.current = undefined;
        setLive(false);
        void refresh();
        run.reload();
      })
      .catch((caught: unknown) => !controller.signal.aborted && setError(caught));
    return () => {
      stale = true;
      controller.abort();
      clearTimeout(timer.current);
      timer.current = undefined;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId]);

  if (!runId) return <EmptyState title={t("runs.missing")} />;
  const data = run.data;
  const steps = timeline?.steps ?? [];
  const open = timeline?.open_tool_calls ?? [];
  const recalled = memoryEvents.flatMap((event) => (event.type === "memory.recalled" ? event.memories : []));
  const saved = memoryEvents.flatMap((event) =>
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
      {steps.length === 0 && open.length === 0 ? (
        <EmptyState title={t("runs.noSteps")} />
      ) : (
        <Timeline
          items={[
            ...steps.map((step, index) => ({
              key: index,
              color: step.error ? "red" : step.is_final_answer ? "green" : "blue",
              content: (
                <Flex vertical gap={4} data-testid="timeline-step">
                  <Typography.Text strong>
                    {step.kind === "planning" ? t("runs.planning") : t("runs.step", { n: step.step ?? index + 1 })}
                    {step.parent_call_id && step.agent ? ` · ${t("runs.subAgent", { agent: step.agent })}` : ""}
                    {step.is_final_answer ? ` · ${t("runs.finalAnswer")}` : ""}
                  </Typography.Text>
                  <Typography.Text type="secondary">
                    {duration(t, step.duration)}
                    {tokens(t, step.usage)}
                  </Typography.Text>
                  <Flex gap={8} align="baseline" wrap data-testid="timeline-model-call">
                    <ApiOutlined aria-hidden />
                    <Typography.Text>{t("runs.modelCall")}</Typography.Text>
                    <Typography.Text type="secondary" data-testid="timeline-duration">
                      {duration(t, step.model_call.duration)}
                      {tokens(t, step.model_call.usage)}
                    </Typography.Text>
                  </Flex>
                  {step.tool_calls.map((call) => (
                    <ToolCallRow key={call.call_id} call={call} />
                  ))}
                  {step.error ? <Typography.Text type="danger">{step.error}</Typography.Text> : null}
                </Flex>
              ),
            })),
            ...(open.length
              ? [
                  {
                    key: "open",
                    color: "gray",
                    content: (
                      <Flex vertical gap={4} data-testid="timeline-open">
                        <Typography.Text strong>{t("runs.underWay")}</Typography.Text>
                        {open.map((call) => (
                          <ToolCallRow key={call.call_id} call={call} />
                        ))}
                      </Flex>
                    ),
                  },
                ]
              : []),
          ]}
        />
      )}
    </Flex>
  );
}
