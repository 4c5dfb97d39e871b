import { defineMessages } from "@/i18n/define";
import { registerMessages } from "@/i18n/messages";

export const runs = defineMessages({
  en: {
    "runs.title": "Run timeline",
    "runs.missing": "No run is named in the address.",
    "runs.status": "Status",
    "runs.total": "Total",
    "runs.tokens": "{input} in · {output} out",
    "runs.step": "Step {n}",
    "runs.planning": "Planning",
    "runs.finalAnswer": "final answer",
    "runs.duration": "{seconds} s",
    "runs.subAgent": "in {agent}",
    "runs.input": "Message",
    "runs.answer": "Answer",
    "runs.error": "Error",
    "runs.live": "Live: updates as the run goes on.",
    "runs.noSteps": "No step recorded yet.",
    "runs.memory": "Memory",
    "runs.memory.recalled": "Recalled before the run ({n})",
    "runs.memory.added": "Learned: {text}",
    "runs.memory.updated": "Updated: {text}",
  },
  zh: {
    "runs.title": "运行时间线",
    "runs.missing": "地址中没有指定运行。",
    "runs.status": "状态",
    "runs.total": "总计",
    "runs.tokens": "输入 {input} · 输出 {output}",
    "runs.step": "第 {n} 步",
    "runs.planning": "规划",
    "runs.finalAnswer": "最终答案",
    "runs.duration": "{seconds} 秒",
    "runs.subAgent": "在 {agent} 中",
    "runs.input": "消息",
    "runs.answer": "回答",
    "runs.error": "错误",
    "runs.live": "实时：随运行更新。",
    "runs.noSteps": "尚无步骤记录。",
    "runs.memory": "记忆",
    "runs.memory.recalled": "运行前记起（{n}）",
    "runs.memory.added": "学到：{text}",
    "runs.memory.updated": "更新：{text}",
  },
});

registerMessages(runs);
