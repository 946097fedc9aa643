#!/bin/sh
# Derive extra apt lines from the image's existing Debian apt configuration, so that no
# mirror host name is ever written into the harness. Usage: cpr-apt-sources [SUITE]
# Adds: SUITE-backports (deb), SUITE and sid (deb-src).
set -eu
suite=${1:-trixie}
uri=""
if [ -f /etc/apt/sources.list ]; then
    uri=$(awk -v s="$suite" '$1 == "deb" && $3 == s { print $2; exit }' /etc/apt/sources.list)
fi
if [ -z "$uri" ]; then
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk -v s="$suite" '
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s) found = 1 }
            /^$/ { if (found && u != "") { print u; exit } found = 0 }
            END { if (found && u != "") print u }' "$f" | head -n 1)
        [ -n "$uri" ] && break
    done
fi
if [ -z "$uri" ]; then
    echo "cpr-apt-sources: no 'deb' source for $suite in this image's apt configuration" >&2
    exit 1
fi
cat > /etc/apt/sources.list.d/cpr-harness.list <<LIST
deb $uri $suite-backports main
deb-src $uri $suite main
deb-src $uri sid main
LIST
echo "cpr-apt-sources: derived from $uri"
