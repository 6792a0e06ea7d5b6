"""Command line.

    python -m rp2040_sim run FIRMWARE.uf2|.elf|.bin [--elf F] [--max-cycles N] [--timeout S] [--strict]
                             [--xip-miss-cycles N] [--bootrom ROM.bin] [--uart-input FILE|-] [--gpio-log FILE]
    python -m rp2040_sim eval BUILD_DIR [--images N] [--jobs J] [--out FILE] [--timeout S]
    python -m rp2040_sim build-native            # compile the C cycle counter and the ROM now (make setup does this)

Exit status: 0 when the firmware reached its final `bkpt #0` (eval: emulator.json written), 1 on a fault, a
refused boot or bad input (with a message saying which file and why), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rp2040_sim import native, rom
from rp2040_sim.boot import BootError
from rp2040_sim.core import DEFAULT_MAX_CYCLES, DEFAULT_TIMEOUT_S, SimConfig, check_max_cycles, check_timeout

# --uart-input is read whole before the run: 16 MiB is far more than any console session.
UART_INPUT_LIMIT = 16 * 1024 * 1024


def _positive(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _max_cycles(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of cycles") from None
    try:
        return check_max_cycles(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(f"--max-cycles {value!r} ")) from None


def _timeout(text: str) -> float | None:
    try:
        return check_timeout(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix(f"--timeout {text!r} ")) from None


TIMEOUT_HELP = (f"wall-clock limit per run in seconds; the run stops as 'budget exceeded' when it is reached "
                f"(default {DEFAULT_TIMEOUT_S:g}; 0 = none)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rp2040_sim", description="Cycle-counting RP2040 emulator")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="boot a firmware image, print its UART output and a cycles/RAM summary")
    r.add_argument("image", help="firmware .uf2, .elf or .bin")
    r.add_argument("--elf", help="ELF for symbols when running a .uf2/.bin (default: <image>.elf beside it)")
    r.add_argument("--max-cycles", type=_max_cycles, default=DEFAULT_MAX_CYCLES,
                   help=f"cycle budget before the run is stopped as a fault (default {DEFAULT_MAX_CYCLES:,}, "
                        f"at most 2^48)")
    r.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT_S, help=TIMEOUT_HELP)
    r.add_argument("--strict", action="store_true", help="stop at the first unimplemented register access")
    r.add_argument("--xip-miss-cycles", type=_positive, default=None,
                   help="clk_sys cycles per XIP cache line fill (default: from the SSI setup boot2 writes)")
    r.add_argument("--json", help="also write the figures to this JSON file")
    r.add_argument("--bootrom", help="an official 16 kB RP2040 bootrom image to use instead of rp2040_sim's own ROM")
    r.add_argument("--uart-input", metavar="FILE|-",
                   help="bytes UART0 receives (a file, or - for standard input), waiting in its RX FIFO from the start")
    r.add_argument("--gpio-log", metavar="FILE",
                   help="write every GPIO output / output-enable / function-select change with its chip time (CSV)")
    r.add_argument("--quiet", action="store_true", help="do not echo UART output live")
    e = sub.add_parser("eval", help="run pz_infer over test images and compare with the host model")
    e.add_argument("build_dir")
    e.add_argument("--images", type=_positive, default=None, help="number of test images (default: all)")
    e.add_argument("--jobs", type=_positive, default=None, help="worker processes (default: CPU cores)")
    e.add_argument("--out", help="output file (default BUILD_DIR/emulator.json)")
    e.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT_S,
                   help=TIMEOUT_HELP.replace("per run", "per image (and for the boot)"))
    e.add_argument("--no-progress", action="store_true")
    sub.add_parser("build-native", help="compile the native cycle counter and the ROM into their cache")
    return p


class InputError(Exception):
    """A bad --uart-input / --gpio-log path; the message names it."""


def read_uart_input(name: str) -> bytes:
    """--uart-input: the whole file (or standard input), at most UART_INPUT_LIMIT bytes."""
    try:
        if name == "-":
            data = sys.stdin.buffer.read(UART_INPUT_LIMIT + 1)
        else:
            with open(name, "rb") as f:
                data = f.read(UART_INPUT_LIMIT + 1)
    except FileNotFoundError:
        raise InputError(f"{name}: no such file (--uart-input takes a file of bytes, or - for standard input)") \
            from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory; --uart-input takes a file of bytes") from None
    except OSError as e:
        raise InputError(f"{name}: cannot read it ({e.strerror})") from None
    if len(data) > UART_INPUT_LIMIT:
        raise InputError(f"{name}: more than {UART_INPUT_LIMIT:,} bytes; --uart-input holds at most that much")
    return data


def check_output_path(name: str, option: str):
    """Refuse an output path that cannot be written before the run, not after it."""
    path = Path(name)
    if path.is_dir():
        raise InputError(f"{name}: is a directory; {option} takes a file name")
    if not path.parent.is_dir():
        raise InputError(f"{name}: directory {path.parent} does not exist ({option})")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{name}: cannot be written (no write permission); choose another {option}")


def write_text_atomic(path: Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cmd_run(args) -> int:
    from rp2040_sim import runner
    sink = None if args.quiet else (lambda b: (sys.stdout.write(chr(b)), sys.stdout.flush()))
    config = SimConfig(max_cycles=args.max_cycles, timeout=args.timeout, strict=args.strict,
                       xip_miss_cycles=args.xip_miss_cycles, uart_sink=sink)
    bootrom = rom.check_official(args.bootrom) if args.bootrom else None
    uart_input = read_uart_input(args.uart_input) if args.uart_input else b""
    for option, name in (("--gpio-log", args.gpio_log), ("--json", args.json)):
        if name:
            check_output_path(name, option)
    logs = []

    def setup(sim):
        sim.uart0.feed(uart_input)
        if args.gpio_log:
            from rp2040_sim.gpio_log import GpioLog
            logs.append(GpioLog(sim))

    result, _sim = runner.run_image(args.image, config, args.elf, bootrom=bootrom, setup=setup)
    if logs:
        write_text_atomic(Path(args.gpio_log), logs[0].text())
    if result.uart and not result.uart.endswith("\n") and sink:
        print()
    print("-" * 60)
    print(runner.summary(result))
    if args.json:
        from rp2040_sim.eval import write_json_atomic
        write_json_atomic(Path(args.json), {
            "stop": result.stop.kind, "pc": result.stop.pc, "cycles": result.cycles,
            "instructions": result.instructions, "xip_hits": result.xip_hits, "xip_misses": result.xip_misses,
            "ms_at_125mhz": result.ms_at_125mhz, "static_ram_bytes": result.static_ram_bytes,
            "peak_stack_bytes": result.peak_stack_bytes, "peak_ram_bytes": result.peak_ram_bytes,
            "flash_bytes": result.flash_bytes, "functions": dict(result.functions), "uart": result.uart})
    if not result.stop.ok:
        print(result.fault_report, file=sys.stderr)
        return 1
    return 0


def cmd_eval(args) -> int:
    from rp2040_sim.eval import OUTPUT_FILE, evaluate
    if args.out or Path(args.build_dir).is_dir():   # a missing build dir: evaluate names it
        check_output_path(str(args.out or Path(args.build_dir) / OUTPUT_FILE), "--out")
    report = evaluate(args.build_dir, args.images, args.jobs, progress=not args.no_progress, out=args.out,
                      timeout=args.timeout)
    keys = ("images", "accuracy", "host_accuracy", "agreement_with_host", "max_abs_output_diff",
            "cycles_per_inference", "ms_per_inference_125mhz", "peak_ram_bytes", "flash_bytes", "wall_seconds")
    print(json.dumps({k: report[k] for k in keys}, indent=2))
    return 0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    from rp2040_sim.elfinfo import ElfError
    from rp2040_sim.eval import EvalError
    try:
        if args.command == "build-native":
            print(native.build(force=True))
            print(rom.build(force=True))
            return 0
        if args.command == "run":
            return cmd_run(args)
        return cmd_eval(args)
    except (BootError, ElfError, EvalError, native.NativeBuildError, rom.RomError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
