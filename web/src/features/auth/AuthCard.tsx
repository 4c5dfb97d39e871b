"use client";

import { Flex, Segmented, theme } from "antd";
import type { CSSProperties, ReactNode } from "react";
import { LOCALES, useLocale, type Locale } from "@/i18n";

/**
 * The frame of the pages before sign-in: a card in the middle, the language switch above it.
 *
 * Plain elements styled with Ant Design's tokens rather than Card and Typography, and a Segmented switch for the two
 * languages rather than a Select: those bring tabs, menus, skeletons, virtual lists and the copy/edit machinery into
 * the first page anyone loads (budget: 250 KB of gzipped JavaScript).
 */
export function AuthCard({ title, children }: { title: string; children: ReactNode }) {
  const { locale, setLocale, t } = useLocale();
  const { token } = theme.useToken();
  const heading: CSSProperties = { color: token.colorTextHeading, fontWeight: token.fontWeightStrong };
  return (
    <main
      className="nx-auth"
      style={
        {
          minHeight: "100vh",
          padding: "8vh 16px",
          boxSizing: "border-box",
          color: token.colorText,
          fontFamily: token.fontFamily,
          fontSize: token.fontSize,
          lineHeight: token.lineHeight,
          "--nx-link": token.colorLink,
          "--nx-link-hover": token.colorLinkHover,
        } as CSSProperties
      }
    >
      <Flex vertical align="center" gap={16}>
        <Flex justify="space-between" align="center" style={{ width: "100%", maxWidth: 420 }}>
          <h3 style={{ ...heading, margin: 0, fontSize: token.fontSizeHeading3, lineHeight: token.lineHeightHeading3 }}>
            {t("app.name")}
          </h3>
          <Segmented<Locale> aria-label={t("shell.language")} value={locale} onChange={setLocale} options={LOCALES} />
        </Flex>
        <section
          style={{
            width: "100%",
            maxWidth: 420,
            boxSizing: "border-box",
            padding: token.paddingLG,
            background: token.colorBgContainer,
            border: `${token.lineWidth}px ${token.lineType} ${token.colorBorderSecondary}`,
            borderRadius: token.borderRadiusLG,
          }}
        >
          <h1 style={{ ...heading, fontSize: 22, lineHeight: token.lineHeightHeading1, marginTop: 0, marginBottom: "0.5em" }}>
            {title}
          </h1>
          {children}
        </section>
      </Flex>
    </main>
  );
}

/** A line of text under the form ("No account? Sign up"). */
export function AuthFooter({ children }: { children: ReactNode }) {
  return <p style={{ marginTop: 16, marginBottom: 0 }}>{children}</p>;
}
