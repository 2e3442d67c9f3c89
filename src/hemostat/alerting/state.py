"""What every sink last received about every incident, kept in ``HOME/alerts/state.json`` so
that a restarted collector neither re-alerts nor forgets a sink it still owes an alert.

```json
{"version": 1,
 "incidents": {"INC-1a2b3c4d": {
    "first": "2026-11-23T10:00:00.000000Z",
    "sinks": {"syslog:udp://siem:514": {"severity": "high", "hosts": ["10.1.2.3"],
              "destinations": ["203.0.113.9"], "detectors": ["egress_volume"],
              "bytes_out": 123456789, "sent": "2026-11-23T10:00:00.000000Z"}}}}}
```
The file is replaced atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hemostat import durable
from hemostat.alerting.policy import Snapshot
from hemostat.errors import StoreError
from hemostat.schema import Incident, Severity, utc_text

VERSION = 1
#: incidents no longer passed to ``notify`` are forgotten this long after their last alert
FORGET = timedelta(days=30)


@dataclass
class Ledger:
    path: Path
    incidents: dict[str, dict[str, Any]] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def load(cls, path: Path) -> Ledger:
        """The ledger at ``path`` (empty when the file does not exist yet)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: cannot read the alert state ({exc}); {_ADVICE}") from exc
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise StoreError(f"{path}: not an alert state of version {VERSION}; {_ADVICE}")
        ledger = cls(path, data.get("incidents", {}))
        try:
            for ident in ledger.incidents:
                ledger.first(ident)
                for sink in ledger.incidents[ident]["sinks"]:
                    ledger.last(ident, sink)
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{path}: damaged alert state ({exc!r}); {_ADVICE}") from exc
        return ledger

    def last(self, incident: str, sink: str) -> Snapshot | None:
        """What ``sink`` last received about ``incident``."""
        entry = self.incidents.get(incident, {}).get("sinks", {}).get(sink)
        if entry is None:
            return None
        return Snapshot(
            Severity(entry["severity"]), tuple(entry["hosts"]), tuple(entry["destinations"]),
            tuple(entry["detectors"]), int(entry["bytes_out"]), _time(entry["sent"]),
        )  # fmt: skip

    def first(self, incident: str) -> datetime | None:
        """When any sink first received an alert about ``incident``."""
        entry = self.incidents.get(incident)
        return None if entry is None else _time(entry["first"])

    def record(self, incident: Incident, sink: str, sent: datetime) -> None:
        """``sink`` received ``incident`` as it is now."""
        entry = self.incidents.setdefault(incident.id, {"first": utc_text(sent), "sinks": {}})
        entry["sinks"][sink] = {
            "severity": str(incident.severity), "hosts": list(incident.hosts),
            "destinations": list(incident.destinations), "detectors": list(incident.detectors),
            "bytes_out": incident.bytes_out, "sent": utc_text(sent),
        }  # fmt: skip
        self.dirty = True

    def forget(self, current: set[str], now: datetime) -> None:
        """Drop incidents not in ``current`` whose last alert is older than ``FORGET``."""
        for ident in [i for i in self.incidents if i not in current]:
            sent = [_time(s["sent"]) for s in self.incidents[ident]["sinks"].values()]
            if not sent or now - max(sent) > FORGET:
                del self.incidents[ident]
                self.dirty = True

    def save(self) -> None:
        """Write the ledger if it changed (raises ``OSError``; the caller logs it)."""
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": VERSION, "incidents": self.incidents}, indent=1)
        durable.replace(self.path, text.encode(), 0o644)
        self.dirty = False


_ADVICE = "move the file away to start afresh (open incidents are then alerted again)"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)
