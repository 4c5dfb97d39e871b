"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import { listConversations, type Conversation } from "./api";

/** Conversations per page of the list (and per "load older"). */
export const CONVERSATION_PAGE = 30;
/** How long the search waits after the last key before asking the server. */
const SEARCH_DELAY_MS = 250;

export interface ConversationList {
  items: Conversation[];
  total: number;
  /** The first page has come (for the current search). */
  loaded: boolean;
  loading: boolean;
  error: unknown;
  /** Load the next page of older conversations. */
  more: () => void;
  /** Read again what is shown (after a rename, a delete or a new conversation), older pages included. */
  reload: () => void;
}

/**
 * The caller's conversations, latest first, a page at a time; with `search`, those whose title contains it (the
 * server searches: `GET /api/conversations?q=`). A new search starts from the first page once typing pauses; an
 * answer to an earlier search or page that comes late is dropped.
 */
export function useConversationList(search: string): ConversationList {
  const [query, setQuery] = useState(search.trim());
  const [items, setItems] = useState<Conversation[]>([]);
  const [total, setTotal] = useState(0);
  const [loaded, setLoaded] = useState(false);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(null);
  const request = useRef(0);
  const shown = useRef(0); // how many conversations are on screen: a reload reads as many again

  useEffect(() => {
    const wanted = search.trim();
    if (wanted === query) return;
    const timer = setTimeout(() => setQuery(wanted), wanted ? SEARCH_DELAY_MS : 0);
    return () => clearTimeout(timer);
  }, [search, query]);

  const load = useCallback(
    async (offset: number, limit: number, append: boolean) => {
      const mine = ++request.current;
      setLoading(true);
      try {
        const page = await listConversations({ q: query, limit, offset });
        if (mine !== request.current) return;
        setItems((previous) => {
          const next = append
            ? [...previous, ...page.items.filter((item) => !previous.some((known) => known.id === item.id))]
            : page.items;
          shown.current = next.length;
          return next;
        });
        setTotal(page.total);
        setLoaded(true);
        setError(null);
      } catch (caught) {
        if (mine === request.current) setError(caught);
      } finally {
        if (mine === request.current) setLoading(false);
      }
    },
    [query],
  );

  useEffect(() => {
    setLoaded(false);
    shown.current = 0;
    void load(0, CONVERSATION_PAGE, false);
  }, [load]);

  const more = useCallback(() => void load(shown.current, CONVERSATION_PAGE, true), [load]);
  // At most 200 a request (the API's page limit): beyond that, the list starts again from its first page.
  const reload = useCallback(
    () => void load(0, Math.min(Math.max(shown.current, CONVERSATION_PAGE), 200), false),
    [load],
  );
  return { items, total, loaded, loading, error, more, reload };
}
