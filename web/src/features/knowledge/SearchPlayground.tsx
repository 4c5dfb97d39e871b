"use client";

import { Card, Col, Empty, Flex, Form, Grid, Input, InputNumber, List, Row, Spin, Tabs, Tag, Typography } from "antd";
import { useState } from "react";
import { useLocale, useT, type Locale, type Translate } from "@/i18n";
import { languageName } from "@/features/models/ModelForm";
import type { MessageKey } from "@/i18n/messages";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { search, type KnowledgeBase, type SearchMode, type SearchResult, type SearchWeights } from "./api";
import "./messages";

const MODES: { mode: SearchMode; key: MessageKey }[] = [
  { mode: "bm25", key: "kb.search.mode.bm25" },
  { mode: "vector", key: "kb.search.mode.vector" },
  { mode: "hybrid", key: "kb.search.mode.hybrid" },
];

interface Outcome {
  loading: boolean;
  result?: SearchResult;
  error?: unknown;
}

/** One query, three searches side by side: BM25, vector and hybrid (tabs at phone width). */
export function SearchPlayground({ kb }: { kb: KnowledgeBase }) {
  const t = useT();
  const screens = Grid.useBreakpoint();
  const [topK, setTopK] = useState(5);
  const [weight, setWeight] = useState<number | null>(null);
  const [outcomes, setOutcomes] = useState<Partial<Record<SearchMode, Outcome>>>({});
  const [searched, setSearched] = useState(false);

  const run = (query: string) => {
    const text = query.trim();
    if (!text) return;
    setSearched(true);
    for (const { mode } of MODES) {
      setOutcomes((previous) => ({ ...previous, [mode]: { loading: true } }));
      search(kb.id, text, mode, topK, mode === "hybrid" ? weight : null)
        .then((result) => setOutcomes((previous) => ({ ...previous, [mode]: { loading: false, result } })))
        .catch((error: unknown) => setOutcomes((previous) => ({ ...previous, [mode]: { loading: false, error } })));
    }
  };

  const column = (mode: SearchMode) => (
    <>
      {mode === "hybrid" && outcomes.hybrid?.result ? <WeightsLine weights={outcomes.hybrid.result.weights[0]} /> : null}
      <Results outcome={outcomes[mode]} t={t} />
    </>
  );
  const wide = screens.md ?? true;

  return (
    <>
      <Typography.Paragraph type="secondary">{t("kb.search.hint")}</Typography.Paragraph>
      <Flex gap={12} wrap align="flex-end" style={{ marginBottom: 16 }}>
        <Form.Item label={t("kb.search.query")} htmlFor="kb-search-query" style={{ flex: "1 1 280px", margin: 0 }} layout="vertical">
          <Input.Search
            id="kb-search-query"
            placeholder={t("kb.search.placeholder")}
            enterButton={t("common.search")}
            maxLength={2000}
            onSearch={run}
            loading={Object.values(outcomes).some((outcome) => outcome?.loading)}
          />
        </Form.Item>
        <Form.Item label={t("kb.search.topK")} htmlFor="kb-search-topk" style={{ margin: 0 }} layout="vertical">
          <InputNumber id="kb-search-topk" min={1} max={100} value={topK} onChange={(value) => setTopK(value ?? 5)} />
        </Form.Item>
        <Form.Item
          label={t("kb.search.weight")}
          htmlFor="kb-search-weight"
          tooltip={t("kb.search.weightHint")}
          style={{ margin: 0 }}
          layout="vertical"
        >
          <InputNumber
            id="kb-search-weight"
            min={0}
            max={1}
            step={0.1}
            placeholder={t("kb.search.weightAuto")}
            value={weight}
            onChange={(value) => setWeight(value ?? null)}
            style={{ width: 140 }}
          />
        </Form.Item>
      </Flex>
      {!searched ? null : wide ? (
        <Row gutter={[16, 16]}>
          {MODES.map(({ mode, key }) => (
            <Col key={mode} xs={24} md={8}>
              <Card
                size="small"
                title={<h3 style={{ margin: 0, fontSize: 14 }}>{t(key)}</h3>}
                extra={timing(outcomes[mode], t)}
                role="region"
                aria-label={t("kb.search.results", { mode: t(key) })}
              >
                {column(mode)}
              </Card>
            </Col>
          ))}
        </Row>
      ) : (
        <Tabs
          items={MODES.map(({ mode, key }) => ({
            key: mode,
            label: t(key),
            children: (
              <div role="region" aria-label={t("kb.search.results", { mode: t(key) })}>
                {column(mode)}
              </div>
            ),
          }))}
        />
      )}
    </>
  );
}

/** How the hybrid search weighed BM25 and the vectors, and why. */
function WeightsLine({ weights }: { weights: SearchWeights | undefined }) {
  const t = useT();
  const { locale } = useLocale();
  if (!weights) return null;
  const percent = (value: number) => `${Math.round(value * 100)}%`;
  return (
    <Typography.Paragraph type="secondary" style={{ fontSize: 12 }} data-testid="search-weights">
      {t("kb.search.weights", { bm25: percent(weights.bm25_weight), vector: percent(weights.vector_weight) })}
      {locale === "zh" ? "" : " "}
      {weights.source === "languages"
        ? t("kb.search.weightsByLanguage", {
            query: describe(weights.query_languages, locale) || t("kb.search.noLanguage"),
            model: weights.model_languages
              ? weights.model_languages.map((code) => languageName(code, locale)).join(", ")
              : t("kb.search.everyLanguage"),
          })
        : weights.source === "knowledge_base"
          ? t("kb.search.weightsByBase")
          : weights.source === "request"
            ? t("kb.search.weightsByRequest")
            : null}
    </Typography.Paragraph>
  );
}

function describe(languages: Record<string, number>, locale: Locale): string {
  return Object.entries(languages)
    .sort((a, b) => b[1] - a[1])
    .map(([code, share]) => `${languageName(code, locale)} ${Math.round(share * 100)}%`)
    .join(", ");
}

function timing(outcome: Outcome | undefined, t: Translate) {
  const timings = outcome?.result?.timings;
  if (!timings) return null;
  const ms = Math.round(timings.embedding_ms + timings.search_ms + timings.rerank_ms);
  return <Typography.Text type="secondary">{t("kb.search.took", { ms })}</Typography.Text>;
}

function Results({ outcome, t }: { outcome: Outcome | undefined; t: Translate }) {
  if (!outcome || outcome.loading) return <Spin />;
  if (outcome.error) return <ErrorAlert error={outcome.error} />;
  const hits = outcome.result?.hits ?? [];
  if (!hits.length) return <Empty image={Empty.PRESENTED_IMAGE_SIMPLE} description={t("kb.search.none")} />;
  return (
    <List
      dataSource={hits}
      renderItem={(hit, index) => (
        <List.Item style={{ display: "block" }}>
          <Flex gap={6} wrap align="center" style={{ marginBottom: 4 }}>
            <Tag>#{index + 1}</Tag>
            <Typography.Text strong style={{ overflowWrap: "anywhere" }}>
              {hit.file_name}
            </Typography.Text>
            {hit.page ? <Typography.Text type="secondary">{t("kb.search.page", { page: hit.page })}</Typography.Text> : null}
            <Tag color="blue">{t("kb.search.score", { score: hit.score.toFixed(3) })}</Tag>
          </Flex>
          {Object.keys(hit.metadata ?? {}).length ? (
            <Flex gap={4} wrap style={{ marginBottom: 4 }}>
              {Object.entries(hit.metadata ?? {}).map(([key, value]) => (
                <Tag key={key} style={{ marginInlineEnd: 0 }}>
                  {key}: {String(value)}
                </Tag>
              ))}
            </Flex>
          ) : null}
          {hit.heading_path.length ? (
            <Typography.Text type="secondary" style={{ display: "block", fontSize: 12 }}>
              {hit.heading_path.join(" › ")}
            </Typography.Text>
          ) : null}
          <Typography.Paragraph ellipsis={{ rows: 4, expandable: true }} style={{ margin: 0, whiteSpace: "pre-wrap" }}>
            {hit.text}
          </Typography.Paragraph>
        </List.Item>
      )}
    />
  );
}
