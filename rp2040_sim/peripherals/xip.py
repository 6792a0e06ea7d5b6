"""The flash interface: SSI (DW_apb_ssi, datasheet 4.10.13) and XIP_CTRL (datasheet 2.6.4).

SSI: registers are stored; frames written to DR0 go to the flash chip model (flash_chip.FlashChip, a W25Q16JV) and
its answers come back through DR0:
- standard SPI (CTRLR0.SPI_FRF = 0): each frame of DFS_32 + 1 bits is exchanged with the chip byte by byte, MSB
  first (TMOD 0 TX+RX queues the reply; TMOD 1 TX-only drops it);
- quad (SPI_FRF = 2, enhanced mode, TMOD 2 RX-only or 3 EEPROM): the instruction frame (if INST_L != 0), then the
  address frame (ADDR_L x 4 bits: 24 address bits, then 8 mode bits when ADDR_L = 8) start one EBh transaction that
  reads CTRLR1.NDF + 1 frames (each frame's first byte in its top bits).
Chip select: the SSI drives it low from the first frame of a transaction; our model ends the transaction (CS high)
when the program next reads SR, RXFLR or DR0 or writes SSIENR, i.e. it assumes the TX FIFO has drained by the time
the program looks at the SSI again. IO_QSPI GPIO_QSPI_SS_CTRL OUTOVER (2 force low, 3 force high, what the ROM's
flash functions use) overrides that: a forced-low CS holds one transaction across any number of reads.
When the SSI is enabled for XIP (TMOD 3) we derive the cost of a cache line fill from its frame format: SCK cycles
for instruction + address + wait + 64 data bits at the configured width, times BAUDR (the clk_sys divider), and ask
the chip whether it would answer such reads (QE set and continuous-read mode for quad reads without instruction...);
if not, a warning names why. An explicit miss penalty given to the emulator overrides the derived cost.
XIP_CTRL: CTRL.EN switches the cache, FLUSH invalidates it, CTR_HIT/CTR_ACC read the native counters.

Speed: a flash status poll (05h/35h in standard SPI frames, what every boot2 and the ROM's flash functions repeat
thousands of times while the chip is busy, with CS from the SSI or forced through IO_QSPI) runs in
native/cycles.c (`ssi_native`) when these models say it may: after each SSI or IO_QSPI access served here
`_publish` hands it the status registers, the cycle count at which BUSY clears (Clock.cycle_at_ps) and the chip
select, or withdraws it; any other access first takes back what ran there (`_take_native`).
"""

from __future__ import annotations

import ctypes
import weakref
from collections import deque

from rp2040_sim import native
from rp2040_sim.peripherals.base import NO_EXTRA, Peripheral
from rp2040_sim.peripherals.flash_chip import FlashChip
from rp2040_sim.peripherals.gpio import CTRL_OUTOVER_SHIFT, QSPI_SS_CTRL

XIP_SSI_BASE = 0x18000000
SSI_CTRLR0, SSI_CTRLR1, SSI_SSIENR, SSI_MWCR, SSI_SER, SSI_BAUDR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14
SSI_TXFTLR, SSI_RXFTLR, SSI_TXFLR, SSI_RXFLR, SSI_SR = 0x18, 0x1C, 0x20, 0x24, 0x28
SSI_IMR, SSI_ISR, SSI_RISR, SSI_TXOICR, SSI_RXOICR, SSI_RXUICR, SSI_MSTICR, SSI_ICR = (
    0x2C, 0x30, 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48)
SSI_DMACR, SSI_DMATDLR, SSI_DMARDLR, SSI_IDR, SSI_VERSION = 0x4C, 0x50, 0x54, 0x58, 0x5C
SSI_DR0, SSI_RX_SAMPLE_DLY, SSI_SPI_CTRLR0, SSI_TXD_DRIVE_EDGE = 0x60, 0xF0, 0xF4, 0xF8
SSI_SR_BUSY, SSI_SR_TFNF, SSI_SR_TFE, SSI_SR_RFNE = 1 << 0, 1 << 1, 1 << 2, 1 << 3
SSI_IDR_VALUE, SSI_VERSION_VALUE = 0x51535049, 0x3430312A     # datasheet 4.10.13 reset values
# CTRLR0.SPI_FRF [22:21]: 0 standard, 1 dual, 2 quad. SPI_CTRLR0: TRANS_TYPE [1:0], ADDR_L [5:2] (x4 bits),
# INST_L [9:8] (0, 4, 8, 16 bits), WAIT_CYCLES [15:11].
CTRLR0_SPI_FRF_SHIFT = 21
CTRLR0_DFS32_SHIFT, CTRLR0_TMOD_SHIFT = 16, 8
TMOD_TX_RX, TMOD_TX, TMOD_RX, TMOD_EEPROM = 0, 1, 2, 3
SPI_FRF_STD, SPI_FRF_QUAD = 0, 2
SPI_CTRLR0_XIP_CMD_SHIFT = 24
CTRLR1_NDF_MASK = 0xFFFF
# IO_QSPI GPIO_QSPI_SS_CTRL (datasheet 2.19.6.2) OUTOVER [9:8]: 2 = drive low, 3 = drive high
CS_OVERRIDE_LOW, CS_OVERRIDE_HIGH = 2, 3
SPI_CTRLR0_TRANS_TYPE_MASK, SPI_CTRLR0_ADDR_L_SHIFT, SPI_CTRLR0_INST_L_SHIFT, SPI_CTRLR0_WAIT_SHIFT = 3, 2, 8, 11
INST_L_BITS = (0, 4, 8, 16)
XIP_LINE_BITS = 64                   # one 8-byte cache line per fill

XIP_CTRL_BASE = 0x14000000
XIP_CTRL, XIP_FLUSH, XIP_STAT, XIP_CTR_HIT, XIP_CTR_ACC = 0x00, 0x04, 0x08, 0x0C, 0x10
XIP_STREAM_ADDR, XIP_STREAM_CTR, XIP_STREAM_FIFO = 0x14, 0x18, 0x1C
XIP_CTRL_EN = 1 << 0
XIP_CTRL_RESET = 0x3                 # EN | ERR_BADWRITE
XIP_STAT_FLUSH_READY, XIP_STAT_FIFO_EMPTY = 1 << 0, 1 << 1


def line_fill_sck(ctrlr0: int, spi_ctrlr0: int) -> int:
    """SCK cycles for one 8-byte XIP line fill in the frame format boot2 configured."""
    width = (1, 2, 4, 4)[(ctrlr0 >> CTRLR0_SPI_FRF_SHIFT) & 3]
    trans = spi_ctrlr0 & SPI_CTRLR0_TRANS_TYPE_MASK          # 0: inst+addr serial, 1: addr wide, 2: both wide
    inst_bits = INST_L_BITS[(spi_ctrlr0 >> SPI_CTRLR0_INST_L_SHIFT) & 3]
    addr_bits = 4 * ((spi_ctrlr0 >> SPI_CTRLR0_ADDR_L_SHIFT) & 0xF)
    wait = (spi_ctrlr0 >> SPI_CTRLR0_WAIT_SHIFT) & 0x1F
    inst_w = width if trans == 2 else 1
    addr_w = width if trans >= 1 else 1
    return -(-inst_bits // inst_w) - (-addr_bits // addr_w) + wait + XIP_LINE_BITS // width


class Ssi(Peripheral):
    NAME, BASE = "SSI", XIP_SSI_BASE
    READ_EXTRA = WRITE_EXTRA = NO_EXTRA
    ATOMIC_ALIASES = False
    SIZE = 0x1000
    REGISTERS = {SSI_CTRLR0: "CTRLR0", SSI_CTRLR1: "CTRLR1", SSI_SSIENR: "SSIENR", SSI_MWCR: "MWCR",
                 SSI_SER: "SER", SSI_BAUDR: "BAUDR", SSI_TXFTLR: "TXFTLR", SSI_RXFTLR: "RXFTLR",
                 SSI_TXFLR: "TXFLR", SSI_RXFLR: "RXFLR", SSI_SR: "SR", SSI_IMR: "IMR", SSI_ISR: "ISR",
                 SSI_RISR: "RISR", SSI_TXOICR: "TXOICR", SSI_RXOICR: "RXOICR", SSI_RXUICR: "RXUICR",
                 SSI_MSTICR: "MSTICR", SSI_ICR: "ICR", SSI_DMACR: "DMACR", SSI_DMATDLR: "DMATDLR",
                 SSI_DMARDLR: "DMARDLR", SSI_IDR: "IDR", SSI_VERSION: "SSI_VERSION_ID", SSI_DR0: "DR0",
                 SSI_RX_SAMPLE_DLY: "RX_SAMPLE_DLY", SSI_SPI_CTRLR0: "SPI_CTRLR0",
                 SSI_TXD_DRIVE_EDGE: "TXD_DRIVE_EDGE"}
    RESET = {SSI_CTRLR0: 0x7 << 16, SSI_IDR: SSI_IDR_VALUE, SSI_VERSION: SSI_VERSION_VALUE,
             SSI_SPI_CTRLR0: 0x03000000}

    def __init__(self, sim):
        super().__init__(sim)
        self.rx = deque()
        self.cs_override = 0
        self._quad_frames: list[int] = []
        self._xip_doubt: str | None = None   # why XIP reads in a command-style setup would fail (see _xip_configured)
        lib = native.load()
        ptr = lib.sim_ssi_new(sim._sp)
        if not ptr:
            raise MemoryError("sim_ssi_new failed")
        self._native = ctypes.cast(ptr, ctypes.c_void_p)
        weakref.finalize(self, lib.sim_ssi_free, self._native)
        self._lib = lib
        self._poll = ptr.contents
        self.chip = FlashChip(sim, on_change=self._withdraw)
        self.io_qspi = None                  # gpio.IoQspi: its GPIO_QSPI_SS_CTRL drives the chip select
        self._native_live = False            # published since the last _take_native: cycles.c may have run
        sim.clock.listeners.append(self._withdraw)

    def native_registers(self):
        return self._native, "sim_ssi_read", "sim_ssi_write"

    def set_second_clock(self, state_ptr):
        """Core 1 runs: the chip's time is the later of the two cores' counts (as sim.cycles())."""
        self._lib.sim_ssi_set_time_b(self._native, state_ptr)

    # -- the native status poll -------------------------------------------------------------------------------------
    def _withdraw(self):
        """The chip or the clock changed: no native status transaction until the next _publish."""
        self._poll.poll_ok = 0

    def _take_native(self):
        """Take over what cycles.c ran: a chip select it wrote through IO_QSPI, the replies it queued (they join the
        RX FIFO), and a status command still under way (replayed into the chip; the bytes clocked after a status
        command are never used)."""
        poll, chip = self._poll, self.chip
        poll.poll_ok = 0
        if not self._native_live:
            return                           # nothing ran there since the last _publish
        self._native_live = False
        if poll.ss_written:
            poll.ss_written = 0
            self.io_qspi.regs[QSPI_SS_CTRL] = poll.ss_ctrl
            self.cs_override = (poll.ss_ctrl >> CTRL_OUTOVER_SHIFT) & 3
        if poll.rx_len:
            self.rx.extend(poll.rx[(poll.rx_head + i) % len(poll.rx)] for i in range(poll.rx_len))
            poll.rx_len = poll.rx_head = 0
        if poll.selected and not chip.selected:
            chip.select()
        elif not poll.selected and chip.selected:
            chip.deselect()
        if poll.cmd:
            chip.exchange(poll.cmd)
            for _ in range(poll.nargs):
                chip.exchange(0)
            poll.cmd = 0

    def _publish(self):
        """Let cycles.c run the next status transactions if this SSI, chip and chip-select state is one it models
        exactly: CS forced low with the chip waiting for a command, or otherwise the chip deselected."""
        chip, regs, io = self.chip, self.regs, self.io_qspi
        ctrlr0 = regs[SSI_CTRLR0]
        if not (io is not None and regs[SSI_SSIENR] & 1 and (ctrlr0 >> CTRLR0_SPI_FRF_SHIFT) & 3 == SPI_FRF_STD
                and (ctrlr0 >> CTRLR0_DFS32_SHIFT) & 0x1F == 7 and (ctrlr0 >> CTRLR0_TMOD_SHIFT) & 3 == TMOD_TX_RX
                and not self.rx and not self._quad_frames and self._xip_doubt is None
                and not chip.continuous and not chip._reset_enabled
                and (io.regs[QSPI_SS_CTRL] >> CTRL_OUTOVER_SHIFT) & 3 == self.cs_override):
            return
        if self.cs_override == CS_OVERRIDE_LOW:
            if not (chip.selected and chip._cmd is None and not chip._ignore):
                return
        elif chip.selected:
            return
        poll = self._poll
        poll.sr1, poll.sr2 = chip.sr1, chip.sr2
        poll.busy_until = self.sim.clock.cycle_at_ps(chip.busy_until_ps)
        poll.selected = 1 if chip.selected else 0
        poll.ss_ctrl = io.regs[QSPI_SS_CTRL]
        poll.cmd = poll.ss_written = 0
        poll.poll_ok = 1
        self._native_live = True

    def bus_read(self, offset, size):
        self._take_native()
        try:
            return super().bus_read(offset, size)
        finally:
            self._publish()

    def bus_write(self, offset, size, value):
        self._take_native()
        try:
            super().bus_write(offset, size, value)
        finally:
            self._publish()

    # -- chip select ----------------------------------------------------------------------------------------------
    def set_cs_override(self, outover: int):
        """IO_QSPI GPIO_QSPI_SS_CTRL.OUTOVER was written."""
        self._take_native()
        self.cs_override = outover
        if outover == CS_OVERRIDE_LOW:
            self.chip.select()
        else:
            self.chip.deselect()
        self._publish()

    def _end_transaction(self):
        if self.cs_override != CS_OVERRIDE_LOW:
            self.chip.deselect()
        self._quad_frames = []

    # -- registers --------------------------------------------------------------------------------------------------
    def read(self, offset):
        if offset in (SSI_SR, SSI_RXFLR, SSI_DR0):
            self._end_transaction()
        if offset == SSI_SR:
            return SSI_SR_TFE | SSI_SR_TFNF | (SSI_SR_RFNE if self.rx else 0)
        if offset == SSI_RXFLR:
            return len(self.rx)
        if offset == SSI_DR0:
            return self.rx.popleft() if self.rx else 0
        if offset in (SSI_IDR, SSI_VERSION):
            return self.RESET[offset]
        return super().read(offset)

    def write(self, offset, value):
        if offset == SSI_DR0:
            if self.regs[SSI_SSIENR] & 1:
                self._xip_doubt = None       # the program drives the SSI itself: this setup is for its command
                self._frame(value)
            return
        super().write(offset, value)
        if offset == SSI_SSIENR:
            self._end_transaction()
            self._xip_doubt = None
            if not value & 1:
                self.rx.clear()
            elif (self.regs[SSI_CTRLR0] >> CTRLR0_TMOD_SHIFT) & 3 == TMOD_EEPROM:
                self._xip_configured()

    def _frame(self, value):
        ctrlr0, spi = self.regs[SSI_CTRLR0], self.regs[SSI_SPI_CTRLR0]
        bits = ((ctrlr0 >> CTRLR0_DFS32_SHIFT) & 0x1F) + 1
        tmod = (ctrlr0 >> CTRLR0_TMOD_SHIFT) & 3
        if (ctrlr0 >> CTRLR0_SPI_FRF_SHIFT) & 3 == SPI_FRF_STD:
            if self.cs_override != CS_OVERRIDE_HIGH:
                self.chip.select()
            nbytes = -(-bits // 8)
            reply = 0
            for i in reversed(range(nbytes)):
                reply = reply << 8 | self.chip.exchange((value >> (8 * i)) & 0xFF)
            if tmod != TMOD_TX:
                self.rx.append(reply & ((1 << bits) - 1))
            return
        # enhanced (quad) mode: instruction frame, then the address frame starts the read
        self._quad_frames.append(value)
        has_inst = (spi >> SPI_CTRLR0_INST_L_SHIFT) & 3 != 0
        if len(self._quad_frames) < (2 if has_inst else 1):
            return
        inst = self._quad_frames[0] & 0xFF if has_inst else None
        addr_bits = 4 * ((spi >> SPI_CTRLR0_ADDR_L_SHIFT) & 0xF)
        frame = self._quad_frames[-1] & ((1 << addr_bits) - 1)
        addr, mode = (frame >> 8, frame & 0xFF) if addr_bits == 32 else (frame, 0)
        self._quad_frames = []
        n = (self.regs[SSI_CTRLR1] & CTRLR1_NDF_MASK) + 1
        nbytes = -(-bits // 8)
        if self.cs_override != CS_OVERRIDE_HIGH:
            self.chip.select()
        data = self.chip.quad_read(inst, addr, mode, n * nbytes) if self.chip.selected else None
        if self.cs_override != CS_OVERRIDE_LOW:
            self.chip.deselect()
        if data is None:
            self.sim.warn("SSI: the flash chip did not answer a quad read (QE clear or not in continuous-read "
                          "mode); the data read back is 0xFF")
            data = b"\xff" * (n * nbytes)
        for i in range(n):
            self.rx.append(int.from_bytes(data[i * nbytes:(i + 1) * nbytes], "big") & ((1 << bits) - 1))

    def _xip_configured(self):
        ctrlr0, spi = self.regs[SSI_CTRLR0], self.regs[SSI_SPI_CTRLR0]
        baud = self.regs[SSI_BAUDR] & 0xFFFF
        if baud:
            self.sim.set_xip_line_fill(line_fill_sck(ctrlr0, spi) * baud)
        quad = (ctrlr0 >> CTRLR0_SPI_FRF_SHIFT) & 3 == SPI_FRF_QUAD
        cmd = (spi >> SPI_CTRLR0_XIP_CMD_SHIFT) & 0xFF
        has_inst = (spi >> SPI_CTRLR0_INST_L_SHIFT) & 3 != 0
        mode = cmd if not has_inst and 4 * ((spi >> SPI_CTRLR0_ADDR_L_SHIFT) & 0xF) == 32 else None
        error = self.chip.xip_error(cmd if has_inst else None, 4 if quad else 1, mode)
        if error and has_inst and cmd == 0:
            # An instruction phase with XIP_CMD 0 is how a boot2 sends its own command (the pico-sdk's 0xEB read
            # that enters continuous mode, through DR0); only if no DR0 frame follows is it meant for XIP.
            self._xip_doubt = error
        elif error:
            self.sim.warn(f"SSI: XIP reads would not return the flash contents: {error}")

    def check_xip_setup(self):
        """At the end of a run: warn about a command-style XIP setup that no DR0 frame followed."""
        if self._xip_doubt:
            self.sim.warn(f"SSI: XIP reads would not return the flash contents: {self._xip_doubt}")
            self._xip_doubt = None


class XipCtrl(Peripheral):
    NAME, BASE = "XIP_CTRL", XIP_CTRL_BASE
    READ_EXTRA = WRITE_EXTRA = NO_EXTRA
    REGISTERS = {XIP_CTRL: "CTRL", XIP_FLUSH: "FLUSH", XIP_STAT: "STAT", XIP_CTR_HIT: "CTR_HIT",
                 XIP_CTR_ACC: "CTR_ACC", XIP_STREAM_ADDR: "STREAM_ADDR", XIP_STREAM_CTR: "STREAM_CTR",
                 XIP_STREAM_FIFO: "STREAM_FIFO"}
    RESET = {XIP_CTRL: XIP_CTRL_RESET}

    def __init__(self, sim):
        super().__init__(sim)
        self._hit_base = 0
        self._acc_base = 0

    def read(self, offset):
        sim = self.sim
        if offset == XIP_STAT:
            return XIP_STAT_FLUSH_READY | XIP_STAT_FIFO_EMPTY
        if offset == XIP_CTR_HIT:
            return (sim.xip_counter("xip_hits") - self._hit_base) & 0xFFFFFFFF
        if offset == XIP_CTR_ACC:
            return (sim.xip_counter("xip_accesses") - self._acc_base) & 0xFFFFFFFF
        if offset == XIP_FLUSH:
            return 0
        return super().read(offset)

    def write(self, offset, value):
        sim = self.sim
        if offset == XIP_FLUSH:
            sim.xip_flush()
        elif offset == XIP_CTR_HIT:           # write any value to clear (datasheet 2.6.4)
            self._hit_base = sim.xip_counter("xip_hits")
        elif offset == XIP_CTR_ACC:
            self._acc_base = sim.xip_counter("xip_accesses")
        elif offset == XIP_CTRL:
            super().write(offset, value)
            sim.set_xip_cache_enabled(bool(value & XIP_CTRL_EN))
        else:
            if offset == XIP_STREAM_CTR and value:
                self.sim.warn("XIP_CTRL: streaming reads (STREAM_CTR) are not modelled")
            super().write(offset, value)
