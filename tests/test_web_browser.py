"""The chat page in Debian's Chromium (Playwright), against the real `qa serve`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from live_server import ROOT, SEEDS, start_server

CHROMIUM = os.environ.get("QA_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# QA_SCREENSHOT=docs/screenshot.png refreshes the README's screenshot; otherwise the
# screenshot goes to a temporary folder, so running the tests changes no tracked file.
SCREENSHOT = os.environ.get("QA_SCREENSHOT")

# CI sets QA_REQUIRE_BROWSER=1: there a missing Chromium fails the run instead of
# skipping the browser tests silently.
if os.environ.get("QA_REQUIRE_BROWSER") == "1" and not Path(CHROMIUM).exists():
    raise RuntimeError(f"no Chromium at {CHROMIUM}: apt-get install chromium")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("browser"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.console_errors = errors  # a test that provokes an error clears what it expected
    page.goto(server.url + "/")
    yield page
    context.close()
    assert not errors, errors


def ask(page, question: str):
    """Type the question and press Enter; returns the JSON request the page sent."""
    box = page.get_by_label("Your question")
    box.fill(question)
    with page.expect_response("**/api/ask") as response:
        box.press("Enter")
    request = response.value.request
    page.wait_for_selector(".thinking", state="detached")
    return json.loads(request.post_data)


def reply_with(page, body: dict, status: int = 200, content_type: str = "application/json"):
    """The page's next questions get ``body`` from /api/ask instead of the server's answer."""
    page.route(
        "**/api/ask",
        lambda route: route.fulfill(
            status=status, content_type=content_type, body=json.dumps(body)
        ),
    )


def test_the_input_is_focused_and_examples_are_offered(page):
    assert page.evaluate("document.activeElement.id") == "question"
    examples = page.locator(".example")
    examples.first.wait_for()
    saved = json.loads((SEEDS / "examples.json").read_text(encoding="utf-8"))
    assert examples.all_text_contents() == saved


def test_ask_by_enter_see_answer_and_open_the_cited_sentence(page):
    sent = ask(page, "When was Trump's first day back in the White House?")
    assert sent["history"] == []
    bubble = page.locator(".turn.bot").last
    answer = bubble.locator(".answer").inner_text()
    assert "January 20" in answer
    assert "January 20" in bubble.locator("mark.answer-span").inner_text()
    assert bubble.locator(".citations .cite").count() == 3
    assert page.locator(".turn.user .text").inner_text().startswith("When was Trump")

    bubble.locator(".citations .cite").first.click()
    panel = page.locator("#article-panel")
    panel.wait_for(state="visible")
    highlighted = panel.locator(".sentence.highlight")
    highlighted.wait_for()
    assert highlighted.count() == 1
    assert "executive order on January 20" in highlighted.inner_text()
    assert highlighted.is_visible() and highlighted.evaluate(
        "el => { const r = el.getBoundingClientRect(), p = el.closest('.article-text')"
        ".getBoundingClientRect(); return r.top >= p.top && r.bottom <= p.bottom; }"
    )

    # a second citation moves the highlight
    bubble.locator(".citations .cite").nth(1).click()
    # (a locator waits: a polled wait_for_function would eval, which the page's CSP forbids)
    panel.locator(".sentence.highlight", has_not_text="January 20").wait_for()
    assert highlighted.count() == 1
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")


def test_shift_enter_adds_a_line_instead_of_sending(page):
    box = page.get_by_label("Your question")
    box.press_sequentially("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    assert box.input_value() == "first line\nsecond line"
    assert page.locator(".turn").count() == 0


def test_follow_up_sends_the_conversation_so_far(page):
    first = "Which groups were designated as terror groups in February?"
    ask(page, first)
    first_answer = page.locator(".turn.bot .answer").last.inner_text()
    sent = ask(page, "Which country is the first of them from?")
    assert len(sent["history"]) == 1
    assert sent["history"][0]["question"] == first
    assert sent["history"][0]["answer"] in (first_answer, None)
    assert page.locator(".turn.bot:not(.error)").count() == 2

    page.get_by_role("button", name="New conversation").click()
    assert page.locator(".turn").count() == 0
    assert ask(page, "What did the embassy say?")["history"] == []


def test_a_service_that_reads_no_history_gets_none(browser, server):
    """QA_MAX_HISTORY=0 (served as the page's data-max-history): follow-ups send no turns,
    rather than the whole conversation the service would refuse."""
    context = browser.new_context()
    page = context.new_page()

    def history_off(route):
        html = route.fetch().text()
        assert 'data-max-history="20"' in html
        route.fulfill(
            body=html.replace('data-max-history="20"', 'data-max-history="0"'),
            content_type="text/html; charset=utf-8",
        )

    page.route(server.url + "/", history_off)
    page.goto(server.url + "/")
    assert ask(page, "Who is the spokeswoman?")["history"] == []
    sent = ask(page, "What did she say?")
    assert sent["history"] == []
    assert page.locator(".turn.bot.error").count() == 0
    context.close()


def test_a_long_conversation_sends_the_latest_turns_that_fit_the_body_limit(page):
    """Long questions in a script of 4 UTF-8 bytes a character fill the 64 KB body limit
    before the 20-turn one: the page drops the oldest turns (the service reads only the
    last), so no question is refused for the length of the conversation."""
    limit = int(page.locator("#chat").get_attribute("data-max-body-bytes"))
    question = "When did the bridge open " + "\U0001f600" * 975  # 1000 characters
    for turn in range(18):
        sent = ask(page, question)
        assert len(json.dumps(sent, ensure_ascii=False).encode()) <= limit
        assert page.locator(".turn.error").count() == 0, f"turn {turn} was refused"
        if turn:
            assert sent["history"] and sent["history"][-1]["question"] == question
    assert len(sent["history"]) < 17  # older turns were left out to fit


def test_markup_in_a_question_is_shown_as_text_and_runs_nothing(page):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    attack = "<img src=x onerror=alert(1)>"
    ask(page, attack)
    assert page.locator(".turn.user .text").inner_text() == attack
    assert page.locator(".turn.bot").count() == 1
    page.wait_for_timeout(300)
    assert page.locator("img").count() == 0
    assert dialogs == []


def test_an_error_is_shown_inline(page):
    problem = {"type": "about:blank", "title": "Service Unavailable", "status": 503}
    reply_with(page, {**problem, "detail": "try later"}, 503, "application/problem+json")
    ask(page, "Anything?")
    error = page.locator(".turn.error")
    assert "try later" in error.inner_text()
    # said once, by the conversation's live list, as an error: no alert inside it
    assert error.get_attribute("role") is None and error.locator("[role=alert]").count() == 0
    assert error.text_content().startswith("Error: ")
    assert page.get_by_label("Your question").input_value() == "Anything?"  # ready to retry
    page.console_errors[:] = [e for e in page.console_errors if "503" not in e]


def abstention(citation: dict, confidence: float, version: str = "x") -> dict:
    """An answer of "the documents do not say", offering ``citation`` as related."""
    return {
        "question": "q",
        "answer": None,
        "answer_start": None,
        "answer_end": None,
        "confidence": confidence,
        "index_version": version,
        "citations": [citation],
    }


def test_abstention_offers_related_passages(page):
    related = {"doc": "d.txt", "sentence": 0, "start": 0, "end": 5, "text": "Hello", "score": 0.1}
    reply_with(page, abstention(related, 0.1))
    ask(page, "What is the capital of Mars?")
    bubble = page.locator(".turn.bot").last
    assert bubble.locator(".answer").inner_text() == "The documents do not say."
    assert "related passages" in bubble.text_content().lower()
    assert bubble.locator("mark").count() == 0
    assert bubble.locator(".cite-doc").count() == 0  # one document: no need to name it


def test_citations_from_several_documents_each_name_theirs(page):
    cite = {"sentence": 0, "start": 0, "end": 5, "text": "Hello", "score": 0.5}
    answer = abstention({**cite, "doc": "people/osei.txt"}, 0.9)
    answer["citations"].append({**cite, "doc": "people/lindqvist.md"})
    reply_with(page, answer)
    ask(page, "Where was Amara Osei born?")
    names = page.locator(".turn.bot").last.locator(".citation .cite-doc")
    assert names.all_inner_texts() == ["people/osei.txt", "people/lindqvist.md"]


def answer_at(page, confidence: float) -> None:
    """The page's next answer: 'January 20' in its sentence, at ``confidence``."""
    text = "Trump signed an order on January 20, his first day."
    cited = {"doc": "d.txt", "sentence": 0, "start": 0, "end": len(text), "text": text}
    reply_with(
        page,
        {
            "question": "q",
            "answer": "January 20",
            "answer_start": 25,
            "answer_end": 35,
            "confidence": confidence,
            "index_version": "x",
            "citations": [{**cited, "score": confidence}],
        },
    )


def test_a_low_confidence_answer_is_flagged_before_it_is_read(page):
    answer_at(page, 0.31)
    ask(page, "When did he sign it?")
    bubble = page.locator(".turn.bot").last
    assert "unsure" in bubble.get_attribute("class")
    note = bubble.locator(".unsure-note")
    assert "Low confidence" in note.inner_text() and note.is_visible()
    first = bubble.locator("p").first.get_attribute("class")
    assert first == "unsure-note"  # read before the answer
    assert bubble.locator("mark.answer-span").inner_text() == "January 20"
    assert "confidence 0.31" in bubble.locator(".meta").inner_text()

    page.unroute("**/api/ask")
    answer_at(page, 0.5)
    ask(page, "And when was that?")
    bubble = page.locator(".turn.bot").last
    assert "unsure" not in bubble.get_attribute("class")
    assert bubble.locator(".unsure-note").count() == 0


def test_narrow_screen_and_screenshot(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 375, "height": 740})
    page = context.new_page()
    page.goto(server.url + "/")
    ask(page, "When was Trump's first day back in the White House?")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    page.locator(".citations .cite").first.click()
    panel = page.locator("#article-panel")
    panel.wait_for(state="visible")
    box = panel.bounding_box()
    assert box["x"] == 0 and box["width"] == 375  # over the chat
    # the chat under it is inert: Tab goes round the panel (and the browser's own
    # controls), never to what the panel hides
    hidden = "document.getElementById('chat').contains(document.activeElement)"
    for _ in range(6):
        page.keyboard.press("Tab")
        assert not page.evaluate(hidden)
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("!document.getElementById('chat').inert")
    assert page.evaluate("document.activeElement.classList.contains('cite')")
    context.close()

    context = browser.new_context(viewport={"width": 1200, "height": 720})
    page = context.new_page()
    page.goto(server.url + "/")
    ask(page, "When was Trump's first day back in the White House?")
    page.locator(".citations .cite").first.click()
    page.locator(".sentence.highlight").wait_for()
    path = Path(SCREENSHOT) if SCREENSHOT else tmp_path / "screenshot.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000
    context.close()


def test_the_page_itself_never_scrolls(page):
    """Only the conversation and the document panel scroll: the bar stays in view."""
    for question in (
        "Who is the spokeswoman?",
        "What has Sheinbaum been dubbed?",
        "How many members does the Gaitanista Army have?",
    ):
        ask(page, question)
    page_fits = "document.scrollingElement.scrollHeight <= innerHeight"
    assert page.evaluate(page_fits)
    page.locator(".turn.bot").first.locator(".cite-inline, .cite").first.click()
    page.locator(".sentence.highlight").wait_for()
    assert page.evaluate(page_fits) and page.evaluate("document.scrollingElement.scrollTop") == 0
    assert page.get_by_role("button", name="New conversation").is_visible()
    assert page.get_by_role("button", name="Close the article").is_visible()


def test_an_answer_is_marked_in_its_sentence_by_characters_not_utf16_units(page):
    text = "🎉 Trump signed an order on January 20, his first day."
    cited = {"doc": "d.txt", "sentence": 0, "start": 100, "end": 100 + len(text), "text": text}
    reply_with(
        page,
        {
            "question": "q",
            "answer": "January 20",
            "answer_start": 100 + text.index("January"),  # Python's offsets: code points
            "answer_end": 100 + text.index("January") + 10,
            "confidence": 0.9,
            "index_version": "x",
            "citations": [{**cited, "score": 0.9}],
        },
    )
    ask(page, "When did he sign it?")
    assert page.locator(".turn.bot").last.locator("mark.answer-span").inner_text() == "January 20"


def test_an_empty_or_over_long_question_is_explained_not_sent(page):
    sent = []
    page.on("request", lambda r: "/api/ask" in r.url and sent.append(r))
    box = page.get_by_label("Your question")
    box.press("Enter")
    hint = page.locator("#ask-hint")
    assert hint.inner_text() == "Type a question first."
    box.fill("\u200b\ufe0f\u0301")  # nothing to read, as the service sees it
    box.press("Enter")
    assert hint.inner_text() == "Type a question first."
    limit = int(page.locator("#chat").get_attribute("data-max-question-chars"))
    box.fill("a" * (limit + 1))  # pasted whole: nothing is cut off silently
    box.press("Enter")
    assert f"shorten it to {limit}" in hint.inner_text()
    assert box.input_value() == "a" * (limit + 1)
    assert box.get_attribute("aria-invalid") == "true"
    box.press("Backspace")
    assert hint.inner_text().startswith("Enter sends")
    assert sent == []
    # counted as the service counts: an emoji is one character
    box.fill("🙂" * limit)
    box.press("Enter")
    assert len(sent) == 1 and hint.inner_text().startswith("Enter sends")
    page.wait_for_selector(".thinking", state="detached")
    # an example asked after a problem was shown clears it
    page.get_by_role("button", name="New conversation").click()
    box.press("Enter")
    assert hint.inner_text() == "Type a question first."
    with page.expect_response("**/api/ask"):
        page.locator(".example").first.click()
    assert hint.inner_text().startswith("Enter sends")
    assert box.get_attribute("aria-invalid") == "false"


def test_a_citation_from_an_older_index_is_not_shown_in_the_new_text(page):
    """An answer cites the index it came from; when the document has changed since, the
    panel says so rather than highlight another sentence."""
    ask(page, "Who is the spokeswoman?")
    real = page.locator(".turn.bot").last.locator(".cite").first
    real.click()
    page.locator(".sentence.highlight").wait_for()
    doc = page.locator("#article-title").inner_text()
    moved = {"doc": doc, "sentence": 3, "start": 0, "end": 11, "text": "Not here at", "score": 1}
    reply_with(page, abstention(moved, 0.9, "older"))
    ask(page, "Anything from before?")
    page.locator(".turn.bot").last.locator(".cite").first.click()
    stale = page.locator(".article-text .stale")
    stale.wait_for()
    assert "changed since the answer" in stale.inner_text()
    assert page.locator(".sentence.highlight").count() == 0
    # said, and where the keyboard is (the panel covers the chat on a narrow screen)
    assert stale.get_attribute("role") == "status"
    assert page.evaluate("document.activeElement.classList.contains('stale')")


def test_a_citation_of_a_document_no_longer_indexed_says_so(page):
    gone = {"doc": "gone.txt", "sentence": 0, "start": 0, "end": 5, "text": "Hello", "score": 1}
    reply_with(page, abstention(gone, 0.9, "older"))
    ask(page, "Anything from a removed document?")
    page.locator(".turn.bot").last.locator(".cite").first.click()
    error = page.locator(".article-text .error")
    error.wait_for()
    assert "no longer in the index" in error.inner_text()
    assert page.locator(".sentence").count() == 0
    assert error.get_attribute("role") == "alert"  # said, and where the keyboard is
    assert page.evaluate("document.activeElement.classList.contains('error')")
    # the browser logs the 404 it was told to expect
    assert all("404" in e for e in page.console_errors), page.console_errors
    page.console_errors.clear()


def test_after_a_rebuild_a_citation_opens_the_new_text(browser, tmp_path):
    """A document changed and indexed again while serving: the next answer's citation opens
    the document as it is now, not as the page first fetched it."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    doc = seeds / "recipe.txt"
    # an emoji counts one character in the service's offsets, two UTF-16 units in a page's
    doc.write_text("🎂 The cake serves eight people. It bakes for an hour.\n", encoding="utf-8")
    server = start_server(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(30_000)
        page.goto(server.url + "/")

        def cite_first(question: str) -> str:
            ask(page, question)
            bubble = page.locator(".turn.bot").last
            cited = bubble.locator(".cite-text").first.inner_text()
            bubble.locator(".cite").first.click()
            # the panel may still show the last citation: wait for this one (or time out)
            page.locator(".sentence.highlight", has_text=cited).wait_for()
            assert page.locator(".sentence.highlight").count() == 1
            assert page.locator(".article-text .stale").count() == 0
            return page.locator(".sentence.highlight").inner_text()

        assert "eight" in cite_first("How many people does the cake serve?")
        with urllib.request.urlopen(server.url + "/api/health") as r:
            before = json.load(r)["index_version"]
        doc.write_text(
            "A note first 🙂. The cake serves twelve people. It bakes for an hour.\n",
            encoding="utf-8",
        )
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
        built = subprocess.run(
            [sys.executable, "-m", "qa", "index", "--seeds", str(seeds)]
            + ["--index", str(tmp_path / "index")],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": path},
            timeout=300,
        )
        assert built.returncode == 0, built.stderr
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with urllib.request.urlopen(server.url + "/api/health") as r:
                if json.load(r)["index_version"] != before:
                    break
            time.sleep(0.2)
        else:
            raise AssertionError("the server did not switch to the new index")
        assert "twelve" in cite_first("How many people does the cake serve now?")
        # the first answer's citation, opened before the rebuild: not shown in the new text
        page.locator(".turn.bot").first.locator(".cite").first.click()
        page.locator(".article-text .stale").wait_for()
        assert page.locator(".sentence.highlight").count() == 0
        assert "twelve" in page.locator(".article-text").inner_text()
        page.close()
    finally:
        server.stop()


def test_a_new_answer_is_shown_from_its_start(browser, server):
    """On a small window the conversation scrolls to the new turn, so that the answer is in
    view and not only its last citations (at once, with reduced motion asked for)."""
    context = browser.new_context(viewport={"width": 320, "height": 640}, reduced_motion="reduce")
    page = context.new_page()
    page.goto(server.url + "/")
    for question in ("Who is the spokeswoman?", "What has Sheinbaum been dubbed?"):
        ask(page, question)
        answer = page.locator(".turn.bot").last.locator(".answer")
        assert answer.evaluate(
            "el => { const r = el.getBoundingClientRect(), c = el.closest('.conversation')"
            ".getBoundingClientRect(); return r.top >= c.top && r.bottom <= c.bottom; }"
        ), question
    # each question is its turn's heading, under the page's
    assert page.get_by_role("heading", level=2, name="What has Sheinbaum been dubbed?").count()
    context.close()


def test_a_question_left_unanswered_can_be_stopped(page):
    """An answer that never comes: the page says it is waiting, Enter says to wait, and
    Escape or the button (reading "Stop" meanwhile) stops the wait with the question kept."""
    held = []
    page.route("**/api/ask", lambda route: held.append(route))  # taken, never answered
    box = page.get_by_label("Your question")
    box.fill("Who is the spokeswoman?")
    box.press("Enter")
    page.locator(".thinking").wait_for()
    assert page.locator("#status").inner_text() == "Looking for the answer…"
    stop = page.get_by_role("button", name="Stop waiting for the answer")
    assert stop.inner_text() == "Stop" and stop.is_enabled()
    box.fill("Who said that?")
    box.press("Enter")
    assert "Wait for the answer" in page.locator("#ask-hint").inner_text()
    assert page.locator(".turn.user").count() == 1 and box.input_value() == "Who said that?"
    page.keyboard.press("Escape")
    page.wait_for_selector(".thinking", state="detached")
    assert "Stopped waiting" in page.locator(".turn.error").last.inner_text()
    assert page.get_by_role("button", name="Ask").is_enabled()
    assert page.locator("#status").inner_text() == ""
    box.fill("")
    box.fill("When was that?")
    box.press("Enter")
    page.locator(".thinking").wait_for()
    page.get_by_role("button", name="Stop waiting for the answer").click()
    page.wait_for_selector(".thinking", state="detached")
    assert page.locator(".turn.error").count() == 2
    assert box.input_value() == "When was that?"  # put back, to ask again
    assert page.evaluate("document.activeElement.id") == "question"
    page.console_errors.clear()  # the two requests stopped


def test_the_keyboard_stays_where_the_user_is(page):
    """An example pressed hides with the rest: the keyboard goes to the question box. With
    the article open, Escape typed in the box closes it and leaves the box the keyboard; a
    new conversation closes it too, and says it started."""
    page.locator(".example").first.focus()
    with page.expect_response("**/api/ask"):
        page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "question"
    page.wait_for_selector(".thinking", state="detached")
    page.locator(".turn.bot").last.locator(".cite").first.click()
    panel = page.locator("#article-panel")
    page.locator(".sentence.highlight").wait_for()
    box = page.get_by_label("Your question")
    box.click()
    box.press_sequentially("draft")
    page.keyboard.press("Escape")
    panel.wait_for(state="hidden")
    assert page.evaluate("document.activeElement.id") == "question"
    assert box.input_value() == "draft"
    page.locator(".turn.bot").last.locator(".cite").first.click()
    page.locator(".sentence.highlight").wait_for()
    page.get_by_role("button", name="New conversation").click()
    panel.wait_for(state="hidden")
    assert page.locator(".turn").count() == 0
    assert page.locator("#status").inner_text() == "New conversation started."


def test_a_citation_that_cannot_be_fetched_says_why_in_words(page):
    ask(page, "Who is the spokeswoman?")
    page.route("**/api/documents/**", lambda route: route.abort())
    page.locator(".turn.bot").last.locator(".cite").first.click()
    error = page.locator("#article-text .error")
    error.wait_for()
    assert error.inner_text().startswith("Could not reach the service.")
    page.console_errors.clear()  # the fetch refused on purpose


def test_the_page_follows_a_dark_colour_preference(browser, server):
    """Asked for dark colours, the page, its answers and its question box turn dark, their
    text light (each pair checked at 4.5:1 or more, WCAG's bar for text)."""
    pairs = (
        "(() => { const rgb = s => s.match(/\\d+/g).slice(0, 3).map(Number);"
        " const lum = c => { const [r, g, b] = c.map(v => { v /= 255;"
        " return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });"
        " return 0.2126 * r + 0.7152 * g + 0.0722 * b; };"
        " const ratio = el => { const s = getComputedStyle(el), f = lum(rgb(s.color)),"
        " b = lum(rgb(s.backgroundColor)); return [b, (Math.max(f, b) + 0.05) /"
        " (Math.min(f, b) + 0.05)]; };"
        " return [document.documentElement, document.querySelector('.turn.bot'),"
        " document.getElementById('question')].map(ratio); })()"
    )
    for scheme, dark in (("dark", True), ("light", False)):
        context = browser.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(server.url + "/")
        ask(page, "Who is the spokeswoman?")
        for background, contrast in page.evaluate(pairs):
            assert (background < 0.05) == dark and contrast >= 4.5, (scheme, background, contrast)
        context.close()


def markdown_answer(text: str, answer: str, doc: str = "guide.md") -> dict:
    """An answer ``answer`` (its first occurrence) in the sentence ``text`` of ``doc``."""
    at = text.index(answer)
    cited = {"doc": doc, "sentence": 0, "start": 50, "end": 50 + len(text), "text": text}
    return {
        "question": "q",
        "answer": answer,
        "answer_start": 50 + at,
        "answer_end": 50 + at + len(answer),
        "confidence": 0.9,
        "index_version": "x",
        "citations": [{**cited, "score": 0.9}],
    }


def test_a_markdown_answer_shows_as_its_document_shows_it(page):
    text = (
        "The 🎉 server is run by the [Platform team](https://example.org/platform) "
        "&amp; **Ingrid** on port `8080`; see [the guide](docs/guide.md) "
        "or [x](javascript:alert(1))."
    )
    # the answer lies inside a link's text: shown as its sentence shows it, a link
    reply_with(page, markdown_answer(text, "Platform team"))
    ask(page, "Who runs the server?")
    bubble = page.locator(".turn.bot").last
    answer = bubble.locator(".answer")
    assert answer.inner_text() == "Platform team"
    assert answer.locator("a").get_attribute("href") == "https://example.org/platform"
    quote = bubble.locator(".quote")
    shown = "The 🎉 server is run by the Platform team & Ingrid on port 8080; see the guide or x."
    assert quote.inner_text().startswith(shown)
    assert quote.locator("mark.answer-span").inner_text() == "Platform team"
    link = quote.locator("a")
    assert link.count() == 1  # a relative link or a script is shown as text, never opened
    assert link.inner_text() == "Platform team"
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert link.get_attribute("title") is None  # the document gave none
    note = link.get_attribute("aria-describedby")
    assert page.locator(f"#{note}").text_content() == "opens in a new tab"
    assert quote.locator("strong").inner_text() == "Ingrid"
    assert quote.locator("code").inner_text() == "8080"
    assert bubble.locator(".cite-text").inner_text() == shown

    # the article panel shows the source, where the citation is checked
    page.route(
        "**/api/documents/**",
        lambda route: route.fulfill(
            content_type="application/json",
            body=json.dumps(
                {
                    "id": "guide.md",
                    "index_version": "x",
                    "text": " " * 50 + text,
                    "sentences": [{"sentence": 0, "start": 50, "end": 50 + len(text)}],
                }
            ),
        ),
    )
    bubble.locator(".cite").first.click()
    highlighted = page.locator("#article-panel .sentence.highlight")
    highlighted.wait_for()
    assert highlighted.inner_text() == text
    page.keyboard.press("Escape")

    # an answer inside a link's address, which the link does not show: shown as written
    page.unroute("**/api/ask")
    reply_with(page, markdown_answer(text, "example.org/platform"))
    ask(page, "Where is the team's page?")
    bubble = page.locator(".turn.bot").last
    assert bubble.locator(".answer").inner_text() == "example.org/platform"
    assert bubble.locator(".quote mark.answer-span").inner_text() == "example.org/platform"


def test_the_same_marks_in_a_text_document_are_shown_as_written(page):
    text = "Run `make` with **care** &amp; see [the guide](https://example.org)."
    reply_with(page, markdown_answer(text, "**care**", doc="notes.txt"))
    ask(page, "How should it be run?")
    bubble = page.locator(".turn.bot").last
    assert bubble.locator(".answer").inner_text() == "**care**"
    assert bubble.locator(".quote").inner_text().startswith(text)
    assert bubble.locator(".quote mark.answer-span").inner_text() == "**care**"
    assert bubble.locator(".cite-text").inner_text() == text
    assert bubble.locator("a, code, strong, em, del").count() == 0


MARKDOWN_CASES = [
    # (source, mark [from, to) in code points or None, innerHTML shown)
    ("a `*b*` c", None, "a <code>*b*</code> c"),
    ("`` x ` y ``", None, "<code>x ` y</code>"),
    ("unclosed `tick and **stars and [link](", None, "unclosed `tick and **stars and [link]("),
    ("snake_case_name", None, "snake_case_name"),
    (
        "__strong__ and _em_ and ***both*** and ~~gone~~",
        None,
        "<strong>strong</strong> and <em>em</em> and <strong><em>both</em></strong> and "
        "<del>gone</del>",
    ),
    (r"\*not em\* \[not a link\](x)", None, "*not em* [not a link](x)"),
    (
        "&lt;b&gt; &#8212; &#x1F600; &nosuchname; a & b",
        None,
        "&lt;b&gt; — 😀 &amp;nosuchname; a &amp; b",
    ),
    (
        "<https://a.example/x?y=1> and <me@a.example> and <br>",
        None,
        '<a href="https://a.example/x?y=1">https://a.example/x?y=1</a> and '
        '<a href="mailto:me@a.example">me@a.example</a> and &lt;br&gt;',
    ),
    (
        "[![build](https://img.example/b.svg)](https://ci.example)",
        None,
        '<a href="https://ci.example"><span class="md-image">build</span></a>',
    ),
    (
        '[t](https://x.example/(p) "A title")',
        None,
        '<a href="https://x.example/(p)" title="A title">t</a>',
    ),
    ("[t](data:text/html,hi) [u](<javascript:x>)", None, "t u"),
    (
        "wrapped\nover [two\nlines](https://x.example)",
        None,
        'wrapped over <a href="https://x.example">two lines</a>',
    ),
    # the mark is a range of the source, shown across marks and links
    (
        "😀 a **bold 😀 b** c",
        (2, 12),
        "😀 <mark>a </mark><strong><mark>bold 😀</mark> b</strong> c",
    ),
    (
        "go to [the dock](https://d.example) now",
        (11, 15),
        'go to <a href="https://d.example">the <mark>dock</mark></a> now',
    ),
    ("x &amp; y", (2, 7), "x <mark>&amp;</mark> y"),
    # a range where nothing shows (inside a link's address): the text as written, marked
    (
        "see [CI](https://ci.example/run) now",
        (17, 31),
        "see [CI](https://<mark>ci.example/run</mark>) now",
    ),
    # CommonMark's rule of three; a link may not hold a link; references in a destination
    (
        "**foo*bar*baz** *foo**bar**baz*",
        None,
        # (nested as markdown.js always nests: strong outside emphasis)
        "<strong>foo<em>bar</em>baz</strong> <em>foo</em><strong><em>bar</em></strong><em>baz</em>",
    ),
    (
        "[[a](https://x.example)](https://y.example)",
        None,
        '[<a href="https://x.example">a</a>](https://y.example)',
    ),
    (
        "[q](https://x.example/?a=1&amp;b=2) &copyright; &ltx;",
        None,
        '<a href="https://x.example/?a=1&amp;b=2">q</a> &amp;copyright; &amp;ltx;',
    ),
    ("[j](&#106;avascript:alert(1)) [k](java&#x09;script:x)", None, "j k"),
    ("hard\\\nbreak", None, "hard break"),
    ("abc", (2, 1), "abc"),  # a mark that ends before it begins marks nothing
    # a text too long to parse in time (a table row is kept whole) is shown as written
    ("**a** " + "[a](" * 500, None, "**a** " + "[a](" * 500),
]


def test_inline_markdown_is_read_as_commonmark_reads_it(page):
    # tags as shown, without the attributes that every link or mark carries alike (a
    # title only where the document gave one)
    shown = page.evaluate(
        """cases => cases.map(([text, mark]) => {
            const box = document.createElement("div");
            box.append(...QAMarkdown.render(text, ...(mark || [-1, -1])));
            for (const a of box.querySelectorAll("a")) {
              if (a.target !== "_blank" || a.rel !== "noopener noreferrer") return "unsafe";
              if (a.getAttribute("aria-describedby") !== "new-tab-note") return "unsaid";
              for (const name of ["target", "rel", "aria-describedby"]) a.removeAttribute(name);
            }
            for (const m of box.querySelectorAll("mark")) {
              if (m.className !== "answer-span") return "unmarked";
              m.removeAttribute("class");
            }
            return box.innerHTML;
        })""",
        [[text, mark] for text, mark, _ in MARKDOWN_CASES],
    )
    assert shown == [html for _, _, html in MARKDOWN_CASES]
