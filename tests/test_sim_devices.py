"""The peripherals added for real firmware, each driven by a small C program built here with our toolchain:
the SIO interpolators in every mode the SDK's hello_interp uses (against the datasheet's formulas), PLL_USB
lock, TBMAN, watchdog scratch and tick, UART RX (echo), GPIO changes with their chip times (--gpio-log), USB's
single warning, and the rule that no register write can crash the emulator (a fault naming the register)."""

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rp2040_sim import asm
from rp2040_sim.__main__ import main
from rp2040_sim.core import Rp2040, SimConfig
from rp2040_sim.peripherals.base import ALIAS_SHIFT
from tests.conftest import require_tool
from rp2040_sim.rom_harness import build, run_program

REGS_H = """
#include <stdint.h>
#define REG(a) (*(volatile uint32_t *)(a))
#define SIO 0xD0000000u
#define INTERP(n, off) REG(SIO + 0x80u + 0x40u * (n) + (off))
enum { ACCUM0 = 0x00, ACCUM1 = 0x04, BASE0 = 0x08, BASE1 = 0x0C, BASE2 = 0x10, POP0 = 0x14, POP1 = 0x18,
       POPF = 0x1C, PEEK0 = 0x20, PEEK1 = 0x24, PEEKF = 0x28, CTRL0 = 0x2C, CTRL1 = 0x30, ADD0 = 0x34,
       ADD1 = 0x38, BASE10 = 0x3C };
#define MASK(lsb, msb) (((lsb) << 5) | ((msb) << 10))
#define SIGNED (1u << 15)
#define CROSS_RESULT (1u << 17)
#define ADD_RAW (1u << 18)
#define FORCE_MSB(v) ((uint32_t)(v) << 19)
#define BLEND (1u << 21)
#define CLAMP (1u << 22)
uint32_t out[512];
uint32_t n;
static void put(uint32_t v) { out[n++] = v; }
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    require_tool("arm-none-eabi-gcc")
    return tmp_path_factory.mktemp("devices")


def run_c(workdir, name, body, sim=None):
    program, sym = build(workdir, REGS_H + body, name)
    sim, stop = run_program(program, sym, sim)
    assert stop.kind == "halt", stop
    n = sim.read_u32(sym["n"])
    raw = sim.read(sym["out"], 4 * n)
    return sim, [int.from_bytes(raw[4 * i:4 * i + 4], "little") for i in range(n)]


def s32(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >> 31 else x


INTERP_PROGRAM = """
int main(void) {
    /* times table: lane 0 adds BASE0 to itself at each pop */
    INTERP(0, CTRL0) = MASK(0, 31);
    INTERP(0, ACCUM0) = 0;
    INTERP(0, BASE0) = 3;
    for (int i = 0; i < 10; i++) put(INTERP(0, POP0));
    /* moving mask, unsigned and signed: 4-bit fields of ACCUM0 */
    INTERP(0, ACCUM0) = 0x1234ABCDu;
    INTERP(0, BASE0) = 0;
    for (uint32_t sh = 0; sh < 32; sh += 4) { INTERP(0, CTRL0) = sh | MASK(0, 3); put(INTERP(0, PEEK0)); }
    for (uint32_t sh = 0; sh < 32; sh += 4) { INTERP(0, CTRL0) = sh | MASK(0, 3) | SIGNED; put(INTERP(0, PEEK0)); }
    for (uint32_t sh = 0; sh < 32; sh += 4) {
        INTERP(0, CTRL0) = sh | MASK(sh, sh + 3 > 31 ? 31 : sh + 3);
        put(INTERP(0, PEEK0));
    }
    /* cross lanes: each pop feeds lane 0's result to ACCUM1 and lane 1's to ACCUM0 */
    INTERP(0, CTRL0) = MASK(0, 31) | CROSS_RESULT;
    INTERP(0, CTRL1) = MASK(0, 31) | CROSS_RESULT;
    INTERP(0, ACCUM0) = 123; INTERP(0, ACCUM1) = 456; INTERP(0, BASE0) = 1; INTERP(0, BASE1) = 1000;
    for (int i = 0; i < 6; i++) { put(INTERP(0, PEEK1)); put(INTERP(0, POP0)); }
    /* blend, unsigned then signed (bases through BASE_1AND0, sign-extended by lane 1's SIGNED) */
    INTERP(0, CTRL0) = BLEND | MASK(0, 31);
    INTERP(0, CTRL1) = MASK(0, 7);
    INTERP(0, BASE0) = 500; INTERP(0, BASE1) = 1000; INTERP(0, BASE2) = 7; INTERP(0, ACCUM0) = 100;
    for (uint32_t a = 0; a < 256; a += 17) {
        INTERP(0, ACCUM1) = a;
        put(INTERP(0, PEEK0)); put(INTERP(0, PEEK1)); put(INTERP(0, PEEKF));
    }
    INTERP(0, CTRL1) = MASK(0, 7) | SIGNED;
    INTERP(0, BASE10) = (1000u << 16) | ((uint32_t)-1000 & 0xFFFF);
    put(INTERP(0, BASE0)); put(INTERP(0, BASE1));
    for (uint32_t a = 0; a < 256; a += 17) { INTERP(0, ACCUM1) = a; put(INTERP(0, PEEK1)); }
    /* clamp on INTERP1, signed, after a shift */
    INTERP(1, CTRL0) = CLAMP | SIGNED | 2 | MASK(0, 29);
    INTERP(1, BASE0) = (uint32_t)-100; INTERP(1, BASE1) = 100;
    static const int32_t vals[] = {0, 40, 400, 401, 403, -400, -404, -1000, 100000, -100000, 2147483647,
                                   -2147483647 - 1};
    for (int i = 0; i < 12; i++) { INTERP(1, ACCUM0) = (uint32_t)vals[i]; put(INTERP(1, PEEK0)); }
    /* raw add, full result, FORCE_MSB, ACCUMx_ADD, overflow flags (INTERP1 without clamp) */
    INTERP(1, CTRL0) = ADD_RAW | 4 | MASK(0, 7);
    INTERP(1, CTRL1) = 8 | MASK(0, 7) | FORCE_MSB(2);
    INTERP(1, BASE0) = 0x100; INTERP(1, BASE1) = 0x200; INTERP(1, BASE2) = 0x10000000;
    INTERP(1, ACCUM0) = 0x1234; INTERP(1, ACCUM1) = 0xABCD;
    put(INTERP(1, PEEK0)); put(INTERP(1, PEEK1)); put(INTERP(1, PEEKF));
    put(INTERP(1, POP1)); put(INTERP(1, ACCUM0)); put(INTERP(1, ACCUM1));
    INTERP(1, ACCUM0) = 0x50; INTERP(1, ADD0) = 0x123; put(INTERP(1, ACCUM0)); put(INTERP(1, ADD0));
    INTERP(1, CTRL0) = MASK(0, 3); INTERP(1, ACCUM0) = 0x10; put(INTERP(1, CTRL0) >> 23);
    INTERP(1, ACCUM0) = 0x0F; put(INTERP(1, CTRL0) >> 23);
    return 0;
}
"""


def test_interpolator_modes_follow_the_datasheet(workdir):
    _, out = run_c(workdir, "interp", INTERP_PROGRAM)
    it = iter(out)
    take = lambda k: [next(it) for _ in range(k)]  # noqa: E731
    assert take(10) == [3 * (i + 1) for i in range(10)]
    x = 0x1234ABCD
    assert take(8) == [(x >> sh) & 0xF for sh in range(0, 32, 4)]
    assert take(8) == [((x >> sh) & 0xF) - (16 if (x >> sh) & 8 else 0) & 0xFFFFFFFF for sh in range(0, 32, 4)]
    assert take(8) == [((x >> sh) & (0xF << sh)) for sh in range(0, 32, 4)]
    a0, a1 = 123, 456
    for _ in range(6):                                  # PEEK_LANE1 then POP_LANE0
        r0, r1 = 1 + a0, 1000 + a1
        assert take(2) == [r1, r0]
        a0, a1 = r1, r0
    for alpha in range(0, 256, 17):
        assert take(3) == [alpha, 500 + (500 * alpha >> 8), 7 + 100]
    assert [s32(v) for v in take(2)] == [-1000, 1000]
    for alpha in range(0, 256, 17):
        assert s32(next(it)) == -1000 + (2000 * alpha >> 8)
    for v in (0, 40, 400, 401, 403, -400, -404, -1000, 100000, -100000, 2147483647, -2147483648):
        sm = ((v & 0xFFFFFFFF) >> 2) & ((1 << 30) - 1)
        sm = sm - (1 << 30) if sm >> 29 else sm
        assert s32(next(it)) == max(-100, min(100, sm)), v
    sm0, sm1 = (0x1234 >> 4) & 0xFF, (0xABCD >> 8) & 0xFF
    assert take(3) == [0x100 + 0x1234, (0x200 + sm1) | 2 << 28, 0x10000000 + sm0 + sm1]
    assert take(3) == [(0x200 + sm1) | 2 << 28, 0x100 + 0x1234, 0x200 + sm1]   # POP writes both, unforced
    assert take(2) == [0x50 + 0x123, ((0x50 + 0x123) >> 4) & 0xFF]
    assert take(2) == [0b101, 0]                        # OVERF0 and OVERF set, then clear


def test_pll_usb_locks_tbman_says_asic_watchdog_scratch_and_tick(workdir):
    sim, out = run_c(workdir, "startup", """
int main(void) {
    REG(0x4002C000u + 0x8) = 100;                 /* PLL_USB FBDIV_INT: 12 MHz x 100 */
    REG(0x4002C000u + 0xC) = (5u << 16) | (5u << 12);
    put(REG(0x4002C000u) >> 31);                  /* powered down: no lock */
    REG(0x4002C000u + 0x3000 + 0x4) = (1u << 5) | 1u;   /* clear VCOPD and PD */
    uint32_t spins = 0;
    while (!(REG(0x4002C000u) & (1u << 31))) spins++;
    put(spins);
    put(REG(0x4006C000u));                        /* TBMAN PLATFORM */
    for (int i = 0; i < 8; i++) REG(0x4005800Cu + 4 * i) = 0xB007C0D0u + i;
    for (int i = 0; i < 8; i++) put(REG(0x4005800Cu + 4 * i));
    REG(0x4005802Cu) = (1u << 9) | 12;            /* TICK: ENABLE, 12 clk_ref cycles */
    put(REG(0x4005802Cu));
    return 0;
}""")
    assert out[0] == 0 and out[1] == 0 and out[2] == 1
    assert out[3:11] == [0xB007C0D0 + i for i in range(8)]
    assert out[11] == (1 << 10) | (1 << 9) | 12           # RUNNING reads back
    assert sim.pll_usb.locked


UART_ECHO = """
#define UART0 0x40034000u
int main(void) {
    REG(0x4000C000u + 0x3000) = 1u << 22;         /* RESETS: UART0 out of reset */
    REG(UART0 + 0x30) = (1u << 0) | (1u << 8) | (1u << 9);   /* UARTEN, TXE, RXE */
    put(REG(UART0 + 0x3C));                       /* UARTRIS before reading anything */
    while (!(REG(UART0 + 0x18) & (1u << 4))) {    /* until RXFE */
        uint32_t c = REG(UART0) & 0xFF;
        if (c >= 'a' && c <= 'z') c -= 32;
        REG(UART0) = c;
        n++;
    }
    return 0;
}"""


def test_uart_rx_echo(workdir):
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    sim.uart0.feed(b"hello, pico\n")
    sim, out = run_c(workdir, "echo", UART_ECHO, sim)
    assert bytes(sim.uart0.tx) == b"HELLO, PICO\n"
    assert out[0] == 1 << 6                                 # RTRIS: 12 bytes waiting, under the 16-byte trigger
    # With a live sink every store goes through the Python model (no native UARTDR path): the same bytes, in
    # order, and the same cycles as the run above, whose stores after the first were appended natively.
    live = []
    echoed = Rp2040(SimConfig(warn_sink=lambda m: None, uart_sink=live.append))
    echoed.uart0.feed(b"hello, pico\n")
    echoed, _ = run_c(workdir, "echo", UART_ECHO, echoed)
    assert bytes(live) == bytes(echoed.uart0.tx) == b"HELLO, PICO\n"
    assert echoed.state.cycles == sim.state.cycles and sim.uart0._fast.tx_direct and not echoed.uart0._fast.tx_direct
    quiet = Rp2040(SimConfig(warn_sink=lambda m: None))
    quiet, _ = run_c(workdir, "echo", UART_ECHO, quiet)
    assert quiet.uart0.tx == b""


GPIO_PROGRAM = """
int main(void) {
    REG(0x40014000u + 25 * 8 + 4) = 5;            /* IO_BANK0 GPIO25_CTRL: FUNCSEL SIO */
    REG(SIO + 0x24) = 1u << 25;                   /* GPIO_OE_SET */
    for (int i = 0; i < 4; i++) {
        REG(SIO + 0x1C) = 1u << 25;               /* GPIO_OUT_XOR */
        for (volatile int d = 0; d < 50; d++) ;
    }
    return 0;
}"""


def test_gpio_changes_are_logged_with_chip_time(workdir):
    from rp2040_sim.gpio_log import GpioLog
    program, sym = build(workdir, REGS_H + GPIO_PROGRAM, "gpio")
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    log = GpioLog(sim)
    sim, stop = run_program(program, sym, sim)
    assert stop.kind == "halt"
    rows = list(csv.DictReader(io.StringIO(log.text())))
    assert [(r["signal"], r["pin"], r["value"]) for r in rows] == [
        ("funcsel", "25", "5"), ("oe", "25", "1"), ("out", "25", "1"), ("out", "25", "0"), ("out", "25", "1"),
        ("out", "25", "0")]
    times, cycles = [int(r["time_ns"]) for r in rows], [int(r["cycle"]) for r in rows]
    assert all(b > a for a, b in zip(cycles[2:], cycles[3:]))
    for c, t in zip(cycles, times):                      # clk_sys is the 6.5 MHz ROSC here
        assert t == c * 10**12 // 6_500_000 // 1000


def test_cli_uart_input_and_gpio_log(tmp_path, capsys, monkeypatch):
    require_tool("arm-none-eabi-as")
    image = asm.build_image("""
    .thumb_func
reset:
    ldr r0, =0x4000F000           @ RESETS CLR alias: UART0 out of reset
    ldr r1, =(1 << 22)
    str r1, [r0]
    ldr r0, =0x40034000
    ldr r1, =0x301
    str r1, [r0, #0x30]
    ldr r2, =0xD0000000
    movs r3, #1
    str r3, [r2, #0x24]           @ GPIO0 output enable
1:  ldr r1, [r0, #0x18]
    lsrs r1, r1, #5               @ RXFE (bit 4) into carry
    bcs 2f
    ldr r1, [r0]
    str r1, [r0]
    str r3, [r2, #0x1C]           @ toggle GPIO0 per byte
    b 1b
2:  bkpt #0
    .ltorg
""", tmp_path)
    (tmp_path / "in.txt").write_bytes(b"abc")
    log = tmp_path / "gpio.csv"
    assert main(["run", str(image["uf2"]), "--uart-input", str(tmp_path / "in.txt"), "--gpio-log", str(log)]) == 0
    assert capsys.readouterr().out.startswith("abc")
    lines = log.read_text().splitlines()
    assert lines[0] == "time_ns,cycle,signal,pin,value" and [ln.split(",")[2:] for ln in lines[1:]] == [
        ["oe", "0", "1"], ["out", "0", "1"], ["out", "0", "0"], ["out", "0", "1"]]
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"xy")))
    assert main(["run", str(image["uf2"]), "--uart-input", "-"]) == 0
    assert capsys.readouterr().out.startswith("xy")
    assert main(["run", str(image["uf2"]), "--uart-input", str(tmp_path / "nope")]) == 1
    assert "nope: no such file" in capsys.readouterr().err
    assert main(["run", str(image["uf2"]), "--gpio-log", str(tmp_path / "no" / "dir.csv")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_usb_warns_once_and_strict_stops(tmp_path):
    require_tool("arm-none-eabi-as")
    # the pico-sdk's runtime_init_usb_power_down: read SIE_CTRL (reset 0), set TRANSCEIVER_PD through the SET alias
    power_down = ("ldr r0, =0x5011004C\n ldr r1, [r0]\n ldr r2, =0x5011204C\n ldr r3, =(1 << 26)\n"
                  " str r3, [r2]\n ldr r4, [r0]\n")
    body = power_down + ("ldr r0, =0x50110050\n str r0, [r0]\n ldr r1, [r0, #4]\n ldr r0, =0x50100000\n"
                         " ldr r1, [r0]\n bkpt #0\n .ltorg\n")
    warnings = []
    sim, stop = asm.run_snippet(power_down + "bkpt #0\n .ltorg\n", tmp_path,
                                sim=Rp2040(SimConfig(strict=True, warn_sink=warnings.append)))
    assert stop.kind == "halt" and warnings == [] and sim.regs()["r4"] == 1 << 26
    sim, stop = asm.run_snippet(body, tmp_path, sim=Rp2040(SimConfig(warn_sink=warnings.append)))
    assert stop.kind == "halt" and len([w for w in warnings if "USB" in w]) == 1
    _, stop = asm.run_snippet(body, tmp_path, sim=Rp2040(SimConfig(strict=True, warn_sink=lambda m: None)))
    assert stop.kind == "unimplemented register" and "USBCTRL_REGS+0x0050" in stop.detail


def test_impossible_clock_divider_is_a_fault_naming_the_register(tmp_path):
    require_tool("arm-none-eabi-as")
    _, stop = asm.run_snippet("ldr r0, =0x40008040\n ldr r1, =0xFFFFFF00\n str r1, [r0]\n"
                              "ldr r0, =0x40054028\n ldr r1, [r0]\n bkpt #0\n .ltorg\n", tmp_path,
                              sim=Rp2040(SimConfig(warn_sink=lambda m: None)))
    assert stop.kind == "impossible configuration" and "CLOCKS.CLK_SYS_DIV = 0xffffff00" in stop.detail
    assert stop.address == 0x40008040


def test_powering_pll_sys_down_under_a_huge_divider_is_a_fault():
    from tests.test_sim_peripherals import bring_up_125mhz
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    bring_up_125mhz(sim)
    sim.clocks.bus_write(0x40, 4, 0xFFFFFF00)             # 125 MHz / 16777215: 7 Hz, still a clock
    assert sim.clock.sys_hz == 7
    sim.pll_sys.bus_write(0x04, 4, 0x2D)                  # PLL off: clk_sys would fall back to 12 MHz / 16777215
    assert "PLL_SYS.PWR = 0x0000002d" in sim._pending.detail and sim.clock.sys_hz == 7
    sim.clock.now_ps()


def _registers():
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    return [(i, off) for i, p in enumerate(sim.peripherals) for off in sorted(p.REGISTERS)]


REGISTERS = _registers()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(REGISTERS), st.integers(0, 0xFFFFFFFF), st.sampled_from([1, 2, 4]),
                          st.integers(0, 3), st.integers(0, 10**7)), min_size=1, max_size=60))
def test_no_register_write_raises_a_python_exception(writes):
    """Random values written to every modelled register, through every alias, with time passing in between:
    the emulator may stop with a fault, never with a Python exception."""
    sim = Rp2040(SimConfig(warn_sink=lambda m: None))
    for (index, offset), value, size, alias, cycles in writes:
        p = sim.peripherals[index]
        alias_off = (alias << ALIAS_SHIFT) if p.ATOMIC_ALIASES else 0
        sim.add_cycles(cycles)
        p.bus_write(alias_off + offset, size, value)
        for q, off in ((sim.timer, 0x28), (sim.timer, 0x0C), (p, offset)):
            q.bus_read(off, 4)
        sim.clock.now_ps()
