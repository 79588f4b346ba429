"""Sanic's multi-worker runner, with a worker that dies replaced.

Sanic 21.12 forks SANIC_WORKERS processes that share the listening socket and
then only waits for them: a worker that crashes (or is killed by the kernel for
memory) is gone for good, and the server answers with fewer cores until it is
restarted. Here the parent forks a replacement from the same socket, reports it
on stderr, and backs off (1 s, 2 s, 4 s ... at most 30 s) while replacements keep
dying within a minute of starting (a model that no longer loads, say), so a
broken worker never turns into a fork loop (assistant/shared/backoff.py). A
replacement loads the model like the first workers did (about 5 s); the others
answer meanwhile.

SIGTERM stops replacing and passes the signal on, as Sanic does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sys
import time
from typing import Any, Dict, List, Optional

from assistant.shared.backoff import next_failures, restart_delay
from assistant.shared.patching import check_version, replace

POLL_SECONDS = 0.2
STOP_JOIN_SECONDS = 20.0

REPLACED_MESSAGE = "Rasa worker {pid} stopped (exit code {code}); starting a replacement{delay}."


def serve_multiple(server_settings: Dict[str, Any], workers: int) -> None:
    """sanic.server.runners.serve_multiple (21.12), supervising its workers."""
    from sanic.log import logger
    from sanic.server.events import trigger_events
    from sanic.server.runners import serve
    from sanic.server.socket import bind_socket, bind_unix_socket, remove_unix_socket

    # -- as in Sanic --
    server_settings["reuse_port"] = True
    server_settings["run_multiple"] = True
    main_start = server_settings.pop("main_start", None)
    main_stop = server_settings.pop("main_stop", None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    trigger_events(main_start, loop)
    sock = server_settings.get("sock")
    unix = server_settings["unix"]
    backlog = server_settings["backlog"]
    if unix:
        sock = bind_unix_socket(unix, backlog=backlog)
        server_settings["unix"] = unix
    if sock is None:
        sock = bind_socket(server_settings["host"], server_settings["port"], backlog=backlog)
        sock.set_inheritable(True)
        server_settings["sock"] = sock
        server_settings["host"] = None
        server_settings["port"] = None

    # -- supervision --
    parent = os.getpid()
    processes: List[Any] = []
    stopping = False

    def terminate_workers() -> None:
        for process in processes:
            if process.pid and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        if os.getpid() != parent:
            # a worker still loading its model got the handler it was forked
            # with: do what the signal does by default (Sanic's own handlers
            # replace this one once the worker serves)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        stopping = True
        logger.info("Received signal %s. Shutting down.", signal.Signals(signum).name)
        terminate_workers()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    context = multiprocessing.get_context("fork")

    def start() -> Any:
        process = context.Process(target=serve, kwargs=server_settings)
        process.daemon = True
        process.start()
        return process

    processes.extend(start() for _ in range(workers))
    started = [time.monotonic()] * workers
    failures = [0] * workers
    due: List[Optional[float]] = [None] * workers
    while not stopping:
        for index, process in enumerate(processes):
            if stopping or process.is_alive():
                continue
            now = time.monotonic()
            if due[index] is None:
                failures[index] = next_failures(failures[index], now - started[index])
                delay = restart_delay(failures[index])
                due[index] = now + delay
                print(REPLACED_MESSAGE.format(pid=process.pid, code=process.exitcode,
                                              delay=f" in {delay:.0f} s" if delay else ""),
                      file=sys.stderr, flush=True)
            if now >= (due[index] or now):
                processes[index] = start()
                started[index] = time.monotonic()
                due[index] = None
        time.sleep(POLL_SECONDS)

    terminate_workers()  # again: one may have been starting when the signal came
    deadline = time.monotonic() + STOP_JOIN_SECONDS
    for process in processes:
        process.join(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()

    # -- as in Sanic --
    trigger_events(main_stop, loop)
    sock.close()
    loop.close()
    remove_unix_socket(unix)


def install() -> None:
    """Make Sanic.run use this runner for more than one worker."""
    check_version("sanic")
    import sanic.app

    replace(sanic.app, "serve_multiple", serve_multiple)
