"use client";

import { AgentsListPage } from "@/features/agents/AgentsListPage";

export default function Page() {
  return <AgentsListPage />;
}
