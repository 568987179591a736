# Shell helpers shared by the benchmarks (sourced, bash).

nginx_bin=${NGINX:-/usr/sbin/nginx}


# A free TCP port on 127.0.0.1.
free_port() {
    perl -MIO::Socket::INET -e 'print IO::Socket::INET->new(Listen => 1,
        LocalAddr => "127.0.0.1", LocalPort => 0)->sockport'
}


# wait_port PORT: until something accepts on 127.0.0.1:PORT (5 s at most).
wait_port() {
    local i=0
    until perl -MIO::Socket::INET -e 'exit !IO::Socket::INET->new(
              PeerAddr => "127.0.0.1:'"$1"'", Timeout => 1)' 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 50 ] && { echo "nothing listens on port $1" >&2; return 1; }
        sleep 0.1
    done
}


# nginx_start CPU PREFIX CONF: start nginx pinned to CPU (its workers
# inherit the affinity); the pid file is PREFIX/nginx.pid.
nginx_start() {
    local cpu=$1 prefix=$2 conf=$3
    rm -f "$prefix/nginx.pid"
    taskset -c "$cpu" "$nginx_bin" -p "$prefix/" -c "$conf" \
        -e "$prefix/error.log" || {
        tail -5 "$prefix/error.log" >&2
        return 1
    }
    local i=0
    until [ -s "$prefix/nginx.pid" ]; do
        i=$((i + 1))
        [ $i -gt 50 ] && return 1
        sleep 0.1
    done
}


# nginx_stop PREFIX: stop the nginx whose pid file is in PREFIX, and wait.
nginx_stop() {
    local pid i=0
    [ -s "$1/nginx.pid" ] || return 0
    pid=$(cat "$1/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -gt 100 ] && { kill -KILL "$pid" 2>/dev/null; break; }
        sleep 0.05
    done
    rm -f "$1/nginx.pid"
}


# nginx_workers PREFIX: pids of the worker processes of that nginx.
nginx_workers() {
    pgrep -P "$(cat "$1/nginx.pid")" 2>/dev/null | tr '\n' ' '
}


# cpu_ticks PID...: user + system clock ticks used so far, summed.
cpu_ticks() {
    local pid t=0 f
    for pid in "$@"; do
        # fields after the ")" of comm: utime is the 12th, stime the 13th
        f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}


# The machine, for the record.
machine_info() {
    echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpu:      $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' \
                                   /proc/cpuinfo | head -1)"
    echo "kernel:   $(uname -r)"
    echo "nginx:    $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: //')"
    echo "openssl:  $(openssl version)"
    echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
}


# corpus_files SHAPE N: the first N chain files of bench/engine.sh's
# corpus SHAPE (root or inter), relative to its BENCH_DIR, into files[]
corpus_files() {
    local i
    files=()
    for i in $(seq 0 $(($2 - 1))); do
        case $1 in
            root) files+=("chains/$i.pem") ;;
            inter) files+=("inter/n$((i + 1)).inter.bench.test.pem") ;;
        esac
    done
}
