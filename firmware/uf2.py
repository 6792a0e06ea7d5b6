"""UF2 images for the RP2040: a writer, and a strict reader that applies the bootrom's rules.

Sources: the UF2 format is microsoft/uf2 README ("UF2 spec" below); what the RP2040 accepts is the RP2040 datasheet
§2.8 (bootrom: §2.8.1 boot sequence / boot2 CRC, §2.8.4 USB mass storage / UF2) and pico-bootrom virtual_disk.c.
The bootrom silently *ignores* blocks it does not like; this reader rejects them instead, naming file, block and
rule, because a silently ignored block is a firmware that does not run.

CLI:  python -m firmware.uf2 check FILE [--elf ELF]   (exit 0 when valid, 1 with a message otherwise, 2 on usage)
      python -m firmware.uf2 info FILE [--elf ELF]    (the same checks, then a summary)
With an ELF (given, or FILE's sibling <stem>.elf) every loadable segment must be in the image byte for byte: that
catches a truncated or stale UF2, which the format rules alone cannot.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

from firmware.untrusted import InputError, read_regular

# --- UF2 spec (microsoft/uf2 README, "File format") ---
UF2_BLOCK_SIZE = 512
UF2_MAGIC_START0 = 0x0A324655  # "UF2\n"
UF2_MAGIC_START1 = 0x9E5D5157
UF2_MAGIC_END = 0x0AB16F30
UF2_FLAG_NOT_MAIN_FLASH = 0x00000001
UF2_FLAG_FILE_CONTAINER = 0x00001000
UF2_FLAG_FAMILY_ID_PRESENT = 0x00002000
UF2_FLAG_MD5_PRESENT = 0x00004000
UF2_FLAG_EXTENSION_TAGS = 0x00008000
UF2_HEADER = struct.Struct("<8I")  # magic0 magic1 flags addr size blockno numblocks family
UF2_DATA_OFFSET = 32
UF2_DATA_MAX = 476
UF2_END_OFFSET = 508

# --- RP2040 specifics (datasheet §2.8.4; pico-bootrom virtual_disk.c) ---
RP2040_FAMILY_ID = 0xE48BFF56
RP2040_PAYLOAD_SIZE = 256  # the bootrom only accepts 256-byte payloads ...
RP2040_FLASH_PAGE = 256  # ... written to 256-aligned flash addresses
# --- RP2040 memory map (datasheet §2.2, pico-sdk addressmap.h); Pico board flash is 2 MB (W25Q16) ---
XIP_BASE = 0x10000000
FLASH_SIZE = 2 * 1024 * 1024
SRAM_BASE = 0x20000000
SRAM_END = 0x20042000  # SRAM0-3 striped 256 kB + SRAM4/5 4 kB each
# The largest file this reader can accept: one 512-byte block per 256-byte page of the 2 MB flash (4 MiB).
MAX_UF2_BYTES = FLASH_SIZE // RP2040_PAYLOAD_SIZE * UF2_BLOCK_SIZE

# --- boot2 (datasheet §2.8.1): 256 bytes at flash offset 0, CRC-32/MPEG-2 over 0..251, LE word at 252 ---
BOOT2_SIZE = 256
BOOT2_CODE_MAX = 252
CRC32_MPEG2_POLY = 0x04C11DB7  # MSB-first, init 0xFFFFFFFF, no reflection, no final XOR
CRC32_MPEG2_INIT = 0xFFFFFFFF
# boot2 hands over to the vector table at flash offset 0x100 (datasheet §2.8.1; pico-sdk boot2 exit_from_boot2)
VECTOR_TABLE_OFFSET = 0x100


class Uf2Error(Exception):
    """An image the RP2040 would not boot; the message names the file, the block (when there is one) and the rule."""


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ CRC32_MPEG2_POLY) if crc & 0x80000000 else (crc << 1)
        table.append(crc & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2 as the bootrom computes it over boot2 (check value of b"123456789" is 0x0376E6E7)."""
    crc = CRC32_MPEG2_INIT
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) ^ byte) & 0xFF]
    return crc


def boot2_with_crc(code: bytes) -> bytes:
    """boot2 code zero-padded to 252 bytes plus its CRC (little-endian): the 256 bytes at flash offset 0."""
    if len(code) > BOOT2_CODE_MAX:
        raise ValueError(f"boot2 code is {len(code)} bytes; the bootrom loads at most {BOOT2_CODE_MAX} "
                         f"(datasheet §2.8.1) — shorten the boot2 source")
    padded = bytes(code) + bytes(BOOT2_CODE_MAX - len(code))
    return padded + struct.pack("<I", crc32_mpeg2(padded))


def write_uf2(image: bytes, base: int = XIP_BASE) -> bytes:
    """UF2 file for a flash image at `base`: 256-byte payloads (last one padded with 0xFF, erased flash), numbered
    0..n-1, family ID present."""
    if base % RP2040_FLASH_PAGE:
        raise ValueError(f"base address 0x{base:08x} is not {RP2040_FLASH_PAGE}-aligned")
    if not image:
        raise ValueError("empty flash image")
    if base < XIP_BASE or base + len(image) > XIP_BASE + FLASH_SIZE:
        raise ValueError(f"image of {len(image)} bytes at 0x{base:08x} does not fit the {FLASH_SIZE} byte flash "
                         f"at 0x{XIP_BASE:08x}")
    image = bytes(image)
    if len(image) % RP2040_PAYLOAD_SIZE:
        image += b"\xff" * (RP2040_PAYLOAD_SIZE - len(image) % RP2040_PAYLOAD_SIZE)
    count = len(image) // RP2040_PAYLOAD_SIZE
    blocks = []
    for i in range(count):
        payload = image[i * RP2040_PAYLOAD_SIZE:(i + 1) * RP2040_PAYLOAD_SIZE]
        header = UF2_HEADER.pack(UF2_MAGIC_START0, UF2_MAGIC_START1, UF2_FLAG_FAMILY_ID_PRESENT,
                                 base + i * RP2040_PAYLOAD_SIZE, RP2040_PAYLOAD_SIZE, i, count, RP2040_FAMILY_ID)
        data = payload + bytes(UF2_DATA_MAX - len(payload))
        blocks.append(header + data + struct.pack("<I", UF2_MAGIC_END))
    return b"".join(blocks)


def read_uf2(data: bytes, name: str = "<uf2>") -> tuple[int, bytes]:
    """Validate a UF2 file strictly and return (base address, contiguous flash image).

    Beyond the bootrom's own rules this reader requires the blocks in ascending, gap-free address order (what
    `write_uf2`, pico-sdk's elf2uf2 and uf2conv produce for a single image), so that one contiguous image results.
    """
    if not data:
        raise Uf2Error(f"{name}: empty file; a UF2 file is a sequence of {UF2_BLOCK_SIZE}-byte blocks")
    if len(data) % UF2_BLOCK_SIZE:
        raise Uf2Error(f"{name}: size {len(data)} is not a multiple of {UF2_BLOCK_SIZE} (UF2 spec: fixed-size "
                       f"blocks); the file is truncated or not UF2")
    count = len(data) // UF2_BLOCK_SIZE
    base = None
    parts = []
    for i in range(count):
        block = data[i * UF2_BLOCK_SIZE:(i + 1) * UF2_BLOCK_SIZE]
        magic0, magic1, flags, addr, size, blockno, numblocks, family = UF2_HEADER.unpack_from(block)
        (magic_end,) = struct.unpack_from("<I", block, UF2_END_OFFSET)

        def fail(rule: str):
            raise Uf2Error(f"{name}: block {i}: {rule}")

        if magic0 != UF2_MAGIC_START0 or magic1 != UF2_MAGIC_START1:
            fail(f"start magics 0x{magic0:08x} 0x{magic1:08x}, expected 0x{UF2_MAGIC_START0:08x} "
                 f"0x{UF2_MAGIC_START1:08x} (UF2 spec)")
        if magic_end != UF2_MAGIC_END:
            fail(f"end magic 0x{magic_end:08x}, expected 0x{UF2_MAGIC_END:08x} (UF2 spec)")
        if flags & UF2_FLAG_NOT_MAIN_FLASH:
            fail(f"flags 0x{flags:08x} has 0x{UF2_FLAG_NOT_MAIN_FLASH:x} 'not main flash'; the RP2040 bootrom "
                 f"ignores such blocks")
        if flags & UF2_FLAG_FILE_CONTAINER:
            fail(f"flags 0x{flags:08x} has 0x{UF2_FLAG_FILE_CONTAINER:x} 'file container'; not a flash image")
        if not flags & UF2_FLAG_FAMILY_ID_PRESENT:
            fail(f"flags 0x{flags:08x} lack 0x{UF2_FLAG_FAMILY_ID_PRESENT:x} 'familyID present'; the RP2040 "
                 f"bootrom ignores blocks without a family ID")
        if family != RP2040_FAMILY_ID:
            fail(f"family ID 0x{family:08x}, the RP2040's is 0x{RP2040_FAMILY_ID:08x}")
        if size != RP2040_PAYLOAD_SIZE:
            fail(f"payload size {size}, the RP2040 bootrom only accepts {RP2040_PAYLOAD_SIZE}")
        if addr % RP2040_FLASH_PAGE:
            fail(f"target address 0x{addr:08x} is not {RP2040_FLASH_PAGE}-aligned (RP2040 bootrom rule)")
        if not XIP_BASE <= addr <= XIP_BASE + FLASH_SIZE - RP2040_PAYLOAD_SIZE:
            fail(f"target address 0x{addr:08x} is outside the {FLASH_SIZE}-byte flash at 0x{XIP_BASE:08x}")
        if blockno != i:
            fail(f"block number {blockno}, expected {i} (UF2 spec: blocks numbered from 0 in file order)")
        if numblocks != count:
            fail(f"number of blocks {numblocks}, but the file holds {count}")
        if any(block[UF2_DATA_OFFSET + size:UF2_END_OFFSET]):
            fail("non-zero bytes after the payload (UF2 spec: data area padded with zeros)")
        if base is None:
            base = addr
        elif addr != base + i * RP2040_PAYLOAD_SIZE:
            fail(f"target address 0x{addr:08x}, expected 0x{base + i * RP2040_PAYLOAD_SIZE:08x} "
                 f"(this reader requires ascending, gap-free blocks)")
        parts.append(block[UF2_DATA_OFFSET:UF2_DATA_OFFSET + size])
    return base, b"".join(parts)


def check_image(base: int, image: bytes, name: str = "<image>"):
    """The image boots: boot2 with a valid CRC at flash offset 0, a plausible vector table at offset 0x100."""
    if base != XIP_BASE:
        raise Uf2Error(f"{name}: image starts at 0x{base:08x}; the bootrom reads boot2 from flash offset 0 "
                       f"(0x{XIP_BASE:08x})")
    if len(image) < VECTOR_TABLE_OFFSET + 8:
        raise Uf2Error(f"{name}: image of {len(image)} bytes is too short to hold boot2 and a vector table")
    stored = struct.unpack_from("<I", image, BOOT2_CODE_MAX)[0]
    computed = crc32_mpeg2(image[:BOOT2_CODE_MAX])
    if stored != computed:
        raise Uf2Error(f"{name}: boot2 CRC 0x{stored:08x} at offset {BOOT2_CODE_MAX}, computed 0x{computed:08x} "
                       f"(CRC-32/MPEG-2 over bytes 0..{BOOT2_CODE_MAX - 1}, datasheet §2.8.1); "
                       f"the bootrom would not boot it")
    sp, reset = struct.unpack_from("<II", image, VECTOR_TABLE_OFFSET)
    if not SRAM_BASE < sp <= SRAM_END or sp % 4:
        raise Uf2Error(f"{name}: vector table at 0x{base + VECTOR_TABLE_OFFSET:08x}: initial SP 0x{sp:08x} is not "
                       f"a word-aligned address inside SRAM (0x{SRAM_BASE:08x}..0x{SRAM_END:08x})")
    if not reset & 1:
        raise Uf2Error(f"{name}: vector table: reset vector 0x{reset:08x} is even; Cortex-M0+ runs Thumb only, "
                       f"so bit 0 must be set (the core would HardFault on the first instruction)")
    code_lo, code_hi = base + VECTOR_TABLE_OFFSET + 8, base + len(image)
    if not code_lo <= (reset & ~1) < code_hi:
        raise Uf2Error(f"{name}: vector table: reset vector 0x{reset:08x} points outside the image (its code is "
                       f"0x{code_lo:08x}..0x{code_hi:08x}); the image is truncated or not linked for 0x{base:08x}")
    # Only words 0 and 1 are certain: a minimal image may put code right after them, so the other vectors are not
    # read. What lies past the reset handler (a truncated image still passes up to here) needs the ELF:
    # check_against_elf, or the emulator run that firmware.flash requires.


def check_against_elf(image: bytes, segments, name: str = "<image>", elf_name: str = "<elf>"):
    """Every loadable segment of the program's ELF, [(load address, bytes)], is in `image` (at XIP_BASE) byte for
    byte: a truncated UF2 lacks the end of the last segment, a stale one differs inside."""
    for lma, data in segments:
        off = lma - XIP_BASE
        have = image[off:off + len(data)]
        if len(have) < len(data):
            raise Uf2Error(f"{name}: image ends at 0x{XIP_BASE + len(image):08x} but {elf_name} loads "
                           f"{len(data)} bytes at 0x{lma:08x} (up to 0x{lma + len(data):08x}): the image is truncated")
        if have != data:
            first = next(i for i in range(len(data)) if have[i] != data[i])
            raise Uf2Error(f"{name}: differs from {elf_name}'s segment at 0x{lma:08x} first at 0x{lma + first:08x}: "
                           f"they are not the same program (a stale ELF or image); rebuild both")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m firmware.uf2", description="check a UF2 by the RP2040 bootrom's rules")
    p.add_argument("command", choices=("check", "info"))
    p.add_argument("file")
    p.add_argument("--elf", help="the program's ELF, whose loadable segments the image must hold "
                                 "(default: FILE's sibling <stem>.elf when present)")
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # usage errors: argparse printed them; return its status instead of exiting
        return e.code
    path = args.file
    elf_path = Path(args.elf) if args.elf else Path(path).with_suffix(".elf")
    try:
        data = read_regular(path, MAX_UF2_BYTES, "UF2 file")
        base, image = read_uf2(data, path)
        check_image(base, image, path)
        elf_note = "no ELF given or beside it: the bytes past the vector table are unchecked"
        if args.elf or elf_path.is_file():
            from rp2040_sim.elfinfo import ElfError, ElfInfo
            try:
                elf = ElfInfo(elf_path)
                check_against_elf(image, elf.load_segments(), path, str(elf_path))
            except ElfError as e:
                raise Uf2Error(str(e)) from None
            elf_note = f"every loadable segment of {elf_path} is in the image"
    except (InputError, Uf2Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.command == "check":
        print(f"{path}: OK ({len(data) // UF2_BLOCK_SIZE} blocks, {len(image)} bytes at 0x{base:08x}; {elf_note})")
    else:
        sp, reset = struct.unpack_from("<II", image, VECTOR_TABLE_OFFSET)
        print(f"file        {path}")
        print(f"blocks      {len(data) // UF2_BLOCK_SIZE} x {RP2040_PAYLOAD_SIZE} B, family 0x{RP2040_FAMILY_ID:08x}")
        print(f"flash       0x{base:08x}..0x{base + len(image):08x} ({len(image)} bytes)")
        print(f"boot2 crc   0x{crc32_mpeg2(image[:BOOT2_CODE_MAX]):08x} (valid)")
        print(f"initial sp  0x{sp:08x}")
        print(f"reset       0x{reset:08x}")
        print(f"elf         {elf_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
