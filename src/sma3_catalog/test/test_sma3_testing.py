"""The shared service fixtures start real services and stop them again."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import psycopg
import pytest

from sma3_testing import MosquittoBroker, MqttUser, PostgresCluster, wait_for_port
from sma3_testing.ports import port_open


def _client(broker: MosquittoBroker, user: MqttUser | None = None) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user is not None:
        client.username_pw_set(user.username, user.password)
    return client


def test_free_port_is_bindable(free_port: int) -> None:
    assert 1024 <= free_port <= 65535
    assert not port_open(free_port)
    with pytest.raises(TimeoutError, match=str(free_port)):
        wait_for_port(free_port, timeout_s=0.1)


def test_mosquitto_broker_round_trip(mosquitto_broker: MosquittoBroker) -> None:
    received = threading.Event()
    payloads: list[bytes] = []
    client = _client(mosquitto_broker)

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        payloads.append(msg.payload)
        received.set()

    client.on_message = on_message
    client.connect(mosquitto_broker.host, mosquitto_broker.port)
    client.loop_start()
    try:
        client.subscribe("t/#", qos=1)[0]
        client.publish("t/x", b"hello", qos=1).wait_for_publish(5)
        assert received.wait(5)
        assert payloads == [b"hello"]
    finally:
        client.loop_stop()
        client.disconnect()


def test_mosquitto_factory_auth_refuses_wrong_password(mosquitto_factory) -> None:
    alice = MqttUser("alice", "right")
    broker = mosquitto_factory(users=[alice], acl="user alice\ntopic readwrite #\n")
    good = _client(broker, alice)
    assert good.connect(broker.host, broker.port) == mqtt.MQTT_ERR_SUCCESS
    good.disconnect()
    connected = threading.Event()
    codes: list[int] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: object, _p: object) -> None:
        codes.append(int(reason.value))  # type: ignore[attr-defined]
        connected.set()

    bad = _client(broker, MqttUser("alice", "wrong"))
    bad.on_connect = on_connect
    bad.connect(broker.host, broker.port)
    bad.loop_start()
    try:
        assert connected.wait(5)
        assert codes[0] != 0, "a wrong password must be refused"
    finally:
        bad.loop_stop()


def test_mosquitto_stop_frees_port(tmp_path) -> None:
    broker = MosquittoBroker(tmp_path).start()
    assert broker.running and port_open(broker.port)
    broker.stop()
    assert not broker.running and not port_open(broker.port)
    broker.stop()


def test_postgres_url_gives_fresh_database(postgres_url: str, postgres_cluster: PostgresCluster) -> None:
    assert postgres_url.startswith("postgresql+psycopg://")
    dbname = postgres_url.rsplit("/", 1)[1]
    with psycopg.connect(
        host=postgres_cluster.host, port=postgres_cluster.port, user=postgres_cluster.superuser, dbname=dbname
    ) as conn:
        conn.execute("CREATE TABLE t (x int)")
        conn.execute("INSERT INTO t VALUES (42)")
        assert conn.execute("SELECT x FROM t").fetchone() == (42,)


def test_postgres_rejects_bad_database_name(postgres_cluster: PostgresCluster) -> None:
    with pytest.raises(ValueError, match="invalid PostgreSQL database name"):
        postgres_cluster.create_database("Robert'); DROP")


def test_uvicorn_factory_serves_app(uvicorn_factory) -> None:
    import httpx
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"pong": "yes"}

    server = uvicorn_factory(app)
    assert httpx.get(server.url + "/ping").json() == {"pong": "yes"}
    server.stop()
    assert not port_open(server.port)
