/* Clocks, UART0 and the microsecond TIMER, brought up from the datasheet without the pico-sdk.
 * Register names and sections: rp2040.h. Sequence: XOSC -> clk_ref, PLL_SYS 125 MHz -> clk_sys, clk_peri = clk_sys,
 * WATCHDOG tick 1 us for the TIMER, UART0 115200 8N1 on GP0 (TX) / GP1 (RX). */
#include "runtime.h"
#include "rp2040.h"

static void unreset(uint32_t bits) {
    PZ_REG(RESETS_RESET + PZ_ALIAS_CLR) = bits;
    while ((PZ_REG(RESETS_RESET_DONE) & bits) != bits) {
    }
}

void pz_clocks_init(void) {
    /* §2.16: start the crystal; clk_sys keeps running from the ROSC through clk_ref until the switch below */
    PZ_REG(XOSC_STARTUP) = XOSC_STARTUP_DELAY;
    PZ_REG(XOSC_CTRL) = XOSC_CTRL_ENABLE | XOSC_CTRL_FREQ_1_15MHZ;
    while (!(PZ_REG(XOSC_STATUS) & XOSC_STATUS_STABLE)) {
    }
    /* §2.15.3: glitchless switch of clk_ref to the XOSC */
    PZ_REG(CLK_REF_CTRL) = CLK_REF_CTRL_SRC_XOSC;
    while (PZ_REG(CLK_REF_SELECTED) != CLK_REF_SELECTED_XOSC) {
    }
    /* §2.18: program the PLL, power it up, wait for lock, then the post dividers */
    unreset(RESETS_BIT_PLL_SYS);
    PZ_REG(PLL_CS) = PLL_SYS_REFDIV;
    PZ_REG(PLL_FBDIV_INT) = PLL_SYS_FBDIV;
    PZ_REG(PLL_PWR + PZ_ALIAS_CLR) = PLL_PWR_PD | PLL_PWR_VCOPD;
    while (!(PZ_REG(PLL_CS) & PLL_CS_LOCK)) {
    }
    PZ_REG(PLL_PRIM) = PLL_PRIM_VALUE;
    PZ_REG(PLL_PWR + PZ_ALIAS_CLR) = PLL_PWR_POSTDIVPD;
    /* §2.15.3: clk_sys aux mux = pll_sys while the glitchless mux still selects clk_ref, then switch */
    PZ_REG(CLK_SYS_CTRL + PZ_ALIAS_CLR) = CLK_SYS_CTRL_AUXSRC_MASK;
    PZ_REG(CLK_SYS_CTRL + PZ_ALIAS_SET) = CLK_SYS_CTRL_SRC_AUX;
    while (PZ_REG(CLK_SYS_SELECTED) != CLK_SYS_SELECTED_AUX) {
    }
    PZ_REG(CLK_PERI_CTRL) = CLK_PERI_CTRL_ENABLE;
    /* §4.7: the watchdog tick divides clk_ref (12 MHz) down to the 1 us reference of the TIMER */
    PZ_REG(WATCHDOG_TICK) = WATCHDOG_TICK_ENABLE | WATCHDOG_TICK_CYCLES;
    unreset(RESETS_BIT_TIMER);
}

void pz_uart_init(void) {
    unreset(RESETS_BIT_IO_BANK0 | RESETS_BIT_PADS_BANK0 | RESETS_BIT_UART0);
    PZ_REG(IO_BANK0_GPIO_CTRL(PZ_UART_TX_PIN)) = GPIO_FUNC_UART;
    PZ_REG(IO_BANK0_GPIO_CTRL(PZ_UART_RX_PIN)) = GPIO_FUNC_UART;
    PZ_REG(UART_IBRD) = UART_IBRD_VALUE;
    PZ_REG(UART_FBRD) = UART_FBRD_VALUE;
    PZ_REG(UART_LCR_H) = UART_LCR_H_WLEN_8 | UART_LCR_H_FEN;   /* §4.2, baud rate calculation: this write latches IBRD/FBRD */
    PZ_REG(UART_CR) = UART_CR_UARTEN | UART_CR_TXE | UART_CR_RXE;
}

void pz_uart_putc(char c) {
    while (PZ_REG(UART_FR) & UART_FR_TXFF) {
    }
    PZ_REG(UART_DR) = (uint8_t)c;
}

void pz_uart_flush(void) {
    while (PZ_REG(UART_FR) & UART_FR_BUSY) {
    }
}

uint64_t pz_time_us(void) {
    uint32_t lo = PZ_REG(TIMER_TIMELR);   /* latches TIMEHR (§4.6) */
    uint32_t hi = PZ_REG(TIMER_TIMEHR);
    return ((uint64_t)hi << 32) | lo;
}
