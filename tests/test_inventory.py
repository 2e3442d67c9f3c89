"""Inventory loading: minimal file, full file, errors with file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hemostat.errors import ConfigError
from hemostat.inventory import load

FULL = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    return path


def test_two_line_inventory_gets_defaults(tmp_path: Path) -> None:
    inv = load(_write(tmp_path, "site: CHU Minimal\n"))
    assert (inv.site, inv.timezone) == ("CHU Minimal", "UTC")
    assert inv.is_internal("10.9.9.9") and inv.is_internal("fd00::1")
    assert not inv.is_internal("198.51.100.1")


def test_the_guide_example_is_valid(tmp_path: Path) -> None:
    text = FULL.read_text().split("A fuller example")[1].split("```yaml\n")[1].split("```")[0]
    inv = load(_write(tmp_path, text))
    assert inv.datastores[0].category == "patient"
    assert inv.providers[0].hours == "08:00-19:00"
    assert [c.name for c in inv.continuity] == ["inbound-mail", "messaging"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("timezone: UTC\n", r"inventory\.yaml:1: site: Field required"),
        ("site: X\ndatastores:\n  - name: d\n    category: patients\n",
         r"inventory\.yaml:4: datastores\[0\]\.category"),
        ("site: X\ninternal: [10.0.0.0/33]\n", r"inventory\.yaml:2: internal"),
        ("site: X\ntimezone: Mars/Base\n", r"inventory\.yaml:2: timezone: .*unknown time zone"),
        ("site: X\nprovider: []\n", r"inventory\.yaml:2: provider: Extra inputs"),
        ("site: [unclosed\n", r"inventory\.yaml:2: not valid YAML"),
        ("- a list\n", r"a mapping with at least 'site: NAME'"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_write(tmp_path, text))
