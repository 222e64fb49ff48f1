#!/usr/bin/env bash
# Demo of cwrap-py, run by `make demo` after `make all venv`.
#
# A Python TCP server on 127.0.0.10:7777 (interface 10) and a Python client on interface 100
# talk over a private socket_wrapper directory; each prints the addresses it sees, then the
# directory is listed. Every wait is bounded; any failure exits non-zero.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
lib=$root/build/libsocket_wrapper.so
swrap=$root/.venv/bin/swrap
py=$root/.venv/bin/python

for f in "$lib" "$swrap" "$py"; do
    if [ ! -x "$f" ] && [ ! -f "$f" ]; then
        echo "demo: $f is missing; run 'make demo' (it builds the library and the venv)" >&2
        exit 1
    fi
done

fail() {
    echo "demo: FAILED: $*" >&2
    exit 1
}

# /tmp keeps the socket paths well inside sun_path, whatever TMPDIR is.
dir=$(mktemp -d /tmp/swrap-demo.XXXXXX)
log=$(mktemp /tmp/swrap-demo-server.XXXXXX)
server_pid=

cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$dir" "$log"
}
trap cleanup EXIT

# wait_for PATTERN: bounded wait (10 s) for a line in the server's output.
wait_for() {
    for _ in $(seq 100); do
        grep -q "$1" "$log" && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; fail "the server died"; }
        sleep 0.1
    done
    cat "$log" >&2
    fail "timed out waiting for the server to print '$1'"
}

server_code='
import socket
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.10", 7777))
srv.listen(8)
print("server: listening on %s:%d" % srv.getsockname(), flush=True)
while True:
    conn, peer = srv.accept()
    with conn:
        print("server: accepted a connection from %s:%d" % peer, flush=True)
        conn.recv(100)
        conn.sendall(("you are %s:%d" % peer).encode())
'

client_code='
import socket
c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
c.settimeout(10)
c.connect(("127.0.0.10", 7777))
print("client: my address  %s:%d" % c.getsockname())
print("client: my peer     %s:%d" % c.getpeername())
c.sendall(b"hello")
print("client: server says %r" % c.recv(100).decode())
c.close()
'

echo "== network directory: $dir"
echo "== server, interface 10: LD_PRELOAD=build/libsocket_wrapper.so python3 -c ..."
LD_PRELOAD=$lib SOCKET_WRAPPER_DIR=$dir SOCKET_WRAPPER_DEFAULT_IFACE=10 \
    "$py" -c "$server_code" >"$log" 2>&1 &
server_pid=$!
wait_for "^server: listening"
cat "$log"

echo "== client, interface 100: swrap run --dir $dir --iface 100 -- python3 -c ..."
client_out=$(timeout 20 "$swrap" run --dir "$dir" --iface 100 -- "$py" -c "$client_code") ||
    fail "the client failed (exit $?)"
echo "$client_out"
wait_for "^server: accepted"
grep "^server: accepted" "$log"

echo "== ls -l $dir"
ls -l "$dir"
echo "== swrap ls $dir"
listing=$(timeout 10 "$swrap" ls "$dir") || fail "swrap ls failed"
echo "$listing"

# Check what everyone saw.
grep -q "^client: my address  127\.0\.0\.100:[0-9]" <<<"$client_out" ||
    fail "the client was not on 127.0.0.100"
grep -q "^client: my peer     127\.0\.0\.10:7777$" <<<"$client_out" ||
    fail "the client's peer was not 127.0.0.10:7777"
grep -q "^server: accepted a connection from 127\.0\.0\.100:[0-9]" "$log" ||
    fail "the server did not see 127.0.0.100"
[ -S "$dir/T0A1E61" ] || fail "no socket file T0A1E61 (127.0.0.10:7777) in $dir"
grep -q "127\.0\.0\.10:7777 .*T0A1E61" <<<"$listing" || fail "swrap ls does not show T0A1E61"

echo "== stopping the server (pid $server_pid)"
kill "$server_pid"
for _ in $(seq 50); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
fi
wait "$server_pid" 2>/dev/null || true
server_pid=
echo "== demo OK"
