"use client";

import { Button, Result } from "antd";
import { useT } from "@/i18n";

/** The 404 page's content (its illustration is large, so `app/not-found.tsx` loads it only when a page is not found). */
export default function NotFound() {
  const t = useT();
  return (
    <main>
      <Result
        status="404"
        title={t("notFound.title")}
        subTitle={t("notFound.body")}
        extra={
          <Button type="primary" href="/">
            {t("notFound.home")}
          </Button>
        }
      />
    </main>
  );
}
