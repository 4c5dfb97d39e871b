"use client";

import { Suspense } from "react";
import { TimelinePage } from "@/features/runs/TimelinePage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <TimelinePage />
      </Suspense>
    </AppShell>
  );
}
