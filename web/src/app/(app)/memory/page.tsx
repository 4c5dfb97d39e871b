"use client";

import { Suspense } from "react";
import { MemoryPage } from "@/features/memory/MemoryPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <MemoryPage />
      </Suspense>
    </AppShell>
  );
}
