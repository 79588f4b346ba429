"""The staff console: a signed-in inbox for call-back requests at /staff/ (issue 18).

Receptionists have no terminal, so the clinic's side of the bot is served by the
Rasa server itself, on its own port, behind the same HTTPS proxy as the widget:

* ``tables.py``     -- staff accounts, the audit trail and request status changes,
  in the requests database (next to ``callback_requests``);
* ``accounts.py``   -- Argon2id passwords and ``make staff`` (add, list, remove, reset);
* ``sessions.py``   -- the signed session cookie, CSRF tokens, sign-in throttling;
* ``formatting.py`` -- how a request is shown (clinic time, national phone
  format, who and when), shared by the console and ``make requests``;
* ``export.py``     -- the CSV export, safe against spreadsheet formulas;
* ``inbox.py``      -- listing, searching and changing requests, with the audit trail;
* ``routes.py``     -- the /staff blueprint (registered in credentials.yml);
* ``templates/``    -- server-rendered HTML, our own CSS and a small polling script.
"""
