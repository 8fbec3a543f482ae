#!/usr/bin/env bash
# Start the local services the tests talk to, when they are not already running.
# Each is started the way Debian packages it; a missing one is installed first.
# Exits 1, naming every service that could not be started, if any could not.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {  # port, seconds
  for _ in $(seq 1 "$2"); do port_open "$1" && return 0; sleep 1; done
  echo "services: nothing answers on 127.0.0.1:$1 after $2 s" >&2
  return 1
}

ensure_package() {  # command, debian package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -x "/usr/sbin/$1" ] && return 0
  echo "services: installing $2"
  if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null && APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || {
    echo "services: installing the Debian package $2 failed" >&2
    return 1
  }
}

started_or_say() {  # name, exit status of its start command
  [ "$2" -eq 0 ] && return 0
  echo "services: starting $1 failed (exit status $2)" >&2
  return 1
}

start_rabbitmq() {
  port_open 5672 && return 0
  ensure_package rabbitmq-server rabbitmq-server || return 1
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1
  started_or_say RabbitMQ $? && wait_port 5672 60
}

start_redis() {
  port_open 6379 && return 0
  ensure_package redis-server redis-server || return 1
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no >/dev/null
  started_or_say Redis $? && wait_port 6379 20
}

start_nats() {
  port_open 4222 && return 0
  ensure_package nats-server nats-server || return 1
  echo "services: starting NATS (with JetStream)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  started_or_say NATS $? && wait_port 4222 20
}

start_mosquitto() {
  port_open 1883 && return 0
  ensure_package mosquitto mosquitto || return 1
  echo "services: starting Mosquitto"
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  started_or_say Mosquitto $? && wait_port 1883 20
}

start_all() {
  local failed=()
  start_rabbitmq || failed+=("RabbitMQ (127.0.0.1:5672)")
  start_redis || failed+=("Redis (127.0.0.1:6379)")
  start_nats || failed+=("NATS (127.0.0.1:4222)")
  start_mosquitto || failed+=("Mosquitto (127.0.0.1:1883)")
  if [ ${#failed[@]} -gt 0 ]; then
    printf 'services: could not start: %s\n' "${failed[*]}" >&2
    return 1
  fi
}

# Sourced (as tests/test_scripts.py does), it only defines the functions above.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  start_all
fi
