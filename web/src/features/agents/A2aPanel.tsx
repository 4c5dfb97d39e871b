"use client";

import { Alert, App, Button, Flex, Radio, Spin, Typography } from "antd";
import { useState } from "react";
import { serviceBase } from "@/api/config";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import { updateAgent, type Agent } from "./api";
import "./messages";

export type A2aExposure = Agent["a2a_exposure"];

/** Where A2A clients reach the agent: the northbound service's `/a2a/{id}` (the UI's origin when embedded). */
export function a2aUrl(agentId: string): string {
  const base = serviceBase("POST", "/v1/chat/completions") || window.location.origin;
  return `${base}/a2a/${agentId}`;
}

/** The agent's A2A exposure (off, API keys, public) and, once exposed and published, its card's URL and a preview of
 * the card as A2A clients read it. */
export function A2aPanel({ agent, onChanged }: { agent: Agent; onChanged: (agent: Agent) => void }) {
  const t = useT();
  const { message, modal } = App.useApp();
  const [busy, setBusy] = useState(false);
  const [card, setCard] = useState<string | null>(null);
  const [cardError, setCardError] = useState<string | null>(null);
  const [loadingCard, setLoadingCard] = useState(false);
  const exposure = agent.a2a_exposure;
  const cardUrl = `${a2aUrl(agent.id)}/.well-known/agent-card.json`;

  const save = async (next: A2aExposure) => {
    setBusy(true);
    try {
      const updated = await updateAgent(agent.id, { a2a_exposure: next });
      onChanged(updated);
      setCard(null);
      setCardError(null);
      message.success(t("common.saved"));
    } catch (error) {
      message.error(errorMessage(error, t));
    } finally {
      setBusy(false);
    }
  };

  const change = (next: A2aExposure) => {
    if (next !== "public") {
      void save(next);
      return;
    }
    modal.confirm({
      title: t("agents.a2a.publicConfirmTitle"),
      content: t("agents.a2a.publicWarning"),
      okText: t("agents.a2a.makePublic"),
      okButtonProps: { danger: true },
      onOk: () => save(next),
    });
  };

  const preview = async () => {
    setLoadingCard(true);
    setCardError(null);
    try {
      const response = await fetch(cardUrl, { cache: "no-store" }); // as served now, not as cached
      if (!response.ok) throw new Error(t("agents.a2a.cardUnavailable", { status: response.status }));
      setCard(JSON.stringify(await response.json(), null, 2));
    } catch (error) {
      setCard(null);
      setCardError(error instanceof Error ? error.message : String(error));
    } finally {
      setLoadingCard(false);
    }
  };

  return (
    <Flex vertical gap={12}>
      <Typography.Paragraph type="secondary" style={{ margin: 0 }}>
        {t("agents.a2a.hint")}
      </Typography.Paragraph>
      <div role="radiogroup" aria-label={t("agents.a2a.exposure")}>
        <Radio.Group
          value={exposure}
          disabled={busy}
          onChange={(event) => change(event.target.value as A2aExposure)}
          optionType="button"
          options={[
            { value: "off", label: t("agents.a2a.off") },
            { value: "api_key", label: t("agents.a2a.apiKey") },
            { value: "public", label: t("agents.a2a.public") },
          ]}
        />
      </div>
      {exposure === "public" ? <Alert type="warning" showIcon message={t("agents.a2a.publicWarning")} /> : null}
      {exposure !== "off" && agent.published_version == null ? (
        <Alert type="info" showIcon message={t("agents.a2a.notPublished")} />
      ) : null}
      {exposure !== "off" ? (
        <>
          <div>
            <Typography.Text strong>{t("agents.a2a.cardUrl")}</Typography.Text>
            <Typography.Paragraph copyable={{ text: cardUrl }} style={{ wordBreak: "break-all", margin: 0 }}>
              <Typography.Text code>{cardUrl}</Typography.Text>
            </Typography.Paragraph>
          </div>
          <div>
            <Button onClick={() => void preview()} loading={loadingCard} disabled={agent.published_version == null}>
              {t("agents.a2a.preview")}
            </Button>
          </div>
          {loadingCard ? <Spin /> : null}
          {cardError ? <Alert type="error" showIcon message={cardError} /> : null}
          {card ? (
            <pre
              aria-label={t("agents.a2a.cardPreview")}
              tabIndex={0}
              style={{ maxHeight: 320, overflow: "auto", margin: 0, padding: 12, background: "rgba(0,0,0,0.04)", borderRadius: 6, fontSize: 12 }}
            >
              {card}
            </pre>
          ) : null}
        </>
      ) : null}
    </Flex>
  );
}
