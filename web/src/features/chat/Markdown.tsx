"use client";

import { CodeHighlighter } from "@ant-design/x";
import XMarkdown, { type ComponentProps } from "@ant-design/x-markdown";
import { memo, useMemo } from "react";

function Code(props: ComponentProps) {
  const { className, children, block } = props;
  const lang = /language-(\w+)/.exec(className ?? "")?.[1];
  if (!block) return <code className={className}>{children}</code>;
  return <CodeHighlighter lang={lang}>{String(children ?? "").replace(/\n$/, "")}</CodeHighlighter>;
}

const COMPONENTS = { code: Code };

/** The top-level blocks of Markdown: split at blank lines that are not inside a fenced code block. */
export function splitBlocks(text: string): string[] {
  const blocks: string[] = [];
  let current: string[] = [];
  let fence: string | null = null;
  for (const line of text.split("\n")) {
    const marker = /^\s*(```+|~~~+)/.exec(line)?.[1];
    if (marker) fence = fence === null ? marker[0] : marker[0] === fence ? null : fence;
    if (line.trim() === "" && fence === null && current.length) {
      blocks.push(current.join("\n"));
      current = [];
    } else if (line.trim() !== "" || current.length) {
      current.push(line);
    }
  }
  if (current.length) blocks.push(current.join("\n"));
  return blocks;
}

const Block = memo(function Block({ text, streaming }: { text: string; streaming: boolean }) {
  return (
    <XMarkdown content={text} components={COMPONENTS} streaming={{ hasNextChunk: streaming }} openLinksInNewTab escapeRawHtml />
  );
});

/**
 * Markdown of an answer, as it streams. Each block (paragraph, list, code block) renders once it is complete and is
 * not rendered again: only the block still growing is, so a long answer costs the same per token at its end as at
 * its start (rendering the whole text every frame took tasks of 230 ms at 8,000 characters; bench/web_budget.py).
 */
export function Markdown({ text, streaming }: { text: string; streaming: boolean }) {
  const blocks = useMemo(() => splitBlocks(text), [text]);
  return (
    <div>
      {blocks.map((block, index) => (
        <Block key={index} text={block} streaming={streaming && index === blocks.length - 1} />
      ))}
    </div>
  );
}
