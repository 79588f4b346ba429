"""Several Rasa servers behind nginx, sharing PostgreSQL and Redis (`make cluster`).

    make cluster                                   # 2 servers on http://localhost:8080
    CLUSTER_SERVERS=3 CLUSTER_PORT=9000 make cluster

With POSTGRES_HOST (and the other variables in endpoints.production.yml) set in
the environment, the cluster uses that PostgreSQL and Redis. Without them it
starts its own from the Debian packages, with their data under var/cluster/:
a way to try the production set-up on one machine.

One action server and one webhook notifier serve all the Rasa servers; call-back
requests are stored in the same PostgreSQL (REQUESTS_DB_URL).

Only nginx faces the network (CLUSTER_HOST); the Rasa servers, the action
server (with its shared secret) and our own PostgreSQL and Redis listen on
127.0.0.1. A server that dies is restarted with back-off while nginx sends its
visitors to the others; the cluster stops only when asked to.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional

from assistant.ops.launcher import MODEL, Settings, Stack, free_port, supervise
from assistant.ops.local_services import (
    DatabaseSettings,
    Nginx,
    ProxyLimits,
    ServiceUnavailable,
    local_databases,
    missing_binaries,
)
from assistant.paths import PROJECT_ROOT
from assistant.shared.action_secret import SECRET_FILE_NAME
from assistant.shared.private_files import make_private_dir

PRODUCTION_ENDPOINTS = PROJECT_ROOT / "endpoints.production.yml"
VAR_DIR_MODE_WITH_LOCAL_SERVICES = 0o711
# A server that dies mid-turn holds its conversation's lock until the lock
# expires; Rasa's default is 60 s. A turn takes well under a second.
DEFAULT_LOCK_LIFETIME_SECONDS = 20


class Cluster:
    """N Rasa servers + one action server + the notifier + nginx in front."""

    def __init__(self, databases: DatabaseSettings, servers: int = 2, proxy_port: int = 8080,
                 run_dir: Path = PROJECT_ROOT / "var" / "cluster", model: Path = MODEL,
                 log_dir: Optional[Path] = None, extra_env: Optional[Dict[str, str]] = None,
                 proxy_host: str = "127.0.0.1", proxy_limits: Optional[ProxyLimits] = None) -> None:
        if servers < 1:
            raise ValueError("a cluster needs at least one Rasa server")
        self.databases = databases
        actions_port = free_port()
        env = {
            **databases.environment(),
            "ACTION_SERVER_URL": f"http://127.0.0.1:{actions_port}/webhook",
            "REQUESTS_DB_URL": databases.postgres_url(),
            # the conversations, for the weekly summary e-mail (assistant/staff/weekly_summary.py)
            "REPORT_DB_URL": databases.postgres_url(),
            "TICKET_LOCK_LIFETIME": str(DEFAULT_LOCK_LIFETIME_SECONDS),
            **(extra_env or {}),
        }
        # One process per server: nginx spreads the load (CLUSTER_SERVERS).
        settings = Settings(actions_port=actions_port, model=model, endpoints=PRODUCTION_ENDPOINTS,
                            extra_env=env, workers=1, action_secret=run_dir / SECRET_FILE_NAME)
        self.stack = Stack(settings, log_dir=log_dir)
        self.server_ports = [free_port() for _ in range(servers)]
        self.nginx = Nginx(run_dir / "nginx", proxy_port, self.server_ports, host=proxy_host,
                           limits=proxy_limits)

    @staticmethod
    def server_name(index: int) -> str:
        return f"rasa-{index}"

    @property
    def servers(self) -> List:
        return [self.stack.supervised[self.server_name(index)].process
                if self.server_name(index) in self.stack.supervised else None
                for index in range(len(self.server_ports))]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}"

    def server_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.server_ports[index]}"

    def start(self) -> Cluster:
        try:
            self.databases.check()
            self.stack.start_actions()
            for index in range(len(self.server_ports)):  # start together, then wait
                self.stack.spawn_rasa(self.server_ports[index], self.server_name(index))
            for index, process in enumerate(self.servers):
                self.stack.wait_rasa(process, self.server_ports[index])
            self.stack.start_notifier()
            self.nginx.start()
        except BaseException:
            self.stop()
            raise
        return self

    def kill_server(self, index: int) -> None:
        """SIGKILL one Rasa server, as a crash would (tests)."""
        self.stack.kill(self.server_name(index))

    def restart_server(self, index: int) -> None:
        process = self.stack.spawn_rasa(self.server_ports[index], self.server_name(index))
        self.stack.wait_rasa(process, self.server_ports[index])

    def heal(self) -> List[str]:
        """Restart whatever died (assistant/ops/launcher.py, Stack.heal); nginx too."""
        news = self.stack.heal()
        if self.nginx.exited() and self.nginx.process is not None:
            news.append(f"nginx stopped (exit code {self.nginx.process.returncode}); restarting it.")
            self.nginx.start()
        return news

    def stop(self) -> None:
        self.nginx.stop()
        self.stack.stop()


def _banner(cluster: Cluster, own_databases: bool) -> str:
    url = f"http://localhost:{cluster.nginx.port}"
    where = ("its own PostgreSQL and Redis (data in var/cluster/)" if own_databases
             else f"PostgreSQL at {cluster.databases.postgres_host}, Redis at {cluster.databases.redis_host}")
    return (
        f"\n  The cluster is running: {len(cluster.server_ports)} Rasa servers behind nginx, {where}.\n"
        f"    chat widget:   {url}/webchat/  (demo page)\n"
        f"    website:       POST {url}/webhooks/website/webhook  (REST: on each server only)\n"
        "  Press Ctrl-C to stop.\n"
    )


def run(servers: int, port: int, host: str) -> int:
    local: List = []  # our own PostgreSQL and Redis, when none is configured
    cluster: Optional[Cluster] = None

    def start() -> None:
        nonlocal cluster, local
        databases = DatabaseSettings.from_env()
        if databases is None:
            missing = missing_binaries()
            if missing:
                raise ServiceUnavailable(f"missing {', '.join(missing)}: run `make services`")
            # `make run` keeps var/ at 700; this PostgreSQL runs as the `postgres`
            # user and must pass through it (711: no listing, the files stay 600).
            make_private_dir(PROJECT_ROOT / "var").chmod(VAR_DIR_MODE_WITH_LOCAL_SERVICES)
            postgres, lock_redis, databases = local_databases(PROJECT_ROOT / "var" / "cluster")
            local = [postgres, lock_redis]
        cluster = Cluster(databases, servers=servers, proxy_port=port, proxy_host=host).start()

    def crashed() -> Optional[str]:
        if cluster is not None:
            try:
                for news in cluster.heal():
                    print(news, file=sys.stderr, flush=True)
            except ServiceUnavailable as error:
                return f"{error}; shutting the cluster down."
        return None

    def stop() -> None:
        if cluster is not None:
            cluster.stop()
        for service in local:
            service.stop()

    def banner() -> str:
        assert cluster is not None
        return _banner(cluster, bool(local))

    return supervise("cluster", start, crashed, stop, banner)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run several Rasa servers behind nginx.")
    parser.add_argument("--servers", type=int, default=int(os.environ.get("CLUSTER_SERVERS", 2)))
    parser.add_argument("--port", type=int, default=int(os.environ.get("CLUSTER_PORT", 8080)))
    parser.add_argument("--host", default=os.environ.get("CLUSTER_HOST", "127.0.0.1"),
                        help="address nginx listens on (0.0.0.0 for every interface)")
    args = parser.parse_args(argv)
    return run(args.servers, args.port, args.host)


if __name__ == "__main__":
    sys.exit(main())
