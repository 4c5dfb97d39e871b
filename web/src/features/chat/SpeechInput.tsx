"use client";

import { AudioOutlined, LoadingOutlined } from "@ant-design/icons";
import { Button, Tooltip, Typography } from "antd";
import { useEffect, useRef, useState } from "react";
import { api, unwrap } from "@/api/client";
import { useT } from "@/i18n";
import { errorMessage } from "@/ui/ErrorAlert";
import "./speechMessages";

type State = "idle" | "recording" | "sending";

/** The tenant's speech input (`GET /api/speech`): whether it has a speech-to-text model. */
function useSpeechOffered(): boolean {
  const [offered, setOffered] = useState(false);
  useEffect(() => {
    let live = true;
    if (typeof MediaRecorder === "undefined" || !navigator.mediaDevices?.getUserMedia) return;
    unwrap(api.GET("/api/speech"))
      .then((speech) => live && setOffered(speech.transcription))
      .catch(() => live && setOffered(false));
    return () => {
      live = false;
    };
  }, []);
  return offered;
}

function suffixOf(type: string): string {
  if (type.includes("ogg")) return "ogg";
  if (type.includes("mp4")) return "m4a";
  return "webm";
}

/**
 * The composer's microphone, shown only when the tenant has a speech-to-text model: the first press records
 * (MediaRecorder), the second sends the recording to `POST /api/speech/transcriptions` and gives its text to
 * `onText`. Errors (no microphone, a refused or failed transcription) are said next to the button.
 */
export function SpeechInput({ onText, disabled }: { onText: (text: string) => void; disabled?: boolean }) {
  const t = useT();
  const offered = useSpeechOffered();
  const [state, setState] = useState<State>("idle");
  const [error, setError] = useState<string | null>(null);
  const recorder = useRef<MediaRecorder | null>(null);

  useEffect(
    () => () => {
      const current = recorder.current;
      recorder.current = null;
      if (current && current.state !== "inactive") {
        current.onstop = null;
        current.stop();
      }
      current?.stream.getTracks().forEach((track) => track.stop());
    },
    [],
  );

  if (!offered) return null;

  async function send(parts: Blob[], type: string) {
    setState("sending");
    try {
      const blob = new Blob(parts, { type: type || "audio/webm" });
      const form = new FormData();
      form.append("file", blob, `recording.${suffixOf(blob.type)}`);
      const result = await unwrap(
        // The typed body only names the field; the FormData carries the recording.
        api.POST("/api/speech/transcriptions", { body: { file: "recording" }, bodySerializer: () => form }),
      );
      if (result.text) onText(result.text);
      else setError(t("speech.nothingHeard"));
    } catch (failure) {
      setError(t("speech.failed", { detail: errorMessage(failure, t) }));
    } finally {
      setState("idle");
    }
  }

  async function start() {
    setError(null);
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      setError(t("speech.noMicrophone"));
      return;
    }
    const parts: Blob[] = [];
    const next = new MediaRecorder(stream);
    next.ondataavailable = (event) => {
      if (event.data.size > 0) parts.push(event.data);
    };
    next.onstop = () => {
      stream.getTracks().forEach((track) => track.stop());
      recorder.current = null;
      void send(parts, next.mimeType);
    };
    recorder.current = next;
    next.start();
    setState("recording");
  }

  const recording = state === "recording";
  const label = recording ? t("speech.stop") : state === "sending" ? t("speech.sending") : t("speech.start");
  return (
    <>
      {error || recording ? (
        <Typography.Text type={error ? "danger" : "secondary"} role={error ? "alert" : "status"} style={{ fontSize: 12 }}>
          {error ?? t("speech.recording")}
        </Typography.Text>
      ) : null}
      <Tooltip title={label}>
        <Button
          type={recording ? "primary" : "text"}
          danger={recording}
          shape="circle"
          aria-label={label}
          aria-pressed={recording}
          disabled={disabled || state === "sending"}
          icon={state === "sending" ? <LoadingOutlined /> : <AudioOutlined />}
          onClick={() => (recording ? recorder.current?.stop() : void start())}
        />
      </Tooltip>
    </>
  );
}
