"use client";

import { useT } from "@/i18n";
import { GroupSharing } from "@/ui/GroupSharing";
import { listGroups, listShares, shareAgent, unshareAgent } from "./api";
import "./messages";

/** Which groups may use (read) or change (edit) the agent; each change is saved at once. */
export function SharingPanel({ agentId }: { agentId: string }) {
  const t = useT();
  return (
    <GroupSharing
      resourceId={agentId}
      load={async () => {
        const [groups, shares] = await Promise.all([listGroups(), listShares(agentId)]);
        return { groups, shares };
      }}
      share={(groupId, access) => shareAgent(agentId, groupId, access)}
      unshare={(groupId) => unshareAgent(agentId, groupId)}
      texts={{
        hint: t("agents.share.hint"),
        none: t("agents.share.none"),
        read: t("agents.share.read"),
        edit: t("agents.share.edit"),
        accessOf: (name) => t("agents.share.accessOf", { name }),
        noGroups: t("agents.share.noGroups"),
        noGroupsHint: t("agents.share.noGroupsHint"),
        toTeam: t("agents.share.toTeam"),
      }}
    />
  );
}
