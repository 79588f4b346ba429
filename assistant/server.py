"""The Rasa server's entry point: `rasa <command>` with our speed-ups applied.

    python -m assistant.server run --model ... (the launcher does this)

* Rasa validates every action server reply with ``jsonschema.validate``, which
  re-checks the (large, constant) events schema against its meta-schema and
  builds a new validator on every call: about a quarter of a busy server's CPU
  in the profile (py-spy, `make bench` load). Here the validator is built once;
  a reply that fails still goes through Rasa's own check, so errors and their
  messages are unchanged.
"""

from __future__ import annotations

import sys
from typing import Any, Dict


def cache_action_result_validation() -> None:
    from jsonschema.exceptions import best_match
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator = validator_for(schema)(schema)
    stock_validation = RemoteAction._validate_action_result

    def validate(self: RemoteAction, result: Dict[str, Any]) -> bool:
        if best_match(validator.iter_errors(result)) is None:
            return True
        return stock_validation(self, result)  # raises Rasa's own, explained error

    RemoteAction._validate_action_result = validate


def main() -> None:
    cache_action_result_validation()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    sys.argv[0] = "rasa"
    main()
