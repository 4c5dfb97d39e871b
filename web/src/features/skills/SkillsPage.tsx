"use client";

import { useSearchParams } from "next/navigation";
import { SkillPage } from "./SkillPage";
import { SkillsListPage } from "./SkillsListPage";

/** `/skills` lists the skills; `/skills?id=<skill>` shows one. */
export function SkillsPage() {
  const id = useSearchParams().get("id");
  return id ? <SkillPage key={id} id={id} /> : <SkillsListPage />;
}
