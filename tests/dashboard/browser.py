"""Browser test kit: Debian's Chromium, headless, driven by Playwright, and the collector it
talks to served over HTTPS inside a network namespace with a real agent beside it.

    srv 10.231.1.1 ──── 10.231.1.2 col   (the agent -> the collector; the browser -> the
                                           collector, from inside ``col``)

Every process of the test runs in a lab namespace: the collector and the browser in ``col``
(Chromium is started through a wrapper script, ``ip netns exec col chromium "$@"``; Playwright
speaks to it over a pipe, so that works across namespaces), the agent in ``srv``, where it
applies its nftables rules. The root namespace runs only ``hemostat init``, ``scope`` and
``agent enroll`` (no network). The browser trusts the collector's certificate by its public
key only (``--ignore-certificate-errors-spki-list``): nothing else is waived.

Screenshots (``Shots``) go to ``docs/screenshots/<page>.png`` for the README and to the
test's tmp dir.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.contain.lab import Lab, wait_until
from tests.live.site import BIN, hemostat

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
VIEWPORT = {"width": 1400, "height": 900}
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
COLLECTOR, AGENT_SIDE, PORT = "10.231.1.2", "10.231.1.1", 8443
SETTINGS = """[server]
detect_interval = 0
agent_interval = 2
"""


def missing() -> str | None:
    """Why the browser cannot run here (None: it can)."""
    if importlib.util.find_spec("playwright") is None:
        return "needs the playwright package (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)"
    return None


# ---- the collector and its agent, in the lab -------------------------------------------------


@dataclass
class Served:
    """A copy of a home served by ``hemostat serve`` in ``col``, its agent running in ``srv``."""

    lab: Lab
    home: Path
    col: str = ""
    srv: str = ""
    logs: Path = field(default_factory=Path)

    @property
    def url(self) -> str:
        return f"https://{COLLECTOR}:{PORT}"

    def prepare(self, host: str) -> Served:
        """Namespaces, link, PKI, management address, an agent enrolled for ``host``."""
        self.col, self.srv = self.lab.ns("col"), self.lab.ns("srv")
        self.lab.link(self.srv, f"{AGENT_SIDE}/24", self.col, f"{COLLECTOR}/24")
        self.logs = self.home.parent
        path = self.home / "inventory.yaml"
        site = yaml.safe_load(path.read_text(encoding="utf-8"))
        site["management"] = [COLLECTOR]  # what an isolation keeps: the collector
        path.write_text(yaml.safe_dump(site, allow_unicode=True, sort_keys=False), "utf-8")
        (self.home / "hemostat.toml").write_text(SETTINGS)
        hemostat("--home", str(self.home), "init", "--ip", COLLECTOR)
        enrolled = json.loads(hemostat("--home", str(self.home), "agent", "enroll", "agent-srv",
                                       "--ip", host, "--json"))  # fmt: skip
        token = self.logs / "agent.token"
        token.write_text(enrolled["token"])
        token.chmod(0o600)
        return self

    def start(self) -> None:
        log = self.logs / "collector.log"
        proc = self._spawn(self.col, log, str(BIN / "hemostat"), "--home", str(self.home),
                           "serve", "--bind", f"{COLLECTOR}:{PORT}")  # fmt: skip
        if not wait_until(lambda: "listening on" in _read(log) or proc.poll() is not None, 60):
            raise RuntimeError(f"the collector did not start: {_read(log)[-2000:]}")
        if proc.poll() is not None:
            raise RuntimeError(f"the collector failed: {_read(log)[-2000:]}")
        self._spawn(self.srv, self.logs / "agent.log", str(BIN / "hemostat-agent"),
                    "--collector", self.url, "--token-file", str(self.logs / "agent.token"),
                    "--ca", str(self.home / "pki" / "ca.pem"), "--state",
                    str(self.logs / "agent"), "--interval", "2")  # fmt: skip
        # its configuration fetched, the agent long-polls for commands (logged only when
        # a poll ends): a command issued from now on reaches it at once
        if not wait_until(lambda: "GET /api/v1/agent/config" in _read(log), 30):
            raise RuntimeError(f"the agent never called: {_read(self.logs / 'agent.log')}")

    def tables(self) -> str:
        """The nftables tables in the agent's namespace."""
        return self.lab.nft(self.srv, "list", "tables")

    def pin(self) -> str:
        """The collector certificate's public key, as Chromium's SPKI allow-list wants it."""
        cert = x509.load_pem_x509_certificate((self.home / "pki" / "collector.pem").read_bytes())
        spki = cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def _spawn(self, ns: str, log: Path, *argv: str) -> subprocess.Popen[bytes]:
        env = {"HEMOSTAT_AGENT__BATCH_SECONDS": "2", "HEMOSTAT_AGENT__BACKOFF_MAX_SECONDS": "2"}
        with log.open("ab") as out:  # the child keeps its own copy
            proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out,
                                    stderr=subprocess.STDOUT, env={**os.environ, **env})  # fmt: skip
        self.lab.procs.append(proc)
        return proc


def scope_json(home: Path, incident: str) -> dict[str, Any]:
    """``hemostat scope ID --json`` (before the collector holds the store)."""
    out = hemostat("--home", str(home), "scope", incident, "--json")
    found: dict[str, Any] = json.loads(out)
    return found


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


# ---- the browser -----------------------------------------------------------------------------


def wrapper(tmp: Path, ns: str) -> Path:
    """An executable that starts Chromium inside namespace ``ns``."""
    path = tmp / f"chromium-{ns}"
    path.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return path


@contextmanager
def chromium(tmp: Path, ns: str, pin: str) -> Iterator[Browser]:
    """Headless Chromium in ``ns`` trusting the certificate whose key is ``pin``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(wrapper(tmp, ns)), timeout=30_000,
                                    args=[*ARGS, f"--ignore-certificate-errors-spki-list={pin}"])  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()


def context(browser: Browser, base: str) -> BrowserContext:
    """A fresh profile (its own cookies) at the screenshot size, English words."""
    ctx = browser.new_context(base_url=base, viewport=VIEWPORT, locale="en-GB")  # type: ignore[arg-type]
    ctx.set_default_timeout(15_000)
    return ctx


def log_in(page: Page, token: str, language: str = "en") -> None:
    page.goto(f"/lang/{language}?next=/login")
    page.fill("#token", token)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def settle(page: Page) -> None:
    """Wait until the page's lazy fragments came in and its charts are drawn."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-lazy=\"1\"]')].every(e => e.dataset.loaded)"
        " && [...document.querySelectorAll('canvas[data-chart]')].every(c => c.chart)"
    )  # fmt: skip
    page.evaluate("() => document.fonts.ready")


@dataclass
class Shots:
    """Full-page screenshots at 1400x900, kept in the tmp dir and in docs/screenshots."""

    tmp: Path
    taken: list[str] = field(default_factory=list)

    def take(self, page: Page, name: str, docs: bool = True) -> Path:
        """Screenshot ``page`` as ``name``.png (``docs``: also for the README)."""
        settle(page)
        path = self.tmp / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if docs:
            SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, SHOTS / path.name)
            self.taken.append(name)
        return path


def csrf(page: Page) -> str:
    """The session's CSRF value, from any form of the page (the logout form has it)."""
    value = page.locator("input[name=csrf]").first.get_attribute("value")
    assert value, "no CSRF field on the page"
    return value
