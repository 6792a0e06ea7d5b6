/* Vector table and reset handler (ARMv6-M ARM B1.5.2 vector table, B1.5.5 reset behaviour).
 *
 * The vector table sits at flash offset 0x100 (0x10000100), where boot2 looks for it (datasheet §2.8.1).
 * The reset handler copies .data from flash, zeroes .bss, paints the stack region [__stack_limit, sp) with
 * PZ_STACK_PAINT so peak stack use can be measured afterwards, and calls main.
 * Written in assembly so that no compiler-generated call (memcpy/memset) touches the stack being painted. */

    .syntax unified
    .cpu cortex-m0plus
    .thumb

#define PZ_STACK_PAINT        0xDEADBEEF
/* ARMv6-M: 16 system vectors; RP2040 datasheet §2.3: 32 NVIC interrupt lines (26 used) */
#define PZ_SYSTEM_VECTORS     16
#define PZ_IRQ_VECTORS        32

    .section .vectors, "a"
    .global pz_vectors
pz_vectors:
    .word __stack_top
    .word pz_reset_handler
    .rept PZ_SYSTEM_VECTORS - 2 + PZ_IRQ_VECTORS
    .word pz_unexpected_exception
    .endr
    .size pz_vectors, . - pz_vectors

    .text
    .global pz_reset_handler
    .type pz_reset_handler, %function
    .thumb_func
pz_reset_handler:
    ldr r0, =__data_start
    ldr r1, =__data_end
    ldr r2, =__data_load
1:  cmp r0, r1
    bhs 2f
    ldr r3, [r2]
    str r3, [r0]
    adds r0, #4
    adds r2, #4
    b 1b
2:  ldr r0, =__bss_start
    ldr r1, =__bss_end
    movs r3, #0
3:  cmp r0, r1
    bhs 4f
    str r3, [r0]
    adds r0, #4
    b 3b
4:  ldr r0, =__stack_limit
    mov r1, sp
    ldr r3, =PZ_STACK_PAINT
5:  cmp r0, r1
    bhs 6f
    str r3, [r0]
    adds r0, #4
    b 5b
6:  bl main
    b pz_halt
    .ltorg
    .size pz_reset_handler, . - pz_reset_handler

/* Contract with the emulator: it calls pz_infer with LR = pz_halt|1 and stops at this bkpt. */
    .global pz_halt
    .type pz_halt, %function
    .thumb_func
pz_halt:
    bkpt #0
1:  b 1b
    .size pz_halt, . - pz_halt

/* Every exception but reset: r0 = IPSR (the exception number), then bkpt #0xFE, distinct from the normal #0. */
    .global pz_unexpected_exception
    .type pz_unexpected_exception, %function
    .thumb_func
pz_unexpected_exception:
    mrs r0, ipsr
    bkpt #0xFE
1:  b 1b
    .size pz_unexpected_exception, . - pz_unexpected_exception
