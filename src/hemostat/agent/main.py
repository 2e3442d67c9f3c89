"""The agent's run loop: sample sockets every interval, follow logs, put a batch in the spool
every few seconds (sooner when it is full), while one thread ships the spool and another
long-polls the collector's commands (and refreshes the agent's configuration).

Imports only the standard library, httpx, orjson and hemostat's schema, errors, config and
agent modules: a server runs it in a few megabytes. The socket collector is imported when
first used.
"""

from __future__ import annotations

import fcntl
import logging
import os
import resource
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import orjson

from hemostat import __version__
from hemostat.agent.audit import AUDIT_LOG, KeyFilter, Watches
from hemostat.agent.commands import HANDLERS, Executor
from hemostat.agent.respond import Enforcer
from hemostat.agent.shipper import Backoff, Shipper, connect
from hemostat.agent.spool import SUFFIX, Spool, iso
from hemostat.agent.tail import Tailer, TailSpec
from hemostat.config import SETTINGS, Settings
from hemostat.errors import ConfigError, HemostatError
from hemostat.schema import COLUMNS, Table

log = logging.getLogger("hemostat.agent")

CONFIG = "/api/v1/agent/config"
_FLOW_KEYS = frozenset(name for name, _ in COLUMNS[Table.FLOWS])


class Sampler(Protocol):
    def sample(self, now: float | None = None) -> list[dict[str, Any]]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Options:
    collector: str
    token: str = field(repr=False)
    agent: str  # the token's id
    state: Path
    name: str
    ca: Path | None = None
    interval: float | None = None  # None: the collector's, else 5 s
    tails: tuple[TailSpec, ...] = ()
    sockets: bool = True
    once: bool = False
    gateway: bool = False  # the site's gateway: carries out site cuts and blocks
    settings: Settings = field(default_factory=Settings)

    def setting(self, name: str) -> Any:
        return self.settings.get("agent", name)


def socket_sampler(host: str, interval: float) -> Sampler | None:
    """The socket collector, or None (logged) when this host cannot run it."""
    try:
        from hemostat.agent.sockets import SocketCollector

        return SocketCollector(host, interval)
    except (ImportError, OSError, HemostatError) as exc:
        log.warning("no socket sampling on this host: %s", exc)
        return None


class Agent:
    def __init__(
        self, options: Options,
        sampler: Callable[[str, float], Sampler | None] = socket_sampler,
        watches: Watches | None = None,
    ) -> None:  # fmt: skip
        self.options = options
        self._lock_file = _lock(options.state)
        try:
            self._setup(options, sampler, watches)
        except BaseException:
            self._lock_file.close()
            raise

    def _setup(
        self, options: Options, sampler: Callable[[str, float], Sampler | None],
        watches: Watches | None,
    ) -> None:  # fmt: skip
        self.spool = Spool(options.state / "spool", options.agent,
                           int(options.setting("spool_max_bytes")),
                           int(options.setting("spool_max_batches")))  # fmt: skip
        cursor = self.spool.cursor() or {}
        self.tailer = Tailer(cursor.get("tails") if isinstance(cursor, dict) else None)
        for spec in options.tails:
            self.tailer.add(spec)
        self.watches = watches or Watches()
        self._make_sampler = sampler
        self.sampler: Sampler | None = None
        self.stopping, self.wake = threading.Event(), threading.Event()
        self.interval = options.interval or 5.0
        self.flows: list[dict[str, Any]] = []
        self._config: dict[str, Any] | None = None
        self._config_lock = threading.Lock()
        self._audit: TailSpec | None = None
        self._last_put = 0.0
        self._dropped_keys: set[str] = set()
        cap = float(options.setting("backoff_max_seconds"))
        self.ship_client = connect(options.collector, options.token, options.ca)
        self.control_client = connect(options.collector, options.token, options.ca)
        self.shipper = Shipper(self.spool, self.ship_client, Backoff(cap=cap))
        self.enforcer = Enforcer(options.state, options.collector, options.token, options.ca,
                                 options.gateway)  # fmt: skip
        if options.gateway:  # declared on every command poll (docs/containment.md)
            self.control_client.headers["X-Hemostat-Gateway"] = "1"
        self.executor = Executor(self.control_client, {**HANDLERS, **self.enforcer.handlers()},
                                 backoff=Backoff(cap=cap))  # fmt: skip
        self._next_refresh = 0.0
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> None:
        """Until :meth:`stop` (or one cycle with ``--once``)."""
        self.enforcer.restore()  # containment in force before the agent stopped
        self.refresh_config()
        self._apply_config()
        if self.options.sockets:
            self.sampler = self._make_sampler(self.options.name, self.interval)
        try:
            if self.options.once:
                self._once()
            else:
                self._loop()
        finally:
            self.close()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()

    def _loop(self) -> None:
        threads = [
            threading.Thread(target=self.shipper.run, args=(self.stopping, self.wake),
                             name="hemostat-shipper", daemon=True),
            threading.Thread(target=self.executor.run, args=(self.stopping, self.refresh_config),
                             name="hemostat-commands", daemon=True),
        ]  # fmt: skip
        for thread in threads:
            thread.start()
        batch_seconds = float(self.options.setting("batch_seconds"))
        now = time.monotonic()
        next_sample, next_batch = now + self.interval, now + batch_seconds
        while not self.stopping.is_set():
            now = time.monotonic()
            self._apply_config()
            self.enforcer.tick()
            if self.sampler is not None and now >= next_sample:
                self._sample()
                next_sample = max(next_sample + self.interval, now + self.interval / 2)
            if now >= next_batch or len(self.flows) >= self._max_rows:
                full = self.spool_batch()
                next_batch = now + (0.0 if full else batch_seconds)
            due = min(next_batch, next_sample if self.sampler is not None else next_batch)
            self.stopping.wait(max(due - time.monotonic(), 0.0))
        for thread in threads:
            thread.join(timeout=2.0)

    def _once(self) -> None:
        if self.sampler is not None and not self.stopping.wait(self.interval):
            self._sample()
        self.spool_batch(heartbeat=True)
        sent = self.shipper.drain()
        left = self.spool.stats().spool_batches
        log.info("%d batch(es) delivered, %d kept in the spool", sent, left)

    def close(self) -> None:
        """Spool what was gathered, remove the audit watches, release files and sockets."""
        if self._closed:
            return
        self._closed = True
        try:
            self.spool_batch()
        finally:
            if self._audit is not None:
                self.watches.clear()
            self.tailer.close()
            if self.sampler is not None:
                self.sampler.close()
            self.ship_client.close()
            self.control_client.close()
            self._lock_file.close()

    # -- work ------------------------------------------------------------------------------

    @property
    def _max_rows(self) -> int:
        return int(self.options.setting("batch_max_rows"))

    def _sample(self) -> None:
        sampler = self.sampler
        if sampler is None:
            return
        try:
            self.flows += sampler.sample(time.time())
        except (OSError, HemostatError) as exc:
            log.warning("socket sample failed: %s", exc)

    def spool_batch(self, heartbeat: bool = False) -> bool:
        """Put what was gathered in the spool; True when the logs had more than fitted."""
        budget = max(self._max_rows - len(self.flows), 0)
        chunks = self.tailer.poll(max_lines=budget, max_bytes=16 << 20) if budget else []
        lines = sum(len(c.lines) for c in chunks)
        idle = time.monotonic() - self._last_put < float(self.options.setting("heartbeat_seconds"))
        if not self.flows and not chunks and idle and not heartbeat:
            return False
        body = {
            "created": iso(time.time()), "flows": [self._clean(r) for r in self.flows],
            "dns": [], "access": [], "raw": [c.as_dict() for c in chunks], "stats": self.stats(),
        }  # fmt: skip
        try:
            self.spool.put(body, cursor={"tails": self.tailer.positions()})
        except OSError as exc:  # disk full or gone: logged, the agent goes on
            log.error("cannot write to the spool %s: %s; %d flow rows and %d log lines lost",
                      self.spool.root, exc, len(self.flows), lines)  # fmt: skip
        self.flows, self._last_put = [], time.monotonic()
        self.wake.set()
        return budget > 0 and lines >= budget

    def stats(self) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {**self.spool.stats().as_dict(),
                "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                "rss_bytes": _rss(usage), "version": __version__}  # fmt: skip

    def _clean(self, row: dict[str, Any]) -> dict[str, Any]:
        unknown = row.keys() - _FLOW_KEYS
        if unknown - self._dropped_keys:
            log.warning("flow keys not in the contract, not sent: %s", ", ".join(sorted(unknown)))
            self._dropped_keys |= unknown
        return {k: v for k, v in row.items() if k in _FLOW_KEYS} if unknown else row

    # -- configuration ---------------------------------------------------------------------

    def refresh_config(self) -> None:
        """Fetch ``GET /api/v1/agent/config`` when due (any thread); applied by the loop."""
        if time.monotonic() < self._next_refresh:
            return
        self._next_refresh = time.monotonic() + float(self.options.setting("config_seconds"))
        try:
            response = self.control_client.get(CONFIG, timeout=10.0)
            response.raise_for_status()
            config = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("no configuration from the collector yet (%s); retried later", exc)
            self._next_refresh = time.monotonic() + 30.0
            return
        if isinstance(config, dict):
            with self._config_lock:
                self._config = config

    def _apply_config(self) -> None:
        with self._config_lock:
            config, self._config = self._config, None
        if config is None:
            return
        interval = config.get("interval")
        if self.options.interval is None and isinstance(interval, int | float) and interval > 0:
            self.interval = float(interval)
        watch = [str(p) for p in config.get("watch") or []]
        watched = self.watches.apply(watch) if watch or self._audit else []
        audit = TailSpec("auditd", Path(str(self.options.setting("audit_log")) or AUDIT_LOG))
        if watched and self._audit is None:
            self.tailer.add(audit, KeyFilter())
            self._audit = audit
        elif not watched and self._audit is not None:
            self.tailer.remove(self._audit)
            self._audit = None
        log.info("configuration: interval %.1f s, %d read watch(es)", self.interval, len(watched))


def _rss(usage: resource.struct_rusage) -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return int(usage.ru_maxrss) * 1024


def _lock(state: Path) -> IO[bytes]:
    """Hold ``state/lock``: two agents on one state directory would share a spool."""
    try:
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        fh = open(state / "lock", "ab")  # noqa: SIM115 (held for the agent's life)
    except OSError as exc:
        raise ConfigError(f"{state}: cannot use as the state directory: {exc.strerror}; "
                          "give a writable --state") from exc  # fmt: skip
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        fh.close()
        raise ConfigError(f"{state}: another agent is running with this state directory") from exc
    return fh


def agent_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """The ``[agent]`` settings: defaults, then the TOML file ``path`` (other sections are
    ignored: it may be the collector's ``hemostat.toml``), then ``HEMOSTAT_AGENT__NAME``."""
    defaults = {s.name: s.default for s in SETTINGS if s.section == "agent"}
    values: dict[str, Any] = {}
    if path is not None:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8")).get("agent", {})
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        values.update(table if isinstance(table, dict) else {})
    for key, text in (os.environ if environ is None else environ).items():
        if key.startswith("HEMOSTAT_AGENT__"):
            values[key.removeprefix("HEMOSTAT_AGENT__").lower()] = _env_value(text)
    for name, value in values.items():
        if name not in defaults:
            raise ConfigError(f"{path or 'environment'}: unknown setting agent.{name}; "
                              f"known: {', '.join(defaults)}")  # fmt: skip
        default = defaults[name]
        ok = isinstance(value, int | float) if isinstance(default, float) else (
            isinstance(value, type(default)))  # fmt: skip
        if not ok or isinstance(value, bool):
            raise ConfigError(f"{path or 'environment'}: agent.{name} must be like {default!r}")
    return Settings(path, {"agent": values})


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def status(state: Path) -> dict[str, Any]:
    """What the spool of the agent using ``state`` holds (read-only, agent running or not)."""
    spool = state / "spool"
    if not spool.is_dir():
        raise ConfigError(f"{state}: no agent spool here; give the agent's --state")
    try:
        saved = orjson.loads((spool / "state.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        saved = {}
    batches = sorted((spool / "batches").glob(f"*{SUFFIX}"))
    sizes = [p.stat().st_size for p in batches]
    cursor = saved.get("cursor") or {}
    return {
        "state": str(state), "spool_batches": len(batches), "spool_bytes": sum(sizes),
        "oldest_unsent": iso(batches[0].stat().st_mtime) if batches else None,
        "dropped_batches": saved.get("dropped", 0), "last_batch": saved.get("seq", 0),
        "rejected_batches": len(list((spool / "rejected").glob(f"*{SUFFIX}"))),
        "tails": cursor.get("tails", {}) if isinstance(cursor, dict) else {},
    }  # fmt: skip
