"""Device Catalog: REST (FastAPI) and MQTT service keeping the live list of meters and their configuration.

Run it with ``sma3-catalog`` (:mod:`sma3_catalog.cli`); the app factory is
:func:`sma3_catalog.api.create_app`, the core is :mod:`sma3_catalog.registry` and
:mod:`sma3_catalog.configuration`.
"""
