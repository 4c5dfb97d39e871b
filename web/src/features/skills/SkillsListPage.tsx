"use client";

import { DeleteOutlined, RobotOutlined, UploadOutlined } from "@ant-design/icons";
import { Alert, App, Button, Flex, Grid, Modal, Popconfirm, Space, Table, Tag, Tooltip, Typography } from "antd";
import Link from "next/link";
import { useState } from "react";
import { ApiError } from "@/api/problem";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { createSkill, deleteSkill, listGroups, listShares, listSkills, type Skill, type SharePermission } from "./api";
import { DraftSkillDrawer } from "./DraftSkillDrawer";
import { SkillUploader } from "./SkillUploader";
import "./messages";

interface Listed {
  skills: Skill[];
  /** Each skill's groups (name and access), when the caller may read them. */
  shares: Map<string, { name: string; permission: SharePermission }[]>;
}

async function loadList(): Promise<Listed> {
  const skills = await listSkills();
  const [groups, ...shares] = await Promise.allSettled([listGroups(), ...skills.map((skill) => listShares(skill.id))]);
  const names = new Map(groups.status === "fulfilled" ? (groups.value as { items: { id: string; name: string }[] }).items.map((g) => [g.id, g.name]) : []);
  const map = new Map<string, { name: string; permission: SharePermission }[]>();
  skills.forEach((skill, index) => {
    const result = shares[index];
    if (result?.status === "fulfilled") {
      const list = result.value as { group_id: string; permission: SharePermission }[];
      map.set(
        skill.id,
        list.map((share) => ({ name: names.get(share.group_id) ?? share.group_id.slice(0, 8), permission: share.permission })),
      );
    }
  });
  return { skills, shares: map };
}

/** A delete refused because agents use the skill: which ones, from the problem's `used_by`. */
export function usedByOf(error: unknown): string[] | null {
  if (!(error instanceof ApiError) || error.code !== "skill_in_use") return null;
  const users = error.problem.used_by;
  return Array.isArray(users) ? users.map(String) : [];
}

export function InUseAlert({ name, users, onClose }: { name: string; users: string[]; onClose: () => void }) {
  const t = useT();
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      data-testid="skill-in-use"
      title={t("skills.inUse", { name })}
      description={users.length ? t("skills.usedBy", { names: users.join(", ") }) : undefined}
      closable={{ onClose, "aria-label": t("common.close") }}
      style={{ marginBottom: 16 }}
    />
  );
}

/** `/skills`: the skills the caller may use, with upload (managers) and delete. */
export function SkillsListPage() {
  const t = useT();
  const { can } = useMe();
  const { message } = App.useApp();
  const screens = Grid.useBreakpoint();
  const state = useAsync(loadList, []);
  const [uploading, setUploading] = useState(false);
  const [drafting, setDrafting] = useState(false);
  const [inUse, setInUse] = useState<{ name: string; users: string[] } | null>(null);
  const manager = can("tools.manage");
  const skills = state.data?.skills ?? [];

  const remove = async (skill: Skill) => {
    setInUse(null);
    try {
      await deleteSkill(skill.id);
      message.success(t("common.deleted"));
      state.reload();
    } catch (error) {
      const users = usedByOf(error);
      if (users) setInUse({ name: skill.name, users });
      else message.error(errorMessage(error, t));
    }
  };

  const uploadButton = manager ? (
    <Flex gap={8} wrap justify="center">
      <Button type="primary" icon={<UploadOutlined />} onClick={() => setUploading(true)}>
        {t("skills.upload")}
      </Button>
      <Button icon={<RobotOutlined />} onClick={() => setDrafting(true)}>
        {t("skills.draft.open")}
      </Button>
    </Flex>
  ) : null;

  return (
    <>
      <Typography.Title level={2} style={{ marginTop: 0 }}>
        {t("skills.title")}
      </Typography.Title>
      <Typography.Paragraph type="secondary">{t("skills.intro")}</Typography.Paragraph>
      {!manager ? <Alert type="info" showIcon title={t("skills.readOnly")} style={{ marginBottom: 16 }} /> : null}
      <ErrorAlert error={state.error} onRetry={state.reload} />
      {inUse ? <InUseAlert name={inUse.name} users={inUse.users} onClose={() => setInUse(null)} /> : null}
      {!state.loading && !state.error && skills.length === 0 ? (
        <EmptyState title={t("skills.emptyTitle")} hint={t("skills.emptyHint")} action={uploadButton} />
      ) : (
        <Flex vertical gap={16}>
          {uploadButton ? <Flex justify="flex-end">{uploadButton}</Flex> : null}
          <Table<Skill>
            rowKey="id"
            size="small"
            loading={state.loading && !state.data}
            dataSource={skills}
            pagination={skills.length > 50 ? { pageSize: 50 } : false}
            scroll={{ x: "max-content" }}
            columns={[
              {
                title: t("common.name"),
                key: "name",
                render: (_, skill) => (
                  <Link href={`/skills?id=${skill.id}`} aria-label={t("skills.open", { name: skill.name })}>
                    {skill.name}
                  </Link>
                ),
              },
              ...(screens.md
                ? [
                    {
                      title: t("skills.description"),
                      key: "description",
                      render: (_: unknown, skill: Skill) => (
                        <Typography.Paragraph style={{ margin: 0, maxWidth: 420, whiteSpace: "normal" }} ellipsis={{ rows: 2 }}>
                          {skill.description}
                        </Typography.Paragraph>
                      ),
                    },
                  ]
                : []),
              {
                title: t("skills.latest"),
                key: "version",
                render: (_, skill) => <Tag>{t("skills.version", { number: skill.latest_version })}</Tag>,
              },
              {
                title: t("skills.sharedWith"),
                key: "shares",
                render: (_, skill) => {
                  const shares = state.data?.shares.get(skill.id);
                  if (!shares) return "—";
                  if (!shares.length) return <Typography.Text type="secondary">{t("skills.notShared")}</Typography.Text>;
                  return (
                    <Space size={4} wrap>
                      {shares.map((share) => (
                        <Tag key={share.name}>
                          {share.name} · {t(share.permission === "edit" ? "skills.share.edit" : "skills.share.read")}
                        </Tag>
                      ))}
                    </Space>
                  );
                },
              },
              ...(manager
                ? [
                    {
                      title: t("common.actions"),
                      key: "actions",
                      render: (_: unknown, skill: Skill) => (
                        <Popconfirm
                          title={t("skills.deleteConfirm", { name: skill.name })}
                          okText={t("common.delete")}
                          cancelText={t("common.cancel")}
                          okButtonProps={{ danger: true }}
                          onConfirm={() => remove(skill)}
                        >
                          <Tooltip title={t("common.delete")}>
                            <Button size="small" danger icon={<DeleteOutlined />} aria-label={`${t("common.delete")} ${skill.name}`} />
                          </Tooltip>
                        </Popconfirm>
                      ),
                    },
                  ]
                : []),
            ]}
          />
        </Flex>
      )}
      <DraftSkillDrawer open={drafting} onClose={() => setDrafting(false)} />
      <Modal
        open={uploading}
        title={t("skills.uploadTitle")}
        onCancel={() => setUploading(false)}
        footer={null}
        destroyOnHidden
      >
        <SkillUploader
          send={async (upload) => {
            const skill = await createSkill(upload);
            setUploading(false);
            message.success(t("skills.uploaded", { name: skill.name }));
            state.reload();
          }}
        />
      </Modal>
    </>
  );
}
