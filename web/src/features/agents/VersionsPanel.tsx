"use client";

import { Button, Card, Flex, Grid, Popconfirm, Select, Space, Spin, Switch, Table, Tag, Typography, theme } from "antd";
import { CheckCircleFilled, StopOutlined } from "@ant-design/icons";
import { useRef, useState } from "react";
import { useLocale } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import {
  compareVersions,
  listVersions,
  rollbackAgent,
  setVersionDisabled,
  type Agent,
  type Version,
  type VersionRef,
} from "./api";
import { VersionDiff, type Names } from "./VersionDiff";
import { changesOf } from "./versioning";
import "./messages";

const CARD_HEADING = { fontSize: 16, margin: 0, fontWeight: 600 } as const;

/**
 * The agent's versions: the list (note, date, published, disabled) with compare, roll back and disable, and the
 * comparison of any two sides (a version or the draft), by default the published version against the draft.
 */
export function VersionsPanel({
  agent,
  names,
  revision,
  onRolledBack,
  onVersionsChanged,
}: {
  agent: Agent;
  names: Names;
  /** Changes whenever a version is published elsewhere on the page (the list loads again). */
  revision: number;
  onRolledBack: (draft: Agent, number: number) => void;
  /** A version was disabled or enabled: the published one may have changed. */
  onVersionsChanged: () => void;
}) {
  const { t, locale } = useLocale();
  const { token } = theme.useToken();
  const narrow = !(Grid.useBreakpoint().md ?? true);
  const editable = agent.can_edit;
  const versions = useAsync(() => listVersions(agent.id), [agent.id, revision]);
  const [actionError, setActionError] = useState<unknown>(null);
  const [busy, setBusy] = useState<number | null>(null);
  // The sides the person chose; null: the default (published, or the newest, against the draft).
  const [chosen, setChosen] = useState<{ base: VersionRef; target: VersionRef } | null>(null);
  const compareRef = useRef<HTMLDivElement>(null);

  const list = versions.data ?? [];
  const newest = list[0]?.number;
  const defaultBase: VersionRef | undefined = agent.published_version ?? newest;
  const defaultTarget: VersionRef | undefined = editable ? "draft" : list[1] ? newest : undefined;
  const base = chosen?.base ?? (editable ? defaultBase : list[1]?.number);
  const target = chosen?.target ?? defaultTarget;

  const diff = useAsync(
    async () => {
      if (base === undefined || target === undefined) return null;
      const found = await compareVersions(agent.id, base, target);
      return changesOf(found.changes);
    },
    [agent, base, target, versions.data],
  );

  const formatDate = (value: string) =>
    new Date(value).toLocaleString(locale === "zh" ? "zh-CN" : "en", { dateStyle: "medium", timeStyle: "short" });

  const rollBack = async (number: number) => {
    setBusy(number);
    setActionError(null);
    try {
      const draft = await rollbackAgent(agent.id, number);
      setChosen(null);
      onRolledBack(draft, number);
    } catch (caught) {
      setActionError(caught);
    } finally {
      setBusy(null);
    }
  };

  const toggle = async (version: Version, enabled: boolean) => {
    setBusy(version.number);
    setActionError(null);
    try {
      await setVersionDisabled(agent.id, version.number, !enabled);
      versions.reload();
      onVersionsChanged();
    } catch (caught) {
      setActionError(caught);
    } finally {
      setBusy(null);
    }
  };

  const compareWithDraft = (number: number) => {
    setChosen({ base: number, target: editable ? "draft" : (newest ?? number) });
    compareRef.current?.scrollIntoView({ behavior: "smooth", block: "start" });
  };

  if (versions.error) return <ErrorAlert error={versions.error} onRetry={versions.reload} />;
  if (versions.loading && !versions.data) return <Spin style={{ display: "block", margin: "48px auto" }} />;
  if (!list.length) {
    return <EmptyState title={t("agents.versions.empty")} hint={t("agents.versions.emptyHint")} />;
  }

  const sideOptions = [
    ...(editable ? [{ value: "draft", label: t("agents.compare.draft") }] : []),
    ...list.map((version) => ({
      value: String(version.number),
      label: version.note
        ? t("agents.compare.versionNote", { n: version.number, note: version.note })
        : t("agents.compare.version", { n: version.number }),
    })),
  ];
  const refOf = (value: string): VersionRef => (value === "draft" ? "draft" : Number(value));
  const numberCell = (version: Version) => (
    <Flex gap={4} wrap align="center">
      <Typography.Text strong>{t("agents.versionTag", { n: version.number })}</Typography.Text>
      {version.published ? (
        <Tag icon={<CheckCircleFilled aria-hidden style={{ color: token.colorSuccess }} />}>
          {t("agents.versions.published")}
        </Tag>
      ) : null}
      {version.disabled ? <Tag icon={<StopOutlined aria-hidden />}>{t("agents.versions.disabled")}</Tag> : null}
    </Flex>
  );
  const actionsCell = (version: Version) => (
    <Space size="small" wrap>
      <Button
        size="small"
        autoInsertSpace={false}
        aria-label={t("agents.versions.compareOf", { n: version.number })}
        onClick={() => compareWithDraft(version.number)}
      >
        {t("agents.versions.compare")}
      </Button>
      {editable ? (
        <>
          <Popconfirm
            title={t("agents.versions.rollbackOf", { n: version.number })}
            description={<div style={{ maxWidth: 300 }}>{t("agents.versions.rollbackConfirm", { n: version.number })}</div>}
            okText={t("agents.versions.rollback")}
            cancelText={t("common.cancel")}
            onConfirm={() => rollBack(version.number)}
          >
            <Button
              size="small"
              autoInsertSpace={false}
              loading={busy === version.number}
              aria-label={t("agents.versions.rollbackLabel", { n: version.number })}
            >
              {t("agents.versions.rollback")}
            </Button>
          </Popconfirm>
          <Switch
            size="small"
            checked={!version.disabled}
            disabled={busy === version.number}
            aria-label={t("agents.versions.enabledOf", { n: version.number })}
            onChange={(enabled) => void toggle(version, enabled)}
          />
          <Typography.Text type="secondary" aria-hidden>
            {t("agents.versions.enabled")}
          </Typography.Text>
        </>
      ) : null}
    </Space>
  );

  return (
    <Flex vertical gap={16}>
      <Card title={<h2 style={CARD_HEADING}>{t("agents.versions.title")}</h2>} size="small">
        <Typography.Paragraph type="secondary">{t("agents.versions.hint")}</Typography.Paragraph>
        <ErrorAlert error={actionError} />
        <Table<Version>
          rowKey="number"
          size="small"
          dataSource={list}
          pagination={false}
          scroll={{ x: "max-content" }}
          loading={versions.loading}
          columns={
            narrow
              ? [
                  {
                    title: t("agents.versions.number"),
                    key: "number",
                    render: (_, version) => (
                      <Flex vertical gap={4}>
                        {numberCell(version)}
                        {version.note ? <Typography.Text>{version.note}</Typography.Text> : null}
                        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                          {formatDate(version.created_at)}
                        </Typography.Text>
                        {actionsCell(version)}
                      </Flex>
                    ),
                  },
                ]
              : [
                  { title: t("agents.versions.number"), key: "number", render: (_, version) => numberCell(version) },
                  {
                    title: t("agents.versions.note"),
                    dataIndex: "note",
                    render: (note: string) =>
                      note ? (
                        <Typography.Text style={{ maxWidth: 280, display: "inline-block" }} ellipsis={{ tooltip: note }}>
                          {note}
                        </Typography.Text>
                      ) : (
                        <Typography.Text type="secondary">—</Typography.Text>
                      ),
                  },
                  { title: t("agents.versions.date"), dataIndex: "created_at", render: formatDate },
                  { title: t("common.actions"), key: "actions", render: (_, version) => actionsCell(version) },
                ]
          }
        />
      </Card>

      <div ref={compareRef} style={{ scrollMarginTop: 16 }}>
        <Card title={<h2 style={CARD_HEADING}>{t("agents.compare.title")}</h2>} size="small">
          <Flex gap={12} wrap align="center">
            <Flex align="center" gap={8}>
              <span>{t("agents.compare.base")}</span>
              <Select
                aria-label={t("agents.compare.base")}
                value={base === undefined ? undefined : String(base)}
                options={sideOptions}
                onChange={(value: string) => setChosen({ base: refOf(value), target: target ?? "draft" })}
                style={{ minWidth: 140, maxWidth: 260 }}
                popupMatchSelectWidth={false}
              />
            </Flex>
            <Flex align="center" gap={8}>
              <span>{t("agents.compare.target")}</span>
              <Select
                aria-label={t("agents.compare.target")}
                value={target === undefined ? undefined : String(target)}
                options={sideOptions}
                onChange={(value: string) => setChosen({ base: base ?? refOf(value), target: refOf(value) })}
                style={{ minWidth: 140, maxWidth: 260 }}
                popupMatchSelectWidth={false}
              />
            </Flex>
          </Flex>
          {diff.error ? (
            <div style={{ marginTop: 12 }}>
              <ErrorAlert error={diff.error} onRetry={diff.reload} />
            </div>
          ) : diff.loading && !diff.data ? (
            <Spin style={{ display: "block", margin: "24px auto" }} />
          ) : diff.data ? (
            <>
              <VersionDiff changes={diff.data} names={names} />
              {editable && (base === "draft" || target === "draft") ? (
                <Typography.Paragraph type="secondary" style={{ fontSize: 12, marginBottom: 0 }}>
                  {t("agents.compare.resolved")}
                </Typography.Paragraph>
              ) : null}
            </>
          ) : null}
        </Card>
      </div>
    </Flex>
  );
}
