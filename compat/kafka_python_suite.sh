#!/usr/bin/env bash
# Run kafka-python's own integration suite (test/integration) against wiregate.
#
# Usage: compat/kafka_python_suite.sh CHECKOUT [URI] [-- PYTEST_ARGS...]
#
#   CHECKOUT  a kafka-python source tree (the tag or branch matching the
#             installed kafka-python); only its test/ folder is used, so the
#             suite exercises the *installed* client, not the checkout's copy.
#   URI       PLAINTEXT://HOST:PORT of a running broker.  Without it, the
#             script starts a wiregate on a free port with the broker
#             settings kafka-python's own fixture gives a real Kafka
#             (servers/resources/default/kafka.properties): num.partitions=4,
#             group.min.session.timeout.ms=1000,
#             group.initial.rebalance.delay.ms=0.  For a wiregate of your
#             own, `serve --kafka-config KEY=VALUE` sets them; with Kafka's
#             production defaults (6000 ms minimum session timeout)
#             test_group's 3000 ms session is refused.
#
# How the suite finds the broker: test/integration/conftest.py's
# kafka_broker_factory uses KAFKA_URI when set (an "external" broker) and
# KAFKA_VERSION gates version-dependent tests; the fixture base class still
# insists that KAFKA_ROOT (a Kafka binary distribution) exists, so an empty
# directory stands in for it.
#
# Left out: transactional tests (a later issue), test_ssl_integration.py
# (it always launches a local Kafka distribution, ignoring KAFKA_URI).  The
# SASL tests skip themselves when KAFKA_URI is set.
set -euo pipefail

if [[ $# -lt 1 || ! -d "$1/test/integration" ]]; then
    echo "usage: $0 KAFKA_PYTHON_CHECKOUT [PLAINTEXT://HOST:PORT] [-- PYTEST_ARGS...]" >&2
    exit 2
fi
checkout=$(cd "$1" && pwd)
shift
uri=""
if [[ $# -gt 0 && "$1" != "--" ]]; then
    uri=$1
    shift
fi
[[ $# -gt 0 && "$1" == "--" ]] && shift

stage=$(mktemp -d /tmp/kafka-python-suite.XXXXXX)
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$stage"
}
trap cleanup EXIT

cp -r "$checkout/test" "$stage/test"
mkdir -p "$stage/kafka-root"

if [[ -z "$uri" ]]; then
    repo=$(cd "$(dirname "$0")/.." && pwd)
    PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}" python -u - >"$stage/server.out" 2>"$stage/server.err" <<'EOF' &
import signal
import threading

from wiregate.core import Broker
from wiregate.testing import Server

broker = Broker()
broker.kafka_configs.update({
    "num.partitions": "4",
    "group.min.session.timeout.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
})
with Server(broker=broker) as server:
    print(f"PLAINTEXT://{server.kafka_bootstrap}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
EOF
    server_pid=$!
    for _ in $(seq 100); do
        uri=$(head -n1 "$stage/server.out" 2>/dev/null || true)
        [[ -n "$uri" ]] && break
        if ! kill -0 "$server_pid" 2>/dev/null; then
            cat "$stage/server.err" >&2
            exit 1
        fi
        sleep 0.1
    done
    [[ -n "$uri" ]] || { echo "wiregate did not start" >&2; exit 1; }
    echo "wiregate started at $uri" >&2
fi

cd "$stage"
export KAFKA_URI=$uri
export KAFKA_VERSION=${KAFKA_VERSION:-4.0.0}
export KAFKA_ROOT=$stage/kafka-root
set +e
python -m pytest test/integration \
    --rootdir "$stage" -c /dev/null -p no:cacheprovider \
    --timeout=120 -o log_level=WARNING -q -rfEs --tb=short \
    --ignore=test/integration/test_ssl_integration.py \
    -k "not transactional" \
    "$@"
status=$?
set -e
exit $status
