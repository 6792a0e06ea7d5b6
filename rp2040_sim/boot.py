"""Booting as the chip does (datasheet 2.8.1; pico-bootrom): the bootrom's part is done here, boot2 and the
application run in the emulator.

1. The image (UF2 checked by firmware/uf2.py's reader, ELF by its load addresses, or a raw BIN) goes into flash.
2. The bootrom reads 256 bytes at flash offset 0 and checks the CRC-32/MPEG-2 of bytes 0..251 against the word at
   252. On a mismatch the chip does not boot the image (it falls back to USB boot): we stop right there.
3. It copies those 256 bytes to 0x20041F00 and jumps there with LR = 0 and SP = 0x20041F00 (the ROM's initial
   MSP, datasheet 2.8.3); boot2 sets up the SSI and, seeing LR = 0,
   enters the application through the vector table at 0x10000100.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

from firmware.uf2 import MAX_UF2_BYTES, Uf2Error, crc32_mpeg2, read_uf2
from firmware.untrusted import InputError, read_regular
from rp2040_sim.elfinfo import ELF_MAX_BYTES, ElfError, ElfInfo
from rp2040_sim.memory import (BOOT2_CRC_OFFSET, BOOT2_SIZE, BOOT2_SRAM_ADDR, BOOTROM_SP, FLASH_SIZE, XIP_BASE)


class BootError(Exception):
    """The image cannot be loaded or the RP2040 would refuse to boot it; the message says which file and why."""


@dataclass
class FlashImage:
    data: bytes
    source: Path
    kind: str                  # "uf2", "elf" or "bin"
    elf: ElfInfo | None        # symbols for names, lines, stack and RAM figures
    file_sha256: str = ""      # of the file as read (the UF2 itself for a .uf2): what emulator.json records


# Largest file accepted per image kind, checked before reading (firmware.untrusted.read_regular).
IMAGE_LIMITS = {".uf2": MAX_UF2_BYTES, ".bin": FLASH_SIZE}  # anything else may be an ELF: ELF_MAX_BYTES


def load_image(path, elf_path=None) -> FlashImage:
    """Read a UF2, ELF or BIN. A UF2 or BIN finds its symbols in `elf_path` or a sibling `<stem>.elf`, which must
    hold the same program: every loadable segment of the ELF is in the image byte for byte."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        raw = read_regular(path, IMAGE_LIMITS.get(suffix, ELF_MAX_BYTES), "firmware image")
    except InputError as e:
        hint = ("; give a firmware .uf2, .elf or .bin (build one with `python -m firmware.build`)" if e.missing else
                f" (e.g. {path}/firmware.uf2)" if path.is_dir() else "")
        raise BootError(str(e) + hint) from None
    if raw[:4] == b"\x7fELF":
        try:
            elf = ElfInfo(path, raw)
            return FlashImage(elf.flash_image(), path, "elf", elf, hashlib.sha256(raw).hexdigest())
        except ElfError as e:
            raise BootError(str(e)) from None
    if suffix == ".uf2":
        try:
            base, data = read_uf2(raw, str(path))
        except Uf2Error as e:
            raise BootError(str(e)) from None
        if base != XIP_BASE:
            raise BootError(f"{path}: image starts at 0x{base:08x}; the bootrom reads boot2 from flash offset 0 "
                            f"(0x{XIP_BASE:08x}), so this UF2 cannot boot by itself")
        kind = "uf2"
    elif suffix == ".bin":
        data, kind = raw, "bin"
    elif suffix == ".elf":
        raise BootError(f"{path}: not an ELF file (it does not start with the ELF magic: empty, truncated or "
                        f"another format); rebuild it with `python -m firmware.build`")
    else:
        raise BootError(f"{path}: unknown image type '{suffix}'; expected .uf2, .elf (ELF magic) or .bin")
    elf = None
    candidate = Path(elf_path) if elf_path else path.with_suffix(".elf")
    if candidate.exists() or elf_path:
        try:
            elf = ElfInfo(candidate)
            problem = elf.mismatch(data, str(path))
        except ElfError as e:
            raise BootError(str(e) + (" (given with --elf)" if elf_path else "")) from None
        if problem:
            how = "given with --elf" if elf_path else "found beside the image"
            raise BootError(f"{problem}. The ELF ({how}) gives the symbols, RAM and stack figures, so they would "
                            f"describe another program: rebuild, or pass --elf with this image's own ELF")
    return FlashImage(data, path, kind, elf, hashlib.sha256(raw).hexdigest())


def check_boot2(image: FlashImage):
    """The bootrom's check (datasheet 2.8.1.3): CRC-32/MPEG-2 of bytes 0..251 == LE word at 252."""
    data = image.data
    if len(data) < BOOT2_SIZE:
        raise BootError(f"{image.source}: the RP2040 would not boot this image: it is {len(data)} bytes, shorter "
                        f"than the {BOOT2_SIZE}-byte boot2 stage the bootrom reads from flash offset 0")
    stored = struct.unpack_from("<I", data, BOOT2_CRC_OFFSET)[0]
    computed = crc32_mpeg2(data[:BOOT2_CRC_OFFSET])
    if stored != computed:
        raise BootError(f"{image.source}: the RP2040 would not boot this image: boot2 CRC at flash offset "
                        f"{BOOT2_CRC_OFFSET} is 0x{stored:08x}, the bootrom computes 0x{computed:08x} "
                        f"(CRC-32/MPEG-2 of bytes 0..{BOOT2_CRC_OFFSET - 1}); the chip would fall back to USB boot. "
                        f"Rebuild so boot2 carries its CRC (firmware.uf2.boot2_with_crc)")


def prepare(sim, image: FlashImage) -> int:
    """Do the bootrom's part on `sim`; returns the address to start at (boot2 in SRAM)."""
    sim.load_flash(image.data)
    check_boot2(image)
    sim.write(BOOT2_SRAM_ADDR, image.data[:BOOT2_SIZE])
    sim.set_regs(sp=BOOTROM_SP, lr=0)
    if image.elf is not None and image.elf.stack_region():
        sim.set_stack_limit(image.elf.stack_region()[0])
    return BOOT2_SRAM_ADDR
