"""Helpers shared by several test modules (tests/helpers/<what>.py)."""
