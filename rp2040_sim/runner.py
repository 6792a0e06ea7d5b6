"""Run a firmware image from reset to its final bkpt and gather the figures: cycles, instructions, XIP cache,
time at 125 MHz, cycles per function, RAM (static + peak stack), UART output."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from rp2040_sim import boot
from rp2040_sim.core import Rp2040, SimConfig, Stop
from rp2040_sim.faults import explain_state, format_fault

CHIP_HZ = 125_000_000            # the clk_sys firmware sets up (PLL_SYS 125 MHz)
STACK_PAINT = 0xDEADBEEF         # crt0 paints [__stack_limit, sp) with this word


@dataclass
class RunResult:
    stop: Stop
    cycles: int
    instructions: int
    xip_hits: int
    xip_misses: int
    xip_line_fill_cycles: int
    uart: str
    static_ram_bytes: int | None
    peak_stack_bytes: int | None
    flash_bytes: int
    functions: list = field(default_factory=list)    # (name, cycles) descending
    fault_report: str = ""
    core1_cycles: int | None = None                  # core 1's cycle count when it was launched, else None
    core1_instructions: int | None = None

    @property
    def ms_at_125mhz(self) -> float:
        """Time of the run: the slower core's cycle count at 125 MHz."""
        return max(self.cycles, self.core1_cycles or 0) / CHIP_HZ * 1e3

    @property
    def peak_ram_bytes(self) -> int | None:
        if self.static_ram_bytes is None or self.peak_stack_bytes is None:
            return None
        return self.static_ram_bytes + self.peak_stack_bytes


def peak_stack(sim, elf) -> int | None:
    """Bytes of stack ever used: from __stack_limit up, the first word that is not the paint marks the
    deepest point the stack reached."""
    region = elf.stack_region() if elf else None
    if region is None:
        return None
    lo, hi = region
    data = sim.read(lo, hi - lo)
    paint = STACK_PAINT.to_bytes(4, "little")
    for off in range(0, len(data), 4):
        if data[off:off + 4] != paint:
            return hi - (lo + off)
    return 0


def function_cycles(sim, elf) -> list[tuple[str, int]]:
    totals = defaultdict(int)
    for addr, _size, _execs, cycles in sim.profile():
        name = (elf.function_at(addr) if elf else None) or f"0x{addr:08x}"
        if 0x20041F00 <= addr < 0x20042000:
            name = "boot2"
        elif addr < 0x4000 and not (elf and elf.function_at(addr)):
            name = "bootrom"                 # ROM routines the program called (memcpy, float, flash functions)
        totals[name] += cycles
    return sorted(totals.items(), key=lambda kv: -kv[1])


def run_image(path, config: SimConfig | None = None, elf_path=None, bootrom: bytes | None = None,
              setup=None) -> tuple[RunResult, Rp2040]:
    return run_loaded(boot.load_image(path, elf_path), config, bootrom, setup)


def run_loaded(image: boot.FlashImage, config: SimConfig | None = None, bootrom: bytes | None = None,
               setup=None) -> tuple[RunResult, Rp2040]:
    """Boot an image already read (and checked) by boot.load_image. `bootrom`: a checked 16 kB image to use
    instead of our ROM; `setup(sim)`: attach inputs/logs before the run."""
    sim = Rp2040(config)
    if bootrom is not None:
        sim.load_rom(bootrom)
    if setup is not None:
        setup(sim)
    start = boot.prepare(sim, image)
    stop = sim.run(start)
    return collect(sim, image, stop), sim


def collect(sim, image, stop: Stop) -> RunResult:
    stop = explain_state(sim, stop)
    elf = image.elf
    st = sim.state
    region = elf.stack_region() if elf else None
    return RunResult(
        stop=stop, cycles=st.cycles, instructions=st.instructions, xip_hits=st.xip_hits,
        xip_misses=st.xip_misses, xip_line_fill_cycles=st.xip_miss_penalty, uart=(sim.uart0.tx + sim.uart1.tx).decode("latin-1"),
        static_ram_bytes=elf.static_ram_bytes() if elf else None, peak_stack_bytes=peak_stack(sim, elf),
        flash_bytes=len(image.data), functions=function_cycles(sim, elf),
        fault_report="" if stop.ok else format_fault(sim, elf, stop, region[1] if region else None),
        core1_cycles=sim.core1.state.cycles if sim.core1 else None,
        core1_instructions=sim.core1.state.instructions if sim.core1 else None)


def summary(r: RunResult, top: int = 12) -> str:
    lines = [f"stop         {'bkpt #0 (halt)' if r.stop.ok else r.stop.kind} at pc 0x{r.stop.pc:08x}",
             f"cycles       {r.cycles:,}" + ("" if r.core1_cycles is None else
                                             f" on core 0, {r.core1_cycles:,} on core 1"),
             f"instructions {r.instructions:,}",
             f"time         {r.ms_at_125mhz:.3f} ms at 125 MHz",
             f"XIP cache    {r.xip_hits:,} hits, {r.xip_misses:,} misses "
             f"({r.xip_line_fill_cycles} cycles per line fill)",
             f"flash        {r.flash_bytes:,} bytes"]
    if r.static_ram_bytes is not None:
        peak = f"{r.peak_stack_bytes:,}" if r.peak_stack_bytes is not None else "?"
        total = f"{r.peak_ram_bytes:,}" if r.peak_ram_bytes is not None else "?"
        lines.append(f"RAM          static {r.static_ram_bytes:,} + peak stack {peak} = {total} bytes "
                     f"of 270,336")
    else:
        lines.append("RAM          (no ELF beside the image: static and stack use unknown)")
    if r.functions:
        lines.append("cycles per function:")
        for name, c in r.functions[:top]:
            lines.append(f"  {c:>14,}  {100 * c / max(r.cycles, 1):5.1f}%  {name}")
    return "\n".join(lines)
