"use client";

import { FileOutlined } from "@ant-design/icons";
import { App, Button, Image, Tooltip } from "antd";
import { useEffect, useState } from "react";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import { attachmentUrl, downloadAttachment, sizeLabel, type Attachment } from "./api";
import "./messages";

/** An image attachment as a thumbnail (its file read with the caller's token; opens larger on click). */
function Thumbnail({ attachment }: { attachment: Attachment }) {
  const t = useT();
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let made: string | null = null;
    let gone = false;
    attachmentUrl(attachment.id)
      .then((value) => {
        made = value;
        if (gone) URL.revokeObjectURL(value);
        else setUrl(value);
      })
      .catch(() => undefined);
    return () => {
      gone = true;
      if (made) URL.revokeObjectURL(made);
    };
  }, [attachment.id]);
  return (
    <Image
      src={url ?? undefined}
      alt={t("attach.image", { name: attachment.name })}
      width={96}
      height={96}
      style={{ objectFit: "cover", borderRadius: 8, background: "var(--ant-color-fill-tertiary, #f0f0f0)" }}
      data-testid="attachment-thumbnail"
    />
  );
}

/** A document attachment as a chip that downloads it. */
function DocumentChip({ attachment }: { attachment: Attachment }) {
  const t = useT();
  const { message } = App.useApp();
  return (
    <Tooltip title={t("attach.download", { name: attachment.name })}>
      <Button
        size="small"
        icon={<FileOutlined />}
        onClick={() => downloadAttachment(attachment).catch((error: unknown) => message.error(errorMessage(error, t)))}
        data-testid="attachment-chip"
        style={{ maxWidth: 260 }}
      >
        <span style={{ overflow: "hidden", textOverflow: "ellipsis" }}>
          {attachment.name} · {sizeLabel(attachment.size)}
        </span>
      </Button>
    </Tooltip>
  );
}

/** What a user message carries: images as thumbnails, documents as chips. */
export function MessageAttachments({ attachments }: { attachments: Attachment[] }) {
  const t = useT();
  if (!attachments.length) return null;
  return (
    <ul aria-label={t("attach.sent")} className="nx-attachments nx-attachments-end" data-testid="message-attachments">
      {attachments.map((attachment) => (
        <li key={attachment.id}>
          {attachment.kind === "image" ? <Thumbnail attachment={attachment} /> : <DocumentChip attachment={attachment} />}
        </li>
      ))}
    </ul>
  );
}
