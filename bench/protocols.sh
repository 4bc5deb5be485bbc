#!/usr/bin/env bash
# protocols.sh — ebb's TCP and HTTPS listeners side by side with HAProxy, one core each, in one run.
#
# Measures, each load bounded in time, everything on 127.0.0.1:
#   l4-rps     HTTP keep-alive requests/s through a TCP listener (wrk -c64 sees HTTP, the proxy sees
#              TCP): ebb's TCP listener, HAProxy `mode tcp`, a bare Node `net` pipe (the baseline), and
#              node-floor: the least a Node proxy can do per read (each socket's handle read into a
#              buffer of its own and written straight to the other handle, nothing else), which shows
#              how much of ebb's cost is Node's own
#   bulk       MiB/s of one GET of BULK MiB (default 1024) through the same TCP listeners (curl)
#   tls-hs     TLS handshakes/s: wrk over https with `Connection: close`, so every request is a new
#              connection and a full handshake (wrk resumes no session): ebb's HTTPS listener, HAProxy
#              `bind ... ssl crt`, both terminating TLS and forwarding plain HTTP to the backend
#   https-rps  HTTPS requests/s on kept-alive connections (wrk -c64 over https), the same listeners
# The backend is nginx (1 worker): GET / -> "ok\n", GET /bulk -> BULK MiB. The certificate is an EC
# P-256 key, self-signed (made here with openssl); both proxies negotiate TLS 1.3.
# With --pin (the default) the proxies run on CPU 1, wrk, curl and the backend on CPU 0. Rounds are
# interleaved (each scenario, each proxy, then the next round); the table gives medians, the proxy's
# CPU per operation (from /proc, the whole process group) with its user-space part, and the ratio of
# each to HAProxy's.
#
# ebb is compiled first by tsc into .bench/protocols-dist and run as bin/ebb.js runs dist/ (about 10 s),
# so a stale build is never measured; --from-source runs it from its sources under tsx instead.
#
# Usage: bench/protocols.sh [-d SECS] [-r ROUNDS] [--bulk MiB] [--no-pin] [--only 'l4-rps bulk ...'] [--keep] [--from-source]
#   Defaults: -d 5 -r 3 --bulk 1024 (about 3 minutes). Requires haproxy, nginx, wrk, curl, openssl,
#   node, taskset. Every process it starts runs in its own process group (setsid) and is stopped by
#   that group's id at exit; nothing else is touched.
set -uo pipefail

DUR=5; ROUNDS=3; BULK=1024; PIN=1; KEEP=0; FROM_SOURCE=0; ONLY="l4-rps bulk tls-hs https-rps"; READY_TIMEOUT=30
BACKEND_PORT=18181; HAPROXY_TCP=18188; HAPROXY_HTTPS=18184; NODE_TCP=18189; NODE_FLOOR=18187; EBB_TCP=18191; EBB_HTTPS=18193
die() { echo "protocols.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    -d|--duration) DUR="$2"; shift 2;;
    -r|--rounds) ROUNDS="$2"; shift 2;;
    --bulk) BULK="$2"; shift 2;;
    --no-pin) PIN=0; shift;;
    --only) ONLY="$2"; shift 2;;
    --keep) KEEP=1; shift;;
    --from-source) FROM_SOURCE=1; shift;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0;;
    *) die "unknown argument: $1 (see --help)";;
  esac
done
for b in haproxy nginx wrk curl openssl node; do command -v "$b" >/dev/null || die "$b not found (apt-get install -y haproxy nginx wrk curl)"; done
REPO=$(cd "$(dirname "$0")/.." && pwd)

WORK=$(mktemp -d -t ebb-protocols.XXXXXX); chmod 755 "$WORK"   # nginx workers run as nobody
STARTED=()   # "name:pgid"
cleanup() {
  local e pg
  for e in "${STARTED[@]}"; do pg=${e##*:}; kill -TERM -- "-$pg" 2>/dev/null; done
  for e in "${STARTED[@]}"; do
    pg=${e##*:}
    for _ in $(seq 1 50); do kill -0 -- "-$pg" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pg" 2>/dev/null
  done
  STARTED=()
  [ "$KEEP" = 1 ] && echo "protocols.sh: kept $WORK" >&2 || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

CPU_PROXY=""; CPU_LOAD=""
if [ "$PIN" = 1 ]; then command -v taskset >/dev/null || die "taskset missing"; CPU_PROXY="taskset -c 1"; CPU_LOAD="taskset -c 0"; fi

# ---------- certificate, backend, peers ----------
openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/key.pem" 2>/dev/null
openssl req -x509 -new -key "$WORK/key.pem" -sha256 -days 30 -subj /CN=bench.test -addext subjectAltName=DNS:bench.test -out "$WORK/cert.pem" 2>/dev/null
cat "$WORK/cert.pem" "$WORK/key.pem" > "$WORK/haproxy.pem"
mkdir -p "$WORK/www" "$WORK/tmp"
truncate -s "${BULK}M" "$WORK/www/bulk"
NGX_TMP="client_body_temp_path $WORK/tmp/cb; proxy_temp_path $WORK/tmp/px; fastcgi_temp_path $WORK/tmp/fc; uwsgi_temp_path $WORK/tmp/uw; scgi_temp_path $WORK/tmp/sc;"
cat > "$WORK/backend.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/backend.pid; error_log $WORK/backend.err warn;
events { worker_connections 16384; }
http {
  $NGX_TMP
  access_log off; sendfile on; tcp_nopush on; keepalive_requests 10000000; keepalive_timeout 120s;
  default_type text/plain;
  server { listen 127.0.0.1:$BACKEND_PORT reuseport;
    location = / { return 200 "ok\n"; }
    location / { root $WORK/www; } }
}
EOF
cat > "$WORK/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe_tcp
  mode tcp
  bind 127.0.0.1:$HAPROXY_TCP
  default_backend be_tcp
backend be_tcp
  mode tcp
  server s1 127.0.0.1:$BACKEND_PORT
frontend fe_https
  mode http
  option http-keep-alive
  bind 127.0.0.1:$HAPROXY_HTTPS ssl crt $WORK/haproxy.pem
  default_backend be_http
backend be_http
  mode http
  http-reuse always
  server s1 127.0.0.1:$BACKEND_PORT
EOF
# The baseline the issue names: a bare Node net pipe (as ../shared/bench/ref/tcp-proxy.js).
cat > "$WORK/node-tcp.cjs" <<'EOF'
const net = require('node:net');
const [port, backend] = process.argv.slice(2).map(Number);
net.createServer({ noDelay: true }, (c) => {
  const u = net.connect({ port: backend, host: '127.0.0.1', noDelay: true });
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
}).listen(port, '127.0.0.1');
EOF
cat > "$WORK/ebb.yaml" <<EOF
loadBalancers:
  - name: l4
    type: network
    attributes: { ebb.shutdown_timeout.seconds: 1 }
    listeners:
      - { protocol: TCP, port: $EBB_TCP, address: 127.0.0.1, defaultActions: [{ type: forward, targetGroup: l4 }] }
  - name: web
    attributes: { ebb.shutdown_timeout.seconds: 1 }
    listeners:
      - protocol: HTTPS
        port: $EBB_HTTPS
        address: 127.0.0.1
        certificates: [{ certificateFile: $WORK/cert.pem, privateKeyFile: $WORK/key.pem }]
        defaultActions: [{ type: forward, targetGroup: web }]
targetGroups:
  - name: l4
    protocol: TCP
    port: $BACKEND_PORT
    healthCheck: { intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2 }
    targets: [{ id: 127.0.0.1 }]
  - name: web
    protocol: HTTP
    port: $BACKEND_PORT
    healthCheck: { path: /, intervalSeconds: 5, timeoutSeconds: 2, healthyThresholdCount: 2, matcher: "200-399" }
    targets: [{ id: 127.0.0.1 }]
EOF

# start NAME PIN CMD...: in a session of its own (its pgid is its pid), output to $WORK/NAME.log
start() {
  local name=$1 pin=$2; shift 2
  setsid $pin "$@" > "$WORK/$name.log" 2>&1 < /dev/null &
  STARTED+=("$name:$!")
  eval "PG_$name=$!"
}
pg_of() { local v="PG_$1"; echo "${!v:-}"; }
# utime+stime ticks of every process of a group, then utime alone: "TOTAL USER"
grp_ticks() {
  local g=$1 f line rest s=0 u=0
  for f in /proc/[0-9]*/stat; do
    { read -r line < "$f"; } 2>/dev/null || continue
    rest=${line##*) }; set -- $rest
    [ "$3" = "$g" ] && { s=$(( s + ${12} + ${13} )); u=$(( u + ${12} )); }
  done
  echo "$s $u"
}
wait_port() {  # wait_port PORT GROUP: until something listens, or the group has exited
  local i
  for i in $(seq 1 $(( READY_TIMEOUT * 10 ))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 -- "-$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
for p in $BACKEND_PORT $HAPROXY_TCP $HAPROXY_HTTPS $NODE_TCP $NODE_FLOOR $EBB_TCP $EBB_HTTPS; do
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && die "port $p already in use"
done
start backend "$CPU_LOAD" nginx -c "$WORK/backend.conf" -p "$WORK"
start haproxy "$CPU_PROXY" haproxy -db -f "$WORK/haproxy.cfg"
start nodetcp "$CPU_PROXY" node "$WORK/node-tcp.cjs" "$NODE_TCP" "$BACKEND_PORT"
start nodefloor "$CPU_PROXY" node "$REPO/bench/node-floor.cjs" "$NODE_FLOOR" "$BACKEND_PORT"
if [ "$FROM_SOURCE" = 1 ]; then
  EBB_RUN=(node --import tsx "$REPO/src/main/cli.ts"); EBB_HOW="ebb from its sources under tsx"
else
  # Inside the repository, so dist/ finds node_modules; its dashboard's files at ../assets, as dist/ does.
  DIST="$REPO/.bench/protocols-dist"; rm -rf "$DIST"
  node "$REPO/node_modules/typescript/bin/tsc" -p "$REPO/tsconfig.build.json" --outDir "$DIST" > "$WORK/tsc.log" 2>&1 \
    || [ -f "$DIST/main/cli.js" ] || die "building ebb into $DIST failed (or pass --from-source): $(head -c 2000 "$WORK/tsc.log")"
  [ -e "$REPO/.bench/assets" ] || ln -s "$REPO/assets" "$REPO/.bench/assets"
  # Run by bin/ebb.js, as the ebb command is (it may start node again with the young generation capped).
  mkdir -p "$REPO/.bench/protocols-bin"
  sed 's#\.\./dist/#../protocols-dist/#g' "$REPO/bin/ebb.js" > "$REPO/.bench/protocols-bin/ebb.js"
  EBB_RUN=(node "$REPO/.bench/protocols-bin/ebb.js"); EBB_HOW="ebb compiled by tsc into .bench/protocols-dist, run by bin/ebb.js"
fi
start ebb "$CPU_PROXY" "${EBB_RUN[@]}" serve --workers 1 --config "$WORK/ebb.yaml" --no-auth --state-dir "$WORK/state" --admin 127.0.0.1:0

# "scenario|peer|port|group|url"
RUNS=(
  "l4-rps|haproxy|$HAPROXY_TCP|haproxy|http://127.0.0.1:$HAPROXY_TCP/"
  "l4-rps|ebb|$EBB_TCP|ebb|http://127.0.0.1:$EBB_TCP/"
  "l4-rps|node-net|$NODE_TCP|nodetcp|http://127.0.0.1:$NODE_TCP/"
  "l4-rps|node-floor|$NODE_FLOOR|nodefloor|http://127.0.0.1:$NODE_FLOOR/"
  "bulk|haproxy|$HAPROXY_TCP|haproxy|http://127.0.0.1:$HAPROXY_TCP/bulk"
  "bulk|ebb|$EBB_TCP|ebb|http://127.0.0.1:$EBB_TCP/bulk"
  "bulk|node-net|$NODE_TCP|nodetcp|http://127.0.0.1:$NODE_TCP/bulk"
  "tls-hs|haproxy|$HAPROXY_HTTPS|haproxy|https://127.0.0.1:$HAPROXY_HTTPS/"
  "tls-hs|ebb|$EBB_HTTPS|ebb|https://127.0.0.1:$EBB_HTTPS/"
  "https-rps|haproxy|$HAPROXY_HTTPS|haproxy|https://127.0.0.1:$HAPROXY_HTTPS/"
  "https-rps|ebb|$EBB_HTTPS|ebb|https://127.0.0.1:$EBB_HTTPS/"
)
for r in "${RUNS[@]}"; do
  IFS='|' read -r s n p g u <<< "$r"
  wait_port "$p" "$(pg_of "$g")" || { echo "protocols.sh: $n did not listen on $p; log:" >&2; tail -20 "$WORK/$g.log" >&2; exit 1; }
  # ebb answers once its target is routable; wait for a 200 (bounded)
  for _ in $(seq 1 $(( READY_TIMEOUT * 4 ))); do
    code=$(curl -sk -o /dev/null --max-time 2 -w '%{http_code}' "${u%/bulk}/" 2>/dev/null || echo 000)
    [ "$code" = 200 ] && break
    sleep 0.25
  done
  [ "$code" = 200 ] || { echo "protocols.sh: $n answered $code on $u; log:" >&2; tail -20 "$WORK/$g.log" >&2; exit 1; }
done
for port in $HAPROXY_HTTPS $EBB_HTTPS; do
  echo "# TLS on $port: $(echo | openssl s_client -connect 127.0.0.1:$port -servername bench.test 2>/dev/null | grep -E '^(New|Protocol|Cipher)' | tr -s ' ' | paste -sd' ')" >&2
done

# ---------- load ----------
HZ=$(getconf CLK_TCK)
RES="$WORK/results.tsv"
printf 'scenario\tpeer\tround\tvalue\tcpu_ticks\tops\terrors\tuser_ticks\n' > "$RES"
wants() { case " $ONLY " in *" $1 "*) return 0;; esac; return 1; }
wrk_run() {  # wrk_run FILE ARGS... ; prints "rps requests errors"
  local f=$1; shift
  $CPU_LOAD wrk -t1 -d"${DUR}s" --timeout 5s "$@" > "$f" 2>&1
  awk '/Requests\/sec:/ { rps=$2 } / requests in / { n=$1 }
       /Socket errors/ { gsub(/,/,""); e+=$4+$6+$8+$10 } /Non-2xx/ { e+=$NF }
       END { printf "%s %d %d\n", rps+0, n+0, e+0 }' "$f"
}
echo "# warm-up" >&2
for r in "${RUNS[@]}"; do
  IFS='|' read -r s n p g u <<< "$r"
  case $s in
    l4-rps|https-rps) $CPU_LOAD wrk -t1 -c64 -d2s "$u" > /dev/null 2>&1;;
    # The first bulk transfers of a run were slow whichever proxy carried them (HAProxy's, as rounds
    # go: about 270 MiB/s against about 1,200 after): one through each proxy first.
    bulk) wants bulk && $CPU_LOAD curl -s -o /dev/null --max-time 120 "$u";;
  esac
done
for round in $(seq 1 "$ROUNDS"); do
  for r in "${RUNS[@]}"; do
    IFS='|' read -r s n p g u <<< "$r"
    wants "$s" || continue
    pg=$(pg_of "$g"); f="$WORK/$s.$n.$round.txt"
    read -r t0 u0 <<< "$(grp_ticks "$pg")"
    case $s in
      l4-rps|https-rps) set -- $(wrk_run "$f" -c64 "$u"); value=$1; ops=$2; errors=$3;;
      tls-hs) set -- $(wrk_run "$f" -c16 -H 'Connection: close' "$u"); value=$1; ops=$2; errors=$3;;
      bulk)
        o=$($CPU_LOAD curl -s -o /dev/null --max-time 120 -w '%{speed_download} %{size_download} %{http_code}' "$u")
        set -- $o
        value=$(awk -v b="${1:-0}" 'BEGIN { printf "%.1f", b / 1048576 }'); ops=$BULK
        { [ "${3:-}" = 200 ] && [ "${2:-}" = $(( BULK * 1048576 )) ]; } && errors=0 || errors=1;;
    esac
    read -r t1 u1 <<< "$(grp_ticks "$pg")"
    kill -0 -- "-$pg" 2>/dev/null || { echo "protocols.sh: $n died; log:" >&2; tail -20 "$WORK/$g.log" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$n" "$round" "$value" $(( t1 - t0 )) "$ops" "$errors" $(( u1 - u0 )) >> "$RES"
    printf '  %-9s %-9s r=%s %s\n' "$s" "$n" "$round" "$value" >&2
  done
done

# ---------- table ----------
echo "# node $(node --version), $EBB_HOW, --workers 1; $(haproxy -v 2>/dev/null | head -1)"
node - "$RES" "$HZ" "$BULK" "$DUR" <<'EOF'
const fs = require('fs');
const [res, hz, bulk, dur] = process.argv.slice(2);
const rows = fs.readFileSync(res, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'))
  .map(([s, n, r, v, tk, ops, e, ut]) => ({ s, n, r: +r, v: +v, cpu: +tk / +hz, user: +ut / +hz, ops: +ops, e: +e }));
const med = (a) => { const x = [...a].sort((p, q) => p - q), m = x.length >> 1; return x.length % 2 ? x[m] : (x[m - 1] + x[m]) / 2; };
const unit = { 'l4-rps': 'req/s', bulk: 'MiB/s', 'tls-hs': 'handshakes/s', 'https-rps': 'req/s' };
const costUnit = { 'l4-rps': 'µs/req', bulk: 'CPU s/GiB', 'tls-hs': 'µs/handshake', 'https-rps': 'µs/req' };
const cost = (x, cpu = x.cpu) => (x.s === 'bulk' ? (cpu * 1024) / x.ops : (cpu * 1e6) / x.ops);
console.log(`| scenario | peer | median | min–max | proxy CPU | of it in user space | vs HAProxy (throughput) | vs HAProxy (CPU per op) | errors |`);
console.log('|---|---|---|---|---|---|---|---|---|');
const summary = [];
for (const s of [...new Set(rows.map((x) => x.s))]) {
  const h = rows.filter((x) => x.s === s && x.n === 'haproxy');
  for (const n of [...new Set(rows.filter((x) => x.s === s).map((x) => x.n))]) {
    const rs = rows.filter((x) => x.s === s && x.n === n);
    const ratio = med(rs.map((x) => x.v / (h.find((y) => y.r === x.r)?.v ?? NaN)));
    const cratio = med(rs.map((x) => cost(x) / cost(h.find((y) => y.r === x.r) ?? x)));
    const vs = rs.map((x) => x.v);
    console.log(`| ${s} | ${n} | ${med(vs).toFixed(0)} ${unit[s]} | ${Math.min(...vs).toFixed(0)}–${Math.max(...vs).toFixed(0)} | ${med(rs.map((x) => cost(x))).toFixed(s === 'bulk' ? 2 : 1)} ${costUnit[s]} | ${med(rs.map((x) => cost(x, x.user))).toFixed(s === 'bulk' ? 2 : 1)} | ${ratio.toFixed(2)} | ${cratio.toFixed(2)} | ${rs.reduce((a, x) => a + x.e, 0)} |`);
    if (n === 'ebb') summary.push(`${s}=${ratio.toFixed(2)}`);
  }
}
console.log(`\nebb/haproxy: ${summary.join(' ')}  (${rows.length ? Math.max(...rows.map((x) => x.r)) : 0} rounds of ${dur} s; bulk ${bulk} MiB)`);
const floor = rows.filter((x) => x.s === 'l4-rps' && x.n === 'node-floor');
const ebbL4 = rows.filter((x) => x.s === 'l4-rps' && x.n === 'ebb');
if (floor.length && ebbL4.length) {
  const vsFloor = med(ebbL4.map((x) => cost(x) / cost(floor.find((y) => y.r === x.r) ?? x)));
  const userVsFloor = med(ebbL4.map((x) => cost(x, x.user) / cost(floor.find((y) => y.r === x.r) ?? x, (floor.find((y) => y.r === x.r) ?? x).user)));
  console.log(`ebb/node-floor (l4-rps, CPU per request): ${vsFloor.toFixed(2)}, user space alone ${userVsFloor.toFixed(2)}: what ebb's TCP flows add to what Node itself costs per read and write`);
}
EOF
