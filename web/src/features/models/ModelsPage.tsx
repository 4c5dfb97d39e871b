"use client";

import { CheckCircleFilled, CheckCircleOutlined, CloseCircleFilled, DeleteOutlined, EditOutlined, PlusOutlined, StarOutlined } from "@ant-design/icons";
import { Alert, App, Button, Card, Flex, Popconfirm, Space, Table, Tabs, Tag, theme, Tooltip, Typography } from "antd";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import { checkModel, deleteModel, KINDS, listModels, updateModel, type Model } from "./api";
import { checkErrorText } from "./checkText";
import { CheckAlert, ModelForm } from "./ModelForm";
import { UsagePanel } from "./UsagePanel";
import "./messages";

/** `/models?tab=models|usage`: the tenant's models by kind, and their usage. */
export function ModelsPage() {
  const t = useT();
  const { can } = useMe();
  const router = useRouter();
  const pathname = usePathname();
  const tab = useSearchParams().get("tab") === "usage" && can("models.manage") ? "usage" : "models";
  return (
    <>
      <Typography.Title level={2} style={{ marginTop: 0 }}>
        {t("models.title")}
      </Typography.Title>
      {can("models.manage") ? (
        <Tabs
          activeKey={tab}
          onChange={(key) => router.replace(`${pathname}?tab=${key}`)}
          items={[
            { key: "models", label: t("models.tab.models"), children: <ModelList /> },
            { key: "usage", label: t("models.tab.usage"), children: <UsagePanel /> },
          ]}
        />
      ) : (
        <ModelList />
      )}
    </>
  );
}

function ModelList() {
  const t = useT();
  const { can } = useMe();
  const { message } = App.useApp();
  const manage = can("models.manage");
  const models = useAsync(listModels, []);
  const [editing, setEditing] = useState<Model | null>(null);
  const [formOpen, setFormOpen] = useState(false);
  const [checking, setChecking] = useState<string | null>(null);
  const [lastCheck, setLastCheck] = useState<{ id: string; result: Awaited<ReturnType<typeof checkModel>> } | null>(null);

  const open = (model: Model | null) => {
    setEditing(model);
    setFormOpen(true);
  };
  const runCheck = async (model: Model) => {
    setChecking(model.id);
    try {
      const result = await checkModel(model.id);
      setLastCheck({ id: model.id, result });
      models.reload();
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setChecking(null);
    }
  };
  const act = useAction(models.reload);
  const makeDefault = (model: Model) =>
    act(() => updateModel(model.id, { is_default: true }), t("models.defaultSet", { name: model.name }));
  const remove = (model: Model) => act(() => deleteModel(model.id), t("common.deleted"));

  const addButton = manage ? (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => open(null)}>
      {t("models.add")}
    </Button>
  ) : null;

  const list = models.data ?? [];
  return (
    <>
      <ErrorAlert error={models.error} onRetry={models.reload} />
      {manage ? null : <Alert type="info" showIcon title={t("models.readOnly")} style={{ marginBottom: 16 }} />}
      {!models.loading && !models.error && list.length === 0 ? (
        <EmptyState title={t("models.emptyTitle")} hint={t("models.emptyHint")} action={addButton} />
      ) : (
        <Flex vertical gap={16}>
          <Flex justify="flex-end">{addButton}</Flex>
          {KINDS.map((kind) => {
            const rows = list.filter((model) => model.kind === kind);
            if (rows.length === 0 && (kind === "rerank" || kind === "vlm" || kind === "stt")) return null;
            return (
              <Card
                key={kind}
                size="small"
                title={<h3 style={{ margin: 0, fontSize: 16 }}>{t(`models.kind.plural.${kind}` as MessageKey)}</h3>}
              >
                {lastCheck && rows.some((model) => model.id === lastCheck.id) ? (
                  <div style={{ marginBottom: 12 }}>
                    <CheckAlert
                      result={lastCheck.result}
                      prefix={rows.find((model) => model.id === lastCheck.id)?.name}
                      onClose={() => setLastCheck(null)}
                    />
                  </div>
                ) : null}
                <Table<Model>
                  rowKey="id"
                  size="small"
                  loading={models.loading}
                  dataSource={rows}
                  pagination={false}
                  scroll={{ x: "max-content" }}
                  locale={{
                    emptyText: (
                      <Typography.Text type="secondary">
                        {t("models.emptyKind", { kind: t(`models.kind.plural.${kind}` as MessageKey) })}
                      </Typography.Text>
                    ),
                  }}
                  columns={[
                    {
                      title: t("common.name"),
                      key: "name",
                      render: (_, model) => (
                        <Space size={4} wrap>
                          <Typography.Text strong>{model.name}</Typography.Text>
                          {model.is_default ? <Tag color="blue">{t("models.default")}</Tag> : null}
                        </Space>
                      ),
                    },
                    {
                      title: t("models.model"),
                      key: "model",
                      render: (_, model) => (
                        <Space orientation="vertical" size={0}>
                          <Typography.Text code>{model.model}</Typography.Text>
                          <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                            {model.provider === "local"
                              ? t("models.provider.local")
                              : `${model.endpoints.map((e) => e.base_url).join(", ")} · ${
                                  model.endpoints.every((e) => e.has_api_key) ? t("models.apiKeySaved") : t("models.noApiKey")
                                }`}
                          </Typography.Text>
                        </Space>
                      ),
                    },
                    {
                      title: t("models.status"),
                      key: "status",
                      render: (_, model) => <CheckStatus model={model} />,
                    },
                    ...(manage
                      ? [
                          {
                            title: t("common.actions"),
                            key: "actions",
                            render: (_: unknown, model: Model) => (
                              <Space size={4} wrap={false}>
                                <Button
                                  size="small"
                                  icon={<CheckCircleOutlined />}
                                  loading={checking === model.id}
                                  onClick={() => runCheck(model)}
                                  aria-label={`${t("models.check")} ${model.name}`}
                                >
                                  {t("models.check")}
                                </Button>
                                {model.is_default ? null : (
                                  <Tooltip title={t("models.setDefault")}>
                                    <Button
                                      size="small"
                                      icon={<StarOutlined />}
                                      onClick={() => makeDefault(model)}
                                      aria-label={`${t("models.setDefault")}: ${model.name}`}
                                    />
                                  </Tooltip>
                                )}
                                <Tooltip title={t("common.edit")}>
                                  <Button
                                    size="small"
                                    icon={<EditOutlined />}
                                    onClick={() => open(model)}
                                    aria-label={`${t("common.edit")} ${model.name}`}
                                  />
                                </Tooltip>
                                <Popconfirm
                                  title={t("models.deleteConfirm", { name: model.name })}
                                  okText={t("common.delete")}
                                  cancelText={t("common.cancel")}
                                  okButtonProps={{ danger: true }}
                                  onConfirm={() => remove(model)}
                                >
                                  <Button
                                    size="small"
                                    danger
                                    icon={<DeleteOutlined />}
                                    aria-label={`${t("common.delete")} ${model.name}`}
                                  />
                                </Popconfirm>
                              </Space>
                            ),
                          },
                        ]
                      : []),
                  ]}
                />
              </Card>
            );
          })}
        </Flex>
      )}
      <ModelForm
        open={formOpen}
        model={editing}
        onClose={() => setFormOpen(false)}
        onSaved={() => {
          setFormOpen(false);
          models.reload();
        }}
      />
    </>
  );
}

function CheckStatus({ model }: { model: Model }) {
  const t = useT();
  const { token } = theme.useToken();
  const { status, error, latency_ms } = model.check;
  if (status === "ok") {
    return (
      <Tag icon={<CheckCircleFilled style={{ color: token.colorSuccess }} />}>
        {t("models.status.ok")}
        {latency_ms != null ? ` · ${Math.round(latency_ms)} ms` : ""}
      </Tag>
    );
  }
  if (status === "error") {
    return (
      <Space orientation="vertical" size={0} style={{ maxWidth: 320 }}>
        <Tag icon={<CloseCircleFilled style={{ color: token.colorError }} />}>{t("models.status.error")}</Tag>
        <Typography.Text style={{ fontSize: 12, whiteSpace: "normal" }}>
          {checkErrorText(error, t)}
        </Typography.Text>
      </Space>
    );
  }
  return <Tag>{t("models.status.unknown")}</Tag>;
}
