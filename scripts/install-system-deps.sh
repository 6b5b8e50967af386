#!/usr/bin/env bash
# Install, via apt, the system packages the tests use, when they are missing:
# redis-server, PostgreSQL, nginx, Chromium (and an emoji font), ffmpeg, coturn (TURN),
# openssl (test certificates), espeak-ng (speech for the captions tests), Varnish, nginx's
# nchan module and Icecast (the listener's edge and its peer), and iproute2 +
# nftables + iptables (the multi-host rehearsal: network namespaces, a router and a NAT
# built by the tests), wrk (the LL-HLS audience of bench/wrk_audience.py, which
# tests/e2e/test_wrk_audience.py runs) and curl. Idempotent and quiet when all
# are present. Extra package names given as arguments (e.g. janus for
# bench/peers/janus_bridge.py: benchmarks only, never the tests) are installed too when
# their command is missing.
set -euo pipefail

missing=()
for extra in "$@"; do
  command -v "$extra" >/dev/null 2>&1 || missing+=("$extra")
done
have() { command -v "$1" >/dev/null 2>&1; }
have redis-server || missing+=(redis-server)  # also the tests' Sentinels (redis-server --sentinel)
have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || have initdb || missing+=(postgresql)
have chromium || missing+=(chromium)
have ffmpeg || missing+=(ffmpeg)
have turnserver || [ -x /usr/bin/turnserver ] || missing+=(coturn)
have openssl || missing+=(openssl)
have ip || [ -x /usr/sbin/ip ] || missing+=(iproute2)
have nft || [ -x /usr/sbin/nft ] || missing+=(nftables)
have iptables || [ -x /usr/sbin/iptables ] || missing+=(iptables)
have tc || [ -x /usr/sbin/tc ] || missing+=(iproute2)
have espeak-ng || missing+=(espeak-ng)  # known speech for the captions tests
have wrk || missing+=(wrk)  # the wrk audience's script and wrapper are tested
have curl || missing+=(curl)
# The listener's edge, measured side by side: Varnish, nginx's nchan module (pub/sub), and
# Icecast (the peer the listener-latency bench compares against).
have varnishd || [ -x /usr/sbin/varnishd ] || missing+=(varnish)
[ -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || missing+=(libnginx-mod-nchan)
have icecast2 || [ -x /usr/bin/icecast2 ] || missing+=(icecast2)
# Browser tests take screenshots with reactions in them: a colour emoji font.
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || missing+=(fonts-noto-color-emoji)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "installing system packages via apt: ${missing[*]}" >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
# Debian starts the packaged services; the tests and benches start their own.
for svc in redis-server nginx postgresql coturn janus varnish varnishncsa icecast2; do
  if command -v systemctl >/dev/null 2>&1; then $sudo systemctl stop "$svc" 2>/dev/null || true; fi
  if command -v service >/dev/null 2>&1; then $sudo service "$svc" stop >/dev/null 2>&1 || true; fi
done
