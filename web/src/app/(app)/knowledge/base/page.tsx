"use client";

import { Suspense } from "react";
import { KnowledgeBasePage } from "@/features/knowledge/KnowledgeBasePage";

export default function Page() {
  return (
    <Suspense>
      <KnowledgeBasePage />
    </Suspense>
  );
}
