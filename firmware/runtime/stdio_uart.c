/* picolibc stdout on UART0: printf formats, this only moves bytes ("\n" goes out as "\r\n" for terminals). */
#include <stdio.h>

#include "runtime.h"

static int uart_put(char c, FILE *file) {
    (void)file;
    if (c == '\n') {
        pz_uart_putc('\r');
    }
    pz_uart_putc(c);
    return (unsigned char)c;
}

static FILE uart_stdout = FDEV_SETUP_STREAM(uart_put, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdout = &uart_stdout;
