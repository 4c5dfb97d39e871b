"use client";

import { Suspense } from "react";
import { RemoteAgentsPage } from "@/features/remote-agents/RemoteAgentsPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <RemoteAgentsPage />
      </Suspense>
    </AppShell>
  );
}
