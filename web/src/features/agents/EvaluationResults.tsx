"use client";

import {
  CheckCircleFilled,
  ClockCircleOutlined,
  CloseCircleFilled,
  LoadingOutlined,
  MinusCircleOutlined,
  PlusCircleOutlined,
} from "@ant-design/icons";
import { Card, Col, Flex, List, Progress, Row, Spin, Tag, Typography, theme } from "antd";
import Link from "next/link";
import { useEffect } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import {
  compareEvaluations,
  getEvaluation,
  type CaseComparison,
  type EvaluationRef,
  type EvaluationSummary,
} from "./api";
import "./builderMessages";

/** How often an unfinished evaluation is read again. */
export const POLL_MS = 1000;

export function isUnfinished(evaluation: Pick<EvaluationSummary, "status">): boolean {
  return evaluation.status === "queued" || evaluation.status === "running";
}

/** "Draft" or "v3": what an evaluation ran. */
export function targetLabel(target: EvaluationSummary["target"], t: ReturnType<typeof useT>): string {
  return target === "draft" ? t("agents.compare.draft") : t("agents.versionTag", { n: target });
}

export function percent(rate: number | null | undefined): string {
  return rate == null ? "—" : `${Math.round(rate * 1000) / 10}%`;
}

/** An evaluation's status as a tag with an icon (colour is not the only sign). */
export function StatusTag({ status }: { status: EvaluationSummary["status"] }) {
  const t = useT();
  const { token } = theme.useToken();
  const icon = {
    queued: <ClockCircleOutlined aria-hidden />,
    running: <LoadingOutlined aria-hidden />,
    completed: <CheckCircleFilled aria-hidden style={{ color: token.colorSuccess }} />,
    failed: <CloseCircleFilled aria-hidden style={{ color: token.colorError }} />,
  }[status];
  return <Tag icon={icon}>{t(`agents.eval.status.${status}`)}</Tag>;
}

export function PassedTag({ passed }: { passed: boolean }) {
  const t = useT();
  const { token } = theme.useToken();
  return passed ? (
    <Tag icon={<CheckCircleFilled aria-hidden style={{ color: token.colorSuccess }} />}>{t("agents.eval.passed")}</Tag>
  ) : (
    <Tag icon={<CloseCircleFilled aria-hidden style={{ color: token.colorError }} />}>{t("agents.eval.failed")}</Tag>
  );
}

/** One evaluation with its results per case: passed or not, the answer, each check, the run's timeline. */
export function EvaluationDetails({ agentId, evaluationId, onChanged }: { agentId: string; evaluationId: string; onChanged?: () => void }) {
  const t = useT();
  const evaluation = useAsync(() => getEvaluation(agentId, evaluationId), [agentId, evaluationId]);
  const data = evaluation.data;
  const unfinished = data ? isUnfinished(data) : false;
  useEffect(() => {
    if (!unfinished) return;
    const timer = setTimeout(() => {
      evaluation.reload();
      onChanged?.();
    }, POLL_MS);
    return () => clearTimeout(timer);
  }, [unfinished, data, evaluation, onChanged]);

  if (evaluation.error) return <ErrorAlert error={evaluation.error} onRetry={evaluation.reload} />;
  if (!data) return <Spin style={{ display: "block", margin: "24px auto" }} />;
  const done = data.results.length;
  return (
    <Flex vertical gap={12} data-testid="evaluation-details">
      <Flex gap={12} wrap align="center">
        <Typography.Text strong>{targetLabel(data.target, t)}</Typography.Text>
        <StatusTag status={data.status} />
        <Typography.Text>
          {data.status === "completed"
            ? t("agents.eval.summary", { passed: data.passed, total: data.total, rate: percent(data.pass_rate) })
            : t("agents.eval.progress", { done, total: data.total })}
        </Typography.Text>
      </Flex>
      {unfinished ? (
        <Progress
          percent={data.total ? Math.round((done / data.total) * 100) : 0}
          aria-label={t("agents.eval.progressLabel")}
          size="small"
        />
      ) : null}
      {data.error ? <ErrorAlert error={new Error(data.error)} /> : null}
      <List
        dataSource={data.results}
        locale={{ emptyText: unfinished ? t("agents.eval.waiting") : t("agents.eval.noResults") }}
        renderItem={(result) => (
          <List.Item key={result.case_id}>
            <Flex vertical gap={6} style={{ width: "100%", minWidth: 0 }}>
              <Flex gap={8} align="start" wrap>
                <PassedTag passed={result.passed} />
                <Typography.Text strong style={{ flex: 1, minWidth: 0, overflowWrap: "anywhere" }}>
                  {result.question}
                </Typography.Text>
              </Flex>
              {result.answer != null ? (
                <Typography.Paragraph style={{ whiteSpace: "pre-wrap", margin: 0, overflowWrap: "anywhere" }}>
                  <Typography.Text type="secondary">{t("agents.eval.answer")}: </Typography.Text>
                  {result.answer}
                </Typography.Paragraph>
              ) : null}
              {result.error ? <Typography.Text type="danger">{result.error}</Typography.Text> : null}
              {result.checks.length ? (
                <ul style={{ margin: 0, paddingInlineStart: 20 }}>
                  {result.checks.map((check, index) => (
                    <li key={index}>
                      {check.passed ? t("agents.eval.checkPassed", { type: t(`agents.tests.type.${check.type}`) }) : t("agents.eval.checkFailed", { type: t(`agents.tests.type.${check.type}`) })}
                      {check.detail ? ` — ${check.detail}` : ""}
                    </li>
                  ))}
                </ul>
              ) : null}
              {result.run_id ? (
                <Link href={`/runs?id=${result.run_id}`} style={{ width: "fit-content" }}>
                  {t("agents.eval.timeline")}
                </Link>
              ) : null}
            </Flex>
          </List.Item>
        )}
      />
    </Flex>
  );
}

const CHANGE_ICON = {
  fixed: CheckCircleFilled,
  broken: CloseCircleFilled,
  same: MinusCircleOutlined,
  added: PlusCircleOutlined,
  removed: MinusCircleOutlined,
} as const;

function ChangeTag({ changed }: { changed: CaseComparison["changed"] }) {
  const t = useT();
  const { token } = theme.useToken();
  const Icon = CHANGE_ICON[changed];
  const color = changed === "fixed" ? token.colorSuccess : changed === "broken" ? token.colorError : undefined;
  return <Tag icon={<Icon aria-hidden style={{ color }} />}>{t(`agents.eval.changed.${changed}`)}</Tag>;
}

/** Two evaluations side by side, case by case, with what changed (fixed, broken, same, added, removed). */
export function EvaluationCompare({ agentId, base, target }: { agentId: string; base: EvaluationRef; target: EvaluationRef }) {
  const t = useT();
  const comparison = useAsync(() => compareEvaluations(agentId, base, target), [agentId, base, target]);
  if (comparison.error) return <ErrorAlert error={comparison.error} onRetry={comparison.reload} />;
  if (!comparison.data) return <Spin style={{ display: "block", margin: "24px auto" }} />;
  const { cases } = comparison.data;
  const side = (label: string, summary: EvaluationSummary) => (
    <Typography.Text>
      {label}: <strong>{targetLabel(summary.target, t)}</strong> · {percent(summary.pass_rate)}
    </Typography.Text>
  );
  return (
    <Flex vertical gap={12} data-testid="evaluation-compare">
      <Flex gap={16} wrap>
        {side(t("agents.compare.base"), comparison.data.base)}
        {side(t("agents.compare.target"), comparison.data.target)}
      </Flex>
      {cases.length === 0 ? <EmptyState title={t("agents.eval.noResults")} /> : null}
      {cases.map((item) => (
        <Card
          key={item.case_id}
          size="small"
          title={
            <Flex gap={8} align="center" wrap>
              <ChangeTag changed={item.changed} />
              <span style={{ whiteSpace: "normal", overflowWrap: "anywhere" }}>{item.question}</span>
            </Flex>
          }
        >
          <Row gutter={[16, 8]}>
            {([
              [t("agents.compare.base"), item.base],
              [t("agents.compare.target"), item.target],
            ] as const).map(([label, result]) => (
              <Col key={label} xs={24} md={12}>
                <Flex vertical gap={4}>
                  <Typography.Text type="secondary">{label}</Typography.Text>
                  {result ? (
                    <>
                      <PassedTag passed={result.passed} />
                      <Typography.Paragraph style={{ whiteSpace: "pre-wrap", margin: 0, overflowWrap: "anywhere" }}>
                        {result.answer ?? result.error ?? "—"}
                      </Typography.Paragraph>
                      {result.run_id ? <Link href={`/runs?id=${result.run_id}`}>{t("agents.eval.timeline")}</Link> : null}
                    </>
                  ) : (
                    <Typography.Text type="secondary">{t("agents.eval.notInEvaluation")}</Typography.Text>
                  )}
                </Flex>
              </Col>
            ))}
          </Row>
        </Card>
      ))}
    </Flex>
  );
}
