"use client";

import { DeleteOutlined } from "@ant-design/icons";
import { Button, Card, Form, Input } from "antd";
import type { FormListFieldData } from "antd";
import type { CSSProperties } from "react";
import { useT } from "@/i18n";
import "./messages";

/** One few-shot example (question and answer) in a `Form.List` of examples, with its remove button. */
export function ExampleCard({
  field,
  index,
  onRemove,
  style,
}: {
  field: FormListFieldData;
  index: number;
  onRemove: () => void;
  style?: CSSProperties;
}) {
  const t = useT();
  return (
    <Card
      size="small"
      style={style}
      title={t("agents.example", { n: index + 1 })}
      extra={
        <Button
          type="text"
          icon={<DeleteOutlined />}
          aria-label={t("agents.removeExample", { n: index + 1 })}
          onClick={onRemove}
        />
      }
    >
      <Form.Item label={t("agents.example.question")} name={[field.name, "question"]}>
        <Input.TextArea autoSize={{ minRows: 1, maxRows: 6 }} />
      </Form.Item>
      <Form.Item label={t("agents.example.answer")} name={[field.name, "answer"]} style={{ marginBottom: 0 }}>
        <Input.TextArea autoSize={{ minRows: 2, maxRows: 10 }} />
      </Form.Item>
    </Card>
  );
}
