"use client";

import { ConfigProvider, theme as antdTheme } from "antd";
import type { Locale as AntdLocale } from "antd/es/locale";
// Ant Design's own English is its default (already in every page's bundle); Chinese is loaded when someone picks it.
// The `es` build on purpose: `antd/locale/*` is the CommonJS build, a second copy of the date and pagination texts.
import enUS from "antd/es/locale/en_US";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { useLocale } from "@/i18n";

export type ThemeChoice = "light" | "dark" | "system";
const STORAGE_KEY = "nexent.theme";

interface ThemeState {
  choice: ThemeChoice;
  dark: boolean;
  setChoice: (choice: ThemeChoice) => void;
}

const ThemeContext = createContext<ThemeState | null>(null);

function systemDark(): boolean {
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ?? false;
}

/** Ant Design's theme (light or dark, remembered; the system's by default) and locale for the whole UI. */
export function ThemeProvider({ children }: { children: ReactNode }) {
  const { locale } = useLocale();
  const [choice, setChoiceState] = useState<ThemeChoice>("system");
  const [dark, setDark] = useState(false);
  const [zhCN, setZhCN] = useState<AntdLocale | null>(null);
  useEffect(() => {
    if (locale !== "zh" || zhCN) return;
    let live = true;
    void import("antd/es/locale/zh_CN").then((module) => live && setZhCN(module.default));
    return () => {
      live = false;
    };
  }, [locale, zhCN]);
  useEffect(() => {
    const stored = window.localStorage.getItem(STORAGE_KEY);
    if (stored === "light" || stored === "dark" || stored === "system") setChoiceState(stored);
  }, []);
  useEffect(() => {
    const apply = () => setDark(choice === "dark" || (choice === "system" && systemDark()));
    apply();
    const query = window.matchMedia?.("(prefers-color-scheme: dark)");
    query?.addEventListener("change", apply);
    return () => query?.removeEventListener("change", apply);
  }, [choice]);
  useEffect(() => {
    document.documentElement.dataset.theme = dark ? "dark" : "light";
    document.documentElement.style.colorScheme = dark ? "dark" : "light";
  }, [dark]);
  const setChoice = useCallback((next: ThemeChoice) => {
    window.localStorage.setItem(STORAGE_KEY, next);
    setChoiceState(next);
  }, []);
  const value = useMemo(() => ({ choice, dark, setChoice }), [choice, dark, setChoice]);
  return (
    <ThemeContext.Provider value={value}>
      <ConfigProvider
        locale={locale === "zh" && zhCN ? zhCN : enUS}
        theme={{
          algorithm: dark ? antdTheme.darkAlgorithm : antdTheme.defaultAlgorithm,
          // Ant Design's default blue is below 4.5:1 on white for small text (axe's colour contrast); this one passes.
          // Secondary text too: Ant Design's 45% grey is 3.5:1.
          token: dark
            ? {
                // Links on the dark background: Ant Design's dark blue is 3.5:1 there; this one is over 7:1.
                colorLink: "#6ea8fe",
                borderRadius: 8,
                colorTextDescription: "rgba(255,255,255,0.65)",
                colorTextTertiary: "rgba(255,255,255,0.65)",
              }
            : {
                colorPrimary: "#1556c0",
                colorLink: "#1556c0",
                borderRadius: 8,
                colorTextDescription: "rgba(0,0,0,0.62)",
                colorTextTertiary: "rgba(0,0,0,0.62)",
              },
        }}
      >
        {children}
      </ConfigProvider>
    </ThemeContext.Provider>
  );
}

export function useTheme(): ThemeState {
  const state = useContext(ThemeContext);
  if (!state) throw new Error("useTheme outside ThemeProvider");
  return state;
}
