"use client";

import { Button, Form } from "antd";
import dynamic from "next/dynamic";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { loadConfig, type UIConfig } from "@/api/config";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { safeNext, signIn } from "./api";
import { Input, Password } from "./inputs";
import { AuthCard, AuthFooter } from "./AuthCard";

// Single sign-on's part of the page (a divider and a button), loaded only where the server has it configured.
const SsoSignIn = dynamic(() => import("./SsoSignIn"));

export function SignInPage() {
  const t = useT();
  const router = useRouter();
  const next = safeNext(useSearchParams().get("next"));
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [config, setConfig] = useState<UIConfig | null>(null);
  useEffect(() => {
    loadConfig().then(setConfig, () => undefined);
  }, []);

  const submit = async (values: { email: string; password: string }) => {
    setBusy(true);
    setError(null);
    try {
      await signIn(values);
      router.replace(next);
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  return (
    <AuthCard title={t("auth.signInTitle")}>
      <ErrorAlert error={error} />
      <Form layout="vertical" onFinish={submit} requiredMark={false}>
        <Form.Item
          label={t("auth.email")}
          name="email"
          rules={[
            { required: true, message: t("auth.required") },
            { type: "email", message: t("auth.invalidEmail") },
          ]}
        >
          <Input autoComplete="email" autoFocus />
        </Form.Item>
        <Form.Item label={t("auth.password")} name="password" rules={[{ required: true, message: t("auth.required") }]}>
          <Password autoComplete="current-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit" block loading={busy}>
          {t("auth.signIn")}
        </Button>
      </Form>
      {config?.sso ? <SsoSignIn next={next} /> : null}
      <AuthFooter>
        {t("auth.noAccount")} <Link href={`/signup?next=${encodeURIComponent(next)}`}>{t("auth.signUp")}</Link>
      </AuthFooter>
    </AuthCard>
  );
}
