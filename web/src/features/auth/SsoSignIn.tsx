"use client";

import { Button, Divider } from "antd";
import { useT } from "@/i18n";

/** "or" and the button that signs in through the identity provider, then comes back to `next`. */
export default function SsoSignIn({ next }: { next: string }) {
  const t = useT();
  return (
    <>
      <Divider plain>{t("auth.or")}</Divider>
      <Button block href={`/api/auth/oidc/login?next=${encodeURIComponent(`/auth/callback?next=${encodeURIComponent(next)}`)}`}>
        {t("auth.sso")}
      </Button>
    </>
  );
}
