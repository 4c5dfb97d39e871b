import type { ReactNode } from "react";

/** A horizontally scrolling region that the keyboard can reach (a wide table on a phone). */
export function ScrollRegion({ label, children }: { label: string; children: ReactNode }) {
  return (
    <div role="region" aria-label={label} tabIndex={0} style={{ overflowX: "auto", maxWidth: "100%" }}>
      {children}
    </div>
  );
}
