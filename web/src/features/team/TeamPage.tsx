"use client";

import { Grid, Select, Tabs, Typography } from "antd";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import type { ReactNode } from "react";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import type { MessageKey } from "@/i18n/messages";
import { ApiKeysTab } from "./ApiKeysTab";
import { AuditTab } from "./AuditTab";
import { GroupsTab } from "./GroupsTab";
import { InvitationsTab } from "./InvitationsTab";
import { MembersTab } from "./MembersTab";
import { WorkspaceTab } from "./WorkspaceTab";
import "./messages";

const TABS: { key: string; label: MessageKey; permission: string | null; render: () => ReactNode }[] = [
  { key: "members", label: "team.tab.members", permission: null, render: () => <MembersTab /> },
  { key: "groups", label: "team.tab.groups", permission: null, render: () => <GroupsTab /> },
  { key: "invitations", label: "team.tab.invitations", permission: "invitations.manage", render: () => <InvitationsTab /> },
  { key: "api-keys", label: "team.tab.apiKeys", permission: "api_keys.manage", render: () => <ApiKeysTab /> },
  { key: "audit", label: "team.tab.audit", permission: "audit.read", render: () => <AuditTab /> },
  { key: "workspace", label: "team.tab.workspace", permission: "skills.network", render: () => <WorkspaceTab /> },
];

/** `/team?tab=members|groups|invitations|api-keys|audit|workspace`: the tabs the caller's role allows. */
export function TeamPage() {
  const t = useT();
  const { can } = useMe();
  const router = useRouter();
  const pathname = usePathname();
  const tabs = TABS.filter((tab) => tab.permission === null || can(tab.permission));
  const wanted = useSearchParams().get("tab");
  const active = tabs.find((tab) => tab.key === wanted)?.key ?? "members";
  const screens = Grid.useBreakpoint();
  const select = (key: string) => router.replace(`${pathname}?tab=${key}`);
  return (
    <>
      <Typography.Title level={2} style={{ marginTop: 0 }}>
        {t("team.title")}
      </Typography.Title>
      <Tabs
        activeKey={active}
        onChange={select}
        destroyOnHidden
        // On a phone six tabs overflow into a menu that breaks the tab list's roles: a select names the section.
        renderTabBar={
          screens.sm === false
            ? () => (
                <Select
                  aria-label={t("team.section")}
                  value={active}
                  onChange={select}
                  style={{ width: "100%", marginBottom: 16 }}
                  options={tabs.map((tab) => ({ value: tab.key, label: t(tab.label) }))}
                />
              )
            : undefined
        }
        items={tabs.map((tab) => ({ key: tab.key, label: t(tab.label), children: tab.render() }))}
      />
    </>
  );
}
