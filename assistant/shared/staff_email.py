"""The e-mails the clinic's staff get (a call-back alert, the weekly summary):
one layout for both, a plain-text part with aligned fields and an HTML part
with the same fields in a table, a link into the staff console, and a line
saying which clinic.yml setting put the reader on the list."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from typing import Sequence, Tuple

from assistant.callback_requests.store import utcnow
from assistant.settings.smtp import SmtpSettings

ROW = "<tr><th align='left' style='padding:2px 12px 2px 0'>{label}</th><td>{value}</td></tr>"


@dataclass(frozen=True)
class StaffEmail:
    subject: str
    to: str
    message_id: str
    intro: str  # the opening sentence, plain text
    text_fields: Sequence[Tuple[str, str]]  # (label, value) in the text part
    html_fields: Sequence[Tuple[str, str]]  # (label, value already HTML) in the table
    link: str
    link_label: str  # the text part: "<link_label>: <link>"
    link_html_label: str  # the HTML part: the link's own words
    setting: str  # the clinic.yml key that lists the reader's address
    html_heading: str = ""  # an <h2> above the table, plain text


def compose(email: StaffEmail, settings: SmtpSettings) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = email.subject
    message["From"] = settings.sender
    message["To"] = email.to
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = email.message_id
    why = (f"You get this e-mail because your address is in {email.setting} in the chat assistant's "
           "clinic.yml.")
    width = max(len(label) for label, _ in email.text_fields) + 2
    text = [email.intro, ""]
    text += [f"{label + ':':<{width}}{value}" for label, value in email.text_fields]
    text += ["", f"{email.link_label}: {email.link}", "", why]
    message.set_content("\n".join(text) + "\n")
    rows = "".join(ROW.format(label=escape(label), value=value) for label, value in email.html_fields)
    heading = f"<h2 style='margin:0 0 8px'>{escape(email.html_heading)}</h2>" if email.html_heading else ""
    message.add_alternative(
        f"<!doctype html><html><body style='font-family:sans-serif'>"
        f"<p>{escape(email.intro)}</p>{heading}<table>{rows}</table>"
        f"<p><a href='{escape(email.link)}'>{escape(email.link_html_label)}</a></p>"
        f"<p style='color:#555;font-size:small'>{why}</p></body></html>", subtype="html")
    return message
