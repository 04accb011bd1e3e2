#!/usr/bin/env bash
# Prepares a freshly flashed Raspberry Pi OS (bookworm or trixie) card so that the Pi installs and
# starts hookswitch on its first boot, headless:
#
#   sudo scripts/prepare-sd.sh --boot /media/$USER/bootfs [--root /media/$USER/rootfs]
#        [--board NAME] [--config FILE] [--deb FILE]
#
# On the boot partition, in hookswitch/: the .deb (--deb, else built with scripts/package.mjs),
# the config (--config, else packaging/config.json when --board is given; "board" set to NAME),
# the board's config.txt lines, and the first-boot hook (packaging/firstboot/). The hook runs as
# hookswitch-firstboot.service once the network is up, installs the .deb with apt-get, writes
# /etc/hookswitch/config.json, adds the config.txt lines and removes itself. The unit is enabled:
#   --root given          directly in the root file system (no boot-time mechanism needed);
#   user-data present     (trixie, cloud-init) by a runcmd entry added to it;
#   otherwise             by a first-run script on the kernel command line, as Raspberry Pi
#                         Imager does (systemd.run=/boot/firstrun.sh); an Imager firstrun.sh
#                         that is already there runs first and then enables the unit.
# Nothing of Imager's is overwritten: what cannot be chained safely stops the script with the
# reason. Running it again updates the staged files and adds nothing twice. docs/install.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FIRSTBOOT_SRC=$here/packaging/firstboot
# The kernel command-line arguments Raspberry Pi Imager adds for its firstrun.sh
# (rpi-imager, "systemd" init format): run the script as the only job, then reboot.
RUN_ARGS='systemd.run=/boot/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target'
CHAIN_MARKER='# hookswitch: enable its first-boot unit (scripts/prepare-sd.sh)'
OUR_FIRSTRUN_MARKER="Written by hookswitch's scripts/prepare-sd.sh"
# The item added to cloud-init's runcmd list (cloud-final, so the network is up; runcmd runs once
# per instance).
RUNCMD_ITEM='[ bash, /boot/firmware/hookswitch/hookswitch-firstboot.sh, install-unit, --start ]'

boot="" root="" board="" config="" deb=""
tmp=""
cleanup() { if [ -n "$tmp" ]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT

say() { printf 'prepare-sd: %s\n' "$*"; }
die() { printf 'prepare-sd: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

need_value() { [ "$2" -ge 2 ] || die "$1 needs a value (see --help)"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --boot) need_value "$1" $#; boot=$2; shift 2 ;;
        --root) need_value "$1" $#; root=$2; shift 2 ;;
        --board) need_value "$1" $#; board=$2; shift 2 ;;
        --config) need_value "$1" $#; config=$2; shift 2 ;;
        --deb) need_value "$1" $#; deb=$2; shift 2 ;;
        --boot=*) boot=${1#*=}; shift ;;
        --root=*) root=${1#*=}; shift ;;
        --board=*) board=${1#*=}; shift ;;
        --config=*) config=${1#*=}; shift ;;
        --deb=*) deb=${1#*=}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

# --- checks, before anything is written ------------------------------------------------------
[ -n "$boot" ] || die "--boot DIR is required: the mounted boot partition (bootfs) of the card"
boot=${boot%/}
if ! [ -f "$boot/cmdline.txt" ] || ! [ -f "$boot/config.txt" ]; then
    die "$boot has no cmdline.txt and config.txt: not the boot partition of a Raspberry Pi OS card"
fi
[ "$(wc -l < "$boot/cmdline.txt")" -le 1 ] || die "$boot/cmdline.txt has more than one line; the kernel reads only the first: fix it first"
if [ -n "$root" ]; then
    root=${root%/}
    if ! [ -f "$root/etc/os-release" ] || ! [ -d "$root/etc/systemd/system" ]; then
        die "$root has no etc/os-release and etc/systemd/system: not the root partition of a Raspberry Pi OS card"
    fi
    [ "$(id -u)" -eq 0 ] || die "--root needs root, so the files in the root file system belong to root: sudo $0 ..."
fi
if [ -n "$board" ]; then
    [[ "$board" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "--board: \"$board\" is not a board name"
    if ! [ -f "$here/board/$board.json" ]; then
        known=""
        for profile in "$here"/board/*.json; do known+="$(basename "$profile" .json) "; done
        die "--board: unknown board \"$board\"; known: $known"
    fi
fi
if [ -n "$config" ]; then [ -f "$config" ] || die "--config: $config: no such file"; fi
if [ -n "$deb" ]; then
    [ -f "$deb" ] || die "--deb: $deb: no such file"
    [[ "$(basename "$deb")" =~ ^hookswitch_[^_/]+_all\.deb$ ]] || die "--deb: $deb is not named hookswitch_<version>_all.deb"
fi
command -v node >/dev/null 2>&1 || die "node is needed here (to build the .deb and check the config)"

# The way the unit gets enabled, and whether an existing Imager file allows it.
if [ -n "$root" ]; then
    mode=root
elif [ -f "$boot/user-data" ]; then
    mode=cloud-init
    [ "$(head -n 1 "$boot/user-data" | tr -d '\r')" = "#cloud-config" ] || grep -qF -- "$CHAIN_MARKER" "$boot/user-data" \
        || die "$boot/user-data does not start with #cloud-config: not a file this script can add to; pass --root to enable the unit in the root file system instead"
    if ! grep -qF -- "$CHAIN_MARKER" "$boot/user-data" && grep -qE '^runcmd:' "$boot/user-data"; then
        last_key=$(grep -E '^[A-Za-z_][A-Za-z0-9_-]*:' "$boot/user-data" | tail -n 1 | cut -d: -f1)
        if ! grep -qE '^runcmd:[[:space:]]*$' "$boot/user-data" || [ "$last_key" != runcmd ]; then
            die "$boot/user-data has a runcmd list that is not its last entry; add this item to it yourself:
  - $RUNCMD_ITEM
or pass --root to enable the unit in the root file system instead"
        fi
    fi
else
    mode=firstrun
    cmdline=$(tr -d '\r\n' < "$boot/cmdline.txt")
    if [ -f "$boot/firstrun.sh" ]; then
        if ! grep -qF -- "$OUR_FIRSTRUN_MARKER" "$boot/firstrun.sh"; then
            [[ " $cmdline " == *" systemd.run=/boot/firstrun.sh "* || " $cmdline " == *" systemd.run=/boot/firmware/firstrun.sh "* ]] \
                || die "$boot/firstrun.sh exists but cmdline.txt does not run it: left as it is; pass --root instead"
            grep -qF -- "$CHAIN_MARKER" "$boot/firstrun.sh" || grep -qE 'rm.*firstrun\.sh$' "$boot/firstrun.sh" \
                || die "$boot/firstrun.sh does not end by removing itself as Imager's does: left as it is; pass --root instead"
        fi
    elif [[ " $cmdline " == *" systemd.run="* ]]; then
        die "cmdline.txt already runs a first-boot script of someone else's (systemd.run=...): left as it is; pass --root instead"
    fi
fi

# --- the package -----------------------------------------------------------------------------
tmp=$(mktemp -d)
if [ -z "$deb" ]; then
    say "building the package (node scripts/package.mjs)"
    node "$here/scripts/package.mjs" --out "$tmp" >/dev/null
    deb=$(find "$tmp" -maxdepth 1 -name 'hookswitch_*_all.deb' | head -n 1)
    [ -n "$deb" ] || die "scripts/package.mjs built no hookswitch_*_all.deb"
fi
bundle=""
if command -v dpkg-deb >/dev/null 2>&1; then
    [ "$(dpkg-deb -f "$deb" Package)" = hookswitch ] || die "$deb is not the hookswitch package"
    dpkg-deb -x "$deb" "$tmp/tree"
    bundle=$tmp/tree/usr/lib/hookswitch/dist/hookswitch.mjs
fi

# --- the config ------------------------------------------------------------------------------
staged_config=""
if [ -n "$config" ] || [ -n "$board" ]; then
    staged_config=$tmp/config.json
    # "board" set to --board; the rest as given (or the package's default config).
    # shellcheck disable=SC2016 # JavaScript, not shell: its ${} is a template literal.
    node --input-type=module -e '
        import { readFileSync, writeFileSync } from "node:fs";
        const [from, to, board] = process.argv.slice(1);
        let config;
        try { config = JSON.parse(readFileSync(from, "utf8")); }
        catch (e) { console.error(`prepare-sd: ${from}: not valid JSON (${e.message})`); process.exit(2); }
        if (board) config.board = board;
        writeFileSync(to, JSON.stringify(config, null, 2) + "\n");
    ' "${config:-$here/packaging/config.json}" "$staged_config" "$board" || exit 1
    if [ -n "$bundle" ]; then
        # The validator of the very version being installed: one line per problem.
        node "$bundle" config check "$staged_config" >/dev/null \
            || die "the config is not valid for this hookswitch (lines above); nothing was written"
    fi
fi

# --- the board's config.txt lines (the "## config.txt" block of board/NAME/README.md) -----------
board_lines=""
if [ -n "$board" ] && [ -f "$here/board/$board/README.md" ]; then
    board_lines=$(awk '/^## config.txt/ { in_section = 1; next }
                       in_section && /^## / { exit }
                       in_section && /^```/ { fence++; if (fence == 2) exit; next }
                       in_section && fence == 1 { print }' "$here/board/$board/README.md")
fi

# --- stage on the boot partition -------------------------------------------------------------
stage=$boot/hookswitch
mkdir -p "$stage"
# FAT keeps no owners or modes: chmod there may fail and does not matter.
put() { cp -- "$1" "$2.new" && mv -f -- "$2.new" "$2"; chmod "$3" "$2" 2>/dev/null || true; }
find "$stage" -maxdepth 1 -name 'hookswitch_*_all.deb' ! -name "$(basename "$deb")" -delete
put "$deb" "$stage/$(basename "$deb")" 0644
put "$FIRSTBOOT_SRC/hookswitch-firstboot.sh" "$stage/hookswitch-firstboot.sh" 0755
put "$FIRSTBOOT_SRC/hookswitch-firstboot.service" "$stage/hookswitch-firstboot.service" 0644
rm -f "$stage/FAILED.txt"
if [ -n "$staged_config" ]; then
    put "$staged_config" "$stage/config.json" 0600
else
    rm -f "$stage/config.json"
fi
if [ -n "$board_lines" ]; then
    printf '# hookswitch board %s\n%s\n' "$board" "$board_lines" > "$stage/config.txt.add"
else
    rm -f "$stage/config.txt.add"
fi
say "staged in $stage: $(cd "$stage" && printf '%s ' *)"

# --- enable the first-boot unit --------------------------------------------------------------
case "$mode" in
    root)
        bash "$FIRSTBOOT_SRC/hookswitch-firstboot.sh" install-unit --root "$root" | sed 's/^/prepare-sd: /'
        ;;
    cloud-init)
        if grep -qF -- "$CHAIN_MARKER" "$boot/user-data"; then
            say "$boot/user-data already enables the unit"
        else
            cp -p "$boot/user-data" "$stage/user-data.orig"
            orig=$stage/user-data.orig
            addition=""
            [ -z "$(tail -c 1 "$orig")" ] || addition=$'\n'
            if grep -qE '^runcmd:' "$orig"; then
                # The indentation of the list's items as they are (Imager writes two spaces).
                indent=$(awk 'found && /^[[:space:]]*- / { match($0, /^[[:space:]]*/); print substr($0, 1, RLENGTH); exit }
                              /^runcmd:/ { found = 1 }' "$orig")
            else
                addition+=$'\nruncmd:\n'
                indent='  '
            fi
            printf '%s%s%s\n%s- %s\n' "$addition" "${indent:-}" "$CHAIN_MARKER" "${indent:-}" "$RUNCMD_ITEM" >> "$boot/user-data"
            say "added to cloud-init's runcmd in $boot/user-data (original: $stage/user-data.orig)"
        fi
        ;;
    firstrun)
        if [ -f "$boot/firstrun.sh" ] && ! grep -qF -- "$OUR_FIRSTRUN_MARKER" "$boot/firstrun.sh"; then
            if grep -qF -- "$CHAIN_MARKER" "$boot/firstrun.sh"; then
                say "$boot/firstrun.sh already enables the unit"
            else
                cp -p "$boot/firstrun.sh" "$stage/firstrun.sh.orig"
                # Imager's script first, then ours, just before its line that removes the script.
                awk -v marker="$CHAIN_MARKER" '
                    !done && /rm.*firstrun\.sh$/ {
                        print marker
                        print "for boot in /boot/firmware /boot; do if [ -f \"$boot/hookswitch/hookswitch-firstboot.sh\" ]; then bash \"$boot/hookswitch/hookswitch-firstboot.sh\" install-unit; break; fi; done"
                        done = 1
                    }
                    { print }' "$stage/firstrun.sh.orig" > "$boot/firstrun.sh.new"
                mv -f "$boot/firstrun.sh.new" "$boot/firstrun.sh"
                chmod 0755 "$boot/firstrun.sh" 2>/dev/null || true
                say "chained to Raspberry Pi Imager's $boot/firstrun.sh (original: $stage/firstrun.sh.orig)"
            fi
        else
            put "$FIRSTBOOT_SRC/firstrun.sh" "$boot/firstrun.sh" 0755
            if [[ " $cmdline " != *" systemd.run="* ]]; then
                [ -f "$stage/cmdline.txt.orig" ] || cp -p "$boot/cmdline.txt" "$stage/cmdline.txt.orig"
                printf '%s %s\n' "$cmdline" "$RUN_ARGS" > "$boot/cmdline.txt.new"
                mv -f "$boot/cmdline.txt.new" "$boot/cmdline.txt"
                say "cmdline.txt runs $boot/firstrun.sh once (original: $stage/cmdline.txt.orig)"
            fi
        fi
        ;;
esac

# --- what next -------------------------------------------------------------------------------
codename=""
if [ -n "$root" ]; then
    codename=$(sed -n 's/^VERSION_CODENAME=//p' "$root/etc/os-release" | tr -d '"')
elif grep -qF 'init=/usr/lib/raspberrypi-sys-mods/firstboot' "$boot/cmdline.txt"; then
    codename=bookworm
fi
if [ "$codename" = bookworm ]; then
    say "WARNING: this looks like Raspberry Pi OS bookworm, whose apt offers Node.js 18; hookswitch"
    say "needs 20. The hook installs nothing until apt offers nodejs 20+ (it writes"
    say "$stage/FAILED.txt and tries again each boot). Prefer a trixie image; see docs/install.md."
fi
sync
say "done ($mode). Unmount the card, put it in the Pi and power it on with a network cable or"
say "Wi-Fi set up in Imager. After a reboot or two: ssh in and run 'hookswitch status';"
say "the log is 'journalctl -u hookswitch-firstboot' and $stage/firstboot.log."
