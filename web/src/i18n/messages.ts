// Every feature's messages, merged. A feature adds its dictionary here once.
import { common } from "./common";
import { agents } from "@/features/agents/messages";
import { auth } from "@/features/auth/messages";
import { chat } from "@/features/chat/messages";
import { knowledge } from "@/features/knowledge/messages";
import { models } from "@/features/models/messages";
import { runs } from "@/features/runs/messages";
import { team } from "@/features/team/messages";

const all = [common, auth, chat, runs, agents, knowledge, models, team] as const;

type Union<T> = T extends { en: infer E } ? E : never;
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
export type Messages = UnionToIntersection<Union<(typeof all)[number]>>;
export type MessageKey = keyof Messages & string;

export const messages: Record<"en" | "zh", Record<MessageKey, string>> = {
  en: Object.assign({}, ...all.map((m) => m.en)),
  zh: Object.assign({}, ...all.map((m) => m.zh)),
};
