#!/bin/sh
# The README's main job: a running certguard egress proxy on 127.0.0.1, in
# the shape an operator deploys: one proxy port for every client.
#
#   scripts/run.sh          start the demo (or reload it with a fresh
#                           configuration) and show what it allows and blocks
#   scripts/run.sh stop     stop it
#   scripts/run.sh status   is it running (exit 1 when not)
#
# Builds nothing: it needs build/ngx_http_certguard_module.so,
# build/ngx_stream_certguard_module.so (make) and Debian's stream module.
# Everything it writes is under $CERTGUARD_RUN_DIR (default
# /tmp/certguard-demo): demo certificates (pki/), nginx.conf, the proxy's
# user file (users: demo/demo), logs/ (error, access, cef.log, upstreams).
#
# One nginx (Debian's, with load_module) and one dnsmasq (the proxy's DNS):
#   127.0.0.1:$CERTGUARD_PROXY_PORT (3128)  the egress proxy, user demo,
#       password demo.  CONNECT for HTTPS: answered 200, then certguard
#       probes the destination with the client's ClientHello and scores
#       its certificate before the tunnel opens (a TLS alert when blocked;
#       403 at once for a destination already known to block).  Plain HTTP (GET http://...): handed to the HTTP side over
#       a unix socket with the PROXY protocol.  Both pass the destination
#       guards; CONNECT ports 443, 80, 8443 and 8444 only.
#   good.certguard.test  ($CERTGUARD_GOOD_ADDR, 127.0.0.2): plain HTTP on
#       port 80 and TLS on 8443, a certificate from the demo CA the proxy
#       trusts (added to the system bundle)
#   c2.certguard.test    ($CERTGUARD_C2_ADDR, 127.0.0.3): TLS on 8444,
#       Cobalt Strike's default certificate
#   dnsmasq on 127.0.0.1:$CERTGUARD_DNS_PORT (8053) answers both names and
#       forwards the others to the first nameserver of /etc/resolv.conf.
# CEF records go to logs/cef.log, or to syslog with CERTGUARD_SYSLOG.
#
# Environment: CERTGUARD_RUN_DIR, CERTGUARD_PROXY_PORT, CERTGUARD_DNS_PORT,
# CERTGUARD_GOOD_ADDR, CERTGUARD_C2_ADDR, CERTGUARD_GOOD_HTTP_PORT (80),
# CERTGUARD_GOOD_TLS_PORT (8443), CERTGUARD_C2_PORT (8444),
# CERTGUARD_MODULE, CERTGUARD_STREAM_MODULE, CERTGUARD_POLICY,
# CERTGUARD_SYSLOG (host:port), NGINX (default /usr/sbin/nginx).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
run=${CERTGUARD_RUN_DIR:-/tmp/certguard-demo}
proxy_port=${CERTGUARD_PROXY_PORT:-3128}
dns_port=${CERTGUARD_DNS_PORT:-8053}
good_addr=${CERTGUARD_GOOD_ADDR:-127.0.0.2}
c2_addr=${CERTGUARD_C2_ADDR:-127.0.0.3}
good_http=${CERTGUARD_GOOD_HTTP_PORT:-80}
good_tls=${CERTGUARD_GOOD_TLS_PORT:-8443}
c2_tls=${CERTGUARD_C2_PORT:-8444}
module=${CERTGUARD_MODULE:-$root/build/ngx_http_certguard_module.so}
stream_module=${CERTGUARD_STREAM_MODULE:-$root/build/ngx_stream_certguard_module.so}
debian_stream=/usr/lib/nginx/modules/ngx_stream_module.so
policy=${CERTGUARD_POLICY:-$root/policies/default.policy}
nginx=${NGINX:-/usr/sbin/nginx}
dnsmasq=${DNSMASQ:-/usr/sbin/dnsmasq}
pidfile=$run/nginx.pid
dns_pidfile=$run/dnsmasq.pid

die() {
    echo "run.sh: $*" >&2
    exit 1
}

running() {
    [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

stop_pid() {
    pid=$(cat "$1" 2>/dev/null) || return 0
    [ -n "$pid" ] || return 0
    kill -"$2" "$pid" 2>/dev/null || { rm -f "$1"; return 0; }

    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && { kill -KILL "$pid" 2>/dev/null || true; break; }
        sleep 0.1
    done

    rm -f "$1"
}

stop() {
    stop_pid "$dns_pidfile" TERM

    if ! running; then
        echo "certguard demo: not running"
        return 0
    fi

    pid=$(cat "$pidfile")
    stop_pid "$pidfile" QUIT
    echo "certguard demo: stopped (nginx $pid)"
}

certs() {
    d=$run/pki
    mkdir -p "$d"
    [ -s "$d/c2.crt" ] && [ -s "$d/good.chain.pem" ] && [ -e "$d/v3" ] \
        && return 0

    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 3650 \
        -subj "/O=certguard demo/CN=certguard demo CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -keyout "$d/good.key" \
        -out "$d/good.csr" -subj "/CN=good.certguard.test" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" \
        "subjectAltName=DNS:good.certguard.test" > "$d/good.ext"
    printf '%s\n' "[ca]" "default_ca = demo" "[demo]" "dir = $d" \
        "database = $d/index.txt" "new_certs_dir = $d" "serial = $d/serial" \
        "default_md = sha256" "policy = demo_policy" "[demo_policy]" \
        "commonName = supplied" > "$d/ca.cnf"
    : > "$d/index.txt"
    openssl rand -hex 16 > "$d/serial"
    openssl ca -batch -notext -config "$d/ca.cnf" -in "$d/good.csr" \
        -cert "$d/ca.crt" -keyfile "$d/ca.key" -extfile "$d/good.ext" \
        -startdate "$(date -u -d '-10 days' +%Y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d '+80 days' +%Y%m%d%H%M%SZ)" \
        -out "$d/good.crt" 2>/dev/null
    cat "$d/good.crt" > "$d/good.chain.pem"

    # what Cobalt Strike's teamserver ships (C=Earth left out: openssl
    # refuses a country that is not two letters)
    cs="/ST=Cyberspace/L=Somewhere/O=cobaltstrike/OU=AdvancedPenTesting"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/c2.key" \
        -out "$d/c2.crt" -days 3650 -subj "$cs/CN=Major Cobalt Strike" \
        -addext "subjectAltName=DNS:c2.certguard.test" 2>/dev/null
    : > "$d/v3"
}

# demo/demo, in a format auth_basic_user_file reads
users() {
    [ -s "$run/users" ] && return 0
    printf 'demo:%s\n' "$(openssl passwd -apr1 demo)" > "$run/users"
}

dns() {
    ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf \
         2>/dev/null || true)

    stop_pid "$dns_pidfile" TERM

    [ -x "$dnsmasq" ] || die "no $dnsmasq (run scripts/deps.sh)"

    # the demo names, and every other name from the system's nameserver
    "$dnsmasq" --port="$dns_port" --listen-address=127.0.0.1 \
        --bind-interfaces --no-hosts --no-resolv --no-poll \
        --user=root --pid-file="$dns_pidfile" \
        --log-facility="$run/logs/dnsmasq.log" \
        --address="/good.certguard.test/$good_addr" \
        --address="/c2.certguard.test/$c2_addr" \
        ${ns:+--server="$ns"} \
        || die "dnsmasq did not start: see $run/logs/dnsmasq.log"
}

config() {
    if [ -n "${CERTGUARD_SYSLOG:-}" ]; then
        cef_log="syslog:server=$CERTGUARD_SYSLOG,tag=certguard"
    else
        cef_log="$run/logs/cef.log"
    fi

    user=""
    [ "$(id -u)" = 0 ] && user="user root;"

    sock="unix:$run/http.sock"

    cat > "$run/nginx.conf" <<EOF
load_module $module;
load_module $debian_stream;
load_module $stream_module;
$user
worker_processes 2;
pid $pidfile;
error_log $run/logs/error.log notice;

events {
    worker_connections 1024;
}

http {
    log_format certguard '\$remote_addr \$certguard_user [\$time_local] '
                         '"\$request" \$status';
    access_log $run/logs/access.log certguard;

    client_body_temp_path $run/tmp/body;
    proxy_temp_path $run/tmp/proxy;
    fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi;
    scgi_temp_path $run/tmp/scgi;

    # plain HTTP requests, handed over by the proxy port below
    server {
        listen $sock proxy_protocol;
        set_real_ip_from unix:;
        real_ip_header proxy_protocol;

        resolver 127.0.0.1:$dns_port ipv6=off valid=60s;
        resolver_timeout 5s;

        certguard_policy $policy;
        certguard_log $cef_log;
        certguard_proxy_auth "certguard demo";
        certguard_proxy_auth_user_file $run/users;
        certguard_allow $good_addr $c2_addr;
        certguard_http_ports 80 443 $good_http;

        location / {
            include $root/conf/forward-proxy.conf;
        }
    }

    server {
        listen $good_addr:$good_http;
        access_log $run/logs/good-upstream.log;
        location / {
            return 200 "hello from good.certguard.test\n";
        }
    }

    server {
        listen $good_addr:$good_tls ssl;
        ssl_certificate $run/pki/good.chain.pem;
        ssl_certificate_key $run/pki/good.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log $run/logs/good-upstream.log;
        location / {
            return 200 "hello from good.certguard.test over TLS\n";
        }
    }

    server {
        listen $c2_addr:$c2_tls ssl;
        ssl_certificate $run/pki/c2.crt;
        ssl_certificate_key $run/pki/c2.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log $run/logs/c2-upstream.log;
        location / {
            return 200 "beacon tasking from c2.certguard.test\n";
        }
    }
}

stream {
    log_format certguard '\$remote_addr \$certguard_user [\$time_local] '
                         '\$status upstream=\$certguard_upstream '
                         'certguard=\$certguard_verdict '
                         'score=\$certguard_score '
                         'signals=\$certguard_signals';
    access_log $run/logs/connect.log certguard;

    resolver 127.0.0.1:$dns_port ipv6=off valid=60s;
    resolver_timeout 5s;

    # what each destination showed before (cert_changed, first_seen)
    certguard_memory $run/memory;

    # the one proxy port: CONNECT here, plain HTTP to the server above
    server {
        listen 127.0.0.1:$proxy_port;

        certguard_connect on;
        certguard_http_pass $sock;
        certguard_policy $policy;
        certguard_trusted_certificate $run/pki/ca.crt;
        certguard_cache zone=certguard_stream:10m valid=10m;
        certguard_log $cef_log min_verdict=tag;
        certguard_proxy_auth "certguard demo";
        certguard_proxy_auth_user_file $run/users;
        certguard_allow $good_addr $c2_addr;
        certguard_connect_ports 443 $good_http $good_tls $c2_tls;
        certguard_capture $run/capture;       # for certguard diff / report
        # one client flooding new names must not take the worker from the
        # others (docs/directives.md); generous for clients behind NAT
        certguard_probe_limit 16 rate=50;

        proxy_pass \$certguard_upstream;
    }
}
EOF
}

show() {
    printf '\n$ %s\n' "$*"
    "$@" 2>&1 | sed 's/\r$//' \
        | grep -Ei '^(HTTP/|hello|beacon|certguard|curl:|Proxy-Auth)' || true
}

tour() {
    command -v curl >/dev/null || return 0

    p="http://demo:demo@127.0.0.1:$proxy_port"
    hp() { [ "$1" = 80 ] || printf ':%s' "$1"; }

    show curl -si --max-time 10 -x "$p" \
        "http://good.certguard.test$(hp "$good_http")/"
    show curl -s --max-time 10 -x "$p" --cacert "$run/pki/ca.crt" \
        "https://good.certguard.test:$good_tls/"
    # first probed: 200, then a TLS alert; known from then on: 403
    show curl -sS --max-time 10 -x "$p" -k \
        "https://c2.certguard.test:$c2_tls/"
    show curl -sS --max-time 10 -x "$p" -k \
        "https://c2.certguard.test:$c2_tls/"
    printf '(%s)\n' "$(tail -n 1 "$run/logs/connect.log" 2>/dev/null)"
    show curl -si --max-time 10 -x "http://127.0.0.1:$proxy_port" \
        "http://good.certguard.test$(hp "$good_http")/"
}

start() {
    [ -x "$nginx" ] || die "no $nginx (run scripts/deps.sh)"
    [ -r "$module" ] || die "no $module: run 'make' first"
    [ -r "$stream_module" ] || die "no $stream_module: run 'make' first"
    [ -r "$debian_stream" ] || die "no $debian_stream (run scripts/deps.sh)"
    [ -r "$policy" ] || die "no policy $policy"

    mkdir -p "$run/logs" "$run/tmp"
    certs
    users
    dns
    config

    if ! out=$("$nginx" -t -q -p "$run/" -c "$run/nginx.conf" \
               -e "$run/logs/error.log" 2>&1); then
        echo "$out" >&2
        die "the generated configuration does not load"
    fi

    if running; then
        kill -HUP "$(cat "$pidfile")"
        echo "certguard demo: reloaded (nginx $(cat "$pidfile"))"
        sleep 0.5
    else
        rm -f "$run/http.sock"
        "$nginx" -p "$run/" -c "$run/nginx.conf" -e "$run/logs/error.log" \
            || die "nginx did not start: see $run/logs/error.log"
        i=0
        until curl -s -o /dev/null --max-time 1 \
              "http://127.0.0.1:$proxy_port/" 2>/dev/null; do
            i=$((i + 1))
            [ $i -gt 50 ] && die "nothing listens on 127.0.0.1:$proxy_port"
            sleep 0.1
        done
        echo "certguard demo: running (nginx $(cat "$pidfile"))"
    fi

    proxy="http://demo:demo@127.0.0.1:$proxy_port"
    cef=${CERTGUARD_SYSLOG:+syslog:$CERTGUARD_SYSLOG}
    cat <<EOF

egress proxy  127.0.0.1:$proxy_port, user demo, password demo (policy $policy)
allowed       curl -x $proxy http://good.certguard.test/
allowed       curl -x $proxy --cacert $run/pki/ca.crt https://good.certguard.test:$good_tls/
blocked       curl -x $proxy -k https://c2.certguard.test:$c2_tls/   (a TLS alert, then 403)
CEF records   ${cef:-$run/logs/cef.log}
access logs   $run/logs/access.log (plain HTTP), $run/logs/connect.log (CONNECT)
error log     $run/logs/error.log
stop          scripts/run.sh stop
EOF

    tour
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status)
        if running; then
            echo "certguard demo: running (nginx $(cat "$pidfile"))"
        else
            echo "certguard demo: not running"
            exit 1
        fi
        ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
