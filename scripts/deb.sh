#!/usr/bin/env bash
# Builds the Debian packages (debian/) in a copy of the tree, never in the
# work tree: dpkg-buildpackage cleans and writes where it runs.  The .deb
# files, with the .changes and .buildinfo, land in OUTDIR (default
# build/deb); lintian checks them and any error (an E: line) fails.
#
#   scripts/deb.sh [OUTDIR]        "make deb" runs it
set -euo pipefail

# "make deb B=..." must not reach the package's own make runs (its "make
# clean" would clean B), and the flags are dpkg-buildflags' alone
unset MAKEFLAGS MFLAGS MAKELEVEL B CFLAGS CPPFLAGS LDFLAGS

cd "$(dirname "$0")/.."
root=$PWD
out=${1:-build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

./scripts/deps.sh --deb

version=$(dpkg-parsechangelog -S Version)
work=$(mktemp -d "${TMPDIR:-/tmp}/certguard-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
src="$work/certguard-$version"
mkdir "$src"

# what git knows (tracked and new files, not the ignored build/) but the
# tests and benchmarks; a tree without git is copied whole but for build/
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$root" ls-files -z -co --exclude-standard \
        | grep -zv -e '^t/' -e '^bench/' \
        | tar -C "$root" --null --ignore-failed-read -cf - -T - 2>/dev/null \
        | tar -C "$src" -xf -
else
    tar -C "$root" --exclude=./build --exclude=./.git --exclude=./t \
        --exclude=./bench -cf - . \
        | tar -C "$src" -xf -
fi

echo "deb.sh: building certguard $version in $src"
start=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -b -us -uc -j2) > "$work/build.log" 2>&1
then
    tail -40 "$work/build.log"
    cp "$work/build.log" "$out/build.log"
    echo "deb.sh: dpkg-buildpackage failed (log: $out/build.log)" >&2
    exit 1
fi
cp "$work/build.log" "$out/build.log"

rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mv "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"
echo "deb.sh: built in $(( $(date +%s) - start ))s:" $(cd "$out" && ls *.deb)

changes=$(ls "$out"/*.changes)
lintian --fail-on none "$changes" > "$out/lintian.log" 2>&1 || true
cat "$out/lintian.log"
if grep -q '^E: ' "$out/lintian.log"; then
    echo "deb.sh: lintian reports errors" >&2
    exit 1
fi
echo "deb.sh: lintian: no errors ($(grep -c '^W: ' "$out/lintian.log") warnings)"
