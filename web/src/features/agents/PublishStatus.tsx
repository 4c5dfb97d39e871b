"use client";

import { CheckCircleFilled, EditFilled, MinusCircleOutlined } from "@ant-design/icons";
import { Flex, Tag, theme } from "antd";
import { useT } from "@/i18n";
import { useAsync } from "@/ui/useAsync";
import { compareVersions, type Agent } from "./api";
import "./messages";

/**
 * Where the agent stands: "Published vN" (and "Unpublished changes" when the saved draft differs from it, for those
 * who may see the draft), or "Not published".
 */
export function PublishStatus({
  agent,
  revision,
}: {
  agent: Agent;
  /** Changes whenever a version is published, rolled back to, disabled or enabled. */
  revision: number;
}) {
  const t = useT();
  const { token } = theme.useToken();
  const published = agent.published_version;
  const changed = useAsync(async () => {
    if (published == null || !agent.can_edit) return false;
    const diff = await compareVersions(agent.id, published, "draft");
    return diff.changes.length > 0;
  }, [agent, published, revision]);

  return (
    <Flex gap={4} wrap role="status" aria-label={t("agents.status.label")} data-testid="publish-status">
      {published == null ? (
        <Tag icon={<MinusCircleOutlined aria-hidden />}>{t("agents.status.notPublished")}</Tag>
      ) : (
        <Tag icon={<CheckCircleFilled aria-hidden style={{ color: token.colorSuccess }} />}>
          {t("agents.status.published", { n: published })}
        </Tag>
      )}
      {changed.data ? (
        <Tag icon={<EditFilled aria-hidden style={{ color: token.colorWarning }} />}>{t("agents.status.changed")}</Tag>
      ) : null}
    </Flex>
  );
}
