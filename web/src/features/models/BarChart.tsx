"use client";

import { theme } from "antd";

export interface BarSeries {
  label: string;
  color: string;
  values: number[];
}

/**
 * A small hand-written SVG bar chart (stacked when there are several series): no chart library in the bundle.
 * It is an image for screen readers, described by `summary`; the table beside it carries the numbers.
 */
export function BarChart({
  title,
  summary,
  labels,
  series,
  format = (value) => value.toLocaleString(),
}: {
  title: string;
  summary: string;
  labels: string[];
  series: BarSeries[];
  format?: (value: number) => string;
}) {
  const { token } = theme.useToken();
  const width = Math.max(320, 64 + labels.length * (labels.length > 20 ? 24 : 48));
  const height = 200;
  const top = 12;
  const bottom = 36;
  const left = 56;
  const plotHeight = height - top - bottom;
  const totals = labels.map((_, i) => series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0));
  const max = Math.max(1, ...totals);
  const slot = (width - left - 8) / Math.max(1, labels.length);
  const bar = Math.min(32, slot * 0.7);
  const ticks = [0, 0.5, 1].map((f) => f * max);
  // Labels no closer than about 56 px apart.
  const every = Math.max(1, Math.ceil(56 / slot));
  return (
    <figure style={{ margin: 0 }}>
      <figcaption style={{ fontWeight: 600, marginBottom: 8 }}>{title}</figcaption>
      <div style={{ overflowX: "auto" }} tabIndex={0} role="region" aria-label={title}>
        <svg role="img" aria-label={`${title}. ${summary}`} width={width} height={height} viewBox={`0 0 ${width} ${height}`}>
          {ticks.map((tick) => {
            const y = top + plotHeight - (tick / max) * plotHeight;
            return (
              <g key={tick}>
                <line x1={left} x2={width - 4} y1={y} y2={y} stroke={token.colorBorderSecondary} />
                <text x={left - 6} y={y + 4} textAnchor="end" fontSize={11} fill={token.colorTextSecondary}>
                  {format(max >= 10 ? Math.round(tick) : Math.round(tick * 10) / 10)}
                </text>
              </g>
            );
          })}
          {labels.map((label, i) => {
            const x = left + i * slot + (slot - bar) / 2;
            let y = top + plotHeight;
            return (
              <g key={`${label}-${i}`}>
                {series.map((s) => {
                  const value = s.values[i] ?? 0;
                  const h = (value / max) * plotHeight;
                  y -= h;
                  return (
                    <rect key={s.label} x={x} y={y} width={bar} height={Math.max(0, h)} fill={s.color}>
                      <title>{`${label} · ${s.label}: ${format(value)}`}</title>
                    </rect>
                  );
                })}
                {i % every !== 0 ? null : <text
                  x={x + bar / 2}
                  y={height - bottom + 16}
                  textAnchor="middle"
                  fontSize={11}
                  fill={token.colorTextSecondary}
                >
                  {label.length > 10 ? `${label.slice(0, 9)}…` : label}
                </text>}
              </g>
            );
          })}
        </svg>
      </div>
      {series.length > 1 ? (
        <div aria-hidden style={{ display: "flex", gap: 16, flexWrap: "wrap", fontSize: 12 }}>
          {series.map((s) => (
            <span key={s.label} style={{ display: "inline-flex", alignItems: "center", gap: 6 }}>
              <span style={{ width: 10, height: 10, background: s.color, display: "inline-block", borderRadius: 2 }} />
              {s.label}
            </span>
          ))}
        </div>
      ) : null}
    </figure>
  );
}
