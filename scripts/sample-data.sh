#!/usr/bin/env bash
# sample-data.sh - fetch the sample CT for the main job: Debian's
# invesalius-examples ships a head CT as an InVesalius project (Cranium.inv3).
# Prints the path of the .inv3 file. Cached under $R3D_CACHE (default .cache/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${R3D_CACHE:-$root/.cache}
mkdir -p "$cache"
# Installed by scripts/deps.sh --with-tests; otherwise fetched into the cache.
found=$(ls /usr/share/doc/invesalius-examples/examples/Cranium.inv3 2>/dev/null ||
        find "$cache" -name 'Cranium.inv3' 2>/dev/null | head -1)
if [ -z "$found" ]; then
  ( cd "$cache"
    [ -n "$(ls invesalius-examples_*.deb 2>/dev/null)" ] || {
      apt-get download invesalius-examples >/dev/null 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 || true; apt-get download invesalius-examples >/dev/null; }
    }
    dpkg-deb -x invesalius-examples_*.deb pkg )
  found=$(find "$cache" -name 'Cranium.inv3' | head -1)
fi
[ -n "$found" ] || { echo "sample-data: Cranium.inv3 not found in invesalius-examples" >&2; exit 1; }
echo "$found"
