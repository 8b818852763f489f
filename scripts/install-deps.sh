#!/usr/bin/env bash
# Installs every Debian 12 package the build, the tests and the demo need.
# Idempotent; run as root (or through sudo) on a fresh machine.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  clang libclang-rt-14-dev clang-format clang-tidy
  libpq-dev postgresql-15 postgresql-client-15
  libboost-test-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libyaml-cpp-dev libcli11-dev rapidjson-dev libssl-dev libre2-dev
  libsystemd-dev libhowardhinnant-date-dev
  libmariadb-dev zlib1g-dev mariadb-server mariadb-client
  librdkafka-dev kcat
  procps util-linux time jq
  prometheus-cpp-dev libcpp-httplib-dev prometheus systemd dpkg-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Keep apt from starting the distribution's own database services: tests start their own.
own_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  own_policy=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ -z "$own_policy" ] || $SUDO rm -f /usr/sbin/policy-rc.d
