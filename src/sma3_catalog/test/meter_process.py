"""A minimal meter process for the tests: connects with the Last Will from its configuration and
heartbeats until killed. Usage: meter_process.py CATALOG_API DEVICE_ID TOKEN (prints 'ready')."""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx
import paho.mqtt.client as mqtt


def main() -> None:
    api, device_id, token = sys.argv[1:4]
    headers = {"Authorization": f"Bearer {token}"}
    cfg = httpx.get(f"{api}/devices/{device_id}/config", headers=headers, timeout=10).json()
    broker = cfg["brokers"]["management"]
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=f"meter-{device_id}", protocol=mqtt.MQTTv5
    )
    will = cfg["last_will"]
    client.will_set(will["topic"], will["payload"], qos=will["qos"], retain=will["retain"])
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    client.connect(broker["host"], broker["port"], keepalive=30)
    client.loop_start()
    if not connected.wait(10):
        raise SystemExit("meter could not connect to the management broker")
    body = {
        "role": cfg["role"],
        "grid": cfg["grid"],
        "algorithms": [a["name"] for a in cfg["algorithms"]],
        "config_version": cfg["version"],
        "ttl": cfg["heartbeat"]["ttl_s"],
    }
    httpx.put(f"{api}/devices/{device_id}", json=body, headers=headers, timeout=10).raise_for_status()
    status = {
        "state": "online",
        "algorithms": body["algorithms"],
        "config_version": cfg["version"],
        "health": "ok",
    }
    print("ready", flush=True)
    while True:
        client.publish(cfg["heartbeat"]["topic"], json.dumps(status), qos=1)
        time.sleep(cfg["heartbeat"]["interval_s"])


if __name__ == "__main__":
    main()
