"""Loaded inside the Rasa server: its entry point, speed-ups, stores, channels and limits."""
