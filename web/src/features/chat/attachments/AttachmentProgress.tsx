"use client";

import { CheckCircleOutlined, LoadingOutlined, WarningOutlined } from "@ant-design/icons";
import { Flex, Typography } from "antd";
import { useT } from "@/i18n";
import type { AttachmentState } from "./events";
import "./messages";

const READY = {
  context: "attach.ready.context",
  index: "attach.ready.index",
  image: "attach.ready.image",
  ocr: "attach.ready.ocr",
} as const;

/** How a run prepared the message's attachments (its `attachment.*` events), one line each. */
export function AttachmentProgress({ items }: { items: AttachmentState[] }) {
  const t = useT();
  if (!items.length) return null;
  return (
    <Flex vertical gap={2} data-testid="attachment-progress" role="status">
      {items.map((item) => {
        const text =
          item.status === "processing"
            ? t("attach.processing", { name: item.name })
            : item.status === "failed"
              ? t("attach.failedRun", { name: item.name, reason: item.reason ?? "" })
              : t(READY[item.mode ?? "context"], { name: item.name });
        const icon =
          item.status === "processing" ? <LoadingOutlined /> : item.status === "failed" ? <WarningOutlined /> : <CheckCircleOutlined />;
        return (
          <Typography.Text
            key={item.id}
            type={item.status === "failed" ? "danger" : "secondary"}
            style={{ fontSize: 13 }}
            data-status={item.status}
          >
            {icon} {text}
          </Typography.Text>
        );
      })}
    </Flex>
  );
}
