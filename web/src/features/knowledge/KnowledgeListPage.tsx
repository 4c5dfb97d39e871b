"use client";

import { DeleteOutlined, EditOutlined, PlusOutlined, ShareAltOutlined } from "@ant-design/icons";
import { App, Button, Card, Flex, Space, Table, Tooltip, Typography } from "antd";
import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import { AppShell } from "@/ui/AppShell";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { deleteKnowledgeBase, listKnowledgeBases, listModels, type DocumentStatus, type KnowledgeBase } from "./api";
import { KbFormModal } from "./KbFormModal";
import { ShareModal } from "./ShareModal";
import { StatusTag } from "./status";
import "./messages";

export function KnowledgeListPage() {
  return (
    <AppShell>
      <KnowledgeList />
    </AppShell>
  );
}

function total(kb: KnowledgeBase): number {
  return Object.values(kb.document_counts).reduce((sum, n) => sum + n, 0);
}

function KnowledgeList() {
  const t = useT();
  const { can } = useMe();
  const { message, modal } = App.useApp();
  const manage = can("knowledge.manage");
  const router = useRouter();
  const bases = useAsync(listKnowledgeBases, []);
  // Model names for the table; a member without access to models just sees none.
  const models = useAsync(() => listModels("embedding").catch(() => null), []);
  const modelName = new Map((models.data?.items ?? []).map((model) => [model.id, model.name]));
  const [editing, setEditing] = useState<KnowledgeBase | "new" | null>(null);
  const [sharing, setSharing] = useState<KnowledgeBase | null>(null);
  const items = bases.data?.items ?? [];

  const remove = (kb: KnowledgeBase) =>
    modal.confirm({
      title: t("kb.deleteConfirm", { name: kb.name }),
      okText: t("common.delete"),
      okButtonProps: { danger: true },
      cancelText: t("common.cancel"),
      onOk: async () => {
        try {
          await deleteKnowledgeBase(kb.id);
          message.success(t("common.deleted"));
          bases.setData((previous) =>
            previous ? { ...previous, items: previous.items.filter((item) => item.id !== kb.id) } : previous!,
          );
        } catch (error) {
          message.error(errorMessage(error, t));
        }
      },
    });

  const create = manage ? (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing("new")}>
      {t("kb.new")}
    </Button>
  ) : null;

  return (
    <>
      <Flex justify="space-between" align="center" wrap gap={12} style={{ marginBottom: 16 }}>
        <div>
          <Typography.Title level={2} style={{ margin: 0 }}>
            {t("kb.title")}
          </Typography.Title>
          <Typography.Text type="secondary">{t("kb.intro")}</Typography.Text>
        </div>
        {items.length ? create : null}
      </Flex>
      <ErrorAlert error={bases.error} onRetry={bases.reload} />
      <Card styles={{ body: { padding: items.length ? 0 : 24 } }}>
        {!bases.loading && !bases.error && items.length === 0 ? (
          <EmptyState title={t("kb.empty")} hint={manage ? t("kb.emptyHint") : t("kb.emptyMember")} action={create} />
        ) : (
          <Table<KnowledgeBase>
            rowKey="id"
            loading={bases.loading}
            dataSource={items}
            pagination={false}
            scroll={{ x: "max-content" }}
            columns={[
              {
                title: t("common.name"),
                dataIndex: "name",
                render: (_, kb) => (
                  <div style={{ maxWidth: 360 }}>
                    <Link href={`/knowledge/base?id=${kb.id}`}>{kb.name}</Link>
                    {kb.description ? (
                      <Typography.Paragraph type="secondary" ellipsis={{ rows: 2 }} style={{ margin: 0 }}>
                        {kb.description}
                      </Typography.Paragraph>
                    ) : null}
                  </div>
                ),
              },
              {
                title: t("kb.documents"),
                key: "documents",
                render: (_, kb) => (
                  <Space size={4} wrap>
                    <span>{t("kb.docCount", { count: total(kb) })}</span>
                    {Object.entries(kb.document_counts)
                      .filter(([, count]) => count > 0)
                      .map(([status, count]) => (
                        <StatusTag key={status} status={status as DocumentStatus} t={t}>
                          {` ${count}`}
                        </StatusTag>
                      ))}
                  </Space>
                ),
              },
              {
                title: t("kb.embeddingModel"),
                key: "model",
                render: (_, kb) =>
                  kb.embedding_model_id ? (modelName.get(kb.embedding_model_id) ?? `${kb.embedding_dimension}d`) : t("common.none"),
              },
              {
                title: t("common.updated"),
                dataIndex: "updated_at",
                render: (value: string) => new Date(value).toLocaleDateString(),
              },
              {
                title: t("common.actions"),
                key: "actions",
                render: (_, kb) =>
                  kb.can_edit || manage ? (
                    <Space size={0}>
                      <Tooltip title={t("common.edit")}>
                        <Button
                          type="text"
                          icon={<EditOutlined />}
                          aria-label={`${t("common.edit")} ${kb.name}`}
                          onClick={() => setEditing(kb)}
                        />
                      </Tooltip>
                      {manage ? (
                        <>
                          <Tooltip title={t("kb.share")}>
                            <Button
                              type="text"
                              icon={<ShareAltOutlined />}
                              aria-label={`${t("kb.share")} ${kb.name}`}
                              onClick={() => setSharing(kb)}
                            />
                          </Tooltip>
                          <Tooltip title={t("common.delete")}>
                            <Button
                              type="text"
                              danger
                              icon={<DeleteOutlined />}
                              aria-label={`${t("common.delete")} ${kb.name}`}
                              onClick={() => remove(kb)}
                            />
                          </Tooltip>
                        </>
                      ) : null}
                    </Space>
                  ) : null,
              },
            ]}
          />
        )}
      </Card>
      <KbFormModal
        open={editing !== null}
        base={editing && editing !== "new" ? editing : undefined}
        onClose={() => setEditing(null)}
        onSaved={(kb) => {
          const created = editing === "new";
          setEditing(null);
          if (created) router.push(`/knowledge/base?id=${kb.id}`);
          else bases.reload();
        }}
      />
      <ShareModal base={sharing} onClose={() => setSharing(null)} />
    </>
  );
}
