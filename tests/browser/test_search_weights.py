"""Journeys of hybrid search weights: an embedding model's languages set in its form, the weights the playground
reports for a Chinese and an English query and why, a knowledge base's own weight, a weight for one search, and
rebuilding an index made with an older text analysis."""

from __future__ import annotations

import sqlite3

from playwright.sync_api import Page, expect

from tests.browser.conftest import Live, shoot, sign_in_as

PANDAS = "熊猫是中国的国宝，主要生活在四川的山区，以竹子为食。".encode()  # noqa: RUF001
COFFEE = b"Espresso is brewed at nine bars of pressure for about twenty-five seconds."


def test_weights_follow_languages_and_settings(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    model = live.add_model(token, "Test embed", kind="embedding", model="test-embed")
    sign_in_as(page, tokens)

    # The embedding model understands English only: said in its form, by keyboard.
    page.goto("/models")
    page.get_by_role("row").filter(has_text="Test embed").get_by_role("button", name="Edit Test embed").click()
    dialog = page.get_by_role("dialog")
    languages = dialog.get_by_label("Languages it understands")
    languages.fill("en")
    languages.press("Enter")
    languages.press("Escape")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    assert live.api("GET", f"/api/models/{model['id']}", token).json()["languages"] == ["en"]

    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": "Animals and coffee"}).json()
    files = [("file", ("pandas.txt", PANDAS, "text/plain")), ("file", ("coffee.txt", COFFEE, "text/plain"))]
    assert live.api("POST", f"/api/knowledge-bases/{kb['id']}/documents", token, files=files).status_code == 201
    with live.api_stream("GET", f"/api/knowledge-bases/{kb['id']}/events?until_idle=true", token) as events:
        assert events.status_code == 200 and "idle" in events.read().decode()  # both documents are processed

    page.goto(f"/knowledge/base?id={kb['id']}&tab=search")
    expect(page.get_by_text("older text analysis")).to_have_count(0)  # a new index has the current analysis
    query = page.get_by_label("Search query")
    hybrid = page.get_by_role("region", name="Hybrid results")
    query.fill("熊猫吃什么")
    query.press("Enter")
    expect(hybrid).to_contain_text("pandas.txt", timeout=30_000)
    weights = hybrid.get_by_test_id("search-weights")
    expect(weights).to_have_text(
        "BM25 100% · vectors 0%. Chosen for this query (Chinese 100%); the embedding model understands: English."
    )
    query.fill("espresso pressure")
    query.press("Enter")
    expect(weights).to_contain_text("BM25 60% · vectors 40%. Chosen for this query (English 100%)")
    shoot(page, "search-weights")

    # A weight for one search.
    page.get_by_role("tabpanel").get_by_label("Vector weight").fill("0.8")
    query.press("Enter")
    expect(weights).to_have_text("BM25 20% · vectors 80%. Set for this search.")
    page.get_by_role("tabpanel").get_by_label("Vector weight").fill("")

    # The knowledge base's own weight, in its form.
    page.get_by_role("button", name="Edit").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Vector weight in hybrid search").fill("0.3")
    dialog.get_by_role("button", name="Save").click()
    expect(dialog).to_be_hidden()
    query.press("Enter")
    expect(weights).to_have_text("BM25 70% · vectors 30%. Set on this knowledge base.")

    # In Chinese.
    page.get_by_label("Language").click()
    page.get_by_title("中文").click()
    page.get_by_label("搜索内容").press("Enter")
    expect(page.get_by_test_id("search-weights")).to_have_text("BM25 70% · 向量 30%。由本知识库设定。")


def test_an_index_with_an_older_analysis_is_rebuilt(page: Page, live: Live) -> None:
    tokens = live.register()
    token = tokens["access_token"]
    live.add_model(token, "Test embed", kind="embedding", model="test-embed")
    kb = live.api("POST", "/api/knowledge-bases", token, json={"name": "Made last year"}).json()
    # As a knowledge base made before the current text analysis reads after the upgrade's migration.
    with sqlite3.connect(live.data_dir / "nexent.db") as db:
        db.execute("UPDATE knowledge_bases SET analysis_version = 1 WHERE id = ?", (kb["id"].replace("-", ""),))
    assert live.api("GET", f"/api/knowledge-bases/{kb['id']}", token).json()["analysis_outdated"] is True
    sign_in_as(page, tokens)
    page.goto(f"/knowledge/base?id={kb['id']}")
    alert = page.get_by_role("alert").filter(has_text="older text analysis")
    expect(alert).to_be_visible()
    shoot(page, "knowledge-rebuild")
    alert.get_by_role("button", name="Rebuild index").click()
    expect(page.get_by_text("Rebuilding the index; search keeps working meanwhile.")).to_be_visible()
    expect(alert).to_be_hidden(timeout=30_000)
    after = live.api("GET", f"/api/knowledge-bases/{kb['id']}", token).json()
    assert after["analysis_version"] == 2 or after["reembedding"] is not None
