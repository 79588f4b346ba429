"""Deliver new call-back requests to the clinic's webhook (and by e-mail), from the outbox.

    python -m assistant.callback_requests.notifier          # started by `make run` when clinic.yml
                                          # sets callback_webhook_url, notify_email
                                          # or weekly_summary

Each pass runs every configured channel in turn: the webhook (below), the
e-mail alerts (assistant/callback_requests/email_alerts.py) and the manager's weekly summary
(assistant/staff/weekly_summary.py). Each channel has its own outbox table and is
marked delivered on its own: a mail server that is down never makes the
webhook send again, nor the reverse. A failing pass of one channel is logged
and the others still run.

The bot never calls the webhook itself: the form's last action stores the
request and its outbox row in one transaction and answers the visitor at once.
This worker, a separate process, polls the outbox and POSTs each request as
JSON with an ``Idempotency-Key`` header (the request's unique key):

* 2xx marks it delivered; it is never sent again.
* Anything else (HTTP error, refused connection, timeout) is recorded and
  retried later with exponential back-off (5 s, 10 s, 20 s ... capped at one
  hour), for as long as it takes. Nothing is dropped.
* Each attempt is claimed atomically in the database, so several workers (one
  per server in a cluster) never send the same attempt twice. If a worker dies
  after the clinic's system received a request but before it was marked
  delivered, the request is sent again with the same Idempotency-Key, which
  lets the receiver ignore the repeat.

Logs name the request (CB-12) and the failure, never the visitor's details.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Union

import requests

from assistant.callback_requests.store import (
    CallbackRequest,
    CallbackStore,
    StoreUnavailable,
    current_store,
    utcnow,
)
from assistant.settings.clinic import Clinic, ClinicConfigError, load_clinic

logger = logging.getLogger("assistant.callback_requests.notifier")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class Backoff:
    first: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(hours=1)

    def after(self, attempts: int) -> timedelta:
        """Wait before the next try, after `attempts` failed ones (1, 2, ...)."""
        delay = self.first * (2 ** min(max(attempts - 1, 0), 20))
        return min(delay, self.longest)


def payload(request: CallbackRequest, clinic: Clinic) -> Dict[str, Any]:
    """What the clinic's system receives: the request, nothing about the chat itself."""
    return {
        "reference": f"CB-{request.id}",
        "clinic": clinic.name,
        "created_at": request.created_at.isoformat() if request.created_at else None,
        "name": request.name,
        "contact": request.contact,
        "contact_type": request.contact_type,
        "preferred_time": request.preferred_time,
        "reason": request.reason,
        "consent_at": request.consent_at.isoformat() if request.consent_at else None,
    }


class Channel(Protocol):
    """One way of delivering (webhook, e-mail alerts, weekly summary): a pass at a time."""

    label: str

    def describe(self) -> str: ...

    def deliver_due(self) -> int: ...


class Notifier:
    label = "webhook"

    def __init__(
        self,
        store: CallbackStore,
        clinic: Clinic,
        timeout: float = 5.0,
        backoff: Backoff = Backoff(),
        clock: Clock = utcnow,
    ) -> None:
        if not clinic.callback_webhook_url:
            raise ValueError("the clinic has no callback_webhook_url")
        self.store = store
        self.clinic = clinic
        self.url = clinic.callback_webhook_url
        self.timeout = timeout
        self.backoff = backoff
        self.clock = clock
        self.http = requests.Session()
        # a claimed attempt is someone else's until it has had time to finish
        self.lease = timedelta(seconds=timeout * 3 + 30)

    def describe(self) -> str:
        return f"delivering call-back requests to {self.url}"

    def deliver_due(self) -> int:
        """One pass over the due messages; returns how many were delivered."""
        delivered = 0
        now = self.clock()
        for outbox_id, request in self.store.due_notifications(now):
            if not self.store.claim(outbox_id, now, self.lease):
                continue  # another worker took it
            error = self._post(request)
            if error is None:
                self.store.mark_delivered(outbox_id, self.clock())
                logger.info("call-back request CB-%s delivered to the clinic's webhook", request.id)
                delivered += 1
            else:
                self._retry_later(outbox_id, request, error)
        return delivered

    def _post(self, request: CallbackRequest) -> Optional[str]:
        """POST one request; None on success, else a short description of the failure."""
        try:
            response = self.http.post(
                self.url,
                json=payload(request, self.clinic),
                headers={"Idempotency-Key": request.request_key},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            return type(error).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def _retry_later(self, outbox_id: int, request: CallbackRequest, error: str) -> None:
        attempts = self.store.mark_failed(outbox_id, error, self.clock(), self.backoff.after)
        logger.warning("webhook for call-back request CB-%s failed (%s, attempt %d); retrying in %ds",
                       request.id, error, attempts, self.backoff.after(attempts).total_seconds())


def run(channels: Union[Channel, Sequence[Channel]], poll_seconds: float, stop: threading.Event) -> None:
    channels = [channels] if not isinstance(channels, Sequence) else list(channels)
    for channel in channels:
        logger.info("%s every %.0fs", channel.describe(), poll_seconds)
    while not stop.is_set():
        for channel in channels:
            try:
                channel.deliver_due()
            except StoreUnavailable as error:
                # the database is down: nothing can be lost, try again on the next pass
                logger.error("request database unavailable: %s", type(error.__cause__).__name__)
            except Exception as error:  # one bad pass never stops deliveries (nor, via the launcher, the bot)
                logger.error("%s delivery pass failed: %s", channel.label, type(error).__name__)
        stop.wait(poll_seconds)


def needs_notifier(clinic: Clinic) -> bool:
    """Whether clinic.yml asks for anything the notifier delivers."""
    return bool(clinic.callback_webhook_url or clinic.notify_email or clinic.weekly_summary)


def channels_for(clinic: Clinic, store: CallbackStore, env: Any = os.environ) -> List[Channel]:
    """The channels clinic.yml asks for; SmtpConfigError when e-mail is asked for but
    the SMTP_* settings are missing or wrong."""
    channels: List[Channel] = []
    if clinic.callback_webhook_url:
        channels.append(Notifier(store, clinic))
    if clinic.notify_email or clinic.weekly_summary:
        from assistant.callback_requests.email_alerts import EmailAlerts
        from assistant.settings.smtp import smtp_settings, staff_base_url
        from assistant.staff.weekly_summary import WeeklySummary

        settings, base_url = smtp_settings(env), staff_base_url(env)
        if clinic.notify_email:
            channels.append(EmailAlerts(store, clinic, settings, base_url))
        if clinic.weekly_summary:
            channels.append(WeeklySummary(store, clinic, settings, base_url))
    return channels


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Deliver call-back requests to the clinic's webhook and by e-mail.")
    parser.add_argument("--poll", type=float, default=float(os.environ.get("NOTIFIER_POLL_SECONDS", 2)),
                        help="seconds between passes over the outbox (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s - %(message)s")
    try:
        clinic = load_clinic()
    except ClinicConfigError as error:
        print(error, file=sys.stderr)
        return 2
    from assistant.settings.smtp import SmtpConfigError

    try:
        channels = channels_for(clinic, current_store())
    except SmtpConfigError as error:
        print(f"e-mail settings: {error}", file=sys.stderr)
        return 2
    if not channels:
        print("clinic config has no callback_webhook_url, notify_email or weekly_summary: "
              "nothing to deliver", file=sys.stderr)
        return 0
    stop = threading.Event()

    def request_stop(signum: int, frame: Optional[FrameType]) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    run(channels, args.poll, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
