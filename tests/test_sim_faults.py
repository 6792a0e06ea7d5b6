"""Every fault kind stops the run with its kind, the address, the function (and source line) of the PC, registers
and a backtrace, and a non-zero exit status from the CLI."""

import pytest

from rp2040_sim import __main__ as cli
from rp2040_sim import asm, runner
from rp2040_sim.core import SimConfig
from tests.conftest import require_tool

# reset calls `main`, which calls the function under test, so the backtrace has a caller to find.
TEMPLATE = r"""
    .thumb_func
    .global reset
reset:
    bl main
    bkpt #0
    .thumb_func
    .type main, %function
main:
    push {{r4, lr}}
    bl {func}
    pop {{r4, pc}}
    .size main, . - main
    .thumb_func
    .type {func}, %function
{func}:
{body}
    .size {func}, . - {func}
    .ltorg
"""

FAULTS = {
    # kind: (function, body, expected address or None)
    "unmapped read": ("reads_nowhere", "    ldr r0, =0x30000000\n    ldr r1, [r0]\n    bx lr", 0x30000000),
    "unmapped write": ("writes_nowhere", "    ldr r0, =0x60000000\n    str r1, [r0]\n    bx lr", 0x60000000),
    "unaligned access": ("loads_unaligned", "    ldr r0, =0x20000002\n    ldr r1, [r0, #4]\n    bx lr",
                         0x20000006),
    "invalid instruction": ("uses_thumb2", "    .inst.w 0xfb90f0f1    @ sdiv r0, r0, r1 (ARMv7-M)\n    bx lr",
                            None),
    "flash write": ("writes_flash", "    ldr r0, =0x10001000\n    str r1, [r0]\n    bx lr", 0x10001000),
    "stack overflow": ("recurses", "    push {r4, r5, r6, r7, lr}\n    bl recurses\n    pop {r4, r5, r6, r7, pc}",
                       None),
    "budget exceeded": ("spins", "1:  adds r0, #1\n    b 1b", None),
    "stuck": ("hangs", "    cpsid i\n1:  b 1b", None),
    "breakpoint": ("traps", "    bkpt #0xfe\n    bx lr", None),
    "unmapped fetch": ("jumps_nowhere", "    ldr r0, =0x30000001\n    bx r0", None),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    require_tool(*asm.TOOLS)
    root = tmp_path_factory.mktemp("faults")
    return {kind: asm.build_image(TEMPLATE.format(func=func, body=body), root / kind.replace(" ", "_"))
            for kind, (func, body, _) in FAULTS.items()}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_fault_kind_function_and_report(images, kind):
    func, _, address = FAULTS[kind]
    result, _ = runner.run_image(images[kind]["uf2"], SimConfig(max_cycles=200_000))
    assert result.stop.kind == kind, result.fault_report
    report = result.fault_report
    assert f"FAULT: {kind}" in report
    if kind != "unmapped fetch":                      # the PC is the bad target itself
        assert f"in {func}+0x" in report
        assert "app.S:" in report                     # DWARF line of the faulting instruction
    if address is not None:
        assert result.stop.address == address and f"address: 0x{address:08x}" in report
    assert "sp=0x" in report.replace(" ", "") and "backtrace:" in report


def test_backtrace_names_the_caller(images):
    result, _ = runner.run_image(images["unmapped read"]["uf2"])
    lines = result.fault_report.splitlines()
    frames = lines[lines.index("  backtrace:") + 1:]
    assert "reads_nowhere" in frames[0] and any("main" in f for f in frames[1:])


def test_stack_overflow_is_caught_at_the_limit(images):
    result, sim = runner.run_image(images["stack overflow"]["uf2"])
    limit = sim.state.stack_limit
    assert result.stop.address < limit <= result.stop.address + 20      # caught right after the push crossing it


def test_thumb2_detail_and_unaligned_detail(images):
    r, _ = runner.run_image(images["invalid instruction"]["uf2"])
    assert "Thumb-2" in r.fault_report
    r, _ = runner.run_image(images["unaligned access"]["uf2"])
    assert "unaligned" in r.fault_report


@pytest.mark.parametrize("kind", ["flash write", "budget exceeded"])
def test_cli_exit_code_on_fault(images, kind, capsys):
    assert cli.main(["run", str(images[kind]["uf2"]), "--max-cycles", "100000", "--quiet"]) == 1
    assert f"FAULT: {kind}" in capsys.readouterr().err


def test_budget_stops_an_endless_loop_quickly(images):
    result, _ = runner.run_image(images["budget exceeded"]["uf2"], SimConfig(max_cycles=1_000_000))
    assert 1_000_000 <= result.cycles < 1_000_100


def test_branch_to_self_with_interrupts_masked_is_stuck_at_once(images):
    result, _ = runner.run_image(images["stuck"]["uf2"])          # default budget: would be 2^34 cycles
    assert result.stop.kind == "stuck" and result.cycles < 1_000
    assert f"stuck at pc 0x{result.stop.pc:08x}" in result.fault_report
    assert "in hangs+0x" in result.fault_report


def test_branch_to_self_with_nothing_that_can_interrupt_is_stuck(tmp_path):
    image = asm.build_image("    .thumb_func\n    .global reset\nreset:\n    cpsie i\n1:  b 1b\n", tmp_path)
    result, _ = runner.run_image(image["uf2"])
    assert result.stop.kind == "stuck" and "no interrupt that can ever fire" in result.stop.detail


def test_wall_clock_limit_ends_a_never_halting_run(images):
    result, _ = runner.run_image(images["budget exceeded"]["uf2"], SimConfig(max_cycles=1 << 46, timeout=0.3))
    assert result.stop.kind == "budget exceeded"
    assert "budget reached after" in result.stop.detail and "ms of chip time" in result.stop.detail
    assert "--timeout" in result.stop.detail and result.cycles < 1 << 46


def test_cycle_budget_message_names_chip_time(images):
    result, _ = runner.run_image(images["budget exceeded"]["uf2"], SimConfig(max_cycles=100_000))
    assert "budget reached after" in result.stop.detail and "--max-cycles" in result.stop.detail


@pytest.mark.parametrize("value", [str(2**64 + 5), str(2**48 + 1), "0", "-3", "1e9", "x"])
def test_max_cycles_out_of_range_is_refused(images, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(images["budget exceeded"]["uf2"]), "--max-cycles", value])
    assert e.value.code == 2 and "--max-cycles" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "1e9", "soon"])
def test_bad_timeout_is_refused(images, value, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(images["budget exceeded"]["uf2"]), "--timeout", value])
    assert e.value.code == 2 and "--timeout" in capsys.readouterr().err


def test_config_and_run_refuse_budgets_that_would_wrap():
    from rp2040_sim.core import Rp2040
    with pytest.raises(ValueError, match="out of range"):
        SimConfig(max_cycles=2**64 + 5)
    with pytest.raises(ValueError, match="out of range"):
        SimConfig(timeout=float("nan"))
    with pytest.raises(ValueError, match="out of range"):
        Rp2040().run(0x20000000, 2**64 + 5)


def test_cli_timeout_ends_the_run(images, capsys):
    code = cli.main(["run", str(images["budget exceeded"]["uf2"]), "--max-cycles", str(2**46), "--timeout", "0.3",
                     "--quiet"])
    assert code == 1 and "budget reached after" in capsys.readouterr().err
