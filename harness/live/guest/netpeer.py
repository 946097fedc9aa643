"""The harness's end of the Linux guest's network: a listener QEMU's ``-netdev stream`` connects to.

The scenario container has no network, and a lean QEMU build has no user-mode (slirp) backend, so the
guest's virtio-net is wired to a unix socket that this module owns. QEMU frames each Ethernet frame with
a 4-byte big-endian length. Every QEMU of a scenario connects (the source, then the destination; cpr-exec
reconnects from the same process), and the peer treats them as one link: it answers on the connection
that most recently delivered a frame, i.e. the QEMU that runs the guest.

Behind the link sits a minimal IPv4 host (standard library only): it answers ARP for its address and
accepts TCP connections on one port, receiving in order (acknowledging every segment, ignoring
retransmitted data) and closing when the guest does. What the guest sends is data: every line is kept
with its arrival time, and :class:`TcpStream` records what the checks need (opened, retransmits, how it
ended, which QEMU connection carried each line).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

PEER_IP = "10.0.2.2"
GUEST_IP = "10.0.2.15"
PREFIX_LEN = 24
PEER_MAC = bytes.fromhex("525400c0ff02")
GUEST_MAC = "52:54:00:12:34:56"
STREAM_PORT = 7777
WINDOW = 65535
MAX_FRAME = 65536 + 14
_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


@dataclass
class Line:
    """One line the guest sent on a TCP stream: its text, arrival time (epoch s) and QEMU connection."""

    text: str
    t: float
    link: int


@dataclass
class TcpStream:
    """One TCP connection the guest opened to the peer (receive side only)."""

    guest_port: int
    opened_at: float
    link: int  # the QEMU connection that carried the SYN
    rcv_nxt: int = 0
    snd_nxt: int = 0
    syns: int = 1
    retransmits: int = 0  # segments whose data the peer already had
    fin_at: float | None = None
    reset_at: float | None = None
    lines: list[Line] = field(default_factory=list)
    _partial: bytes = b""

    def receive(self, data: bytes, t: float, link: int) -> None:
        buf = self._partial + data
        *complete, self._partial = buf.split(b"\n")
        self.lines += [Line(c.decode("ascii", "replace").strip(), t, link) for c in complete]

    def to_json(self) -> dict[str, object]:
        return {
            "guest_port": self.guest_port,
            "opened_at": self.opened_at,
            "syns": self.syns,
            "retransmits": self.retransmits,
            "fin_at": self.fin_at,
            "reset_at": self.reset_at,
            "lines": len(self.lines),
        }


@dataclass
class _Link:
    number: int
    writer: asyncio.StreamWriter
    opened_at: float
    closed_at: float | None = None
    frames_in: int = 0


class NetPeer:
    """A unix-socket listener for ``-netdev stream,server=off`` with a minimal IPv4/TCP receiver."""

    def __init__(self, path: Path, ip: str = PEER_IP, port: int = STREAM_PORT) -> None:
        self.path, self.ip, self.port = path, _ip(ip), port
        self.links: list[_Link] = []
        self.streams: list[TcpStream] = []
        self.ignored: dict[str, int] = {}  # frames the peer does not handle, by kind
        self.arp_replies = 0
        self._active: _Link | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ip_id = random.randrange(1 << 16)

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        for link in self.links:
            link.writer.close()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(OSError):
            self.path.unlink()

    def stream(self) -> TcpStream | None:
        """The first TCP stream the guest opened (the one the workload keeps open across the switch)."""
        return self.streams[0] if self.streams else None

    # ---- the link: QEMU connections ----
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(len(self.links) + 1, writer, time.time())
        self.links.append(link)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                size = struct.unpack("!I", await reader.readexactly(4))[0]
                if not 14 <= size <= MAX_FRAME:
                    self._ignore("bad frame length")
                    break
                frame = await reader.readexactly(size)
                link.frames_in += 1
                self._active = link
                self._frame(link, frame)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            link.closed_at = time.time()
            if self._active is link:
                open_links = [x for x in self.links if x.closed_at is None]
                self._active = open_links[-1] if open_links else None
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    def _send(self, frame: bytes) -> None:
        link = self._active
        if link is None or link.writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            link.writer.write(struct.pack("!I", len(frame)) + frame)

    def _ignore(self, kind: str) -> None:
        self.ignored[kind] = self.ignored.get(kind, 0) + 1

    # ---- Ethernet, ARP, IPv4 ----
    def _frame(self, link: _Link, frame: bytes) -> None:
        dst, src, ethertype = frame[:6], frame[6:12], struct.unpack("!H", frame[12:14])[0]
        if ethertype == 0x0806:
            self._arp(src, frame[14:])
        elif ethertype == 0x0800 and dst in (PEER_MAC, b"\xff" * 6):
            self._ipv4(link, src, frame[14:])
        else:
            self._ignore(f"ethertype {ethertype:#06x}")

    def _arp(self, mac: bytes, arp: bytes) -> None:
        if len(arp) < 28 or arp[6:8] != b"\x00\x01" or arp[24:28] != self.ip:
            return
        sender_mac, sender_ip = arp[8:14], arp[14:18]
        reply = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + PEER_MAC + self.ip + sender_mac + sender_ip
        self._send(mac + PEER_MAC + b"\x08\x06" + reply)
        self.arp_replies += 1

    def _ipv4(self, link: _Link, mac: bytes, pkt: bytes) -> None:
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return self._ignore("bad IPv4")
        ihl, total = (pkt[0] & 0x0F) * 4, struct.unpack("!H", pkt[2:4])[0]
        if pkt[16:20] != self.ip:
            return self._ignore("IPv4 for another host")
        if pkt[9] != 6:
            return self._ignore(f"IP protocol {pkt[9]}")
        self._tcp(link, mac, pkt[12:16], pkt[ihl:total])

    def _ipv4_out(self, mac: bytes, dst_ip: bytes, payload: bytes) -> None:
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self._ip_id, 0x4000, 64, 6, 0,
                           self.ip, dst_ip)  # fmt: skip
        head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
        self._send(mac + PEER_MAC + b"\x08\x00" + head + payload)

    # ---- TCP (receive side) ----
    def _tcp(self, link: _Link, mac: bytes, src_ip: bytes, seg: bytes) -> None:
        if len(seg) < 20:
            return self._ignore("short TCP segment")
        sport, dport, seq, ack, off, flags = struct.unpack("!HHIIBB", seg[:14])
        data = seg[(off >> 4) * 4 :]
        now = time.time()
        if dport != self.port:
            return self._reply(mac, src_ip, sport, dport, 0, seq + len(data) + 1, _RST | _ACK)
        st = next((s for s in self.streams if s.guest_port == sport and s.reset_at is None), None)
        if flags & _SYN and not flags & _ACK:
            if st is None or st.fin_at is not None:
                st = TcpStream(sport, now, link.number, rcv_nxt=seq + 1, snd_nxt=random.randrange(1 << 32))
                self.streams.append(st)
            else:
                st.syns += 1  # a retransmitted SYN: answer it again
            self._reply(mac, src_ip, sport, dport, st.snd_nxt, st.rcv_nxt, _SYN | _ACK, mss=1460)
            return
        if st is None:
            if not flags & _RST:
                self._reply(mac, src_ip, sport, dport, ack, seq + len(data), _RST | _ACK)
            return
        if flags & _RST:
            st.reset_at = now
            return
        if ack == (st.snd_nxt + 1) & 0xFFFFFFFF and st.fin_at is None:
            st.snd_nxt = ack  # the guest acknowledged our SYN (or FIN)
        if data:
            if seq == st.rcv_nxt:
                st.receive(data, now, link.number)
                st.rcv_nxt = (st.rcv_nxt + len(data)) & 0xFFFFFFFF
            else:
                st.retransmits += 1
        fin = bool(flags & _FIN) and (seq + len(data)) & 0xFFFFFFFF == st.rcv_nxt
        if fin and st.fin_at is None:
            st.fin_at = now
            st.rcv_nxt = (st.rcv_nxt + 1) & 0xFFFFFFFF
        if fin or (flags & _FIN and st.fin_at is not None):
            self._reply(mac, src_ip, sport, dport, st.snd_nxt, st.rcv_nxt, _FIN | _ACK)
        elif data:
            self._reply(mac, src_ip, sport, dport, st.snd_nxt, st.rcv_nxt, _ACK)

    def _reply(
        self, mac: bytes, dst_ip: bytes, dport: int, sport: int, seq: int, ack: int, flags: int, mss: int = 0
    ) -> None:
        options = struct.pack("!BBH", 2, 4, mss) if mss else b""
        head = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                           (5 + len(options) // 4) << 4, flags, WINDOW, 0, 0) + options  # fmt: skip
        pseudo = self.ip + dst_ip + struct.pack("!BBH", 0, 6, len(head))
        head = head[:16] + struct.pack("!H", checksum(pseudo + head)) + head[18:]
        self._ipv4_out(mac, dst_ip, head)
