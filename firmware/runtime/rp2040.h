/* RP2040 registers used by the picozoo runtime, each with its RP2040 datasheet section.
 * Offsets checked against pico-sdk src/rp2040/hardware_regs/include/hardware/regs/ headers (read, not copied). */
#ifndef PZ_RP2040_H
#define PZ_RP2040_H

#include <stdint.h>

#define PZ_REG(addr) (*(volatile uint32_t *)(addr))

/* §2.1.2 Atomic register access: +0x1000 XOR, +0x2000 SET, +0x3000 CLR aliases of every APB register. */
#define PZ_ALIAS_SET 0x2000u
#define PZ_ALIAS_CLR 0x3000u

/* §2.14 Subsystem resets (RESETS_BASE 0x4000c000) */
#define RESETS_BASE            0x4000C000u
#define RESETS_RESET           (RESETS_BASE + 0x00u)
#define RESETS_RESET_DONE      (RESETS_BASE + 0x08u)
#define RESETS_BIT_IO_BANK0    (1u << 5)
#define RESETS_BIT_PADS_BANK0  (1u << 8)
#define RESETS_BIT_PLL_SYS     (1u << 12)
#define RESETS_BIT_TIMER       (1u << 21)
#define RESETS_BIT_UART0       (1u << 22)

/* §2.16 Crystal oscillator (XOSC_BASE 0x40024000) */
#define XOSC_BASE              0x40024000u
#define XOSC_CTRL              (XOSC_BASE + 0x00u)
#define XOSC_STATUS            (XOSC_BASE + 0x04u)
#define XOSC_STARTUP           (XOSC_BASE + 0x0Cu)
#define XOSC_CTRL_FREQ_1_15MHZ 0x00000AA0u        /* FREQ_RANGE = 1_15MHZ */
#define XOSC_CTRL_ENABLE       (0xFABu << 12)     /* ENABLE magic value */
#define XOSC_STATUS_STABLE     (1u << 31)
#define XOSC_FREQ_HZ           12000000u          /* Pico board crystal, §2.16 */
#define XOSC_STARTUP_DELAY     47u                /* x256 XOSC cycles ~ 1 ms, §2.16 */

/* §2.15 Clocks (CLOCKS_BASE 0x40008000) */
#define CLOCKS_BASE              0x40008000u
#define CLK_REF_CTRL             (CLOCKS_BASE + 0x30u)
#define CLK_REF_SELECTED         (CLOCKS_BASE + 0x38u)
#define CLK_SYS_CTRL             (CLOCKS_BASE + 0x3Cu)
#define CLK_SYS_SELECTED         (CLOCKS_BASE + 0x44u)
#define CLK_PERI_CTRL            (CLOCKS_BASE + 0x48u)
#define CLK_REF_CTRL_SRC_XOSC    2u                /* SRC[1:0] = xosc_clksrc */
#define CLK_REF_SELECTED_XOSC    (1u << 2)         /* one-hot: bit SRC */
#define CLK_SYS_CTRL_SRC_AUX     1u                /* SRC[0] = clksrc_clk_sys_aux */
#define CLK_SYS_CTRL_AUXSRC_MASK (7u << 5)         /* AUXSRC[7:5]; 0 = clksrc_pll_sys */
#define CLK_SYS_SELECTED_AUX     (1u << 1)
#define CLK_PERI_CTRL_ENABLE     (1u << 11)        /* AUXSRC[7:5] = 0: clk_sys */

/* §2.18 PLL (PLL_SYS_BASE 0x40028000). 12 MHz / REFDIV 1 * FBDIV 125 = VCO 1500 MHz; / 6 / 2 = 125 MHz. */
#define PLL_SYS_BASE        0x40028000u
#define PLL_CS              (PLL_SYS_BASE + 0x00u)
#define PLL_PWR             (PLL_SYS_BASE + 0x04u)
#define PLL_FBDIV_INT       (PLL_SYS_BASE + 0x08u)
#define PLL_PRIM            (PLL_SYS_BASE + 0x0Cu)
#define PLL_CS_LOCK         (1u << 31)
#define PLL_PWR_PD          (1u << 0)
#define PLL_PWR_POSTDIVPD   (1u << 3)
#define PLL_PWR_VCOPD       (1u << 5)
#define PLL_SYS_REFDIV      1u
#define PLL_SYS_FBDIV       125u
#define PLL_SYS_POSTDIV1    6u                     /* PRIM POSTDIV1[18:16] */
#define PLL_SYS_POSTDIV2    2u                     /* PRIM POSTDIV2[14:12] */
#define PLL_PRIM_VALUE      ((PLL_SYS_POSTDIV1 << 16) | (PLL_SYS_POSTDIV2 << 12))
#define CLK_SYS_HZ          125000000u

/* §2.19.6.1 IO_BANK0 (0x40014000): GPIOn_CTRL at 0x04 + 8n; FUNCSEL 2 = UART (§2.19.2 function table) */
#define IO_BANK0_BASE       0x40014000u
#define IO_BANK0_GPIO_CTRL(n) (IO_BANK0_BASE + 0x04u + 8u * (n))
#define GPIO_FUNC_UART      2u
#define PZ_UART_TX_PIN      0u                      /* GP0 = UART0 TX */
#define PZ_UART_RX_PIN      1u                      /* GP1 = UART0 RX */

/* §4.2 UART (ARM PL011; UART0_BASE 0x40034000) */
#define UART0_BASE          0x40034000u
#define UART_DR             (UART0_BASE + 0x00u)
#define UART_FR             (UART0_BASE + 0x18u)
#define UART_IBRD           (UART0_BASE + 0x24u)
#define UART_FBRD           (UART0_BASE + 0x28u)
#define UART_LCR_H          (UART0_BASE + 0x2Cu)
#define UART_CR             (UART0_BASE + 0x30u)
#define UART_FR_TXFF        (1u << 5)
#define UART_FR_BUSY        (1u << 3)
#define UART_LCR_H_WLEN_8   (3u << 5)
#define UART_LCR_H_FEN      (1u << 4)
#define UART_CR_UARTEN      (1u << 0)
#define UART_CR_TXE         (1u << 8)
#define UART_CR_RXE         (1u << 9)
#define PZ_UART_BAUD        115200u
/* §4.2, baud rate calculation baud divisor = clk_peri / (16 * baud) = 67.817: integer 67, fraction round(0.817 * 64) = 52 */
#define UART_BAUD_DIV64     ((8u * CLK_SYS_HZ / PZ_UART_BAUD + 1u) / 2u)   /* 64 * divisor, rounded */
#define UART_IBRD_VALUE     (UART_BAUD_DIV64 >> 6)
#define UART_FBRD_VALUE     (UART_BAUD_DIV64 & 0x3Fu)

/* §4.7 Watchdog (0x40058000): TICK generates the 1 us reference for the TIMER from clk_ref */
#define WATCHDOG_BASE       0x40058000u
#define WATCHDOG_TICK       (WATCHDOG_BASE + 0x2Cu)
#define WATCHDOG_TICK_ENABLE (1u << 9)
#define WATCHDOG_TICK_CYCLES (XOSC_FREQ_HZ / 1000000u)   /* clk_ref cycles per us */

/* §4.6 Timer (0x40054000): reading TIMELR latches TIMEHR until TIMEHR is read */
#define TIMER_BASE          0x40054000u
#define TIMER_TIMEHR        (TIMER_BASE + 0x08u)
#define TIMER_TIMELR        (TIMER_BASE + 0x0Cu)

/* §2.3.1 SIO (0xD0000000, one view per core): CPUID and the inter-core FIFOs (§2.3.1.3; 8 words each way) */
#define SIO_BASE            0xD0000000u
#define SIO_CPUID           (SIO_BASE + 0x000u)
#define SIO_FIFO_ST         (SIO_BASE + 0x050u)
#define SIO_FIFO_WR         (SIO_BASE + 0x054u)
#define SIO_FIFO_RD         (SIO_BASE + 0x058u)
#define SIO_FIFO_ST_VLD     (1u << 0)              /* this core's RX FIFO holds a word */
#define SIO_FIFO_ST_RDY     (1u << 1)              /* this core's TX FIFO has room */

#endif
