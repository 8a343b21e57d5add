#!/bin/sh
# Runs the CPU benchmark N times (default 2) in each environment profile (default: "default tuned"), each
# run only once the machine is quiet (1-minute load average under $QUIET, default 0.5; waits at most
# 10 minutes, then runs anyway). Every run's JSON goes to bench/torch/runs/; the last run of a profile is
# copied to bench/torch/results.cpu.json (default) or results.cpu.<profile>.json.
#   bench/torch/run_cpu.sh [N]        PROFILES="default tuned passive nommap" QUIET=0.5
set -e
cd "$(dirname "$0")"
N=${1:-2}; QUIET=${QUIET:-0.5}; PROFILES=${PROFILES:-default tuned}
mkdir -p runs
wait_quiet() {
  i=0
  while [ $i -lt 120 ] && awk -v q="$QUIET" '{exit !($1 >= q)}' /proc/loadavg; do sleep 5; i=$((i+1)); done
  echo "# load before run: $(cat /proc/loadavg)" >&2
}
for r in $(seq 1 "$N"); do
  for prof in $PROFILES; do
    case $prof in
      default) args="--env default"; res=results.cpu.json ;;
      tuned)   args="--env tuned"; res=results.cpu.tuned.json ;;
      passive) args="--omp-wait-policy passive"; res=results.cpu.omp-passive.json ;;
      nommap)  args="--malloc nommap"; res=results.cpu.malloc-nommap.json ;;
      *) echo "unknown profile $prof" >&2; exit 2 ;;
    esac
    wait_quiet
    out=runs/cpu.$prof.$(date -u +%Y%m%dT%H%M%SZ).json
    PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 llama_bench.py $args --out "$out" > /dev/null
    cp "$out" "$res"
  done
done
