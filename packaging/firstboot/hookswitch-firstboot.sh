#!/usr/bin/env bash
# hookswitch's first-boot hook, staged on the boot partition by scripts/prepare-sd.sh together with
# the .deb (and optionally config.json and config.txt.add) in /boot/firmware/hookswitch/.
#
#   hookswitch-firstboot.sh install-unit [--root DIR] [--start]
#       Copies this script and hookswitch-firstboot.service (both taken from this script's own
#       directory) into the root file system DIR (default /) and enables the unit with the link
#       systemctl enable would make. --start also starts it now, for a caller that runs after
#       the boot transaction was built (cloud-init's runcmd). Run by prepare-sd.sh --root, by
#       the first-run script on the kernel command line, or by cloud-init.
#   hookswitch-firstboot.sh run
#       The unit's work, with the network up: checks that apt offers Node.js 20 or newer (else
#       writes FAILED.txt, installs nothing, and the unit tries again on the next boot), installs
#       the staged .deb with apt-get (which resolves its Depends), puts the staged config in
#       /etc/hookswitch/config.json, adds the board's config.txt lines (backup first, once),
#       then disables and removes the unit and reboots if config.txt changed.
# Each step can be repeated: a run cut short by a power loss is finished by the next boot.
set -euo pipefail

UNIT=hookswitch-firstboot.service
LIBDIR=/usr/local/lib/hookswitch-firstboot
BOOT=/boot/firmware
STAGE=$BOOT/hookswitch
STATE=/var/lib/hookswitch-firstboot
CONFIG=/etc/hookswitch/config.json
NODE_MAJOR_MIN=20
# Seconds between apt-get update attempts while the network settles (tests set 0).
RETRY_DELAY=${HOOKSWITCH_FIRSTBOOT_RETRY_DELAY:-15}

log() {
    printf 'hookswitch-firstboot: %s\n' "$*"
    if [ -d "$STAGE" ]; then
        printf '%s %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >> "$STAGE/firstboot.log" 2>/dev/null || true
    fi
}
die() { log "$*"; exit 1; }

install_unit() {
    local root="" start=0 here
    while [ $# -gt 0 ]; do
        case "$1" in
            --root) [ $# -ge 2 ] || die "install-unit: --root needs a directory"; root=${2%/}; shift 2 ;;
            --start) start=1; shift ;;
            *) die "install-unit: unknown argument $1" ;;
        esac
    done
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    [ -f "$here/$UNIT" ] || die "install-unit: $here/$UNIT is missing"
    mkdir -p "$root$LIBDIR" "$root/etc/systemd/system/multi-user.target.wants"
    # cp then chmod: the source may sit on FAT, whose modes mean nothing.
    cp "$here/hookswitch-firstboot.sh" "$root$LIBDIR/hookswitch-firstboot.sh.new"
    chmod 0755 "$root$LIBDIR/hookswitch-firstboot.sh.new"
    mv -f "$root$LIBDIR/hookswitch-firstboot.sh.new" "$root$LIBDIR/hookswitch-firstboot.sh"
    cp "$here/$UNIT" "$root/etc/systemd/system/$UNIT.new"
    chmod 0644 "$root/etc/systemd/system/$UNIT.new"
    mv -f "$root/etc/systemd/system/$UNIT.new" "$root/etc/systemd/system/$UNIT"
    ln -sfn "/etc/systemd/system/$UNIT" "$root/etc/systemd/system/multi-user.target.wants/$UNIT"
    log "installed and enabled $UNIT${root:+ in $root}"
    if [ "$start" -eq 1 ]; then
        systemctl daemon-reload
        systemctl start --no-block "$UNIT"
    fi
}

# The major version apt would install for nodejs ("Candidate:" of apt-cache policy; an epoch
# such as "1:" is dropped), 0 when apt knows none.
node_candidate_major() {
    local candidate
    candidate=$(apt-cache policy nodejs 2>/dev/null | awk '$1 == "Candidate:" { print $2; exit }')
    candidate=${candidate#*:}
    if [[ "$candidate" =~ ^([0-9]+)\. ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    else
        printf '0\n'
    fi
}

apt_update() {
    local attempt
    for attempt in 1 2 3 4; do
        # A Pi without a real-time clock may boot with a date before the archive's Release file.
        if apt-get -o Acquire::Check-Date=false update; then
            return 0
        fi
        log "apt-get update failed (attempt $attempt); retrying in ${RETRY_DELAY}s"
        sleep "$RETRY_DELAY"
    done
    return 1
}

# Puts the staged config in place as the package's postinst left the directory: root:hookswitch,
# 0660, replaced by rename so a half-written file never shows.
install_config() {
    [ -f "$STAGE/config.json" ] || return 0
    mkdir -p "$(dirname "$CONFIG")"
    cp "$STAGE/config.json" "$CONFIG.firstboot"
    chown root:hookswitch "$CONFIG.firstboot"
    chmod 0660 "$CONFIG.firstboot"
    mv -f "$CONFIG.firstboot" "$CONFIG"
    # It may hold trunk passwords: off the world-readable boot partition.
    rm -f "$STAGE/config.json"
    log "wrote $CONFIG"
}

# Appends the staged board lines missing from config.txt, under their header comment, after
# copying config.txt to config.txt.hookswitch-backup (kept from the first change on).
# Returns 0 when config.txt changed.
apply_board_lines() {
    local add=$STAGE/config.txt.add cfg=$BOOT/config.txt header="" line missing=()
    [ -s "$add" ] || return 1
    [ -f "$cfg" ] || { log "no $cfg: board lines not applied"; return 1; }
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
            '') ;;
            '#'*) [ -n "$header" ] || header=$line ;;
            *) grep -qxF -- "$line" "$cfg" || missing+=("$line") ;;
        esac
    done < "$add"
    [ "${#missing[@]}" -gt 0 ] || return 1
    [ -f "$cfg.hookswitch-backup" ] || cp -p "$cfg" "$cfg.hookswitch-backup"
    # config.txt may end without a newline.
    local lead=$'\n'
    [ -z "$(tail -c 1 "$cfg")" ] || lead=$'\n\n'
    # [all]: the lines apply to every model, whatever [filter] section ends the file.
    printf '%s%s\n[all]\n' "$lead" "${header:-# hookswitch}" >> "$cfg"
    printf '%s\n' "${missing[@]}" >> "$cfg"
    log "added ${#missing[@]} line(s) to $cfg (backup: $cfg.hookswitch-backup)"
    return 0
}

remove_self() {
    systemctl disable "$UNIT" || rm -f "/etc/systemd/system/multi-user.target.wants/$UNIT"
    rm -f "/etc/systemd/system/$UNIT" "$LIBDIR/hookswitch-firstboot.sh"
    rmdir "$LIBDIR" 2>/dev/null || true
    systemctl daemon-reload || true
}

run() {
    local deb reboot_needed=0 major
    mkdir -p "$STATE"
    if [ -f "$STATE/done" ]; then
        log "already done ($(cat "$STATE/done")); removing the unit"
        rm -f "$STAGE"/hookswitch_*_all.deb
        remove_self
        return 0
    fi
    deb=$(find "$STAGE" -maxdepth 1 -name 'hookswitch_*_all.deb' -type f 2>/dev/null | sort -V | tail -n 1)
    [ -n "$deb" ] || die "no hookswitch_*_all.deb in $STAGE: nothing to install"

    apt_update || die "apt-get update failed: no network? The next boot tries again."
    major=$(node_candidate_major)
    if [ "$major" -lt "$NODE_MAJOR_MIN" ]; then
        cat > "$STAGE/FAILED.txt" <<EOF
hookswitch was NOT installed: it needs Node.js $NODE_MAJOR_MIN or newer, and apt on this Pi
offers nodejs $major (Raspberry Pi OS bookworm ships 18; trixie ships 20).
Nothing was installed. Either flash Raspberry Pi OS trixie, or log in, add an apt
repository you trust that has nodejs $NODE_MAJOR_MIN+ and reboot: this hook tries again on
every boot until it succeeds. Details: journalctl -u $UNIT
EOF
        printf 'node %s < %s\n' "$major" "$NODE_MAJOR_MIN" > "$STATE/failed"
        die "apt offers nodejs $major, hookswitch needs $NODE_MAJOR_MIN or newer: nothing installed (see $STAGE/FAILED.txt)"
    fi

    log "installing $deb"
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$deb"
    install_config
    if apply_board_lines; then reboot_needed=1; fi

    date '+%Y-%m-%d %H:%M:%S' > "$STATE/done"
    rm -f "$STATE/failed" "$STAGE/FAILED.txt" "$STAGE"/hookswitch_*_all.deb
    remove_self
    if [ "$reboot_needed" -eq 1 ]; then
        log "config.txt changed: rebooting to load the overlays"
        systemctl --no-block reboot
    else
        systemctl try-restart hookswitch.service || true
        log "done: hookswitch is installed and running (journalctl -u hookswitch)"
    fi
}

case "${1:-}" in
    install-unit) shift; install_unit "$@" ;;
    run) run ;;
    *) printf 'usage: %s install-unit [--root DIR] [--start] | run\n' "$0" >&2; exit 2 ;;
esac
