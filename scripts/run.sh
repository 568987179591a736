#!/bin/sh
# The README's main job: a running certguard egress proxy on 127.0.0.1.
#
#   scripts/run.sh          start the demo (or reload it with a fresh
#                           configuration) and show what it allows and blocks
#   scripts/run.sh stop     stop it
#   scripts/run.sh status   is it running (exit 1 when not)
#
# Builds nothing: it needs build/ngx_http_certguard_module.so and, for the
# CONNECT proxy, build/ngx_stream_certguard_module.so and Debian's stream
# module (make; without them the HTTP proxy runs alone).  It writes
# everything under $CERTGUARD_RUN_DIR (default /tmp/certguard-demo): demo
# certificates (pki/), nginx.conf, trust.pem, logs/ (error, access,
# connect, cef, upstream logs).  One nginx (Debian's, with load_module)
# serves, all on 127.0.0.1 and scored with policies/default.policy:
#   $CERTGUARD_PORT (default 8080)  an HTTP proxy: clients send absolute
#       http:// URLs, nginx fetches them over TLS and certguard scores the
#       destination's certificate (blocked: 403; verdict headers)
#   $CERTGUARD_CONNECT_PORT (default 3128)  a CONNECT proxy for HTTPS
#       (HTTPS_PROXY): certguard probes the destination's certificate
#       before it opens the tunnel
#   two demo TLS upstreams, reachable by name through the HTTP proxy and by
#   127.0.0.1:PORT through the CONNECT proxy:
#       good.certguard.test  PORT+363 (8443): a leaf from a demo CA the
#                            proxy trusts
#       c2.certguard.test    PORT+364 (8444): self-signed, Cobalt Strike's
#                            default subject
# Other names are resolved with the first nameserver of /etc/resolv.conf.
# CEF records go to logs/cef.log, or to syslog with CERTGUARD_SYSLOG.
#
# Environment: CERTGUARD_RUN_DIR, CERTGUARD_PORT, CERTGUARD_CONNECT_PORT,
# CERTGUARD_MODULE, CERTGUARD_STREAM_MODULE, CERTGUARD_POLICY,
# CERTGUARD_SYSLOG (host:port), NGINX (default /usr/sbin/nginx).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
run=${CERTGUARD_RUN_DIR:-/tmp/certguard-demo}
port=${CERTGUARD_PORT:-8080}
good_port=$((port + 363))       # 8443 with the default port
c2_port=$((port + 364))         # 8444
connect_port=${CERTGUARD_CONNECT_PORT:-3128}
module=${CERTGUARD_MODULE:-$root/build/ngx_http_certguard_module.so}
stream_module=${CERTGUARD_STREAM_MODULE:-$root/build/ngx_stream_certguard_module.so}
debian_stream=/usr/lib/nginx/modules/ngx_stream_module.so
policy=${CERTGUARD_POLICY:-$root/policies/default.policy}
nginx=${NGINX:-/usr/sbin/nginx}
pidfile=$run/nginx.pid

die() {
    echo "run.sh: $*" >&2
    exit 1
}

running() {
    [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

stop() {
    if ! running; then
        echo "certguard demo: not running"
        return 0
    fi

    pid=$(cat "$pidfile")
    kill -QUIT "$pid"

    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && { kill -KILL "$pid" 2>/dev/null || true; break; }
        sleep 0.1
    done

    rm -f "$pidfile"
    echo "certguard demo: stopped (nginx $pid)"
}

certs() {
    d=$run/pki
    mkdir -p "$d"
    # v2: the leaves also name 127.0.0.1, for the CONNECT demo
    [ -s "$d/c2.crt" ] && [ -s "$d/good.chain.pem" ] && [ -e "$d/v2" ] \
        && return 0

    # a demo CA and a leaf for good.certguard.test (90 days)
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
        "subjectAltName=DNS:good.certguard.test,IP:127.0.0.1" > "$d/good.ext"
    # issued ten days ago (openssl ca can backdate, openssl x509 cannot),
    # so the demo's good certificate is not "issued_recently"
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

    # what a Cobalt Strike team server presents out of the box: self-signed,
    # ten years, the default keystore's subject
    cs="/ST=Cyberspace/L=Somewhere/O=cobaltstrike/OU=AdvancedPenTesting"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/c2.key" \
        -out "$d/c2.crt" -days 3650 -subj "$cs/CN=Major Cobalt Strike" \
        -addext "subjectAltName=DNS:c2.certguard.test" 2>/dev/null
    : > "$d/v2"
}

config() {
    ns=$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf \
         2>/dev/null || true)
    case "$ns" in
        *:*) ns="[$ns]" ;;
    esac

    bundle=/etc/ssl/certs/ca-certificates.crt
    : > "$run/trust.pem"
    [ -r "$bundle" ] && cat "$bundle" >> "$run/trust.pem"
    cat "$run/pki/ca.crt" >> "$run/trust.pem"

    if [ -n "${CERTGUARD_SYSLOG:-}" ]; then
        cef_log="syslog:server=$CERTGUARD_SYSLOG,tag=certguard"
    else
        cef_log="$run/logs/cef.log"
    fi

    user=""
    [ "$(id -u)" = 0 ] && user="user root;"

    # the CONNECT proxy needs Debian's stream module and ours
    stream=""
    [ -r "$debian_stream" ] && [ -r "$stream_module" ] && stream=yes

    cat > "$run/nginx.conf" <<EOF
# written by scripts/run.sh: the certguard demo egress proxy
load_module $module;
$( [ -n "$stream" ] && printf 'load_module %s;\nload_module %s;' "$debian_stream" "$stream_module" )
$user
worker_processes 2;
pid $pidfile;
error_log $run/logs/error.log notice;

events {
    worker_connections 1024;
}

http {
    log_format certguard '\$remote_addr [\$time_local] "\$request" \$status '
                         'certguard=\$certguard_verdict '
                         'score=\$certguard_score '
                         'signals=\$certguard_signals '
                         'cache=\$certguard_cache';
    access_log $run/logs/access.log certguard;

    client_body_temp_path $run/tmp/body;
    proxy_temp_path $run/tmp/proxy;
    fastcgi_temp_path $run/tmp/fastcgi;
    uwsgi_temp_path $run/tmp/uwsgi;
    scgi_temp_path $run/tmp/scgi;

    $( [ -n "$ns" ] && echo "resolver $ns valid=60s;" )
    resolver_timeout 5s;

    # the demo destinations, by name
    upstream good.certguard.test { server 127.0.0.1:$good_port; }
    upstream c2.certguard.test { server 127.0.0.1:$c2_port; }

    # the egress proxy: clients send absolute http:// URLs, nginx fetches
    # them over TLS and certguard scores each upstream certificate
    server {
        listen 127.0.0.1:$port;

        certguard on;
        certguard_policy $policy;
        certguard_trusted_certificate $run/trust.pem;
        certguard_cache zone=certguard:10m valid=10m;
        certguard_log $cef_log;

        add_header X-Certguard-Verdict \$certguard_verdict always;
        add_header X-Certguard-Score \$certguard_score always;
        add_header X-Certguard-Signals \$certguard_signals always;

        location / {
            proxy_ssl_server_name on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
            proxy_set_header Host \$host;
            proxy_pass https://\$host\$request_uri;
        }
    }

    server {
        listen 127.0.0.1:$good_port ssl;
        ssl_certificate $run/pki/good.chain.pem;
        ssl_certificate_key $run/pki/good.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log $run/logs/good-upstream.log;
        location / {
            return 200 "hello from good.certguard.test\n";
        }
    }

    server {
        listen 127.0.0.1:$c2_port ssl;
        ssl_certificate $run/pki/c2.crt;
        ssl_certificate_key $run/pki/c2.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        access_log $run/logs/c2-upstream.log;
        location / {
            return 200 "beacon tasking from c2.certguard.test\n";
        }
    }
}

$( [ -n "$stream" ] && cat <<STREAM
# HTTPS egress: clients with HTTPS_PROXY send CONNECT; certguard probes the
# destination's certificate before it opens the tunnel
stream {
    log_format certguard '\$remote_addr [\$time_local] \$status '
                         'upstream=\$certguard_upstream '
                         'certguard=\$certguard_verdict '
                         'score=\$certguard_score '
                         'signals=\$certguard_signals';
    access_log $run/logs/connect.log certguard;
    $( [ -n "$ns" ] && echo "resolver $ns valid=60s;" )

    server {
        listen 127.0.0.1:$connect_port;

        certguard_connect on;
        certguard_policy $policy;
        certguard_trusted_certificate $run/trust.pem;
        certguard_cache zone=certguard_stream:10m valid=10m;
        certguard_log $cef_log;

        # the demo destinations are on loopback, which a CONNECT proxy
        # refuses unless told otherwise
        certguard_connect_ports 443 $good_port $c2_port;
        certguard_connect_allow 127.0.0.1;

        proxy_pass \$certguard_upstream;
    }
}
STREAM
)
EOF
}

tour() {
    command -v curl >/dev/null || return 0

    for name in good.certguard.test c2.certguard.test; do
        printf '\n$ curl -si -x http://127.0.0.1:%s http://%s/\n' \
            "$port" "$name"
        curl -si --max-time 10 -x "http://127.0.0.1:$port" "http://$name/" \
            | grep -Ei '^(HTTP/|X-Certguard|hello|beacon|certguard)' \
            | sed 's/\r$//' || true
    done

    [ -n "$stream" ] || return 0

    printf '\n$ HTTPS_PROXY=http://127.0.0.1:%s curl -s --cacert %s https://127.0.0.1:%s/\n' \
        "$connect_port" "$run/pki/ca.crt" "$good_port"
    HTTPS_PROXY="http://127.0.0.1:$connect_port" curl -s --max-time 10 \
        --cacert "$run/pki/ca.crt" "https://127.0.0.1:$good_port/" || true

    printf '\n$ HTTPS_PROXY=http://127.0.0.1:%s curl -sk https://127.0.0.1:%s/\n' \
        "$connect_port" "$c2_port"
    HTTPS_PROXY="http://127.0.0.1:$connect_port" curl -sk --max-time 10 \
        "https://127.0.0.1:$c2_port/" 2>&1 || echo "(curl: CONNECT refused)"
    printf '(%s)\n' "$(tail -n 1 "$run/logs/connect.log" 2>/dev/null)"
}

start() {
    [ -x "$nginx" ] || die "no $nginx (run scripts/deps.sh)"
    [ -r "$module" ] || die "no $module: run 'make' first"
    [ -r "$policy" ] || die "no policy $policy"

    mkdir -p "$run/logs" "$run/tmp"
    certs
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
        "$nginx" -p "$run/" -c "$run/nginx.conf" -e "$run/logs/error.log" \
            || die "nginx did not start: see $run/logs/error.log"

        i=0
        until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" \
              2>/dev/null; do
            i=$((i + 1))
            [ $i -gt 50 ] && die "nothing listens on 127.0.0.1:$port"
            sleep 0.1
        done
        echo "certguard demo: running (nginx $(cat "$pidfile"))"
    fi

    proxy="http://127.0.0.1:$port"
    cef=${CERTGUARD_SYSLOG:+syslog:$CERTGUARD_SYSLOG}
    cat <<EOF

egress proxy  $proxy  (policy $policy)
allowed       curl -x $proxy http://good.certguard.test/
blocked       curl -x $proxy http://c2.certguard.test/
EOF
    [ -n "$stream" ] && cat <<EOF
CONNECT proxy HTTPS_PROXY=http://127.0.0.1:$connect_port curl --cacert $run/pki/ca.crt https://127.0.0.1:$good_port/
              HTTPS_PROXY=http://127.0.0.1:$connect_port curl -k https://127.0.0.1:$c2_port/   refused (403)
EOF
    [ -n "${ns:-}" ] && echo "real sites    curl -x $proxy http://example.com/" \
        "(resolver $ns)"
    cat <<EOF
CEF records   ${cef:-$run/logs/cef.log}
access log    $run/logs/access.log, $run/logs/connect.log (CONNECT)
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
