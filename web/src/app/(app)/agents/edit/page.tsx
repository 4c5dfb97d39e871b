"use client";

import { Suspense } from "react";
import { AgentStudioPage } from "@/features/agents/AgentStudioPage";

export default function Page() {
  return (
    <Suspense>
      <AgentStudioPage />
    </Suspense>
  );
}
