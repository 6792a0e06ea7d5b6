"""Real pico-sdk firmware in rp2040_sim: build pico-examples images, run them, check their UART text and GPIO timing.

    .venv/bin/python benchmarks/sdk_examples.py --sdk PICO_SDK_DIR --examples PICO_EXAMPLES_DIR [--build-dir DIR]
    .venv/bin/python benchmarks/sdk_examples.py --elf-dir DIR       # prebuilt <name>.elf files

Builds (cmake + Debian's arm-none-eabi-gcc, PICO_BOARD=pico, PICO_NO_PICOTOOL=1: the UF2 is made here with
firmware/uf2.py from the ELF) hello_uart, hello_serial, hello_divider, hello_timer, blink, hello_interp and
hello_multicore outside the repository, runs each from its UF2 with a cycle budget, and prints a table: image, instructions, cycles, how
the run ended, UART text ok, GPIO ok. The expected text is derived here from each example's source (the arithmetic
of hello_divider and the interpolator rules of datasheet 2.3.1.6 for hello_interp, in Python), never taken from the
emulator; timing-dependent text (hello_timer's timestamps) is checked against the source's delays. blink's LED
(GPIO 25) must toggle every 250 ms (sleep_ms(250)). A never-halting image (hello_serial, blink) must end at its
budget after the expected output. Nothing of the SDK is kept in the repository.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from firmware.uf2 import write_uf2  # noqa: E402
from rp2040_sim import boot, runner  # noqa: E402
from rp2040_sim.core import SimConfig  # noqa: E402
from rp2040_sim.elfinfo import ElfInfo  # noqa: E402
from rp2040_sim.gpio_log import GpioLog  # noqa: E402

CHIP_HZ = 125_000_000
LED_PIN = 25                       # PICO_DEFAULT_LED_PIN of PICO_BOARD=pico
U32 = 0xFFFFFFFF


# -- expected output, from each example's source --------------------------------------------------------------
def c_div(a: int, b: int) -> tuple[int, int]:
    """C's truncating division: quotient and remainder."""
    q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    return q, a - q * b


def s32(x: int) -> int:
    x &= U32
    return x - (1 << 32) if x & 0x80000000 else x


def expected_hello_divider() -> str:
    d, v = 123456, -321
    q, r = c_div(d, v)
    uq, ur = c_div(d, 321)
    back = s32((q & U32) * v + (r & U32))          # to_quotient_u32(result) * divisor + to_remainder_u32(result)
    lines = ["Hello, divider!",
             f"{d}/{v} = {q} remainder {r}", f"Working backwards! Result {q * v + r} should equal {d}!", "",
             f"{d}/321 = {uq} remainder {ur}", f"Working backwards! Result {back} should equal {d}!", "",
             f"Async result {d}/{v} = {q} remainder {r}",
             f"{d} / {v} = (by operator {q}) (inlined {q})",
             f"inner 123 / 7 = {c_div(123, 7)[0]}",
             f"outer divide {d} / {v} = {q}"]
    return "".join(line + "\r\n" for line in lines)


class Lane:
    """One interpolator lane's CTRL fields (datasheet 2.3.1.6), as interp_config_set_* set them."""

    def __init__(self):
        self.shift, self.mask_lsb, self.mask_msb = 0, 0, 31
        self.signed = self.cross_input = self.cross_result = self.add_raw = False


def shift_mask(lane: Lane, value: int) -> int:
    v = (value & U32) >> lane.shift
    v &= ((1 << (lane.mask_msb + 1)) - 1) & ~((1 << lane.mask_lsb) - 1)
    if lane.signed and v >> lane.mask_msb & 1:
        v |= U32 & ~((1 << (lane.mask_msb + 1)) - 1)
    return v & U32


def expected_hello_interp() -> str:
    out = []
    put = out.append
    put("Interpolator example")
    # times_table: default config, accum0 = 0, base0 = 9, ten pops
    put("9 times table:")
    acc = 0
    for _ in range(10):
        acc = (acc + 9) & U32
        put(str(acc))
    # moving_mask: read ACCUM0_ADD (shift+mask, no base) with a 4-bit mask moving up, unsigned then signed
    put("Masking:")
    acc = 0x1234ABCD
    put(f"ACCUM0 = {acc:08x}")
    lane = Lane()
    for signed in (False, True):
        if signed:
            put("Masking with sign extension:")
        lane.signed = signed
        for i in range(8):
            lane.mask_lsb, lane.mask_msb = 4 * i, 4 * i + 3
            put(f"Nibble {i}: {shift_mask(lane, acc):08x}")
    # cross_lanes: both lanes CROSS_RESULT; accum 123/456, base 1/0; PEEK0 then POP1
    put("Lane result crossover:")
    a0, a1, b0, b1 = 123, 456, 1, 0
    for _ in range(10):
        r0, r1 = a0 + b0, a1 + b1
        put(f"PEEK0, POP1: {r0}, {r1}")
        a0, a1 = r1, r0
    # blends: lane 1 = base0 + alpha * (base1 - base0) / 256, alpha = accum1's low 8 bits (floor division)
    def blend(base0, base1, alpha, signed):
        if signed:
            return s32(s32(base0) + (alpha * (s32(base1) - s32(base0)) >> 8))
        return (base0 + (alpha * (base1 - base0) >> 8)) & U32
    put("Simple blend 1:")
    for i in range(7):
        put(str(s32(blend(500, 1000, 255 * i // 6, False))))
    put("Simple blend 2:")
    put("signed:")
    for i in range(7):
        put(str(blend(-1000 & U32, 1000, 255 * i // 6, True)))
    put("unsigned:")
    for i in range(7):
        put(f"0x{blend(-1000 & U32, 1000, 255 * i // 6, False):08x}")
    put("Simple blend 3:")
    # BASE_1AND0 splits into 16-bit halves, sign-extended if lane 1 (the blend lane) is SIGNED
    for word, signed in ((0x30005000, False), (0xE000F000, False), (0xE000F000, True)):
        lo, hi = word & 0xFFFF, word >> 16
        if signed:
            lo, hi = (lo - 0x10000 if lo & 0x8000 else lo) & U32, (hi - 0x10000 if hi & 0x8000 else hi) & U32
        put(f"0x{blend(lo, hi, 128, signed) & U32:08x}")
    # clamp: INTERP1 lane 0, shift 2, mask 0..29, signed, clamped to [0, 255]
    put("Clamp:")
    for i in range(-1024, 1025, 256):
        v = s32(shift_mask(Lane_(shift=2, mask_msb=29, signed=True), i))
        put(f"{i}\t{min(max(v, 0), 255)}")
    # linear_interpolation: lane 0 shift 11 mask 1..20 blend (byte offset of the sample pair); lane 1 shift 4,
    # signed, cross input (alpha = the fraction's top 8 bits); FULL = samples + lane 0 shift+mask
    put("Linear interpolation:")
    samples = [0, 10, -20, -1000, 500]
    lane0, lane1 = Lane_(shift=11, mask_lsb=1, mask_msb=20), Lane_(shift=4, signed=True)
    acc0 = 0
    for _ in range(16):
        pair = shift_mask(lane0, acc0) // 2
        s0, s1 = samples[pair], samples[pair + 1]
        alpha = shift_mask(lane1, acc0) & 0xFF
        peek1 = blend(s0 & U32, s1 & U32, alpha, True)
        put(f"{peek1}\t({100 * alpha // 0xFF}% between {s0} and {s1})")
        acc0 += (1 << 12) // 4
    # texture_mapping: 4x4 texture, u step 1/2, v step 1/3 (16 fractional bits), lanes add raw, FULL = address
    put("Affine Texture mapping (with texture wrap):")
    texture = [0x00, 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x20, 0x21, 0x22, 0x23, 0x30, 0x31, 0x32, 0x33]
    u = v = 0
    lu, lv = Lane_(shift=16, mask_msb=1), Lane_(shift=14, mask_lsb=2, mask_msb=3)
    for _ in range(12):
        put(f"0x{texture[shift_mask(lu, u) + shift_mask(lv, v)]:02x}")
        u, v = (u + 65536 // 2) & U32, (v + 65536 // 3) & U32
    return "".join(line + "\r\n" for line in out)


def Lane_(shift=0, mask_lsb=0, mask_msb=31, signed=False) -> Lane:  # noqa: N802 (a Lane with fields set)
    lane = Lane()
    lane.shift, lane.mask_lsb, lane.mask_msb, lane.signed = shift, mask_lsb, mask_msb, signed
    return lane


def check_hello_timer(text: str) -> str | None:
    """Structure from the source; the repeating timer's times from its delays: +500 ms after each callback ends
    (a positive delay), then exactly every 500 ms (a negative delay), 2 s of silence between the groups."""
    m = re.fullmatch(r"Hello Timer!\r\nTimer (\d+) fired!\r\n((?:Repeat at \d+\r\n)+)cancelled\.\.\. 1\r\n"
                     r"((?:Repeat at \d+\r\n)+)cancelled\.\.\. 1\r\nDone\r\n", text)
    if not m:
        return "text does not follow the source"
    first = [int(t) for t in re.findall(r"\d+", m.group(2))]
    second = [int(t) for t in re.findall(r"\d+", m.group(3))]
    if not 2_500_000 <= first[0] < 2_502_000:       # 2 s alarm, then the 500 ms repeating timer
        return f"first repeat at {first[0]} us, not 2.5 s after boot"
    if len(first) != 5 or any(not 500_000 <= b - a < 500_200 for a, b in zip(first, first[1:])):
        return f"positive-delay repeats {first}: not 5 of them, 500 ms after each callback"
    if len(second) != 6 or any(abs(b - a - 500_000) > 2 for a, b in zip(second, second[1:])):
        return f"negative-delay repeats {second}: not 6 of them 500 ms apart (± 2 us of interrupt latency)"
    if not 7_500_000 <= second[0] < 7_502_000:
        return f"second group starts at {second[0]} us, not 3 s + 2 s after the first"
    return None


def check_blink(gpio_csv: str, run_ms: float) -> str | None:
    times = [int(line.split(",")[0]) for line in gpio_csv.splitlines()[1:]
             if line.split(",")[2:4] == ["out", str(LED_PIN)]]
    gaps = [(b - a) / 1e6 for a, b in zip(times, times[1:])]
    # sleep_ms sleeps to an absolute µs target taken after the toggle: each period is 250 ms plus the few µs of
    # code between wake-up and the next target, give or take the 1 µs timer resolution
    if len(times) < int(run_ms // 250) or any(abs(g - 250.0) > 0.02 for g in gaps):
        return f"LED toggles every {gaps} ms"
    return None


EXAMPLES = {
    # name: (cmake target's ELF path under the build dir, cycle budget, expected UART text or checker, halts)
    "hello_uart": ("uart/hello_uart/hello_uart.elf", 50_000_000, "AB Hello, UART!\n", True),
    "hello_serial": ("hello_world/serial/hello_serial.elf", 437_500_000,         # 3.5 s: prints at 0, 1, 2, 3 s
                     "Hello, world!\r\n" * 4, False),
    "hello_divider": ("divider/hello_divider.elf", 50_000_000, expected_hello_divider(), True),
    "hello_timer": ("timer/hello_timer/hello_timer.elf", 2_000_000_000, check_hello_timer, True),
    "blink": ("blink/blink.elf", 312_500_000, "", False),                       # 2.5 s: 10 toggles
    "hello_interp": ("interp/hello_interp/hello_interp.elf", 50_000_000, expected_hello_interp(), True),
    # core 1 launched by multicore_launch_core1 through the ROM's wait_for_vector; the run ends at core 0's bkpt
    # (main returned), before core 1 has printed its own line (it would follow on the chip)
    "hello_multicore": ("multicore/hello_multicore/hello_multicore.elf", 50_000_000,
                        "Hello, multicore!\r\nIt's all gone well on core 0!", True),
}


def build(sdk: Path, examples: Path, build_dir: Path) -> None:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    for step, cmd in (("configure", ["cmake", *generator, f"-DPICO_SDK_PATH={sdk.resolve()}", "-DPICO_BOARD=pico", "-DPICO_NO_PICOTOOL=1",
                 "-DCMAKE_BUILD_TYPE=Release", "-S", str(examples.resolve()), "-B", str(build_dir)]),
                      ("build", ["cmake", "--build", str(build_dir), "--target", *EXAMPLES])):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"error: cmake {step} of {examples} with the pico-sdk at {sdk} failed (exit {done.returncode}):\n{done.stdout[-4000:]}"
                     f"{done.stderr[-4000:]}")


def run_example(name: str, elf: Path, work: Path) -> dict:
    _, budget, expected, halts = EXAMPLES[name]
    uf2 = work / f"{name}.uf2"
    uf2.write_bytes(write_uf2(ElfInfo(elf).flash_image()))
    logs = []
    result, sim = runner.run_loaded(boot.load_image(uf2, elf),
                                    SimConfig(max_cycles=budget, timeout=0, warn_sink=logs.append),
                                    setup=lambda s: setattr(s, "gpio_log", GpioLog(s)))
    ended = "bkpt #0" if result.stop.ok else result.stop.kind
    if callable(expected):
        uart_problem = expected(result.uart)
    else:
        uart_problem = None if result.uart == expected else f"got {result.uart!r}"
    gpio_problem = check_blink(sim.gpio_log.text(), budget / CHIP_HZ * 1e3) if name == "blink" else None
    end_ok = result.stop.ok if halts else result.stop.kind == "budget exceeded"
    if name == "hello_multicore" and sim.core1_launch is None:
        uart_problem = "core 1 was never launched"
    return {"image": name, "instructions": result.instructions, "cycles": result.cycles, "ended": ended,
            "end_ok": end_ok, "uart": uart_problem, "gpio": gpio_problem, "warnings": logs,
            "text": result.uart}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sdk", type=Path, help="a pico-sdk checkout (with --examples: build the images)")
    p.add_argument("--examples", type=Path, help="a pico-examples checkout")
    p.add_argument("--build-dir", type=Path, help="where to build (default: a temporary directory)")
    p.add_argument("--elf-dir", type=Path, help="prebuilt ELFs named <example>.elf instead of building")
    p.add_argument("-v", "--verbose", action="store_true", help="print each image's UART text and warnings")
    args = p.parse_args(argv)
    if not args.elf_dir and not (args.sdk and args.examples):
        p.error("give --sdk and --examples, or --elf-dir")
    with tempfile.TemporaryDirectory(prefix="sdk_examples_") as tmp:
        tmp = Path(tmp)
        if args.elf_dir:
            elves = {n: args.elf_dir / f"{n}.elf" for n in EXAMPLES}
        else:
            build_dir = args.build_dir or tmp / "build"
            build(args.sdk, args.examples, build_dir)
            elves = {n: build_dir / EXAMPLES[n][0] for n in EXAMPLES}
        rows = [run_example(n, elves[n], tmp) for n in EXAMPLES]
    print(f"{'image':<14} {'instructions':>13} {'cycles':>15}  {'ended':<16} {'UART text':<9} GPIO")
    for r in rows:
        gpio = "-" if r["image"] != "blink" else ("ok" if r["gpio"] is None else "WRONG")
        ended = r["ended"] + ("" if r["end_ok"] else " (!)")
        print(f"{r['image']:<14} {r['instructions']:>13,} {r['cycles']:>15,}  {ended:<16} "
              f"{'ok' if r['uart'] is None else 'WRONG':<9} {gpio}")
    for r in rows:
        for what in ("uart", "gpio"):
            if r[what]:
                print(f"{r['image']}: {what}: {r[what]}")
        if args.verbose:
            print(f"--- {r['image']}\n{r['text']}" + "".join(f"warning: {w}\n" for w in r["warnings"]))
    return 0 if all(r["uart"] is None and r["gpio"] is None and r["end_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
