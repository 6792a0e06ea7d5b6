"""SYSINFO (datasheet 2.20.2, base 0x40000000): chip identification, read by SDK runtimes for errata checks."""

from __future__ import annotations

from rp2040_sim.peripherals.base import Peripheral

SYSINFO_BASE = 0x40000000
SYSINFO_CHIP_ID, SYSINFO_PLATFORM, SYSINFO_GITREF_RP2040 = 0x00, 0x04, 0x40
# CHIP_ID: REVISION[31:28] = 2 (B2, the Pico's current part), PART[27:12] = 0x0002, MANUFACTURER[11:0] = 0x927
CHIP_ID_RP2040_B2 = (2 << 28) | (0x0002 << 12) | 0x927
PLATFORM_ASIC = 1 << 1


class Sysinfo(Peripheral):
    NAME, BASE = "SYSINFO", SYSINFO_BASE
    REGISTERS = {SYSINFO_CHIP_ID: "CHIP_ID", SYSINFO_PLATFORM: "PLATFORM", SYSINFO_GITREF_RP2040: "GITREF_RP2040"}
    RESET = {SYSINFO_CHIP_ID: CHIP_ID_RP2040_B2, SYSINFO_PLATFORM: PLATFORM_ASIC}

    def write(self, offset, value):
        return                                # read-only


# -- TBMAN (datasheet 2.21, base 0x4006C000): PLATFORM bit 0 = ASIC, bit 1 = FPGA. The SDK's running_on_fpga()
# tests bit 1 and would skip the clock set-up on an FPGA; we are silicon --
TBMAN_BASE = 0x4006C000
TBMAN_PLATFORM = 0x00
TBMAN_PLATFORM_ASIC = 1 << 0


class Tbman(Peripheral):
    NAME, BASE = "TBMAN", TBMAN_BASE
    REGISTERS = {TBMAN_PLATFORM: "PLATFORM"}
    RESET = {TBMAN_PLATFORM: TBMAN_PLATFORM_ASIC}

    def write(self, offset, value):
        return                                # read-only
