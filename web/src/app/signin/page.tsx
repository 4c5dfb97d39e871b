"use client";

import { Suspense } from "react";
import { SignInPage } from "@/features/auth/SignInPage";

export default function Page() {
  return (
    <Suspense>
      <SignInPage />
    </Suspense>
  );
}
