/* picozoo boot2: the 252 bytes of code the bootrom copies from flash offset 0 to SRAM and runs (datasheet §2.8.1).
 *
 * It puts the SSI (DW_apb_ssi, datasheet §4.10) in XIP mode with serial Fast Read (0Bh: instruction, 24-bit
 * address, 8 dummy clocks, data, all on one line), which every SPI NOR flash supports up to its full clock and which
 * needs no status-register write (unlike the quad modes, which need the QE bit set). It then enters the application
 * through the vector table at flash offset 0x100 when called by the bootrom (LR == 0), or returns when called by
 * application code (LR != 0).
 * Position independent: only PC-relative literal loads, no absolute references to its own code; the build checks
 * that the object has no relocations and appends the CRC-32/MPEG-2 (firmware/uf2.py boot2_with_crc).
 * Cost of an 8-byte cache line fill: (8 + 24 + 8 + 64) SCK x 2 = 208 clk_sys; a quad continuous-read boot2 would
 * take ~56, plain 03h reads at the 50 MHz they allow 384. */

    .syntax unified
    .cpu cortex-m0plus
    .thumb

/* §4.10.13 SSI registers (XIP_SSI_BASE 0x18000000) */
#define XIP_SSI_BASE          0x18000000
#define SSI_CTRLR0            0x00
#define SSI_CTRLR1            0x04
#define SSI_SSIENR            0x08
#define SSI_BAUDR             0x14
#define SSI_RX_SAMPLE_DLY     0xF0
#define SSI_SPI_CTRLR0        0xF4
/* CTRLR0: DFS_32[20:16] = 31 (32-bit frames), TMOD[9:8] = 3 (EEPROM read), SPI_FRF[22:21] = 0 (standard SPI) */
#define CTRLR0_XIP            ((31 << 16) | (3 << 8))
/* SPI_CTRLR0: XIP_CMD[31:24] = 0x0B (fast read), WAIT_CYCLES[15:11] = 8 (the dummy byte), INST_L[9:8] = 2
 * (8-bit instruction), ADDR_L[5:2] = 6 (24-bit address), TRANS_TYPE[1:0] = 0 (instruction and address on one line) */
#define SPI_CTRLR0_XIP        ((0x0B << 24) | (8 << 11) | (2 << 8) | (6 << 2))
/* SCK = clk_sys / 2 (BAUDR must be even): 62.5 MHz at 125 MHz, within the 133 MHz of 0Bh on the Pico's W25Q16JV */
#define BOOT2_SSI_CLKDIV      2
/* Sample RX one clk_sys late to absorb the pad and flash round trip at SCK = clk_sys / 2 (datasheet §4.10.13) */
#define BOOT2_RX_SAMPLE_DELAY 1
/* ARM v6-M ARM B3.2.5: Vector Table Offset Register */
#define PPB_VTOR              0xE000ED08
/* Application vector table: flash offset 0x100 (datasheet §2.8.1) */
#define APP_VECTORS           0x10000100

    .section .boot2, "ax"
    .global pz_boot2
    .type pz_boot2, %function
pz_boot2:
    push {lr}
    ldr r3, =XIP_SSI_BASE
    movs r1, #0
    str r1, [r3, #SSI_SSIENR]          /* the SSI must be disabled while configured */
    movs r1, #BOOT2_SSI_CLKDIV
    str r1, [r3, #SSI_BAUDR]
    movs r1, #BOOT2_RX_SAMPLE_DELAY
    ldr r0, =(XIP_SSI_BASE + SSI_RX_SAMPLE_DLY)   /* offset too large for a Thumb-1 immediate */
    str r1, [r0]
    ldr r1, =CTRLR0_XIP
    str r1, [r3, #SSI_CTRLR0]
    ldr r1, =SPI_CTRLR0_XIP
    ldr r0, =(XIP_SSI_BASE + SSI_SPI_CTRLR0)   /* offset too large for a Thumb-1 immediate */
    str r1, [r0]
    movs r1, #0
    str r1, [r3, #SSI_CTRLR1]          /* NDF = 0: one 32-bit frame per XIP access */
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]
    pop {r0}
    cmp r0, #0
    beq 1f
    bx r0                              /* called from code: return */
1:  ldr r0, =PPB_VTOR                  /* called from the bootrom: enter the application */
    ldr r1, =APP_VECTORS
    str r1, [r0]
    ldmia r1!, {r0, r2}                /* r0 = initial SP, r2 = reset handler */
    msr msp, r0
    bx r2
    .ltorg
    .size pz_boot2, . - pz_boot2
