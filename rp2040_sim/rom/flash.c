/* The flash functions of the public function table (datasheet §2.8.3.1.3): 'IF' 'EX' 'RE' 'RP' 'FC' 'CX'.
 *
 * They drive the SSI (datasheet §4.10) in standard SPI, 8-bit frames, transmit-and-receive, and frame each command
 * with the QSPI chip select forced low/high through IO_QSPI GPIO_QSPI_SS_CTRL.OUTOVER (the SSI's own select stays
 * asserted). Commands (W25Q-series SPI NOR): 0x06 write enable, 0x05 read status 1 (bit 0 BUSY), 0x20 4 kB sector
 * erase, 0x02 page program (256-byte pages), 0x03 read (used for the serial XIP mode of 'CX'). */
#include "rom.h"

#define FLASH_CMD_WRITE_ENABLE  0x06
#define FLASH_CMD_READ_STATUS   0x05
#define FLASH_CMD_SECTOR_ERASE  0x20
#define FLASH_CMD_PAGE_PROGRAM  0x02
#define FLASH_CMD_READ          0x03
#define FLASH_STATUS_BUSY       0x01
#define FLASH_SECTOR_SIZE       4096u
#define FLASH_PAGE_SIZE         256u
#define FLASH_CONTINUOUS_EXIT   0xFF
/* The SSI's RX FIFO holds 16 frames: keep at most 14 in flight so it never overflows */
#define SSI_MAX_IN_FLIGHT       14
/* clk_sys / 6 while the ROM talks to the flash, as the chip's ROM does */
#define ROM_SSI_BAUD            6

static void cs_force(uint32_t outover) {
    uint32_t ctrl = REG32(IO_QSPI_SS_CTRL) & ~(3u << QSPI_SS_OUTOVER_SHIFT);
    REG32(IO_QSPI_SS_CTRL) = ctrl | (outover << QSPI_SS_OUTOVER_SHIFT);
}

/* Clock out tx_count bytes of `tx` (0 when tx is null) then `rx_count` more; the bytes received during the
 * second part go to `rx`. */
static void put_get(const uint8_t *tx, uint32_t tx_count, uint8_t *rx, uint32_t rx_count) {
    uint32_t total = tx_count + rx_count, sent = 0, got = 0;
    while (got < total) {
        if (sent < total && sent - got < SSI_MAX_IN_FLIGHT && (REG32(SSI_SR) & SSI_SR_TFNF)) {
            REG32(SSI_DR0) = (tx && sent < tx_count) ? tx[sent] : 0;
            sent++;
        }
        if (REG32(SSI_SR) & SSI_SR_RFNE) {
            uint8_t byte = (uint8_t)REG32(SSI_DR0);
            if (got >= tx_count && rx)
                rx[got - tx_count] = byte;
            got++;
        }
    }
}

static void cmd_addr(uint8_t cmd, uint32_t addr) {
    uint8_t hdr[4] = {cmd, (uint8_t)(addr >> 16), (uint8_t)(addr >> 8), (uint8_t)addr};
    put_get(hdr, 4, 0, 0);
}

static void simple_cmd(uint8_t cmd) {
    cs_force(QSPI_SS_OUTOVER_LOW);
    put_get(&cmd, 1, 0, 0);
    cs_force(QSPI_SS_OUTOVER_HIGH);
}

static void wait_ready(void) {
    uint8_t cmd = FLASH_CMD_READ_STATUS, status;
    do {
        cs_force(QSPI_SS_OUTOVER_LOW);
        put_get(&cmd, 1, &status, 1);
        cs_force(QSPI_SS_OUTOVER_HIGH);
    } while (status & FLASH_STATUS_BUSY);
}

/* 'IF': take the QSPI pads and pins through reset and give the six pins to XIP (FUNCSEL 0) */
void rom_connect_internal_flash(void) {
    uint32_t mask = RESET_IO_QSPI | RESET_PADS_QSPI;
    REG32(RESETS_RESET + ALIAS_SET) = mask;
    REG32(RESETS_RESET + ALIAS_CLR) = mask;
    while ((REG32(RESETS_RESET_DONE) & mask) != mask)
        ;
    for (uint32_t pin = 0; pin < IO_QSPI_PINS; pin++)
        REG32(IO_QSPI_BASE + 8 * pin + 4) = 0;
}

/* 'EX': the SSI to serial command mode, then take the flash out of any continuous-read (XIP) mode */
void rom_flash_exit_xip(void) {
    REG32(SSI_SSIENR) = 0;
    REG32(SSI_BAUDR) = ROM_SSI_BAUD;
    REG32(SSI_CTRLR0) = (7u << SSI_CTRLR0_DFS32_SHIFT) | (SSI_TMOD_TX_RX << SSI_CTRLR0_TMOD_SHIFT);
    REG32(SSI_SER) = 1;
    REG32(SSI_SSIENR) = 1;
    /* Two 0xFF bytes with CS low end a quad continuous read (mode bits not 10b) on W25Q-series flash */
    uint8_t exit_seq[2] = {FLASH_CONTINUOUS_EXIT, FLASH_CONTINUOUS_EXIT};
    cs_force(QSPI_SS_OUTOVER_HIGH);
    cs_force(QSPI_SS_OUTOVER_LOW);
    put_get(exit_seq, 2, 0, 0);
    cs_force(QSPI_SS_OUTOVER_HIGH);
}

/* 'RE': erase [addr, addr + count) (count a multiple of 4 kB): block_cmd erases of block_size where aligned and
 * enough is left, 4 kB sector erases (0x20) elsewhere */
void rom_flash_range_erase(uint32_t addr, uint32_t count, uint32_t block_size, uint8_t block_cmd) {
    uint32_t end = addr + count;
    while (addr < end) {
        uint32_t step = FLASH_SECTOR_SIZE;
        uint8_t cmd = FLASH_CMD_SECTOR_ERASE;
        if (block_cmd && block_size > FLASH_SECTOR_SIZE && (addr & (block_size - 1)) == 0 &&
            end - addr >= block_size) {
            step = block_size;
            cmd = block_cmd;
        }
        simple_cmd(FLASH_CMD_WRITE_ENABLE);
        cs_force(QSPI_SS_OUTOVER_LOW);
        cmd_addr(cmd, addr);
        cs_force(QSPI_SS_OUTOVER_HIGH);
        wait_ready();
        addr += step;
    }
}

/* 'RP': program [addr, addr + count) from data (count a multiple of 256), one page program per 256-byte page */
void rom_flash_range_program(uint32_t addr, const uint8_t *data, uint32_t count) {
    uint32_t end = addr + count;
    while (addr < end) {
        uint32_t chunk = FLASH_PAGE_SIZE - (addr & (FLASH_PAGE_SIZE - 1));
        if (chunk > end - addr)
            chunk = end - addr;
        simple_cmd(FLASH_CMD_WRITE_ENABLE);
        cs_force(QSPI_SS_OUTOVER_LOW);
        cmd_addr(FLASH_CMD_PAGE_PROGRAM, addr);
        put_get(data, chunk, 0, 0);
        cs_force(QSPI_SS_OUTOVER_HIGH);
        wait_ready();
        addr += chunk;
        data += chunk;
    }
}

/* 'FC': flush the XIP cache (the read back waits for the flush), enable it, give chip select back to the SSI */
void rom_flash_flush_cache(void) {
    REG32(XIP_FLUSH) = 1;
    (void)REG32(XIP_FLUSH);
    REG32(XIP_CTRL) |= XIP_CTRL_EN;
    cs_force(QSPI_SS_OUTOVER_NORMAL);
}

/* 'CX': XIP through serial 03h reads: 32-bit frames, EEPROM-read mode, 8-bit instruction, 24-bit address */
void rom_flash_enter_cmd_xip(void) {
    REG32(SSI_SSIENR) = 0;
    REG32(SSI_CTRLR0) = (31u << SSI_CTRLR0_DFS32_SHIFT) | (SSI_TMOD_EEPROM_READ << SSI_CTRLR0_TMOD_SHIFT);
    REG32(SSI_CTRLR1) = 0;
    REG32(SSI_SPI_CTRLR0) = ((uint32_t)FLASH_CMD_READ << SSI_SPI_XIP_CMD_SHIFT) | (2u << SSI_SPI_INST_L_SHIFT) |
                            (6u << SSI_SPI_ADDR_L_SHIFT);
    REG32(SSI_SSIENR) = 1;
}

/* The reset path's boot2 load (datasheet §2.8.1.3): serial XIP, copy flash 0..255 to SRAM, CRC-32/MPEG-2 of
 * bytes 0..251 must equal the word at 252. Returns 1 when boot2 may run. */
int rom_boot2_valid(void) {
    rom_connect_internal_flash();
    rom_flash_exit_xip();
    rom_flash_enter_cmd_xip();
    rom_flash_flush_cache();
    rom_memcpy((void *)BOOT2_SRAM, (const void *)XIP_BASE, BOOT2_SIZE);
    const uint8_t *p = (const uint8_t *)BOOT2_SRAM;
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < BOOT2_SIZE - 4; i++) {
        crc ^= (uint32_t)p[i] << 24;
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x80000000u) ? (crc << 1) ^ 0x04C11DB7u : crc << 1;
    }
    return crc == *(const uint32_t *)(BOOT2_SRAM + BOOT2_SIZE - 4);
}
