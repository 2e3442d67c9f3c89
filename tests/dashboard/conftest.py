"""Dashboard test kit: a simulated hospital with incidents in a home, tokens of each role,
the collector's app in process (``client``) or ``hemostat serve`` in a subprocess
(``served``, for the browser), and a logged-in client.

The home is built once per session (simulate, ingest, detect: about a minute) and copied
for each test that changes it, so tests never see each other's actions.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from hemostat import config, inventory
from hemostat.detect.runner import examine, pending
from hemostat.incidents import listing
from hemostat.ingest import ingest
from hemostat.server.app import create_app
from hemostat.server.auth import Role, Tokens
from hemostat.simulate import generate
from hemostat.store import Store

with warnings.catch_warnings():  # Starlette 1.10 would rather have httpx2 (not installed)
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

#: the simulated hospital (seed and size not used to tune any detector)
HOSTS, SEED = 300, 77
SCENARIOS = ("provider_bulk", "c2_beacon")


@dataclass(frozen=True)
class Site:
    """A ready home: its path, the token texts of each role, the simulator's output."""

    home: Path
    sim: Path
    analyst: str
    responder: str
    admin: str
    agent: str
    top_incident: str


def _tokens(home: Path) -> dict[str, str]:
    tokens = Tokens(home)
    return {role.value: tokens.create(f"test-{role.value}", role)[1]
            for role in (Role.ANALYST, Role.RESPONDER, Role.ADMIN, Role.AGENT)}  # fmt: skip


@pytest.fixture(scope="session")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Site:
    work = tmp_path_factory.mktemp("hospital")
    sim, home = work / "sim", work / "home"
    generate(sim, hosts=HOSTS, days=1, seed=SEED, scenarios=list(SCENARIOS))
    home.mkdir()
    shutil.copy(sim / "inventory.yaml", home / "inventory.yaml")
    site = inventory.load(home / "inventory.yaml")
    with Store(home) as store:
        ingest(store, [sim])
        window = pending(store, None, None)
        assert window is not None
        examine(store, site, config.Settings(), window)
        found = listing(store)
    assert found, "the simulated attack raised no incident"
    texts = _tokens(home)
    return Site(home, sim, texts["analyst"], texts["responder"], texts["admin"], texts["agent"],
                found[0].incident.id)  # fmt: skip


@pytest.fixture
def site(hospital: Site, tmp_path: Path) -> Iterator[Site]:
    """A copy of the hospital's home for one test (its actions stay its own), removed after
    it: half a gigabyte each, kept for every test, would fill the disk of a small runner."""
    home = tmp_path / "home"
    shutil.copytree(hospital.home, home)
    yield Site(home, hospital.sim, hospital.analyst, hospital.responder, hospital.admin,
               hospital.agent, hospital.top_incident)  # fmt: skip
    shutil.rmtree(home, ignore_errors=True)


QUIET = {"server": {"detect_interval": 0}}


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    """The collector's app in process, not logged in."""
    settings = config.Settings(values=QUIET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        with TestClient(create_app(site.home, settings), base_url="http://testserver") as tc:
            yield tc


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def login(client: TestClient, token: str) -> str:
    """Log ``client`` in with ``token``; returns the session's CSRF value."""
    form = client.get("/login")
    done = client.post("/login", data={"token": token, "csrf": csrf_of(form.text), "next": "/"},
                       follow_redirects=False)  # fmt: skip
    assert done.status_code == 303, done.text
    return csrf_of(client.get("/").text)
