"use client";

import { ArrowLeftOutlined, EditOutlined } from "@ant-design/icons";
import { Alert, App, Button, Flex, Spin, Tabs, Typography } from "antd";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useState } from "react";
import { useT } from "@/i18n";
import { AppShell } from "@/ui/AppShell";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { readKnowledgeBase, updateKnowledgeBase } from "./api";
import { DocumentsSection } from "./DocumentsSection";
import { KbFormModal } from "./KbFormModal";
import { SearchPlayground } from "./SearchPlayground";
import "./messages";

export function KnowledgeBasePage() {
  return (
    <AppShell>
      <KnowledgeBaseView />
    </AppShell>
  );
}

function KnowledgeBaseView() {
  const t = useT();
  const params = useSearchParams();
  const router = useRouter();
  const id = params.get("id") ?? "";
  const tab = params.get("tab") === "search" ? "search" : "documents";
  const doc = params.get("doc");
  const base = useAsync(async () => (id ? readKnowledgeBase(id) : undefined), [id]);
  const [editing, setEditing] = useState(false);
  const [rebuilding, setRebuilding] = useState(false);
  const { message } = App.useApp();

  const rebuild = async () => {
    setRebuilding(true);
    try {
      base.setData(await updateKnowledgeBase(id, { rebuild_index: true }));
      message.success(t("kb.rebuildStarted"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setRebuilding(false);
    }
  };

  const go = (next: { tab?: string | null; doc?: string | null }) => {
    const query = new URLSearchParams({ id });
    const nextTab = next.tab === undefined ? tab : next.tab;
    if (nextTab === "search") query.set("tab", "search");
    const nextDoc = next.doc === undefined ? doc : next.doc;
    if (nextDoc) query.set("doc", nextDoc);
    router.replace(`/knowledge/base?${query.toString()}`, { scroll: false });
  };

  const back = (
    <Link href="/knowledge">
      <ArrowLeftOutlined /> {t("kb.backToList")}
    </Link>
  );
  if (!id) return <Alert type="info" showIcon title={t("kb.notFound")} action={back} />;
  if (base.error) {
    return (
      <>
        <div style={{ marginBottom: 12 }}>{back}</div>
        <ErrorAlert error={base.error} onRetry={base.reload} />
      </>
    );
  }
  const kb = base.data;
  if (!kb) return <Spin style={{ display: "block", margin: "20vh auto" }} />;

  return (
    <>
      <div style={{ marginBottom: 8 }}>{back}</div>
      <Flex justify="space-between" align="flex-start" wrap gap={12} style={{ marginBottom: 8 }}>
        <div style={{ minWidth: 0 }}>
          <Typography.Title level={2} style={{ margin: 0, overflowWrap: "anywhere" }}>
            {kb.name}
          </Typography.Title>
          {kb.description ? <Typography.Paragraph type="secondary">{kb.description}</Typography.Paragraph> : null}
        </div>
        {kb.can_edit ? (
          <Button icon={<EditOutlined />} onClick={() => setEditing(true)}>
            {t("common.edit")}
          </Button>
        ) : null}
      </Flex>
      {kb.summary ? (
        <Typography.Paragraph>
          <Typography.Text strong>{t("kb.summary")}: </Typography.Text>
          {kb.summary}
        </Typography.Paragraph>
      ) : null}
      {kb.reembedding ? <Alert type="info" showIcon title={t("kb.reembedding")} style={{ marginBottom: 12 }} /> : null}
      {kb.analysis_outdated && !kb.reembedding ? (
        <Alert
          type="warning"
          showIcon
          title={t("kb.analysisOutdated")}
          style={{ marginBottom: 12 }}
          action={
            kb.can_edit ? (
              <Button size="small" loading={rebuilding} onClick={rebuild}>
                {t("kb.rebuildIndex")}
              </Button>
            ) : null
          }
        />
      ) : null}
      <Tabs
        activeKey={tab}
        onChange={(key) => go({ tab: key, doc: null })}
        items={[
          {
            key: "documents",
            label: t("kb.tab.documents"),
            children: <DocumentsSection kb={kb} doc={doc} onDoc={(next) => go({ doc: next })} />,
          },
          { key: "search", label: t("kb.tab.search"), children: <SearchPlayground kb={kb} /> },
        ]}
      />
      <KbFormModal
        open={editing}
        base={kb}
        onClose={() => setEditing(false)}
        onSaved={(saved) => {
          setEditing(false);
          base.setData(saved);
        }}
      />
    </>
  );
}
