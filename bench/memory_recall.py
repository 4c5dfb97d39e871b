"""Memory: how many stated facts a later conversation recalls, and what recall adds to a run's first event.

The conversations are `bench/data/memory/conversations.json`: two users (each a tenant of their own, with an agent
on the scripted model), ten conversations each that state two facts, then forty questions in new conversations,
each needing one stored fact. Everything goes through the real platform: `nexent serve` (embedded shape, SQLite,
LanceDB, the built-in all-MiniLM-L6-v2 as the tenants' embedding model) and the runtime; extraction is the real
job, whose model is the scripted model server answering as a model would: the facts of each turn as the JSON the
extraction prompt asks for (the data lists them), and ADD, UPDATE (a fact marked `replaces`, pointing at the memory
it replaces among those the prompt shows) or NONE (the same text shown) to the decision prompt. So the benchmark
measures memory's pipeline (storage, indexing, recall, merging), not a model's judgement.

- recall: the share of questions whose `memory.recalled` event holds the fact the question needs.
- latency: the time to the run's first event (`run.started`, sent after recall) and to its first answer token,
  each question asked with memory on and with the agent's memory turned off (`PUT /api/memory/agents/{id}`), in
  alternating rounds on the same server; the difference of the medians is what memory adds.

Run: `.venv/bin/python bench/memory_recall.py [--rounds 3]`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import free_port, wait_for_port  # noqa: E402 - the repository root is on the path only now

from bench.run_latency import platform_env  # noqa: E402

DATA = REPO / "bench" / "data" / "memory" / "conversations.json"


def load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return data


def fact_text(fact: str | dict[str, str]) -> str:
    return fact if isinstance(fact, str) else fact["text"]


# --- the scripted model's side -----------------------------------------------------------------------------------


def responder(data: dict[str, Any]) -> Any:
    """Answers like a model: facts for the extraction prompt, decisions for the merge prompt, else a short reply."""
    from tests.support.model_server import ChatReply

    facts_of: dict[str, list[str | dict[str, str]]] = {}
    replaces: dict[str, str] = {}
    for user in data["users"].values():
        for session in user["sessions"]:
            for turn in session["turns"]:
                facts_of[turn["message"]] = turn["facts"]
                for fact in turn["facts"]:
                    if isinstance(fact, dict):
                        replaces[fact["text"]] = fact["replaces"]

    def respond(request: Any) -> Any:
        prompt = str(request.messages[-1].get("content", "")) if request.messages else ""
        if "Read the conversation turn below" in prompt:
            said = prompt.split("\nUser: ", 1)[-1].split("\nAssistant: ", 1)[0].strip()
            facts = [{"text": fact_text(f), "level": "user"} for f in facts_of.get(said, [])]
            return ChatReply.text(json.dumps({"facts": facts}))
        if "New facts were learned" in prompt:
            decisions = []
            blocks = re.split(r"\nFact (\d+): ", "\n" + prompt.split("similar memories:", 1)[-1].strip())
            for index, body in zip(blocks[1::2], blocks[2::2], strict=True):
                fact, *lines = body.split("\n")
                shown = dict(re.findall(r"memory ([0-9a-f-]{36}): (.*)", "\n".join(lines)))
                by_text = {text.strip(): memory_id for memory_id, text in shown.items()}
                if fact.strip() in by_text:
                    decisions.append({"fact": int(index), "action": "NONE"})
                elif replaces.get(fact.strip()) in by_text:
                    target = by_text[replaces[fact.strip()]]
                    decisions.append({"fact": int(index), "action": "UPDATE", "memory_id": target, "text": fact})
                else:
                    decisions.append({"fact": int(index), "action": "ADD"})
            return ChatReply.text(json.dumps({"decisions": decisions}))
        if "Write a title" in prompt:
            return ChatReply.text("A conversation")
        return ChatReply.text("Noted, thank you.")

    return respond


def serve_model(first_byte: float, pace: float) -> None:
    """The scripted model server in this process (started by `main` as a process of its own)."""
    import socket

    import uvicorn
    from tests.support.model_server import ModelServer

    server = ModelServer(first_byte_delay=first_byte, chunk_delay=pace, chunk_size=4, responder=responder(load()))
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(server.asgi, log_level="warning", access_log=False, lifespan="off", interface="asgi3")
    uvicorn.Server(config).run(sockets=[sock])


# --- the platform's side -----------------------------------------------------------------------------------------


async def read_run(http: httpx.AsyncClient, url: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """POST a run and read its stream: times to the first event and the first answer token, what it recalled."""
    started = time.perf_counter()
    first_event = first_token = 0.0
    recalled: list[str] = []
    completed = False
    event = failure = ""
    async with http.stream("POST", url, json=body, headers=headers) as response:
        conversation = response.headers.get("x-conversation-id")
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
                if first_event == 0.0:
                    first_event = time.perf_counter() - started
                if first_token == 0.0 and event == "message.delta":
                    first_token = time.perf_counter() - started
                completed = completed or event == "run.completed"
            elif line.startswith("data: ") and event == "memory.recalled":
                recalled = [m["text"] for m in json.loads(line[6:])["memories"]]
            elif line.startswith("data: ") and event in ("run.failed", "run.stopped"):
                failure = line[6:]
    return {
        "first_event_ms": first_event * 1000,
        "first_token_ms": first_token * 1000,
        "recalled": recalled,
        "completed": completed,
        "failure": failure,
        "conversation_id": conversation,
    }


async def set_up(http: httpx.AsyncClient, url: str, name: str, model_base: str) -> dict[str, Any]:
    account = {"email": f"{name}@example.com", "password": "benchmark-pass"}
    token = (await http.post(f"{url}/api/auth/register", json=account)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    model = {"name": "scripted", "kind": "llm", "model": "scripted", "base_url": model_base}
    model_id = (await http.post(f"{url}/api/models", json=model, headers=headers)).json()["id"]
    agent = {"name": f"Assistant {name}", "model_id": model_id, "max_steps": 2}
    agent_id = (await http.post(f"{url}/api/agents", json=agent, headers=headers)).json()["id"]
    return {"headers": headers, "agent_id": agent_id, "runs": f"{url}/api/agents/{agent_id}/runs"}


async def stored(http: httpx.AsyncClient, url: str, who: dict[str, Any]) -> list[str]:
    page = (await http.get(f"{url}/api/memories", params={"limit": 200}, headers=who["headers"])).json()
    return [m["text"] for m in page["items"]]


async def main(args: argparse.Namespace) -> None:
    data = load()
    model = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is measured
        [sys.executable, __file__, "--model-server", "--first-byte", str(args.first_byte), "--pace", str(args.pace)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert model.stdout is not None
    model_base = f"http://127.0.0.1:{int(model.stdout.readline())}/v1"
    port = free_port()
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "nexent", "serve", "--port", str(port)],
        env=platform_env(NEXENT_BUILTIN_MODELS="true", NEXENT_MEMORY_ENABLED="true"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, timeout=120)
        async with httpx.AsyncClient(timeout=120) as http:
            users = {name: await set_up(http, url, name, model_base) for name in data["users"]}
            # Conversations that state the facts, each turn after the previous one's extraction.
            started = time.perf_counter()
            for name, user in data["users"].items():
                who = users[name]
                expected: set[str] = set()
                for session in user["sessions"]:
                    conversation = None
                    for turn in session["turns"]:
                        body = {
                            "message": turn["message"],
                            **({"conversation_id": conversation} if conversation else {}),
                        }
                        result = await read_run(http, who["runs"], who["headers"], body)
                        assert result["completed"], result
                        conversation = result["conversation_id"]
                        for fact in turn["facts"]:
                            if isinstance(fact, dict):
                                expected.discard(fact["replaces"])
                            expected.add(fact_text(fact))
                        deadline = time.monotonic() + 120
                        while set(await stored(http, url, who)) != expected:
                            if time.monotonic() > deadline:
                                raise TimeoutError(
                                    f"{name}: {sorted(await stored(http, url, who))} != {sorted(expected)}"
                                )
                            await asyncio.sleep(0.1)
            stating_s = time.perf_counter() - started
            for who in users.values():  # warm up both paths (the embedding model's first call loads it)
                for _ in range(3):
                    await read_run(http, who["runs"], who["headers"], {"message": "Hello again."})

            samples: dict[str, list[dict[str, Any]]] = {"on": [], "off": []}
            for round_ in range(args.rounds):
                for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
                    for who in users.values():
                        switch = f"{url}/api/memory/agents/{who['agent_id']}"
                        await http.put(switch, json={"enabled": mode == "on"}, headers=who["headers"])
                    for name, user in data["users"].items():
                        who = users[name]
                        for question in user["questions"]:
                            result = await read_run(
                                http, who["runs"], who["headers"], {"message": question["question"]}
                            )
                            assert result["completed"], result
                            samples[mode].append({**result, "needs": question["needs"], "round": round_})
                            await asyncio.sleep(args.pause)  # background work (titles, extraction) between runs
    finally:
        server.terminate()
        model.terminate()
        server.wait(timeout=30)
        model.wait(timeout=30)

    first_on = [s for s in samples["on"] if s["round"] == 0]
    hits = [s["needs"] in s["recalled"] for s in first_on]
    misses = [(s["needs"], s["recalled"][:3]) for s in first_on if s["needs"] not in s["recalled"]]

    def median(mode: str, key: str) -> float:
        return round(float(statistics.median(float(s[key]) for s in samples[mode])), 2)

    result = {
        "recall": round(sum(hits) / len(hits), 3),
        "questions": len(hits),
        "facts_stated": sum(len(t["facts"]) for u in data["users"].values() for s in u["sessions"] for t in s["turns"]),
        "conversations": sum(len(u["sessions"]) for u in data["users"].values()),
        "recalled_per_run": round(statistics.mean(len(s["recalled"]) for s in samples["on"]), 2),
        "first_event_ms": {
            "memory_on_p50": median("on", "first_event_ms"),
            "memory_off_p50": median("off", "first_event_ms"),
        },
        "first_token_ms": {
            "memory_on_p50": median("on", "first_token_ms"),
            "memory_off_p50": median("off", "first_token_ms"),
        },
        "added_first_event_p50_ms": round(median("on", "first_event_ms") - median("off", "first_event_ms"), 2),
        "added_first_token_p50_ms": round(median("on", "first_token_ms") - median("off", "first_token_ms"), 2),
        "samples_per_mode": len(samples["on"]),
        "stating_seconds": round(stating_s, 1),
        "misses": misses,
        "machine": f"{platform.machine()}, {platform.python_version()}",
    }
    print(json.dumps(result, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the questions with memory on and off")
    parser.add_argument("--first-byte", type=float, default=0.05)
    parser.add_argument("--pace", type=float, default=0.01)
    parser.add_argument("--pause", type=float, default=1.2, help="seconds between runs: titles and extraction finish")
    parser.add_argument("--model-server", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.model_server:
        serve_model(arguments.first_byte, arguments.pace)
    else:
        asyncio.run(main(arguments))
