"""Software-in-the-loop fault simulator of sma3.

OpenDSS fault solutions (:mod:`sma3_sim.solver`) turned into the waveforms a 3-SMA samples
(:mod:`sma3_sim.waveforms`), COMTRADE records and live streams (:mod:`sma3_sim.stream`).
"""
