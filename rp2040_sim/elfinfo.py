"""What the emulator needs from the firmware's ELF: symbols, functions, source lines, the flash image, RAM use.

The file is untrusted input: it is read once (a regular file of at most ELF_MAX_BYTES) and parsed from memory, and
whatever pyelftools raises on a truncated or corrupt file (ELFParseError, struct and construct errors, ZeroDivision
on a zero entry size, ...) becomes an ElfError naming the file; a corrupt DWARF line table only loses source lines.
"""

from __future__ import annotations

import bisect
import functools
import io
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from firmware.uf2 import Uf2Error, check_against_elf
from firmware.untrusted import InputError, read_regular
from rp2040_sim.memory import FLASH_SIZE, SRAM_BASE, SRAM_END, XIP_BASE

SHF_ALLOC = 0x2
PT_LOAD = "PT_LOAD"
# A picozoo firmware ELF with DWARF is ~1 MB (the flash image is at most 2 MB); 64 MiB bounds what we load.
ELF_MAX_BYTES = 64 * 1024 * 1024


class ElfError(Exception):
    """An ELF the emulator cannot use; the message names the file and the problem."""


def _parsing(method):
    """Turn anything pyelftools raises on a malformed file into ElfError naming the file (ElfError passes)."""
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except ElfError:
            raise
        except Exception as e:  # untrusted bytes: the parser's failure modes are not enumerable
            raise ElfError(f"{self.path}: corrupt or truncated ELF ({type(e).__name__}: {e}); rebuild it with "
                           f"`python -m firmware.build`") from None
    return guarded


@dataclass
class Symbol:
    name: str
    addr: int
    size: int
    kind: str   # STT_FUNC, STT_OBJECT, STT_NOTYPE...


class ElfInfo:
    def __init__(self, path, data: bytes | None = None):
        """Parse `path`, or `data` when the caller already read it (the bytes it checked are the bytes parsed)."""
        self.path = Path(path)
        if data is None:
            try:
                data = read_regular(self.path, ELF_MAX_BYTES, "firmware ELF")
            except InputError as e:
                raise ElfError(str(e)) from None
        if data[:4] != b"\x7fELF":
            raise ElfError(f"{self.path}: not an ELF file (it does not start with the ELF magic)")
        self._f = io.BytesIO(data)
        self._lines = None
        self._parse()

    @_parsing
    def _parse(self):
        self.elf = ELFFile(self._f)
        if self.elf["e_machine"] != "EM_ARM":
            raise ElfError(f"{self.path}: machine {self.elf['e_machine']}, expected EM_ARM (an RP2040 build)")
        self.symbols: dict[str, Symbol] = {}
        funcs = []
        for sec in self.elf.iter_sections():
            if not isinstance(sec, SymbolTableSection):
                continue
            for s in sec.iter_symbols():
                kind = s["st_info"]["type"]
                if not s.name or s.name.startswith("$"):
                    continue
                addr = s["st_value"]
                if kind == "STT_FUNC":
                    addr &= ~1
                    funcs.append((addr, s["st_size"], s.name))
                self.symbols.setdefault(s.name, Symbol(s.name, addr, s["st_size"], kind))
        funcs.sort()
        self._func_addrs = [f[0] for f in funcs]
        self._funcs = funcs

    # -- symbols -------------------------------------------------------------------------------------------------
    def addr(self, name: str) -> int:
        if name not in self.symbols:
            raise ElfError(f"{self.path}: symbol '{name}' not found; the firmware contract requires it "
                           f"(rebuild with `python -m firmware.build`)")
        return self.symbols[name].addr

    def has(self, name: str) -> bool:
        return name in self.symbols

    def function_at(self, addr: int) -> str | None:
        """Name of the function containing addr (Thumb bit ignored), None outside every function."""
        addr &= ~1
        i = bisect.bisect_right(self._func_addrs, addr) - 1
        if i < 0:
            return None
        start, size, name = self._funcs[i]
        if size == 0:      # assembly without .size: up to the next function
            end = self._func_addrs[i + 1] if i + 1 < len(self._funcs) else start + 2
        else:
            end = start + size
        return name if addr < end else None

    def function_range(self, name: str) -> tuple[int, int]:
        s = self.symbols[name]
        return s.addr, s.addr + s.size

    # -- DWARF lines ---------------------------------------------------------------------------------------------
    def line_at(self, addr: int) -> str | None:
        """'file:line' of the instruction at addr from the DWARF line table, None without debug info."""
        if self._lines is None:
            self._lines = self._read_lines()
        addr &= ~1
        keys = self._lines[0]
        i = bisect.bisect_right(keys, addr) - 1
        if i < 0:
            return None
        start, end, where = self._lines[1][i]
        return where if addr < end else None

    def _read_lines(self):
        try:
            return self._read_lines_unguarded()
        except Exception:  # a corrupt DWARF line table: no source lines in reports, the rest still works
            return [], []

    def _read_lines_unguarded(self):
        rows = []
        if not self.elf.has_dwarf_info():
            return [], []
        dwarf = self.elf.get_dwarf_info()
        for cu in dwarf.iter_CUs():
            prog = dwarf.line_program_for_CU(cu)
            if prog is None:
                continue
            files = prog["file_entry"]
            version = prog.header["version"]
            prev = None
            for entry in prog.get_entries():
                st = entry.state
                if st is None:
                    continue
                if prev is not None and st.address > prev.address:
                    idx = prev.file if version >= 5 else prev.file - 1
                    name = files[idx].name.decode(errors="replace") if 0 <= idx < len(files) else "?"
                    rows.append((prev.address, st.address, f"{name}:{prev.line}"))
                prev = None if st.end_sequence else st
        rows.sort()
        return [r[0] for r in rows], rows

    # -- images and sizes ----------------------------------------------------------------------------------------
    @_parsing
    def load_segments(self) -> list[tuple[int, bytes]]:
        """(load address, bytes) of every loadable segment with file data, each checked to lie in the flash."""
        segments = []
        for seg in self.elf.iter_segments():
            if seg["p_type"] != PT_LOAD or seg["p_filesz"] == 0:
                continue
            lma = seg["p_paddr"]
            if not XIP_BASE <= lma < XIP_BASE + FLASH_SIZE:
                raise ElfError(f"{self.path}: loadable segment at 0x{lma:08x} is not in flash "
                               f"(0x{XIP_BASE:08x}..0x{XIP_BASE + FLASH_SIZE:08x}); the chip boots from flash only")
            if lma - XIP_BASE + seg["p_filesz"] > FLASH_SIZE:
                raise ElfError(f"{self.path}: segment at 0x{lma:08x} ({seg['p_filesz']} bytes) overflows the 2 MB "
                               f"flash")
            data = seg.data()
            if len(data) != seg["p_filesz"]:
                raise ElfError(f"{self.path}: segment at 0x{lma:08x} should hold {seg['p_filesz']} bytes, the file "
                               f"has {len(data)}: the ELF is truncated")
            segments.append((lma, data))
        return segments

    def flash_image(self) -> bytes:
        """The bytes to program at 0x10000000: every loadable segment at its load (physical) address."""
        image = bytearray()
        for lma, data in self.load_segments():
            off = lma - XIP_BASE
            if len(image) < off + len(data):
                image.extend(b"\xff" * (off + len(data) - len(image)))
            image[off:off + len(data)] = data
        if not image:
            raise ElfError(f"{self.path}: no loadable segment")
        return bytes(image)

    def mismatch(self, image: bytes, image_name: str) -> str | None:
        """Why `image` (flash contents at 0x10000000) is not this ELF's program, or None when every loadable segment
        is in it byte for byte."""
        try:
            check_against_elf(image, self.load_segments(), image_name, str(self.path))
        except Uf2Error as e:
            return str(e)
        return None

    def stack_region(self) -> tuple[int, int] | None:
        if self.has("__stack_limit") and self.has("__stack_top"):
            return self.addr("__stack_limit"), self.addr("__stack_top")
        return None

    @_parsing
    def static_ram_bytes(self) -> int:
        """Bytes of SRAM the image occupies before it runs: allocated sections in SRAM (.data, .bss...), not
        counting the reserved stack region (reported separately as peak stack)."""
        stack = self.stack_region()
        total = 0
        for sec in self.elf.iter_sections():
            addr, size = sec["sh_addr"], sec["sh_size"]
            if not sec["sh_flags"] & SHF_ALLOC or not size or not SRAM_BASE <= addr < SRAM_END:
                continue
            if stack and addr < stack[1] and addr + size > stack[0]:
                continue                       # the stack reservation
            total += size
        return total

    def close(self):
        self._f.close()
