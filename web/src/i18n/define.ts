/** A feature's messages in every language; TypeScript refuses a Chinese dictionary that lacks an English key. */
export function defineMessages<const T extends Record<string, string>>(messages: {
  en: T;
  zh: Record<keyof T, string>;
}): { en: T; zh: Record<keyof T, string> } {
  return messages;
}
