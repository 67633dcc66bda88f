#!/usr/bin/env bash
# Run a command inside the built sma3 workspace (venv + /opt/ros + install space).
set -e
# shellcheck disable=SC1091
source /opt/sma3/scripts/env.sh
exec "$@"
