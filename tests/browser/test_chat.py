"""Chat journeys: streamed answers with tool calls, stop, and a reload in the middle of a run."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as
from tests.support.model_server import ChatReply


@pytest.fixture
def owner(live: Live) -> dict[str, Any]:
    """A new tenant with the scripted model as its default and an agent that has the calculator."""
    tokens = live.register()
    model = live.add_model(tokens["access_token"])
    agent = live.api(
        "POST",
        "/api/agents",
        tokens["access_token"],
        json={
            "name": f"maths-{uuid.uuid4().hex[:6]}",
            "model_id": model["id"],
            "tools": [{"name": "calculator"}],
            "greeting": "I do sums.",
            "example_questions": ["What is six times seven?"],
        },
    )
    assert agent.status_code == 201, agent.text
    return {**tokens, "agent": agent.json()}


def test_chat_streams_an_answer_with_its_tool_call(page: Page, live: Live, owner: dict[str, Any]) -> None:
    live.llm.server.enqueue(
        ChatReply.tool_call("calculator", {"expression": "6*7"}),
        ChatReply.text("The answer is **42**.", reasoning="Six sevens.").paced(chunk_delay=0.01, chunk_size=3),
        ChatReply.text('"Six times seven"'),  # the conversation's title
    )
    sign_in_as(page, owner)
    page.goto("/chat")
    expect(page.get_by_text("I do sums.")).to_be_visible()
    page.get_by_text("What is six times seven?").click()  # an example question sends itself
    answer = page.get_by_test_id("answer")
    expect(answer).to_have_text("The answer is 42.")
    expect(answer.locator("strong")).to_have_text("42")
    expect(page.get_by_text("calculator")).to_be_visible()
    page.get_by_text("calculator").click()
    expect(page.get_by_text('"expression": "6*7"')).to_be_visible()
    expect(page.get_by_text(re.compile(r"tokens in"))).to_be_visible()
    expect(page.get_by_role("navigation", name="Conversations").get_by_text("Six times seven")).to_be_visible(timeout=20_000)
    shoot(page, "chat")

    # The run's timeline: its steps with durations and tokens, the tool call in its step.
    page.get_by_role("link", name="Run timeline").click()
    expect(page.get_by_role("heading", name="Run timeline")).to_be_visible()
    expect(page.get_by_test_id("timeline-step")).to_have_count(2)
    expect(page.get_by_text('calculator({"expression":"6*7"}) → 42')).to_be_visible()
    shoot(page, "run-timeline")


def test_a_long_answer_stops_on_request(page: Page, live: Live, owner: dict[str, Any]) -> None:
    long_text = " ".join(f"word{i}" for i in range(3000))
    # No title reply: a stopped run may or may not ask for one, and a queued reply would go to the next test.
    live.llm.server.enqueue(ChatReply.text(long_text).paced(chunk_delay=0.02, chunk_size=5))
    sign_in_as(page, owner)
    page.goto("/chat")
    page.get_by_role("textbox", name="Message").fill("Write a lot.")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_contain_text("word10")
    page.locator(".ant-sender-actions-btn").click()  # the send button turns into stop while the answer streams
    expect(page.get_by_text("Stopped")).to_be_visible()
    assert "word2999" not in page.get_by_test_id("answer").inner_text()


def test_reload_in_the_middle_of_a_run_shows_it_once(page: Page, live: Live, owner: dict[str, Any]) -> None:
    words = [f"part{i}" for i in range(200)]
    live.llm.server.enqueue(ChatReply.text(" ".join(words)).paced(chunk_delay=0.02, chunk_size=4), ChatReply.text('"Parts"'))
    sign_in_as(page, owner)
    page.goto("/chat")
    page.get_by_role("textbox", name="Message").fill("Count parts.")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("answer")).to_contain_text("part20")
    expect(page).to_have_url(re.compile(r"/chat\?c="))
    page.reload()
    answer = page.get_by_test_id("answer")
    expect(answer).to_have_text(" ".join(words), timeout=30_000)
    expect(page.get_by_text("Count parts.")).to_have_count(1)
    assert answer.inner_text().count("part199") == 1
