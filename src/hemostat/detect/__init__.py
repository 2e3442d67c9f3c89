"""Detectors: one module each, listed in one table. See docs/detection.md.

A detector is a frozen dataclass whose fields are its thresholds (tunable from the config
file, each documented with ``field(metadata={"help": ...})``) and whose ``run`` builds one
Ibis expression over a :class:`Context` returning one row per finding:

==============  ==========  =====================================================
column          type        meaning
==============  ==========  =====================================================
``host``        string      the internal actor (required)
``ts``          timestamp   start of the activity (required)
``end_ts``      timestamp   end of the activity (required)
``score``       float64     0-100 before the expected-transfer discount (required)
``bytes_out``   int64       bytes that left (or moved) in the activity (required)
``destination`` string      address, range or domain (optional)
``dst_port``    int         matched against expected transfers' ports (optional)
``hosts``       array<str>  every internal address involved, for grouping (optional)
``conn_ids``    array<str>  flow ids of the evidence (optional; first 50 kept)
``kind``        string      overrides the class's ``kind`` for this row (optional)
``key``         string      what makes the finding the same one across runs
                            (optional; default: host, destination and start day)
==============  ==========  =====================================================

Every other column is evidence, stored with the finding and given to ``explain`` which
turns one row into the sentence an analyst reads: in English as the finding's ``summary``
stores it, or in a report's language (``explain(row, words)``, texts under ``finding.`` in
``report/locales``; see ``detect.words``). Detectors never write, contain or log:
the runner (``detect.runner``) owns timing, errors and persistence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import ibis.expr.types as ir

from hemostat.detect.access_anomaly import AccessAnomaly
from hemostat.detect.beaconing import Beaconing
from hemostat.detect.context import Context, Window
from hemostat.detect.dns_tunnel import DnsTunnel
from hemostat.detect.egress_volume import EgressVolume
from hemostat.detect.provider_access import ProviderAccess
from hemostat.detect.rare_destination import RareDestination
from hemostat.detect.staging import Staging
from hemostat.detect.threat_intel import ThreatIntel
from hemostat.detect.upload_ratio import UploadRatio
from hemostat.detect.words import Words
from hemostat.schema import Kind

__all__ = ["DETECTORS", "Context", "Detector", "Window"]


class Detector(Protocol):
    id: ClassVar[str]
    kind: ClassVar[Kind]
    attack: ClassVar[tuple[str, ...]]

    def run(self, ctx: Context) -> ir.Table: ...

    def explain(self, row: Mapping[str, Any], words: Words | None = None) -> str: ...


DETECTORS: dict[str, type[Detector]] = {
    EgressVolume.id: EgressVolume,
    RareDestination.id: RareDestination,
    UploadRatio.id: UploadRatio,
    Beaconing.id: Beaconing,
    DnsTunnel.id: DnsTunnel,
    Staging.id: Staging,
    ProviderAccess.id: ProviderAccess,
    AccessAnomaly.id: AccessAnomaly,
    ThreatIntel.id: ThreatIntel,
}
