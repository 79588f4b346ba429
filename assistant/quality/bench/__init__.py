"""`make bench`: speed and answer quality of the project's configuration against
a stock Rasa baseline, measured in the same run (see assistant/quality/bench/run.py)."""
