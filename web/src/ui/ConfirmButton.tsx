"use client";

import { Button, Popconfirm } from "antd";
import { useT } from "@/i18n";

/** A small button for a change that cannot be undone (revoke, remove): it asks first, in a popover. */
export function ConfirmButton({
  label,
  question,
  target,
  onConfirm,
}: {
  label: string;
  question: string;
  /** What it acts on, for screen readers ("Revoke ci-deploy"). */
  target: string;
  onConfirm: () => unknown;
}) {
  const t = useT();
  return (
    <Popconfirm
      title={question}
      okText={label}
      cancelText={t("common.cancel")}
      okButtonProps={{ danger: true }}
      onConfirm={onConfirm}
    >
      <Button size="small" autoInsertSpace={false} aria-label={`${label} ${target}`}>
        {label}
      </Button>
    </Popconfirm>
  );
}
