"""Bridge between the ROS 2 graph and MQTT / REST peers (other meters, services, an external OMS)."""
