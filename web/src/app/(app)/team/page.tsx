"use client";

import { Suspense } from "react";
import { TeamPage } from "@/features/team/TeamPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <TeamPage />
      </Suspense>
    </AppShell>
  );
}
