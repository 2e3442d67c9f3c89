"""The shipper: what each answer does to the batch (httpx MockTransport), backoff and
Retry-After, the token kept out of logs, then against a real local HTTP server: an outage
(every batch arrives exactly once, counted by id on the server), 503/429 honoured, and TLS
trusting only the pinned CA."""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import itertools
import logging
import ssl
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hemostat.agent.shipper import Backoff, Outcome, Shipper, connect, retry_after
from hemostat.agent.spool import Spool

from .conftest import AGENT, TOKEN, Collector, Server, _handler, free_port


def _spool(tmp_path: Path, n: int = 0, agent: str = AGENT) -> Spool:
    spool = Spool(tmp_path / "spool", agent, 1 << 30, 1000)
    for i in range(n):
        spool.put({"n": i})
    return spool


def _mock(answer: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="https://collector", transport=httpx.MockTransport(answer),
                        headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip


def test_200_acknowledges_and_the_body_is_the_spooled_gzip(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        batch = orjson.loads(gzip.decompress(request.content))["batch"]
        return httpx.Response(200, json={"batch": batch, "duplicate": batch.endswith("2")})

    spool = _spool(tmp_path, 2)
    shipper = Shipper(spool, _mock(answer))
    assert shipper.send_one().outcome is Outcome.SENT
    assert shipper.send_one().outcome is Outcome.DUPLICATE  # acknowledged all the same
    assert shipper.send_one().outcome is Outcome.EMPTY and spool.pending() == []
    assert seen[0].headers["Content-Encoding"] == "gzip"
    assert seen[0].url.path == "/api/v1/ingest"


@pytest.mark.parametrize("status", [429, 503, 500, 408])
def test_retryable_answers_keep_the_batch_and_honour_retry_after(
    tmp_path: Path, status: int
) -> None:
    spool = _spool(tmp_path, 1)
    shipper = Shipper(spool, _mock(lambda r: httpx.Response(status, headers={"Retry-After": "7"})))
    attempt = shipper.send_one()
    assert (attempt.outcome, attempt.delay) == (Outcome.RETRY, 7.0)
    assert len(spool.pending()) == 1


def test_4xx_quarantines_and_the_next_batch_goes_on(tmp_path: Path) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if orjson.loads(gzip.decompress(request.content))["n"] == 0:
            return httpx.Response(422, json={"error": "bad port", "field": "flows[3].dst_port"})
        return httpx.Response(200, json={"duplicate": False})

    spool = _spool(tmp_path, 2)
    shipper = Shipper(spool, _mock(answer))
    first = shipper.send_one()
    assert first.outcome is Outcome.REJECTED and "flows[3].dst_port" in first.detail
    assert shipper.send_one().outcome is Outcome.SENT and spool.pending() == []
    note = orjson.loads((spool.rejected / f"{first.batch}.error.json").read_bytes())
    assert note["status"] == 422 and (spool.rejected / f"{first.batch}.json.gz").exists()


def test_a_refused_token_keeps_the_batches(tmp_path: Path) -> None:
    spool = _spool(tmp_path, 1)
    for status in (401, 403):
        attempt = Shipper(spool, _mock(lambda r, s=status: httpx.Response(s))).send_one()
        assert attempt.outcome is Outcome.RETRY and len(spool.pending()) == 1
    # a 403 for a batch of another agent id (token changed) is that batch's problem
    other = _spool(tmp_path / "other", 1, agent="ffffffffffff")
    shipper = Shipper(other, _mock(lambda r: httpx.Response(403)))
    shipper.spool.agent = AGENT  # now running with another token
    assert shipper.send_one().outcome is Outcome.REJECTED


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    low, high = Backoff(base=1, cap=8, rand=lambda: 0.0), Backoff(base=1, cap=8, rand=lambda: 1.0)
    assert [low.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    assert [high.next() for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    high.reset()
    assert high.next() == 1 and high.next(retry_after=30) == 30


def test_retry_after_as_seconds_or_date() -> None:
    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC).timestamp()
    assert retry_after("12") == 12.0
    assert retry_after("Mon, 23 Nov 2026 10:00:30 GMT", now=now) == 30.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_the_token_never_reaches_the_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    spool = _spool(tmp_path, 3)
    answers = iter([httpx.Response(503), httpx.Response(422, text="bad"), httpx.Response(200)])
    shipper = Shipper(spool, _mock(lambda r: next(answers)))
    for _ in range(3):
        shipper.send_one()
    refused = Shipper(spool, connect("http://127.0.0.1:9", TOKEN, None, timeout=1.0))
    assert refused.send_one().outcome is Outcome.RETRY  # nothing listens on port 9
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "503" in text and "422" in text and "unreachable" in text
    assert TOKEN not in text and TOKEN.split("_")[2] not in text


# -- against a real server ---------------------------------------------------------------


def test_outage_then_every_batch_arrives_exactly_once(tmp_path: Path) -> None:
    collector = Collector()
    server = Server(collector)  # not started: the collector is down
    spool = _spool(tmp_path, 5)
    client = connect(collector.url, TOKEN, None, timeout=2.0)
    shipper = Shipper(spool, client, Backoff(base=0.05, cap=0.2))
    stop, wake = threading.Event(), threading.Event()
    thread = threading.Thread(target=shipper.run, args=(stop, wake))
    thread.start()
    try:
        time.sleep(0.4)  # several failed tries while down; more batches are spooled
        for i in range(5, 12):
            spool.put({"n": i})
        assert shipper.backoff.failures >= 2 and len(spool.pending()) == 12
        server.start()
        collector.wait(lambda: not spool.pending())
    finally:
        stop.set()
        wake.set()
        thread.join(timeout=5)
        server.stop()
        client.close()
    assert sorted(collector.ids) == sorted(set(collector.ids))  # none twice
    assert collector.ids == [f"{AGENT}-{i:012d}" for i in range(1, 13)]  # all, oldest first
    assert collector.auth == {f"Bearer {TOKEN}"}


def test_503_and_429_retry_after_are_waited_for(tmp_path: Path, collector: Collector) -> None:
    collector.answers = [(503, {"Retry-After": "1"}, {"error": "journal"}),
                         (429, {"Retry-After": "1"}, {"error": "slow down"})]  # fmt: skip
    spool = _spool(tmp_path, 1)
    with connect(collector.url, TOKEN, None) as client:
        shipper = Shipper(spool, client, Backoff(base=0.01, cap=0.01))
        stop, wake = threading.Event(), threading.Event()
        thread = threading.Thread(target=shipper.run, args=(stop, wake))
        thread.start()
        collector.wait(lambda: not spool.pending())
        stop.set()
        wake.set()
        thread.join(timeout=5)
    times = [t for method, _, t in collector.requests if method == "POST"]
    assert len(times) == 3 and collector.ids == [f"{AGENT}-000000000001"] * 3
    assert all(b - a >= 0.95 for a, b in itertools.pairwise(times))


def _cert(name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None = None,
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
    )  # fmt: skip
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        builder = builder.add_extension(san, False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def _pem(tmp_path: Path, name: str, cert: x509.Certificate) -> Path:
    path = tmp_path / name
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_tls_trusts_only_the_pinned_ca(tmp_path: Path) -> None:
    ca, ca_key = _cert("site CA")
    other, _ = _cert("other CA")
    leaf, leaf_key = _cert("collector", (ca.subject, ca_key))
    chain = tmp_path / "collector.pem"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + leaf_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))  # fmt: skip
    collector = Collector(port=free_port())
    httpd = ThreadingHTTPServer(("127.0.0.1", collector.port), _handler(collector))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                     daemon=True).start()  # fmt: skip
    url = f"https://127.0.0.1:{collector.port}"
    try:
        spool = _spool(tmp_path, 1)
        with connect(url, TOKEN, _pem(tmp_path, "other.pem", other), timeout=3) as client:
            assert Shipper(spool, client).send_one().outcome is Outcome.RETRY
        with connect(url, TOKEN, _pem(tmp_path, "ca.pem", ca), timeout=3) as client:
            assert Shipper(spool, client).send_one().outcome is Outcome.SENT
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert collector.ids == [f"{AGENT}-000000000001"]
