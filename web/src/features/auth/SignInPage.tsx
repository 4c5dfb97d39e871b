"use client";

import { Button } from "antd";
import dynamic from "next/dynamic";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState, type FormEvent } from "react";
import { loadConfig, type UIConfig } from "@/api/config";
import { useT } from "@/i18n";
import { safeNext, signIn } from "./api";
import { Input, Password } from "./inputs";
import { AuthCard, AuthFooter } from "./AuthCard";
import { AuthField, broken } from "./AuthField";

// Single sign-on's part of the page (a divider and a button), loaded only where the server has it configured.
const SsoSignIn = dynamic(() => import("./SsoSignIn"));

// Shown only after a failed request: loaded then, not with the page (plain links below, for the same reason: the
// first page anyone loads has a budget of 250 KB of gzipped JavaScript).
const ErrorAlert = dynamic(() => import("@/ui/ErrorAlert").then((module) => module.ErrorAlert));

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

  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [shown, setShown] = useState(false); // field errors show once the person has tried to send

  const emailError = broken(email, ["required", "email"]);
  const passwordError = broken(password, ["required"]);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setShown(true);
    if (emailError || passwordError) return;
    const values = { email: email.trim(), password };
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
        <AuthField id="password" label={t("auth.password")} error={shown && passwordError ? t(passwordError) : null}>
          <Password
            id="password"
            autoComplete="current-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            status={shown && passwordError ? "error" : undefined}
            aria-invalid={shown && passwordError ? true : undefined}
            aria-describedby={shown && passwordError ? "password-error" : undefined}
          />
        </AuthField>
        <Button type="primary" htmlType="submit" block loading={busy}>
          {t("auth.signIn")}
        </Button>
      </form>
      {config?.sso ? <SsoSignIn next={next} /> : null}
      <AuthFooter>
        {t("auth.noAccount")} <a href={`/signup?next=${encodeURIComponent(next)}`}>{t("auth.signUp")}</a>
      </AuthFooter>
    </AuthCard>
  );
}
