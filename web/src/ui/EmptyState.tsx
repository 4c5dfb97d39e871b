import { Empty } from "antd";
import type { ReactNode } from "react";

/** An empty list that says what to do next, with the action that does it. */
export function EmptyState({ title, hint, action }: { title: string; hint?: string; action?: ReactNode }) {
  return (
    <Empty
      image={Empty.PRESENTED_IMAGE_SIMPLE}
      description={
        <div>
          <div style={{ fontWeight: 600 }}>{title}</div>
          {hint ? <div style={{ marginTop: 4 }}>{hint}</div> : null}
        </div>
      }
    >
      {action}
    </Empty>
  );
}
