#!/bin/sh
# compile.sh OUT SLEEP FILL_MB LINKS: the fake tree's only build step.
set -eu
out=$1
sleep "$2"
if [ "$3" -gt 0 ]; then
    dd if=/dev/zero of=objects.bin bs=1M count="$3" 2>&1
fi
printf '#!/bin/sh\necho "QEMU emulator version 0.0.1 (fake tree for fault tests)"\n' > "$out"
chmod +x "$out"
mkdir -p pc-bios
printf 'firmware\n' > pc-bios/fake.bin
if [ "${4:-0}" = 1 ]; then  # what a hostile tree could leave for the host to copy
    ln -sf /etc/passwd pc-bios/evil.bin
    ln -sf /etc/shadow qemu-system-evil
fi
