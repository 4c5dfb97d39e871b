"use client";

import { DeleteOutlined, EditOutlined, PlusOutlined } from "@ant-design/icons";
import { App, Button, Card, Flex, Form, Input, Modal, Popconfirm, Select, Space, Tag, Typography } from "antd";
import { useLayoutEffect, useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import {
  addGroupMember,
  createGroup,
  deleteGroup,
  listGroups,
  listMembers,
  removeGroupMember,
  updateGroup,
  type Group,
} from "./api";
import "./messages";

export function GroupsTab() {
  const t = useT();
  const { can } = useMe();
  const manage = can("groups.manage");
  const groups = useAsync(listGroups, []);
  const members = useAsync(listMembers, []);
  const [editing, setEditing] = useState<Group | "new" | null>(null);

  const act = useAction(groups.reload);
  const nameOf = (userId: string) => members.data?.find((m) => m.user_id === userId)?.display_name ?? userId.slice(0, 8);
  const createButton = manage ? (
    <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing("new")}>
      {t("team.groups.create")}
    </Button>
  ) : null;
  const list = groups.data ?? [];

  return (
    <>
      <ErrorAlert error={groups.error} onRetry={groups.reload} />
      {!groups.loading && !groups.error && list.length === 0 ? (
        <EmptyState title={t("team.groups.empty")} hint={t("team.groups.emptyHint")} action={createButton} />
      ) : (
        <Flex vertical gap={16}>
          <Flex justify="flex-end">{createButton}</Flex>
          {list.map((group) => (
            <Card
              key={group.id}
              size="small"
              title={<h3 style={{ margin: 0, fontSize: 16 }}>{group.name}</h3>}
              extra={
                manage ? (
                  <Space size={4}>
                    <Button
                      size="small"
                      icon={<EditOutlined />}
                      aria-label={`${t("common.rename")} ${group.name}`}
                      onClick={() => setEditing(group)}
                    />
                    <Popconfirm
                      title={t("team.groups.deleteConfirm", { name: group.name })}
                      okText={t("common.delete")}
                      cancelText={t("common.cancel")}
                      okButtonProps={{ danger: true }}
                      onConfirm={() => act(() => deleteGroup(group.id), t("common.deleted"))}
                    >
                      <Button size="small" danger icon={<DeleteOutlined />} aria-label={`${t("common.delete")} ${group.name}`} />
                    </Popconfirm>
                  </Space>
                ) : null
              }
            >
              {group.description ? <Typography.Paragraph>{group.description}</Typography.Paragraph> : null}
              <Typography.Text type="secondary">{t("team.groups.memberCount", { count: group.member_ids.length })}</Typography.Text>
              <Flex wrap gap={6} style={{ margin: "8px 0" }}>
                {group.member_ids.length === 0 ? <Typography.Text>{t("team.groups.noMembers")}</Typography.Text> : null}
                {group.member_ids.map((userId) =>
                  manage ? (
                    <Tag
                      key={userId}
                      closable
                      closeIcon={<span aria-label={t("team.groups.removeMember", { name: nameOf(userId) })}>×</span>}
                      onClose={(event) => {
                        event.preventDefault();
                        void act(() => removeGroupMember(group.id, userId));
                      }}
                    >
                      {nameOf(userId)}
                    </Tag>
                  ) : (
                    <Tag key={userId}>{nameOf(userId)}</Tag>
                  ),
                )}
              </Flex>
              {manage ? (
                <Flex align="center" gap={8} wrap>
                <label htmlFor={`add-${group.id}`}>{t("team.groups.addMember")}</label>
                <Select
                  id={`add-${group.id}`}
                  aria-label={`${t("team.groups.addMember")}: ${group.name}`}
                  value={null}
                  style={{ flex: "1 1 200px", maxWidth: 320 }}
                  showSearch={{ optionFilterProp: "label" }}
                  options={(members.data ?? [])
                    .filter((member) => !group.member_ids.includes(member.user_id))
                    .map((member) => ({ value: member.user_id, label: `${member.display_name} (${member.email})` }))}
                  onChange={(userId: string) => act(() => addGroupMember(group.id, userId))}
                />
                </Flex>
              ) : null}
            </Card>
          ))}
        </Flex>
      )}
      <GroupForm
        group={editing}
        onClose={() => setEditing(null)}
        onSaved={() => {
          setEditing(null);
          groups.reload();
        }}
      />
    </>
  );
}

function GroupForm({ group, onClose, onSaved }: { group: Group | "new" | null; onClose: () => void; onSaved: () => void }) {
  const t = useT();
  const { message } = App.useApp();
  const [form] = Form.useForm<{ name: string; description: string }>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const existing = group && group !== "new" ? group : null;
  // Before the first paint of the opened dialog: typing that lands right away is not undone by the reset.
  useLayoutEffect(() => {
    if (group === null) return;
    setError(null);
    form.setFieldsValue({ name: existing?.name ?? "", description: existing?.description ?? "" });
  }, [group, existing, form]);
  const save = async (values: { name: string; description: string }) => {
    setBusy(true);
    setError(null);
    try {
      if (existing) await updateGroup(existing.id, { name: values.name, description: values.description ?? "" });
      else await createGroup({ name: values.name, description: values.description ?? "" });
      message.success(t("common.saved"));
      onSaved();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal
      open={group !== null}
      title={existing ? t("team.groups.renameTitle", { name: existing.name }) : t("team.groups.createTitle")}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={t("common.save")}
      cancelText={t("common.cancel")}
      confirmLoading={busy}
      destroyOnHidden
    >
      <ErrorAlert error={error} />
      <Form form={form} layout="vertical" onFinish={save}>
        <Form.Item name="name" label={t("common.name")} rules={[{ required: true, whitespace: true, message: t("auth.required") }]}>
          <Input maxLength={80} autoComplete="off" />
        </Form.Item>
        <Form.Item name="description" label={t("common.description")}>
          <Input.TextArea maxLength={500} autoSize={{ minRows: 2 }} />
        </Form.Item>
      </Form>
    </Modal>
  );
}
