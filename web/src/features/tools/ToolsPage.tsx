"use client";

import { Alert, Tabs, Typography } from "antd";
import { usePathname, useRouter, useSearchParams } from "next/navigation";
import { useMe } from "@/features/auth/SessionProvider";
import { useT } from "@/i18n";
import { McpServersTab } from "./McpServersTab";
import { OpenApiTab } from "./OpenApiTab";
import "./messages";

/** `/tools?tab=mcp|openapi`: the tenant's own tool sources, MCP servers and OpenAPI imports. */
export function ToolsPage() {
  const t = useT();
  const { can } = useMe();
  const router = useRouter();
  const pathname = usePathname();
  const tab = useSearchParams().get("tab") === "openapi" ? "openapi" : "mcp";
  return (
    <>
      <Typography.Title level={2} style={{ marginTop: 0 }}>
        {t("tools.title")}
      </Typography.Title>
      {can("tools.manage") ? (
        <Tabs
          activeKey={tab}
          onChange={(key) => router.replace(`${pathname}?tab=${key}`)}
          items={[
            { key: "mcp", label: t("tools.tab.mcp"), children: <McpServersTab /> },
            { key: "openapi", label: t("tools.tab.openapi"), children: <OpenApiTab /> },
          ]}
        />
      ) : (
        <Alert type="info" showIcon title={t("tools.readOnly")} />
      )}
    </>
  );
}
