"""3-SMA meter: DAQ backends, phasor estimation, fault and outage detection, fault location and the
meter ROS 2 nodes.
"""
