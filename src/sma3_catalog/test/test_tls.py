"""TLS: the REST API over HTTPS (uvicorn ssl options) and the MQTT link over TLS to mosquitto."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from sma3_catalog.mqtt_link import MqttSettings

from .conftest import CatalogFactory, registration


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl command not found (Debian package openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_rest_over_https(certificate: tuple[Path, Path], sqlite_url: str, uvicorn_factory: Any) -> None:
    from sma3_catalog.api import create_app
    from sma3_catalog.service import CatalogService, CatalogSettings

    from .conftest import OPERATOR_TOKEN, make_tokens

    cert, key = certificate
    service = CatalogService(CatalogSettings(db_url=sqlite_url, networks={}, tokens=make_tokens()))
    server = uvicorn_factory(create_app(service), ssl_certfile=str(cert), ssl_keyfile=str(key))
    assert server.url.startswith("https://")
    with httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(cert))) as client:
        r = client.put(
            "/api/v1/devices/M2", json=registration(), headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        )
        assert r.status_code == 201
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/healthz")  # not trusted without the CA
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(server.url.replace("https", "http") + "/healthz")


def test_mqtt_link_over_tls(
    certificate: tuple[Path, Path], mosquitto_factory: Any, catalog_factory: CatalogFactory, sqlite_url: str
) -> None:
    cert, key = certificate
    broker = mosquitto_factory(extra_conf=f"cafile {cert}\ncertfile {cert}\nkeyfile {key}\n")
    running = catalog_factory(
        sqlite_url, mqtt=MqttSettings(host=broker.host, port=broker.port, tls=True, ca_file=str(cert))
    )
    assert running.service.mqtt is not None
    assert running.service.mqtt.connected.wait(10), broker.log_text()
    brokers = httpx.get(running.api + "/brokers").json()
    assert all(b["tls"] for b in brokers), "devices are told to use TLS too"
