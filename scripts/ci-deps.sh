#!/usr/bin/env bash
# Installs the system tools the test suite needs (SIPp, openssl, procps, baresip, kamailio,
# sipvicious, ffmpeg, sox, PulseAudio with its ALSA plugin, alsa-utils, socat, tshark,
# python3-zeroconf, systemd's tools), and only those missing.
# Idempotent: when everything is present it changes nothing and makes no network request.
set -euo pipefail

# package name -> a command it provides
declare -A wanted=(
  [sip-tester]=sipp
  [openssl]=openssl
  [procps]=ps
  [baresip]=baresip
  [kamailio]=kamailio
  [sipvicious]=svwar
  [iproute2]=ss
  [ffmpeg]=ffmpeg
  [sox]=sox
  [pulseaudio]=pulseaudio
  [pulseaudio-utils]=pactl
  [alsa-utils]=arecord
  [socat]=socat
  [libasound2-plugins]=-   # the ALSA "pulse" device; no command, dpkg tells
  [tshark]=tshark             # reads the pcap files `hookswitch trace --pcap` writes
  [python3-zeroconf]=-        # the third-party mDNS peer (for /usr/bin/python3)
  [systemd]=systemd-analyze   # verify/security of the unit; systemd-notify
  [util-linux]=unshare        # network and mount namespaces for the mDNS and package tests
  [shellcheck]=shellcheck     # lints scripts/prepare-sd.sh and packaging/firstboot/*.sh
  [debootstrap]=debootstrap   # a bookworm tree to install the .deb into (test/ops/package-debootstrap.ts)
)

missing=()
for pkg in "${!wanted[@]}"; do
  if [ "${wanted[$pkg]}" != "-" ] && command -v "${wanted[$pkg]}" >/dev/null 2>&1; then
    continue
  fi
  if command -v dpkg >/dev/null 2>&1 && dpkg -s "$pkg" >/dev/null 2>&1; then
    continue
  fi
  missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ci-deps: all present (${!wanted[*]})"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci-deps: missing ${missing[*]} and apt-get is not available; install them by hand" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo -n)
  else
    echo "ci-deps: missing ${missing[*]}; not root and sudo is not available" >&2
    exit 1
  fi
fi

echo "ci-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark's package asks whether non-root users may capture; answer no without a prompt.
if command -v debconf-set-selections >/dev/null 2>&1; then
  echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo_cmd[@]}" debconf-set-selections
fi
"${sudo_cmd[@]}" apt-get update -qq >/dev/null
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
for pkg in "${missing[@]}"; do
  [ "${wanted[$pkg]}" = "-" ] && continue
  if ! command -v "${wanted[$pkg]}" >/dev/null 2>&1; then
    echo "ci-deps: $pkg was installed but ${wanted[$pkg]} is still not on PATH" >&2
    exit 1
  fi
done
echo "ci-deps: installed ${missing[*]}"
