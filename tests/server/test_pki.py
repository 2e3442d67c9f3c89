"""The site PKI: a CA kept across inits, a collector certificate it signs for the right names."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from hemostat.server import pki


def _verify(ca: Path, cert: Path) -> None:
    issuer = x509.load_pem_x509_certificate(ca.read_bytes())
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    leaf.verify_directly_issued_by(issuer)


def test_init_creates_a_ca_and_a_certificate_it_signed(home: Path) -> None:
    made, created = pki.init(home, ("collector.chu.local",), ("10.1.2.3",))
    assert created
    names, ips = pki.sans(made.cert)
    assert set(names) == {"localhost", "collector.chu.local"}
    assert {str(i) for i in ips} == {"127.0.0.1", "::1", "10.1.2.3"}
    _verify(made.ca, made.cert)
    for key in (made.ca_key, made.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(made.ca.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)


def test_a_second_init_keeps_the_ca_agents_pinned(home: Path) -> None:
    first, _ = pki.init(home)
    ca = first.ca.read_bytes()
    again, created = pki.init(home, ("new-name",))
    assert not created and again.ca.read_bytes() == ca
    assert "new-name" in pki.sans(again.cert)[0]
    _verify(again.ca, again.cert)


def test_serving_on_an_address_not_named_reissues_the_certificate(home: Path) -> None:
    made, _ = pki.init(home)
    before = made.cert.read_bytes()
    pki.server_certificate(home, "127.0.0.1")
    assert made.cert.read_bytes() == before  # named already
    pki.server_certificate(home, "10.9.8.7")
    names, ips = pki.sans(made.cert)
    assert ipaddress.ip_address("10.9.8.7") in ips and "localhost" in names
    _verify(made.ca, made.cert)
    pki.server_certificate(home, "0.0.0.0")  # a wildcard bind: served as it is
    assert ipaddress.ip_address("0.0.0.0") not in pki.sans(made.cert)[1]


def test_serving_without_init_says_to_run_it(home: Path) -> None:
    import pytest

    from hemostat.errors import ConfigError

    with pytest.raises(ConfigError, match="hemostat init"):
        pki.server_certificate(home, "127.0.0.1")
