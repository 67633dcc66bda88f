"""ROS 2 nodes of the 3-SMA (thin shells over the plain modules).

- ``acquisition`` (:mod:`sma3_meter.nodes.acquisition`): DAQ backend -> ``WaveformFrame``.
- ``detector`` (:mod:`sma3_meter.nodes.detector`): ``WaveformFrame`` -> ``PhasorFrame``,
  ``FaultEvent`` (+ COMTRADE record), ``OutageAlarm``.
- ``locator`` (:mod:`sma3_meter.nodes.locator`): ``FaultEvent`` -> ``FaultLocation``.

:mod:`sma3_meter.nodes.convert` converts between numpy objects and messages.
"""
