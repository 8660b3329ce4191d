#!/usr/bin/env python3
"""Golden compressed packets for src/proto/compress.rs, made by the reference
codecs: python3's zlib module (the zlib C library) and the `zstd` command-line
tool (libzstd), never by the crates the driver uses.

    python3 src/proto/testdata/golden_compress.py

Prints the small vectors as Rust byte arrays (pasted into the tests) and
writes the two 16 MiB vectors next to this script:

  big.zlib.wire, big.zst.wire   two compressed packets (sequence ids 255 and
      0: the sequence wraps) carrying one 16 MiB + 100 byte logical packet,
      a text row of one value, split in two ordinary packets; the compressed
      packet boundary falls 4 bytes before the end of the first ordinary
      packet, so the second compressed packet holds its tail and the whole
      second ordinary packet, header included.

The plain bytes are rebuilt by the Rust tests by the same rules.
"""
import os
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MAX_PAYLOAD = 0xFFFFFF


def u24(n):
    return n.to_bytes(3, "little")


def pkt(seq, payload):
    """Ordinary packets: payloads of 16 MiB - 1 and more are split."""
    out = b""
    while True:
        chunk, payload = payload[:MAX_PAYLOAD], payload[MAX_PAYLOAD:]
        out += u24(len(chunk)) + bytes([seq & 0xFF]) + chunk
        seq += 1
        if len(chunk) < MAX_PAYLOAD:
            return out


def lenenc_str(s):
    assert len(s) < 251
    return bytes([len(s)]) + s


def small_result():
    """A one-column, one-row text result: column count, column definition,
    row, OK-as-EOF, in one compressed packet."""
    coldef = b"".join(lenenc_str(s) for s in [b"def", b"", b"", b"", b"v", b""])
    coldef += bytes([0x0C, 0x21, 0x00, 0x78, 0, 0, 0, 0xFD, 0, 0, 0x1F, 0, 0])
    return (
        pkt(1, b"\x01")
        + pkt(2, coldef)
        + pkt(3, lenenc_str(b"ab" * 30))
        + pkt(4, b"\xfe\x00\x00\x02\x00\x00\x00")
    )


def big_row():
    n = MAX_PAYLOAD + 100
    value = n - 9
    return pkt(3, b"\xfe" + value.to_bytes(8, "little") + b"z" * value)


def zstd_cli(data, *flags):
    # From a file, so the frame records its content size like the server's
    # ZSTD_compressCCtx does.
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "in")
        with open(src, "wb") as f:
            f.write(data)
        return subprocess.run(
            ["zstd", "-q", "-c", *flags, src], check=True, capture_output=True
        ).stdout


def compressed_packet(seq, plain, payload):
    return u24(len(payload)) + bytes([seq]) + u24(len(plain)) + payload


def rust(name, data):
    body = ", ".join(f"0x{b:02x}" for b in data)
    return f"const {name}: [u8; {len(data)}] = [{body}];"


def main():
    plain = small_result()
    print(f"// small result: {len(plain)} plain bytes")
    print(rust("SMALL_RESULT_ZLIB", compressed_packet(1, plain, zlib.compress(plain, 6))))
    print(rust("SMALL_RESULT_ZSTD", compressed_packet(1, plain, zstd_cli(plain, "-3", "--no-check"))))
    print(rust("SMALL_RESULT_ZSTD_CHECKSUM", compressed_packet(1, plain, zstd_cli(plain, "-3", "--check"))))
    big = big_row()
    chunks = [big[:MAX_PAYLOAD], big[MAX_PAYLOAD:]]
    for name, codec in [
        ("big.zlib.wire", lambda c: zlib.compress(c, 6)),
        ("big.zst.wire", lambda c: zstd_cli(c, "-3", "--no-check")),
    ]:
        wire = b"".join(
            compressed_packet(seq, c, codec(c)) for seq, c in zip([255, 0], chunks)
        )
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(wire)
        heads = [wire[:7].hex(" ")]
        second = 7 + int.from_bytes(wire[:3], "little")
        heads.append(wire[second : second + 7].hex(" "))
        print(f"// {name}: {len(wire)} bytes, headers {heads}", file=sys.stderr)


if __name__ == "__main__":
    main()
