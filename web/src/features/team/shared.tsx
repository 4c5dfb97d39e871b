"use client";

import { CheckCircleFilled, CopyOutlined } from "@ant-design/icons";
import { App, Button, Input, Space, Tag, theme } from "antd";
import { useId, type ReactNode } from "react";
import { useLocale, useT } from "@/i18n";

/** A value shown once, read-only, with a button that copies it. */
export function CopyField({ label, value }: { label: string; value: string }) {
  const t = useT();
  const { message } = App.useApp();
  const id = useId();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      message.success(t("common.copied"));
    } catch {
      // No clipboard permission: select the text so that the person can copy it by hand.
      (document.getElementById(id) as HTMLInputElement | null)?.select();
    }
  };
  return (
    <div style={{ marginBottom: 12 }}>
      <label htmlFor={id} style={{ display: "block", marginBottom: 4, fontWeight: 600 }}>
        {label}
      </label>
      <Space.Compact style={{ width: "100%" }}>
        <Input id={id} readOnly value={value} style={{ fontFamily: "monospace" }} onFocus={(e) => e.target.select()} />
        <Button icon={<CopyOutlined />} onClick={copy} aria-label={`${t("common.copy")}: ${label}`}>
          {t("common.copy")}
        </Button>
      </Space.Compact>
    </div>
  );
}

export function useFormatDate(): (iso: string | null | undefined) => string {
  const { locale } = useLocale();
  return (iso) =>
    iso
      ? new Date(iso).toLocaleString(locale === "zh" ? "zh-CN" : "en-US", { dateStyle: "medium", timeStyle: "short" })
      : "—";
}

export const ROLE_RANK: Record<string, number> = { owner: 0, admin: 1, developer: 2, user: 3 };

/** A status tag whose colour is on its icon only: coloured tag text is below 4.5:1 contrast. */
export function OkTag({ children }: { children: ReactNode }) {
  const { token } = theme.useToken();
  return <Tag icon={<CheckCircleFilled style={{ color: token.colorSuccess }} />}>{children}</Tag>;
}
