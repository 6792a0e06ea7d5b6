"""rp2040_sim's own bootrom (datasheet 2.8), built from the sources beside this file, and the check of a
user-supplied official bootrom image (`--bootrom FILE`).

The ROM is assembled and compiled with the Debian cross toolchain (arm-none-eabi-gcc, Cortex-M0+, Thumb) and
linked against its libgcc (soft-float arithmetic) into a cache directory keyed by the hash of the sources and
flags, like the native cycle counter (rp2040_sim/native): the first emulator start after a change builds it
(about a second), later ones read the cached 16 kB image. `python -m rp2040_sim build-native` builds both.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from rp2040_sim.memory import ROM_FILL_HALFWORD, ROM_SIZE
from rp2040_sim.native import cache_dir

HERE = Path(__file__).resolve().parent
SOURCES = ("rom.S", "bits.c", "flash.c", "float.c")
HEADERS = ("rom.h", "rom.ld")
CPU_FLAGS = ["-mcpu=cortex-m0plus", "-mthumb"]
# -fno-builtin and no loop-pattern distribution: memset/memcpy loops must not become calls to themselves.
CFLAGS = ["-Os", "-ffreestanding", "-fno-builtin", "-fno-tree-loop-distribute-patterns", "-ffunction-sections",
          "-Wall", "-Wextra", "-Werror"]
LDFLAGS = ["-nostdlib", "-nostartfiles", "-Wl,--gc-sections"]
DEBIAN_PACKAGE = "gcc-arm-none-eabi"

# The fixed header (datasheet 2.8.3): magic 'M','u' then the table-layout version at 0x10..0x12.
ROM_MAGIC_OFFSET, ROM_MAGIC = 0x10, b"Mu\x01"
ROM_VERSION_OFFSET = 0x13
# bkpt immediates our ROM executes (rom.S), with what the emulator says when it stops on them.
BKPT_USB_BOOT, BKPT_DEAD = 0xB0, 0xDE
BKPT_REASONS = {
    BKPT_USB_BOOT: ("usb boot", "firmware asked to reboot into USB boot (ROM reset_to_usb_boot, or the ROM's boot2 "
                                "CRC check failed); the emulator has no USB mass-storage loader"),
    BKPT_DEAD: ("rom exception", "NMI or HardFault vector of the ROM taken"),
}


class RomError(RuntimeError):
    """The ROM could not be built or a --bootrom image is not an RP2040 bootrom; the message says why."""


def image_path() -> Path:
    h = hashlib.sha256()
    for name in SOURCES + HEADERS:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    h.update(" ".join(CPU_FLAGS + CFLAGS + LDFLAGS).encode())
    return cache_dir() / f"rom-{h.hexdigest()[:16]}.bin"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise RomError(f"{name} not found: rp2040_sim builds its bootrom from {HERE} with the ARM cross toolchain; "
                       f"install it (`sudo apt-get install -y {DEBIAN_PACKAGE}`, or `make setup`)")
    return path


def build(force: bool = False) -> Path:
    """Build the ROM image into the cache unless an up-to-date one is there; returns its path."""
    out = image_path()
    if out.is_file() and not force:
        return out
    gcc, objcopy = _tool("arm-none-eabi-gcc"), _tool("arm-none-eabi-objcopy")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        work = Path(work)
        objs = []
        for name in SOURCES:
            obj = work / (name + ".o")
            _run([gcc, *CPU_FLAGS, *CFLAGS, "-c", str(HERE / name), "-o", str(obj)])
            objs.append(str(obj))
        elf = work / "rom.elf"
        _run([gcc, *CPU_FLAGS, *LDFLAGS, "-T", str(HERE / "rom.ld"), "-o", str(elf), *objs, "-lgcc"])
        raw = work / "rom.bin"
        _run([objcopy, "-O", "binary", str(elf), str(raw)])
        data = raw.read_bytes()
        if len(data) > ROM_SIZE:
            raise RomError(f"the ROM built from {HERE} is {len(data)} bytes, over the {ROM_SIZE}-byte ROM")
        fd, tmp = tempfile.mkstemp(suffix=".bin", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, out)                   # atomic: parallel workers never read half an image
    return out


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RomError(f"building the rp2040_sim ROM failed: {' '.join(cmd)}\n{proc.stderr.strip()}")


_cached: bytes | None = None


def image() -> bytes:
    """Our ROM padded to 16 kB (UDF beyond its end, so a stray jump there stops with a clear fault)."""
    global _cached
    if _cached is None:
        data = build().read_bytes()
        _cached = data + ROM_FILL_HALFWORD.to_bytes(2, "little") * ((ROM_SIZE - len(data)) // 2)
    return _cached


def check_official(path) -> bytes:
    """Read a user-supplied bootrom image (an official RP2040 ROM dump, exactly 16 kB with the 'M','u',1 magic)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(ROM_SIZE + 1)
    except FileNotFoundError:
        raise RomError(f"{path}: no such file (--bootrom takes a 16 kB RP2040 bootrom image)") from None
    except IsADirectoryError:
        raise RomError(f"{path}: is a directory; --bootrom takes a 16 kB RP2040 bootrom image file") from None
    except OSError as e:
        raise RomError(f"{path}: cannot read it ({e.strerror})") from None
    if len(data) != ROM_SIZE:
        size = f"{len(data)} bytes" if len(data) <= ROM_SIZE else f"more than {ROM_SIZE} bytes"
        raise RomError(f"{path}: {size}; an RP2040 bootrom image is exactly {ROM_SIZE} bytes (16 kB)")
    magic = data[ROM_MAGIC_OFFSET:ROM_MAGIC_OFFSET + len(ROM_MAGIC)]
    if magic != ROM_MAGIC:
        raise RomError(f"{path}: bytes 0x10..0x12 are {magic.hex()}, not the RP2040 bootrom magic "
                       f"'M','u',1 ({ROM_MAGIC.hex()}); this is not an RP2040 bootrom image")
    return data


ROM_FUNC_TABLE_OFFSET = 0x14            # datasheet 2.8.3: halfword pointer to the function table
BLX_R6 = 0x47B0                         # wait_for_vector's branch into the entry core 0 sent (rom.S)


def lookup(data: bytes, code: str) -> int | None:
    """rom_func_lookup in Python: the address of the function with this two-letter code, or None."""
    want = ord(code[0]) | ord(code[1]) << 8
    at = int.from_bytes(data[ROM_FUNC_TABLE_OFFSET:ROM_FUNC_TABLE_OFFSET + 2], "little")
    while (key := int.from_bytes(data[at:at + 2], "little")) != 0:
        if key == want:
            return int.from_bytes(data[at + 2:at + 4], "little") & ~1
        at += 4
    return None


def launch_branch(data: bytes) -> int:
    """Address of the `blx r6` where our wait_for_vector ('WV') enters core 1's program."""
    at = lookup(data, "WV")
    if at is None:
        raise RomError("the rp2040_sim ROM has no wait_for_vector ('WV')")
    for pc in range(at, at + 0x100, 2):
        if int.from_bytes(data[pc:pc + 2], "little") == BLX_R6:
            return pc
    raise RomError("the rp2040_sim ROM's wait_for_vector has no `blx r6` into the entry")
