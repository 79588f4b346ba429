"""`make report` / `make review` on real conversations with the running bot, on a
generated store of 100,000 conversations, and on an empty store."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from assistant.insights import cli
from assistant.insights.generate import generate
from assistant.kb.knowledge import cached_knowledge
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import load_clinic
from tests.conftest import ARTIFACTS, conversation_token, report_figure
from tests.helpers.rest import say, texts

CLINIC = load_clinic(PROJECT_ROOT / "clinic.yml")
# Personal details the visitors below type into messages the bot cannot answer.
PLANTED = ["Quentin Marlowe", "Marlowe", "0498 765 432", "0498765432", "quentin.marlowe@example.org"]
NOT_ANSWERED = ("I'm not sure I understood", "outside what I can help with", "still not getting it")


def run_report(db: Path, out: Path, *extra: str) -> Dict[str, Any]:
    assert cli.report(["--db", f"sqlite:///{db}", "--out", str(out), *extra]) == 0
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def tap(stack: Any, sender: str, payload: str) -> int:
    """What the widget sends when the visitor taps the phone number or booking link."""
    request = urllib.request.Request(
        stack.url + "/webhooks/website/handoff",
        data=json.dumps({"sender": sender, "payload": payload,
                         "token": conversation_token(stack, sender)}).encode(),
        headers={"Content-Type": "application/json", "Origin": stack.url})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return reply.status


@pytest.fixture(scope="module")
def conversations(stack: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dict[str, Any]]:
    """A handful of visitors chat with the real bot; their conversations are then
    copied out of its store (other tests' conversations share it)."""
    run = uuid.uuid4().hex[:6]
    scripts: Dict[str, List[str]] = {
        "faq": ["hello", "does it hurt?", "can it help my tennis elbow"],
        "book": ["how long does a session take", "how do i book"],
        "callback": ["will i be sore afterwards", "/request_callback", "Robin Example", "0412 345 611",
                     "Weekday mornings", "skip", "/affirm"],
        "unclear": ["my name is Quentin Marlowe, what's the weather like tomorrow",
                    "text me on 0498 765 432 about the football scores",
                    "my email is quentin.marlowe@example.org, who won the football"],
        "emergency": ["I have crushing chest pain and can't breathe"],
    }
    replies: Dict[str, List[str]] = {}
    offered = set()  # shown the clinic's call / book buttons
    for name, script in scripts.items():
        sender = f"report-{run}-{name}"
        replies[name] = []
        for message in script:
            reply = say(stack, sender, message)
            replies[name].append(" ".join(texts(reply)))
            if any(b["payload"] == CLINIC.phone_link for r in reply for b in r.get("buttons", [])):
                offered.add(name)
    assert tap(stack, f"report-{run}-book", CLINIC.phone_link) == 204
    assert tap(stack, f"report-{run}-book", "https://somewhere-else.example") == 204  # not counted

    workdir = tmp_path_factory.mktemp("report")
    store = workdir / "tracker.db"
    with sqlite3.connect(store) as copy:
        copy.execute("ATTACH DATABASE ? AS bot", (str(stack.settings.tracker_db),))
        copy.execute("CREATE TABLE events AS SELECT * FROM bot.events WHERE sender_id LIKE ?",
                     (f"report-{run}-%",))
    yield {"store": store, "scripts": scripts, "replies": replies, "offered": offered, "out": workdir / "out"}


def test_the_figures_match_the_conversations_that_were_held(conversations: Dict[str, Any]) -> None:
    summary = run_report(conversations["store"], conversations["out"])
    scripts, replies = conversations["scripts"], conversations["replies"]
    totals = summary["totals"]
    assert totals["conversations"] == totals["visitors"] == len(scripts)
    assert totals["messages"] == sum(len(script) for script in scripts.values())
    # the three unclear messages, and nothing else, went unanswered
    unanswered = [text for name in replies for text in replies[name] if any(s in text for s in NOT_ANSWERED)]
    assert len(unanswered) == 3, replies
    assert totals["unanswered"] == 3
    assert sum(group["count"] for group in summary["unanswered"]) == 3
    assert "book" in conversations["offered"]
    assert summary["funnel"] == {
        "conversations": 5, "asked_a_question": 3, "offered_booking": len(conversations["offered"]),
        "chose_to_call": 1,
        "chose_to_book_online": 0, "requested_callback": 1, "confirmed_callback": 1}
    assert summary["escalations"] == {"emergency": 1, "crisis": 0}
    topics = {topic["topic"]: topic["count"] for topic in summary["topics"]}
    tennis_elbow = cached_knowledge().find_condition("tennis elbow")
    assert tennis_elbow is not None
    assert topics == {"faq:does_it_hurt": 1, "faq:session_length": 1, "faq:soreness_after": 1,
                      "intent:book": 1, f"condition:{tennis_elbow.id}": 1}
    [day] = summary["per_day"]
    assert day["conversations"] == 5 and day["messages"] == totals["messages"]
    # Each unclear message got either "Did you mean...?" or the out-of-scope reply
    # (which one is the model's call); the report must count what the bot said.
    unclear = conversations["replies"]["unclear"]
    clarified = sum("Did you mean" in reply for reply in unclear)
    out_of_scope = sum("outside what I can help with" in reply for reply in unclear)
    assert clarified + out_of_scope == 3
    assert (day["clarifications"], day["out_of_scope"]) == (clarified, out_of_scope)


def test_no_planted_personal_detail_reaches_the_report_or_the_review(conversations: Dict[str, Any]) -> None:
    out = conversations["out"]
    run_report(conversations["store"], out)
    assert cli.review(["--db", f"sqlite:///{conversations['store']}", "--out", str(out)]) == 0
    written = {name: (out / name).read_text(encoding="utf-8")
               for name in ("report.json", "report.html", "unanswered.yml")}
    for name, text in written.items():
        for detail in PLANTED + ["Robin", "0412 345 611", "+61412345611"]:
            assert detail.lower() not in text.lower(), f"{detail!r} in {name}"
    assert "[name]" in written["report.json"] and "[phone]" in written["report.json"]
    assert "[email]" in written["report.json"]


def test_the_review_file_is_rasa_training_data_with_suggested_topics(conversations: Dict[str, Any]) -> None:
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    out = conversations["out"]
    assert cli.review(["--db", f"sqlite:///{conversations['store']}", "--out", str(out)]) == 0
    text = (out / "unanswered.yml").read_text(encoding="utf-8")
    data = RasaYAMLReader().reads(text)
    assert len(data.training_examples) == 3
    assert "# suggested:" in text and "asked 1x" in text


def test_the_report_opens_in_chromium_without_errors(conversations: Dict[str, Any], browser: Any) -> None:
    out = conversations["out"]
    run_report(conversations["store"], out)
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: List[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda failure: problems.append(str(failure)))
    page.on("request", lambda request: problems.append(f"fetched {request.url}")
            if not request.url.startswith(("file:", "data:")) else None)
    page.goto((out / "report.html").as_uri())
    assert page.locator("h1").inner_text() == "What patients asked the chat assistant"
    images = page.locator("img")
    assert images.count() == 2
    assert all(image.evaluate("i => i.complete && i.naturalWidth > 0") for image in images.all())
    assert "Sent a call-back request" in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    page.close()
    assert problems == []


def test_an_empty_store_says_no_conversations_yet(tmp_path: Path) -> None:
    summary = run_report(tmp_path / "none-yet.db", tmp_path)  # not even created yet
    assert summary["totals"]["conversations"] == 0 and summary["unanswered"] == []
    assert "No conversations yet" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert not (tmp_path / "none-yet.db").exists()
    assert cli.review(["--db", f"sqlite:///{tmp_path / 'none-yet.db'}", "--out", str(tmp_path)]) == 0


def test_a_period_outside_the_conversations_is_empty(conversations: Dict[str, Any], tmp_path: Path) -> None:
    summary = run_report(conversations["store"], tmp_path, "--since", "2020-01-01", "--until", "2020-01-31")
    assert summary["totals"]["conversations"] == 0
    assert summary["period"] == {"from": "2020-01-01", "to": "2020-01-31"}


def test_a_bad_store_or_date_gets_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.report(["--db", "postgresql://nobody@127.0.0.1:1/none", "--out", str(tmp_path)]) == 2
    assert "Cannot read the conversations" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.report(["--since", "last tuesday"])


def test_100k_generated_conversations(tmp_path: Path) -> None:
    """The figures match what was generated, planted details are redacted, and
    the time is printed (speed is not asserted in tests; see `make bench`)."""
    store = tmp_path / "large.db"
    expected = generate(store, 100_000, CLINIC.phone_link, CLINIC.booking_url)
    started = time.monotonic()
    summary = run_report(store, tmp_path)
    seconds = time.monotonic() - started
    report_figure(f"report on 100,000 generated conversations ({expected.messages} messages): "
                  f"{seconds:.1f} s")
    totals = summary["totals"]
    assert totals["visitors"] == expected.visitors == 100_000
    assert totals["conversations"] == expected.conversations
    assert totals["returning_visitors"] == expected.returning_visitors
    assert totals["messages"] == expected.messages
    assert totals["unanswered"] == expected.unanswered
    assert sum(day["out_of_scope"] for day in summary["per_day"]) == expected.out_of_scope
    assert sum(group["count"] for group in summary["unanswered"]) == expected.unanswered
    assert summary["escalations"]["emergency"] == expected.escalations["emergency"]
    assert {t["topic"]: t["count"] for t in summary["topics"]} == dict(expected.topics)
    funnel = summary["funnel"]
    for step, count in expected.funnel.items():
        assert funnel[step] == count, step
    text = "".join((tmp_path / name).read_text(encoding="utf-8") for name in ("report.json", "report.html"))
    for detail in expected.planted:
        assert detail not in text
    # similar wordings are one group: "do u do cupping" with "do you do cupping as well"
    cupping = [g for g in summary["unanswered"] if "cupping" in g["example"]]
    assert len(cupping) == 1 and len(cupping[0]["examples"]) == 2
