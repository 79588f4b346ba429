"""`make report` / `make review` on real conversations with the running bot, on a
generated store of 100,000 conversations, on an empty store, and on conversations
around the clinic's midnight (its days are the clinic's, not UTC's)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.request
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Tuple
from zoneinfo import ZoneInfo

import pytest
from rasa.shared.core.events import ActionExecuted, Event, SessionStarted

from assistant.insights import cli
from assistant.insights.analyse import day_of
from assistant.insights.generate import SCHEMA, Generator, _bot, _turn, _user, generate
from assistant.kb.knowledge import cached_knowledge
from assistant.kb.other_reading import BUTTON_TITLE
from assistant.nlu.red_flag_rules import EMERGENCY_AND_CRISIS
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import Clinic, load_clinic
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
                    # (round 23's model read "text me on <number> about the football scores"
                    # as a call-back request, and "my email is <address>, who won the
                    # football" as asking for the clinic's contact details)
                    "my mobile 0498 765 432 has a cracked screen, where can i get it fixed",
                    "quentin.marlowe@example.org here, whats the best pizza in town"],
        "emergency": ["I have crushing chest pain and can't breathe"],
        # answered from context (running late), then its "Or did you mean" button tapped
        "other": ["i'm running about 10 minutes late for my appointment", "will i still get the full session",
                  "/faq/part_of_plan"],
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
        "conversations": 6, "asked_a_question": 4, "offered_booking": len(conversations["offered"]),
        "chose_to_call": 1,
        "chose_to_book_online": 0, "requested_callback": 1, "confirmed_callback": 1}
    assert summary["escalations"] == {"emergency": 1, "crisis": 0}
    topics = {topic["topic"]: topic["count"] for topic in summary["topics"]}
    tennis_elbow = cached_knowledge().find_condition("tennis elbow")
    assert tennis_elbow is not None
    assert topics == {"faq:does_it_hurt": 1, "faq:session_length": 1, "faq:soreness_after": 1,
                      "intent:book": 1, f"condition:{tennis_elbow.id}": 1,
                      "faq:running_late": 2, "faq:part_of_plan": 1}
    # the kept answer offered "Or did you mean" once, and the visitor tapped it
    assert summary["other_readings"] == {"offered": 1, "taken": 1}
    [day] = summary["per_day"]
    assert day["conversations"] == 6 and day["messages"] == totals["messages"]
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
    assert summary["period"] == {"from": "2020-01-01", "to": "2020-01-31", "timezone": CLINIC.timezone}


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


# Around a Sydney midnight (AEDT, UTC+11, in December): in UTC both messages are
# on 30 November; at the clinic the second one is on 1 December.
SYDNEY = ZoneInfo("Australia/Sydney")
LATE_EVENING = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc).timestamp()  # 23:00 on 30 Nov in Sydney
NEXT_MORNING = datetime(2026, 11, 30, 22, 30, tzinfo=timezone.utc).timestamp()  # 09:30 on 1 Dec in Sydney


def write_store(path: Path, conversations: List[Tuple[str, float, List[Event]]]) -> Path:
    """A tracker store holding each (sender, start, turns) as one session, a second apart per event."""
    connection = sqlite3.connect(path)
    connection.execute(SCHEMA)
    with connection:
        for sender, start, turns in conversations:
            events = [ActionExecuted("action_session_start"), SessionStarted(),
                      ActionExecuted("action_listen"), *turns]
            connection.executemany(
                "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [Generator._row(sender, event, start + second) for second, event in enumerate(events)])
    connection.close()
    return path


@pytest.fixture
def sydney_clinic(monkeypatch: pytest.MonkeyPatch) -> Clinic:
    clinic = replace(CLINIC, timezone="Australia/Sydney")
    monkeypatch.setattr(cli, "load_clinic", lambda: clinic)
    return clinic


@pytest.fixture
def around_midnight(tmp_path: Path) -> Path:
    """A question late on 30 November and an emergency the next morning, Sydney time."""
    return write_store(tmp_path / "midnight.db", [
        ("late", LATE_EVENING, _turn(_user("how long is a session", "faq", faq="session_length"),
                                     "utter_faq", _bot("utter_faq/session_length", "An answer."))),
        ("morning", NEXT_MORNING, _turn(_user("i have chest pain", "emergency", 1.0), "utter_emergency",
                                        _bot("utter_emergency", "Call 000."))),
    ])


def test_a_day_is_the_clinics_day() -> None:
    assert day_of(NEXT_MORNING, SYDNEY) == "2026-12-01"
    assert day_of(NEXT_MORNING, timezone.utc) == "2026-11-30"  # what the report used to count
    assert day_of(LATE_EVENING, SYDNEY) == "2026-11-30"


def test_the_report_counts_days_in_the_clinics_time_zone(sydney_clinic: Clinic, around_midnight: Path,
                                                         tmp_path: Path) -> None:
    summary = run_report(around_midnight, tmp_path / "out")
    assert [(day["date"], day["conversations"], day["messages"]) for day in summary["per_day"]] == [
        ("2026-11-30", 1, 1), ("2026-12-01", 1, 1)]
    assert summary["period"] == {"from": "2026-11-30", "to": "2026-12-01", "timezone": "Australia/Sydney"}
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "2026-11-30 to 2026-12-01 (Australia/Sydney time)" in html


def test_warning_sign_times_are_the_clinics_local_times(sydney_clinic: Clinic, around_midnight: Path,
                                                        tmp_path: Path) -> None:
    summary = run_report(around_midnight, tmp_path / "out")
    [sign] = summary["warning_signs"]["items"]
    assert (sign["at"], sign["kind"]) == ("2026-12-01 09:30 AEDT", "emergency")
    made = summary["generated_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d AE[DS]T", made), made
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "2026-12-01 09:30 AEDT" in html and "UTC" not in html


def test_an_emergency_and_a_crisis_at_once_count_as_one_of_each(tmp_path: Path) -> None:
    both = EMERGENCY_AND_CRISIS
    db = write_store(tmp_path / "both.db", [("both", NEXT_MORNING, _turn(
        _user("pills lined up, going to take the lot", both, 1.0), f"utter_{both}",
        _bot(f"utter_{both}", "Call 000. Lifeline."))),
    ])
    summary = run_report(db, tmp_path / "out")
    assert summary["escalations"] == {"emergency": 1, "crisis": 1}
    [sign] = summary["warning_signs"]["items"]
    assert sign["kind"] == both and summary["warning_signs"]["counts"][both] == 1
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "emergency number and crisis line</td>" in html


def test_since_and_until_are_the_clinics_days(sydney_clinic: Clinic, around_midnight: Path,
                                              tmp_path: Path) -> None:
    """--since 2026-12-01 starts at Sydney's midnight (13:00 UTC on 30 November):
    the morning's emergency is in it, the evening before is not; --until is the reverse."""
    december = run_report(around_midnight, tmp_path / "december", "--since", "2026-12-01")
    assert [day["date"] for day in december["per_day"]] == ["2026-12-01"]
    assert december["totals"]["messages"] == 1 and len(december["warning_signs"]["items"]) == 1
    assert (december["period"]["from"], december["period"]["to"]) == ("2026-12-01", "2026-12-01")
    november = run_report(around_midnight, tmp_path / "november", "--until", "2026-11-30")
    assert [day["date"] for day in november["per_day"]] == ["2026-11-30"]
    assert november["totals"]["messages"] == 1 and november["warning_signs"]["items"] == []
    assert (november["period"]["from"], november["period"]["to"]) == ("2026-11-30", "2026-11-30")
    one_day = run_report(around_midnight, tmp_path / "one-day",
                         "--since", "2026-12-01", "--until", "2026-12-01")
    assert one_day["period"]["to"] == "2026-12-01" and one_day["totals"]["messages"] == 1


def test_a_local_time_names_its_zone() -> None:
    """An abbreviation where the zone has one (AEST in winter), else the zone's name."""
    assert cli.local_time(datetime(2026, 7, 1, 8, 30, tzinfo=SYDNEY)) == "2026-07-01 08:30 AEST"
    assert cli.local_time(datetime(2026, 12, 1, 9, 30, tzinfo=ZoneInfo("Asia/Dubai"))) == \
        "2026-12-01 09:30 Asia/Dubai"
    assert cli.local_midnight(datetime(2026, 12, 1).date(), SYDNEY) == datetime(2026, 11, 30, 13, 0,
                                                                               tzinfo=timezone.utc)


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])  # UTC+14 and UTC-11
def test_the_consoles_report_ends_today_at_the_clinic(zone: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The console's default period ends on the clinic's today, which the report's
    --until counts in the clinic's zone (at any hour one of these two is not UTC's date)."""
    from assistant.staff import routes

    monkeypatch.setattr(routes, "_zone", lambda: ZoneInfo(zone))
    since, until = routes._period(SimpleNamespace(args={}))  # type: ignore[arg-type]
    today = datetime.now(ZoneInfo(zone)).date()
    assert (since, until) == (today.replace(day=1), today)


def test_only_a_tap_on_the_other_reading_counts_as_taken(tmp_path: Path) -> None:
    """Two kept answers offer "Or did you mean": one visitor taps it, the other types
    the same payload's words (not a tap) and then taps an older button (not the offer)."""
    offer = _bot("utter_faq/running_late", "A kept answer.",
                 [{"title": "Related", "payload": "/faq/session_length"},
                  {"title": BUTTON_TITLE.format(title="Part of a plan"), "payload": "/faq/part_of_plan"}])
    kept = _turn(_user("will i still get the full session", "faq", faq="running_late"), "utter_faq", offer)
    store = write_store(tmp_path / "other.db", [
        ("tapped", LATE_EVENING, kept + _turn(_user("/faq/part_of_plan", "faq", faq="part_of_plan"),
                                              "utter_faq", _bot("utter_faq/part_of_plan", "An answer."))),
        ("typed", LATE_EVENING, kept + _turn(_user("part of a plan", "faq", faq="part_of_plan"), "utter_faq")
         + _turn(_user("/faq/part_of_plan", "faq", faq="part_of_plan"), "utter_faq")),
    ])
    summary = run_report(store, tmp_path / "out")
    assert summary["other_readings"] == {"offered": 2, "taken": 1}
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<b>2</b> answer(s) were chosen" in html and "tapped it <b>1</b> time(s) (50%)" in html
