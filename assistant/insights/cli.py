"""`make report` and `make review`: what patients asked, what the bot missed.

    make report                                   # results/report/report.html + report.json
    make report ARGS="--since 2026-11-01 --until 2026-11-30"
    make report ARGS="--db postgresql://user:password@host/clinic"   # the production store
    make review                                   # results/review/unanswered.yml

The store is the one `make run` writes (TRACKER_DB, default var/tracker.db)
unless --db (or REPORT_DB_URL) names another SQLAlchemy URL.

Days, dates and times are the clinic's (clinic.yml `timezone`), as its staff
live them: --since and --until run from local midnight, and a message sent at
9 a.m. in Sydney counts on that day, not on the previous UTC day.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

from assistant.insights.analyse import Analyser
from assistant.insights.events import default_store_url, read_events
from assistant.insights.group import group_messages
from assistant.insights.html import render
from assistant.insights.redact import redact
from assistant.kb.knowledge import KnowledgeBase, cached_knowledge
from assistant.paths import PROJECT_ROOT
from assistant.settings.clinic import Clinic, ClinicConfigError, load_clinic
from assistant.shared.private_files import write_private

RESULTS = PROJECT_ROOT / "results"


def _date(text: str) -> date:
    """Only the day: when it starts depends on the clinic's zone, known once
    clinic.yml is read (`local_midnight`)."""
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date like 2026-11-30") from None


def local_midnight(day: Optional[date], zone: tzinfo) -> Optional[datetime]:
    """The moment `day` starts at the clinic: in Sydney, 2026-12-01 starts at
    13:00 UTC on 2026-11-30, and the clinic's morning belongs to its own day."""
    return datetime.combine(day, datetime.min.time(), zone) if day else None


def local_time(moment: datetime) -> str:
    """ "2026-12-01 09:30 AEDT": the zone is shown so that nobody reads the time
    as UTC or their own. A zone whose abbreviation is only an offset ("+04")
    is named instead ("Asia/Dubai")."""
    label = moment.strftime("%Z")
    if not label.isalpha():
        label = str(moment.tzinfo)  # a ZoneInfo's key
    return f"{moment:%Y-%m-%d %H:%M} {label}"


def analyse_store(url: str, clinic: Clinic, kb: KnowledgeBase, since: Optional[datetime] = None,
                  until: Optional[datetime] = None) -> Dict[str, Any]:
    """The JSON summary of the store's conversations in [since, until), with its
    days and times in the clinic's zone."""
    zone = ZoneInfo(clinic.timezone)
    analyser = Analyser(kb, clinic.phone_link, clinic.booking_url, zone)
    for row in read_events(url, since, until):
        analyser.add(row)
    summary = analyser.summary()
    items = [(redact(message.text, clinic.region, analyser.known_names(message.sender_id)),
              message.suggestion) for message in analyser.unanswered()]
    summary["unanswered"] = [
        {**group.as_dict(), "suggested_label": suggestion_label(group.suggestion, analyser)}
        for group in group_messages(items)]
    # Newest first; redacted like the unanswered messages.
    summary["warning_signs"]["items"] = [
        {"at": local_time(datetime.fromtimestamp(sign.timestamp, zone)), "kind": sign.kind,
         "message": redact(sign.text, clinic.region, analyser.known_names(sign.sender_id))}
        for sign in sorted(analyser.warning_signs, key=lambda sign: -sign.timestamp)]
    summary["period"] = {
        # the days asked for, else those of the first and last events
        "from": _day(since, analyser.first_event, zone),
        "to": _day(until - timedelta(microseconds=1) if until else None, analyser.last_event, zone),
        "timezone": clinic.timezone,
    }
    summary["generated_at"] = local_time(datetime.now(zone))
    return summary


def _day(moment: Optional[datetime], timestamp: Optional[float], zone: tzinfo) -> str:
    """The clinic's date of `moment`, else of `timestamp`; "-" for neither (no events)."""
    if moment is None and timestamp:
        moment = datetime.fromtimestamp(timestamp, zone)
    return moment.astimezone(zone).strftime("%Y-%m-%d") if moment else "-"


def suggestion_label(suggestion: str, analyser: Analyser) -> str:
    if suggestion.startswith("faq/"):
        return analyser.topic_label("faq:" + suggestion[4:])
    if suggestion == "out_of_scope":
        return "(outside what the assistant covers)"
    return analyser.topic_label("intent:" + suggestion) if suggestion else ""


def review_yaml(summary: Dict[str, Any]) -> str:
    """The unanswered messages in Rasa's NLU format, one block per suggested
    intent, each message commented with its group's size and suggested topic."""
    lines = [
        "# Messages the assistant could not answer, from `make review`. Personal details",
        "# are replaced by [name], [phone] and [email].",
        "# For each message: keep it under the right intent, or delete it.",
        "# FAQ questions (faq/<topic>) go into that topic's `questions:` in",
        "# knowledge/topics/*.yml (the knowledge base is the source of the FAQ",
        "# training data); other intents go into data/nlu/*.yml. Then `make test`.",
        'version: "3.1"', "nlu:"]
    by_intent: Dict[str, List[Dict[str, Any]]] = {}
    for group in summary["unanswered"]:
        by_intent.setdefault(group["suggested_topic"] or "out_of_scope", []).append(group)
    for intent, groups in sorted(by_intent.items(), key=lambda item: -sum(g["count"] for g in item[1])):
        lines += [f"# suggested: {groups[0]['suggested_label'] or intent}", f"- intent: {intent}",
                  "  examples: |"]
        for group in groups:
            for example in group["examples"]:
                lines.append(f"    - {_one_line(example)}  # asked {group['count']}x in this group")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("#", "")


def _arguments(argv: Optional[List[str]], description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", default=os.environ.get("REPORT_DB_URL") or default_store_url(),
                        help="SQLAlchemy URL of the tracker store (default: the one `make run` writes)")
    parser.add_argument("--since", type=_date,
                        help="first day, YYYY-MM-DD, from midnight in the clinic's time zone (clinic.yml)")
    parser.add_argument("--until", type=_date,
                        help="last day, YYYY-MM-DD, included, to midnight in the clinic's time zone")
    parser.add_argument("--out", type=Path, help="output folder")
    args = parser.parse_args(argv)
    if args.until:
        args.until = args.until + timedelta(days=1)  # the day after: the period is [since, until)
    if args.since and args.until and args.since >= args.until:
        parser.error("--since must be on or before --until")
    return args


def _summary(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    try:
        clinic = load_clinic()
    except ClinicConfigError as error:
        print(f"Cannot make the report: {error}", file=sys.stderr)
        return None
    zone = ZoneInfo(clinic.timezone)
    try:
        return analyse_store(args.db, clinic, cached_knowledge(), local_midnight(args.since, zone),
                             local_midnight(args.until, zone))
    except Exception as error:  # a store that is down or not a tracker store
        print(f"Cannot read the conversations from the store: {type(error).__name__}: {error}",
              file=sys.stderr)
        return None


def report(argv: Optional[List[str]] = None) -> int:
    args = _arguments(argv, "Write the report on what patients asked the assistant.")
    started = time.monotonic()
    summary = _summary(args)
    if summary is None:
        return 2
    out = args.out or RESULTS / "report"
    # private to the staff user: it quotes what patients typed (redacted)
    write_private(out / "report.json", json.dumps(summary, indent=2) + "\n")
    write_private(out / "report.html", render(summary, load_clinic().name))
    totals = summary["totals"]
    if totals["conversations"]:
        print(f"{totals['conversations']} conversations, {totals['messages']} messages, "
              f"{totals['unanswered']} not answered ({100 * totals['unanswered_rate']:.0f}%), "
              f"{summary['funnel']['confirmed_callback']} call-back requests.")
    else:
        print("No conversations yet in this period.")
    print(f"Report: {out / 'report.html'}  (summary: {out / 'report.json'}; "
          f"{time.monotonic() - started:.1f} s)")
    return 0


def review(argv: Optional[List[str]] = None) -> int:
    args = _arguments(argv, "Export unanswered messages for review, in Rasa's NLU format.")
    summary = _summary(args)
    if summary is None:
        return 2
    out = args.out or RESULTS / "review"
    path = out / "unanswered.yml"
    write_private(path, review_yaml(summary))
    print(f"{sum(g['count'] for g in summary['unanswered'])} unanswered messages in "
          f"{len(summary['unanswered'])} groups: {path}")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command not in ("report", "review"):
        print("usage: python -m assistant.insights.cli report|review [options]", file=sys.stderr)
        sys.exit(2)
    sys.exit(report(sys.argv[2:]) if command == "report" else review(sys.argv[2:]))
