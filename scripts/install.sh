#!/usr/bin/env bash
# Installs hookswitch on Raspberry Pi OS (bookworm or trixie) or Debian 12/13 from its .deb, as root:
#
#   sudo bash scripts/install.sh [--board NAME] [path/to/hookswitch_<version>_all.deb]
#
# 1. Node.js 20 or newer: installed with apt-get when missing; the script stops with advice when
#    apt only offers an older one (Debian 12 and Raspberry Pi OS bookworm ship Node.js 18).
# 2. The .deb: the one given, else the newest hookswitch_*_all.deb in the current directory or
#    dist/, else built here with `npm ci && npm run package` (a source checkout with npm).
#    `apt-get install ./file.deb` pulls in its dependencies (alsa-utils, gpiod).
# 3. --board NAME: sets `board` in /etc/hookswitch/config.json and adds the board's config.txt
#    lines (from /usr/lib/hookswitch/board/NAME/README.md) to the boot partition's config.txt,
#    after a backup; a reboot applies them.
# 4. Prints the service state and the generated extension passwords with how to register a phone.
# Nothing is downloaded except through apt-get and npm.
set -euo pipefail

LIB=/usr/lib/hookswitch
CONFIG=/etc/hookswitch/config.json
STATE=/var/lib/hookswitch
board=""
deb=""

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --board) [ $# -ge 2 ] || die "--board needs a name (see: hookswitch board list)"; board=$2; shift 2 ;;
        --board=*) board=${1#--board=}; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) [ -z "$deb" ] || die "one .deb only"; deb=$1; shift ;;
    esac
done
if [ -n "$board" ] && ! [[ "$board" =~ ^[a-z0-9][a-z0-9-]*$ ]]; then
    die "--board: \"$board\" is not a board name (see: hookswitch board list)"
fi
[ "$(id -u)" -eq 0 ] || die "run as root: sudo bash $0 $*"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script is for Debian and Raspberry Pi OS"

node_major() {
    if command -v node >/dev/null 2>&1; then
        node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
    else
        echo 0
    fi
}

# --- 1. Node.js ----------------------------------------------------------------------------
if [ "$(node_major)" -lt 20 ]; then
    say "installing Node.js with apt-get"
    apt-get update
    apt-get install -y nodejs
fi
major=$(node_major)
if [ "$major" -lt 20 ]; then
    die "hookswitch needs Node.js 20 or newer; apt offers Node.js $major here (Debian 12 and
Raspberry Pi OS bookworm ship 18). Install Node.js 20+ from an apt repository you trust (for
example NodeSource's nodejs 20.x or 22.x packages), or use Debian 13 / Raspberry Pi OS trixie,
then run this script again."
fi
say "Node.js $(node --version)"

# --- 2. The package ------------------------------------------------------------------------
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$deb" ]; then
    for dir in "$PWD" "$PWD/dist" "$here/dist"; do
        found=$(ls -1t "$dir"/hookswitch_*_all.deb 2>/dev/null | head -n 1 || true)
        if [ -n "$found" ]; then deb=$found; break; fi
    done
fi
if [ -z "$deb" ]; then
    [ -f "$here/package.json" ] && [ -f "$here/scripts/package.mjs" ] \
        || die "no hookswitch_*_all.deb given or found; pass its path"
    command -v npm >/dev/null 2>&1 || die "no .deb found and npm is missing to build one; copy a built hookswitch_*_all.deb here"
    command -v dpkg-deb >/dev/null 2>&1 || die "no .deb found and dpkg-deb is missing to build one"
    say "building the package in $here"
    (cd "$here" && npm ci && npm run package)
    deb=$(ls -1t "$here"/dist/hookswitch_*_all.deb | head -n 1)
fi
[ -f "$deb" ] || die "$deb: no such file"
deb=$(realpath "$deb")
say "installing $deb"
apt-get install -y "$deb"

systemd_running() { [ -d /run/systemd/system ]; }

# --- 3. The board --------------------------------------------------------------------------
if [ -n "$board" ]; then
    [ -f "$LIB/board/$board.json" ] || die "unknown board \"$board\"; known: $(hookswitch board list | awk '{print $1}' | tr '\n' ' ')"
    # Rewrite the config with `board` set, atomically, keeping its owner and mode.
    node --input-type=module -e '
        import { readFileSync, writeFileSync, renameSync, statSync, chownSync, chmodSync } from "node:fs";
        const [file, name] = process.argv.slice(1);
        const config = JSON.parse(readFileSync(file, "utf8"));
        config.board = name;
        const st = statSync(file);
        const tmp = `${file}.tmp-${process.pid}`;
        writeFileSync(tmp, JSON.stringify(config, null, 2) + "\n", { mode: st.mode & 0o777 });
        chownSync(tmp, st.uid, st.gid);
        chmodSync(tmp, st.mode & 0o777);
        renameSync(tmp, file);
    ' "$CONFIG" "$board"
    say "set \"board\": \"$board\" in $CONFIG"

    lines=$(awk '/^## config.txt/ { in_section = 1; next }
                 in_section && /^## / { exit }
                 in_section && /^```/ { fence++; if (fence == 2) exit; next }
                 in_section && fence == 1 { print }' "$LIB/board/$board/README.md")
    if [ -n "$lines" ]; then
        bootcfg=""
        for f in /boot/firmware/config.txt /boot/config.txt; do
            if [ -f "$f" ]; then bootcfg=$f; break; fi
        done
        if [ -z "$bootcfg" ]; then
            say "no config.txt found (not a Raspberry Pi?); add these lines to it yourself:"
            printf '%s\n' "$lines"
        else
            missing=$(printf '%s\n' "$lines" | while IFS= read -r line; do
                grep -qxF -- "$line" "$bootcfg" || printf '%s\n' "$line"
            done)
            if [ -z "$missing" ]; then
                say "$bootcfg already has the lines for $board"
            else
                backup="$bootcfg.hookswitch-$(date +%Y%m%d%H%M%S)"
                cp -p "$bootcfg" "$backup"
                { printf '\n# hookswitch board %s\n' "$board"; printf '%s\n' "$missing"; } >> "$bootcfg"
                say "added to $bootcfg (backup: $backup):"
                printf '%s\n' "$missing"
                say "REBOOT to apply them: sudo reboot"
            fi
        fi
    fi
    if systemd_running; then systemctl restart hookswitch.service || true; fi
fi

# --- 4. What next --------------------------------------------------------------------------
if systemd_running; then
    state=$(systemctl is-active hookswitch.service || true)
    say "service hookswitch: $state (logs: journalctl -u hookswitch -f)"
    for _ in $(seq 1 15); do
        [ -f "$STATE/extensions.json" ] && break
        sleep 1
    done
else
    say "systemd is not running here: start the gateway with: hookswitch run --config $CONFIG"
fi
if [ -f "$STATE/extensions.json" ]; then
    address=$(hostname -I 2>/dev/null | awk '{print $1}')
    say "extensions and their passwords ($STATE/extensions.json):"
    node -e '
        const list = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
        for (const [number, e] of Object.entries(list)) console.log(`  ${number}  ${e.password}  ${e.name ?? ""}`);
    ' "$STATE/extensions.json"
    say "register a softphone with: user 101 (or 102, 103), its password, server ${address:-<this box>}:5060 (UDP or TCP)"
    say "100 is this box's own handset; dial *43 for an echo test"
else
    say "the extension passwords appear in $STATE/extensions.json once the service has started"
fi
