"""Software-in-the-loop fault simulator: OpenDSS fault solutions turned into the waveforms a 3-SMA samples, COMTRADE records and live streams."""
