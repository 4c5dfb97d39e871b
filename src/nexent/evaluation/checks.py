"""Checking an answer: `contains` and `regex` here, `judge` by the tenant's default LLM with a fixed rubric prompt."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

import regex  # type: ignore[import-untyped]  # untyped; unlike `re` it can stop a match that takes too long

from nexent.core.errors import AppError
from nexent.providers.types import ProviderError, complete

logger = logging.getLogger("nexent.evaluation")

MAX_PATTERN_CHARS = 500
# A pattern gets this long to match, and sees at most this much of the answer: no pattern can hold a worker.
REGEX_TIMEOUT_SECONDS = 1.0
REGEX_MAX_INPUT_CHARS = 100_000
UNCLEAR = "judge answered unclearly"

JUDGE_PROMPT = """You grade the answer of an AI agent against a rubric.

Question asked to the agent:
{question}

{facts}Rubric:
{rubric}

The agent's answer:
{answer}

Does the answer meet the rubric? Reply with exactly one line: the word PASS or the word FAIL, then a colon and a
one-sentence reason. Nothing else."""

_VERDICT = re.compile(r"(PASS|FAIL)\b[ \t]*[:\-.,]?[ \t]*(.*)")


def compile_pattern(pattern: str) -> Any:
    """The compiled pattern; `ValueError` saying why it does not compile."""
    try:
        return regex.compile(pattern)
    except (regex.error, OverflowError, RecursionError) as exc:
        raise ValueError(f"The pattern does not compile: {exc}") from None


@dataclass(frozen=True)
class CheckOutcome:
    type: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "passed": self.passed, "detail": self.detail}


def check_contains(answer: str, value: str, case_sensitive: bool) -> CheckOutcome:
    found = value in answer if case_sensitive else value.casefold() in answer.casefold()
    detail = f"{'contains' if found else 'does not contain'} {value!r}"
    return CheckOutcome("contains", found, detail)


def _search(pattern: str, text: str) -> bool:
    return regex.search(pattern, text[:REGEX_MAX_INPUT_CHARS], timeout=REGEX_TIMEOUT_SECONDS) is not None


async def check_regex(answer: str, pattern: str) -> CheckOutcome:
    try:
        # In a thread: the regex module releases the GIL while it matches, so runs go on meanwhile.
        found = await asyncio.to_thread(_search, pattern, answer)
    except TimeoutError:
        return CheckOutcome("regex", False, f"the pattern took longer than {REGEX_TIMEOUT_SECONDS:g} s to match")
    except regex.error as exc:  # validated when saved; a case copied before a library change may still fail
        return CheckOutcome("regex", False, f"the pattern does not compile: {exc}")
    return CheckOutcome("regex", found, f"{'matches' if found else 'does not match'} /{pattern}/")


def judge_messages(question: str, answer: str, rubric: str, facts: list[str]) -> list[dict[str, Any]]:
    listed = "".join(f"- {fact}\n" for fact in facts)
    facts_text = f"Facts the answer should state:\n{listed}\n" if facts else ""
    text = JUDGE_PROMPT.format(question=question, facts=facts_text, rubric=rubric, answer=answer or "(no answer)")
    return [{"role": "user", "content": text}]


def read_verdict(reply: str) -> CheckOutcome:
    """`PASS` or `FAIL` on the first line (a reason may follow it); anything else fails the check."""
    lines = reply.strip().splitlines()
    found = _VERDICT.fullmatch(lines[0].strip()) if lines else None
    if found is None:
        return CheckOutcome("judge", False, UNCLEAR)
    verdict, reason = found.group(1), found.group(2).strip() or " ".join(line.strip() for line in lines[1:2])
    detail = f"{verdict}: {reason}"[:500] if reason else verdict
    return CheckOutcome("judge", verdict == "PASS", detail)


async def check_judge(client: Any, question: str, answer: str, rubric: str, facts: list[str]) -> CheckOutcome:
    """Ask the judge model (`client`: a chat model) whether `answer` meets `rubric`."""
    try:
        result = await complete(client, judge_messages(question, answer, rubric, facts), max_tokens=200)
    except ProviderError as exc:
        return CheckOutcome("judge", False, f"the judge model failed: {exc.code.value}")
    except AppError as exc:
        return CheckOutcome("judge", False, f"the judge model failed: {exc.code}")
    return read_verdict(result.content)
