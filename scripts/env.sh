# Source this file to use the built sma3 workspace in the current shell:
#   source scripts/env.sh
# It activates the venv, the ROS prefix (wheels or /opt/ros) and the colcon install space.
# shellcheck source=scripts/env-base.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/env-base.sh"
if [ ! -f "$_sma3_top/install/setup.bash" ]; then
  echo "sma3: the workspace is not built yet; run ./scripts/setup first" >&2
  return 1 2>/dev/null || exit 1
fi
# colcon's generated scripts read unset variables; relax nounset while sourcing them.
case $- in *u*) _sma3_u=1; set +u ;; *) _sma3_u=0 ;; esac
# shellcheck disable=SC1091
source "$_sma3_top/install/setup.bash"
[ "$_sma3_u" = 1 ] && set -u
# Executables of the ament_python packages live in install/<pkg>/lib/<pkg> (where `ros2 run`
# looks); put them on PATH too so that commands such as sma3-locate work directly.
for _p in "$_sma3_top"/install/sma3_*/lib/sma3_*; do
  [ -d "$_p" ] && PATH="$_p:$PATH"
done
export PATH
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
unset _p _sma3_u
