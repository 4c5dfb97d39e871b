"use client";

import { FileZipOutlined, InboxOutlined } from "@ant-design/icons";
import { Alert, Flex, Button, Typography, Upload } from "antd";
import type { RcFile } from "antd/es/upload";
import { useRef, useState } from "react";
import { ApiError } from "@/api/problem";
import { useT, type Translate } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { errorMessage } from "@/ui/ErrorAlert";
import type { SkillUpload } from "./api";
import "./messages";

const KNOWN = new Set([
  "skill_archive_invalid",
  "skill_too_large",
  "skill_path_unsafe",
  "skill_link_refused",
  "skill_manifest_missing",
  "skill_manifest_invalid",
  "skill_name_taken",
  "permission_denied",
]);

/** A refused upload or edit in plain words (by its code), with the server's own detail and the code below. */
export function Refusal({ error, onClose }: { error: unknown; onClose?: () => void }) {
  const t = useT();
  if (!error) return null;
  const { title, detail, code } = refusalParts(error, t);
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      data-testid="skill-refusal"
      title={title}
      description={
        detail || code ? (
          <>
            {detail ? <div>{detail}</div> : null}
            {code ? <Typography.Text code>{code}</Typography.Text> : null}
          </>
        ) : undefined
      }
      closable={onClose ? { onClose, "aria-label": t("common.close") } : undefined}
    />
  );
}

export function refusalParts(error: unknown, t: Translate): { title: string; detail?: string; code?: string } {
  if (error instanceof ApiError && error.code && KNOWN.has(error.code)) {
    const field = typeof error.problem.field === "string" ? error.problem.field : "SKILL.md";
    return {
      title: t(`skills.error.${error.code}` as MessageKey, { field }),
      detail: error.problem.detail,
      code: error.code,
    };
  }
  return { title: errorMessage(error, t), code: error instanceof ApiError ? error.code : undefined };
}

/** The files of a drop or a folder choice: one ZIP alone is an archive, anything else the folder's files. */
export function toUpload(files: RcFile[]): SkillUpload | null {
  if (!files.length) return null;
  const [first] = files;
  if (files.length === 1 && /\.zip$/i.test(first.name) && !first.webkitRelativePath.includes("/")) {
    return { kind: "archive", file: first };
  }
  return { kind: "files", files: files.map((file) => ({ path: file.webkitRelativePath || file.name, file })) };
}

/**
 * Drop a skill's folder or its ZIP, or choose either with a button (keyboard users: the buttons). `send` does the
 * upload; a refusal shows under the drop zone in plain words with the server's detail.
 */
export function SkillUploader({ send }: { send: (upload: SkillUpload) => Promise<unknown> }) {
  const t = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // antd hands the chosen or dropped files over one by one, each with the whole list: the first one sends them all.
  const seen = useRef<RcFile[] | null>(null);
  const take = (file: RcFile, list: RcFile[]) => {
    if (seen.current !== list) {
      seen.current = list;
      const upload = toUpload(list);
      if (upload) void run(upload);
    }
    void file;
    return Upload.LIST_IGNORE;
  };
  const run = async (upload: SkillUpload) => {
    setBusy(true);
    setError(null);
    try {
      await send(upload);
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Flex vertical gap={12}>
      <Upload.Dragger
        directory
        multiple
        showUploadList={false}
        beforeUpload={take}
        disabled={busy}
      >
        <p className="ant-upload-drag-icon">
          <InboxOutlined />
        </p>
        <p className="ant-upload-text">{t("skills.drop")}</p>
        <p className="ant-upload-hint">{t("skills.dropHint")}</p>
      </Upload.Dragger>
      <Flex gap={8} wrap>
        <Upload accept=".zip,application/zip" showUploadList={false} beforeUpload={take} disabled={busy}>
          <Button icon={<FileZipOutlined />} loading={busy}>
            {t("skills.chooseZip")}
          </Button>
        </Upload>
        {busy ? (
          <Typography.Text type="secondary" role="status">
            {t("skills.uploading")}
          </Typography.Text>
        ) : null}
      </Flex>
      <Refusal error={error} onClose={() => setError(null)} />
    </Flex>
  );
}
