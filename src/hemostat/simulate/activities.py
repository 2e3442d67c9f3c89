"""The everyday activities of the hospital as data: one line per kind of flow (who, to whom,
how often, how much), plus the DNS rates and the look-alikes whose totals become benign
episodes. ``normal`` turns an hour of them into rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from hemostat.simulate.flows import TCP, UDP
from hemostat.simulate.rhythm import Profile
from hemostat.simulate.world import CLOUD_RANGE, FORWARDERS, UPDATE_RANGE


@dataclass(frozen=True, slots=True)
class Activity:
    """One kind of everyday flow: who talks to whom, how often, how much."""

    name: str
    clients: str  # population the originators come from
    servers: str  # population the responders come from
    rate: float  # flows per hour per host of ``per`` at the profile's peak
    profile: Profile
    ports: tuple[tuple[int, str, float], ...]  # (port, Zeek service, share)
    ob: tuple[float, float]  # originator payload: lognormal median (bytes) and sigma
    rb: tuple[float, float]  # responder payload
    dur: tuple[float, float] = (0.8, 1.4)  # duration: median (s) and sigma
    per: str = "clients"  # "clients" or "servers": whose count the rate is per
    proto: int = TCP
    fail: float = 0.02  # share of attempts that get no answer or are refused


_SSL = ((443, "ssl", 1.0),)
_OFFICE, _CLINICAL, _SERVER = Profile.OFFICE, Profile.CLINICAL, Profile.SERVER
_PUBLIC, _FLAT = Profile.PUBLIC, Profile.FLAT
# fmt: off
ACTIVITIES = (
    # name, clients, servers, rate, profile, ports, ob, rb, [dur], [per, proto, fail]
    Activity("web", "ws", "internet", 380, _OFFICE, ((443, "ssl", .88), (80, "http", .12)),
             (700, 1.0), (18_000, 2.0), (2.0, 1.5)),
    Activity("intranet", "ws", "app", 280, _OFFICE,
             ((443, "ssl", .6), (8443, "ssl", .2), (80, "http", .2)), (1_200, 1.0), (12_000, 1.6)),
    Activity("file_share", "ws", "fileserver", 110, _OFFICE, ((445, "smb", 1.0),),
             (2_000, 1.5), (60_000, 2.0), (3.0, 1.5)),
    Activity("directory", "ws", "dc", 150, _OFFICE, ((88, "krb", .35), (389, "ldap", .35),
             (135, "dce_rpc", .1), (445, "smb", .2)), (600, .8), (1_500, .8), (.05, 1.0)),
    Activity("mail", "ws", "mail", 15, _OFFICE, ((993, "imap,ssl", .7), (587, "smtp,ssl", .3)),
             (3_000, 2.0), (20_000, 2.0)),
    Activity("messaging", "ws", "messaging", 25, _OFFICE, ((5222, "xmpp", .6), (443, "ssl", .4)),
             (800, 1.0), (1_500, 1.0), (30.0, 1.5)),
    Activity("telemetry", "ws", "updates", 60, _OFFICE, _SSL, (1_500, .8), (600, .8)),
    Activity("cloud_sync", "ws", "cloud", 10, _OFFICE, _SSL, (150_000, 1.6), (15_000, 1.0),
             (8.0, 1.2)),
    Activity("updates", "ws", "updates", 3, _OFFICE, ((443, "ssl", .6), (80, "http", .4)),
             (900, .5), (800_000, 1.8), (15.0, 1.2)),
    Activity("imaging_view", "radiology", "pacs", 20, _CLINICAL, ((11112, "-", 1.0),),
             (4_000, 1.0), (30_000_000, 1.2), (20.0, 1.0)),
    Activity("admin", "admins", "servers", 6, _OFFICE, ((3389, "rdp", .6), (22, "ssh", .4)),
             (40_000, 1.5), (400_000, 1.5), (60.0, 1.0)),
    Activity("server_directory", "servers", "dc", 20, _SERVER, ((88, "krb", .5), (389, "ldap", .5)),
             (600, .8), (1_500, .8), (.05, 1.0)),
    Activity("server_updates", "servers", "updates", 1, _FLAT, _SSL, (900, .5), (2_000_000, 1.5),
             (20.0, 1.0)),
    Activity("ntp", "servers", "gateway", 2, _FLAT, ((123, "ntp", 1.0),), (48, 0), (48, 0),
             (.01, .5), proto=UDP),
    Activity("monitoring", "monitoring", "servers", 60, _FLAT, ((161, "snmp", 1.0),), (90, .3),
             (400, .5), (.01, .5), per="servers", proto=UDP),
    Activity("dpi_queries", "app", "dpi-db", 1600, _SERVER, ((5432, "-", 1.0),), (500, 1.0),
             (6_000, 1.8), (.05, 1.5)),
    Activity("lab_queries", "lab", "lab-db", 500, _CLINICAL, ((1433, "-", 1.0),), (400, 1.0),
             (3_000, 1.5), (.05, 1.5)),
    Activity("app_chatter", "generic", "generic", 350, _SERVER, ((443, "ssl", .4),
             (8080, "http", .3), (135, "dce_rpc", .3)), (1_000, 1.2), (4_000, 1.5)),
    Activity("dc_replication", "dc", "dc", 60, _FLAT, ((135, "dce_rpc", .5), (389, "ldap", .5)),
             (3_000, 1.0), (3_000, 1.0)),
    Activity("public_web", "clients", "web", 6000, _PUBLIC, _SSL, (800, 1.0), (25_000, 1.8),
             per="servers"),
    Activity("mail_in", "clients", "mail", 800, _SERVER, ((25, "smtp", 1.0),), (30_000, 2.0),
             (500, .5), (2.0, 1.0), per="servers", fail=.05),
    Activity("mail_out", "mail", "clients", 300, _SERVER, ((25, "smtp", 1.0),), (30_000, 2.0),
             (500, .5), (2.0, 1.0), fail=.03),
    Activity("modalities", "biomed", "pacs", 4, _CLINICAL, ((104, "-", 1.0),),
             (20_000_000, 1.5), (2_000, .5), (30.0, 1.0)),
    Activity("hl7", "biomed", "lab", 30, _CLINICAL, ((2575, "-", 1.0),), (2_000, .8), (300, .5),
             (.2, 1.0)),
)
#: look-alike activities whose totals go into truth.json as benign episodes:
#: name -> (kind, hosts, destinations), ranges as in the hospital's and world's layout
LOOKALIKES = {
    "cloud_sync": ("cloud_sync", ("10.20.0.0/14",), (CLOUD_RANGE,)),
    "updates": ("update", ("10.20.0.0/14",), (UPDATE_RANGE,)),
    "server_updates": ("update", ("10.1.0.0/16", "172.16.1.0/24"), (UPDATE_RANGE,)),
    "cdn_dns": ("dns", ("10.0.0.0/8", "172.16.1.0/24"), ("10.1.0.53", "10.1.0.54", *FORWARDERS)),
}
#: DNS lookups per host per hour at the peak, and the share asking for internal names
DNS_RATES = (("ws", 230, _OFFICE, 0.4), ("servers", 40, _SERVER, 0.7),
             ("biomed", 10, _CLINICAL, 0.9))
# fmt: on
UPSTREAM = 0.2  # share of external lookups the resolvers forward (cache misses)
