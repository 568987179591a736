#!/bin/sh
# Installs, with apt-get and only when missing, what building, running and
# testing certguard needs.  Idempotent: a second run installs nothing.
set -eu

pkgs="nginx nginx-dev libnginx-mod-stream libssl-dev libpcre2-dev
      libmaxminddb-dev zlib1g-dev make gcc clang openssl curl perl
      liblognorm-utils rsyslog libmaxmind-db-writer-perl libnet-ssleay-perl
      libio-socket-ssl-perl mmdb-bin ca-certificates libclang-rt-14-dev
      strace iproute2 bsdutils dnsmasq-base python3-prometheus-client
      chromium liblmdb-dev lmdb-utils python3-cryptography libpsl-dev
      publicsuffix"

if [ "${1:-}" = "--bench" ]; then
    pkgs="$pkgs wrk hyperfine valgrind linux-perf"
fi

# make's hardening flags (dpkg-buildflags) and t/hardening.t (readelf);
# --deb: building and checking the Debian packages (make deb, t/deb.t)
pkgs="$pkgs dpkg-dev binutils"
if [ "${1:-}" = "--deb" ]; then
    pkgs="$pkgs debhelper fakeroot lintian logrotate"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"
    then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing (run as root to install)" >&2
    exit 1
fi

echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps Debian's nginx and rsyslog services from starting: the
# project runs its own instances on loopback ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends $missing
