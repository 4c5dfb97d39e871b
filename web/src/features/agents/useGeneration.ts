"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import type { GeneratedField, GenerationEvent } from "./api";

/** How a generation ended when it did not complete: the stream's `generation.failed`, or a stop. */
export interface GenerationFailure {
  code: string;
  message: string;
}

export interface GenerationState {
  running: boolean;
  /** The fields the current (or last) call asked for. */
  fields: GeneratedField[];
  /** Each field's text as the model writes it, while it is being written (raw section text). */
  writing: Partial<Record<GeneratedField, string>>;
  /** Fields asked for that the model did not produce validly. */
  missing: GeneratedField[];
  /** What the server changed or left out (an unknown tool, a taken name). */
  notes: string[];
  failure: GenerationFailure | null;
  /** A refusal before the stream (a problem document) or a dropped connection. */
  error: unknown;
  /** Whether the last call ended with `draft.completed`. */
  completed: boolean;
  stopped: boolean;
}

const IDLE: GenerationState = {
  running: false,
  fields: [],
  writing: {},
  missing: [],
  notes: [],
  failure: null,
  error: null,
  completed: false,
  stopped: false,
};

export interface GenerationHandlers {
  /** A field's text so far (its deltas joined), for live filling. */
  onText?: (field: GeneratedField, text: string) => void;
  /** A field finished and checked: the value the draft holds. */
  onValue: (field: GeneratedField, value: unknown) => void;
}

/** The call that streams: one of the agents API's `streamGenerate` / `streamImprove`, bound to its body. */
export type StreamCall = (onEvent: (event: GenerationEvent) => void, signal: AbortSignal) => Promise<void>;

/**
 * A generation's stream as state: fields filling as their deltas arrive, missing fields, notes, failures, and a
 * stop that aborts the request. Notes accumulate over calls (a single field regenerated keeps the earlier ones);
 * missing fields are those of the latest call plus earlier ones not asked for again.
 */
export function useGeneration(handlers: GenerationHandlers) {
  const [state, setState] = useState<GenerationState>(IDLE);
  const controller = useRef<AbortController | null>(null);
  const handlersRef = useRef(handlers);
  handlersRef.current = handlers;

  useEffect(() => () => controller.current?.abort(), []);

  const start = useCallback(async (fields: GeneratedField[], call: StreamCall) => {
    controller.current?.abort();
    const abort = new AbortController();
    controller.current = abort;
    const texts: Partial<Record<GeneratedField, string>> = {};
    let ended = false;
    setState((previous) => ({
      ...IDLE,
      running: true,
      fields,
      notes: previous.notes,
      missing: previous.missing.filter((field) => !fields.includes(field)),
    }));
    const onEvent = (event: GenerationEvent) => {
      if (abort.signal.aborted) return;
      switch (event.type) {
        case "field.delta": {
          const text = (texts[event.field] ?? "") + event.delta;
          texts[event.field] = text;
          handlersRef.current.onText?.(event.field, text);
          setState((previous) => ({ ...previous, writing: { ...previous.writing, [event.field]: text } }));
          break;
        }
        case "field.completed": {
          handlersRef.current.onValue(event.field, event.value);
          setState((previous) => {
            const writing = { ...previous.writing };
            delete writing[event.field];
            return { ...previous, writing };
          });
          break;
        }
        case "draft.completed":
        case "generation.failed": {
          ended = true;
          const failure = event.type === "generation.failed" ? { code: event.code, message: event.message } : null;
          const notes = event.type === "draft.completed" ? event.notes : [];
          setState((previous) => ({
            ...previous,
            writing: {},
            missing: [...new Set([...previous.missing, ...event.missing])],
            notes: [...new Set([...previous.notes, ...notes])],
            failure,
            completed: event.type === "draft.completed",
          }));
          break;
        }
      }
    };
    try {
      await call(onEvent, abort.signal);
      if (!ended && !abort.signal.aborted) {
        setState((previous) => ({ ...previous, failure: { code: "connection_lost", message: "" } }));
      }
    } catch (error) {
      if (!abort.signal.aborted) setState((previous) => ({ ...previous, error }));
    } finally {
      if (controller.current === abort) {
        controller.current = null;
        setState((previous) => ({ ...previous, running: false, writing: {} }));
      }
    }
  }, []);

  const stop = useCallback(() => {
    if (!controller.current) return;
    controller.current.abort();
    controller.current = null;
    setState((previous) => ({ ...previous, running: false, writing: {}, stopped: true }));
  }, []);

  const reset = useCallback(() => {
    controller.current?.abort();
    controller.current = null;
    setState(IDLE);
  }, []);

  return { state, start, stop, reset };
}
