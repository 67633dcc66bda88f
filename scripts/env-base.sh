# Environment of the sma3 workspace before it is built: the venv and the ROS prefix.
# Sourced by scripts/setup and scripts/env.sh; not meant to be run.
_sma3_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
_sma3_venv="$_sma3_top/.venv"
_sma3_ros=""
for _d in "${ROS_DISTRO_DIR:-}" /opt/ros/kilted /opt/ros/jazzy /opt/ros/rolling; do
  if [ -n "$_d" ] && [ -f "$_d/setup.bash" ]; then _sma3_ros="$_d"; break; fi
done
if [ -n "$_sma3_ros" ]; then
  # shellcheck disable=SC1091
  set +u; source "$_sma3_ros/setup.bash"; set -u 2>/dev/null || true
fi
export VIRTUAL_ENV="$_sma3_venv"
export PATH="$_sma3_venv/bin:$PATH"
if [ -z "$_sma3_ros" ]; then
  # With the PyPI wheels the venv itself is the ROS prefix (DESIGN.md section 3).
  export AMENT_PREFIX_PATH="$_sma3_venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$_sma3_venv${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi
unset _d
