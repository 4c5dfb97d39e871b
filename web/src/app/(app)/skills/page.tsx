"use client";

import { Suspense } from "react";
import { SkillsPage } from "@/features/skills/SkillsPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <SkillsPage />
      </Suspense>
    </AppShell>
  );
}
