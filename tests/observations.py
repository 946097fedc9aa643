"""Observations of good runs, for the tests of the checks: each test changes one thing and expects one
check to fail (and every other one to hold)."""

from __future__ import annotations

from pathlib import Path

from harness.live.checks import Observation, SideObservation, evaluate
from harness.live.guest import linux
from harness.live.guest.disks import Record
from harness.live.guest.netpeer import Line, TcpStream
from harness.live.guest.session import DiskImage, GuestObservation
from harness.live.result import Check

MiB = 1024 * 1024
BOOT_ID = "7c1e04a9"
LINUX_DEVICES = ("virtio-blk-raw", "virtio-blk-qcow2", "virtio-net", "virtio-serial", "virtio-rng")
T0 = 1_795_000_000.0  # an epoch second in 2026

# `info qtree` of a q35 guest with default IDE (abridged from QEMU 11.1, -machine q35 -nodefaults).
QTREE_SRC = """\
bus: main-system-bus
  type System
  dev: hpet, id ""
    gpio-in "" 2
    gpio-out "" 1
    gpio-out "sysbus-irq" 32
    timers = 3 (0x3)
    msi = false
    hpet-intcap = 16711940 (0xff0104)
    hpet-offset-saved = true
    mmio 00000000fed00000/0000000000000400
  dev: ioapic, id ""
    gpio-in "" 24
    version = 32 (0x20)
    mmio 00000000fec00000/0000000000001000
  dev: q35-pcihost, id ""
    MCFG = 2952790016 (0xb0000000)
    pci-hole64-size = 34359738368 (32 GiB)
    short_root_bus = 0 (0x0)
    below-4g-mem-size = 268435456 (256 MiB)
    above-4g-mem-size = 0 (0 B)
    x-pci-hole64-fix = true
    x-config-reg-migration-enabled = true
    bus: pcie.0
      type PCIE
      dev: ich9-ahci, id ""
        addr = 1f.2
        romfile = ""
        romsize = 4294967295 (0xffffffff)
        multifunction = false
        class SATA controller, addr 00:1f.2, pci id 8086:2922 (sub 1af4:1100)
        bar 4: i/o at 0xc040 [0xc05f]
        bar 5: mem at 0xfebd1000 [0xfebd1fff]
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
        bus: ide.1
          type IDE
        bus: ide.0
          type IDE
      dev: ICH9-LPC, id ""
        gpio-out "gsi" 24
        noreboot = true
        smm-compat = false
        addr = 1f.0
        class ISA bridge, addr 00:1f.0, pci id 8086:2918 (sub 1af4:1100)
        bus: isa.0
          type ISA
          dev: isa-serial, id ""
            index = 0 (0x0)
            iobase = 1016 (0x3f8)
            irq = 4 (0x4)
      dev: mch, id ""
        extended-tseg-mbytes = 16 (0x10)
        smbase-smram = true
        addr = 00.0
        class Host bridge, addr 00:00.0, pci id 8086:29c0 (sub 1af4:1100)
"""

# The destination of a cpr-exec whose argv carried a stray positional argument (taken as -hda): the
# guest grew an ide-hd on ide.0 (as observed in /work/shared/seeds/000_4d8084bd803e1235.txt, where the
# bus order also changed).
QTREE_DST_EXTRA_HD = QTREE_SRC.replace(
    """\
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
        bus: ide.1
          type IDE
        bus: ide.0
          type IDE
""",
    """\
        bus: ide.1
          type IDE
        bus: ide.2
          type IDE
          dev: ide-cd, id ""
            drive = "ide2-cd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
        bus: ide.0
          type IDE
          dev: ide-hd, id ""
            drive = "ide0-hd0"
            backend_defaults = "auto"
            logical_block_size = 512 (512 B)
            physical_block_size = 512 (512 B)
            unit = 0 (0x0)
""",
)


# Device memory of a SeaBIOS q35 guest as `info mtree -f` and the ACPI tables give it (digests abridged).
DEVICE_MEMORY = {
    "rom pc.bios 0xfffc0000-0xffffffff": "fc6d2ea888862e6b" * 4,
    "rom ram0 0xc0000-0xc9fff": "a4423f522ec92992" * 4,
    "rom ram0 0xf0000-0xfffff": "a494cb5963f41c38" * 4,
    "vga.vram 0xfd000000-0xfd00ffff (head)": "542b64b9b4ab8baa" * 4,
    "acpi DSDT 0x1ffe0040": "afc67ed6e3eec4fb" * 4,
    "acpi FACP 0x1ffe219d": "6aa4d557be9fdc46" * 4,
}


def serial_log(first: int = 0, count: int = 60, boot_id: str = "7c1e04a9", boots: int = 1) -> str:
    """What the guest prints: a boot marker, then one counter line per ~0.1 s."""
    lines = []
    for _ in range(boots):
        lines.append(f"CPRGUEST BOOT {boot_id}")
        lines.extend(f"CPRGUEST N={n}" for n in range(first, first + count))
    return "\n".join(lines) + "\n"


def events_src(t_stop: float) -> list[dict]:
    return [
        {"event": "MIGRATION", "data": {"status": "setup"}, "t": t_stop - 0.004},
        {"event": "MIGRATION", "data": {"status": "active"}, "t": t_stop - 0.003},
        {"event": "STOP", "data": {}, "t": t_stop},
        {"event": "MIGRATION", "data": {"status": "device"}, "t": t_stop + 0.0001},
        {"event": "MIGRATION", "data": {"status": "completed"}, "t": t_stop + 0.0012},
    ]


def events_dst(t_resume: float) -> list[dict]:
    return [
        {"event": "MIGRATION", "data": {"status": "active"}, "t": t_resume - 0.002},
        {"event": "MIGRATION", "data": {"status": "completed"}, "t": t_resume - 0.0001},
        {"event": "RESUME", "data": {}, "t": t_resume},
    ]


def good(mode: str = "cpr-transfer") -> Observation:
    """A realistic observation of a successful run in ``mode``."""
    if mode == "boot":
        src = SideObservation("source", ["running"], [], QTREE_SRC, [3, 14, 27], None, None)
        return Observation("boot", serial_log(0, 30), src, None, 256 * MiB)
    src_states = ["running"] if mode == "cpr-exec" else ["running", "finish-migrate", "postmigrate"]
    src = SideObservation(
        role="source",
        runstates=src_states,
        events=events_src(T0),
        qtree=QTREE_SRC,
        counters=[12, 25, 31],
        ram_digest="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        exit_code=None if mode == "cpr-exec" else 0,
        device_memory=dict(DEVICE_MEMORY),
    )
    dst = SideObservation(
        role="destination",
        runstates=["inmigrate", "running"],
        events=events_dst(T0 + 0.0025),
        qtree=QTREE_SRC,
        counters=[31, 33, 47],
        ram_digest=src.ram_digest,
        exit_code=None,
        device_memory=dict(DEVICE_MEMORY),
    )
    return Observation(
        mode=mode,
        serial_log=serial_log(0, 60),
        source=src,
        destination=dst,
        guest_ram_bytes=256 * MiB,
        state_file_bytes=108_412 if mode in ("cpr-reboot", "cpr-exec") else None,
        downtime_ms=2.0,
        leftover_processes=[],
    )


def by_name(obs: Observation) -> dict[str, Check]:
    checks = evaluate(obs)
    return {c.name: c for c in checks}


def one(obs: Observation, name: str) -> Check:
    return by_name(obs)[name]


NAMES = [
    "runstates",
    "boot-marker",
    "counter-serial",
    "counter-qmp",
    "ram-digest",
    "device-tree",
    "device-memory",
    "process-hygiene",
    "state-file-size",
    "pause-time",
    "sanitizers",
]


def good_linux(mode: str = "cpr-transfer", devices: tuple[str, ...] = LINUX_DEVICES) -> Observation:
    """A realistic observation of the Linux guest on the virtio machine (disks, stream, self-check)."""
    obs = good(mode)
    records = 16 if mode != "boot" else 8
    disks = []
    for i, name in enumerate(d for d in devices if d.startswith("virtio-blk-")):
        device = f"vd{chr(ord('a') + i)}"
        recs = [Record(n, device, n, BOOT_ID, True) for n in range(records)]
        disks.append(DiskImage(device, name.removeprefix("virtio-blk-"), Path(f"/tmp/disk{i}"), recs, "", 8))
    stream = None
    if "virtio-net" in devices:
        stream = TcpStream(40000, T0 - 5, 1, fin_at=T0 + 4)
        stream.lines = [
            Line(f"cprnet {n} {BOOT_ID}", T0 - 5 + n * 0.1 + (0.2 if n >= 50 else 0), 1 if n < 50 else 2)
            for n in range(80)
        ]
    disk_lines = "\n".join(
        f"CPRSELF DISK {d.device} written={records} verified={records} bad= io-errors=0" for d in disks
    )
    serial = obs.serial_log + (disk_lines + "\n" if disks else "")
    if stream is not None:
        serial += "CPRSELF NET sent=80 nc-exit=0 ended=asked\n"
    serial += "CPRSELF RNG current=virtio_rng.0 bytes=16\nCPRSELF VERDICT PASS token=t1\n"
    obs.serial_log = serial
    console = [
        (T0 - 9, "[    2.6] Run /init as init process\n[    3.0] virtio_blk virtio0: [vda] 32768 512-byte\n"),
        (T0 + 2, "[    9.1] init (1): drop_caches: 3\n"),
    ]
    obs.guest = GuestObservation(
        machine="virtio",
        devices=list(devices),
        boot_id=BOOT_ID,
        info={"kernel": "6.12.117+deb13-cloud-amd64"},
        token="t1",
        self_check=linux.self_check(serial, "t1"),
        console=console,
        disks=disks,
        stream=stream,
        streams=1 if stream else 0,
        net_links=2 if stream else 0,
        vport=list(range(1, 40)) if "virtio-serial" in devices else None,
    )
    return obs
