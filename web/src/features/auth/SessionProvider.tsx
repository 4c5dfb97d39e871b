"use client";

import { usePathname, useRouter } from "next/navigation";
import { createContext, useCallback, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from "react";
import { Spin } from "antd";
import { getSession, subscribeSession, type Session } from "@/api/session";
import { ErrorAlert } from "@/ui/ErrorAlert";
import { readMe, type Me } from "./api";

export function useSession(): Session | null {
  return useSyncExternalStore(subscribeSession, getSession, () => null);
}

interface MeState {
  me: Me;
  reload: () => Promise<void>;
  can: (permission: string) => boolean;
}

const MeContext = createContext<MeState | null>(null);

/** Pages inside the app: signed in, with the caller loaded; else off to the sign-in page and back here after. */
export function RequireSession({ children }: { children: ReactNode }) {
  const session = useSession();
  const router = useRouter();
  const pathname = usePathname();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [hydrated, setHydrated] = useState(false);
  useEffect(() => setHydrated(true), []);

  const load = useCallback(async () => {
    try {
      setMe(await readMe());
      setError(null);
    } catch (caught) {
      setError(caught);
    }
  }, []);

  useEffect(() => {
    if (!hydrated) return;
    if (!session) {
      const here = `${pathname}${window.location.search}`;
      router.replace(`/signin?next=${encodeURIComponent(here)}`);
      return;
    }
    void load();
    // The access token changes on every refresh; the caller only when the tenant or user does.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [hydrated, session?.refreshToken, load]);

  if (error && !me) return <ErrorAlert error={error} onRetry={load} />;
  if (!session || !me) return <Spin style={{ display: "block", margin: "20vh auto" }} />;
  const can = (permission: string) => me.permissions.includes(permission);
  return <MeContext.Provider value={{ me, reload: load, can }}>{children}</MeContext.Provider>;
}

export function useMe(): MeState {
  const state = useContext(MeContext);
  if (!state) throw new Error("useMe outside RequireSession");
  return state;
}
