"""The simulated hospital's site inventory (DESIGN §5), as ``hemostat.inventory`` loads it."""

from __future__ import annotations

from typing import Any

from hemostat.simulate.addresses import Addresses
from hemostat.simulate.datastores import Datastore, Part
from hemostat.simulate.hospital import SITE, TIMEZONE, Hospital, Role
from hemostat.simulate.lookalikes import BACKUP_PORT, OFFSITE_BYTES_PER_HOST, PACS_PORT
from hemostat.simulate.world import BACKUP_RANGE, PARTNER_RANGE, PROVIDERS, World

INTERNAL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]


def document(
    hospital: Hospital, world: World, stores: dict[str, Datastore], addresses: Addresses
) -> dict[str, Any]:
    def one(role: Role) -> str:
        return addresses.ips[int(hospital.by_role[role][0])]

    return {
        "site": SITE,
        "timezone": TIMEZONE,
        "internal": INTERNAL,
        "hosts": [
            {"name": n, "ip": ip, "role": str(r)}
            for n, ip, r in zip(hospital.names, hospital.ips, hospital.roles, strict=True)
        ],
        "datastores": [_store(s, hospital) for s in stores.values()],
        "providers": [
            {
                "name": p.name,
                "sources": p.sources,
                "accounts": list(p.accounts),
                "hosts": list(p.hosts),
                "hours": p.hours_text,
            }
            for p in PROVIDERS
        ],
        "expected_transfers": _expected(hospital, world, addresses, one),
        "continuity": [
            {"name": "inbound-mail", "direction": "inbound", "dst": one(Role.MAIL), "ports": [25]},
            {
                "name": "messaging",
                "direction": "both",
                "dst": one(Role.MESSAGING),
                "ports": [443, 5222],
            },
            {
                "name": "reference-lab",
                "direction": "outbound",
                "dst": addresses.ips[world.lab_partner],
                "ports": [443],
            },
            {
                "name": "partner-hospital-pacs",
                "direction": "both",
                "dst": PARTNER_RANGE,
                "ports": [PACS_PORT],
            },
        ],
        "management": [one(Role.MANAGEMENT)],
    }


def _store(s: Datastore, hospital: Hospital) -> dict[str, Any]:
    return {
        "name": s.name,
        "host": hospital.ip(s.host),
        "ports": list(s.ports),
        "objects": list(s.prefixes),
        "category": str(s.category),
        "records": s.records,
        "subjects": s.subjects,
        "bytes": s.bytes,
        # a DBA knows the row counts of the databases' tables; nobody lists the files of a share
        **(
            {"tables": [_table(p) for p in s.parts]} if not s.prefixes[0].startswith("smb:") else {}
        ),
    }


def _table(p: Part) -> dict[str, Any]:
    return {"object": p.object, "records": p.rows, "subjects": p.subjects, "bytes": p.bytes}


def _expected(
    hospital: Hospital, world: World, addresses: Addresses, one: Any
) -> list[dict[str, Any]]:
    pacs = [addresses.ips[int(i)] for i in hospital.by_role[Role.PACS]]
    return [
        {
            "name": "offsite-backup",
            "src": one(Role.BACKUP),
            "dst": [BACKUP_RANGE],
            "ports": [443],
            "daily_bytes": OFFSITE_BYTES_PER_HOST * hospital.size,
        },
        {
            "name": "internal-backup",
            "src": "10.1.0.0/16",
            "dst": [f"{one(Role.BACKUP)}/32"],
            "ports": [BACKUP_PORT],
        },
        {
            "name": "pacs-partner",
            "src": pacs if len(pacs) > 1 else pacs[0],
            "dst": [PARTNER_RANGE],
            "ports": [PACS_PORT],
        },
        {
            "name": "booking-api",
            "src": one(Role.WEB),
            "dst": [f"{addresses.ips[world.booking]}/32"],
            "ports": [443],
        },
        {
            "name": "lab-results",
            "src": one(Role.LAB),
            "dst": [f"{addresses.ips[world.lab_partner]}/32"],
            "ports": [443],
        },
    ]
