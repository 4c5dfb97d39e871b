"use client";

import { App, Button, Flex } from "antd";
import { useRouter, useSearchParams } from "next/navigation";
import { useState } from "react";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { acceptInvitation, switchTenant } from "./api";
import { Input } from "./inputs";
import { AuthCard } from "./AuthCard";
import { AuthField } from "./AuthField";
import { useSession } from "./SessionProvider";

/** `/invite?code=...`: a signed-in person accepts and moves to the workspace; anyone else signs up with the code. */
export function InvitePage() {
  const t = useT();
  const router = useRouter();
  const { message } = App.useApp();
  const session = useSession();
  const [code, setCode] = useState(useSearchParams().get("code") ?? "");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const here = `/invite?code=${encodeURIComponent(code)}`;

  const accept = async () => {
    setBusy(true);
    setError(null);
    try {
      const tenant = await acceptInvitation(code.trim());
      await switchTenant(tenant.id);
      message.success(t("auth.invite.accepted", { name: tenant.name }));
      router.replace("/chat");
    } catch (caught) {
      setError(caught);
      setBusy(false);
    }
  };

  return (
    <AuthCard title={t("auth.invite.title")}>
      <ErrorAlert error={error} />
      <AuthField id="invitation_code" label={t("auth.invite.code")}>
        <Input
          id="invitation_code"
          value={code}
          onChange={(event) => setCode(event.target.value)}
          autoComplete="off"
          aria-required
        />
      </AuthField>
      {session ? (
        <Button type="primary" block loading={busy} disabled={!code.trim()} onClick={accept}>
          {t("auth.invite.accept")}
        </Button>
      ) : (
        <Flex vertical gap={12}>
          <Button type="primary" block disabled={!code.trim()} href={`/signup?invitation=${encodeURIComponent(code.trim())}`}>
            {t("auth.invite.signUpWith")}
          </Button>
          <p style={{ margin: 0 }}>
            {t("auth.invite.signInFirst")}{" "}
            <a href={`/signin?next=${encodeURIComponent(here)}`}>{t("auth.signIn")}</a>
          </p>
        </Flex>
      )}
    </AuthCard>
  );
}
