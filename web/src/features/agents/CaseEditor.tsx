"use client";

import { DeleteOutlined, PlusOutlined } from "@ant-design/icons";
import { Button, Card, Checkbox, Flex, Form, Input, Modal, Select } from "antd";
import { useState } from "react";
import { useT } from "@/i18n";
import { ErrorAlert } from "@/ui/ErrorAlert";
import type { Check, TestCase, TestCaseBody } from "./api";
import "./builderMessages";

const MAX_CHECKS = 10;

/** A check as the form holds it: every kind's fields, the kind choosing which are sent. */
interface CheckValues {
  type: Check["type"];
  value?: string;
  case_sensitive?: boolean;
  pattern?: string;
  rubric?: string;
}

interface CaseValues {
  question: string;
  checks: CheckValues[];
  expected_facts: string[];
}

function valuesOf(testCase: TestCase | null): CaseValues {
  if (!testCase) return { question: "", checks: [{ type: "contains", value: "", case_sensitive: false }], expected_facts: [] };
  return {
    question: testCase.question,
    checks: testCase.checks.map((check) => ({ ...check }) as CheckValues),
    expected_facts: testCase.expected_facts,
  };
}

function bodyOf(values: CaseValues): TestCaseBody {
  return {
    question: values.question,
    expected_facts: (values.expected_facts ?? []).map((fact) => fact.trim()).filter(Boolean),
    checks: values.checks.map((check): Check => {
      if (check.type === "regex") return { type: "regex", pattern: check.pattern ?? "" };
      if (check.type === "judge") return { type: "judge", rubric: check.rubric ?? "" };
      return { type: "contains", value: check.value ?? "", case_sensitive: Boolean(check.case_sensitive) };
    }),
  };
}

/** Describes a check in one line ("contains “4”", "matches /\b4\b/", "judged: …"). */
export function checkSummary(check: Check, t: ReturnType<typeof useT>): string {
  if (check.type === "contains") {
    return t(check.case_sensitive ? "agents.tests.summary.containsCase" : "agents.tests.summary.contains", { value: check.value });
  }
  if (check.type === "regex") return t("agents.tests.summary.regex", { pattern: check.pattern });
  return t("agents.tests.summary.judge", { rubric: check.rubric });
}

/** The dialog that adds or changes a test case: its question, its checks (contains, regex, judge) and facts. */
export function CaseEditor({
  testCase,
  onClose,
  onSave,
}: {
  /** The case to change; null: a new one. */
  testCase: TestCase | null;
  onClose: () => void;
  onSave: (body: TestCaseBody) => Promise<void>;
}) {
  const t = useT();
  const [form] = Form.useForm<CaseValues>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const save = async (values: CaseValues) => {
    setBusy(true);
    setError(null);
    try {
      await onSave(bodyOf(values));
      onClose();
    } catch (caught) {
      setError(caught);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal
      open
      title={testCase ? t("agents.tests.editTitle") : t("agents.tests.addTitle")}
      okText={t("common.save")}
      cancelText={t("common.cancel")}
      confirmLoading={busy}
      onOk={() => form.submit()}
      onCancel={onClose}
      width={680}
      destroyOnHidden
    >
      <ErrorAlert error={error} />
      <Form<CaseValues> form={form} layout="vertical" initialValues={valuesOf(testCase)} onFinish={save} requiredMark="optional">
        <Form.Item
          label={t("agents.tests.question")}
          name="question"
          rules={[{ required: true, whitespace: true, message: t("agents.tests.questionRequired") }]}
        >
          <Input.TextArea autoFocus autoSize={{ minRows: 2, maxRows: 8 }} maxLength={8000} />
        </Form.Item>
        <Form.List name="checks">
          {(fields, { add, remove }) => (
            <Flex vertical gap={8} style={{ marginBottom: 16 }}>
              {fields.map((field, index) => (
                <Card
                  key={field.key}
                  size="small"
                  title={t("agents.tests.check", { n: index + 1 })}
                  extra={
                    fields.length > 1 ? (
                      <Button
                        type="text"
                        icon={<DeleteOutlined />}
                        aria-label={t("agents.tests.removeCheck", { n: index + 1 })}
                        onClick={() => remove(field.name)}
                      />
                    ) : null
                  }
                >
                  <Form.Item label={t("agents.tests.checkType")} name={[field.name, "type"]}>
                    <Select
                      aria-label={t("agents.tests.checkTypeOf", { n: index + 1 })}
                      options={(["contains", "regex", "judge"] as const).map((type) => ({
                        value: type,
                        label: t(`agents.tests.type.${type}`),
                      }))}
                    />
                  </Form.Item>
                  <Form.Item noStyle shouldUpdate>
                    {() => {
                      const type = form.getFieldValue(["checks", field.name, "type"]) as Check["type"];
                      if (type === "regex") {
                        return (
                          <Form.Item
                            label={t("agents.tests.pattern")}
                            name={[field.name, "pattern"]}
                            extra={t("agents.tests.patternHint")}
                            rules={[{ required: true, message: t("agents.tests.patternRequired") }]}
                            style={{ marginBottom: 0 }}
                          >
                            <Input maxLength={500} style={{ fontFamily: "monospace" }} />
                          </Form.Item>
                        );
                      }
                      if (type === "judge") {
                        return (
                          <Form.Item
                            label={t("agents.tests.rubric")}
                            name={[field.name, "rubric"]}
                            extra={t("agents.tests.rubricHint")}
                            rules={[{ required: true, whitespace: true, message: t("agents.tests.rubricRequired") }]}
                            style={{ marginBottom: 0 }}
                          >
                            <Input.TextArea autoSize={{ minRows: 2, maxRows: 6 }} maxLength={4000} />
                          </Form.Item>
                        );
                      }
                      return (
                        <>
                          <Form.Item
                            label={t("agents.tests.value")}
                            name={[field.name, "value"]}
                            rules={[{ required: true, message: t("agents.tests.valueRequired") }]}
                            style={{ marginBottom: 8 }}
                          >
                            <Input maxLength={2000} />
                          </Form.Item>
                          <Form.Item name={[field.name, "case_sensitive"]} valuePropName="checked" style={{ marginBottom: 0 }}>
                            <Checkbox>{t("agents.tests.caseSensitive")}</Checkbox>
                          </Form.Item>
                        </>
                      );
                    }}
                  </Form.Item>
                </Card>
              ))}
              {fields.length < MAX_CHECKS ? (
                <Button
                  icon={<PlusOutlined />}
                  style={{ alignSelf: "start" }}
                  onClick={() => add({ type: "contains", value: "", case_sensitive: false })}
                >
                  {t("agents.tests.addCheck")}
                </Button>
              ) : null}
            </Flex>
          )}
        </Form.List>
        <Form.Item
          label={t("agents.tests.facts")}
          name="expected_facts"
          extra={t("agents.tests.factsHint")}
          style={{ marginBottom: 0 }}
        >
          <Select mode="tags" open={false} suffixIcon={null} tokenSeparators={["\n"]} maxCount={20} />
        </Form.Item>
      </Form>
    </Modal>
  );
}
