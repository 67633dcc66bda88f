"""Device Catalog: REST (FastAPI) and MQTT service keeping the live list of meters and handing out their configuration."""
