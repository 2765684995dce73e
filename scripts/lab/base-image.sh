#!/usr/bin/env bash
# Build the lab's base image (Debian bookworm with systemd, python3, sudo and
# openssh-server) from debootstrap + `docker import`: no registry is needed.
# The image carries a label with the hash of this recipe and is rebuilt only
# when the recipe changes. Quiet when the image is current.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
image=${LAB_IMAGE:-commons-infra/debian:bookworm}
packages=python3,python3-apt,systemd,systemd-sysv,dbus,iproute2,procps,sudo,openssh-server,ca-certificates,iputils-ping,netcat-openbsd
recipe_hash=$( (cat "$0"; echo "$packages") | sha256sum | cut -c1-16)

current=$(docker image inspect -f '{{ index .Config.Labels "org.commons-infra.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe_hash" ]; then
  exit 0
fi

# The mirror is read from this machine's apt sources at run time, never written down.
sources=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mirror_for() {  # $1 = suite; prints the first URI that serves it
  awk -v suite="$1" '
    /^deb / { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { uri = $i; s = $(i + 1); if (s == suite) { print uri; exit } } }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite && uri != "") { print uri; exit } }
  ' <<<"$sources"
}
mirror=$(mirror_for bookworm)
security=$(mirror_for bookworm-security)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

echo "lab: building $image (recipe $recipe_hash) from $mirror"
rootfs=$(mktemp -d /var/tmp/commons-infra-rootfs.XXXXXX)
chmod 755 "$rootfs"
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
  tail -n 30 "$rootfs.log" >&2; exit 1; }
rm -f "$rootfs.log"

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
SOURCES
# Package lists baked in: a converge within a day skips `apt-get update`.
chroot "$rootfs" apt-get update -qq
# Keep downloaded .debs: /var/cache/apt/archives is a shared volume in the lab.
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$rootfs/etc/apt/apt.conf.d/10keep-debs"
# A container has no consoles; these units only fail and slow the boot.
for unit in getty.target console-getty.service systemd-logind.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
rm -f "$rootfs"/etc/ssh/ssh_host_*  # each container generates its own host keys
mkdir -p "$rootfs/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
  >"$rootfs/etc/systemd/system/ssh.service.d/hostkeys.conf"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb

tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change "LABEL org.commons-infra.recipe=$recipe_hash" \
  - "$image" >/dev/null
echo "lab: $image ready"
