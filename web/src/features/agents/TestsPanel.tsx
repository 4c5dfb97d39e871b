"use client";

import { PlayCircleOutlined, PlusOutlined } from "@ant-design/icons";
import { App, Button, Card, Flex, InputNumber, Select, Space, Table, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { useLocale } from "@/i18n";
import { ConfirmButton } from "@/ui/ConfirmButton";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import {
  addTestCase,
  deleteTestCase,
  listEvaluations,
  listTestCases,
  setMinPassRate,
  startEvaluation,
  updateTestCase,
  type Agent,
  type EvaluationSummary,
  type TestCase,
  type VersionRef,
} from "./api";
import { CaseEditor, checkSummary } from "./CaseEditor";
import { EvaluationCompare, EvaluationDetails, POLL_MS, StatusTag, isUnfinished, percent, targetLabel } from "./EvaluationResults";
import "./builderMessages";

const CARD_HEADING = { fontSize: 16, margin: 0, fontWeight: 600 } as const;

/**
 * The Tests tab: the test set (cases with contains, regex and judged checks), the minimum pass rate publishing
 * requires, evaluations of the draft or a version with their results, and two evaluations side by side.
 */
export function TestsPanel({
  agent,
  revision,
  onAgentChanged,
}: {
  agent: Agent;
  /** Changes when an evaluation was started elsewhere on the page (the publish dialog): the list loads again. */
  revision: number;
  onAgentChanged: (agent: Agent) => void;
}) {
  const { t, locale } = useLocale();
  const { message } = App.useApp();
  const editable = agent.can_edit;
  const cases = useAsync(() => listTestCases(agent.id), [agent.id]);
  const evaluations = useAsync(() => listEvaluations(agent.id), [agent.id, revision]);
  const [editing, setEditing] = useState<TestCase | "new" | null>(null);
  const [opened, setOpened] = useState<string | null>(null);
  const [starting, setStarting] = useState<VersionRef | null>(null);
  const [runError, setRunError] = useState<unknown>(null);
  const [rate, setRate] = useState<number | null>(agent.min_pass_rate == null ? null : Math.round(agent.min_pass_rate * 100));
  const [savingRate, setSavingRate] = useState(false);
  const [sides, setSides] = useState<{ base?: string; target?: string }>({});

  const list = evaluations.data ?? [];
  const running = list.some(isUnfinished);
  useEffect(() => {
    if (!running) return;
    const timer = setTimeout(evaluations.reload, POLL_MS);
    return () => clearTimeout(timer);
  }, [running, evaluations.data, evaluations.reload]);

  const formatDate = (value: string) =>
    new Date(value).toLocaleString(locale === "zh" ? "zh-CN" : "en", { dateStyle: "short", timeStyle: "short" });

  const run = async (target: VersionRef) => {
    setStarting(target);
    setRunError(null);
    try {
      const started = await startEvaluation(agent.id, target);
      setOpened(started.id);
      evaluations.reload();
    } catch (caught) {
      setRunError(caught);
    } finally {
      setStarting(null);
    }
  };

  const saveRate = async (value: number | null) => {
    setSavingRate(true);
    try {
      const saved = await setMinPassRate(agent.id, value == null ? null : value / 100);
      onAgentChanged(saved);
      setRate(value);
      message.success(value == null ? t("agents.tests.gateOff") : t("agents.tests.gateSaved", { rate: `${value}%` }));
    } catch (caught) {
      message.error(errorMessage(caught, t));
    } finally {
      setSavingRate(false);
    }
  };

  const removeCase = async (testCase: TestCase) => {
    try {
      await deleteTestCase(agent.id, testCase.id);
      cases.reload();
    } catch (caught) {
      message.error(errorMessage(caught, t));
    }
  };

  // The comparison's sides: chosen, else the newest completed evaluation of the published version (or the one
  // before the newest) against the newest completed one.
  const completed = list.filter((evaluation) => evaluation.status === "completed");
  const newest = completed[0];
  const published = agent.published_version;
  const defaultBase = completed.find((evaluation) => evaluation !== newest && evaluation.target === published) ?? completed[1];
  const base = sides.base ?? defaultBase?.id;
  const target = sides.target ?? newest?.id;
  const evaluationLabel = (evaluation: EvaluationSummary) =>
    `${targetLabel(evaluation.target, t)} · ${percent(evaluation.pass_rate)} · ${formatDate(evaluation.created_at)}`;
  const compareOptions = completed.map((evaluation) => ({ value: evaluation.id, label: evaluationLabel(evaluation) }));
  const hasCases = (cases.data?.length ?? 0) > 0;

  return (
    <Flex vertical gap={16}>
      <Card title={<h2 style={CARD_HEADING}>{t("agents.tests.gate")}</h2>} size="small">
        <Typography.Paragraph type="secondary">{t("agents.tests.gateHint")}</Typography.Paragraph>
        <Flex gap={8} wrap align="center">
          <label htmlFor="min-pass-rate">{t("agents.tests.minPassRate")}</label>
          <InputNumber
            id="min-pass-rate"
            min={0}
            max={100}
            precision={0}
            suffix="%"
            value={rate}
            disabled={!editable}
            onChange={(value) => setRate(value)}
            style={{ width: 120 }}
          />
          {editable ? (
            <>
              <Button loading={savingRate} onClick={() => void saveRate(rate)}>
                {t("agents.tests.saveGate")}
              </Button>
              {agent.min_pass_rate != null ? (
                <Button type="link" onClick={() => void saveRate(null)}>
                  {t("agents.tests.turnOff")}
                </Button>
              ) : null}
            </>
          ) : null}
          <Typography.Text type="secondary" data-testid="gate-status">
            {agent.min_pass_rate == null
              ? t("agents.tests.gateNone")
              : t("agents.tests.gateActive", { rate: percent(agent.min_pass_rate) })}
          </Typography.Text>
        </Flex>
      </Card>

      <Card
        title={<h2 style={CARD_HEADING}>{t("agents.tests.cases")}</h2>}
        size="small"
        extra={
          editable ? (
            <Button size="small" icon={<PlusOutlined aria-hidden />} onClick={() => setEditing("new")}>
              {t("agents.tests.add")}
            </Button>
          ) : null
        }
      >
        <ErrorAlert error={cases.error} onRetry={cases.reload} />
        {cases.data && !hasCases ? (
          <EmptyState title={t("agents.tests.empty")} hint={t("agents.tests.emptyHint")} />
        ) : (
          <Table<TestCase>
            rowKey="id"
            size="small"
            loading={cases.loading}
            dataSource={cases.data}
            pagination={false}
            scroll={{ x: "max-content" }}
            columns={[
              {
                title: t("agents.tests.question"),
                dataIndex: "question",
                render: (question: string, testCase) => (
                  <Flex vertical gap={4} style={{ maxWidth: 420 }}>
                    <Typography.Text style={{ whiteSpace: "normal", overflowWrap: "anywhere" }}>{question}</Typography.Text>
                    <Flex gap={4} wrap>
                      {testCase.checks.map((check, index) => (
                        <Tag key={index} style={{ whiteSpace: "normal", maxWidth: 380 }}>
                          {checkSummary(check, t)}
                        </Tag>
                      ))}
                    </Flex>
                  </Flex>
                ),
              },
              ...(editable
                ? [
                    {
                      title: t("common.actions"),
                      key: "actions",
                      width: 150,
                      render: (_: unknown, testCase: TestCase, index: number) => (
                        <Space size="small">
                          <Button
                            size="small"
                            autoInsertSpace={false}
                            aria-label={t("agents.tests.editOf", { n: index + 1 })}
                            onClick={() => setEditing(testCase)}
                          >
                            {t("common.edit")}
                          </Button>
                          <ConfirmButton
                            label={t("common.delete")}
                            question={t("agents.tests.deleteConfirm")}
                            target={t("agents.tests.caseN", { n: index + 1 })}
                            onConfirm={() => removeCase(testCase)}
                          />
                        </Space>
                      ),
                    },
                  ]
                : []),
            ]}
          />
        )}
      </Card>

      <Card title={<h2 style={CARD_HEADING}>{t("agents.eval.title")}</h2>} size="small">
        <Typography.Paragraph type="secondary">{t("agents.eval.hint")}</Typography.Paragraph>
        {editable ? (
          <Flex gap={8} wrap style={{ marginBottom: 12 }}>
            <Button
              type="primary"
              icon={<PlayCircleOutlined aria-hidden />}
              disabled={!hasCases || running}
              loading={starting === "draft"}
              onClick={() => void run("draft")}
            >
              {t("agents.eval.runDraft")}
            </Button>
            {published != null ? (
              <Button
                icon={<PlayCircleOutlined aria-hidden />}
                disabled={!hasCases || running}
                loading={starting === published}
                onClick={() => void run(published)}
              >
                {t("agents.eval.runVersion", { n: published })}
              </Button>
            ) : null}
          </Flex>
        ) : null}
        <ErrorAlert error={runError ?? evaluations.error} />
        <Table<EvaluationSummary>
          rowKey="id"
          size="small"
          dataSource={list}
          pagination={false}
          scroll={{ x: "max-content" }}
          locale={{ emptyText: t("agents.eval.empty") }}
          columns={[
            { title: t("agents.eval.target"), key: "target", render: (_, evaluation) => targetLabel(evaluation.target, t) },
            { title: t("agents.eval.status"), key: "status", render: (_, evaluation) => <StatusTag status={evaluation.status} /> },
            {
              title: t("agents.eval.passRate"),
              key: "rate",
              render: (_, evaluation) =>
                evaluation.status === "completed"
                  ? t("agents.eval.summary", { passed: evaluation.passed, total: evaluation.total, rate: percent(evaluation.pass_rate) })
                  : "—",
            },
            { title: t("agents.eval.started"), dataIndex: "created_at", responsive: ["md"], render: formatDate },
            {
              title: t("common.actions"),
              key: "actions",
              render: (_, evaluation) => (
                <Button
                  size="small"
                  autoInsertSpace={false}
                  aria-expanded={opened === evaluation.id}
                  aria-label={t("agents.eval.detailsOf", {
                    action: opened === evaluation.id ? t("agents.eval.hide") : t("agents.eval.details"),
                    target: targetLabel(evaluation.target, t),
                    date: formatDate(evaluation.created_at),
                  })}
                  onClick={() => setOpened(opened === evaluation.id ? null : evaluation.id)}
                >
                  {opened === evaluation.id ? t("agents.eval.hide") : t("agents.eval.details")}
                </Button>
              ),
            },
          ]}
        />
        {opened ? (
          <Card size="small" style={{ marginTop: 12 }} title={<h3 style={{ ...CARD_HEADING, fontSize: 14 }}>{t("agents.eval.results")}</h3>}>
            <EvaluationDetails agentId={agent.id} evaluationId={opened} />
          </Card>
        ) : null}
      </Card>

      <Card title={<h2 style={CARD_HEADING}>{t("agents.eval.compareTitle")}</h2>} size="small">
        {completed.length < 2 ? (
          <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
            {t("agents.eval.compareNeedsTwo")}
          </Typography.Paragraph>
        ) : (
          <Flex vertical gap={12}>
            <Flex gap={12} wrap align="center">
              <Flex align="center" gap={8} wrap>
                <span>{t("agents.compare.base")}</span>
                <Select
                  aria-label={t("agents.eval.compareBase")}
                  value={base}
                  options={compareOptions}
                  onChange={(value: string) => setSides({ base: value, target })}
                  style={{ minWidth: 200, maxWidth: 320 }}
                  popupMatchSelectWidth={false}
                />
              </Flex>
              <Flex align="center" gap={8} wrap>
                <span>{t("agents.compare.target")}</span>
                <Select
                  aria-label={t("agents.eval.compareTarget")}
                  value={target}
                  options={compareOptions}
                  onChange={(value: string) => setSides({ base, target: value })}
                  style={{ minWidth: 200, maxWidth: 320 }}
                  popupMatchSelectWidth={false}
                />
              </Flex>
            </Flex>
            {base && target ? <EvaluationCompare agentId={agent.id} base={base} target={target} /> : null}
          </Flex>
        )}
      </Card>

      {editing ? (
        <CaseEditor
          testCase={editing === "new" ? null : editing}
          onClose={() => setEditing(null)}
          onSave={async (body) => {
            if (editing === "new") await addTestCase(agent.id, body);
            else await updateTestCase(agent.id, editing.id, body);
            message.success(t("agents.tests.saved"));
            cases.reload();
          }}
        />
      ) : null}
    </Flex>
  );
}
