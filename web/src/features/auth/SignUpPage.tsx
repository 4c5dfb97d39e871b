"use client";

import { Alert, Button, Form } from "antd";
import Link from "next/link";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { loadConfig } from "@/api/config";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { safeNext, signUp } from "./api";
import { Input, Password } from "./inputs";
import { AuthCard, AuthFooter } from "./AuthCard";

interface SignUpValues {
  email: string;
  password: string;
  display_name?: string;
  tenant_name?: string;
}

export function SignUpPage() {
  const t = useT();
  const router = useRouter();
  const params = useSearchParams();
  const next = safeNext(params.get("next"));
  const invitation = params.get("invitation");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [open, setOpen] = useState(true);
  useEffect(() => {
    loadConfig().then((config) => setOpen(config.open_signup), () => undefined);
  }, []);

  const submit = async (values: SignUpValues) => {
    setBusy(true);
    setError(null);
    try {
      await signUp({
        email: values.email,
        password: values.password,
        display_name: values.display_name || null,
        tenant_name: invitation ? null : values.tenant_name || null,
        invitation_code: invitation,
      });
      router.replace(next);
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  return (
    <AuthCard title={invitation ? t("auth.invite.signUpWith") : t("auth.signUpTitle")}>
      {!open && !invitation ? <Alert type="info" showIcon title={t("auth.signupClosed")} style={{ marginBottom: 16 }} /> : null}
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
        <Form.Item
          label={t("auth.password")}
          name="password"
          extra={t("auth.passwordHint")}
          rules={[{ required: true, message: t("auth.required") }]}
        >
          <Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item label={t("auth.displayName")} name="display_name">
          <Input autoComplete="name" />
        </Form.Item>
        {invitation ? null : (
          <Form.Item label={t("auth.tenantName")} name="tenant_name" extra={t("auth.tenantNameHint")}>
            <Input autoComplete="organization" />
          </Form.Item>
        )}
        <Button type="primary" htmlType="submit" block loading={busy}>
          {t("auth.signUp")}
        </Button>
      </Form>
      <AuthFooter>
        {t("auth.haveAccount")} <Link href={`/signin?next=${encodeURIComponent(next)}`}>{t("auth.signIn")}</Link>
      </AuthFooter>
    </AuthCard>
  );
}
