"""The action server's process: rasa_sdk's app on loopback behind a secret (the actions are in actions/)."""
