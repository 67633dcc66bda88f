"""Test support for the ROS 2 interfaces: sample messages, field-by-field comparison, interface listing.

Plain helpers used by the workspace's ROS tests and by the echo process they start; they need the
built ``sma3_interfaces`` package on the Python path (``source scripts/env.sh``).
"""
