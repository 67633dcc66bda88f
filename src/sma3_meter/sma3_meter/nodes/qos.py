"""QoS of the meter's topics.

Streams (``waveform``, ``phasors``, ``device_status``) keep the default reliable/volatile profile
with a queue depth set per publisher. Discrete events (``fault_event``, ``outage_alarm``,
``fault_location``) use :data:`EVENT_QOS`: reliable and transient-local, so a tool that starts or
finishes discovery after an event (``ros2 topic echo --qos-durability transient_local``, rqt, a
bridge) still receives the last :data:`EVENT_HISTORY` of them. Volatile subscribers remain
compatible and receive only new events, which is what the pipeline's own nodes want (a restarted
locator must not locate old faults again).
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

EVENT_HISTORY = 10
"""Number of past events a late transient-local subscriber receives."""

EVENT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=EVENT_HISTORY,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
