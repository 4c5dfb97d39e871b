"use client";

import { Select } from "antd";
import { useT } from "@/i18n";
import { useAsync } from "@/ui/useAsync";
import { listSkills } from "./api";
import "./messages";

/**
 * The skills an agent may load (the studio's `skill_ids`): a multiple select of the skills the caller may use, each
 * with its description; skills the draft names that are gone (or not shared with the caller) show by their id.
 */
export function SkillPicker({
  value,
  onChange,
  disabled,
  id,
}: {
  value?: string[];
  onChange?: (value: string[]) => void;
  disabled?: boolean;
  id?: string;
}) {
  const t = useT();
  const skills = useAsync(listSkills, []);
  const known = new Set((skills.data ?? []).map((skill) => skill.id));
  const options = [
    ...(skills.data ?? []).map((skill) => ({
      value: skill.id,
      label: skill.name,
      title: skill.description,
    })),
    ...(value ?? []).filter((skillId) => skills.data && !known.has(skillId)).map((skillId) => ({
      value: skillId,
      label: t("skills.picker.unknown", { id: skillId.slice(0, 8) }),
      title: "",
    })),
  ];
  return (
    <Select
      id={id}
      mode="multiple"
      allowClear
      value={value ?? []}
      onChange={onChange}
      disabled={disabled}
      loading={skills.loading}
      optionFilterProp="label"
      data-testid="skill-picker"
      notFoundContent={skills.error ? t("skills.picker.error") : t("skills.picker.none")}
      options={options}
      optionRender={(option) => (
        <div>
          <div>{option.data.label}</div>
          {option.data.title ? (
            <div style={{ fontSize: 12, opacity: 0.75, whiteSpace: "normal" }}>{option.data.title}</div>
          ) : null}
        </div>
      )}
    />
  );
}
