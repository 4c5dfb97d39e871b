"use client";

import { Suspense } from "react";
import { InvitePage } from "@/features/auth/InvitePage";

export default function Page() {
  return (
    <Suspense>
      <InvitePage />
    </Suspense>
  );
}
