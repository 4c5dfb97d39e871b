"use client";

import { Suspense } from "react";
import { ChatPage } from "@/features/chat/ChatPage";
import { AppShell } from "@/ui/AppShell";

export default function Page() {
  return (
    <AppShell>
      <Suspense>
        <ChatPage />
      </Suspense>
    </AppShell>
  );
}
