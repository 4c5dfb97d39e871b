"use client";

import { Alert, Form, Modal, Radio, Select, Typography } from "antd";
import type { RadioRef } from "antd";
import { useEffect, useRef, useState } from "react";
import { useT } from "@/i18n";
import { metadataKey, readColumns, type RowChoice } from "./rows";
import "./messages";

interface Values {
  split: "rows" | "file";
  id_column?: string;
  metadata_columns: string[];
  text_columns: string[];
}

/**
 * Asked when CSV or JSON Lines files are uploaded: one document per row (with the id, metadata and text columns, offered
 * from the first file's header) or one document for the whole file. `onDone` gets the choice; null when cancelled.
 */
export function RowImportModal({
  files,
  onDone,
}: {
  files: File[] | null;
  onDone: (choice: RowChoice | "file" | null) => void;
}) {
  const t = useT();
  const [form] = Form.useForm<Values>();
  const [columns, setColumns] = useState<string[] | null>(null);
  const firstChoice = useRef<RadioRef>(null);
  const split = Form.useWatch("split", form);
  const idColumn = Form.useWatch("id_column", form);
  const metadata = Form.useWatch("metadata_columns", form) ?? [];
  const first = files?.[0];

  useEffect(() => {
    if (!first) return;
    let current = true;
    setColumns(null);
    void readColumns(first).then((found) => {
      if (!current) return;
      setColumns(found);
      const id = found.find((name) => name.toLowerCase() === "id");
      form.setFieldsValue({ split: "rows", id_column: id, metadata_columns: [], text_columns: [] });
    });
    return () => {
      current = false;
    };
  }, [first, form]);

  const names = columns ?? [];
  const submit = (values: Values) => {
    if (values.split === "file") return onDone("file");
    onDone({
      id_column: values.id_column || undefined,
      metadata_columns: values.metadata_columns ?? [],
      text_columns: values.text_columns ?? [],
    });
  };
  const rows = split !== "file";

  return (
    <Modal
      open={!!files?.length}
      title={
        files && files.length > 1
          ? t("kb.rows.titleMany", { count: files.length })
          : t("kb.rows.title", { name: first?.name ?? "" })
      }
      okText={t("kb.rows.upload")}
      cancelText={t("common.cancel")}
      onOk={() => form.submit()}
      onCancel={() => onDone(null)}
      // Keyboard users start in the dialog, on the first choice (Escape cancels, Enter submits).
      afterOpenChange={(open) => open && firstChoice.current?.focus()}
      okButtonProps={{ disabled: columns === null }}
      // Rendered only while open: a hidden dialog kept rendered would stay on the stack of layers Escape closes.
      destroyOnHidden
    >
      <Typography.Paragraph type="secondary">{t("kb.rows.intro")}</Typography.Paragraph>
      <Form
        form={form}
        layout="vertical"
        onFinish={submit}
        initialValues={{ split: "rows", metadata_columns: [], text_columns: [] }}
      >
        <Form.Item name="split" label={t("kb.rows.split")}>
          <Radio.Group>
            <Radio value="rows" ref={firstChoice}>
              {t("kb.rows.split.rows")}
            </Radio>
            <Radio value="file">{t("kb.rows.split.file")}</Radio>
          </Radio.Group>
        </Form.Item>
        {rows && columns !== null && names.length === 0 ? (
          <Alert type="warning" showIcon title={t("kb.rows.noColumns")} style={{ marginBottom: 16 }} />
        ) : null}
        {rows ? (
          <>
            <Form.Item name="id_column" label={t("kb.rows.idColumn")} extra={t("kb.rows.idColumnHint")}>
              <Select
                allowClear
                showSearch
                options={names.map((name) => ({ value: name, label: name }))}
              />
            </Form.Item>
            <Form.Item name="metadata_columns" label={t("kb.rows.metadataColumns")} extra={t("kb.rows.metadataHint")}>
              <Select
                mode="multiple"
                allowClear
                options={names
                  .filter((name) => name !== idColumn)
                  .map((name) => {
                    const key = metadataKey(name);
                    return {
                      value: name,
                      label: key ? (key === name ? name : `${name} → ${key}`) : t("kb.rows.badKey", { name }),
                      disabled: !key,
                    };
                  })}
              />
            </Form.Item>
            <Form.Item name="text_columns" label={t("kb.rows.textColumns")} extra={t("kb.rows.textHint")}>
              <Select
                mode="multiple"
                allowClear
                options={names
                  .filter((name) => name !== idColumn && !metadata.includes(name))
                  .map((name) => ({ value: name, label: name }))}
              />
            </Form.Item>
          </>
        ) : null}
      </Form>
    </Modal>
  );
}
