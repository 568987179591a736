#!/usr/bin/env bash
# HTTP module: nginx + certguard against the same nginx without the module,
# every request a full upstream TLS handshake (no upstream keepalive, no
# session reuse, the upstream keeps no session cache and sends no tickets).
#
#   plain  nginx proxying to a TLS upstream, module not loaded
#   cold   module loaded, certguard on, enforce, policies/default.policy,
#          no certguard_cache: every handshake is scored by the engine
#   warm   the same with certguard_cache zone=...: every handshake is a hit
#   mem    cold plus certguard_memory: every handshake is scored with a
#          lookup in the certificate memory and queues its sighting (a cache
#          hit never touches the memory, so warm is warm with one too)
#   nomemo cold with certguard_verify_memo off: every signature of the
#          chain checked on every handshake (and twice with VERIFY=on), as
#          before the memo of verified signatures
#
# Rows: the upstream presents an ECDSA P-256 chain (leaf + intermediate under
# a local root that certguard_trusted_certificate trusts), and an RSA 2048
# chain of the same shape.  Rows ecdsa-new and rsa-new: a new leaf on every
# handshake under the same intermediate (the real-world cold path): NEW_N
# leaves from bench/leaves.c, each in its own upstream server block (loaded
# at start, so the upstream's handshake costs what the other rows' does),
# picked by SNI; wrk asks /ROW-new/I with I counting on from one wrk run to
# the next and wrapping at NEW_N.  The leaves come again every NEW_N
# requests, so the proxies with a memo get certguard_verify_memo
# size=32k when a *-new row runs: about 640 keys in 4-way buckets, which
# the cycle of NEW_N (4000) leaves flushes before any leaf comes back,
# while the intermediate, a hit on every handshake, stays (the same-leaf
# rows hit as with any size).  The memo's hits and misses per run are
# printed after it (from certguard_status): one of each a request.  Warm and mem are not run for them (a new leaf is
# always a cache miss).  The proxy (worker_processes 1) runs on CPU
# $PROXY_CPU, the upstream nginx (worker_processes 1) and wrk on $CLIENT_CPU.
# For each row and configuration, REPS times, interleaved:
#   wrk -t1 -c1   for DUR1 s: latency of one request at a time (no queueing)
#   wrk -t1 -cC   for DUR s:  throughput, and the CPU time of the proxy
#                 worker per request (from /proc/PID/stat)
# Prints one raw line per measurement, then a summary of medians.
#
#   bench/http.sh [REPS] [DUR] [CONNS]      (defaults 3, 10, 16)
#   env: DUR1 (5), ROWS ("ecdsa rsa ecdsa-new rsa-new"),
#        CONFIGS ("plain cold warm mem nomemo"), NEW_N (4000),
#        PROXY_CPU (0), CLIENT_CPU (1),
#        VERIFY (off; on: proxy_ssl_verify on with the bench roots as
#        proxy_ssl_trusted_certificate, in all three configurations),
#        CERTGUARD_BUILD (build/), BENCH_DIR (a new /tmp directory)

set -euo pipefail

reps=${1:-3}
dur=${2:-10}
conns=${3:-16}
dur1=${DUR1:-5}
rows=${ROWS:-ecdsa rsa ecdsa-new rsa-new}
new_n=${NEW_N:-4000}
proxy_cpu=${PROXY_CPU:-0}
client_cpu=${CLIENT_CPU:-1}

top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${CERTGUARD_BUILD:-$top/build}" && pwd)
module=$build/ngx_http_certguard_module.so
policy=$top/policies/default.policy
work=${BENCH_DIR:-$(mktemp -d /tmp/certguard-bench-http-XXXXXX)}

. "$top/bench/lib.sh"

[ -f "$module" ] || { echo "no $module: run make" >&2; exit 2; }
command -v wrk >/dev/null || { echo "no wrk: scripts/deps.sh --bench" >&2;
                               exit 2; }

cleanup() {
    for d in "$work"/up "$work"/plain "$work"/cold "$work"/warm "$work"/mem \
             "$work"/nomemo; do
        [ -d "$d" ] && nginx_stop "$d"
    done
    return 0
}
trap cleanup EXIT

mkdir -p "$work"
chmod 755 "$work"
cd "$work"


# mkchain TYPE: TYPE/root.pem (trust anchor), TYPE/chain.pem (leaf and
# intermediate, as the upstream sends them), TYPE/leaf.key.  The leaf is a
# normal 90-day server certificate issued ten days ago, so the default
# policy allows it with score 0.
mkchain() {
    local t=$1 newkey
    case $t in
        ecdsa) newkey="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1" ;;
        rsa) newkey="-newkey rsa:2048" ;;
    esac
    [ -s "$t/chain.pem" ] && return 0
    mkdir -p "$t"

    openssl req -x509 $newkey -nodes -keyout "$t/root.key" \
        -out "$t/root.pem" -days 3650 -subj "/O=certguard bench/CN=bench root $t" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new $newkey -nodes -keyout "$t/int.key" -out "$t/int.csr" \
        -subj "/O=certguard bench/CN=bench intermediate $t" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" \
        "keyUsage=critical,keyCertSign,cRLSign" > "$t/int.ext"
    openssl x509 -req -in "$t/int.csr" -CA "$t/root.pem" -CAkey "$t/root.key" \
        -set_serial 2 -days 1825 -extfile "$t/int.ext" -out "$t/int.pem" \
        2>/dev/null

    openssl req -new $newkey -nodes -keyout "$t/leaf.key" -out "$t/leaf.csr" \
        -subj "/CN=bench.certguard.test" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:bench.certguard.test" > "$t/leaf.ext"
    printf '%s\n' "[ca]" "default_ca = bench" "[bench]" "dir = $work/$t" \
        "database = $work/$t/index.txt" "new_certs_dir = $work/$t" \
        "serial = $work/$t/serial" "default_md = sha256" \
        "policy = bench_policy" "[bench_policy]" "commonName = supplied" \
        > "$t/ca.cnf"
    : > "$t/index.txt"
    openssl rand -hex 16 > "$t/serial"
    openssl ca -batch -notext -config "$t/ca.cnf" -in "$t/leaf.csr" \
        -cert "$t/int.pem" -keyfile "$t/int.key" -extfile "$t/leaf.ext" \
        -startdate "$(date -u -d '-10 days' +%Y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d '+80 days' +%Y%m%d%H%M%SZ)" \
        -out "$t/leaf.pem" 2>/dev/null
    cat "$t/leaf.pem" "$t/int.pem" > "$t/chain.pem"
}

for t in ecdsa rsa; do
    mkchain $t
done
cat ecdsa/root.pem rsa/root.pem > trust.pem

# the leaves of the *-new rows, when a row asks for them
case " $rows " in
    *-new*)
        cc -O2 -std=c11 -o leaves "$top/bench/leaves.c" -lcrypto
        for t in ecdsa rsa; do
            case " $rows " in *" $t-new "*) ;; *) continue ;; esac
            mkdir -p "$t/leaves"
            if [ ! -s "$t/leaves/n$new_n.$t.bench.certguard.test.pem" ]; then
                echo "# generating $new_n $t leaves ..." >&2
                ./leaves "$t/int.pem" "$t/int.key" "$t/leaf.key" \
                    "$t.bench.certguard.test" "$new_n" "$t/leaves"
            fi
        done
        ;;
esac

cat > new.lua <<'LUA'
-- PREFIX..I for I = START+1, START+2, ... (wrapping at N): a new name, so
-- a new leaf, on every request
local prefix, i, n = "/", 0, 1
function init(args)
    prefix, i, n = args[1], tonumber(args[2]), tonumber(args[3])
end
function request()
    i = i + 1
    if i > n then i = 1 end
    return wrk.format("GET", prefix .. i)
end
LUA

up_ecdsa=$(free_port)
up_rsa=$(free_port)
up_new_ecdsa=$(free_port)
up_new_rsa=$(free_port)
px=$(free_port)
st=$(free_port)

user=""
[ "$(id -u)" = 0 ] && user="user root;"


# --- the upstream: nginx itself, a small body, no session resumption -----

# new_servers T PORT: a server block for each leaf of row T-new (if it runs)
new_servers() {
    local t=$1 port=$2 i
    case " $rows " in *" $t-new "*) ;; *) return 0 ;; esac
    for i in $(seq 1 "$new_n"); do
        printf '    server { listen 127.0.0.1:%s ssl; server_name %s; %s %s %s }\n' \
            "$port" "n$i.$t.bench.certguard.test" \
            "ssl_certificate $work/$t/leaves/n$i.$t.bench.certguard.test.pem;" \
            "ssl_certificate_key $work/$t/leaf.key;" \
            'location / { return 200 "hello from the bench upstream\n"; }'
    done
}

mkdir -p up
cat > up/nginx.conf <<EOF
$user
worker_processes 1;
pid $work/up/nginx.pid;
error_log $work/up/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/up;
    ssl_session_cache off;
    ssl_session_tickets off;
    ssl_protocols TLSv1.2 TLSv1.3;
    server_names_hash_max_size 16384;
    server {
        listen 127.0.0.1:$up_ecdsa ssl;
        ssl_certificate $work/ecdsa/chain.pem;
        ssl_certificate_key $work/ecdsa/leaf.key;
        location / { return 200 "hello from the bench upstream\n"; }
    }
    server {
        listen 127.0.0.1:$up_rsa ssl;
        ssl_certificate $work/rsa/chain.pem;
        ssl_certificate_key $work/rsa/leaf.key;
        location / { return 200 "hello from the bench upstream\n"; }
    }
$(new_servers ecdsa "$up_new_ecdsa")
$(new_servers rsa "$up_new_rsa")
}
EOF


# --- the proxy, in three configurations ------------------------------------

# proxy_conf NAME LOAD CERTGUARD [HTTP]: one proxy configuration (HTTP:
# lines for the http{} block).  Location /ecdsa/ and /rsa/ go to the two
# upstreams; /check/ROW/ adds the verdict headers (used once before
# measuring, never measured).
proxy_conf() {
    local name=$1 load=$2 cg=$3 main=${4:-} check="" status=""
    mkdir -p "$name"
    if [ -n "$cg" ]; then
        check='add_header X-Certguard "$certguard_verdict $certguard_cache $certguard_score" always;'
        status="server {
        listen 127.0.0.1:$st;
        location = /metrics { certguard_status; }
    }"
    fi
    cat > "$name/nginx.conf" <<EOF
$load
$user
worker_processes 1;
pid $work/$name/nginx.pid;
error_log $work/$name/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/$name;
    proxy_temp_path $work/$name;
    $main

    upstream bench.certguard.test { server 127.0.0.1:$up_ecdsa; }
    upstream bench-rsa.certguard.test { server 127.0.0.1:$up_rsa; }
    upstream bench-new-ecdsa { server 127.0.0.1:$up_new_ecdsa; }
    upstream bench-new-rsa { server 127.0.0.1:$up_new_rsa; }
    $status

    server {
        listen 127.0.0.1:$px backlog=4096;
        $cg

        proxy_ssl_session_reuse off;
        proxy_ssl_server_name on;
        proxy_ssl_name bench.certguard.test;
        proxy_ssl_protocols TLSv1.2 TLSv1.3;
        $verify

        location /ecdsa/ { proxy_pass https://bench.certguard.test/; }
        location /rsa/ { proxy_pass https://bench-rsa.certguard.test/; }
        location /check/ecdsa/ {
            proxy_pass https://bench.certguard.test/;
            $check
        }
        location /check/rsa/ {
            proxy_pass https://bench-rsa.certguard.test/;
            $check
        }
        location ~ ^/ecdsa-new/(\d+)$ {
            proxy_ssl_name n\$1.ecdsa.bench.certguard.test;
            proxy_pass https://bench-new-ecdsa;
        }
        location ~ ^/rsa-new/(\d+)$ {
            proxy_ssl_name n\$1.rsa.bench.certguard.test;
            proxy_pass https://bench-new-rsa;
        }
        location ~ ^/check/ecdsa-new/(\d+)$ {
            proxy_ssl_name n\$1.ecdsa.bench.certguard.test;
            proxy_pass https://bench-new-ecdsa;
            $check
        }
        location ~ ^/check/rsa-new/(\d+)$ {
            proxy_ssl_name n\$1.rsa.bench.certguard.test;
            proxy_pass https://bench-new-rsa;
            $check
        }
    }
}
EOF
}

verify=""
if [ "${VERIFY:-off}" = on ]; then
    verify="proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $work/trust.pem;"
fi

cg="certguard on;
        certguard_mode enforce;
        certguard_policy $policy;
        certguard_trusted_certificate $work/trust.pem;"

# the smallest memo, which the cycle of new leaves flushes (see the top)
memo=""
case " $rows " in *-new*) memo="certguard_verify_memo size=32k;" ;; esac

proxy_conf plain "" ""
proxy_conf cold "load_module $module;" "$cg" "$memo"
proxy_conf warm "load_module $module;" "$cg
        certguard_cache zone=bench:4m valid=1h;" "$memo"
proxy_conf mem "load_module $module;" "$cg" \
    "certguard_memory $work/mem/memory; $memo"
proxy_conf nomemo "load_module $module;" "$cg" "certguard_verify_memo off;"

configs=${CONFIGS:-plain cold warm mem nomemo}

for c in up $configs; do
    "$nginx_bin" -t -q -p "$work/$c/" -c "$work/$c/nginx.conf" \
        -e "$work/$c/error.log" || { echo "bad config: $c" >&2; exit 1; }
done

nginx_start "$client_cpu" "$work/up" "$work/up/nginx.conf"
wait_port "$up_ecdsa"


# wrk_run CONNS DUR URL [LUA ARGS...]: wrk on the client CPU; prints
# "rps p50_ms p99_ms requests"; fails on errors or non-2xx responses.
wrk_run() {
    local out c=$1 d=$2 u=$3 script
    shift 3
    if [ $# -gt 0 ]; then
        script=$1
        shift
        set -- -s "$script" "$u" -- "$@"
    else
        set -- "$u"
    fi
    out=$(taskset -c "$client_cpu" wrk -t1 -c"$c" -d"$d"s --latency "$@")
    if echo "$out" | grep -Eq 'Non-2xx|Socket errors'; then
        echo "$out" >&2
        echo "wrk: errors against $3" >&2
        return 1
    fi
    echo "$out" | perl -ne '
        sub ms { my ($v, $u) = @_; $u eq "us" ? $v / 1e3 :
                 $u eq "ms" ? $v : $u eq "s" ? $v * 1e3 : $v * 6e4 }
        $rps = $1 if /^Requests\/sec:\s+([\d.]+)/;
        $p50 = ms($1, $2) if /^\s+50%\s+([\d.]+)(us|ms|s|m)/;
        $p99 = ms($1, $2) if /^\s+99%\s+([\d.]+)(us|ms|s|m)/;
        $n = $1 if /^\s+(\d+) requests in/;
        BEGIN { $rps = $p50 = $p99 = $n = 0 }
        END { printf "%.1f %.3f %.3f %d\n", $rps, $p50, $p99, $n }'
}


# metrics_memo CFG: "hits misses" of the memo (certguard_status), or ""
metrics_memo() {
    [ "$1" = plain ] && return 0
    curl -s "http://127.0.0.1:$st/metrics" | perl -ne '
        $h = $1 if /^certguard_verify_memo_hits_total\{module="http"\} (\d+)/;
        $m = $1 if /^certguard_verify_memo_misses_total\{module="http"\} (\d+)/;
        END { print "$h $m\n" if defined $h }'
}


# lua_args: for a *-new row, the script, its prefix, where its count
# starts (the requests so far in this proxy run) and the leaves there are
lua_args() {
    [ ${#lua[@]} -gt 0 ] && echo "${lua[*]} $next $new_n"
    return 0
}


hz=$(getconf CLK_TCK)
raw=$work/raw.txt
: > "$raw"

echo "# proxy on CPU $proxy_cpu; upstream nginx and wrk on CPU $client_cpu; proxy_ssl_verify ${VERIFY:-off}"
echo "# wrk -t1 -c1 -d${dur1}s (latency) and -t1 -c$conns -d${dur}s (throughput), $reps reps"
echo "# row cfg rep | c1: rps p50 p99 (ms) | c$conns: rps p50 p99 (ms) | proxy worker CPU us/req, upstream worker CPU us/req"

for rep in $(seq 1 "$reps"); do
    for row in $rows; do
        for cfg in $configs; do
            case $row/$cfg in *-new/warm|*-new/mem) continue ;; esac
            nginx_start "$proxy_cpu" "$work/$cfg" "$work/$cfg/nginx.conf"
            wait_port "$px"
            base=http://127.0.0.1:$px
            lua=()
            next=0
            case $row in *-new) lua=(new.lua "/$row/") ;; esac

            if [ "$cfg" != plain ]; then
                # the upstream's certificate is allowed, and the cache
                # behaves as configured (HIT on the second request)
                path=$row/
                case $row in *-new) path=$row/$new_n ;; esac
                curl -s -o /dev/null "$base/check/$path"
                h=$(curl -s -D - -o /dev/null "$base/check/$path" \
                    | sed -n 's/^X-Certguard: //Ip' | tr -d '\r')
                want="BYPASS"
                [ $cfg = warm ] && want="HIT"
                case "$h" in
                    "allow $want "*) ;;
                    *) echo "unexpected verdict on $row/$cfg: '$h'" >&2
                       exit 1 ;;
                esac
            fi

            url=$base/$row/
            m0=$(metrics_memo "$cfg")
            warm=$(wrk_run 8 2 "$url" $(lua_args))      # warm up
            set -- $warm
            next=$((next + $4))

            one=$(wrk_run 1 "$dur1" "$url" $(lua_args))
            set -- $one
            next=$((next + $4))

            w=$(nginx_workers "$work/$cfg")
            u=$(nginx_workers "$work/up")
            t0=$(cpu_ticks $w)
            tu0=$(cpu_ticks $u)
            many=$(wrk_run "$conns" "$dur" "$url" $(lua_args))
            t1=$(cpu_ticks $w)
            tu1=$(cpu_ticks $u)
            set -- $many
            next=$((next + $4))

            m1=$(metrics_memo "$cfg")
            if [ -n "$m1" ]; then
                set -- $m0 $m1
                wrap=""
                [ ${#lua[@]} -gt 0 ] && [ "$next" -gt "$new_n" ] \
                    && wrap=" (leaves came again after NEW_N: misses count those new to the memo)"
                echo "# memo $row $cfg $rep: $(($3 - $1)) hits, $(($4 - $2)) misses, $next requests$wrap"
            fi

            nginx_stop "$work/$cfg"

            set -- $many
            line=$(printf '%s %s %s | %s | %s | %.1f %.1f' "$row" "$cfg" \
                "$rep" "$(echo "$one" | cut -d' ' -f1-3)" \
                "$(echo "$many" | cut -d' ' -f1-3)" \
                "$(echo "($t1 - $t0) * 1000000 / $hz / $4" | bc -l)" \
                "$(echo "($tu1 - $tu0) * 1000000 / $hz / $4" | bc -l)")
            echo "$line"
            echo "$line" >> "$raw"
        done
    done
done

echo
echo "# medians over $reps runs; ratio = rps / plain rps; +p50/+p99 = added"
echo "# latency against plain (ms); cpu = proxy worker CPU per request (us);"
echo "# busy = share of its CPU the proxy worker used at c$conns (cpu x rps)"

perl -e '
    my (%v, @order);
    while (<>) {
        s/\|//g;
        my ($row, $cfg, $rep, @f) = split;
        push @order, "$row $cfg" unless $v{"$row $cfg"};
        push @{$v{"$row $cfg"}[$_]}, $f[$_] for 0 .. $#f;
    }
    sub med { my @s = sort { $a <=> $b } @_; my $n = @s;
              $n % 2 ? $s[$n / 2] : ($s[$n / 2 - 1] + $s[$n / 2]) / 2 }
    my %m;
    for my $k (@order) { $m{$k} = [ map { med(@$_) } @{$v{$k}} ] }
    printf "%-6s %-5s | %8s %7s %7s %7s | %8s %6s %7s %7s %7s %7s | %7s %7s %5s\n",
        qw(row cfg c1_rps c1_p50 c1_p99 +p50), "c'"$conns"'_rps", qw(ratio
        p50 p99 +p50 +p99 cpu_us +cpu_us busy);
    for my $k (@order) {
        my ($row) = split / /, $k;
        my $p = $m{"$row plain"};
        my $x = $m{$k};
        printf "%-6s %-5s | %8.0f %7.3f %7.3f %+7.3f | %8.0f %6.3f %7.3f %7.3f %+7.3f %+7.3f | %7.1f %+7.1f %5.2f\n",
            split(/ /, $k), $x->[0], $x->[1], $x->[2], $x->[1] - $p->[1],
            $x->[3], $x->[3] / $p->[3], $x->[4], $x->[5],
            $x->[4] - $p->[4], $x->[5] - $p->[5], $x->[6], $x->[6] - $p->[6], $x->[6] * $x->[3] / 1e6;
    }
' "$raw"
