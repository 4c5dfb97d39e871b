"use client";

import { CodeHighlighter } from "@ant-design/x";
import XMarkdown, { type ComponentProps } from "@ant-design/x-markdown";

function Code(props: ComponentProps) {
  const { className, children, block } = props;
  const lang = /language-(\w+)/.exec(className ?? "")?.[1];
  if (!block) return <code className={className}>{children}</code>;
  return <CodeHighlighter lang={lang}>{String(children ?? "").replace(/\n$/, "")}</CodeHighlighter>;
}

/** Markdown of an answer, as it streams: unfinished syntax waits for its end instead of flickering. */
export function Markdown({ text, streaming }: { text: string; streaming: boolean }) {
  return (
    <XMarkdown
      content={text}
      components={{ code: Code }}
      streaming={{ hasNextChunk: streaming }}
      openLinksInNewTab
      escapeRawHtml
    />
  );
}
