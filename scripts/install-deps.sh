#!/usr/bin/env bash
# Installs the Debian packages Ferry needs, and only those that are missing.
# Usage: scripts/install-deps.sh [build|test|package|bench|format|all]   (default: build)
#   build: compiler, CMake, libraries, cmark-gfm (the Help pages' HTML)
#   test:  build + what the test suites start (reference Pushgateway, clang for fuzzing, clients) + package + format
#   package: build + the Debian packaging tools (make deb, the package suite)
#   format: clang-format 14 (make format, make format-check; the version .ci/run checks the tree with)
#   bench: build + what make bench-compare runs (wrk, the reference Pushgateway, curl, gnuplot for the plots)
#   all:   all of the above
set -euo pipefail

what=${1:-build}

build_pkgs=(
    build-essential cmake ninja-build pkg-config
    libh2o-evloop-dev libssl-dev zlib1g-dev libxxhash-dev libjemalloc-dev libsnappy-dev
    libcmocka-dev libbenchmark-dev
    libyaml-dev libcrypt-dev libcurl4-openssl-dev
    cmark-gfm  # a build tool: renders docs/ to the web UI's Help pages (src/CMakeLists.txt); no library in the binary
)
test_pkgs=(
    clang libclang-rt-14-dev llvm
    curl python3 prometheus-pushgateway prometheus
    wrk gnuplot-nox  # the smoke test of make bench-compare's driver (integration_bench_compare_smoke)
    nginx-light haproxy  # the load balancers the cluster suites (tests/cluster) start in front of the replicas
    systemd util-linux  # systemd-socket-activate and taskset (test_operations.py); unshare, nsenter (test_container.py)
    iproute2  # test_container.py: ip (loopback in its network namespace)
    strace  # test_http_writes.py counts the system calls behind HTTP answers
    python3-yaml  # tests/deploy reads kubectl kustomize's output with it (promtool comes with prometheus above)
    chromium chromium-driver  # the web UI's browser suite (tests/integration/test_ui_browser.py), driven over WebDriver
)
# kubectl, for `kubectl kustomize` in tests/deploy: Debian's is kubernetes-client (1.20). Only when no kubectl is
# installed: another package's /usr/bin/kubectl (a newer one from Kubernetes' own repository) would conflict with it.
if ! command -v kubectl >/dev/null 2>&1; then test_pkgs+=(kubernetes-client); fi
# make deb and the package suite (tests/integration/test_package.py): dpkg-buildpackage with dh, lintian, the unit
# checked by systemd-analyze, the man page read by man (lintian and systemd-analyze verify), the ferry user made by
# adduser when the package is installed.
package_pkgs=(
    dpkg-dev debhelper fakeroot lintian systemd man-db adduser
)
bench_pkgs=(
    wrk gnuplot-nox curl python3 prometheus-pushgateway
)
# Pinned to a major version: another one formats some constructs differently (scripts/format.sh).
format_pkgs=(
    clang-format-14
)

pkgs=("${build_pkgs[@]}")
case "$what" in
    build) ;;
    test) pkgs+=("${test_pkgs[@]}" "${package_pkgs[@]}" "${format_pkgs[@]}") ;;
    package) pkgs+=("${package_pkgs[@]}") ;;
    bench) pkgs+=("${bench_pkgs[@]}") ;;
    format) pkgs=("${format_pkgs[@]}") ;;
    all) pkgs+=("${test_pkgs[@]}" "${package_pkgs[@]}" "${bench_pkgs[@]}" "${format_pkgs[@]}") ;;
    *) echo "usage: $0 [build|test|package|bench|format|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -ne 0 ]; then
    echo "install-deps: installing ${missing[*]}" >&2
    SUDO=
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
    export DEBIAN_FRONTEND=noninteractive
    # prometheus, nginx-light and haproxy would start system services (on :9090, :80); the tests start their own
    # processes. Forbid service starts for this install unless the machine already has a policy.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        made_policy=1
    fi
    trap 'if [ -n "$made_policy" ]; then $SUDO rm -f "$policy"; fi' EXIT
    # Some images ship without package lists; update once, quietly.
    $SUDO apt-get update -qq >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The client-library suite (Python, Go, Node clients and promtool) has its own installer.
case "$what" in
    test|all) "$(dirname "$0")/install-client-deps.sh" ;;
esac
