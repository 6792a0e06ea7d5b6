/* The program: bring up clocks, TIMER and UART, classify the test images stored in flash, report, halt.
 * Output (one line per image, then a summary) is the contract with the emulator, see docs/FIRMWARE.md. */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "multicore.h"
#include "runtime.h"
#include "testdata.h"

int main(void) {
    pz_clocks_init();
    pz_uart_init();
    pz_multicore_init();   /* launches core 1 in a two-core build */
    unsigned correct = 0;
    uint64_t total_us = 0;
    for (unsigned i = 0; i < pz_test_count; i++) {
        memcpy(pz_input, &pz_test_images[i * sizeof pz_input], sizeof pz_input);  /* bytes or float32 values */
        uint64_t start = pz_time_us();
        int pred = pz_infer();
        uint32_t us = (uint32_t)(pz_time_us() - start);
        unsigned label = pz_test_labels[i];
        correct += (unsigned)pred == label;
        total_us += us;
        printf("img %u label %u pred %d us %lu", i, label, pred, (unsigned long)us);
        if ((unsigned)pred < pz_class_count)   /* the model's class names, when it has them */
            printf(" class %s", pz_class_names[pred]);
        printf("\n");
    }
    printf("summary images %u correct %u us_total %lu\n", (unsigned)pz_test_count, correct,
           (unsigned long)total_us);
    pz_uart_flush();
    pz_halt();
}
