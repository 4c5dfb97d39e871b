"""Speech input: which recordings a transcription takes (checked by their bytes, not the name they came with), and
the silent recording a model check sends."""

from __future__ import annotations

import io
import wave

from nexent.core.errors import AppError, PayloadTooLarge

# Containers an OpenAI-compatible `/audio/transcriptions` takes, by their first bytes: (format, file suffix,
# content type). Browsers' MediaRecorder writes WebM (Chromium, Firefox) or MP4 (Safari).
_FORMATS: tuple[tuple[str, str, str], ...] = (
    ("webm", "webm", "audio/webm"),
    ("ogg", "ogg", "audio/ogg"),
    ("wav", "wav", "audio/wav"),
    ("mp3", "mp3", "audio/mpeg"),
    ("mp4", "m4a", "audio/mp4"),
    ("flac", "flac", "audio/flac"),
)


class UnsupportedAudio(AppError):
    status, code = 415, "unsupported_audio"


class AudioTooLarge(PayloadTooLarge):
    code = "audio_too_large"


def sniff(data: bytes) -> str | None:
    """The recording's container format from its first bytes; None when it is none of `_FORMATS`."""
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if data.startswith(b"OggS"):
        return "ogg"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"fLaC"):
        return "flac"
    return None


def checked_recording(data: bytes, max_bytes: int) -> tuple[str, str]:
    """A file name and content type for a recording the model can take; `AudioTooLarge` or `UnsupportedAudio`
    otherwise."""
    if len(data) > max_bytes:
        raise AudioTooLarge(f"The recording is larger than the limit of {max_bytes} bytes.")
    if not data:
        raise UnsupportedAudio("The recording is empty.")
    found = sniff(data)
    for name, suffix, content_type in _FORMATS:
        if name == found:
            return f"recording.{suffix}", content_type
    raise UnsupportedAudio("The recording is not audio in a known format (WebM, Ogg, WAV, MP3, MP4/M4A or FLAC).")


def silent_wav(seconds: float = 0.2, rate: int = 16_000) -> bytes:
    """A short silent WAV recording (16-bit mono), made here: what a model check transcribes."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()
