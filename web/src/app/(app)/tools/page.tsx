"use client";

import { Suspense } from "react";
import { ToolsPage } from "@/features/tools/ToolsPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <ToolsPage />
      </Suspense>
    </AppShell>
  );
}
