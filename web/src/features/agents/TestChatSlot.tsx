"use client";

import { Typography } from "antd";
import { ChatPanel } from "@/features/chat/ChatPanel";
import { useT } from "@/i18n";
import type { Agent } from "./api";
import "./messages";

/** The studio's test chat: the saved agent's draft (for those who may edit it; else its published version), in a
 * new conversation each time the studio opens or the draft is saved. */
export function TestChatSlot({ agent }: { agent: Agent | null }) {
  const t = useT();
  return (
    <section aria-label={t("agents.testChat")} data-slot="test-chat" style={{ height: "70vh", minHeight: 360 }}>
      {!agent ? (
        <Typography.Paragraph type="secondary" style={{ padding: "24px 8px", textAlign: "center" }}>
          {t("agents.testChatPending")}
        </Typography.Paragraph>
      ) : (
        <ChatPanel key={agent.updated_at} agent={agent} conversationId={null} version={agent.can_edit ? "draft" : undefined} />
      )}
    </section>
  );
}
