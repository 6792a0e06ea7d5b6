"""The RP2040 address map (datasheet 2.2, pico-sdk hardware_regs/addressmap.h) as the emulator builds it."""

from __future__ import annotations

# Datasheet 2.2.1 ROM: 16 kB bootrom. It holds our own ROM (rp2040_sim/rom, built from source) or a user's
# official image (--bootrom); bytes past our ROM's end are UDF, so a stray jump there stops with a clear fault.
ROM_BASE, ROM_SIZE = 0x00000000, 0x4000
ROM_FILL_HALFWORD = 0xDEFE             # UDF #0xFE (ARMv6-M ARM A6.7.77)

# Datasheet 2.6: XIP flash window and its aliases (2.6.3.2); the Pico carries a 2 MB W25Q16.
XIP_BASE = 0x10000000
XIP_NOALLOC_BASE = 0x11000000
XIP_NOCACHE_BASE = 0x12000000
XIP_NOCACHE_NOALLOC_BASE = 0x13000000
XIP_ALIASES = (XIP_BASE, XIP_NOALLOC_BASE, XIP_NOCACHE_BASE, XIP_NOCACHE_NOALLOC_BASE)
XIP_WINDOW_END = 0x14000000
XIP_ALIAS_SPAN = 0x01000000
# Physical address of the MMIO data views of the aliases (native/cycles.c XIP_DATA_VIEW): with Unicorn's virtual
# TLB, data reads from XIP are mapped there so the cache model sees each one; the program never sees this range.
XIP_DATA_VIEW = 0x70000000
FLASH_SIZE = 2 * 1024 * 1024
FLASH_ERASED = 0xFF

# Datasheet 2.2.3: SRAM0-3 striped (256 kB) + SRAM4, SRAM5 (4 kB each) = 264 kB, nothing beyond.
SRAM_BASE = 0x20000000
SRAM_SIZE = 264 * 1024
SRAM_END = SRAM_BASE + SRAM_SIZE       # 0x20042000

# Where the bootrom copies boot2 (datasheet 2.8.1.3), and the bootrom's initial MSP (the word at ROM 0x00,
# datasheet 2.8.3: SRAM end - 256, just below boot2): boot2 is entered with this SP, so its pushes stay off its
# own code. (Reference sheet 1.6: the official B1 ROM has pushed 24 bytes by then, SP 0x20041EE8; any SP at or
# below 0x20041F00 keeps boot2 intact.)
BOOT2_SRAM_ADDR = 0x20041F00
BOOT2_SIZE = 256
BOOT2_CRC_OFFSET = 252
VECTOR_TABLE_ADDR = 0x10000100
BOOTROM_SP = 0x20041F00

# APB/AHB peripherals we do not model (addressmap.h): mapped so an access warns with the block's name.
UNMODELLED_PERIPHERALS = {
    "SYSCFG": 0x40004000, "PSM": 0x40010000, "BUSCTRL": 0x40030000, "SPI0": 0x4003C000,
    "SPI1": 0x40040000, "I2C0": 0x40044000, "I2C1": 0x40048000, "ADC": 0x4004C000, "PWM": 0x40050000,
    "RTC": 0x4005C000, "ROSC": 0x40060000, "VREG_AND_CHIP_RESET": 0x40064000,
    "DMA": 0x50000000, "PIO0": 0x50200000, "PIO1": 0x50300000,
    "XIP_AUX": 0x50400000,
}


def region_name(addr: int) -> str:
    if ROM_BASE <= addr < ROM_BASE + ROM_SIZE:
        return "bootrom"
    if XIP_BASE <= addr < XIP_WINDOW_END:
        return "XIP flash"
    if SRAM_BASE <= addr < SRAM_END:
        return "SRAM"
    if 0x40000000 <= addr < 0x60000000:
        return "peripherals"
    if 0xD0000000 <= addr < 0xD0001000:
        return "SIO"
    if 0xE0000000 <= addr < 0xE0100000:
        return "PPB"
    return "unmapped"
