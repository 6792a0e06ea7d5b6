/* picozoo quad boot2 (`firmware.build --boot2 quad`, the default): the 252 bytes of code the bootrom copies from
 * flash offset 0 to SRAM and runs (datasheet §2.8.1). For W25Q-family flash (the Pico's W25Q16JV); `--boot2 serial`
 * (boot2.S) serves chips without quad I/O.
 *
 * 1. SSI (DW_apb_ssi, datasheet §4.10) in standard SPI, 8-bit frames, SCK = clk_sys / 2.
 * 2. Read status register 2 (35h). If its QE bit (bit 1) is clear: write enable (06h), write status (01h with two
 *    bytes, SR1 = 0 and SR2 = QE: the form W25Q parts without 31h accept too), then poll status register 1 (05h)
 *    until BUSY (bit 0) clears. QE is non-volatile, so this happens once per chip.
 * 3. One Fast Read Quad I/O (EBh) through the data register with mode bits A0h (M5:4 = 10b): the flash stays in
 *    continuous-read mode, so later reads need no instruction.
 * 4. XIP: quad, 32-bit frames, no instruction, 24-bit address + 8 mode bits (A0h, to stay in the mode) on four
 *    lines, 4 dummy clocks. A cache line fill costs (8 + 4 + 16) SCK x 2 = 56 clk_sys (serial 0Bh: 208).
 * Then, as boot2.S: enter the application through the vector table at flash offset 0x100 when called by the bootrom
 * (LR == 0), or return when called by application code (LR != 0).
 * Position independent: only PC-relative literal loads and local BL; the build checks that the object has no
 * relocations and appends the CRC-32/MPEG-2 (firmware/uf2.py boot2_with_crc). */

    .syntax unified
    .cpu cortex-m0plus
    .thumb

/* §4.10.13 SSI registers (XIP_SSI_BASE 0x18000000) */
#define XIP_SSI_BASE          0x18000000
#define SSI_CTRLR0            0x00
#define SSI_CTRLR1            0x04
#define SSI_SSIENR            0x08
#define SSI_BAUDR             0x14
#define SSI_RXFLR             0x24
#define SSI_SR                0x28
#define SSI_DR0               0x60
#define SSI_RX_SAMPLE_DLY     0xF0
#define SSI_SPI_CTRLR0        0xF4
#define SSI_SR_BUSY           0x01
#define SSI_SR_TFE            0x04
/* CTRLR0 for commands: DFS_32 = 7 (8-bit frames), TMOD = 0 (transmit and receive), standard SPI */
#define CTRLR0_CMD            (7 << 16)
/* CTRLR0 for quad reads: SPI_FRF[22:21] = 2 (quad), DFS_32[20:16] = 31 (32-bit frames), TMOD[9:8] = 3 (EEPROM) */
#define CTRLR0_QUAD           ((2 << 21) | (31 << 16) | (3 << 8))
/* SPI_CTRLR0: XIP_CMD[31:24], WAIT_CYCLES[15:11] = 4, INST_L[9:8], ADDR_L[5:2] = 8 (24 address + 8 mode bits),
 * TRANS_TYPE[1:0]. First read: instruction EBh sent serially (INST_L 2, TRANS_TYPE 1); then XIP: no instruction,
 * XIP_CMD = the mode bits A0h sent after the address (INST_L 0, TRANS_TYPE 2: address on four lines). */
#define SPI_CTRLR0_FIRST      ((0xEB << 24) | (4 << 11) | (2 << 8) | (8 << 2) | 1)
#define SPI_CTRLR0_XIP        ((0xA0 << 24) | (4 << 11) | (0 << 8) | (8 << 2) | 2)
#define MODE_CONTINUOUS       0xA0
/* W25Q16JV command set (datasheet §8.2) */
#define CMD_WRITE_STATUS      0x01
#define CMD_READ_STATUS1      0x05
#define CMD_WRITE_ENABLE      0x06
#define CMD_READ_STATUS2      0x35
#define CMD_QUAD_IO_READ      0xEB
#define SR1_BUSY              0x01
#define SR2_QE                0x02
/* SCK = clk_sys / 2: 62.5 MHz at 125 MHz, within the W25Q16JV's 133 MHz for EBh */
#define BOOT2_SSI_CLKDIV      2
#define BOOT2_RX_SAMPLE_DELAY 1
/* ARM v6-M ARM B3.2.5: Vector Table Offset Register */
#define PPB_VTOR              0xE000ED08
/* Application vector table: flash offset 0x100 (datasheet §2.8.1) */
#define APP_VECTORS           0x10000100

    .section .boot2, "ax"
    .global pz_boot2
    .type pz_boot2, %function
pz_boot2:
    push {r4, lr}
    ldr r3, =XIP_SSI_BASE
    ldr r4, =(XIP_SSI_BASE + SSI_SPI_CTRLR0)   /* offsets over 124 are out of a Thumb-1 immediate's reach */
    movs r1, #0
    str r1, [r3, #SSI_SSIENR]          /* the SSI must be disabled while configured */
    movs r1, #BOOT2_SSI_CLKDIV
    str r1, [r3, #SSI_BAUDR]
    movs r1, #BOOT2_RX_SAMPLE_DELAY
    ldr r0, =(XIP_SSI_BASE + SSI_RX_SAMPLE_DLY)
    str r1, [r0]
    ldr r1, =CTRLR0_CMD
    str r1, [r3, #SSI_CTRLR0]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]

    movs r0, #CMD_READ_STATUS2
    bl cmd_read_byte
    movs r1, #SR2_QE
    tst r0, r1
    bne 2f                             /* QE already set */
    movs r1, #CMD_WRITE_ENABLE
    str r1, [r3, #SSI_DR0]
    bl wait_drain
    movs r1, #CMD_WRITE_STATUS
    str r1, [r3, #SSI_DR0]
    movs r1, #0
    str r1, [r3, #SSI_DR0]             /* SR1 = 0 */
    movs r1, #SR2_QE
    str r1, [r3, #SSI_DR0]             /* SR2 = QE */
    bl wait_drain
1:  movs r0, #CMD_READ_STATUS1         /* wait for the status write (tW, ~10 ms) */
    bl cmd_read_byte
    movs r1, #SR1_BUSY
    tst r0, r1
    bne 1b

2:  movs r1, #0                        /* quad: one EBh read with mode bits A0h enters continuous-read mode */
    str r1, [r3, #SSI_SSIENR]
    ldr r1, =CTRLR0_QUAD
    str r1, [r3, #SSI_CTRLR0]
    movs r1, #0
    str r1, [r3, #SSI_CTRLR1]          /* NDF = 0: one 32-bit frame per read */
    ldr r1, =SPI_CTRLR0_FIRST
    str r1, [r4]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]
    movs r1, #CMD_QUAD_IO_READ
    str r1, [r3, #SSI_DR0]
    movs r1, #MODE_CONTINUOUS          /* address 0, mode bits A0h */
    str r1, [r3, #SSI_DR0]
    bl wait_drain

    movs r1, #0                        /* XIP: address + mode bits only */
    str r1, [r3, #SSI_SSIENR]
    ldr r1, =SPI_CTRLR0_XIP
    str r1, [r4]
    movs r1, #1
    str r1, [r3, #SSI_SSIENR]

    pop {r4}
    pop {r0}
    cmp r0, #0
    beq 3f
    bx r0                              /* called from code: return */
3:  ldr r0, =PPB_VTOR                  /* called from the bootrom: enter the application */
    ldr r1, =APP_VECTORS
    str r1, [r0]
    ldmia r1!, {r0, r2}                /* r0 = initial SP, r2 = reset handler */
    msr msp, r0
    bx r2

/* r3 = SSI. Send the command byte in r0 and one dummy byte; r0 = the byte clocked back during the dummy. */
cmd_read_byte:
    str r0, [r3, #SSI_DR0]
    movs r0, #0
    str r0, [r3, #SSI_DR0]
    /* fall through */
/* r3 = SSI. Wait until everything is sent (SR.TFE set, SR.BUSY clear), then empty the RX FIFO: r0 = last frame. */
wait_drain:
    ldr r1, [r3, #SSI_SR]
    movs r2, #(SSI_SR_TFE | SSI_SR_BUSY)
    ands r1, r2
    cmp r1, #SSI_SR_TFE
    bne wait_drain
4:  ldr r1, [r3, #SSI_RXFLR]
    cmp r1, #0
    beq 5f
    ldr r0, [r3, #SSI_DR0]
    b 4b
5:  bx lr
    .ltorg
    .size pz_boot2, . - pz_boot2
