/* rp2040_sim's own bootrom: shared declarations and the register addresses it uses (RP2040 datasheet). */
#ifndef RP2040_SIM_ROM_H
#define RP2040_SIM_ROM_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* §2.14.3 RESETS, with the §2.1.2 atomic SET (+0x2000) and CLR (+0x3000) aliases */
#define RESETS_BASE            0x4000C000u
#define RESETS_RESET           (RESETS_BASE + 0x0)
#define RESETS_RESET_DONE      (RESETS_BASE + 0x8)
#define ALIAS_SET              0x2000u
#define ALIAS_CLR              0x3000u
#define RESET_IO_QSPI          (1u << 6)
#define RESET_PADS_QSPI        (1u << 9)

/* §2.19.6.2 IO_QSPI: six pins (SCLK, SS, SD0..SD3), CTRL at 8 * n + 4; SS's OUTOVER[9:8] drives chip select */
#define IO_QSPI_BASE           0x40018000u
#define IO_QSPI_PINS           6
#define IO_QSPI_SS_CTRL        (IO_QSPI_BASE + 0x0C)
#define QSPI_SS_OUTOVER_SHIFT  8
#define QSPI_SS_OUTOVER_NORMAL 0u
#define QSPI_SS_OUTOVER_LOW    2u
#define QSPI_SS_OUTOVER_HIGH   3u

/* §4.10.13 SSI (XIP_SSI_BASE) */
#define SSI_BASE               0x18000000u
#define SSI_CTRLR0             (SSI_BASE + 0x00)
#define SSI_CTRLR1             (SSI_BASE + 0x04)
#define SSI_SSIENR             (SSI_BASE + 0x08)
#define SSI_SER                (SSI_BASE + 0x10)
#define SSI_BAUDR              (SSI_BASE + 0x14)
#define SSI_SR                 (SSI_BASE + 0x28)
#define SSI_DR0                (SSI_BASE + 0x60)
#define SSI_SPI_CTRLR0         (SSI_BASE + 0xF4)
#define SSI_SR_TFNF            (1u << 1)
#define SSI_SR_RFNE            (1u << 3)
#define SSI_CTRLR0_DFS32_SHIFT 16
#define SSI_CTRLR0_TMOD_SHIFT  8
#define SSI_TMOD_TX_RX         0u
#define SSI_TMOD_EEPROM_READ   3u
#define SSI_SPI_XIP_CMD_SHIFT  24
#define SSI_SPI_INST_L_SHIFT   8
#define SSI_SPI_ADDR_L_SHIFT   2

/* §2.6.4 XIP_CTRL */
#define XIP_CTRL_BASE          0x14000000u
#define XIP_CTRL               (XIP_CTRL_BASE + 0x0)
#define XIP_FLUSH              (XIP_CTRL_BASE + 0x4)
#define XIP_CTRL_EN            1u

#define XIP_BASE               0x10000000u
#define BOOT2_SRAM             0x20041F00u
#define BOOT2_SIZE             256u

/* The functions the tables point at (their own files) */
void *rom_table_lookup(const uint16_t *table, uint32_t code);
uint32_t rom_popcount32(uint32_t x);
uint32_t rom_reverse32(uint32_t x);
uint32_t rom_clz32(uint32_t x);
uint32_t rom_ctz32(uint32_t x);
void *rom_memset(void *ptr, int c, uint32_t n);
void *rom_memset4(uint32_t *ptr, int c, uint32_t n);
void *rom_memcpy(void *dst, const void *src, uint32_t n);
void *rom_memcpy44(uint32_t *dst, const uint32_t *src, uint32_t n);
void rom_connect_internal_flash(void);
void rom_flash_exit_xip(void);
void rom_flash_range_erase(uint32_t addr, uint32_t count, uint32_t block_size, uint8_t block_cmd);
void rom_flash_range_program(uint32_t addr, const uint8_t *data, uint32_t count);
void rom_flash_flush_cache(void);
void rom_flash_enter_cmd_xip(void);
int rom_boot2_valid(void);

#endif
