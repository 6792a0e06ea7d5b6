"""Each peripheral model through its bus interface (offsets within the block, atomic aliases included), plus the
strict mode for unimplemented registers through real code."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rp2040_sim.core import Rp2040, SimConfig
from rp2040_sim.peripherals import clocks, flash_chip, ppb, resets, sio, timer, uart, xip
from rp2040_sim.peripherals.base import ALIAS_CLR, ALIAS_SET, ALIAS_SHIFT, ALIAS_XOR
from tests.conftest import require_tool

SET, CLR, XOR = ALIAS_SET << ALIAS_SHIFT, ALIAS_CLR << ALIAS_SHIFT, ALIAS_XOR << ALIAS_SHIFT


@pytest.fixture(scope="module")
def sim():
    warnings = []
    s = Rp2040(SimConfig(warn_sink=warnings.append))
    s.test_warnings = warnings
    return s


@pytest.fixture
def fresh():
    """A new chip whose bus accesses cost no extra cycles, so tests control time exactly with add_cycles (bus
    timing itself is covered in test_sim_timing.py)."""
    warnings = []
    s = Rp2040(SimConfig(warn_sink=warnings.append))
    s.test_warnings = warnings
    for p in s.peripherals:
        p.READ_EXTRA = p.WRITE_EXTRA = 0
    return s


def w(p, off, value, size=4):
    p.bus_write(off, size, value)


def r(p, off, size=4):
    return p.bus_read(off, size)


def test_resets_after_bootrom_and_clr_alias(fresh):
    rs = fresh.resets
    assert r(rs, resets.RESETS_RESET_DONE) >> resets.RESET_TIMER & 1      # bootrom left TIMER out of reset
    assert not r(rs, resets.RESETS_RESET_DONE) >> resets.RESET_UART0 & 1
    w(rs, CLR + resets.RESETS_RESET, 1 << resets.RESET_UART0)
    assert r(rs, resets.RESETS_RESET_DONE) >> resets.RESET_UART0 & 1
    w(rs, SET + resets.RESETS_RESET, 1 << resets.RESET_UART0)
    assert rs.in_reset(resets.RESET_UART0)
    w(rs, XOR + resets.RESETS_RESET, 1 << resets.RESET_UART0)
    assert not rs.in_reset(resets.RESET_UART0)


def bring_up_125mhz(s):
    """The reference sheet's bare-metal sequence: XOSC, clk_ref <- XOSC, PLL_SYS 125 MHz, clk_sys <- PLL."""
    w(s.xosc, clocks.XOSC_STARTUP, 47)
    w(s.xosc, clocks.XOSC_CTRL, 0x00FABAA0)
    assert r(s.xosc, clocks.XOSC_STATUS) & clocks.XOSC_STATUS_STABLE
    w(s.clocks, clocks.CLK_REF_CTRL, clocks.CLK_REF_SRC_XOSC)
    assert r(s.clocks, clocks.CLK_REF_SELECTED) == 1 << 2
    w(s.pll_sys, clocks.PLL_CS, 1)
    w(s.pll_sys, clocks.PLL_FBDIV_INT, 125)
    w(s.pll_sys, CLR + clocks.PLL_PWR, clocks.PLL_PWR_PD | clocks.PLL_PWR_VCOPD)
    assert r(s.pll_sys, clocks.PLL_CS) & clocks.PLL_CS_LOCK
    w(s.pll_sys, clocks.PLL_PRIM, 0x00062000)
    w(s.pll_sys, CLR + clocks.PLL_PWR, clocks.PLL_PWR_POSTDIVPD)
    w(s.clocks, clocks.CLK_SYS_CTRL, 0)
    w(s.clocks, SET + clocks.CLK_SYS_CTRL, 1)
    assert r(s.clocks, clocks.CLK_SYS_SELECTED) == 0x2
    w(s.clocks, clocks.CLK_PERI_CTRL, 0x800)


def test_clock_tree_reaches_125mhz(fresh):
    assert fresh.clock.sys_hz == 6_500_000           # ROSC after the bootrom
    bring_up_125mhz(fresh)
    assert fresh.pll_sys.output_hz() == 125_000_000
    assert fresh.clock.sys_hz == 125_000_000 and fresh.clock.ref_hz == 12_000_000
    assert fresh.clocks.peri_enabled()


def test_timer_counts_microseconds_from_cycles(fresh):
    bring_up_125mhz(fresh)
    assert r(fresh.timer, timer.TIMER_TIMERAWL) == 0                     # no tick until WATCHDOG_TICK is set
    w(fresh.watchdog, timer.WD_TICK, timer.WD_TICK_ENABLE | 12)
    assert r(fresh.watchdog, timer.WD_TICK) & timer.WD_TICK_RUNNING
    fresh.add_cycles(125 * 1000 + 124)                                    # 1000.992 us
    assert r(fresh.timer, timer.TIMER_TIMELR) == 1000
    assert r(fresh.timer, timer.TIMER_TIMEHR) == 0
    fresh.add_cycles(1)
    assert r(fresh.timer, timer.TIMER_TIMERAWL) == 1001
    w(fresh.timer, timer.TIMER_TIMELW, 0xFFFFFFFF)
    w(fresh.timer, timer.TIMER_TIMEHW, 0)
    fresh.add_cycles(250)
    assert r(fresh.timer, timer.TIMER_TIMELR) == 1 and r(fresh.timer, timer.TIMER_TIMEHR) == 1


def test_uart_captures_tx_and_reports_fifo_flags(fresh):
    got = []
    u = fresh.uart0
    u.sink = got.append
    fr = r(u, uart.UARTFR)
    assert fr & uart.UARTFR_TXFE and fr & uart.UARTFR_RXFE and not fr & uart.UARTFR_TXFF
    w(u, uart.UARTDR, ord("x"))                                           # UART disabled: dropped, warned
    assert u.tx == b"" and any("disabled" in m for m in fresh.test_warnings)
    w(u, uart.UARTIBRD, 67)
    w(u, uart.UARTFBRD, 52)
    w(u, uart.UARTLCR_H, 0x70)
    w(u, uart.UARTCR, 0x301)
    for ch in b"ok\n":
        w(u, uart.UARTDR, ch, size=1)
    assert u.tx == b"ok\n" and bytes(got) == b"ok\n"
    assert r(u, uart.UARTIBRD) == 67 and r(u, uart.UARTPERIPHID[0]) == 0x11
    assert fresh.uart1.tx == b""


def test_sio_cpuid_gpio(fresh):
    s = fresh.sio
    assert r(s, sio.SIO_CPUID) == 0
    w(s, sio.SIO_GPIO_OUT_SET, 0b1010)
    w(s, sio.SIO_GPIO_OUT_CLR, 0b0010)
    w(s, sio.SIO_GPIO_OUT_XOR, 0b0001)
    assert r(s, sio.SIO_GPIO_OUT) == 0b1001
    w(s, sio.SIO_GPIO_OE_SET, 1 << 25)
    assert r(s, sio.SIO_GPIO_OE) == 1 << 25


@pytest.mark.parametrize("n,d,signed,q,rem", [
    (100, 7, False, 14, 2),
    (0xFFFFFFFF, 2, False, 0x7FFFFFFF, 1),
    (-100 & 0xFFFFFFFF, 7, True, -14 & 0xFFFFFFFF, -2 & 0xFFFFFFFF),
    (100, -7 & 0xFFFFFFFF, True, -14 & 0xFFFFFFFF, 2),
    (0x80000000, 0xFFFFFFFF, True, 0x80000000, 0),                       # INT_MIN / -1
    (5, 0, False, 0xFFFFFFFF, 5),
    (5, 0, True, 0xFFFFFFFF, 5),
    (-5 & 0xFFFFFFFF, 0, True, 1, -5 & 0xFFFFFFFF),
])
def test_divider_semantics(fresh, n, d, signed, q, rem):
    s = fresh.sio
    w(s, sio.SIO_DIV_SDIVIDEND if signed else sio.SIO_DIV_UDIVIDEND, n)
    w(s, sio.SIO_DIV_SDIVISOR if signed else sio.SIO_DIV_UDIVISOR, d)
    assert r(s, sio.SIO_DIV_REMAINDER) == rem
    assert r(s, sio.SIO_DIV_QUOTIENT) == q


@given(st.integers(-2**31, 2**31 - 1), st.integers(-2**31, 2**31 - 1), st.booleans())
def test_divider_against_python_arithmetic(sim, n, d, signed):
    """The native divider (cycles.c) against Python's integers: truncating division, the remainder with the
    dividend's sign; unsigned on the 32-bit patterns; divide by zero and INT_MIN / -1 as the datasheet says."""
    s = sim.sio
    w(s, sio.SIO_DIV_SDIVIDEND if signed else sio.SIO_DIV_UDIVIDEND, n & 0xFFFFFFFF)
    w(s, sio.SIO_DIV_SDIVISOR if signed else sio.SIO_DIV_UDIVISOR, d & 0xFFFFFFFF)
    q, rem = r(s, sio.SIO_DIV_QUOTIENT), r(s, sio.SIO_DIV_REMAINDER)
    if not signed:
        n, d = n & 0xFFFFFFFF, d & 0xFFFFFFFF
        assert (q, rem) == ((n // d, n % d) if d else (0xFFFFFFFF, n))
        return
    if d == 0:
        assert (q, rem) == ((-1 if n >= 0 else 1) & 0xFFFFFFFF, n & 0xFFFFFFFF)
        return
    tq = abs(n) // abs(d) * (1 if (n < 0) == (d < 0) else -1)
    assert (q, rem) == (tq & 0xFFFFFFFF, (n - tq * d) & 0xFFFFFFFF)


def test_divider_ready_after_8_cycles_and_dirty(fresh):
    s = fresh.sio
    w(s, sio.SIO_DIV_UDIVIDEND, 10)
    w(s, sio.SIO_DIV_UDIVISOR, 3)
    assert r(s, sio.SIO_DIV_CSR) == sio.DIV_CSR_DIRTY                    # not ready yet
    fresh.add_cycles(sio.DIV_LATENCY_CYCLES)
    assert r(s, sio.SIO_DIV_CSR) == sio.DIV_CSR_READY | sio.DIV_CSR_DIRTY
    assert r(s, sio.SIO_DIV_REMAINDER) == 1 and r(s, sio.SIO_DIV_QUOTIENT) == 3
    assert r(s, sio.SIO_DIV_CSR) == sio.DIV_CSR_READY                    # reading QUOTIENT clears DIRTY


def test_ssi_status_and_line_fill_cost(fresh):
    s = fresh.ssi
    assert r(s, xip.SSI_SR) & xip.SSI_SR_TFE and not r(s, xip.SSI_SR) & xip.SSI_SR_RFNE
    w(s, xip.SSI_SSIENR, 1)                     # reset: standard SPI, 8-bit frames, TX+RX
    w(s, xip.SSI_DR0, flash_chip.CMD_JEDEC_ID)
    for _ in range(3):
        w(s, xip.SSI_DR0, 0)
    assert r(s, xip.SSI_RXFLR) == 4 and [r(s, xip.SSI_DR0) for _ in range(4)] == [0xFF, 0xEF, 0x40, 0x15]
    assert r(s, xip.SSI_IDR) == xip.SSI_IDR_VALUE
    # picozoo boot2: serial 03h, 8-bit instruction, 24-bit address, BAUDR 4 -> (8 + 24 + 64) SCK x 4
    w(s, xip.SSI_SSIENR, 0)
    w(s, xip.SSI_BAUDR, 4)
    w(s, xip.SSI_CTRLR0, (31 << 16) | (3 << 8))
    w(s, xip.SSI_SPI_CTRLR0, (0x03 << 24) | (2 << 8) | (6 << 2))
    w(s, xip.SSI_SSIENR, 1)
    assert fresh.state.xip_miss_penalty == 96 * 4
    # pico-sdk boot2_w25q080: quad, continuous read (no instruction), 32 address+mode bits, 4 wait, CLKDIV 2
    w(s, xip.SSI_SSIENR, 0)
    w(s, xip.SSI_BAUDR, 2)
    w(s, xip.SSI_CTRLR0, (2 << 21) | (31 << 16) | (3 << 8))
    w(s, xip.SSI_SPI_CTRLR0, (0xA0 << 24) | (4 << 11) | (0 << 8) | (8 << 2) | 2)
    w(s, xip.SSI_SSIENR, 1)
    assert fresh.state.xip_miss_penalty == 28 * 2


def test_explicit_miss_penalty_overrides_ssi():
    s = Rp2040(SimConfig(xip_miss_cycles=10))
    w(s.ssi, xip.SSI_BAUDR, 4)
    w(s.ssi, xip.SSI_SSIENR, 1)
    assert s.state.xip_miss_penalty == 10


def test_xip_ctrl_counters_flush_enable(fresh):
    x = fresh.xip_ctrl
    fresh.state.xip_hits, fresh.state.xip_accesses = 7, 9
    assert r(x, xip.XIP_CTR_HIT) == 7 and r(x, xip.XIP_CTR_ACC) == 9
    w(x, xip.XIP_CTR_HIT, 0)
    assert r(x, xip.XIP_CTR_HIT) == 0
    assert r(x, xip.XIP_STAT) & xip.XIP_STAT_FLUSH_READY
    w(x, CLR + xip.XIP_CTRL, xip.XIP_CTRL_EN)
    assert fresh.state.xip_cache_enabled == 0
    w(x, SET + xip.XIP_CTRL, xip.XIP_CTRL_EN)
    assert fresh.state.xip_cache_enabled == 1


def test_ppb_cpuid_vtor_systick(fresh):
    p = fresh.ppb
    assert r(p, ppb.SCB_CPUID) == 0x410CC601
    w(p, ppb.SCB_VTOR, 0x10000100)
    assert r(p, ppb.SCB_VTOR) == 0x10000100
    w(p, ppb.SYST_RVR, 99)
    w(p, ppb.SYST_CVR, 0)
    w(p, ppb.SYST_CSR, ppb.SYST_CSR_ENABLE | ppb.SYST_CSR_CLKSOURCE)
    fresh.add_cycles(30)                  # 0 -> reload 99 on the first cycle, then 29 decrements
    assert r(p, ppb.SYST_CVR) == 70
    assert not r(p, ppb.SYST_CSR) & ppb.SYST_CSR_COUNTFLAG          # no 1 -> 0 transition yet
    fresh.add_cycles(100)
    assert r(p, ppb.SYST_CVR) == 70
    assert r(p, ppb.SYST_CSR) & ppb.SYST_CSR_COUNTFLAG
    assert not r(p, ppb.SYST_CSR) & ppb.SYST_CSR_COUNTFLAG          # cleared by the read
    w(p, ppb.NVIC_ISER, 1 << 5)
    assert r(p, ppb.NVIC_ICER) == 1 << 5 and fresh.exc.enabled == 1 << 5
    w(p, ppb.NVIC_ICER, 1 << 5)
    assert r(p, ppb.NVIC_ISER) == 0


def test_nvic_pending_priority_and_icsr(fresh):
    p = fresh.ppb
    w(p, ppb.NVIC_IPR0 + 4, 0xFFC0_8040)        # IRQ4..7: priorities 1, 2, 3, 3 (bits 7:6 only)
    assert r(p, ppb.NVIC_IPR0 + 4) == 0xC0C0_8040
    assert [fresh.exc.priority(16 + n) for n in range(4, 8)] == [1, 2, 3, 3]
    w(p, ppb.NVIC_ISER, 0xF0)
    w(p, ppb.NVIC_ISPR, 0xC0)                   # 6 and 7 pending, both priority 3: the lower number wins
    assert r(p, ppb.NVIC_ICPR) & 0xFF == 0xC0 and fresh.exc.best_pending() == 16 + 6   # (15: SIO VLD at reset)
    assert (r(p, ppb.SCB_ICSR) >> 12) & 0x1FF == 16 + 6 and r(p, ppb.SCB_ICSR) & ppb.ICSR_ISRPENDING
    fresh.set_irq(5, 1)                         # a line rising latches pending; priority 2 beats 3
    assert fresh.exc.best_pending() == 16 + 5
    w(p, ppb.NVIC_ICPR, 1 << 5)                 # the line is still high: still pending (level-sensitive)
    assert r(p, ppb.NVIC_ISPR) & (1 << 5)
    fresh.set_irq(5, 0)
    assert not r(p, ppb.NVIC_ISPR) & (1 << 5)
    w(p, ppb.SCB_SHPR3, 0x0040_0000)            # PendSV priority 1
    w(p, ppb.SCB_ICSR, ppb.ICSR_PENDSVSET)
    assert r(p, ppb.SCB_ICSR) & ppb.ICSR_PENDSVSET and fresh.exc.best_pending() == 14
    w(p, ppb.SCB_ICSR, ppb.ICSR_PENDSVCLR)
    assert not r(p, ppb.SCB_ICSR) & ppb.ICSR_PENDSVSET


def test_gpio_funcsel_and_pads(fresh):
    from rp2040_sim.peripherals import gpio
    w(fresh.io_bank0, gpio.GPIO_CTRL, gpio.GPIO_FUNC_UART)
    assert fresh.io_bank0.funcsel(0) == gpio.GPIO_FUNC_UART and fresh.io_bank0.funcsel(1) == 0x1F
    assert r(fresh.pads_bank0, gpio.PADS_GPIO0) == gpio.PADS_GPIO_RESET


def test_unimplemented_register_warns_with_its_name(fresh):
    assert r(fresh.uart0, 0x200) == 0
    assert r(fresh.peripherals[-1], 0x10) == 0
    assert any("UART0+0x200" in m for m in fresh.test_warnings)
    assert any("XIP_AUX+0x010" in m for m in fresh.test_warnings)


def test_strict_mode_stops_at_unimplemented_register(tmp_path):
    require_tool("arm-none-eabi-as")
    from rp2040_sim import asm
    sim = Rp2040(SimConfig(strict=True))
    _, stop = asm.run_snippet("ldr r0, =0x40004000\n ldr r1, [r0]\n bkpt #0\n .ltorg\n", tmp_path, sim=sim)
    assert stop.kind == "unimplemented register" and "SYSCFG+0x000" in stop.detail


def test_sysinfo_and_qspi_pads(fresh):
    from rp2040_sim.peripherals import gpio, sysinfo
    si = next(p for p in fresh.peripherals if p.NAME == "SYSINFO")
    assert r(si, sysinfo.SYSINFO_CHIP_ID) == 0x20002927
    pads = next(p for p in fresh.peripherals if p.NAME == "PADS_QSPI")
    w(pads, 4, 0x6A)
    assert r(pads, 4) == 0x6A
    io = next(p for p in fresh.peripherals if p.NAME == "IO_QSPI")
    w(io, gpio.GPIO_CTRL, 0)
    assert r(io, gpio.GPIO_CTRL) == 0
    assert fresh.test_warnings == []


def test_a_python_error_in_a_peripheral_stops_the_run_and_is_raised(monkeypatch):
    """The native peripheral port (core.Rp2040._map_port) hands an exception of the model back to the caller of
    run(), as Unicorn's own callbacks do, instead of losing it in the C callback."""
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))

    def broken(offset):
        raise RuntimeError(f"model bug at UART0+0x{offset:02x}")

    monkeypatch.setattr(sim.uart0, "read", broken)
    sim.load_flash(bytes.fromhex("0168" "00be"), 0x100)          # ldr r1, [r0]; bkpt #0
    sim.set_regs(r0=0x4003403C, sp=0x20001000)                    # UART0 UARTRIS (UARTFR is answered natively)
    with pytest.raises(RuntimeError, match="model bug at UART0\\+0x3c"):
        sim.run(0x10000100)
