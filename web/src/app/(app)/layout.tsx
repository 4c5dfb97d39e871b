"use client";

import { App } from "antd";
import type { ReactNode } from "react";

/**
 * The pages that use Ant Design's message, notification and modal hooks (`App.useApp()`), under one App that stays
 * mounted between them, so a message shown just before a navigation stays on screen. A route group: the URLs are
 * unchanged. The pages before sign-in are outside it and do without App's code (its dialogs, notifications and
 * skeletons are ~20 KB gzipped), as the root layout does.
 */
export default function AppLayout({ children }: { children: ReactNode }) {
  return <App>{children}</App>;
}
