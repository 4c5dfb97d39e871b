"use client";

import { MessageOutlined } from "@ant-design/icons";
import { Typography } from "antd";
import { useT } from "@/i18n";

/**
 * SLOT FOR THE TEST CHAT. features/chat will render `<ChatPanel agentId={agentId} />` here (a saved agent only).
 * Until then it says when the test chat opens, and shows nothing that looks like a chat.
 */
export function TestChatSlot({ agentId }: { agentId: string | null }) {
  const t = useT();
  return (
    <section aria-label={t("agents.testChat")} data-slot="test-chat" data-agent-id={agentId ?? undefined} style={{ padding: "24px 8px", textAlign: "center" }}>
      <MessageOutlined style={{ fontSize: 28, opacity: 0.5 }} aria-hidden />
      <Typography.Paragraph type="secondary" style={{ marginTop: 12, marginBottom: 0 }}>
        {t("agents.testChatPending")}
      </Typography.Paragraph>
    </section>
  );
}
