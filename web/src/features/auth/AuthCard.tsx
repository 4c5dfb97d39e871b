"use client";

import { Card, Flex, Select, Typography } from "antd";
import type { ReactNode } from "react";
import { LOCALES, useLocale } from "@/i18n";

/** The frame of the pages before sign-in: a card in the middle, the language switch above it. */
export function AuthCard({ title, children }: { title: string; children: ReactNode }) {
  const { locale, setLocale, t } = useLocale();
  return (
    <main style={{ minHeight: "100vh", padding: "8vh 16px" }}>
      <Flex vertical align="center" gap={16}>
        <Flex justify="space-between" align="center" style={{ width: "100%", maxWidth: 420 }}>
          <Typography.Title level={3} style={{ margin: 0 }}>
            {t("app.name")}
          </Typography.Title>
          <Select
            aria-label={t("shell.language")}
            value={locale}
            onChange={setLocale}
            options={LOCALES}
            style={{ width: 110 }}
          />
        </Flex>
        <Card style={{ width: "100%", maxWidth: 420 }}>
          <Typography.Title level={1} style={{ fontSize: 22, marginTop: 0 }}>
            {title}
          </Typography.Title>
          {children}
        </Card>
      </Flex>
    </main>
  );
}
