"""Throwaway PostgreSQL, Redis and nginx servers from the Debian packages.

Used by the cluster's integration tests (each test run starts its own, on free
loopback ports, in a temporary folder) and by `make cluster` when no database is
configured in the environment. A real deployment points the cluster at its own
PostgreSQL and Redis instead (README, "Deployment").

    apt-get install postgresql redis-server nginx-light   # `make services` does this
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from assistant.ops.launcher import free_port, group_alive, signal_group
from assistant.paths import PROJECT_ROOT


def _postgres_bin() -> Path:
    """Debian keeps the server binaries out of PATH, one folder per major version."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                      if p.parent.name.isdigit() else 0)
    return versions[-1] if versions else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _postgres_bin()
NGINX_TEMPLATE = PROJECT_ROOT / "deploy" / "nginx.conf"
START_TIMEOUT = 30


class ServiceUnavailable(RuntimeError):
    """A server binary is missing or the server did not come up."""


def missing_binaries() -> List[str]:
    """The Debian binaries the cluster needs that this machine lacks."""
    wanted = {"postgres": PG_BIN / "postgres", "initdb": PG_BIN / "initdb",
              "redis-server": shutil.which("redis-server"), "nginx": shutil.which("nginx")}
    return [name for name, path in wanted.items() if not path or not Path(path).exists()]


def _wait_until(ready: Callable[[], bool], process: subprocess.Popen, what: str,
                timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"{what} exited with code {process.returncode}")
        if ready():
            return
        time.sleep(0.1)
    raise ServiceUnavailable(f"{what} did not start within {timeout:.0f}s")


def _stop(process: Optional[subprocess.Popen], timeout: float = 15) -> None:
    """SIGTERM to the server itself (PostgreSQL then shuts down cleanly, with
    its checkpoint), and after `timeout` SIGKILL to whatever is left of its
    process group (each server runs in a session of its own): a backend, an
    nginx worker or the `runuser` in front of PostgreSQL is never left behind."""
    if process is None:
        return
    deadline = time.monotonic() + timeout
    if process.poll() is None:
        process.terminate()
    while (process.poll() is None or group_alive(process.pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _as_postgres_user() -> List[str]:
    """PostgreSQL refuses to run as root: run it as the package's `postgres` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def _hand_to_postgres_user(path: Path) -> None:
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(path, account.pw_uid, account.pw_gid)


@dataclass
class DatabaseSettings:
    """Where the cluster's PostgreSQL and Redis are; the same names as the
    environment variables endpoints.production.yml reads."""

    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    redis_host: str
    redis_port: int
    redis_password: str = ""
    redis_db: int = 1

    ENV_NAMES = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER",
                 "POSTGRES_PASSWORD", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB")

    @classmethod
    def from_env(cls, env: Optional[Dict[str, str]] = None) -> Optional[DatabaseSettings]:
        """None when POSTGRES_HOST is not set; an error naming what is missing otherwise."""
        env = dict(os.environ if env is None else env)
        if not env.get("POSTGRES_HOST"):
            return None
        env.setdefault("POSTGRES_PORT", "5432")
        env.setdefault("REDIS_PORT", "6379")
        env.setdefault("REDIS_PASSWORD", "")
        env.setdefault("REDIS_DB", "1")
        missing = [name for name in cls.ENV_NAMES if name not in env]
        if missing:
            raise ServiceUnavailable("set " + ", ".join(missing) + " (see README, Deployment)")
        try:
            return cls(env["POSTGRES_HOST"], int(env["POSTGRES_PORT"]), env["POSTGRES_DB"],
                       env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["REDIS_HOST"],
                       int(env["REDIS_PORT"]), env["REDIS_PASSWORD"], int(env["REDIS_DB"]))
        except ValueError as error:
            raise ServiceUnavailable(
                f"POSTGRES_PORT, REDIS_PORT and REDIS_DB must be numbers: {error}") from None

    def environment(self) -> Dict[str, str]:
        values = (self.postgres_host, self.postgres_port, self.postgres_db, self.postgres_user,
                  self.postgres_password, self.redis_host, self.redis_port, self.redis_password,
                  self.redis_db)
        return {name: str(value) for name, value in zip(self.ENV_NAMES, values, strict=True)}

    def postgres_url(self) -> str:
        """An SQLAlchemy URL (password escaped) for the call-back request store."""
        from sqlalchemy.engine import URL

        url = URL.create("postgresql+psycopg2", username=self.postgres_user,
                         password=self.postgres_password, host=self.postgres_host,
                         port=self.postgres_port, database=self.postgres_db)
        return url.render_as_string(hide_password=False)

    def check(self) -> None:
        """Fail early, with a clear message, when either server cannot be reached."""
        import psycopg2
        import redis

        try:
            psycopg2.connect(host=self.postgres_host, port=self.postgres_port, dbname=self.postgres_db,
                             user=self.postgres_user, password=self.postgres_password,
                             connect_timeout=5).close()
        except psycopg2.Error as error:
            raise ServiceUnavailable(
                f"cannot reach PostgreSQL at {self.postgres_host}:{self.postgres_port}: {error}".strip()
            ) from error
        try:
            redis.Redis(host=self.redis_host, port=self.redis_port, db=self.redis_db,
                        password=self.redis_password or None, socket_timeout=5).ping()
        except redis.RedisError as error:
            raise ServiceUnavailable(
                f"cannot reach Redis at {self.redis_host}:{self.redis_port}: {error}") from error


class LocalPostgres:
    """A PostgreSQL server of our own: initdb into `data_dir` (kept, so data
    survives a restart; None: a temporary folder, deleted at stop), password
    authentication, loopback only."""

    def __init__(self, data_dir: Optional[Path] = None, port: Optional[int] = None,
                 durable: bool = True) -> None:
        self.temporary = data_dir is None
        if data_dir is None:
            # The server runs as `postgres`, which must reach the folder: a
            # pytest or mkdtemp folder of root's is private (0700).
            parent = Path(tempfile.mkdtemp(prefix="clinic-postgres-"))
            parent.chmod(0o711)
            data_dir = parent / "data"
        self.data_dir = data_dir
        self.port = port or free_port()
        self.durable = durable
        self.database = "clinic"
        self.user = "clinic"
        self.password = ""
        self.process: Optional[subprocess.Popen] = None

    def _initialise(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        _hand_to_postgres_user(self.data_dir)
        with tempfile.NamedTemporaryFile("w", delete=False) as pwfile:
            pwfile.write(self.password + "\n")
        os.chmod(pwfile.name, 0o644)  # readable by the postgres user, deleted next
        try:
            subprocess.run(
                [*_as_postgres_user(), str(PG_BIN / "initdb"), "-D", str(self.data_dir),
                 "-U", self.user, f"--pwfile={pwfile.name}", "--auth=scram-sha-256",
                 "-E", "UTF8", "--no-sync"],
                check=True, capture_output=True)
        except subprocess.CalledProcessError as error:
            raise ServiceUnavailable(f"initdb failed: {error.stderr.decode(errors='replace')}") from error
        finally:
            os.unlink(pwfile.name)
        (self.data_dir / "credentials").write_text(self.password, encoding="utf-8")

    def start(self) -> LocalPostgres:
        import psycopg2

        credentials = self.data_dir / "credentials"
        if credentials.exists():
            self.password = credentials.read_text(encoding="utf-8")
        else:
            self.password = secrets.token_urlsafe(16)
            self._initialise()
        options = ["-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.data_dir}"]
        if not self.durable:  # throwaway test data: skip the fsyncs
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(self.data_dir / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                [*_as_postgres_user(), str(PG_BIN / "postgres"), "-D", str(self.data_dir),
                 "-p", str(self.port), *options],
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)

        def accepting() -> bool:
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, dbname="postgres", user=self.user,
                                 password=self.password, connect_timeout=2).close()
                return True
            except psycopg2.OperationalError:
                return False

        _wait_until(accepting, self.process, "PostgreSQL")
        self._create_database()
        return self

    def _create_database(self) -> None:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, dbname="postgres",
                                      user=self.user, password=self.password)
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        connection.close()

    def stop(self) -> None:
        _stop(self.process)
        if self.temporary:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


class LocalRedis:
    """A Redis server of our own, for the lock store: loopback, password, no persistence
    (locks live for seconds; nothing in Redis needs to survive a restart)."""

    def __init__(self, work_dir: Path, port: Optional[int] = None) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.password = secrets.token_urlsafe(16)
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> LocalRedis:
        import redis

        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "redis.conf"  # the password is not put on a command line
        config.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {self.work_dir}\nsave \"\"\n"
                          f"appendonly no\nrequirepass {self.password}\n", encoding="utf-8")
        config.chmod(0o600)
        self.process = subprocess.Popen(["redis-server", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=1)

        def answering() -> bool:
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        _wait_until(answering, self.process, "Redis")
        return self

    def stop(self) -> None:
        _stop(self.process)


def local_databases(work_dir: Path,
                    durable: bool = True) -> Tuple[LocalPostgres, LocalRedis, DatabaseSettings]:
    """Start a local PostgreSQL and Redis; return them and their settings.

    `durable`: PostgreSQL keeps its data in `work_dir` and fsyncs as usual.
    Otherwise (tests) it runs from a temporary folder without fsyncs."""
    postgres = LocalPostgres(work_dir / "postgres" if durable else None, durable=durable).start()
    try:
        lock_redis = LocalRedis(work_dir / "redis").start()
    except BaseException:
        postgres.stop()
        raise
    settings = DatabaseSettings("127.0.0.1", postgres.port, postgres.database, postgres.user,
                                postgres.password, "127.0.0.1", lock_redis.port, lock_redis.password)
    return postgres, lock_redis, settings


@dataclass(frozen=True)
class ProxyLimits:
    """nginx's abuse limits per client address (deploy/nginx.conf).

    A visitor's page load asks for 4-5 files at once and then one message every
    few seconds; a flood asks for hundreds a second. 10 a second with bursts of
    20 leaves a clinic's waiting-room Wi-Fi (several visitors behind one
    address) room; 20 connections are more than a browser opens (6 per host)."""

    rate: int = 10
    burst: int = 20
    connections: int = 20

    ENV_NAMES = ("PROXY_RATE", "PROXY_BURST", "PROXY_CONNECTIONS")

    @classmethod
    def from_env(cls, env: Optional[Dict[str, str]] = None) -> ProxyLimits:
        env = dict(os.environ if env is None else env)
        values = []
        for name, default in zip(cls.ENV_NAMES, (cls.rate, cls.burst, cls.connections), strict=True):
            raw = env.get(name) or str(default)
            if not raw.isdigit() or int(raw) < 1:
                raise ServiceUnavailable(f"{name} must be a whole number of at least 1, not {raw!r}")
            values.append(int(raw))
        return cls(*values)


def render_nginx_config(listen: str, upstream_ports: List[int], run_dir: Path,
                        limits: Optional[ProxyLimits] = None) -> str:
    """deploy/nginx.conf with its {{placeholders}} filled in."""
    limits = limits or ProxyLimits.from_env()
    upstreams = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"
                          for port in upstream_ports)
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    for name, value in {"LISTEN": listen, "UPSTREAMS": upstreams.strip(), "RUN_DIR": str(run_dir),
                        "PROXY_RATE": str(limits.rate), "PROXY_BURST": str(limits.burst),
                        "PROXY_CONNECTIONS": str(limits.connections)}.items():
        text = text.replace("{{" + name + "}}", value)
    return text


class Nginx:
    """nginx as the round-robin reverse proxy in front of the Rasa servers."""

    def __init__(self, run_dir: Path, port: int, upstream_ports: List[int], host: str = "127.0.0.1",
                 limits: Optional[ProxyLimits] = None) -> None:
        self.run_dir = run_dir
        self.port = port
        self.host = host
        self.upstream_ports = upstream_ports
        self.limits = limits or ProxyLimits.from_env()
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> Nginx:
        import urllib.error
        import urllib.request

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir.chmod(0o755)  # nginx's worker user must reach its temp folders
        config = self.run_dir / "nginx.conf"
        config.write_text(render_nginx_config(f"{self.host}:{self.port}", self.upstream_ports, self.run_dir,
                                              self.limits), encoding="utf-8")
        nginx = shutil.which("nginx") or "nginx"
        check = subprocess.run([nginx, "-t", "-q", "-c", str(config), "-e", str(self.run_dir / "error.log")],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise ServiceUnavailable(f"nginx rejected its configuration: {check.stderr.strip()}")
        self.process = subprocess.Popen([nginx, "-c", str(config), "-e", str(self.run_dir / "error.log")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)

        def proxying() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2):
                    return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        _wait_until(proxying, self.process, "nginx")
        return self

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> None:
        _stop(self.process)
