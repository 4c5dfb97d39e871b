"use client";

import { Suspense } from "react";
import { ModelsPage } from "@/features/models/ModelsPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <ModelsPage />
      </Suspense>
    </AppShell>
  );
}
