#!/bin/sh
# cpr-assemble-guest OUT INIT MODULE...: the Linux test guest from this image's packages.
#   OUT/vmlinuz       Debian's cloud kernel, as packaged
#   OUT/initrd.img    busybox-static + INIT as /init + MODULE... (and their dependencies), uncompressed
#                     .ko files in load order (lib/modules/load.order); a reproducible newc cpio, gzip -n
#   OUT/fw/           SeaBIOS, its VGA BIOSes, OVMF code and variables
#   OUT/versions.txt  key=value: the kernel release and the version of every package used
# Runs as any user (no capability is needed; the initramfs holds no device node).
set -eu
out=$1 init=$2
shift 2
kver=$(ls /lib/modules | head -n 1)
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/run" "$root/tmp" "$root/lib/modules"
cp /bin/busybox "$root/bin/busybox"
cp "$init" "$root/init"
chmod 0755 "$root/init"
: > "$root/lib/modules/load.order"
dep=/lib/modules/$kver/modules.dep
add() {  # add module $1 (a path relative to /lib/modules/KVER) after its dependencies
    local name d
    name=$(basename "$1" .xz)
    grep -qx "$name" "$root/lib/modules/load.order" && return 0
    for d in $(grep "^$1:" "$dep" | cut -d: -f2); do add "$d"; done
    xz -dc "/lib/modules/$kver/$1" > "$root/lib/modules/$name"
    echo "$name" >> "$root/lib/modules/load.order"
}
for m in "$@"; do
    path=$(grep -o "^[^:]*/$m\.ko\.xz" "$dep" || true)
    [ -n "$path" ] || { echo "module $m not found in $kver" >&2; exit 1; }
    add "$path"
done
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9n > "$out/initrd.img"
cp "/boot/vmlinuz-$kver" "$out/vmlinuz"
mkdir -p "$out/fw"
cp /usr/share/seabios/bios-256k.bin /usr/share/seabios/vgabios-stdvga.bin /usr/share/seabios/vgabios-virtio.bin \
   /usr/share/seabios/vgabios-qxl.bin \
   /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_VARS_4M.fd "$out/fw/"
{
    echo "kernel=$kver"
    echo "modules=$(tr '\n' ' ' < "$root/lib/modules/load.order" | sed 's/ $//')"
    for p in "linux-image-$kver" busybox-static seabios ovmf; do
        echo "$p=$(dpkg-query -W -f '${Version}' "$p")"
    done
} > "$out/versions.txt"
rm -rf "$root"
