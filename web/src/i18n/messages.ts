// Every feature's messages. The shell's (common) and the pages before sign-in's (auth) are always here; each other
// feature registers its dictionary when its code is loaded (its components import its `messages.ts`), so the
// sign-in page does not carry every page's texts. The keys (types only) are every feature's.
import { common } from "./common";
import { auth } from "@/features/auth/messages";
import type { agents } from "@/features/agents/messages";
import type { agentBuilder } from "@/features/agents/builderMessages";
import type { chat } from "@/features/chat/messages";
import type { attachments } from "@/features/chat/attachments/messages";
import type { knowledge } from "@/features/knowledge/messages";
import type { memory } from "@/features/memory/messages";
import type { models } from "@/features/models/messages";
import type { remoteAgents } from "@/features/remote-agents/messages";
import type { runs } from "@/features/runs/messages";
import type { skills } from "@/features/skills/messages";
import type { speech } from "@/features/chat/speechMessages";
import type { team } from "@/features/team/messages";
import type { tools } from "@/features/tools/messages";

type All =
  | typeof common
  | typeof auth
  | typeof chat
  | typeof attachments
  | typeof runs
  | typeof agents
  | typeof agentBuilder
  | typeof knowledge
  | typeof memory
  | typeof models
  | typeof team
  | typeof tools
  | typeof remoteAgents
  | typeof skills
  | typeof speech;

type Union<T> = T extends { en: infer E } ? E : never;
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
export type Messages = UnionToIntersection<Union<All>>;
export type MessageKey = keyof Messages & string;

export const messages: Record<"en" | "zh", Partial<Record<MessageKey, string>>> = {
  en: Object.assign({}, common.en, auth.en),
  zh: Object.assign({}, common.zh, auth.zh),
};

/** Adds a feature's dictionary (its `messages.ts` calls this when it is first imported). */
export function registerMessages(dictionary: { en: Record<string, string>; zh: Record<string, string> }): void {
  Object.assign(messages.en, dictionary.en);
  Object.assign(messages.zh, dictionary.zh);
}
