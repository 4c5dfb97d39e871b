"use client";

import { Table, Typography } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { EmptyState } from "@/ui/EmptyState";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { useAsync } from "@/ui/useAsync";
import { listAudit, listMembers, type AuditEvent } from "./api";
import { ScrollRegion } from "./ScrollRegion";
import { useFormatDate } from "./shared";
import "./messages";

const PAGE_SIZE = 20;

/** The tenant's audit log, newest first, a page at a time. */
export function AuditTab() {
  const t = useT();
  const formatDate = useFormatDate();
  const [page, setPage] = useState(1);
  const events = useAsync(() => listAudit(PAGE_SIZE, (page - 1) * PAGE_SIZE), [page]);
  const members = useAsync(listMembers, []);
  const who = (event: AuditEvent) => {
    if (event.actor_user_id) {
      const member = members.data?.find((m) => m.user_id === event.actor_user_id);
      const name = member?.display_name ?? event.actor_user_id.slice(0, 8);
      return event.actor_api_key_id ? `${name} (${t("team.audit.apiKey")})` : name;
    }
    return event.actor_api_key_id ? t("team.audit.apiKey") : t("team.audit.system");
  };

  if (!events.loading && !events.error && events.data?.total === 0) {
    return <EmptyState title={t("team.audit.empty")} hint={t("team.audit.emptyHint")} />;
  }
  return (
    <>
      <ErrorAlert error={events.error} onRetry={events.reload} />
      <ScrollRegion label={t("team.tab.audit")}>
      <Table<AuditEvent>
        rowKey="id"
        size="small"
        loading={events.loading}
        dataSource={events.data?.items ?? []}
        pagination={{
          current: page,
          pageSize: PAGE_SIZE,
          total: events.data?.total ?? 0,
          showSizeChanger: false,
          onChange: setPage,
          showTotal: (total) => t("common.total", { count: total }),
        }}
        columns={[
          { title: t("team.audit.when"), key: "when", render: (_, event) => formatDate(event.created_at) },
          { title: t("team.audit.who"), key: "who", render: (_, event) => who(event) },
          {
            title: t("team.audit.action"),
            key: "action",
            render: (_, event) => <Typography.Text code>{event.action}</Typography.Text>,
          },
          {
            title: t("team.audit.resource"),
            key: "resource",
            render: (_, event) => {
              const member = members.data?.find((m) => m.user_id === event.resource_id);
              const name =
                typeof event.details?.name === "string"
                  ? event.details.name
                  : (event.resource_type === "member" || event.resource_type === "user") && member
                    ? member.display_name
                    : null;
              return `${event.resource_type}${name ? `: ${name}` : event.resource_id ? ` ${event.resource_id.slice(0, 8)}` : ""}`;
            },
          },
          { title: t("team.audit.from"), key: "ip", render: (_, event) => event.ip ?? "—" },
        ]}
      />
      </ScrollRegion>
    </>
  );
}
