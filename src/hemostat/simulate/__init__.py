"""The hospital traffic simulator: a deterministic hospital (``hospital``, ``world``,
``datastores``), everyday traffic with its look-alikes (``normal``, ``lookalikes``), attack
scenarios (``scenarios``), written as Zeek logs, access events, inventory and ground truth
(``output``, ``writer``, ``inventory``, ``truth``). Formats: docs/simulate.md.
"""

from __future__ import annotations

from hemostat.simulate.scenarios import SCENARIOS
from hemostat.simulate.simulation import DEFAULT_START, Summary, generate
from hemostat.simulate.truth import Episode

__all__ = ["DEFAULT_START", "SCENARIOS", "Episode", "Summary", "generate"]
