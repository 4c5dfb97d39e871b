"use client";

import { Suspense } from "react";
import { CallbackPage } from "@/features/auth/CallbackPage";

export default function Page() {
  return (
    <Suspense>
      <CallbackPage />
    </Suspense>
  );
}
