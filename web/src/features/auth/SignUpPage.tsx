"use client";

import { Alert, Button } from "antd";
import dynamic from "next/dynamic";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState, type FormEvent } from "react";
import { loadConfig } from "@/api/config";
import { useT } from "@/i18n";
import { safeNext, signUp } from "./api";
import { Input, Password } from "./inputs";
import { AuthCard, AuthFooter } from "./AuthCard";
import { AuthField, broken } from "./AuthField";

// Shown only after a failed request: loaded then, not with the page (plain links below, for the same reason: the
// first page anyone loads has a budget of 250 KB of gzipped JavaScript).
const ErrorAlert = dynamic(() => import("@/ui/ErrorAlert").then((module) => module.ErrorAlert));

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

  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [tenantName, setTenantName] = useState("");
  const [shown, setShown] = useState(false); // field errors show once the person has tried to send

  const emailError = broken(email, ["required", "email"]);
  const passwordError = broken(password, ["required"]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setShown(true);
    if (emailError || passwordError) return;
    setBusy(true);
    setError(null);
    try {
      await signUp({
        email: email.trim(),
        password,
        display_name: displayName.trim() || null,
        tenant_name: invitation ? null : tenantName.trim() || null,
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
      {error ? <ErrorAlert error={error} /> : null}
      <form onSubmit={submit} noValidate>
        <AuthField id="email" label={t("auth.email")} error={shown && emailError ? t(emailError) : null}>
          <Input
            id="email"
            type="email"
            autoComplete="email"
            autoFocus
            value={email}
            onChange={(event) => setEmail(event.target.value)}
            status={shown && emailError ? "error" : undefined}
            aria-invalid={shown && emailError ? true : undefined}
            aria-describedby={shown && emailError ? "email-error" : undefined}
          />
        </AuthField>
        <AuthField
          id="password"
          label={t("auth.password")}
          extra={t("auth.passwordHint")}
          error={shown && passwordError ? t(passwordError) : null}
        >
          <Password
            id="password"
            autoComplete="new-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            status={shown && passwordError ? "error" : undefined}
            aria-invalid={shown && passwordError ? true : undefined}
            aria-describedby={shown && passwordError ? "password-error" : "password-extra"}
          />
        </AuthField>
        <AuthField id="display_name" label={t("auth.displayName")}>
          <Input
            id="display_name"
            autoComplete="name"
            value={displayName}
            onChange={(event) => setDisplayName(event.target.value)}
          />
        </AuthField>
        {invitation ? null : (
          <AuthField id="tenant_name" label={t("auth.tenantName")} extra={t("auth.tenantNameHint")}>
            <Input
              id="tenant_name"
              autoComplete="organization"
              value={tenantName}
              onChange={(event) => setTenantName(event.target.value)}
              aria-describedby="tenant_name-extra"
            />
          </AuthField>
        )}
        <Button type="primary" htmlType="submit" block loading={busy}>
          {t("auth.signUp")}
        </Button>
      </form>
      <AuthFooter>
        {t("auth.haveAccount")} <a href={`/signin?next=${encodeURIComponent(next)}`}>{t("auth.signIn")}</a>
      </AuthFooter>
    </AuthCard>
  );
}
