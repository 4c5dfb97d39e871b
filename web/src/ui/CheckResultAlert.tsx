import { Alert } from "antd";
import { useT } from "@/i18n";

/** The outcome of the last connectivity check of a listed thing (an MCP server, a remote agent), closable. */
export function CheckResultAlert({
  ok,
  title,
  onClose,
  testId,
}: {
  ok: boolean;
  title: string;
  onClose: () => void;
  testId: string;
}) {
  const t = useT();
  return (
    <Alert
      type={ok ? "success" : "warning"}
      showIcon
      closable={{ onClose, "aria-label": t("common.close") }}
      title={title}
      data-testid={testId}
    />
  );
}
