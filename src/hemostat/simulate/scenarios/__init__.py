"""Attack scenarios (and one benign one), each a small class in its own module, all listed
in ``SCENARIOS`` — the names ``hemostat simulate --scenario NAME`` accepts.
"""

from __future__ import annotations

from hemostat.simulate.scenarios.base import Scenario
from hemostat.simulate.scenarios.c2_beacon import C2Beacon
from hemostat.simulate.scenarios.dns_tunnel import DnsTunnel
from hemostat.simulate.scenarios.mimic_backup import MimicBackup
from hemostat.simulate.scenarios.partial_dump import PartialDump
from hemostat.simulate.scenarios.provider_bulk import ProviderBulk
from hemostat.simulate.scenarios.provider_normal import ProviderNormal
from hemostat.simulate.scenarios.slow_drip import SlowDrip

SCENARIOS: dict[str, type[Scenario]] = {
    s.id: s
    for s in (
        ProviderBulk,
        SlowDrip,
        DnsTunnel,
        C2Beacon,
        MimicBackup,
        PartialDump,
        ProviderNormal,
    )
}

__all__ = ["SCENARIOS", "Scenario"]
