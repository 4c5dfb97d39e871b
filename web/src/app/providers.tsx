"use client";

import type { ReactNode } from "react";
import { LocaleProvider } from "@/i18n";
import { ThemeProvider } from "@/ui/theme";

export function Providers({ children }: { children: ReactNode }) {
  return (
    <LocaleProvider>
      <ThemeProvider>{children}</ThemeProvider>
    </LocaleProvider>
  );
}
