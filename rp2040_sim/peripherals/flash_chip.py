"""The QSPI flash chip behind the SSI: a Winbond W25Q16JV (2 MB, the Pico's), as its command set answers.

The SSI model (xip.py) drives it; nothing else touches it. Framing: `select()` (CS low), bytes, `deselect()` (CS
high). Serial transfers go through `exchange(byte) -> byte` (one byte out on IO0, one in on IO1, MSB first); the quad
read EBh through `quad_read`. XIP reads do not pass through here byte by byte: the emulator maps the flash buffer
(`sim.flash`) for speed, and the SSI asks `xip_error()` whether the chip would answer the configured XIP read.

Commands (W25Q16JV datasheet §8.2):
    03h read, 0Bh fast read (8 dummy clocks), EBh fast read quad I/O (24-bit address + 8 mode bits on 4 lines,
    4 dummy clocks; needs QE; mode bits M5:4 = 10b keep the chip in continuous-read mode, where the next read starts
    with the address, no instruction), 9Fh JEDEC ID (EF 40 15), 4Bh unique ID (4 dummy bytes, 8 ID bytes),
    05h / 35h read status register 1 / 2, 01h write status (SR1, then SR2 if a second byte follows), 31h write SR2,
    06h write enable, 04h write disable, 20h 4 kB sector erase, D8h 64 kB block erase, 02h page program (up to 256
    bytes; the address wraps inside its page; NOR programming only clears bits), ABh release power-down and
    66h / 99h reset (accepted; 99h after 66h resets WEL and continuous mode). Other commands (SFDP 5Ah...) read
    0xFF: no chip answers on IO1.
Write enable: program, erase and status writes need WEL (set by 06h) and clear it; they take effect when CS rises,
as on the chip.
Busy timing (chosen: time based, the datasheet's typical times §9.6, on the emulator's clock): write status 10 ms,
page program 0.4 ms, 4 kB erase 45 ms, 64 kB erase 150 ms. While BUSY (SR1 bit 0) only 05h / 35h are answered;
the flash bytes change at the start (reads during BUSY are undefined on the chip; the model shows the new bytes).
Continuous-read mode: a serial transaction that starts while the chip is in it is taken as address/mode clocks
(the ROM's flash_exit_xip sends 0xFF bytes for this): the mode bits are not 10b, so the chip leaves the mode and
ignores the rest of that transaction.
"""

from __future__ import annotations

import ctypes

FLASH_SIZE = 2 * 1024 * 1024
PAGE_SIZE, SECTOR_SIZE, BLOCK_SIZE = 256, 4096, 65536
JEDEC_ID = bytes([0xEF, 0x40, 0x15])                       # Winbond, W25Q..JV (SPI), 2^0x15 bytes
UNIQUE_ID = bytes([0xE6, 0x60, 0x58, 0x38, 0x83, 0x2B, 0x3C, 0x2D])  # any fixed 64-bit value (per-chip on silicon)

CMD_WRITE_STATUS, CMD_PAGE_PROGRAM, CMD_READ, CMD_WRITE_DISABLE = 0x01, 0x02, 0x03, 0x04
CMD_READ_STATUS1, CMD_WRITE_ENABLE, CMD_FAST_READ, CMD_SECTOR_ERASE = 0x05, 0x06, 0x0B, 0x20
CMD_WRITE_STATUS2, CMD_READ_STATUS2, CMD_UNIQUE_ID, CMD_JEDEC_ID = 0x31, 0x35, 0x4B, 0x9F
CMD_RELEASE_POWER_DOWN, CMD_ENABLE_RESET, CMD_RESET = 0xAB, 0x66, 0x99
CMD_BLOCK_ERASE, CMD_FAST_READ_QUAD_IO = 0xD8, 0xEB

SR1_BUSY, SR1_WEL = 0x01, 0x02
SR2_QE = 0x02
CONTINUOUS_MODE_MASK, CONTINUOUS_MODE_BITS = 0x30, 0x20     # mode bits M5:4 = 10b (§8.2.12)

# §9.6 AC characteristics, typical: tW, tPP, tSE, tBE2 in microseconds.
T_WRITE_STATUS_US, T_PAGE_PROGRAM_US, T_SECTOR_ERASE_US, T_BLOCK_ERASE_US = 10_000, 400, 45_000, 150_000


class FlashChip:
    """A W25Q16JV. `sim` is the emulator (anything with `flash` (the 2 MB ctypes buffer), `load_flash(bytes, offset)`
    and `clock.now_ps()`); QE is clear at power-up (quad_enable=True starts with it set)."""

    def __init__(self, sim, quad_enable: bool = False, on_change=None):
        self._on_change = None
        self.sim = sim
        self.sr1 = 0
        self.sr2 = SR2_QE if quad_enable else 0
        self.busy_until_ps = 0
        self.continuous = False
        self.selected = False
        self._reset_enabled = False
        self._cmd = None
        self._args = bytearray()
        self._out_pos = 0
        self._ignore = False
        self._on_change = on_change

    def __setattr__(self, name, value):
        # Any change of state (the SSI's own accesses, a test setting QE) withdraws the status registers the SSI
        # published to its native status poll (xip.Ssi._publish); the next access through the SSI republishes.
        object.__setattr__(self, name, value)
        if self._on_change is not None:
            self._on_change()

    def idle(self) -> bool:
        """Deselected, in command mode (not continuous-read), no reset enabled: a status transaction may start."""
        return not self.selected and not self.continuous and not self._reset_enabled

    # -- time ------------------------------------------------------------------------------------------------------
    def _now_ps(self) -> int:
        return self.sim.clock.now_ps()

    def busy(self) -> bool:
        return self._now_ps() < self.busy_until_ps

    def status1(self) -> int:
        return (self.sr1 & ~SR1_BUSY) | (SR1_BUSY if self.busy() else 0)

    def _start_busy(self, us: int):
        self.busy_until_ps = self._now_ps() + us * 1_000_000

    # -- flash bytes -----------------------------------------------------------------------------------------------
    def read_bytes(self, addr: int, n: int) -> bytes:
        """n bytes from addr; the address wraps at the end of the chip, as reads do."""
        base, out = ctypes.addressof(self.sim.flash), b""
        while n > 0:
            addr %= FLASH_SIZE
            k = min(n, FLASH_SIZE - addr)
            out += ctypes.string_at(base + addr, k)
            addr, n = addr + k, n - k
        return out

    def _write_bytes(self, addr: int, data: bytes):
        self.sim.load_flash(bytes(data), addr)

    # -- framing ---------------------------------------------------------------------------------------------------
    def select(self):
        if self.selected:
            return
        self.selected = True
        self._cmd, self._args, self._out_pos = None, bytearray(), 0
        self._ignore = False

    def deselect(self):
        if not self.selected:
            return
        self.selected = False
        if self._ignore or self._cmd is None:
            return
        self._complete(self._cmd, bytes(self._args))

    def exchange(self, out: int) -> int:
        """One serial byte: `out` shifted in on IO0, the returned byte shifted out on IO1."""
        if not self.selected:
            return 0xFF
        out &= 0xFF
        if self._ignore:
            return 0xFF
        if self._cmd is None:
            if self.continuous:
                self.continuous = False       # address/mode clocks with mode bits != 10b (e.g. 0xFF)
                self._ignore = True
                return 0xFF
            if self.busy() and out not in (CMD_READ_STATUS1, CMD_READ_STATUS2):
                self._ignore = True
                return 0xFF
            self._cmd = out
            return 0xFF
        self._args.append(out)
        return self._reply()

    def _reply(self) -> int:
        cmd, n = self._cmd, len(self._args)    # n: bytes after the command, including the one being clocked
        if cmd == CMD_READ_STATUS1:
            return self.status1()
        if cmd == CMD_READ_STATUS2:
            return self.sr2
        if cmd == CMD_JEDEC_ID:
            return JEDEC_ID[n - 1] if n <= len(JEDEC_ID) else 0xFF
        if cmd == CMD_UNIQUE_ID:
            return UNIQUE_ID[n - 5] if 5 <= n < 5 + len(UNIQUE_ID) else 0xFF
        if cmd in (CMD_READ, CMD_FAST_READ):
            first = 4 if cmd == CMD_READ else 5        # 3 address bytes (+ 1 dummy byte for 0Bh)
            if n >= first:
                addr = int.from_bytes(self._args[:3], "big")
                return self.read_bytes(addr + n - first, 1)[0]
        return 0xFF

    def _complete(self, cmd: int, args: bytes):
        """What a command does when CS rises."""
        if cmd == CMD_WRITE_ENABLE:
            self.sr1 |= SR1_WEL
        elif cmd == CMD_WRITE_DISABLE:
            self.sr1 &= ~SR1_WEL
        elif cmd == CMD_ENABLE_RESET:
            self._reset_enabled = True
            return
        elif cmd == CMD_RESET and self._reset_enabled:
            self.sr1 &= ~SR1_WEL
            self.continuous = False
        elif cmd in (CMD_WRITE_STATUS, CMD_WRITE_STATUS2) and self.sr1 & SR1_WEL and args:
            if cmd == CMD_WRITE_STATUS:
                self.sr1 = (self.sr1 & (SR1_BUSY | SR1_WEL)) | (args[0] & 0xFC)
                if len(args) >= 2:
                    self.sr2 = args[1]
            else:
                self.sr2 = args[0]
            self._written(T_WRITE_STATUS_US)
        elif cmd in (CMD_SECTOR_ERASE, CMD_BLOCK_ERASE) and self.sr1 & SR1_WEL and len(args) >= 3:
            size = SECTOR_SIZE if cmd == CMD_SECTOR_ERASE else BLOCK_SIZE
            start = int.from_bytes(args[:3], "big") % FLASH_SIZE // size * size
            self._write_bytes(start, b"\xff" * size)
            self._written(T_SECTOR_ERASE_US if cmd == CMD_SECTOR_ERASE else T_BLOCK_ERASE_US)
        elif cmd == CMD_PAGE_PROGRAM and self.sr1 & SR1_WEL and len(args) >= 4:
            addr = int.from_bytes(args[:3], "big") % FLASH_SIZE
            page = addr // PAGE_SIZE * PAGE_SIZE
            latch = bytearray(b"\xff" * PAGE_SIZE)     # the page buffer: the address wraps inside the page, so
            for i, b in enumerate(args[3:]):            # past 256 bytes later ones replace earlier ones (§8.2.14)
                latch[(addr - page + i) % PAGE_SIZE] = b
            data = bytes(old & new for old, new in zip(self.read_bytes(page, PAGE_SIZE), latch))
            self._write_bytes(page, data)
            self._written(T_PAGE_PROGRAM_US)
        self._reset_enabled = False

    def _written(self, us: int):
        self.sr1 &= ~SR1_WEL
        self._start_busy(us)

    # -- quad I/O --------------------------------------------------------------------------------------------------
    def quad_read(self, instruction: int | None, addr: int, mode: int, n: int) -> bytes | None:
        """One EBh transaction (instruction None: continuous mode, address first): n data bytes, or None when the
        chip would not answer (QE clear, not in continuous mode without an instruction, busy, other instruction)."""
        if not self.quad_ready(instruction):
            self.continuous = False
            return None
        self.continuous = (mode & CONTINUOUS_MODE_MASK) == CONTINUOUS_MODE_BITS
        return self.read_bytes(addr % FLASH_SIZE, n)

    def quad_ready(self, instruction: int | None) -> bool:
        if not self.sr2 & SR2_QE or self.busy():
            return False
        return instruction == CMD_FAST_READ_QUAD_IO if instruction is not None else self.continuous

    def xip_error(self, instruction: int | None, width: int, mode: int | None) -> str | None:
        """Why XIP reads in this frame format would not return the flash bytes, or None if they would.
        instruction None = no instruction phase; width 1 or 4; mode = the mode bits sent after the address."""
        if width == 1:
            if self.continuous:
                return "the flash chip is in continuous-read mode and would take a serial command as an address"
            if instruction not in (CMD_READ, CMD_FAST_READ):
                return f"serial XIP command 0x{instruction or 0:02X} is not a read the flash chip answers (03h, 0Bh)"
            return None
        if width != 4:
            return "only quad (EBh) wide XIP reads are modelled"
        if not self.sr2 & SR2_QE:
            return "quad XIP read with the flash chip's QE bit (status register 2 bit 1) clear"
        if instruction is None and not self.continuous:
            return "quad XIP read without an instruction while the flash chip is not in continuous-read mode"
        if instruction is not None and instruction != CMD_FAST_READ_QUAD_IO:
            return f"quad XIP command 0x{instruction:02X} is not EBh"
        if mode is not None and (mode & CONTINUOUS_MODE_MASK) != CONTINUOUS_MODE_BITS and instruction is None:
            return f"XIP mode bits 0x{mode:02X} end continuous-read mode after the first line fill"
        return None
