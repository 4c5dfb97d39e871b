"use client";

import { Bubble, Prompts, Sender, Welcome } from "@ant-design/x";
import { App, Flex, Typography } from "antd";
import { memo, useCallback, useEffect, useRef, useState } from "react";
import { followRun, type RunEvent } from "@/api/stream";
import { useT } from "@/i18n";
import { ErrorAlert, errorMessage } from "@/ui/ErrorAlert";
import {
  agentLabel,
  awaitMemorySaved,
  latestRun,
  memoryLearns,
  readConversation,
  regenerate,
  startRun,
  stopRun,
  type Agent,
  type RunVersion,
} from "./api";
import { AssistantTurn } from "./AssistantTurn";
import { CitationDrawer } from "./CitationDrawer";
import { SpeechInput } from "./SpeechInput";
import type { Attachment } from "./attachments/api";
import { AttachButton, PendingFiles } from "./attachments/AttachmentBar";
import { MessageAttachments } from "./attachments/MessageAttachments";
import { useAttachments } from "./attachments/useAttachments";
import { useFileDrop } from "./attachments/useFileDrop";
import { applyEvent, emptyTurn, learnedOf, turnFromMessage, type Citation, type Turn } from "./transcript";
import "./messages";

/** One answer; a finished one is not rendered again while the next one streams. */
const AnswerBubble = memo(function AnswerBubble(props: {
  turn: Turn;
  onCitation: (citation: Citation) => void;
  onRegenerate?: () => void;
}) {
  return <Bubble placement="start" variant="borderless" content="" contentRender={() => <AssistantTurn {...props} />} />;
});

function answerKey(turn: Turn): string {
  return turn.runId ? `a-${turn.runId}` : "live";
}

type Entry =
  | { key: string; role: "user"; text: string; attachments?: Attachment[] }
  | { key: string; role: "assistant"; turn: Turn };

/**
 * A conversation with one agent: history, the live answer as it streams (rendered at most once a frame), stop, and
 * picking a run up again after a reload or a dropped connection without repeating text.
 */
export function ChatPanel({
  agent,
  conversationId,
  onConversation,
  version,
}: {
  agent: Agent;
  conversationId: string | null;
  onConversation?: (id: string) => void;
  /** The version new runs run (`draft` in the studio's test chat); default: the published one. */
  version?: RunVersion;
}) {
  const t = useT();
  const { message } = App.useApp();
  const [entries, setEntries] = useState<Entry[]>([]);
  const [input, setInput] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState<Turn | null>(null);
  const [citation, setCitation] = useState<Citation | null>(null);
  const files = useAttachments();
  const drop = useFileDrop(files.add);
  const liveRef = useRef<Turn | null>(null);
  const frame = useRef(0);
  const abort = useRef<AbortController | null>(null);
  // The conversation this panel created itself: its history is already on screen.
  const ownConversation = useRef<string | null>(null);

  const render = useCallback(() => {
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      setLive(liveRef.current ? { ...liveRef.current } : null);
    });
  }, []);

  // The parent's callback and the current conversation, read by the stream's handler without re-creating it (a
  // new handler would restart the effect below, and with it the stream).
  const latest = useRef({ conversationId, onConversation });
  latest.current = { conversationId, onConversation };

  const onEvent = useCallback(
    (event: RunEvent) => {
      if (!liveRef.current) return;
      applyEvent(liveRef.current, event);
      // A run of the chat always has a conversation (only the OpenAI-compatible API starts runs without one).
      if (event.type === "run.started" && event.conversation_id && !latest.current.conversationId) {
        ownConversation.current = event.conversation_id;
        latest.current.onConversation?.(event.conversation_id);
      }
      render();
    },
    [render],
  );

  // Memory learns from a completed turn after the run's end: wait for its memory.saved while this panel shows it,
  // for the latest finished turn only (one connection: a browser has few per server).
  const watching = useRef<AbortController | null>(null);
  useEffect(() => () => watching.current?.abort(), []);
  const learns = useRef<Promise<boolean> | null>(null);
  const watchLearned = useCallback((turn: Turn) => {
    const runId = turn.runId;
    if (turn.status !== "completed" || !runId || turn.learned) return;
    watching.current?.abort();
    const controller = new AbortController();
    watching.current = controller;
    const signal = controller.signal;
    learns.current ??= memoryLearns().catch(() => false);
    void (async () => {
      if (!(await learns.current)) return;
      const event = await awaitMemorySaved(runId, turn.lastSeq, signal);
      if (!event || signal.aborted) return;
      setEntries((previous) =>
        previous.map((entry) =>
          entry.role === "assistant" && entry.turn.runId === runId
            ? { ...entry, turn: { ...entry.turn, learned: learnedOf(event) } }
            : entry,
        ),
      );
    })();
  }, []);

  const finish = useCallback(() => {
    const turn = liveRef.current;
    // The same key as the live answer had: React keeps what it rendered instead of building it again.
    if (turn) {
      setEntries((previous) => [...previous, { key: answerKey(turn), role: "assistant", turn: { ...turn } }]);
      watchLearned(turn);
    }
    liveRef.current = null;
    setLive(null);
  }, [watchLearned]);

  /** Follow a run after `turn.lastSeq` until it ends (its stored events first, then live). */
  const follow = useCallback(
    async (runId: string, controller: AbortController) => {
      await followRun(runId, liveRef.current?.lastSeq ?? 0, onEvent, controller.signal);
      finish();
    },
    [finish, onEvent],
  );

  // Load the history, and pick up a run of this conversation that is still going.
  useEffect(() => {
    if (conversationId && ownConversation.current === conversationId) return; // created here: all on screen
    abort.current?.abort();
    watching.current?.abort();
    liveRef.current = null;
    setLive(null);
    setError(null);
    if (!conversationId) {
      setEntries([]);
      return;
    }
    const controller = new AbortController();
    abort.current = controller;
    (async () => {
      const [detail, run] = await Promise.all([readConversation(conversationId), latestRun(conversationId)]);
      if (controller.signal.aborted) return;
      const running = run && (run.status === "running" || run.status === "queued");
      const messages = detail.messages;
      setEntries(
        messages.map((item) =>
          item.role === "user"
            ? { key: item.id, role: "user" as const, text: item.content, attachments: item.attachments }
            : { key: item.id, role: "assistant" as const, turn: turnFromMessage(item) },
        ),
      );
      if (running) {
        liveRef.current = { ...emptyTurn(), runId: run.id };
        render();
        await follow(run.id, controller);
      }
    })().catch((caught: unknown) => !controller.signal.aborted && setError(caught));
    return () => controller.abort();
  }, [conversationId, follow, render]);

  const send = (text: string) => {
    const content = text.trim();
    if (!content || liveRef.current) return;
    if (files.uploading) {
      message.warning(t("attach.waiting"));
      return;
    }
    const attached = files.files.flatMap((file) => (file.status === "done" && file.attachment ? [file.attachment] : []));
    setInput("");
    files.clear();
    setEntries((previous) => [...previous, { key: `u-${Date.now()}`, role: "user", text: content, attachments: attached }]);
    const conversation = conversationId ?? ownConversation.current;
    const body = { message: content, conversation_id: conversation, version, attachment_ids: attached.map((a) => a.id) };
    void stream((signal) => startRun(agent.id, body, onEvent, signal));
  };

  /** The last answer again: it leaves the transcript and a new run answers the same message. */
  const again = () => {
    const conversation = conversationId ?? ownConversation.current;
    if (!conversation || liveRef.current) return;
    setEntries((previous) => (previous.at(-1)?.role === "assistant" ? previous.slice(0, -1) : previous));
    void stream((signal) => regenerate(conversation, onEvent, signal));
  };

  const stream = async (begin: (signal: AbortSignal) => ReturnType<typeof startRun>) => {
    setError(null);
    const controller = new AbortController();
    abort.current = controller;
    liveRef.current = emptyTurn();
    render();
    try {
      const result = await begin(controller.signal);
      if (!result.terminal && liveRef.current?.runId) {
        await follow(liveRef.current.runId, controller); // the connection dropped: pick up where it was
      } else {
        finish();
      }
    } catch (caught) {
      if (controller.signal.aborted) return;
      liveRef.current = null;
      setLive(null);
      setError(caught);
    }
  };

  const stop = async () => {
    const runId = liveRef.current?.runId;
    if (!runId) return;
    try {
      await stopRun(runId);
    } catch (caught) {
      message.error(errorMessage(caught, t));
    }
  };

  const items: (Entry & { live?: boolean })[] = [
    ...entries,
    ...(live ? [{ key: answerKey(live), role: "assistant" as const, turn: live, live: true }] : []),
  ];
  const empty = items.length === 0;

  return (
    <Flex vertical gap={12} style={{ height: "100%", minHeight: 0, position: "relative" }} {...drop.handlers}>
      {drop.over ? (
        <div className="nx-drop-overlay" aria-hidden>
          {t("attach.drop")}
        </div>
      ) : null}
      <div style={{ flex: 1, overflowY: "auto", minHeight: 0 }} aria-live="polite" data-testid="transcript">
        {empty ? (
          <Flex vertical gap={16} style={{ padding: "24px 0" }}>
            <Welcome
              title={agentLabel(agent)}
              description={agent.greeting || agent.description || t("chat.greetingFallback")}
            />
            {agent.example_questions.length ? (
              <Prompts
                title={t("chat.examples")}
                wrap
                items={agent.example_questions.map((question, index) => ({ key: String(index), description: question }))}
                onItemClick={({ data }) => send(String(data.description ?? ""))}
              />
            ) : null}
          </Flex>
        ) : (
          <Flex vertical gap={16}>
            {items.map((entry) =>
              entry.role === "user" ? (
                <Flex key={entry.key} vertical align="end" gap={4}>
                  <MessageAttachments attachments={entry.attachments ?? []} />
                  <Bubble placement="end" content={entry.text} />
                </Flex>
              ) : (
                <AnswerBubble
                  key={entry.key}
                  turn={entry.turn}
                  onCitation={setCitation}
                  onRegenerate={!entry.live && entry === items.at(-1) ? again : undefined}
                />
              ),
            )}
          </Flex>
        )}
      </div>
      <ErrorAlert error={error} />
      <Sender
        value={input}
        onChange={setInput}
        onSubmit={send}
        loading={live != null}
        onCancel={() => void stop()}
        placeholder={t("chat.placeholder", { name: agentLabel(agent) })}
        header={files.files.length ? <PendingFiles files={files.files} onRemove={files.remove} /> : undefined}
        prefix={<AttachButton onFiles={files.add} disabled={files.full} />}
        onPasteFile={(pasted) => files.add(pasted)}
        aria-label={t("chat.input")}
        suffix={(send) => <Flex gap={4} align="center"><SpeechInput disabled={live != null} onText={(text) => setInput((v) => (v.trim() ? `${v.trimEnd()} ${text}` : text))} />{send}</Flex>}
      />
      <Typography.Text type="secondary" style={{ fontSize: 12 }}>
        {t("chat.hint")}
      </Typography.Text>
      <CitationDrawer citation={citation} onClose={() => setCitation(null)} />
    </Flex>
  );
}
