#!/usr/bin/env bash
# Installs what the client-library suite (tests/clients/) needs, and only what is missing:
#   Debian: the reference Pushgateway, Python's prometheus_client, Go with client_golang's sources,
#           promtool (package "prometheus"), Node.js + npm;
#   npm:    prom-client, pinned by tests/clients/node/package-lock.json, into tests/clients/node/node_modules.
# Non-interactive; run as root on Debian 12 (sudo is used otherwise). Never installs npm packages globally.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
node_dir="$here/tests/clients/node"

pkgs=(
    prometheus-pushgateway                      # the reference gateway the suite is validated against
    python3 python3-prometheus-client           # Debian's 0.16, for /usr/bin/python3
    golang-go golang-github-prometheus-client-golang-dev   # Go 1.19 and client_golang 1.14 under /usr/share/gocode
    prometheus                                  # promtool
)
# Node 20 may come from another source (nodesource ships npm inside "nodejs"); only ask Debian when absent.
if ! command -v node >/dev/null 2>&1; then pkgs+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then pkgs+=(npm); fi

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-client-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # The "prometheus" package would start a Prometheus server on :9090 (and pushgateway one on :9091); the tests
    # only need the binaries. Forbid service starts for this install unless the machine already has a policy.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        made_policy=1
    fi
    trap 'if [ -n "$made_policy" ]; then $SUDO rm -f "$policy"; fi' EXIT
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci installs exactly what the lock file says; skip it when every locked package is already there at its version.
lock_ok=$(cd "$node_dir" && node -e '
    const fs = require("fs");
    const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
    for (const [p, v] of Object.entries(lock.packages)) {
        if (!p) continue;
        try {
            if (JSON.parse(fs.readFileSync(p + "/package.json", "utf8")).version !== v.version) throw 0;
        } catch (e) { console.log("no"); process.exit(0); }
    }
    console.log("yes");')
if [ "$lock_ok" != yes ]; then
    echo "install-client-deps: npm ci in tests/clients/node" >&2
    (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
