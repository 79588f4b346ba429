"""Version-checked replacement of Rasa, rasa_sdk and Sanic internals.

The project changes a few internals of the libraries it runs on (the Rasa
server's speed-ups in assistant/rasa_server/speedups.py, the HTTP transport limits in
assistant/shared/transport.py, the worker supervision in assistant/rasa_server/worker_pool.py,
the action-server fallback in assistant/rasa_server/action_fallback.py; the website
channel relies on a private flag of sanic-cors). Each was written
against, and is tested with, the exact versions below. A patch applied to
another version could silently do the wrong thing (a method whose body moved
on, a bug fixed differently), so start-up stops instead, with a message that
says which package and what to check:

    Cannot start: sanic 22.12.0 is installed, but the project patches its
    internals (assistant/shared/transport.py) and was checked against sanic 21.12.2 only. ...

After checking the patches against a new version (and running their tests:
tests/test_server_speedups.py, tests/test_transport.py, tests/test_self_healing.py),
add it to TESTED_VERSIONS.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Dict, Tuple

# distribution name -> the versions whose internals we patch as tested
TESTED_VERSIONS: Dict[str, Tuple[str, ...]] = {
    "rasa": ("3.6.21",),
    "rasa-sdk": ("3.6.2",),
    "sanic": ("21.12.2",),
    "sanic-cors": ("2.0.1",),
}
# what patches each distribution, for the message
PATCHED_BY = {
    "rasa": ("assistant/rasa_server/: speedups.py, hardening.py, action_fallback.py, state_cache.py, "
             "tracker_copy.py, rule_speedups.py, action_payload.py"),
    "rasa-sdk": "assistant/action_server/app.py",
    "sanic": "assistant/shared/transport.py, assistant/rasa_server/worker_pool.py",
    "sanic-cors": "assistant/rasa_server/website_channel.py, which sets its private 'evaluated' flag",
}
EXIT_UNSUPPORTED = 2  # the exit code of every configuration error at start-up


class UnsupportedVersion(RuntimeError):
    """An installed library is not a version the project's patches were checked against."""


def installed_version(distribution: str) -> str:
    return metadata.version(distribution)


def check_version(distribution: str) -> None:
    """Raise UnsupportedVersion unless `distribution` is a tested version."""
    tested = TESTED_VERSIONS[distribution]
    try:
        found = installed_version(distribution)
    except metadata.PackageNotFoundError:
        raise UnsupportedVersion(f"{distribution} is not installed") from None
    if found not in tested:
        raise UnsupportedVersion(
            f"{distribution} {found} is installed, but the project patches its internals "
            f"({PATCHED_BY[distribution]}) and was checked against {distribution} "
            f"{' and '.join(tested)} only. Install the locked version (requirements.lock), or "
            f"check those patches against {found} and add it to assistant/shared/patching.py.")


def check_versions(*distributions: str) -> None:
    for distribution in distributions or tuple(TESTED_VERSIONS):
        check_version(distribution)


def replace(owner: Any, name: str, replacement: Any) -> Any:
    """Set `owner.name` to `replacement` and return what was there. The attribute
    must exist: a missing one means the library changed under the patch."""
    if not hasattr(owner, name):
        raise UnsupportedVersion(
            f"{getattr(owner, '__name__', owner)!s} has no attribute {name!r} to patch")
    stock = getattr(owner, name)
    setattr(owner, name, replacement)
    return stock


def exit_if_unsupported(*distributions: str) -> None:
    """At start-up: stop with the reason (exit code 2) instead of mis-patching."""
    import sys

    try:
        check_versions(*distributions)
    except UnsupportedVersion as error:
        print(f"Cannot start: {error}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_UNSUPPORTED) from None
