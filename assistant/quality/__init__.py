"""Measurement: held-out evaluation, the sealed set, and make bench."""
