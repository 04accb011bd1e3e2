#!/bin/bash
# Written by hookswitch's scripts/prepare-sd.sh in the form Raspberry Pi Imager gives its own
# firstrun.sh, so the image's handling of that script applies unchanged: the kernel command line
# runs it once (systemd.run=/boot/firstrun.sh), it enables hookswitch-firstboot.service in the
# root file system, removes itself and the command-line arguments, and systemd reboots
# (systemd.run_success_action=reboot). The unit installs hookswitch on the next boot.
# Keep the removal of this script the last command before the command-line clean-up: Raspberry
# Pi OS rewrites the end of the script from that line on when it moves it to /boot/firmware.
set +e

for boot in /boot/firmware /boot; do
   if [ -f "$boot/hookswitch/hookswitch-firstboot.sh" ]; then
      bash "$boot/hookswitch/hookswitch-firstboot.sh" install-unit
      break
   fi
done

rm -f /boot/firmware/firstrun.sh /boot/firstrun.sh
sed -i 's| systemd\.run[^ ]*||g; s| systemd\.unit=kernel-command-line\.target||g' /boot/firmware/cmdline.txt /boot/cmdline.txt 2>/dev/null
exit 0
