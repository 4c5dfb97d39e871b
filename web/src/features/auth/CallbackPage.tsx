"use client";

import { Alert, Button, Spin } from "antd";
import { useRouter, useSearchParams } from "next/navigation";
import { useEffect, useState } from "react";
import { saveTokens } from "@/api/session";
import { useT } from "@/i18n";
import { safeNext } from "./api";
import { AuthCard } from "./AuthCard";

/** Where single sign-on comes back: the token pair (or the error) is in the URL fragment, which no server sees. */
export function CallbackPage() {
  const t = useT();
  const router = useRouter();
  const next = safeNext(useSearchParams().get("next"));
  const [failure, setFailure] = useState<string | null>(null);
  useEffect(() => {
    const fragment = new URLSearchParams(window.location.hash.slice(1));
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    const access = fragment.get("access_token");
    const refresh = fragment.get("refresh_token");
    if (access && refresh) {
      saveTokens({ access_token: access, refresh_token: refresh, expires_in: Number(fragment.get("expires_in") ?? 900) });
      router.replace(next);
    } else {
      setFailure(fragment.get("error_description") || fragment.get("error") || "no token");
    }
  }, [next, router]);
  return (
    <AuthCard title={failure ? t("auth.callbackFailed") : t("auth.callbackWorking")}>
      {failure ? (
        <>
          <Alert type="error" showIcon title={failure} style={{ marginBottom: 16 }} />
          <Button href="/signin">{t("auth.signIn")}</Button>
        </>
      ) : (
        <Spin />
      )}
    </AuthCard>
  );
}
