#!/usr/bin/env bash
# Checks that the machine's PostgreSQL and Mosquitto answer on loopback; starts one that is installed
# but stopped (with the machine's documented start command), and fails loudly when one is missing.
# It never stops or reconfigures them.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ok=1
if ! up 5432; then
  echo "PostgreSQL is not answering on 127.0.0.1:5432; trying to start it" >&2
  command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 50); do up 5432 && break; sleep 0.2; done
  up 5432 || { echo "error: PostgreSQL is needed on 127.0.0.1:5432 (trust auth, user postgres)" >&2; ok=0; }
fi
if ! up 1883; then
  echo "Mosquitto is not answering on 127.0.0.1:1883; trying to start it" >&2
  command -v mosquitto >/dev/null && [ -f /etc/mosquitto/mosquitto.conf ] && mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  for _ in $(seq 50); do up 1883 && break; sleep 0.2; done
  up 1883 || { echo "error: Mosquitto is needed on 127.0.0.1:1883" >&2; ok=0; }
fi
[ "$ok" = 1 ] || exit 1
echo "services: PostgreSQL 127.0.0.1:5432 and Mosquitto 127.0.0.1:1883 are up"
