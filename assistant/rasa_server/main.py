"""The Rasa server's entry point: `rasa <command>` with our speed-ups
(speedups.py) and hardening (hardening.py) applied.

    python -m assistant.rasa_server.main run --model ... (the launcher does this)

Each speed-up is checked by the test suite (tests/test_server_speedups.py) and
measured by `make bench`, whose baseline runs plain `rasa` without them. Every
patch is checked against the installed Rasa and Sanic versions first
(assistant/shared/patching.py): an unknown version stops start-up with a message.
"""

from __future__ import annotations

import sys

from assistant.rasa_server.hardening import apply_hardening
from assistant.rasa_server.speedups import apply_speedups
from assistant.shared.patching import exit_if_unsupported


def main() -> None:
    exit_if_unsupported("rasa", "sanic", "sanic-cors")
    apply_speedups()
    apply_hardening()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    sys.argv[0] = "rasa"
    main()
