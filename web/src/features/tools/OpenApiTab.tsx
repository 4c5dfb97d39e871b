"use client";

import { DeleteOutlined, EditOutlined, PlusOutlined } from "@ant-design/icons";
import { Button, Flex, Popconfirm, Space, Table, Tag, Tooltip, Typography } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import { OpenApiImportModal } from "./OpenApiImportModal";
import { deleteImport, listImports, type OpenApiImport } from "./openapiApi";
import { SchemaView } from "./SchemaView";
import "./messages";

/** The tenant's OpenAPI imports: each with its chosen operations (tools) and their arguments; import, edit, delete. */
export function OpenApiTab() {
  const t = useT();
  const imports = useAsync(listImports, []);
  const [editing, setEditing] = useState<OpenApiImport | null>(null);
  const [open, setOpen] = useState(false);
  const act = useAction(imports.reload);
  const show = (item: OpenApiImport | null) => {
    setEditing(item);
    setOpen(true);
  };
  const addButton = (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => show(null)}>
      {t("openapi.add")}
    </Button>
  );
  const list = imports.data ?? [];
  return (
    <>
      <ErrorAlert error={imports.error} onRetry={imports.reload} />
      {!imports.loading && !imports.error && list.length === 0 ? (
        <EmptyState title={t("openapi.emptyTitle")} hint={t("openapi.emptyHint")} action={addButton} />
      ) : (
        <Flex vertical gap={16}>
          <Flex justify="flex-end">{addButton}</Flex>
          <Table<OpenApiImport>
            rowKey="id"
            size="small"
            loading={imports.loading}
            dataSource={list}
            pagination={false}
            scroll={{ x: "max-content" }}
            expandable={{
              expandedRowRender: (item) => (
                <ul style={{ listStyle: "none", margin: 0, padding: 0 }} aria-label={t("tools.title")}>
                  {item.operations
                    .filter((op) => op.selected)
                    .map((op) => (
                      <li key={op.tool_name} style={{ marginBottom: 12 }} data-testid={`openapi-tool-${op.tool}`}>
                        <Space wrap size={4}>
                          <Typography.Text code>{op.tool}</Typography.Text>
                          <Tag>{op.method}</Tag>
                          <Typography.Text type="secondary" style={{ wordBreak: "break-all" }}>
                            {op.path}
                          </Typography.Text>
                        </Space>
                        <div>
                          <Typography.Text>{op.description}</Typography.Text>
                        </div>
                        <SchemaView schema={op.parameters} />
                      </li>
                    ))}
                </ul>
              ),
            }}
            columns={[
              {
                title: t("common.name"),
                key: "name",
                render: (_, item) => (
                  <Space orientation="vertical" size={0}>
                    <Typography.Text strong>{item.name}</Typography.Text>
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {item.title}
                      {item.document_version ? ` ${item.document_version}` : ""}
                    </Typography.Text>
                  </Space>
                ),
              },
              {
                title: t("openapi.baseUrl"),
                key: "base_url",
                render: (_, item) => (
                  <Space orientation="vertical" size={0}>
                    <Typography.Text code style={{ wordBreak: "break-all" }}>
                      {item.base_url}
                    </Typography.Text>
                    <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                      {t(`openapi.auth.${item.auth.kind}`)}
                      {item.auth.has_secret ? ` · ${t("openapi.auth.saved")}` : ""}
                    </Typography.Text>
                  </Space>
                ),
              },
              {
                title: t("mcp.tools"),
                key: "tools",
                render: (_, item) => t("tools.toolsCount", { count: item.operations.filter((op) => op.selected).length }),
              },
              {
                title: t("common.actions"),
                key: "actions",
                render: (_, item) => (
                  <Space size={4} wrap={false}>
                    <Tooltip title={t("common.edit")}>
                      <Button size="small" icon={<EditOutlined />} onClick={() => show(item)} aria-label={`${t("common.edit")} ${item.name}`} />
                    </Tooltip>
                    <Popconfirm
                      title={t("openapi.deleteConfirm", { name: item.name })}
                      okText={t("common.delete")}
                      cancelText={t("common.cancel")}
                      okButtonProps={{ danger: true }}
                      onConfirm={() => act(() => deleteImport(item.id), t("common.deleted"))}
                    >
                      <Button size="small" danger icon={<DeleteOutlined />} aria-label={`${t("common.delete")} ${item.name}`} />
                    </Popconfirm>
                  </Space>
                ),
              },
            ]}
          />
        </Flex>
      )}
      <OpenApiImportModal
        open={open}
        existing={editing}
        onClose={() => setOpen(false)}
        onSaved={() => {
          setOpen(false);
          imports.reload();
        }}
      />
    </>
  );
}
