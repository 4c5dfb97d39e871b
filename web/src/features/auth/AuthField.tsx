"use client";

import { theme } from "antd";
import type { ReactNode } from "react";

/** The rules the pages before sign-in check before sending (the server checks again and has the last word). */
export type Rule = "required" | "email";

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/** The message key of the first rule `value` breaks, or null. */
export function broken(value: string, rules: Rule[]): "auth.required" | "auth.invalidEmail" | null {
  if (rules.includes("required") && !value.trim()) return "auth.required";
  if (rules.includes("email") && value.trim() && !EMAIL.test(value.trim())) return "auth.invalidEmail";
  return null;
}

/**
 * A labelled field of the pages before sign-in, laid out as Ant Design's vertical form items. Not Form.Item: its form
 * library is about 13 KB gzipped on the first page anyone loads (budget: 250 KB of JavaScript).
 */
export function AuthField({
  id,
  label,
  error,
  extra,
  children,
}: {
  id: string;
  label: string;
  error?: string | null;
  extra?: string;
  children: ReactNode;
}) {
  const { token } = theme.useToken();
  return (
    <div style={{ marginBottom: token.marginLG }}>
      <label htmlFor={id} style={{ display: "block", paddingBottom: token.paddingXS, color: token.colorTextHeading }}>
        {label}
      </label>
      {children}
      {error ? (
        <div id={`${id}-error`} style={{ color: token.colorErrorText, marginTop: 2 }}>
          {error}
        </div>
      ) : extra ? (
        <div id={`${id}-extra`} style={{ color: token.colorTextDescription, marginTop: 2 }}>
          {extra}
        </div>
      ) : null}
    </div>
  );
}
