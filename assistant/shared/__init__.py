"""Used by both server processes and the tools: Rasa/Sanic patching, HTTP limits,
the action secret, private files, SQLite hygiene, e-mail sending."""
