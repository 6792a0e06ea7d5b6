"""The emulated RP2040: a Unicorn Cortex-M0 core, the memory map, peripherals and the native cycle counter.

Unicorn is opened as a true ARMv6-M core (UC_MODE_THUMB + UC_CPU_ARM_CORTEX_M0): UC_MODE_MCLASS would silently
give a Cortex-M33 that runs Thumb-2 and tolerates unaligned loads. Cycles are counted by native/cycles.c, whose
hooks libunicorn calls directly; Python only runs on peripheral accesses and when the emulation stops.
"""

from __future__ import annotations

import ctypes
import sys
from dataclasses import dataclass, field

from unicorn import (UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_INTR, UC_HOOK_MEM_INVALID, UC_HOOK_TLB_FILL,
                     UC_MODE_THUMB, UC_PROT_ALL, UC_PROT_EXEC, UC_PROT_READ, UC_TLB_VIRTUAL, Uc, UcError)
from unicorn import arm_const as arm
from unicorn import unicorn_const as ucc
from unicorn.unicorn_py3 import unicorn as _ucmod

from rp2040_sim import native, rom
from rp2040_sim.clock import Clock
from rp2040_sim.memory import (FLASH_ERASED, FLASH_SIZE, ROM_BASE, ROM_SIZE, SRAM_BASE,
                               SRAM_SIZE, UNMODELLED_PERIPHERALS, XIP_ALIASES, XIP_BASE, XIP_DATA_VIEW,
                               XIP_WINDOW_END)
from rp2040_sim.peripherals.base import Peripheral
from rp2040_sim.peripherals.clocks import Clocks, PllSys, PllUsb, Xosc
from rp2040_sim.peripherals.gpio import IoBank0, IoQspi, PadsBank0, PadsQspi
from rp2040_sim.peripherals.ppb import Ppb
from rp2040_sim.peripherals.resets import Resets
from rp2040_sim.peripherals.sio import Sio
from rp2040_sim.peripherals.sysinfo import Sysinfo, Tbman
from rp2040_sim.peripherals.timer import Timer, Watchdog
from rp2040_sim.peripherals.uart import Uart
from rp2040_sim.peripherals.usb import UsbCtrl
from rp2040_sim.peripherals.xip import Ssi, XipCtrl

# Interrupt numbers Unicorn reports in UC_HOOK_INTR (qemu target/arm/cpu.h EXCP_*)
EXCP_UDEF, EXCP_SWI, EXCP_DATA_ABORT, EXCP_BKPT = 1, 2, 4, 7
BKPT_OPCODE_MASK, BKPT_OPCODE = 0xFF00, 0xBE00
# A run never ends by reaching `until`: no Thumb code can sit at this odd address.
UNTIL_NEVER = 0xFFFFFFFF
# Default cycle budget: 2^34 cycles = 137 s of a 125 MHz chip, a few minutes of emulation at most.
DEFAULT_MAX_CYCLES = 1 << 34
# XIP line fill before boot2 configures the SSI: Pico board quad read, 28 SCK x CLKDIV 2 (reference sheet).
DEFAULT_XIP_MISS_CYCLES = 56
REG_NAMES = ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "sp", "lr", "pc")
REG_IDS = tuple(getattr(arm, f"UC_ARM_REG_{n.upper()}") for n in REG_NAMES)


@dataclass
class SimConfig:
    max_cycles: int = DEFAULT_MAX_CYCLES
    strict: bool = False              # an unimplemented register stops the run instead of warning
    xip_miss_cycles: int | None = None  # None: from the SSI setup boot2 writes (56 until then)
    uart_sink: object = None          # callable(byte) for live UART output
    warn_sink: object = None          # callable(str); default: stderr
    accounting: bool = True           # False: no native hooks, no cycles (speed baseline for benchmarks only)


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
    def __init__(self, config: SimConfig | None = None):
        self.config = config or SimConfig()
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
        self._map_memory()
        self._make_peripherals()
        self._add_hooks()

    # -- construction --------------------------------------------------------------------------------------------
    def _map_memory(self):
        uc = self.uc
        uc.mem_map(ROM_BASE, ROM_SIZE, UC_PROT_READ | UC_PROT_EXEC)
        self.load_rom(rom.image())
        # One 2 MB buffer seen through the four XIP aliases; no write permission: a store is a fault, as on
        # the chip (a write to XIP is an error response, datasheet 2.6.3.3).
        self.flash = ctypes.create_string_buffer(bytes([FLASH_ERASED]) * FLASH_SIZE, FLASH_SIZE)
        for base in XIP_ALIASES:
            uc.mem_map_ptr(base, FLASH_SIZE, UC_PROT_READ | UC_PROT_EXEC, ctypes.addressof(self.flash))
        uc.mem_map(SRAM_BASE, SRAM_SIZE, UC_PROT_ALL)
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
        self.sio = Sio(self)
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
            self.uc.mmio_map(p.BASE, p.SIZE, self._mmio_read, p, self._mmio_write, p)

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
        if self._state_ptr:
            self.lib.sim_free(self._sp)
            self._state_ptr = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # -- services for peripherals --------------------------------------------------------------------------------
    def cycles(self) -> int:
        return self.state.cycles

    def add_cycles(self, n: int):
        if n:
            self.lib.sim_add_cycles(self._sp, n)

    def warn(self, message: str):
        if message in self._warned:
            return
        self._warned.add(message)
        self.warnings.append(message)
        (self.config.warn_sink or (lambda m: print(f"warning: {m}", file=sys.stderr)))(message)

    def unimplemented(self, periph: Peripheral, offset: int, op: str, address: int):
        what = f"{op} of unimplemented register {periph.name_of(offset)} (0x{address:08x})"
        if self.config.strict:
            if self._pending is None:
                self._pending = Stop("unimplemented register", self.pc(), address, what + " in --strict mode")
            self.uc.emu_stop()
        else:
            self.warn(what)

    def clocks_changed(self):
        self.clock.set_ref_hz(self.clocks.ref_hz(self.xosc))
        self.clock.set_sys_hz(self.clocks.sys_hz(self.xosc, self.pll_sys))

    def xip_flush(self):
        self.lib.sim_xip_flush(self._sp)

    def set_xip_line_fill(self, cycles: int):
        if self.config.xip_miss_cycles is None:
            self.state.xip_miss_penalty = cycles

    # -- Unicorn callbacks ---------------------------------------------------------------------------------------
    @staticmethod
    def _mmio_read(uc, offset, size, periph):
        return periph.bus_read(offset, size)

    @staticmethod
    def _mmio_write(uc, offset, size, value, periph):
        periph.bus_write(offset, size, value)

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
            self._pending = Stop("exception", pc - 2, None, "SVC: exceptions are not modelled")
        elif intno == EXCP_UDEF:
            self._pending = Stop("invalid instruction", pc, None, "undefined instruction")
        else:
            self._pending = Stop("exception", pc, None, f"CPU exception {intno}")
        uc.emu_stop()

    def _on_invalid_access(self, uc, access, address, size, value, _ud):
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

    def run(self, pc: int, max_cycles: int | None = None) -> Stop:
        """Run from pc (Thumb) until bkpt, a fault, or max_cycles more cycles; never hangs."""
        budget = self.config.max_cycles if max_cycles is None else max_cycles
        st = self.state
        st.budget = st.cycles + budget
        self.lib.sim_reset_prev(self._sp)
        self._pending = None
        error = None
        try:
            self.uc.emu_start(pc | 1, UNTIL_NEVER)
        except UcError as e:
            error = e
        stop = self._pending
        if st.stop_reason == native.STOP_BUDGET and stop is None:    # a bkpt in the last block still counts
            stop = Stop("budget exceeded", self.pc(), None, f"{budget} cycles (--max-cycles) used up")
        elif st.stop_reason == native.STOP_STACK:
            stop = Stop("stack overflow", self.pc(), st.fault_addr,
                        f"SP = 0x{st.fault_addr:08x} went below the stack limit 0x{st.stack_limit:08x}")
        elif st.stop_reason == native.STOP_DECODE:
            stop = Stop("unmapped fetch", st.fault_addr, st.fault_addr, "cannot read the code of a block")
        if stop is None:
            if error is not None and error.errno == ucc.UC_ERR_INSN_INVALID:
                stop = Stop("invalid instruction", self.pc(), None, self._invalid_detail())
            elif error is not None:
                stop = Stop("emulator error", self.pc(), None, str(error))
            else:
                stop = Stop("unexpected stop", self.pc(), None, "execution stopped without bkpt or fault")
        stop.regs = self.regs()
        return stop

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
