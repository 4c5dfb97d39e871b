"use client";

import { Button, Popconfirm, Select, Space, Table, Tag, Typography } from "antd";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAction } from "@/ui/useAction";
import { useAsync } from "@/ui/useAsync";
import { listMembers, removeMember, ROLES, updateMember, type Member, type Role } from "./api";
import { ScrollRegion } from "./ScrollRegion";
import { OkTag, ROLE_RANK, useFormatDate } from "./shared";
import "./messages";

export function MembersTab() {
  const t = useT();
  const { me, can } = useMe();
  const formatDate = useFormatDate();
  const members = useAsync(listMembers, []);
  const manage = can("members.manage");
  const myRank = ROLE_RANK[me.tenant.role] ?? 99;
  // Nobody manages a member above their own role, nor themselves here.
  const manageable = (member: Member) => manage && member.user_id !== me.user.id && ROLE_RANK[member.role] >= myRank;
  const roleName = (role: Role) => t(`team.role.${role}` as MessageKey);

  const act = useAction(members.reload);

  if (!members.loading && !members.error && (members.data ?? []).length === 0) {
    return <EmptyState title={t("team.membersEmpty")} hint={t("team.membersEmptyHint")} />;
  }
  return (
    <>
      <ErrorAlert error={members.error} onRetry={members.reload} />
      <ScrollRegion label={t("team.tab.members")}>
      <Table<Member>
        rowKey="user_id"
        size="small"
        loading={members.loading}
        dataSource={members.data ?? []}
        pagination={false}
        columns={[
          {
            title: t("team.member"),
            key: "member",
            render: (_, member) => (
              <Space orientation="vertical" size={0}>
                <Typography.Text strong>
                  {member.display_name}
                  {member.user_id === me.user.id ? ` (${t("team.you")})` : ""}
                </Typography.Text>
                <Typography.Text type="secondary">{member.email}</Typography.Text>
              </Space>
            ),
          },
          {
            title: t("team.role"),
            key: "role",
            render: (_, member) =>
              manageable(member) ? (
                <Select<Role>
                  aria-label={`${t("team.role")}: ${member.display_name}`}
                  value={member.role}
                  style={{ width: 130 }}
                  options={ROLES.filter((role) => ROLE_RANK[role] >= myRank).map((role) => ({
                    value: role,
                    label: roleName(role),
                  }))}
                  onChange={(role) =>
                    act(
                      () => updateMember(member.user_id, { role }),
                      t("team.roleChanged", { name: member.display_name, role: roleName(role) }),
                    )
                  }
                />
              ) : (
                roleName(member.role)
              ),
          },
          {
            title: t("common.status"),
            key: "status",
            render: (_, member) =>
              member.status === "active" ? (
                <OkTag>{t("team.status.active")}</OkTag>
              ) : (
                <Tag>{t("team.status.deactivated")}</Tag>
              ),
          },
          { title: t("team.joined"), key: "joined", render: (_, member) => formatDate(member.joined_at) },
          ...(manage
            ? [
                {
                  title: t("common.actions"),
                  key: "actions",
                  render: (_: unknown, member: Member) =>
                    manageable(member) ? (
                      <Space size={4}>
                        <Button
                          size="small"
                          onClick={() =>
                            act(
                              () =>
                                updateMember(member.user_id, {
                                  status: member.status === "active" ? "deactivated" : "active",
                                }),
                              t("common.saved"),
                            )
                          }
                        >
                          {member.status === "active" ? t("team.deactivate") : t("team.reactivate")}
                        </Button>
                        <Popconfirm
                          title={t("team.removeConfirm", { name: member.display_name })}
                          okText={t("team.remove")}
                          cancelText={t("common.cancel")}
                          okButtonProps={{ danger: true }}
                          onConfirm={() => act(() => removeMember(member.user_id), t("common.deleted"))}
                        >
                          <Button size="small">
                            {t("team.remove")}
                          </Button>
                        </Popconfirm>
                      </Space>
                    ) : null,
                },
              ]
            : []),
        ]}
      />
      </ScrollRegion>
    </>
  );
}
