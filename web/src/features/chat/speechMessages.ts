import { defineMessages } from "@/i18n/define";
import { registerMessages } from "@/i18n/messages";

/** The chat composer's speech input (SpeechInput.tsx). */
export const speech = defineMessages({
  en: {
    "speech.start": "Dictate a message",
    "speech.stop": "Stop recording and transcribe",
    "speech.sending": "Transcribing…",
    "speech.recording": "Recording… select the button again to stop.",
    "speech.noMicrophone": "The microphone is not available: allow this page to use it, or check that one is connected.",
    "speech.failed": "The recording could not be transcribed: {detail}",
    "speech.nothingHeard": "Nothing was heard in the recording.",
  },
  zh: {
    "speech.start": "语音输入",
    "speech.stop": "停止录音并转写",
    "speech.sending": "正在转写…",
    "speech.recording": "正在录音… 再次点击按钮停止。",
    "speech.noMicrophone": "无法使用麦克风：请允许此页面使用麦克风，或检查麦克风是否已连接。",
    "speech.failed": "录音未能转写：{detail}",
    "speech.nothingHeard": "录音中没有听到内容。",
  },
});

registerMessages(speech);
