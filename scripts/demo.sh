#!/usr/bin/env bash
# `make demo`: the cloud on its embedded defaults (in-process MQTT broker, SQLite, clips on local disk,
# its own RTSP server for live view) plus two simulated Pis, pi-1 and pi-2, each with a synthetic
# camera. Ctrl-C stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=${VIGIE_DEMO_DIR:-$PWD/.demo}
API_PORT=${VIGIE_DEMO_API_PORT:-8080}
MQTT_PORT=${VIGIE_DEMO_MQTT_PORT:-1884}
RTSP_PORT=${VIGIE_DEMO_RTSP_PORT:-8554}
METRICS_PORT=${VIGIE_DEMO_METRICS_PORT:-9464}
PASSWORD=${VIGIE_DEMO_PASSWORD:-vigie-demo}
BIN=${CARGO_TARGET_DIR:-$PWD/target}/debug
mkdir -p "$DEMO_DIR/logs"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "stopping the demo..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap stop INT TERM EXIT

export VIGIE_DATA_DIR="$DEMO_DIR/cloud"
export VIGIE_LISTEN="127.0.0.1:$API_PORT"
export VIGIE_MQTT_LISTEN="127.0.0.1:$MQTT_PORT"
export VIGIE_RTSP_LISTEN="127.0.0.1:$RTSP_PORT"
export VIGIE_METRICS_LISTEN="127.0.0.1:$METRICS_PORT"
unset VIGIE_DATABASE_URL VIGIE_MQTT_URL VIGIE_TOPIC_PREFIX

if ! "$BIN/vigie-cloud" user add admin --role admin --password-stdin <<<"$PASSWORD" 2>"$DEMO_DIR/logs/user-add.log"; then
  grep -qi "exist" "$DEMO_DIR/logs/user-add.log" || { cat "$DEMO_DIR/logs/user-add.log" >&2; exit 1; }
fi

"$BIN/vigie-cloud" serve >"$DEMO_DIR/logs/cloud.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "vigie-cloud failed to start:" >&2; tail -20 "$DEMO_DIR/logs/cloud.log" >&2; exit 1; }
  sleep 0.2
done

for n in 1 2; do
  # Each Pi's provisioning bundle (its MQTT password, for the embedded broker, which authenticates
  # every client; its API token, for the bulk drain; its live-push token, for the RTSP server),
  # made once and kept with the demo data.
  bundle="$DEMO_DIR/bundles/pi-$n"
  if [ ! -s "$bundle/mqtt.password" ] || [ ! -s "$bundle/api.token" ] || [ ! -s "$bundle/live.token" ]; then
    # A demo directory from an older bundle format: provision the Pi again.
    "$BIN/vigie-cloud" device revoke "pi-$n" >/dev/null 2>&1 || true
    "$BIN/vigie-cloud" device add "pi-$n" --out "$DEMO_DIR/bundles" >/dev/null 2>"$DEMO_DIR/logs/device-add.log" \
      || { cat "$DEMO_DIR/logs/device-add.log" >&2; exit 1; }
  fi
  VIGIE_EDGE_MQTT_PASSWORD_FILE="$bundle/mqtt.password" \
  VIGIE_EDGE_TOKEN_FILE="$bundle/api.token" \
  VIGIE_EDGE_LIVE_TOKEN_FILE="$bundle/live.token" \
  VIGIE_EDGE_DEVICE_ID="pi-$n" \
  VIGIE_EDGE_MQTT_URL="mqtt://127.0.0.1:$MQTT_PORT" \
  VIGIE_EDGE_API_URL="http://127.0.0.1:$API_PORT" \
  VIGIE_EDGE_DATA_DIR="$DEMO_DIR/pi-$n" \
  VIGIE_EDGE_HTTP_LISTEN="127.0.0.1:$((9090 + n))" \
  VIGIE_EDGE_VIDEO_SOURCE=synthetic \
  VIGIE_EDGE_LIVE_URL="rtsp://127.0.0.1:$RTSP_PORT/live/{device}" \
    "$BIN/vigie-edge" run --config edge/examples/simulated.toml >"$DEMO_DIR/logs/pi-$n.log" 2>&1 &
  pids+=($!)
done
for n in 1 2; do
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$((9090 + n))/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
done

cat <<MSG

  Vigie is running (logs in $DEMO_DIR/logs).

  Console / API   http://127.0.0.1:$API_PORT
  Login           admin / $PASSWORD
  MQTT (embedded) 127.0.0.1:$MQTT_PORT
  RTSP (embedded) 127.0.0.1:$RTSP_PORT (the Pis push their live camera here)
  Metrics         http://127.0.0.1:$METRICS_PORT/metrics (and /readyz with each component's state)
  Simulated Pis   pi-1 on http://127.0.0.1:9091, pi-2 on http://127.0.0.1:9092, each with a
                  synthetic camera: a sensor event gives a snapshot and a 15 s clip (5 s before it)

  Fire a sensor:  curl -X POST http://127.0.0.1:9091/sim/button
                  curl -X POST http://127.0.0.1:9092/sim/motion
  See events:     TOKEN=\$(curl -s -H 'Content-Type: application/json' \\
                    -d '{"username":"admin","password":"$PASSWORD"}' \\
                    http://127.0.0.1:$API_PORT/api/auth/login | sed 's/.*"access_token":"\\([^"]*\\)".*/\\1/')
                  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$API_PORT/api/events
  Live stream:    WebSocket ws://127.0.0.1:$API_PORT/api/stream?access_token=\$TOKEN

  Ctrl-C stops everything.
MSG
status=0
wait -n "${pids[@]}" || status=$?
# 128+N: interrupted by a signal (Ctrl-C), and the trap stops the rest; otherwise a process died.
[ "$status" -ge 128 ] || echo "a process exited ($status); see $DEMO_DIR/logs" >&2
