"""The agent process with an HTTPS catalog and TLS-only brokers (self-signed CA made with openssl)."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sma3_testing import MosquittoBroker

from .conftest import Catalog, agent_command, wait_until

FAST = {"network": "mini", "heartbeat_interval_s": 0.3, "ttl_s": 1.5}


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl command not found (Debian package openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert)),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def brokers(
    mosquitto_factory: Any, certificate: tuple[Path, Path]
) -> tuple[MosquittoBroker, MosquittoBroker]:
    """(management, data) brokers speaking only TLS."""
    cert, key = certificate
    conf = f"cafile {cert}\ncertfile {cert}\nkeyfile {key}\n"
    return mosquitto_factory(extra_conf=conf), mosquitto_factory(extra_conf=conf)


@pytest.fixture
def catalog(
    brokers: tuple[MosquittoBroker, MosquittoBroker], certificate: tuple[Path, Path], tmp_path: Path
) -> Iterator[Catalog]:
    """The catalog over HTTPS, handing out TLS brokers with ca_ref 'test-ca'."""
    management, data = brokers
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}", management, data, tls=certificate).start()
    yield cat
    cat.stop()


def test_agent_over_https_and_tls_brokers(
    catalog: Catalog, certificate: tuple[Path, Path], agent_process: Any, tmp_path: Path
) -> None:
    cert, _key = certificate
    assert catalog.url.startswith("https://")
    catalog.put_config("MS1", {**FAST, "algorithms": [{"name": "sag_reporting"}]})
    cmd = agent_command(
        catalog, "MS1", tmp_path / "cache", "--catalog-ca", str(cert), "--ca", f"test-ca={cert}"
    )
    proc = agent_process(cmd)
    wait_until(
        lambda: (
            (d := catalog.device("MS1")) is not None
            and d["last_heartbeat"] is not None
            and d["health"] == "ok"
        ),
        15,
        "MS1 registered over HTTPS and heartbeating over TLS",
    )
    # the configuration announcement travels over the TLS management broker
    catalog.put_config("MS1", {**FAST, "algorithms": [{"name": "outage_detection"}]})
    wait_until(
        lambda: (d := catalog.device("MS1")) is not None and d["algorithms"] == ["outage_detection"],
        10,
        "configuration 2 applied",
    )
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_agent_refuses_an_untrusted_catalog(catalog: Catalog, agent_process: Any, tmp_path: Path) -> None:
    proc = agent_process(agent_command(catalog, "MS2", tmp_path / "cache", "--retry", "0.2"))
    log = tmp_path / "agent-0.log"
    # both lines, however the process's writes interleave with our reads; generous for a loaded machine
    wait_until(
        lambda: all(
            text in log.read_text() for text in ("CERTIFICATE_VERIFY_FAILED", "no cached configuration")
        ),
        30,
        "the certificate error and the missing cache in the log",
    )
    assert catalog.device("MS2") is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
