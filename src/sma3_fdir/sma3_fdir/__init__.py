"""Fault detection, isolation and service restoration coordinator."""
