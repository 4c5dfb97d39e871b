"use client";

import { ArrowLeftOutlined, DeleteOutlined, DownloadOutlined, UploadOutlined } from "@ant-design/icons";
import {
  Alert,
  App,
  Button,
  Card,
  Col,
  Descriptions,
  Flex,
  Input,
  Modal,
  Popconfirm,
  Row,
  Spin,
  Table,
  Tabs,
  Tag,
  Typography,
} from "antd";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { Markdown } from "@/features/chat/Markdown";
import { useMe } from "@/features/auth/SessionProvider";
import { useLocale, useT } from "@/i18n";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import { GroupSharing } from "@/ui/GroupSharing";
import { useAsync } from "@/ui/useAsync";
import {
  deleteShare,
  deleteSkill,
  exportSkill,
  formatBytes,
  listGroups,
  listShares,
  listVersions,
  manifestBody,
  putShare,
  readFile,
  readSkill,
  uploadVersion,
  writeFile,
  type SkillDetail,
  type SkillVersion,
} from "./api";
import { SkillFiles } from "./SkillFiles";
import { InUseAlert, usedByOf } from "./SkillsListPage";
import { Refusal, SkillUploader } from "./SkillUploader";
import "./messages";

const TABS = ["manifest", "files", "versions", "sharing"] as const;
type Tab = (typeof TABS)[number];

/** `/skills?id=<skill>&tab=files|versions|sharing&version=<n>`: one skill, its SKILL.md, files, versions, sharing. */
export function SkillPage({ id }: { id: string }) {
  const t = useT();
  const { can } = useMe();
  const { message } = App.useApp();
  const router = useRouter();
  const params = useSearchParams();
  const tab: Tab = (TABS as readonly string[]).includes(params.get("tab") ?? "") ? (params.get("tab") as Tab) : "manifest";
  const asked = Number(params.get("version")) || undefined;
  const skill = useAsync(() => readSkill(id, asked), [id, asked]);
  const versions = useAsync(() => listVersions(id), [id]);
  const [uploading, setUploading] = useState(false);
  const [exporting, setExporting] = useState(false);
  const [inUse, setInUse] = useState<string[] | null>(null);
  const manager = can("tools.manage");

  const go = (next: { tab?: Tab; version?: number | null }) => {
    const query = new URLSearchParams({ id });
    const nextTab = next.tab ?? tab;
    if (nextTab !== "manifest") query.set("tab", nextTab);
    const version = next.version === undefined ? asked : next.version;
    if (version) query.set("version", String(version));
    router.replace(`/skills?${query.toString()}`, { scroll: false });
  };
  const saved = (next: SkillDetail) => {
    if (asked) go({ version: null });
    skill.setData(next);
    versions.reload();
  };

  const back = (
    <Link href="/skills">
      <ArrowLeftOutlined /> {t("skills.back")}
    </Link>
  );
  if (skill.error) {
    return (
      <>
        <div style={{ marginBottom: 12 }}>{back}</div>
        <ErrorAlert error={skill.error} onRetry={skill.reload} />
      </>
    );
  }
  const data = skill.data;
  if (!data) return <Spin style={{ display: "block", margin: "20vh auto" }} />;
  const latest = data.version === data.latest_version;
  const editable = data.can_edit && latest;

  const doExport = async () => {
    setExporting(true);
    try {
      await exportSkill(data.id, data.name, latest ? undefined : data.version);
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setExporting(false);
    }
  };
  const remove = async () => {
    setInUse(null);
    try {
      await deleteSkill(data.id);
      message.success(t("common.deleted"));
      router.push("/skills");
    } catch (error) {
      const users = usedByOf(error);
      if (users) setInUse(users);
      else message.error(errorMessage(error, t));
    }
  };

  return (
    <>
      <div style={{ marginBottom: 8 }}>{back}</div>
      <Flex justify="space-between" align="flex-start" wrap gap={12} style={{ marginBottom: 8 }}>
        <div style={{ minWidth: 0 }}>
          <Typography.Title level={2} style={{ margin: 0, overflowWrap: "anywhere" }}>
            {data.name} <Tag style={{ verticalAlign: "middle" }}>{t("skills.version", { number: data.version })}</Tag>
          </Typography.Title>
          <Typography.Paragraph type="secondary" style={{ marginBottom: 0 }}>
            {data.description}
          </Typography.Paragraph>
        </div>
        <Flex gap={8} wrap>
          <Button icon={<DownloadOutlined />} loading={exporting} onClick={doExport}>
            {latest ? t("skills.export") : t("skills.exportVersion", { number: data.version })}
          </Button>
          {data.can_edit ? (
            <Button icon={<UploadOutlined />} onClick={() => setUploading(true)}>
              {t("skills.uploadVersion")}
            </Button>
          ) : null}
          {manager ? (
            <Popconfirm
              title={t("skills.deleteConfirm", { name: data.name })}
              okText={t("common.delete")}
              cancelText={t("common.cancel")}
              okButtonProps={{ danger: true }}
              onConfirm={remove}
            >
              <Button icon={<DeleteOutlined />}>
                {t("common.delete")}
              </Button>
            </Popconfirm>
          ) : null}
        </Flex>
      </Flex>
      {inUse ? <InUseAlert name={data.name} users={inUse} onClose={() => setInUse(null)} /> : null}
      {!latest ? (
        <Alert
          type="info"
          showIcon
          title={t("skills.versions.viewing", { number: data.version })}
          action={
            <Button size="small" onClick={() => go({ version: null })}>
              {t("skills.versions.toLatest")}
            </Button>
          }
          style={{ margin: "12px 0" }}
        />
      ) : null}
      {!data.can_edit ? <Alert type="info" showIcon title={t("skills.readOnlySkill")} style={{ margin: "12px 0" }} /> : null}
      <Tabs
        activeKey={tab}
        onChange={(key) => go({ tab: key as Tab })}
        items={[
          { key: "manifest", label: t("skills.tab.manifest"), children: <ManifestEditor skill={data} editable={editable} onSaved={saved} /> },
          { key: "files", label: t("skills.tab.files"), children: <SkillFiles skill={data} editable={editable} onSaved={saved} /> },
          {
            key: "versions",
            label: t("skills.tab.versions"),
            children: (
              <VersionsTable
                versions={versions.data}
                error={versions.error}
                onRetry={versions.reload}
                current={data.version}
                onView={(number) => go({ tab: "manifest", version: number === data.latest_version ? null : number })}
              />
            ),
          },
          ...(manager ? [{ key: "sharing", label: t("skills.tab.sharing"), children: <SharingPanel skillId={data.id} /> }] : []),
        ]}
      />
      <Modal open={uploading} title={t("skills.uploadVersion")} onCancel={() => setUploading(false)} footer={null} destroyOnHidden>
        <NewVersion
          skillId={data.id}
          onSaved={(next) => {
            setUploading(false);
            message.success(t("skills.savedVersion", { number: next.version }));
            saved(next);
          }}
        />
      </Modal>
    </>
  );
}

function NewVersion({ skillId, onSaved }: { skillId: string; onSaved: (next: SkillDetail) => void }) {
  const t = useT();
  const [note, setNote] = useState("");
  return (
    <Flex vertical gap={12}>
      <Input aria-label={t("skills.note")} placeholder={t("skills.note")} value={note} maxLength={500} onChange={(e) => setNote(e.target.value)} />
      <SkillUploader send={async (upload) => onSaved(await uploadVersion(skillId, upload, note))} />
    </Flex>
  );
}

/** The front matter's fields as the server read them. */
function Fields({ skill }: { skill: SkillDetail }) {
  const t = useT();
  const extra = Object.entries(skill.extra ?? {});
  return (
    <Descriptions
      size="small"
      bordered
      column={1}
      title={t("skills.fields")}
      items={[
        { key: "name", label: t("skills.field.name"), children: <Typography.Text code>{skill.name}</Typography.Text> },
        { key: "description", label: t("skills.field.description"), children: skill.description },
        {
          key: "tools",
          label: t("skills.field.allowedTools"),
          children: skill.allowed_tools.length ? (
            <Flex gap={4} wrap>
              {skill.allowed_tools.map((tool) => (
                <Tag key={tool}>{tool}</Tag>
              ))}
            </Flex>
          ) : (
            t("skills.anyTool")
          ),
        },
        { key: "network", label: t("skills.field.network"), children: skill.network ? t("skills.network.yes") : t("skills.network.no") },
        ...(extra.length
          ? [
              {
                key: "extra",
                label: t("skills.field.extra"),
                children: (
                  <Typography.Text code style={{ whiteSpace: "pre-wrap" }}>
                    {extra.map(([key, value]) => `${key}: ${JSON.stringify(value)}`).join("\n")}
                  </Typography.Text>
                ),
              },
            ]
          : []),
      ]}
    />
  );
}

/** SKILL.md as text beside its rendered instructions; saving writes the file: the next version. */
function ManifestEditor({ skill, editable, onSaved }: { skill: SkillDetail; editable: boolean; onSaved: (next: SkillDetail) => void }) {
  const t = useT();
  const { message } = App.useApp();
  const file = useAsync(() => readFile(skill.id, "SKILL.md", skill.version), [skill.id, skill.version]);
  const [text, setText] = useState("");
  const [note, setNote] = useState("");
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    if (file.data) setText(file.data.content);
  }, [file.data]);
  const original = file.data?.content ?? "";
  const changed = text !== original;
  const save = async () => {
    setSaving(true);
    setError(null);
    try {
      const next = await writeFile(skill.id, "SKILL.md", text, note);
      setNote("");
      message.success(t("skills.savedVersion", { number: next.version }));
      onSaved(next);
    } catch (caught) {
      setError(caught);
    } finally {
      setSaving(false);
    }
  };
  if (file.error) return <ErrorAlert error={file.error} onRetry={file.reload} />;
  if (!file.data) return <Spin />;
  const body = manifestBody(text);
  return (
    <Flex vertical gap={16}>
      <Fields skill={skill} />
      <Row gutter={[16, 16]}>
        <Col xs={24} lg={12}>
          <Flex vertical gap={8}>
            <label htmlFor="skill-md" style={{ fontWeight: 600 }}>
              {t("skills.editor")}
            </label>
            <Typography.Text type="secondary" id="skill-md-hint">
              {t("skills.editorHint")}
            </Typography.Text>
            <Input.TextArea
              id="skill-md"
              aria-describedby="skill-md-hint"
              value={text}
              readOnly={!editable}
              onChange={(event) => setText(event.target.value)}
              onKeyDown={(event) => {
                if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && editable && changed) void save();
              }}
              autoSize={{ minRows: 14, maxRows: 40 }}
              spellCheck={false}
              style={{ fontFamily: "monospace", fontSize: 13 }}
            />
            <Refusal error={error} onClose={() => setError(null)} />
            {editable ? (
              <Flex gap={8} wrap align="center">
                <Input
                  aria-label={t("skills.note")}
                  placeholder={t("skills.note")}
                  value={note}
                  maxLength={500}
                  onChange={(event) => setNote(event.target.value)}
                  style={{ flex: "1 1 200px" }}
                />
                <Button type="primary" loading={saving} disabled={!changed} onClick={save}>
                  {t("skills.save")}
                </Button>
                {changed ? (
                  <Button onClick={() => setText(original)}>{t("skills.reset")}</Button>
                ) : null}
              </Flex>
            ) : null}
          </Flex>
        </Col>
        <Col xs={24} lg={12}>
          <Card size="small" title={t("skills.preview")} styles={{ body: { overflowWrap: "anywhere" } }}>
            <section aria-label={t("skills.preview")} data-testid="skill-preview">
              {body.trim() ? <Markdown text={body} streaming={false} /> : <Typography.Text type="secondary">{t("skills.previewEmpty")}</Typography.Text>}
            </section>
          </Card>
        </Col>
      </Row>
    </Flex>
  );
}

function VersionsTable({
  versions,
  error,
  onRetry,
  current,
  onView,
}: {
  versions: SkillVersion[] | undefined;
  error: unknown;
  onRetry: () => void;
  current: number;
  onView: (number: number) => void;
}) {
  const t = useT();
  const { locale } = useLocale();
  if (error) return <ErrorAlert error={error} onRetry={onRetry} />;
  const newest = versions?.[0]?.number;
  return (
    <Table<SkillVersion>
      rowKey="number"
      size="small"
      loading={!versions}
      dataSource={versions ?? []}
      pagination={false}
      scroll={{ x: "max-content" }}
      data-testid="skill-versions"
      columns={[
        {
          title: t("skills.versions.number"),
          key: "number",
          render: (_, version) => (
            <Flex gap={4} align="center">
              <Typography.Text strong>{t("skills.version", { number: version.number })}</Typography.Text>
              {version.number === newest ? <Tag color="blue">{t("skills.versions.current")}</Tag> : null}
            </Flex>
          ),
        },
        { title: t("skills.versions.note"), dataIndex: "note", render: (note: string) => note || "—" },
        { title: t("skills.versions.files"), dataIndex: "files" },
        { title: t("skills.versions.size"), dataIndex: "total_bytes", render: (size: number) => formatBytes(size) },
        {
          title: t("skills.versions.date"),
          dataIndex: "created_at",
          render: (when: string) => new Date(when).toLocaleString(locale === "zh" ? "zh-CN" : "en-US"),
        },
        {
          title: t("common.actions"),
          key: "actions",
          render: (_, version) => (
            <Button size="small" disabled={version.number === current} onClick={() => onView(version.number)}>
              {t("skills.versions.view", { number: version.number })}
            </Button>
          ),
        },
      ]}
    />
  );
}

/** Which groups may use (read) or change (edit) the skill; each change is saved at once. */
function SharingPanel({ skillId }: { skillId: string }) {
  const t = useT();
  return (
    <GroupSharing
      resourceId={skillId}
      load={async () => {
        const [groups, shares] = await Promise.all([listGroups(), listShares(skillId)]);
        return { groups: groups.items, shares };
      }}
      share={(groupId, access) => putShare(skillId, groupId, access)}
      unshare={(groupId) => deleteShare(skillId, groupId)}
      texts={{
        hint: t("skills.share.hint"),
        none: t("skills.share.none"),
        read: t("skills.share.read"),
        edit: t("skills.share.edit"),
        accessOf: (name) => t("skills.share.accessOf", { name }),
        noGroups: t("skills.share.noGroups"),
        noGroupsHint: t("skills.share.noGroupsHint"),
        toTeam: t("skills.share.toTeam"),
      }}
    />
  );
}
