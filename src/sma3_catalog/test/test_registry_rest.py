"""REST contract of the device records, on SQLite and PostgreSQL, through a real uvicorn server."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx

from sma3_catalog.index import parse_iso

from .conftest import DEVICE_TOKENS, RunningCatalog, registration


def test_put_creates_then_updates(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        r = c.put("/devices/M2", json=registration())
        assert r.status_code == 201, r.text
        assert r.headers["location"] == "/api/v1/devices/M2"
        created = r.json()
        assert created["id"] == "M2" and created["alive"] is True
        assert created["endpoints"]["ip"] == "10.0.0.12"
        t_created = parse_iso(created["created"])
        assert t_created.tzinfo is not None and t_created.utcoffset() == timedelta(0)
        expires = parse_iso(created["expires"])
        assert abs((expires - parse_iso(created["modified"])).total_seconds() - 60) < 1e-3
        r = c.put("/devices/M2", json=registration(firmware_version="1.3.0"))
        assert r.status_code == 204 and r.content == b""
        got = c.get("/devices/M2").json()
        assert got["firmware_version"] == "1.3.0"
        assert got["created"] == created["created"]
        assert got["modified"] >= created["modified"]


def test_get_patch_delete(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        assert c.get("/devices/M2").status_code == 404
        c.put("/devices/M2", json=registration())
        r = c.patch(
            "/devices/M2",
            json={"endpoints": {"ip": "10.0.0.99"}, "algorithms": ["outage_report"], "ttl": 30},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["endpoints"]["ip"] == "10.0.0.99"
        assert body["endpoints"]["rest_base_url"] == "http://10.0.0.12:8000/api"  # merged, not replaced
        assert body["algorithms"] == ["outage_report"] and body["ttl"] == 30
        r = c.patch("/devices/M2", json={"grid": {"lateral": None, "bus": None}})
        assert r.status_code == 200 and r.json()["grid"]["bus"] is None
        assert c.patch("/devices/M2", json={"role": None}).status_code == 422
        assert c.patch("/devices/nope", json={"ttl": 3}).status_code == 404
        assert c.delete("/devices/M2").status_code == 204
        assert c.get("/devices/M2").status_code == 404
        assert c.delete("/devices/M2").status_code == 404


def _seed(c: httpx.Client) -> None:
    for i in range(7):
        feeder = "L1" if i % 2 == 0 else "L3"
        role = "feeder_head" if i == 0 else "secondary"
        algos = (
            ["fault_location"]
            if role == "feeder_head"
            else ["sag_report"] + (["outage_report"] if i % 3 else [])
        )
        body = registration(role=role, algorithms=algos)
        body["grid"]["feeder"] = feeder
        assert c.put(f"/devices/D{i}", json=body).status_code == 201


def test_list_filters(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        _seed(c)
        ids = lambda r: [d["id"] for d in r.json()]  # noqa: E731
        assert ids(c.get("/devices")) == [f"D{i}" for i in range(7)]
        assert ids(c.get("/devices", params={"feeder": "L3"})) == ["D1", "D3", "D5"]
        assert ids(c.get("/devices", params={"role": "feeder_head"})) == ["D0"]
        assert ids(c.get("/devices", params={"algorithm": "outage_report"})) == ["D1", "D2", "D4", "D5"]
        assert ids(c.get("/devices", params={"algorithm": "outage_report", "feeder": "L1"})) == ["D2", "D4"]
        assert ids(c.get("/devices", params={"alive": "true"})) == [f"D{i}" for i in range(7)]
        assert ids(c.get("/devices", params={"alive": "false"})) == []
        assert ids(c.get("/devices", params={"feeder": "nowhere"})) == []


def test_pagination_link_header(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        _seed(c)
        seen: list[str] = []
        url: str | None = catalog.api + "/devices?limit=3&role=secondary"
        pages = 0
        while url is not None:
            r = c.get(url)
            assert r.status_code == 200
            seen += [d["id"] for d in r.json()]
            pages += 1
            link = r.headers.get("link")
            if link is None:
                url = None
            else:
                m = re.fullmatch(r'<([^>]+)>; rel="next"', link)
                assert m, link
                url = m.group(1)
                assert "role=secondary" in url and "offset=" in url
        assert pages == 2
        assert seen == [f"D{i}" for i in range(1, 7)]
        assert "link" not in c.get("/devices", params={"offset": 100}).headers


BAD_QUERIES = [
    ({"limit": 0}, "limit"),
    ({"limit": 100000}, "limit"),
    ({"offset": -1}, "offset"),
    ({"role": "king"}, "role"),
    ({"alive": "perhaps"}, "alive"),
    ({"algorithm": "Bad Name"}, "algorithm"),
    ({"feeder": "a\u0000b"}, "feeder"),
]

BAD_BODIES = [
    ({"role": "king"}, "role"),
    ({"algorithms": ["Fault Location"]}, "algorithms"),
    ({"ttl": -5}, "ttl"),
    ({"ttl": 10**9}, "ttl"),
    ({"endpoints": {"ip": "999.1.1.1"}}, "ip"),
    ({"endpoints": {"rest_base_url": "ftp://x"}}, "rest_base_url"),
    ({"endpoints": {"mqtt_publishes": ["a/#"]}}, "mqtt_publishes"),
    ({"firmware_version": "bad\u0000nul"}, "firmware_version"),
    ({"colour": "blue"}, "colour"),
    ({"config_version": -1}, "config_version"),
]


def test_list_rejects_bad_query(catalog: RunningCatalog) -> None:
    for params, field in BAD_QUERIES:
        r = httpx.get(catalog.api + "/devices", params=params)
        assert r.status_code == 422, (params, r.text)
        assert field in r.text, (params, r.text)


def test_put_rejects_bad_body(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        for body, field in BAD_BODIES:
            r = c.put("/devices/M2", json=registration(**body))
            assert r.status_code == 422, (body, r.text)
            assert field in r.text, (body, r.text)
        assert c.get("/devices/M2").status_code == 404, "a rejected body must not register anything"


def test_bad_json_and_bad_ids(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        r = c.put("/devices/M2", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 422
        assert c.put("/devices/bad%20id", json=registration()).status_code == 422
        assert c.get("/devices/" + "x" * 200).status_code == 422


def test_auth_matrix(catalog: RunningCatalog) -> None:
    anonymous = catalog.client(token=None)
    wrong = catalog.client(token="not-a-token-at-all")
    m2 = catalog.client(token=DEVICE_TOKENS["M2"])
    m3 = catalog.client(token=DEVICE_TOKENS["M3"])
    operator = catalog.client()
    try:
        # writes need a valid token
        r = anonymous.put("/devices/M2", json=registration())
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert wrong.put("/devices/M2", json=registration()).status_code == 401
        # a device may write only its own record
        assert m2.put("/devices/M2", json=registration()).status_code == 201
        assert m3.put("/devices/M2", json=registration()).status_code == 403
        assert m3.patch("/devices/M2", json={"ttl": 5}).status_code == 403
        assert m3.delete("/devices/M2").status_code == 403
        assert m2.patch("/devices/M2", json={"ttl": 50}).status_code == 200
        # reads of records are public
        assert anonymous.get("/devices/M2").status_code == 200
        assert anonymous.get("/devices").status_code == 200
        # configuration: own only, operators anything, PUT operators only
        assert anonymous.get("/devices/M2/config").status_code == 401
        assert m3.get("/devices/M2/config").status_code == 403
        assert m2.get("/devices/M2/config").status_code == 200
        assert operator.get("/devices/M2/config").status_code == 200
        assert m2.put("/devices/M2/config", json={"network": "tiny"}).status_code == 403
        assert operator.put("/devices/M2/config", json={"network": "tiny"}).status_code == 200
        assert m2.get("/devices/M2/config/versions").status_code == 200
        assert m3.get("/devices/M2/config/versions").status_code == 403
        # the operator may delete anything
        assert operator.delete("/devices/M2").status_code == 204
    finally:
        for client in (anonymous, wrong, m2, m3, operator):
            client.close()


def test_healthz_metrics_openapi(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        c.put("/devices/M2", json=registration())
        health = httpx.get(catalog.url + "/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "database": True, "mqtt": None, "devices": 1}
        metrics = httpx.get(catalog.url + "/metrics")
        assert metrics.status_code == 200
        assert "sma3_catalog_devices 1.0" in metrics.text
        assert 'sma3_catalog_events_total{type="created"} 1.0' in metrics.text
        assert 'route="/api/v1/devices/{device_id}"' in metrics.text
        spec = httpx.get(catalog.url + "/openapi.json").json()
        assert "/api/v1/devices/{device_id}/config" in spec["paths"]
        name = spec["paths"]["/api/v1/networks/{name}"]["get"]["parameters"][0]
        assert name["schema"]["enum"] == ["tiny"], "the contract lists the served networks"
        selection = spec["components"]["schemas"]["BrokerSelection"]["properties"]
        assert selection["data"]["anyOf"][0]["enum"] == ["data"]
        assert "DeviceStatus" in spec["components"]["schemas"] or "Device" in spec["components"]["schemas"]


def test_expires_is_utc_iso(catalog: RunningCatalog) -> None:
    with catalog.client() as c:
        body = c.put("/devices/M2", json=registration(ttl=5)).json()
        expires = parse_iso(body["expires"])
        assert body["expires"].endswith("Z")
        assert timedelta(seconds=3) < expires - datetime.now(timezone.utc) <= timedelta(seconds=5)


def test_list_and_get_serialize_alike(catalog: RunningCatalog) -> None:
    """The list fast path writes exactly what GET /devices/{id} writes."""
    with catalog.client() as c:
        _seed(c)
        c.patch("/devices/D3", json={"endpoints": {"ip": None}})
        for listed in c.get("/devices").json():
            assert listed == c.get(f"/devices/{listed['id']}").json()
