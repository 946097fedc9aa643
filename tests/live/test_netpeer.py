"""The network peer the Linux guest's NIC is wired to, driven over its unix socket with the frames a guest
sends (QEMU's stream netdev framing: a 4-byte big-endian length, then the Ethernet frame)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

from harness.live.guest.netpeer import PEER_IP, PEER_MAC, STREAM_PORT, NetPeer, checksum

GUEST_MAC = bytes.fromhex("525400123456")
GUEST_IP = bytes([10, 0, 2, 15])
SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def _ip(text: str) -> bytes:
    return bytes(int(x) for x in text.split("."))


def arp_request() -> bytes:
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + GUEST_MAC + GUEST_IP + b"\0" * 6 + _ip(PEER_IP)
    return b"\xff" * 6 + GUEST_MAC + b"\x08\x06" + body


def tcp(seq: int, ack: int, flags: int, data: bytes = b"", sport: int = 40000) -> bytes:
    head = struct.pack("!HHIIBBHHH", sport, STREAM_PORT, seq, ack, 5 << 4, flags, 65535, 0, 0)
    pseudo = GUEST_IP + _ip(PEER_IP) + struct.pack("!BBH", 0, 6, len(head) + len(data))
    head = head[:16] + struct.pack("!H", checksum(pseudo + head + data)) + head[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(head) + len(data), 1, 0x4000, 64, 6, 0, GUEST_IP,
                     _ip(PEER_IP))  # fmt: skip
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return PEER_MAC + GUEST_MAC + b"\x08\x00" + ip + head + data


class Link:
    """One QEMU's connection to the peer."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, path: Path) -> Link:
        return cls(*await asyncio.open_unix_connection(str(path)))

    async def send(self, frame: bytes) -> None:
        self.writer.write(struct.pack("!I", len(frame)) + frame)
        await self.writer.drain()

    async def receive(self) -> bytes:
        size = struct.unpack("!I", await asyncio.wait_for(self.reader.readexactly(4), 2))[0]
        return await asyncio.wait_for(self.reader.readexactly(size), 2)


def tcp_reply(frame: bytes) -> tuple[int, int, int]:
    """(seq, ack, flags) of a TCP frame the peer sent, after checking both checksums."""
    ip, seg = frame[14:34], frame[34:]
    assert checksum(ip) == 0
    pseudo = ip[12:16] + ip[16:20] + struct.pack("!BBH", 0, 6, len(seg))
    assert checksum(pseudo + seg) == 0
    _, _, seq, ack, _, flags = struct.unpack("!HHIIBB", seg[:14])
    return seq, ack, flags


def test_arp_and_a_tcp_stream_across_two_qemus(tmp_path: Path) -> None:
    async def scenario() -> NetPeer:
        peer = NetPeer(tmp_path / "net.sock")
        await peer.start()
        src = await Link.open(peer.path)
        await src.send(arp_request())
        arp = await src.receive()
        assert arp[12:14] == b"\x08\x06" and arp[22:28] == PEER_MAC and arp[28:32] == _ip(PEER_IP)
        await src.send(tcp(1000, 0, SYN))
        iss, ack, flags = tcp_reply(await src.receive())
        assert flags == SYN | ACK and ack == 1001
        await src.send(tcp(1001, iss + 1, ACK))
        await src.send(tcp(1001, iss + 1, PSH | ACK, b"cprnet 0 ab\ncprnet 1 ab\n"))
        assert tcp_reply(await src.receive())[1] == 1001 + 24
        await src.send(tcp(1001, iss + 1, PSH | ACK, b"cprnet 0 ab\ncprnet 1 ab\n"))  # retransmitted
        assert tcp_reply(await src.receive())[1] == 1025
        # the destination QEMU connects; the guest's next segment comes through it, and so do the answers
        dst = await Link.open(peer.path)
        await dst.send(tcp(1025, iss + 1, PSH | ACK, b"cprnet 2 ab\n"))
        assert tcp_reply(await dst.receive())[1] == 1037
        await dst.send(tcp(1037, iss + 1, FIN | ACK))
        seq, ack, flags = tcp_reply(await dst.receive())
        assert flags == FIN | ACK and ack == 1038 and seq == iss + 1
        await peer.close()
        return peer

    peer = asyncio.run(scenario())
    st = peer.stream()
    assert st is not None and peer.arp_replies == 1 and len(peer.streams) == 1
    assert [ln.text for ln in st.lines] == ["cprnet 0 ab", "cprnet 1 ab", "cprnet 2 ab"]
    assert [ln.link for ln in st.lines] == [1, 1, 2]
    assert st.retransmits == 1 and st.fin_at is not None and st.reset_at is None
    assert not peer.path.exists()


def test_segments_of_an_unknown_stream_are_reset(tmp_path: Path) -> None:
    """What the guest meets when its NIC is wired to another peer after the switch (fault swap_netdev)."""

    async def scenario() -> tuple[NetPeer, tuple[int, int, int]]:
        peer = NetPeer(tmp_path / "other.sock")
        await peer.start()
        link = await Link.open(peer.path)
        await link.send(tcp(5000, 77, PSH | ACK, b"cprnet 9 ab\n"))
        reply = tcp_reply(await link.receive())
        await peer.close()
        return peer, reply

    peer, (_, ack, flags) = asyncio.run(scenario())
    assert flags == RST | ACK and ack == 5000 + 12 and peer.streams == []


def test_a_reset_from_the_guest_ends_the_stream(tmp_path: Path) -> None:
    async def scenario() -> NetPeer:
        peer = NetPeer(tmp_path / "net.sock")
        await peer.start()
        link = await Link.open(peer.path)
        await link.send(tcp(1, 0, SYN))
        iss = tcp_reply(await link.receive())[0]
        await link.send(tcp(2, iss + 1, RST | ACK))
        await asyncio.sleep(0.05)
        await peer.close()
        return peer

    st = asyncio.run(scenario()).stream()
    assert st is not None and st.reset_at is not None and st.lines == []


def test_frames_it_does_not_handle_are_counted_not_answered(tmp_path: Path) -> None:
    async def scenario() -> NetPeer:
        peer = NetPeer(tmp_path / "net.sock")
        await peer.start()
        link = await Link.open(peer.path)
        await link.send(b"\x33\x33\0\0\0\x16" + GUEST_MAC + b"\x86\xdd" + b"\0" * 40)  # IPv6 multicast
        await link.send(b"\xff" * 6 + GUEST_MAC + b"\x88\xcc" + b"\0" * 30)  # LLDP
        await asyncio.sleep(0.05)
        await peer.close()
        return peer

    peer = asyncio.run(scenario())
    assert peer.ignored == {"ethertype 0x86dd": 1, "ethertype 0x88cc": 1} and peer.streams == []


def test_checksum_matches_rfc1071_example() -> None:
    data = bytes.fromhex("0001f203f4f5f6f7")  # RFC 1071, section 3: one's complement sum ddf2
    assert checksum(data) == 0xFFFF - 0xDDF2
