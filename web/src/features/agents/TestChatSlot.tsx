"use client";

import { Spin, Typography } from "antd";
import { ChatPanel } from "@/features/chat/ChatPanel";
import { readAgent } from "@/features/chat/api";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import "./messages";

/** The studio's test chat: the saved agent's draft, in a new conversation each time the studio opens. */
export function TestChatSlot({ agentId }: { agentId: string | null }) {
  const t = useT();
  const agent = useAsync(() => (agentId ? readAgent(agentId) : Promise.resolve(null)), [agentId]);
  return (
    <section aria-label={t("agents.testChat")} data-slot="test-chat" style={{ height: "70vh", minHeight: 360 }}>
      {!agentId ? (
        <Typography.Paragraph type="secondary" style={{ padding: "24px 8px", textAlign: "center" }}>
          {t("agents.testChatPending")}
        </Typography.Paragraph>
      ) : agent.error ? (
        <ErrorAlert error={agent.error} onRetry={agent.reload} />
      ) : agent.data ? (
        <ChatPanel key={agent.data.updated_at} agent={agent.data} conversationId={null} />
      ) : (
        <Spin />
      )}
    </section>
  );
}
