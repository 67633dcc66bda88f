"""Workspace-wide pytest configuration: shared fixtures for real brokers, databases and servers."""

import os
import random

pytest_plugins = ["sma3_testing.fixtures"]

# Each test run gets its own DDS domain (unless the caller chose one), so two runs on one machine
# (a developer's and CI's, or two sessions) never see each other's nodes and topics. Subprocesses
# started by the tests inherit it. Fast DDS domain ids 0-101 are safe with the default ports.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 101)))
