/* The runtime's services for the program: clock/UART/TIMER bring-up, the halt point. */
#ifndef PZ_RUNTIME_H
#define PZ_RUNTIME_H

#include <stdint.h>

void pz_clocks_init(void);  /* XOSC 12 MHz -> PLL_SYS 125 MHz -> clk_sys; clk_peri; 1 us TIMER tick */
void pz_uart_init(void);    /* UART0 115200 8N1 on GP0/GP1; needs pz_clocks_init first */
void pz_uart_putc(char c);
void pz_uart_flush(void);   /* wait until the last bit has left the wire */
uint64_t pz_time_us(void);  /* microseconds since the TIMER left reset */
void pz_halt(void) __attribute__((noreturn));  /* bkpt #0, then loop forever (crt0.S) */

#endif
