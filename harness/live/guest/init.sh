#!/bin/busybox sh
# cpr-harness Linux test guest: /init of the initramfs (busybox sh, PID 1).
#
# Protocol (parsed by harness/live/guest/linux.py; the numbers come from the kernel command line,
# cprguest.<key>=<value>, so that the harness alone decides them):
#   ttyS0 (COM1, the harness's serial.log)    CPRGUEST BOOT <id>, then CPRGUEST N=<n> every ~0.1 s,
#                                             CPRINFO <key>=<value> facts, CPRSELF <...> self-check lines
#   ttyS1 (COM2, a socket the harness owns)   the kernel console out; commands in ("CHECK <token>")
#   RAM (a memmap-reserved range)             u32 counter, boot id, magic at ctr, ctr+4, ctr+12; a
#                                             pattern of patlen bytes at pat, written once at boot
#   each virtio disk /dev/vdX                 record n at sector n: "cprdisk vdX n <id> <uptime> <crc32>"
#   eth0 (when present)                       one TCP connection to the peer: "cprnet <n> <id>" lines
#   the first virtio-serial port (if any)     CPRVPORT N=<n>, as on ttyS0
/bin/busybox mkdir -p /bin /proc /sys /dev /run
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
exec 0</dev/console 1>/dev/console 2>&1  # the initramfs has no /dev/console node of its own

param() {  # param KEY DEFAULT: the value of cprguest.KEY on the kernel command line
    for word in $(cat /proc/cmdline); do
        case $word in "cprguest.$1="*) echo "${word#*=}"; return ;; esac
    done
    echo "$2"
}
CTR=$(param ctr 0x70000)
PAT=$(param pat 0x60000)
PATLEN=$(param patlen 65536)
TICK=$(param tick 0.1)
DISK_TICK=$(param disktick 0.25)
NET_ADDR=$(param net 10.0.2.15/24)
PEER=$(param peer 10.0.2.2:7777)
MAGIC=0x47525043

for m in $(cat /lib/modules/load.order); do insmod "/lib/modules/$m" 2>/run/insmod.err || cat /run/insmod.err; done
stty -F /dev/ttyS0 raw -echo
stty -F /dev/ttyS1 -echo
exec 4>/dev/ttyS0 3</dev/ttyS1
bootid=$(cut -c1-8 /proc/sys/kernel/random/boot_id)
echo "CPRGUEST BOOT $bootid" >&4
say() { echo "CPRINFO $*" >&4; }
say "kernel=$(uname -r)"
rsdp=$(dmesg | sed -n 's/.*ACPI: RSDP 0x0*\([0-9A-Fa-f]*\).*/\1/p' | head -n 1)
[ -n "$rsdp" ] && say "acpi-rsdp=0x$rsdp"

disk_writer() {  # $1 = vdX: record n at sector n, fsync'ed; the exact bytes also kept in /run/$1.expect
    local d=$1 i=0 rec sum
    : > "/run/$d.expect"
    : > "/run/$d.err"
    while [ ! -e /run/stop ]; do
        rec="cprdisk $d $i $bootid $(cut -d' ' -f1 /proc/uptime)"
        sum=$(printf '%s' "$rec" | crc32)
        printf '%s %s\n' "$rec" "$sum" | dd of="/run/$d.rec" bs=512 conv=sync status=none
        dd if="/run/$d.rec" of="/dev/$d" bs=512 seek="$i" conv=fsync status=none 2>>"/run/$d.err"
        cat "/run/$d.rec" >> "/run/$d.expect"
        i=$((i + 1))
        echo "$i" > "/run/$d.count"
        sleep "$DISK_TICK"
    done
    touch "/run/$d.done"
}

net_stream() {  # one TCP connection, kept open until the self-check: "cprnet <n> <id>" every tick
    ( i=0
      while [ ! -e /run/stop ]; do
          echo "cprnet $i $bootid"
          i=$((i + 1))
          echo "$i" > /run/net.count
          sleep "$TICK"
      done ) | nc "${PEER%:*}" "${PEER#*:}" 2>/run/net.err
    echo "$?" > /run/net.exit
    # busybox nc exits 0 on a reset too: a stream that ended before the self-check asked is a failure
    if [ -e /run/stop ]; then echo asked > /run/net.end; else echo early > /run/net.end; fi
    touch /run/net.done
}

disks=""
for dev in /sys/block/vd*; do
    [ -e "$dev" ] || continue
    d=${dev##*/}
    disks="$disks $d"
    disk_writer "$d" &
done
say "disks=$(echo $disks | tr ' ' ',')"
net=""
if [ -e /sys/class/net/eth0 ]; then
    ip link set eth0 up && ip addr add "$NET_ADDR" dev eth0 && net=eth0
    say "net=$net peer=$PEER"
    [ -n "$net" ] && net_stream &
fi
vport=""
for p in /dev/vport*p*; do [ -e "$p" ] && vport=$p && break; done
[ -n "$vport" ] && exec 5>"$vport" && say "vport=$vport"
rng=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
[ "$rng" = none ] && rng=""
say "rng=${rng:-none}"

# RAM: the pattern (taken from busybox's own bytes: fixed, not zero) and the counter page
dd if=/bin/busybox of=/dev/mem bs="$PATLEN" count=1 skip=1 seek=$((PAT / PATLEN)) conv=notrunc status=none
devmem "$CTR" 32 0
devmem $((CTR + 4)) 32 "0x$bootid"
devmem $((CTR + 12)) 32 "$MAGIC"

selfcheck() {  # $1 = token: stop the writers, read everything back past the page cache, one verdict line
    local w i d cnt bad nbad errs verdict sent code end got
    touch /run/stop
    for w in $disks net; do
        [ "$w" = net ] && [ -z "$net" ] && continue
        i=0
        while [ ! -e "/run/$w.done" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    done
    sync
    echo 3 > /proc/sys/vm/drop_caches
    verdict=PASS
    for d in $disks; do
        cnt=$(cat "/run/$d.count" 2>/dev/null || echo 0)
        dd if="/dev/$d" of="/run/$d.read" bs=512 count="$cnt" iflag=direct status=none
        bad=$(cmp -l "/run/$d.expect" "/run/$d.read" 2>&1 | awk '/EOF/ {print "eof"; next} {print int(($1 - 1) / 512)}' | uniq)
        nbad=$(echo "$bad" | grep -c .)
        errs=$(grep -c . "/run/$d.err")
        [ "$nbad" = 0 ] && [ "$errs" = 0 ] || verdict=FAIL
        echo "CPRSELF DISK $d written=$cnt verified=$((cnt - nbad)) bad=$(echo $bad | tr ' ' ',' | cut -c1-80) io-errors=$errs" >&4
    done
    if [ -n "$net" ]; then
        sent=$(cat /run/net.count 2>/dev/null || echo 0)
        code=$(cat /run/net.exit 2>/dev/null || echo running)
        end=$(cat /run/net.end 2>/dev/null || echo running)
        [ "$code" = 0 ] && [ "$end" = asked ] || verdict=FAIL
        echo "CPRSELF NET sent=$sent nc-exit=$code ended=$end $(head -c 80 /run/net.err)" >&4
    fi
    if [ -n "$rng" ]; then
        got=$(timeout 5 dd if=/dev/hwrng bs=16 count=1 status=none | wc -c)
        [ "$got" = 16 ] || verdict=FAIL
        echo "CPRSELF RNG current=$rng bytes=$got" >&4
    fi
    [ -n "$vport" ] && echo "CPRSELF VPORT written=$n_last" >&4
    echo "CPRSELF VERDICT $verdict token=$1" >&4
}

( while read -r cmd arg <&3; do
      [ "$cmd" = CHECK ] && echo "$arg" > /run/check.new && mv /run/check.new /run/check
  done ) &

n=0
n_last=0
while :; do
    n=$((n + 1))
    devmem "$CTR" 32 "$n"
    echo "CPRGUEST N=$n" >&4
    [ -n "$vport" ] && echo "CPRVPORT N=$n" >&5 && n_last=$n
    if [ -e /run/check ]; then
        token=$(cat /run/check)
        rm -f /run/check
        selfcheck "$token"
    fi
    sleep "$TICK"
done
