"""Findings → incidents: chains, shared destinations, time gaps, scores, stable ids."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hemostat.config import Settings
from hemostat.detect.runner import save
from hemostat.incidents import as_json, bytes_out, group, incidents, listing, rebuild, score
from hemostat.schema import Finding, Kind, Severity
from hemostat.store import Store

T0 = datetime(2024, 3, 4, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)


def finding(ident: str, detector: str, kind: Kind, host: str, **rest: object) -> Finding:
    values: dict[str, object] = {
        "ts": T0, "end_ts": T0 + 10 * MIN, "destination": None, "score": 70.0,
        "bytes_out": 0, "attack": (), "summary": f"{detector} on {host}.",
    }  # fmt: skip
    values.update(rest)
    return Finding(id=ident, detector=detector, kind=kind, host=host, **values)  # type: ignore[arg-type]


VPN = finding("F-1", "provider_access", Kind.THIRD_PARTY_ACCESS, "10.99.0.27",
              hosts=("10.99.0.27", "10.1.0.70"), destination="110.176.190.108", score=60.0,
              attack=("T1133",))  # fmt: skip
STAGE = finding("F-2", "staging", Kind.STAGING, "10.1.0.70", ts=T0 + 10 * MIN,
                end_ts=T0 + 40 * MIN, hosts=("10.1.0.70", "10.1.2.10", "10.1.8.10"),
                bytes_out=1_500_000_000, attack=("T1074.002",))  # fmt: skip
UPLOAD = finding("F-3", "rare_destination", Kind.EXFILTRATION, "10.1.8.10",
                 ts=T0 + 45 * MIN, end_ts=T0 + 60 * MIN, destination="142.61.255.171",
                 bytes_out=700_000_000, score=80.0, attack=("T1567.002",))  # fmt: skip
VOLUME = finding("F-4", "egress_volume", Kind.EXFILTRATION, "10.1.8.10",
                 ts=T0 + 40 * MIN, end_ts=T0 + 70 * MIN, bytes_out=720_000_000, score=75.0)  # fmt: skip
ELSEWHERE = finding("F-5", "beaconing", Kind.C2, "10.1.16.23", destination="7.19.114.253")


def test_a_supplier_chain_is_one_exfiltration_incident() -> None:
    [inc, other] = incidents([VPN, STAGE, UPLOAD, VOLUME, ELSEWHERE], Settings())
    assert inc.kind == Kind.EXFILTRATION and other.kind == Kind.C2
    assert set(inc.findings) == {"F-1", "F-2", "F-3", "F-4"}
    assert inc.hosts[0] == "10.1.8.10" and "10.99.0.27" in inc.hosts
    assert inc.destinations == ("142.61.255.171", "110.176.190.108")  # what left first
    assert inc.bytes_out == 720_000_000  # what left; the internal staging copy does not count
    assert inc.attack == ("T1074.002", "T1133", "T1567.002")
    assert inc.score == 96.0 and inc.severity == Severity.CRITICAL  # 80 + 2 * 8 (staging, volume)
    assert inc.summary.startswith("rare_destination on 10.1.8.10.")
    assert "Corroborated by egress_volume, staging, provider_access." in inc.summary


def test_findings_far_apart_in_time_are_separate() -> None:
    later = replace(UPLOAD, id="F-9", ts=T0 + timedelta(hours=30), end_ts=T0 + timedelta(hours=31))
    assert len(incidents([UPLOAD, later], Settings())) == 2
    assert (
        len(incidents([UPLOAD, later], Settings(values={"incidents": {"link_gap_hours": 48.0}})))
        == 1
    )


def test_the_same_destination_links_two_hosts() -> None:
    a = replace(ELSEWHERE, id="F-a", host="10.1.16.30")
    [inc] = incidents([ELSEWHERE, a], Settings())
    assert set(inc.hosts) == {"10.1.16.23", "10.1.16.30"}


def test_weak_and_expected_groups_are_not_incidents() -> None:
    weak = replace(ELSEWHERE, score=45.0)
    expected = replace(UPLOAD, score=40.0, expected="offsite-backup")
    assert incidents([weak, expected], Settings()) == []
    assert score([weak, replace(weak, id="x", detector="rare_destination", score=35.0)]) == 53.0


def test_bytes_are_not_counted_twice_across_detectors() -> None:
    second = replace(UPLOAD, id="F-6", destination="142.61.255.172", bytes_out=100)
    assert bytes_out([UPLOAD, VOLUME]) == 720_000_000  # host total covers the one destination
    assert bytes_out([UPLOAD, second]) == 700_000_100
    assert bytes_out([STAGE]) == 0


def test_ids_and_status_survive_a_rebuild(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        save(store, [VPN, STAGE])
        [first] = rebuild(store, Settings())
        store.con.execute("UPDATE incidents SET status = 'contained'")
        save(store, [UPLOAD, ELSEWHERE])
        result = rebuild(store, Settings())
        listed = listing(store)
        linked = store.con.execute("SELECT count(*) FROM findings WHERE incident_id = ?",
                                   [first.id]).fetchall()  # fmt: skip
    assert first.id in {i.id for i in result} and len(result) == 2
    mine = next(item for item in listed if item.incident.id == first.id)
    assert mine.status == "contained" and linked == [(3,)]
    data = as_json(mine)
    assert {"id", "kind", "severity", "score", "hosts", "destinations", "start", "end",
            "bytes_out", "detectors", "attack"} <= set(data)  # fmt: skip
    assert data["start"] == "2024-03-04T01:00:00Z"


def test_a_chain_only_runs_forward_in_time() -> None:
    # a workstation that read the file server hours after the file server's upload is
    # not part of that upload's story, even though it "reached" the same host
    reader = finding("F-7", "access_anomaly", Kind.DATA_ACCESS, "10.20.0.182",
                     ts=T0 + timedelta(hours=9), end_ts=T0 + timedelta(hours=9, minutes=5),
                     hosts=("10.20.0.182", "10.1.8.10"))  # fmt: skip
    other_client = finding("F-8", "access_anomaly", Kind.DATA_ACCESS, "10.1.4.10",
                           ts=T0 + timedelta(hours=8), hosts=("10.1.4.10", "10.1.2.10"))  # fmt: skip
    groups = incidents([VPN, STAGE, UPLOAD, VOLUME, reader, other_client], Settings())
    assert sorted(len(i.findings) for i in groups) == [1, 1, 4]


def test_expected_findings_do_not_corroborate_each_other() -> None:
    backup = [replace(UPLOAD, score=47.5, expected="offsite"),
              replace(VOLUME, score=47.5, expected="offsite")]  # fmt: skip
    assert score(backup) == 47.5 and incidents(backup, Settings()) == []


def test_the_kind_is_that_of_the_strong_findings() -> None:
    rare = replace(UPLOAD, id="F-r", host=ELSEWHERE.host, destination=ELSEWHERE.destination,
                   score=40.0)  # fmt: skip
    [inc] = incidents([replace(ELSEWHERE, score=97.0), rare], Settings())
    assert inc.kind == Kind.C2


def test_a_split_group_keeps_its_id_once() -> None:
    known = {"F-3": "INC-old", "F-4": "INC-old", "F-5": "INC-old"}
    result = incidents([UPLOAD, VOLUME, ELSEWHERE], Settings(), known)
    assert sorted(i.id for i in result)[1:] == ["INC-old"]
    assert set(next(i for i in result if i.id == "INC-old").findings) == {"F-3", "F-4"}


def test_hosts_sharing_a_popular_destination_do_not_add_up() -> None:
    cloud = "20.190.145.184"
    a = finding("F-c1", "egress_volume", Kind.EXFILTRATION, "10.20.5.190", destination=cloud,
                score=39.0)  # fmt: skip
    b = finding("F-c2", "staging", Kind.STAGING, "10.20.21.226", destination=cloud, score=44.0,
                hosts=("10.20.21.226", "10.1.8.17"))  # fmt: skip
    assert score([a, b]) == 44.0 and incidents([a, b], Settings()) == []
    assert len(group([a, b], Settings())) == 1  # still shown together when they are listed
