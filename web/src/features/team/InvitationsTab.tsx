"use client";

import { PlusOutlined } from "@ant-design/icons";
import { Alert, Button, Flex, Form, Input, InputNumber, Modal, Select, Table, Tag, Typography } from "antd";
import { useState } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { ConfirmButton } from "@/ui/ConfirmButton";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import {
  createInvitation,
  listGroups,
  listInvitations,
  revokeInvitation,
  ROLES,
  type Invitation,
  type InvitationCreated,
  type Role,
} from "./api";
import { CopyField, OkTag, ROLE_RANK, useFormatDate } from "./shared";
import "./messages";

interface Values {
  role: Role;
  email?: string;
  max_uses: number;
  expires_in_hours: number;
  group_ids: string[];
}

export function InvitationsTab() {
  const t = useT();
  const { me } = useMe();
  const formatDate = useFormatDate();
  const invitations = useAsync(listInvitations, []);
  const groups = useAsync(listGroups, []);
  const [form] = Form.useForm<Values>();
  const [creating, setCreating] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [created, setCreated] = useState<InvitationCreated | null>(null);
  const myRank = ROLE_RANK[me.tenant.role] ?? 99;
  const roleName = (role: Role) => t(`team.role.${role}` as MessageKey);

  const create = async (values: Values) => {
    setBusy(true);
    setError(null);
    try {
      const invitation = await createInvitation({
        role: values.role,
        email: values.email?.trim() || null,
        max_uses: values.max_uses,
        expires_in_hours: values.expires_in_hours,
        group_ids: values.group_ids ?? [],
      });
      setCreating(false);
      setCreated(invitation);
      invitations.reload();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  const act = useAction(invitations.reload);
  const revoke = (invitation: Invitation) => act(() => revokeInvitation(invitation.id), t("team.inv.revoked"));
  const createButton = (
    <Button
      type="primary"
      icon={<PlusOutlined />}
      onClick={() => {
        setError(null);
        setCreating(true);
      }}
    >
      {t("team.inv.create")}
    </Button>
  );
  const list = invitations.data ?? [];
  const now = Date.now();

  return (
    <>
      <ErrorAlert error={invitations.error} onRetry={invitations.reload} />
      {!invitations.loading && !invitations.error && list.length === 0 ? (
        <EmptyState title={t("team.inv.empty")} hint={t("team.inv.emptyHint")} action={createButton} />
      ) : (
        <Flex vertical gap={16}>
          <Flex justify="flex-end">{createButton}</Flex>
          <Table<Invitation>
            rowKey="id"
            size="small"
            loading={invitations.loading}
            dataSource={list}
            pagination={false}
            scroll={{ x: "max-content" }}
            columns={[
              {
                title: t("team.inv.prefix"),
                key: "prefix",
                render: (_, inv) => <Typography.Text code>{inv.code_prefix}…</Typography.Text>,
              },
              { title: t("team.role"), key: "role", render: (_, inv) => roleName(inv.role) },
              { title: t("team.email"), key: "email", render: (_, inv) => inv.email ?? "—" },
              { title: t("team.inv.uses"), key: "uses", render: (_, inv) => `${inv.uses} / ${inv.max_uses}` },
              { title: t("team.inv.expires"), key: "expires", render: (_, inv) => formatDate(inv.expires_at) },
              {
                title: t("common.status"),
                key: "status",
                render: (_, inv) =>
                  inv.revoked ? (
                    <Tag>{t("team.inv.revoked")}</Tag>
                  ) : new Date(inv.expires_at).getTime() < now ? (
                    <Tag>{t("team.inv.expired")}</Tag>
                  ) : (
                    <OkTag>{t("team.inv.active")}</OkTag>
                  ),
              },
              {
                title: t("common.actions"),
                key: "actions",
                render: (_, inv) =>
                  inv.revoked ? null : (
                    <ConfirmButton
                      label={t("team.inv.revoke")}
                      question={t("team.inv.revokeConfirm")}
                      target={inv.code_prefix}
                      onConfirm={() => revoke(inv)}
                    />
                  ),
              },
            ]}
          />
        </Flex>
      )}
      <Modal
        open={creating}
        title={t("team.inv.createTitle")}
        onCancel={() => setCreating(false)}
        onOk={() => form.submit()}
        okText={t("common.create")}
        cancelText={t("common.cancel")}
        confirmLoading={busy}
        destroyOnHidden
      >
        <ErrorAlert error={error} />
        <Form<Values>
          form={form}
          layout="vertical"
          onFinish={create}
          initialValues={{ role: "user", max_uses: 1, expires_in_hours: 168, group_ids: [] }}
        >
          <Form.Item name="role" label={t("team.role")}>
            <Select
              options={ROLES.filter((role) => ROLE_RANK[role] >= myRank).map((role) => ({ value: role, label: roleName(role) }))}
            />
          </Form.Item>
          <Form.Item name="email" label={t("team.inv.email")} rules={[{ type: "email", message: t("auth.invalidEmail") }]}>
            <Input type="email" autoComplete="off" />
          </Form.Item>
          <Flex gap={12} wrap>
            <Form.Item name="max_uses" label={t("team.inv.maxUses")}>
              <InputNumber min={1} max={10_000} />
            </Form.Item>
            <Form.Item name="expires_in_hours" label={t("team.inv.expiresIn")}>
              <InputNumber min={1} max={24 * 90} />
            </Form.Item>
          </Flex>
          {(groups.data ?? []).length > 0 ? (
            <Form.Item name="group_ids" label={t("team.inv.groups")}>
              <Select mode="multiple" options={(groups.data ?? []).map((g) => ({ value: g.id, label: g.name }))} />
            </Form.Item>
          ) : null}
        </Form>
      </Modal>
      <Modal
        open={created !== null}
        title={t("team.inv.createdTitle")}
        onCancel={() => setCreated(null)}
        footer={
          <Button type="primary" onClick={() => setCreated(null)}>
            {t("common.close")}
          </Button>
        }
        destroyOnHidden
      >
        {created ? (
          <>
            <Alert type="warning" showIcon title={t("team.inv.onceWarning")} style={{ marginBottom: 16 }} />
            <CopyField label={t("team.inv.code")} value={created.code} />
            <CopyField
              label={t("team.inv.link")}
              value={`${window.location.origin}/invite?code=${encodeURIComponent(created.code)}`}
            />
          </>
        ) : null}
      </Modal>
    </>
  );
}
