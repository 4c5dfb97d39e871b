"use client";

import dynamic from "next/dynamic";

// The root not-found boundary is part of the root layout, so whatever it imports every page loads. Ant Design's
// Result (with its 404/403/500 illustrations, ~10 KB gzipped) comes only when a page is actually not found.
const NotFound = dynamic(() => import("@/ui/NotFound"));

export default function NotFoundPage() {
  return <NotFound />;
}
