"use client";

import { CloseOutlined, FileOutlined, LoadingOutlined, PaperClipOutlined, PictureOutlined, WarningOutlined } from "@ant-design/icons";
import { Button, Flex, Progress, Tag, Tooltip, Typography } from "antd";
import { useRef } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import { sizeLabel } from "./api";
import { MAX_ATTACHMENTS, type PendingFile } from "./useAttachments";
import "./messages";

/** The composer's attach button: opens the file picker (any file: the server says which it refuses, and why). */
export function AttachButton({ onFiles, disabled }: { onFiles: (files: FileList) => void; disabled?: boolean }) {
  const t = useT();
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <Tooltip title={disabled ? t("attach.full", { n: MAX_ATTACHMENTS }) : t("attach.button")}>
        <Button
          type="text"
          icon={<PaperClipOutlined />}
          aria-label={t("attach.button")}
          disabled={disabled}
          onClick={() => input.current?.click()}
          data-testid="attach-button"
        />
      </Tooltip>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        data-testid="attach-input"
        onChange={(event) => {
          if (event.target.files?.length) onFiles(event.target.files);
          event.target.value = "";
        }}
      />
    </>
  );
}

/** The files of the next message, each with its progress or its error, and a way to remove it. */
export function PendingFiles({ files, onRemove }: { files: PendingFile[]; onRemove: (key: string) => void }) {
  const t = useT();
  if (!files.length) return null;
  return (
    <ul aria-label={t("attach.files")} className="nx-attachments" data-testid="pending-attachments">
      {files.map((file) => {
        const icon =
          file.status === "uploading" ? <LoadingOutlined /> : file.status === "error" ? <WarningOutlined /> : file.image ? <PictureOutlined /> : <FileOutlined />;
        const percent = Math.round(file.progress * 100);
        const label =
          file.status === "uploading"
            ? t("attach.uploading", { name: file.name, percent })
            : file.status === "error"
              ? t("attach.failed", { name: file.name, reason: errorMessage(file.error, t) })
              : t("attach.uploaded", { name: file.name, size: sizeLabel(file.size) });
        return (
          <li key={file.key} data-status={file.status}>
            <Tag
              color={file.status === "error" ? "error" : undefined}
              icon={icon}
              style={{ maxWidth: "100%", display: "inline-flex", alignItems: "center", gap: 4, paddingInlineEnd: 0 }}
            >
              <Flex vertical style={{ minWidth: 0 }}>
                <Typography.Text ellipsis style={{ maxWidth: 220, fontSize: 12 }} title={file.name} aria-label={label}>
                  {file.name}
                </Typography.Text>
                {file.status === "uploading" ? (
                  <Progress percent={percent} size="small" showInfo={false} style={{ margin: 0, width: 120 }} aria-hidden />
                ) : null}
                {file.status === "error" ? (
                  <Typography.Text type="danger" style={{ fontSize: 12, whiteSpace: "normal" }} role="alert">
                    {errorMessage(file.error, t)}
                  </Typography.Text>
                ) : null}
              </Flex>
              <Button
                type="text"
                size="small"
                icon={<CloseOutlined />}
                aria-label={t("attach.remove", { name: file.name })}
                onClick={() => onRemove(file.key)}
              />
            </Tag>
          </li>
        );
      })}
    </ul>
  );
}
