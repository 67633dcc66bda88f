"""Self-configuring meter agent: identity + catalog URL in, configuration, registration, heartbeat,
live reconfiguration and the on-board algorithms out.

Public API
----------
- :class:`~sma3_meter.agent.core.MeterAgent`, :class:`~sma3_meter.agent.core.AgentSettings` - the
  middleware-free agent (feed it phasors with ``on_phasors``, chain events with ``on_chain_event``).
- :class:`~sma3_meter.agent.mqtt.MqttLinks` - the paho shell for the management and data brokers.
- :mod:`~sma3_meter.agent.algorithms` - ``sag_reporting``, ``outage_detection``, ``fault_location``
  and :func:`~sma3_meter.agent.algorithms.register_algorithm`.
- :mod:`~sma3_meter.agent.config` - validation, :class:`ConfigCache`, :func:`plan_changes`,
  :func:`network_from_description`.
- :mod:`~sma3_meter.agent.messages` - data-broker topics and payloads.
- ``sma3-meter-agent`` (:mod:`~sma3_meter.agent.cli`).
"""
