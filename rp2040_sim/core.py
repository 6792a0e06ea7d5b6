"""The emulated RP2040: a Unicorn Cortex-M0 core, the memory map, peripherals and the native cycle counter.

Unicorn is opened as a true ARMv6-M core (UC_MODE_THUMB + UC_CPU_ARM_CORTEX_M0): UC_MODE_MCLASS would silently
give a Cortex-M33 that runs Thumb-2 and tolerates unaligned loads. Cycles are counted by native/cycles.c, whose
hooks libunicorn calls directly; Python only runs on peripheral accesses and when the emulation stops.
"""

from __future__ import annotations

import ctypes
import math
import sys
import time
from dataclasses import dataclass, field

from unicorn import (UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_HOOK_TLB_FILL,
                     UC_MODE_THUMB, UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, UC_TLB_VIRTUAL, Uc, UcError)
from unicorn import arm_const as arm
from unicorn import unicorn_const as ucc
from unicorn.unicorn_py3 import unicorn as _ucmod

from rp2040_sim import native, rom
from rp2040_sim.clock import Clock
from rp2040_sim.exceptions import SVCALL, EXC_RETURN_MIN, ExceptionFault, Exceptions
from rp2040_sim.memory import (FLASH_ERASED, FLASH_SIZE, ROM_BASE, ROM_SIZE, SRAM_BASE,
                               SRAM_SIZE, UNMODELLED_PERIPHERALS, XIP_ALIASES, XIP_BASE, XIP_DATA_VIEW,
                               XIP_WINDOW_END)
from rp2040_sim.peripherals.base import Peripheral
from rp2040_sim.peripherals.clocks import Clocks, PllSys, PllUsb, Xosc
from rp2040_sim.peripherals.gpio import IoBank0, IoQspi, PadsBank0, PadsQspi
from rp2040_sim.peripherals.ppb import Ppb
from rp2040_sim.peripherals.resets import Resets
from rp2040_sim.core1 import Core1Bootrom
from rp2040_sim.peripherals.sio import SIO_IRQ_PROC0, Sio
from rp2040_sim.peripherals.sysinfo import Sysinfo, Tbman
from rp2040_sim.peripherals.timer import Timer, Watchdog
from rp2040_sim.peripherals.uart import Uart
from rp2040_sim.peripherals.usb import UsbCtrl
from rp2040_sim.peripherals.xip import Ssi, XipCtrl

# Interrupt numbers Unicorn reports in UC_HOOK_INTR (qemu target/arm/cpu.h EXCP_*)
EXCP_UDEF, EXCP_SWI, EXCP_DATA_ABORT, EXCP_BKPT = 1, 2, 4, 7
EXCP_EXCEPTION_EXIT = 8    # QEMU's M-profile exception return: a BX/POP to EXC_RETURN with IPSR != 0
BKPT_OPCODE_MASK, BKPT_OPCODE = 0xFF00, 0xBE00
# A run never ends by reaching `until`: no Thumb code can sit at this odd address.
UNTIL_NEVER = 0xFFFFFFFF
# Default cycle budget: 2^34 cycles = 137 s of a 125 MHz chip. Emulated, a tight loop runs ~100 M cycles/s and a UART
# print loop ~1.3 M cycles/s here (docs/EMULATOR.md), so the budget alone could take minutes to hours: every run
# also has a wall-clock limit.
DEFAULT_MAX_CYCLES = 1 << 34
# Largest budget accepted: 2^48 cycles = 26 days of chip time at 125 MHz (and far from the 64-bit counter's end).
MAX_CYCLES_LIMIT = 1 << 48
# Default wall-clock limit of one run (--timeout): a never-halting image ends within a minute on a slow machine.
DEFAULT_TIMEOUT_S = 50.0
MAX_TIMEOUT_S = 7 * 24 * 3600.0
# ARMv6-M hint encodings (ARMv6-M ARM A6.7): Unicorn stops at WFI, raises UDEF after WFE/YIELD, runs SEV as a NOP.
HINT_YIELD, HINT_WFE, HINT_WFI = 0xBF10, 0xBF20, 0xBF30
B_SELF = 0xE7FE                         # `b .`
# Two cores run interleaved: core 0 runs this many cycles, then core 1 catches up to core 0's count.
QUANTUM_CYCLES = 1000
SCB_VTOR_OFFSET = 0xED08
EVENT_REG_OFFSET = native.State.event_reg.offset
STM_TOP5 = 0b11000                      # STMIA: several stores, not resumable after the first
# XIP line fill before boot2 configures the SSI: Pico board quad read, 28 SCK x CLKDIV 2 (reference sheet).
DEFAULT_XIP_MISS_CYCLES = 56
REG_NAMES = ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "sp", "lr", "pc")
REG_IDS = tuple(getattr(arm, f"UC_ARM_REG_{n.upper()}") for n in REG_NAMES)


def check_max_cycles(value, what: str = "--max-cycles") -> int:
    """A cycle budget as an int in [1, 2^48], or ValueError naming the value and the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CYCLES_LIMIT:
        raise ValueError(f"{what} {value!r} is out of range: give a whole number of cycles from 1 to "
                         f"{MAX_CYCLES_LIMIT:,} (2^48, 26 days of chip time at 125 MHz)")
    return value


def check_timeout(value, what: str = "--timeout") -> float | None:
    """A wall-clock limit in seconds (0 or None: no limit), or ValueError."""
    if value is None:
        return None
    try:
        t = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} {value!r} is not a number of seconds") from None
    if isinstance(value, bool) or math.isnan(t) or not 0 <= t <= MAX_TIMEOUT_S:
        raise ValueError(f"{what} {value!r} is out of range: give seconds from 0 (no wall-clock limit) to "
                         f"{MAX_TIMEOUT_S:,.0f} (7 days)")
    return t or None


@dataclass
class SimConfig:
    max_cycles: int = DEFAULT_MAX_CYCLES
    timeout: float | None = DEFAULT_TIMEOUT_S   # wall-clock seconds per run; None or 0: no limit
    strict: bool = False              # an unimplemented register stops the run instead of warning
    xip_miss_cycles: int | None = None  # None: from the SSI setup boot2 writes (56 until then)
    uart_sink: object = None          # callable(byte) for live UART output
    warn_sink: object = None          # callable(str); default: stderr
    accounting: bool = True           # False: no native hooks, no cycles (speed baseline for benchmarks only)
    core1_model: bool = False         # True: core 1's launch answered by core1.Core1Bootrom even with our ROM

    def __post_init__(self):
        check_max_cycles(self.max_cycles, "SimConfig.max_cycles")
        self.timeout = check_timeout(self.timeout, "SimConfig.timeout")


@dataclass
class Stop:
    """Why a run ended. kind 'halt' is the firmware's `bkpt #0`; anything else is a fault."""
    kind: str
    pc: int
    address: int | None = None
    detail: str = ""
    regs: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.kind == "halt"


def load_store_address(hw: int, r: dict) -> int | None:
    """Effective address of a Thumb-1 load/store (ARMv6-M ARM A5.2.4), for fault reports."""
    reg = lambda n: r[REG_NAMES[n]]  # noqa: E731
    rn, rm = (hw >> 3) & 7, (hw >> 6) & 7
    imm5 = (hw >> 6) & 0x1F
    if hw >> 12 == 0b0101:                          # register offset
        return (reg(rn) + reg(rm)) & 0xFFFFFFFF
    if hw >> 13 == 0b011:                           # word (B=0) / byte (B=1) immediate
        return (reg(rn) + (imm5 if hw & 0x1000 else imm5 * 4)) & 0xFFFFFFFF
    if hw >> 12 == 0b1000:                          # halfword immediate
        return (reg(rn) + imm5 * 2) & 0xFFFFFFFF
    if hw >> 12 == 0b1001:                          # SP-relative
        return (r["sp"] + (hw & 0xFF) * 4) & 0xFFFFFFFF
    if hw >> 12 == 0b1100:                          # LDM/STM
        return reg((hw >> 8) & 7)
    return None


class Rp2040:
    """The chip as core 0 sees it (memory, peripherals, core 0's engine); with `primary` set, core 1: its own
    Unicorn engine, cycle counter, NVIC/SysTick (PPB) and SIO view over the primary's memory and peripherals."""

    def __init__(self, config: SimConfig | None = None, primary: "Rp2040 | None" = None):
        self.config = config or SimConfig()
        self.primary = primary
        self.core1: Rp2040 | None = None   # core 1 once launched (on the primary)
        self.core1_in_rom: Rp2040 | None = None   # core 1's engine while it runs our ROM, before launch (primary)
        self._core1_rom_due = False        # core 0 wrote core 1's FIFO: run core 1's ROM code next (primary)
        self.runnable = True               # core 1: False once it halted or can never run again
        self.resume_pc = 0                 # core 1: where its next quantum starts
        self._active = self                # the core whose MMIO access is being served (bus cycles go there)
        self._quantum_end: int | None = None
        self.lib = native.load()
        self.uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        self.uc.ctl_set_cpu_model(arm.UC_CPU_ARM_CORTEX_M0)
        if self.config.accounting:
            # Our TLB fill (native) sends data reads from XIP to MMIO views that count them through the cache.
            self.uc.ctl_set_tlb_mode(UC_TLB_VIRTUAL)
        self._state_ptr = self.lib.sim_new()
        if not self._state_ptr:
            raise MemoryError("sim_new failed")
        self.state = self._state_ptr.contents
        self._sp = ctypes.cast(self._state_ptr, ctypes.c_void_p)
        self.state.xip_miss_penalty = self.config.xip_miss_cycles or DEFAULT_XIP_MISS_CYCLES
        self.clock = Clock(self.cycles)
        self.warnings: list[str] = []
        self._warned: set = set()
        self._pending: Stop | None = None
        self._event = None                 # why the run stopped when it is to continue (see run())
        self._running = False
        self._executing = False
        self._in_mmio_write = False
        self._run_end = 0                  # cycle count at which the current run's budget is used up
        self.sleep_cycles = 0              # cycles skipped asleep (WFI/WFE, idle loops), included in cycles
        self.exc = Exceptions(self)
        self._ports: list = []            # native peripheral ports (see _map_port)
        if primary is None:
            self._map_memory()
            self._make_peripherals()
        else:
            self._map_memory_shared()
            self._make_core1_peripherals()
        self._add_hooks()
        if primary is None:
            self._start_core1(rom_is_ours=True)

    # -- construction --------------------------------------------------------------------------------------------
    def _map_memory(self):
        # One 2 MB buffer seen through the four XIP aliases; no write permission: a store is a fault, as on
        # the chip (a write to XIP is an error response, datasheet 2.6.3.3). SRAM is a host buffer (not
        # Unicorn-owned) so that core 1's engine can map the same bytes.
        self.flash = ctypes.create_string_buffer(bytes([FLASH_ERASED]) * FLASH_SIZE, FLASH_SIZE)
        self.sram = ctypes.create_string_buffer(SRAM_SIZE)
        self._map_ram()
        self.load_rom(rom.image())
        self._map_flash_views()

    def _map_ram(self):
        """Flash, SRAM, ROM: largest first, so that each has its own range of Unicorn's RAM addresses.

        Unicorn 2.1.4 places a new RAM block after the block it last *appended* to its size-sorted list, and a
        block inserted before a smaller one is never that (qemu/exec.c ram_block_add, find_ram_offset_last).
        Mapped ROM first, flash and SRAM both started at RAM address 0x4000: a store to SRAM offset X counted
        as self-modifying code at flash offset X and discarded the translated code there (the firmware's
        kernels and printf were retranslated ~1,900 times per run, half the run's time). In non-increasing
        size order every block is appended and the ranges are disjoint (tests/test_sim_speed.py)."""
        uc = self.uc
        for base in XIP_ALIASES:
            uc.mem_map_ptr(base, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC, ctypes.addressof(self.flash))
        uc.mem_map_ptr(SRAM_BASE, SRAM_SIZE, UC_PROT_ALL, ctypes.addressof(self.sram))
        uc.mem_map(ROM_BASE, ROM_SIZE, UC_PROT_READ | UC_PROT_EXEC)

    def _map_flash_views(self):
        uc = self.uc
        self.lib.sim_set_flash(self._sp, ctypes.addressof(self.flash))
        if self.config.accounting:
            uclib = _ucmod.uclib
            for alias, base in enumerate(XIP_ALIASES):
                view = XIP_DATA_VIEW + (base - XIP_BASE)
                read_cb = ctypes.cast(getattr(self.lib, f"sim_flash_data{alias}"), ctypes.c_void_p)
                status = uclib.uc_mmio_map(uc._uch, ctypes.c_uint64(view), ctypes.c_uint64(FLASH_SIZE), read_cb,
                                           self._sp, None, None)
                if status != ucc.UC_ERR_OK:
                    raise UcError(status)

    def _map_memory_shared(self):
        """Core 1: the primary's ROM bytes (read-only, so a copy is the same memory), flash and SRAM buffers."""
        p, uc = self.primary, self.uc
        self.flash, self.sram = p.flash, p.sram
        self._map_ram()
        uc.mem_write(ROM_BASE, bytes(p.uc.mem_read(ROM_BASE, ROM_SIZE)))
        self._map_flash_views()
        self.state.xip_miss_penalty = p.state.xip_miss_penalty
        self.state.xip_cache_enabled = p.state.xip_cache_enabled

    def _make_core1_peripherals(self):
        """Core 1's own PPB (NVIC, SysTick, VTOR) and SIO view; every other block is the primary's object, reached
        through callbacks that make core 1 the active core for the access."""
        p = self.primary
        self.clock = p.clock
        self.ppb = Ppb(self)
        self.sio = p.sio1
        self.timer = p.timer
        own = {id(p.ppb): self.ppb, id(p.sio): self.sio}
        self.peripherals = [own.get(id(x), x) for x in p.peripherals]
        for periph in self.peripherals:
            self._map_port(periph)

    def _make_peripherals(self):
        self.resets = Resets(self)
        self.clocks = Clocks(self)
        self.xosc = Xosc(self)
        self.pll_sys = PllSys(self)
        self.io_bank0 = IoBank0(self)
        self.pads_bank0 = PadsBank0(self)
        self.uart0 = Uart(self, 0, self.config.uart_sink)
        self.uart1 = Uart(self, 1, self.config.uart_sink)
        self.watchdog = Watchdog(self)
        self.timer = Timer(self, self.watchdog)
        self.sio = Sio(self, 0)
        self.sio1 = Sio(self, 1, self.sio.shared)       # core 1's view: its FIFO ends and CPUID
        self.core1_launch: tuple[int, int, int] | None = None   # (VTOR, SP, entry) once launched
        self.core1_bootrom: Core1Bootrom | None = None   # the Python model of wait_for_vector (see _start_core1)
        self.ssi = Ssi(self)
        self.xip_ctrl = XipCtrl(self)
        self.ppb = Ppb(self)
        self.peripherals: list[Peripheral] = [
            self.resets, self.clocks, self.xosc, self.pll_sys, self.io_bank0, self.pads_bank0, self.uart0,
            self.uart1, self.watchdog, self.timer, self.sio, self.ssi, self.xip_ctrl, self.ppb,
            Sysinfo(self), IoQspi(self), PadsQspi(self)]
        self.pll_usb = PllUsb(self)
        self.peripherals += [self.pll_usb, Tbman(self), UsbCtrl(self)]
        for name, base in UNMODELLED_PERIPHERALS.items():
            p = Peripheral(self)
            p.NAME, p.BASE = name, base
            self.peripherals.append(p)
        for p in self.peripherals:
            self._map_port(p)

    def _map_port(self, periph: Peripheral):
        """Map a peripheral's range on this core's engine through a native port (cycles.c sim_mmio_read/write):
        it charges the access's bus cycles to this core, then calls periph.bus_read/bus_write with this core as the
        active one. A Python exception there stops the run and is raised by emu_start, as from Unicorn's own
        callbacks."""
        uc, owner, core = self.uc, periph.sim, self

        def failed(e: BaseException):
            if uc._hook_exception is None:
                uc._hook_exception = e
            uc.emu_stop()

        bus_read, bus_write = periph.bus_read, periph.bus_write
        if owner is not core:             # core 1 at one of core 0's peripherals: the active core meanwhile
            def bus_read(offset, size, inner=bus_read):
                owner._active = core
                try:
                    return inner(offset, size)
                finally:
                    owner._active = owner

            def bus_write(offset, size, value, inner=bus_write):
                owner._active = core
                try:
                    inner(offset, size, value)
                finally:
                    owner._active = owner

        def read(offset, size):
            try:
                return bus_read(offset, size)
            except BaseException as e:
                failed(e)
                return 0

        def write(offset, size, value):
            core._in_mmio_write = True
            try:
                bus_write(offset, size, value)
            except BaseException as e:
                failed(e)
            finally:
                core._in_mmio_write = False

        read_fn, write_fn = native.PORT_READ(read), native.PORT_WRITE(write)
        port = self.lib.sim_port_new(self._sp, periph.READ_EXTRA, periph.WRITE_EXTRA,
                                     ctypes.cast(read_fn, ctypes.c_void_p), ctypes.cast(write_fn, ctypes.c_void_p))
        if not port:
            raise MemoryError("sim_port_new failed")
        self._ports.append((port, read_fn, write_fn))      # the callbacks live as long as the mapping
        fast = periph.native_registers()
        if fast is not None:
            dev, read_name, write_name = fast
            self.lib.sim_port_set_native(port, dev, native.function(read_name), native.function(write_name))
        fp = lambda f: ctypes.cast(f, ctypes.c_void_p)  # noqa: E731
        status = _ucmod.uclib.uc_mmio_map(uc._uch, ctypes.c_uint64(periph.BASE), ctypes.c_uint64(periph.SIZE),
                                          fp(self.lib.sim_mmio_read), ctypes.c_void_p(port),
                                          fp(self.lib.sim_mmio_write), ctypes.c_void_p(port))
        if status != ucc.UC_ERR_OK:
            raise UcError(status)

    def _add_hooks(self):
        uclib = _ucmod.uclib
        fp = lambda f: ctypes.cast(f, ctypes.c_void_p)  # noqa: E731
        self.lib.sim_bind(self._sp, self.uc._uch, fp(uclib.uc_mem_read), fp(uclib.uc_reg_read),
                          fp(uclib.uc_emu_stop))
        self._native_hooks = []
        hooks = (
                (UC_HOOK_BLOCK, self.lib.sim_block_hook, 1, 0),
                (UC_HOOK_TLB_FILL, self.lib.sim_tlb_fill, 1, 0))
        for htype, cb, begin, end in hooks if self.config.accounting else ():
            h = _ucmod.uc_hook_h()
            status = uclib.uc_hook_add(self.uc._uch, ctypes.byref(h), htype, fp(cb), self._sp,
                                       ctypes.c_uint64(begin), ctypes.c_uint64(end))
            if status != ucc.UC_ERR_OK:
                raise UcError(status)
            self._native_hooks.append(h)
        self.uc.hook_add(UC_HOOK_INTR, self._on_interrupt)
        self.uc.hook_add(UC_HOOK_MEM_INVALID, self._on_invalid_access)

    def close(self):
        if self.core1_in_rom is not None and self.primary is None:
            self.core1_in_rom.close()
        if self._state_ptr:
            for port, _, _ in self._ports:
                self.lib.sim_port_free(port)
            self._ports = []
            self.lib.sim_free(self._sp)
            self._state_ptr = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- services for peripherals --------------------------------------------------------------------------------
    def cycles(self) -> int:
        """Chip time in clk_sys cycles: this core's count; on the primary with core 1 running, the later of the two
        (a core runs at most one quantum ahead of the other, so this is at most a quantum ahead of the caller)."""
        if self.core1 is None:
            return self.state.cycles
        return max(self.state.cycles, self.core1.state.cycles)

    def add_cycles(self, n: int):
        """Bus cycles of the access being served, charged to the core that made it."""
        if n:
            self.lib.sim_add_cycles(self._active._sp, n)

    def warn(self, message: str):
        if self.primary is not None:
            return self.primary.warn(message)
        if message in self._warned:
            return
        self._warned.add(message)
        self.warnings.append(message)
        (self.config.warn_sink or (lambda m: print(f"warning: {m}", file=sys.stderr)))(message)

    def unimplemented(self, periph: Peripheral, offset: int, op: str, address: int):
        what = f"{op} of unimplemented register {periph.name_of(offset)} (0x{address:08x})"
        core = self._active
        if self.config.strict:
            if core._pending is None:
                core._pending = Stop("unimplemented register", core.pc(), address, what + " in --strict mode")
            core.uc.emu_stop()
        else:
            self.warn(what)

    def clocks_changed(self):
        self.clock.set_ref_hz(self.clocks.ref_hz(self.xosc))
        self.clock.set_sys_hz(self.clocks.sys_hz(self.xosc, self.pll_sys))

    def set_irq(self, n: int, level: int):
        """A peripheral drives IRQ line n (datasheet 2.3.2 numbers) high or low; a rising line latches pending.
        System IRQs reach both cores' NVICs (datasheet 2.3.2)."""
        if self.core1 is not None:
            self.core1._set_irq_local(n, level)
        self._set_irq_local(n, level)

    def _set_irq_local(self, n: int, level: int):
        bit = 1 << n
        exc = self.exc
        if level:
            if not exc.lines & bit:
                exc.lines |= bit
                exc.pending |= bit
                self.events_changed()
        elif exc.lines & bit:
            exc.lines &= ~bit
            self.events_changed()

    def sio_of(self, core: int) -> Sio:
        return self.sio1 if core else self.sio

    def set_irq_of(self, core: int, n: int, level: int):
        """A per-core line (SIO_IRQ_PROCn) to one core's NVIC; core 1's is dropped until it runs."""
        if core == 0:
            self._set_irq_local(n, level)
        elif self.core1 is not None:
            self.core1._set_irq_local(n, level)

    # -- core 1 in the bootrom ------------------------------------------------------------------------------------
    def _start_core1(self, rom_is_ours: bool):
        """Core 1 at reset. With our ROM, its own engine runs the ROM's reset path into wait_for_vector (datasheet
        2.8.2): it drains its FIFO, sends core 0 a 0 and sleeps in WFE. Afterwards it runs only when core 0 writes
        its FIFO (_core1_rom_wake), at that moment, until it sleeps again, exactly as long as the ROM code takes;
        core 0 runs alone in between, so single-core firmware runs as fast and counts the same as without it.
        With an official ROM (--bootrom) or SimConfig(core1_model=True), core1.Core1Bootrom answers instead."""
        shared = self.sio.shared
        if self.core1_in_rom is not None:
            self.core1_in_rom.close()
            self.core1_in_rom = None
        for fifo in shared.fifo:
            fifo.clear()
        shared.readers[1] = None
        self.core1_bootrom = None
        if not rom_is_ours or self.config.core1_model:
            self.core1_bootrom = Core1Bootrom(self.sio1, self._core1_launched)
            return
        core1 = self._new_core1()
        rom_bytes = bytes(self.uc.mem_read(ROM_BASE, ROM_SIZE))
        launch_pc = rom.launch_branch(rom_bytes)
        core1._launch_hook = core1.uc.hook_add(UC_HOOK_CODE, core1._at_rom_launch, begin=launch_pc, end=launch_pc)
        core1.uc.reg_write(arm.UC_ARM_REG_MSP, int.from_bytes(rom_bytes[0:4], "little"))
        core1.set_regs(sp=int.from_bytes(rom_bytes[0:4], "little"))
        core1.resume_pc = int.from_bytes(rom_bytes[4:8], "little") & ~1
        self.core1_in_rom = core1
        shared.readers[1] = self._core1_rom_wake
        self._run_core1_rom()

    def _new_core1(self) -> "Rp2040":
        core1 = Rp2040(SimConfig(max_cycles=self.config.max_cycles, timeout=None, strict=self.config.strict,
                                 xip_miss_cycles=self.config.xip_miss_cycles, accounting=self.config.accounting),
                       primary=self)
        core1.state.stack_limit = 0
        self.lib.sim_share_xip(core1._sp, self._sp)    # one XIP cache for both cores (datasheet 2.6.3)
        self.lib.sim_set_other_event(self._sp, ctypes.addressof(core1.state) + EVENT_REG_OFFSET)
        self.lib.sim_set_other_event(core1._sp, ctypes.addressof(self.state) + EVENT_REG_OFFSET)
        return core1

    def _core1_rom_wake(self):
        """Core 0 wrote a word into core 1's RX FIFO while core 1 sleeps in the ROM: let core 1 run right after
        the store (the store's block is cut there, as for a store that pends an interrupt)."""
        self._core1_rom_due = True
        if not self._executing:
            self._run_core1_rom()
        elif self._in_mmio_write and (self._hint_before(self.pc() + 2) or 0) >> 11 != STM_TOP5:
            if self._event is None:
                self._event = "mmio_write"
                self.uc.emu_stop()
        else:
            self.state.stop_before = 1

    def _run_core1_rom(self):
        """Run core 1's ROM code from core 0's present cycle count (it slept until now) until it sleeps again
        or branches to the entry it was sent."""
        self._core1_rom_due = False
        c1 = self.core1_in_rom
        if c1 is None:
            return
        c1.state.cycles = self.state.cycles
        stop = c1.run(c1.resume_pc, QUANTUM_CYCLES, with_regs=False)
        if stop.kind == "launch":
            self._core1_launched_from_rom(c1)
        elif stop.kind == "budget exceeded":
            c1.resume_pc = stop.pc                     # asleep in wv_pop / wv_push until the next word
        else:
            self.core1_in_rom = None
            self.sio.shared.readers[1] = None
            self.warn(f"core 1 stopped in the ROM: {stop.kind}: {stop.detail}")

    def _at_rom_launch(self, uc, address, size, _ud):
        """Code hook on the ROM's `blx r6` into the entry core 0 sent: core 1 leaves the bootrom here."""
        regs = self.regs()
        self._rom_launch = (self.ppb.vtor(), regs["sp"], regs["r6"], address)
        self._pending = Stop("launch", address)
        uc.emu_stop()

    def _core1_launched_from_rom(self, core1: "Rp2040"):
        vtor, sp, entry, blx_pc = core1._rom_launch
        core1.uc.hook_del(core1._launch_hook)
        core1._pending = None
        core1.uc.reg_write(arm.UC_ARM_REG_LR, (blx_pc + 2) | 1)     # the blx itself (its 2 cycles are counted)
        core1.resume_pc = entry & ~1
        self.core1_in_rom = None
        self.sio.shared.readers[1] = None
        self._promote_core1(core1, (vtor, sp, entry))

    def _promote_core1(self, core1: "Rp2040", launch: tuple[int, int, int]):
        self.core1_launch = launch
        core1.exc.lines = self.exc.lines & ~(1 << SIO_IRQ_PROC0)
        self.core1 = core1
        for p in (self.sio, self.sio1, self.ssi):   # their chip time is the later of the two counts from now on
            p.set_second_clock(core1._sp)
        self.sio1.update_irq()
        if self._running:
            self._quantum_end = self.state.cycles + QUANTUM_CYCLES     # core 1's first turn comes after this
            self._schedule()

    def _core1_launched(self, vtor: int, sp: int, entry: int):
        """Core 1 left the bootrom: start its engine at the primary's current cycle count."""
        core1 = self._new_core1()
        core1.ppb.regs[SCB_VTOR_OFFSET] = vtor & 0xFFFFFF00
        core1.set_regs(sp=sp)
        core1.uc.reg_write(arm.UC_ARM_REG_MSP, sp & 0xFFFFFFFF)
        core1.resume_pc = entry & ~1
        core1.state.cycles = self.state.cycles
        self._promote_core1(core1, (vtor, sp, entry))

    def events_changed(self):
        """See _events_changed_local; shared peripherals call this on the primary and it reaches both cores."""
        for core in (self.primary or self)._cores():
            core._events_changed_local()

    def _events_changed_local(self):
        """Something that decides when the next exception comes changed (an MMIO write, a line): re-arm the
        cycle deadline and end the slice after the current block if an exception is now to be taken."""
        exc = self.exc
        self.state.irq_hint = 1 if exc.best_pending() is not None else 0
        if not self._running:
            return
        self._schedule()
        if not self._executing:
            return                        # the other core is running; this one checks at its next slice
        if exc.takeable() is not None and self._event is None:
            if self._in_mmio_write and (self._hint_before(self.pc() + 2) or 0) >> 11 != STM_TOP5:
                # Taken right after the store: Unicorn aborts the block after the access, PC on the store
                # (resumed at PC + 2 by _slice, the rest of the block's cost taken back).
                self._event = "mmio_write"
                self.uc.emu_stop()
            else:
                # After a load the destination register may not be written yet if the block were aborted:
                # stop before the next block instead (the interrupt comes at the end of the current block).
                self.state.stop_before = 1

    def _update_timed(self):
        self.ppb.update()
        self.timer.update()

    def next_event(self) -> int | None:
        """Cycle count of the next time-driven event that can pend an exception (SysTick, TIMER alarms)."""
        events = [t for t in (self.ppb.next_event(), self.timer.next_event()) if t is not None]
        return min(events) if events else None

    def _schedule(self):
        nxt = self.next_event()
        end = self._run_end if self._quantum_end is None else min(self._run_end, self._quantum_end)
        self.state.budget = end if nxt is None else min(end, nxt)

    def _other_core_runs(self) -> bool:
        if self.primary is not None:
            return True                   # core 1 only runs while core 0 does
        return self.core1 is not None and self.core1.runnable

    def xip_flush(self):
        for core in self._cores():
            self.lib.sim_xip_flush(core._sp)

    def set_xip_cache_enabled(self, on: bool):
        """XIP_CTRL.CTRL.EN of the one cache both cores read through."""
        for core in self._cores():
            core.state.xip_cache_enabled = int(on)

    def xip_counter(self, name: str) -> int:
        """The cache's access counters (CTR_HIT, CTR_ACC) count both cores' accesses: the sum of the cores'."""
        return sum(getattr(core.state, name) for core in self._cores())

    def set_xip_line_fill(self, cycles: int):
        if self.config.xip_miss_cycles is None:
            for core in self._cores():
                core.state.xip_miss_penalty = cycles

    def _cores(self):
        return (self,) if self.core1 is None else (self, self.core1)

    # -- Unicorn callbacks ---------------------------------------------------------------------------------------
    def _on_interrupt(self, uc, intno, _ud):
        pc = self.pc()
        if intno == EXCP_BKPT:
            op = int.from_bytes(uc.mem_read(pc, 2), "little")
            imm = op & 0xFF if op & BKPT_OPCODE_MASK == BKPT_OPCODE else None
            if imm == 0:
                self._pending = Stop("halt", pc)
            elif imm in rom.BKPT_REASONS and pc < ROM_BASE + ROM_SIZE:
                kind, detail = rom.BKPT_REASONS[imm]
                self._pending = Stop(kind, pc, None, detail)
            elif imm is None:
                self._pending = Stop("breakpoint", pc, None, f"breakpoint exception at a non-BKPT 0x{op:04x}")
            else:
                self._pending = Stop("breakpoint", pc, None,
                                     f"bkpt #0x{imm:02x}: not the firmware's normal halt (bkpt #0); r0 = "
                                     f"{uc.reg_read(arm.UC_ARM_REG_R0)} (the exception number for the "
                                     f"firmware's unexpected-exception handler)")
        elif intno == EXCP_DATA_ABORT:
            hw = int.from_bytes(uc.mem_read(pc, 2), "little")
            self._pending = Stop("unaligned access", pc, load_store_address(hw, self.regs()),
                                 "the Cortex-M0+ faults on unaligned loads and stores (HardFault)")
        elif intno == EXCP_SWI:
            self._event = "svc"                  # pc is the return address, after the svc
        elif intno == EXCP_EXCEPTION_EXIT and pc >= EXC_RETURN_MIN:
            self._event = ("exc_return", pc | 1)  # in handler mode (IPSR set) Unicorn raises this instead of fetching
        elif intno == EXCP_UDEF and self._hint_before(pc) in (HINT_WFE, HINT_YIELD):
            self._event = "wfe" if self._hint_before(pc) == HINT_WFE else "yield"
        elif intno == EXCP_UDEF:
            self._pending = Stop("invalid instruction", pc, None, "undefined instruction")
        else:
            self._pending = Stop("exception", pc, None, f"CPU exception {intno}")
        uc.emu_stop()

    def _hint_before(self, pc: int) -> int | None:
        try:
            return int.from_bytes(self.uc.mem_read(pc - 2, 2), "little")
        except UcError:
            return None

    def _on_invalid_access(self, uc, access, address, size, value, _ud):
        if access == ucc.UC_MEM_FETCH_UNMAPPED and address >= EXC_RETURN_MIN and self._pending is None:
            self._event = ("exc_return", address | 1)    # a handler's BX/POP to EXC_RETURN
            return False
        if XIP_DATA_VIEW <= address < XIP_DATA_VIEW + (XIP_WINDOW_END - XIP_BASE):
            address = address - XIP_DATA_VIEW + XIP_BASE        # a data read past the 2 MB flash of an alias
        kinds = {ucc.UC_MEM_READ_UNMAPPED: "unmapped read", ucc.UC_MEM_WRITE_UNMAPPED: "unmapped write",
                 ucc.UC_MEM_FETCH_UNMAPPED: "unmapped fetch", ucc.UC_MEM_READ_PROT: "protected read",
                 ucc.UC_MEM_WRITE_PROT: "write to read-only memory", ucc.UC_MEM_FETCH_PROT: "protected fetch"}
        kind = kinds.get(access, f"memory access {access}")
        if access == ucc.UC_MEM_WRITE_PROT and XIP_BASE <= address < XIP_WINDOW_END:
            kind = "flash write"
        elif access == ucc.UC_MEM_WRITE_PROT and address < ROM_BASE + ROM_SIZE:
            kind = "rom write"
        if self._pending is None:
            self._pending = Stop(kind, self.pc(), address, f"{size}-byte access at 0x{address:08x}")
        return False

    # -- running -------------------------------------------------------------------------------------------------
    def pc(self) -> int:
        return self.uc.reg_read(arm.UC_ARM_REG_PC)

    def regs(self) -> dict:
        r = {n: self.uc.reg_read(i) for n, i in zip(REG_NAMES, REG_IDS)}
        r["xpsr"] = self.uc.reg_read(arm.UC_ARM_REG_XPSR)
        return r

    def set_regs(self, **values):
        for name, value in values.items():
            self.uc.reg_write(REG_IDS[REG_NAMES.index(name)], value & 0xFFFFFFFF)

    def run(self, pc: int, max_cycles: int | None = None, *, with_regs: bool = True) -> Stop:
        """Run from pc (Thumb) until bkpt, a fault, max_cycles more cycles or the wall-clock limit; never hangs.
        with_regs=False leaves Stop.regs empty: core 1's turns (one per quantum) would read 17 registers each.

        The emulation runs in slices: a slice ends at a bkpt or fault (the run ends), or at an event the exception
        model handles here before resuming (a cycle deadline of SysTick or a TIMER alarm, an MMIO write that pends
        an interrupt, SVC, an exception return, WFI/WFE, a branch to itself). Without interrupts, events or idle
        loops (every picozoo inference) the run is one slice, exactly as fast and counted as before."""
        budget = self.config.max_cycles if max_cycles is None else check_max_cycles(max_cycles, "max_cycles")
        st = self.state
        self._run_end = st.cycles + budget
        timeout = self.config.timeout
        st.wall_deadline_ns = time.monotonic_ns() + int(timeout * 1e9) if timeout else 0
        self._running = True
        try:
            while True:
                self._set_quantum()
                stop, pc = self._slice(pc, budget)
                if self._core1_rom_due:
                    self._run_core1_rom()
                if stop is None and self.core1 is not None and self.core1.runnable:
                    stop = self._run_core1()
                if stop is not None:
                    break
        finally:
            self._running = False
            self._quantum_end = None
            if self.primary is None:
                self.ssi.check_xip_setup()
            st.wall_deadline_ns = 0
            st.budget = self._run_end
        if with_regs:
            stop.regs = self.regs()
        return stop

    def _set_quantum(self):
        if self.primary is None and self.core1 is not None and self.core1.runnable:
            if self._quantum_end is None or self.state.cycles >= self._quantum_end:
                self._quantum_end = self.state.cycles + QUANTUM_CYCLES
        else:
            self._quantum_end = None

    def _run_core1(self) -> Stop | None:
        """Core 1 runs until it has caught up with core 0's cycle count; a fault there ends the run."""
        c1 = self.core1
        behind = self.state.cycles - c1.state.cycles
        if behind <= 0:
            return None
        stop = c1.run(c1.resume_pc, behind, with_regs=False)
        if stop.kind == "budget exceeded":
            c1.resume_pc = stop.pc
            return None
        stop.regs = c1.regs()
        c1.final_stop = stop
        c1.runnable = False               # halted (bkpt #0) or stuck for good: core 0 goes on alone
        if stop.ok or stop.kind == "stuck":
            self.warn(f"core 1 stopped: {'bkpt #0' if stop.ok else stop.detail}")
            return None
        return Stop(stop.kind, stop.pc, stop.address, f"on core 1: {stop.detail}", stop.regs)

    def _chip_ms(self) -> float:
        return self.clock.now_ps() / 1e9

    def _budget_stop(self, pc: int, why: str) -> Stop:
        return Stop("budget exceeded", pc, None, f"budget reached after {self._chip_ms():.3f} ms of chip time "
                    f"({self.state.cycles:,} cycles): {why}")

    def _stuck(self, pc: int, why: str) -> Stop:
        return Stop("stuck", pc, None, f"stuck at pc 0x{pc:08x}: {why}; the chip would wait here forever")

    def _slice(self, pc: int, budget: int) -> tuple[Stop | None, int]:
        """One emu_start; returns (Stop, pc) when the run ends, (None, pc to resume at) otherwise."""
        st = self.state
        self._schedule()
        st.irq_hint = 1 if self.exc.best_pending() is not None else 0
        if st.irq_hint:                              # pended while the other core ran
            try:
                while (n := self.exc.takeable()) is not None:
                    pc = self.exc.enter(n, pc)
            except ExceptionFault as f:
                return Stop(f.kind, pc, f.address, f.detail), pc
        self.lib.sim_reset_prev(self._sp)
        self._pending = None
        self._event = None
        error = None
        self._executing = True
        try:
            if self.config.accounting:
                self.uc.emu_start(pc | 1, UNTIL_NEVER)
            else:
                timeout = self.config.timeout
                self.uc.emu_start(pc | 1, UNTIL_NEVER, timeout=int(timeout * 1e6) if timeout else 0)
        except UcError as e:
            error = e
        finally:
            self._executing = False
        pc = self.pc()
        stop, event, reason = self._pending, self._event, st.stop_reason
        if event == "mmio_write" and stop is None:
            pc += 2                                  # the store (16-bit, as every Thumb-1 store) has completed
            self.lib.sim_abort_block(self._sp, pc)
        prev_end = self.lib.sim_prev_end(self._sp)
        self.lib.sim_settle(self._sp, pc)
        if reason == native.STOP_BUDGET and stop is None and st.cycles >= self._run_end:
            return self._budget_stop(pc, f"{budget:,} cycles (--max-cycles) used up"), pc
        if reason == native.STOP_WALL and stop is None:
            return self._budget_stop(pc, f"the wall-clock limit of {self.config.timeout:g} s (--timeout) ran out"), pc
        if reason == native.STOP_STACK:
            return Stop("stack overflow", pc, st.fault_addr,
                        f"SP = 0x{st.fault_addr:08x} went below the stack limit 0x{st.stack_limit:08x}"), pc
        if reason == native.STOP_DECODE:
            return Stop("unmapped fetch", st.fault_addr, st.fault_addr, "cannot read the code of a block"), pc
        if stop is not None:
            return stop, pc
        if not self.config.accounting and error is None and event is None and self.uc.query(ucc.UC_QUERY_TIMEOUT):
            return self._budget_stop(pc, f"the wall-clock limit of {self.config.timeout:g} s (--timeout) ran out"), pc
        if event is None and error is not None and error.errno == ucc.UC_ERR_INSN_INVALID:
            hint = self._hint_before(pc)             # Unicorn's M0 refuses WFE/YIELD, with pc after them
            if hint in (HINT_WFE, HINT_YIELD) and prev_end == pc:
                event = "wfe" if hint == HINT_WFE else "yield"
        wfi = prev_end == pc and self._hint_before(pc) == HINT_WFI
        self_loop = reason == native.STOP_SPECIAL and pc == st.stop_pc and self._is_self_loop(pc)
        if event is None and not wfi and reason not in (native.STOP_BUDGET, native.STOP_SPECIAL):
            if error is not None and error.errno == ucc.UC_ERR_INSN_INVALID:
                return Stop("invalid instruction", pc, None, self._invalid_detail()), pc
            if error is not None:
                return Stop("emulator error", pc, None, str(error)), pc
            return Stop("unexpected stop", pc, None, "execution stopped without bkpt or fault"), pc
        try:
            return self._handle_events(pc, event, wfi, self_loop)
        except ExceptionFault as f:
            return Stop(f.kind, pc, f.address, f.detail), pc

    def _is_self_loop(self, pc: int) -> bool:
        return self._hint_before(pc + 2) == B_SELF

    def _handle_events(self, pc: int, event, wfi: bool, self_loop: bool) -> tuple[Stop | None, int]:
        exc, st = self.exc, self.state
        self._update_timed()
        if isinstance(event, tuple) and event[0] == "exc_return":
            pc = exc.exit(event[1])
            self._update_timed()
        elif event == "svc":
            if exc.primask() or exc.priority(SVCALL) >= exc.execution_priority():
                return Stop("exception", pc - 2, None, "SVC with PRIMASK set or from a handler of equal or higher "
                            "priority: HardFault on the chip"), pc
            exc.set_pending(SVCALL)
            pc = exc.enter(SVCALL, pc)
        elif event == "wfe" or wfi:
            if event == "wfe" and st.event_reg:
                st.event_reg = 0                         # WFE with the event set: clear it and go on
            else:
                what = "WFE" if event == "wfe" else "WFI"
                woken = self._sleep_until(lambda: exc.preempting() is not None or (event == "wfe" and st.event_reg))
                if woken is not None and woken != "quantum":
                    why = f"{what} with no interrupt or event that can wake it"
                    return self._stuck_or_budget(pc - 2, woken, why), pc
                if event == "wfe":
                    st.event_reg = 0
        elif self_loop:
            if exc.primask():
                return self._stuck(pc, "a branch to itself with interrupts masked (PRIMASK = 1)"), pc
            woken = self._sleep_until(lambda: exc.takeable() is not None)
            if woken is not None and woken != "quantum":
                return self._stuck_or_budget(pc, woken, "a branch to itself and no interrupt that can ever fire"), pc
        while (n := exc.takeable()) is not None:
            pc = exc.enter(n, pc)
        return None, pc

    def _stuck_or_budget(self, pc: int, why_not: str, stuck_why: str) -> Stop:
        if why_not == "budget":
            return self._budget_stop(pc, "the cycle budget (--max-cycles) ran out while the core slept")
        return self._stuck(pc, stuck_why)

    def _sleep_until(self, awake) -> str | None:
        """Skip idle cycles to the next timed event until `awake()`; None when woken, else why not: "stuck",
        "budget", or "quantum" (the other core's turn: a spurious wake-up, which WFE/WFI allow)."""
        st = self.state
        while not awake():
            nxt = self.next_event()
            if self._other_core_runs():           # the other core may wake this one: sleep to the end of the turn
                turn = self._run_end if self.primary is not None else self._quantum_end
                nxt = turn if nxt is None else min(nxt, turn)
            if nxt is None:
                return "stuck"
            target = min(nxt, self._run_end)
            if target > st.cycles:
                self.sleep_cycles += target - st.cycles
                self.lib.sim_add_cycles(self._sp, target - st.cycles)
            self._update_timed()
            if awake():
                return None
            if st.cycles >= self._run_end:
                return "budget"
            if self.primary is None and self._quantum_end is not None and st.cycles >= self._quantum_end:
                return "quantum"
        return None

    def _invalid_detail(self) -> str:
        pc = self.pc()
        try:
            hw = int.from_bytes(self.uc.mem_read(pc, 2), "little")
        except UcError:
            return "undecodable instruction"
        if hw >> 11 in (0x1D, 0x1E, 0x1F):
            hw2 = int.from_bytes(self.uc.mem_read(pc + 2, 2), "little")
            return (f"32-bit instruction 0x{hw:04x} 0x{hw2:04x}: Thumb-2, which the Cortex-M0+ (ARMv6-M) does not "
                    f"implement (only BL, MSR, MRS, DMB, DSB, ISB)")
        return f"instruction 0x{hw:04x} is undefined on ARMv6-M"

    # -- memory helpers --------------------------------------------------------------------------------------------
    def load_rom(self, image: bytes):
        """Put a 16 kB bootrom image at 0x00000000 (ours by default, rp2040_sim/rom; --bootrom an official one)."""
        if len(image) != ROM_SIZE:
            raise ValueError(f"ROM image of {len(image)} bytes, expected {ROM_SIZE}")
        self.uc.mem_write(ROM_BASE, bytes(image))
        self.uc.ctl_remove_cache(ROM_BASE, ROM_BASE + ROM_SIZE)
        self.lib.sim_forget_blocks(self._sp)
        if self.primary is None and hasattr(self, "sio1"):     # after construction: core 1 restarts with this ROM
            self._start_core1(rom_is_ours=bytes(image) == rom.image())

    def load_flash(self, image: bytes, offset: int = 0):
        if offset + len(image) > FLASH_SIZE:
            raise ValueError(f"flash image of {len(image)} bytes at offset {offset} exceeds {FLASH_SIZE} bytes")
        ctypes.memmove(ctypes.addressof(self.flash) + offset, bytes(image), len(image))
        # The bytes changed behind Unicorn's back: drop translated blocks and our decoded costs of flash code.
        for base in XIP_ALIASES:
            self.uc.ctl_remove_cache(base, base + FLASH_SIZE)
        self.lib.sim_forget_blocks(self._sp)

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.uc.mem_read(addr, n))

    def write(self, addr: int, data: bytes):
        self.uc.mem_write(addr, bytes(data))

    def read_u32(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 4), "little")

    def set_stack_limit(self, limit: int):
        self.state.stack_limit = limit

    def reset_counters(self):
        st = self.state
        st.instructions = 0
        st.xip_hits = st.xip_accesses = st.xip_misses = 0

    def profile(self) -> list[tuple[int, int, int, int]]:
        """(block address, size, executions, cycles) of every block that ran."""
        n = max(self.lib.sim_block_count(self._sp), 1)
        u32, u64 = ctypes.c_uint32 * n, ctypes.c_uint64 * n
        a, s, e, c = u32(), u32(), u64(), u64()
        k = self.lib.sim_profile(self._sp, a, s, e, c, n)
        return [(a[i], s[i], e[i], c[i]) for i in range(k)]

    def xip_snapshot(self) -> bytes:
        buf = ctypes.create_string_buffer(self.lib.sim_xip_state_size())
        self.lib.sim_xip_save(self._sp, buf)
        return buf.raw

    def xip_restore(self, snap: bytes):
        self.lib.sim_xip_load(self._sp, snap)
