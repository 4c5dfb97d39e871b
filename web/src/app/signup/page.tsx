"use client";

import { Suspense } from "react";
import { SignUpPage } from "@/features/auth/SignUpPage";

export default function Page() {
  return (
    <Suspense>
      <SignUpPage />
    </Suspense>
  );
}
