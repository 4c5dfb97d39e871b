"use client";

import { Suspense } from "react";
import { KnowledgeListPage } from "@/features/knowledge/KnowledgeListPage";

export default function Page() {
  return (
    <Suspense>
      <KnowledgeListPage />
    </Suspense>
  );
}
