/* rp2040_sim's own bootrom, written from the RP2040 datasheet's bootrom chapter (§2.8): the fixed header at
 * 0x00000000, the function and data tables, and the routines that must be assembly (no stack, flags results,
 * four-register results). The C routines are in bits.c, flash.c and float.c; rom.ld places everything.
 *
 * Reset (both cores enter here): core 1 waits in wait_for_vector for the launch protocol of §2.8.2; core 0 loads
 * boot2 from flash with serial reads, checks its CRC and jumps to it with SP = 0x20041F00 and LR = 0, or, when
 * the CRC is wrong, asks for USB boot as the chip does. (rp2040_sim normally skips this path: boot.py loads
 * boot2 itself and starts there.) */

    .syntax unified
    .cpu cortex-m0plus
    .thumb

#define ROM_INITIAL_SP      0x20041F00      /* §2.8.3: SRAM end - 256, both cores */
#define ROM_MAGIC_M         'M'
#define ROM_MAGIC_U         'u'
#define ROM_TABLE_VERSION   1               /* §2.8.3: layout of the header and tables */
#define ROM_VERSION         3               /* the release whose tables we follow (B2: 'SF'/'SD' V2, sincos) */
#define SIO_BASE            0xD0000000      /* §2.3.1.7 */
#define SIO_CPUID           0x000
#define SIO_FIFO_ST         0x050           /* VLD bit 0, RDY bit 1 */
#define SIO_FIFO_WR         0x054
#define SIO_FIFO_RD         0x058
#define FIFO_ST_RDY         2
#define PPB_VTOR            0xE000ED08
#define PPB_SCR             0xE000ED10
#define SCR_SLEEPDEEP       4
#define WATCHDOG_SCRATCH0   0x4005800C      /* §4.7.6: SCRATCH0/1 carry reset_to_usb_boot's arguments */
/* BKPT immediates the emulator reports (rp2040_sim/rom/__init__.py BKPT_REASONS) */
#define BKPT_USB_BOOT       0xB0
#define BKPT_DEAD           0xDE

.macro rom_func c1, c2, sym
    .byte \c1, \c2
    .hword \sym + 1
.endm
.macro rom_data c1, c2, sym
    .byte \c1, \c2
    .hword \sym
.endm

    .section .rom_header, "ax"
    .word ROM_INITIAL_SP                    /* 0x00 initial MSP */
    .word rom_reset                         /* 0x04 reset */
    .word rom_dead                          /* 0x08 NMI */
    .word rom_dead                          /* 0x0C HardFault */
    .byte ROM_MAGIC_M, ROM_MAGIC_U, ROM_TABLE_VERSION, ROM_VERSION   /* 0x10 */
    .hword rom_func_table                   /* 0x14 */
    .hword rom_data_table                   /* 0x16 */
    .hword rom_table_lookup + 1             /* 0x18, Thumb bit set */
    .hword 0                                /* 0x1A */

/* ---- tables: (code, pointer) halfword pairs, code = c1 | c2 << 8, ended by code 0 ---- */
    .section .rodata.tables, "a"
    .balign 2
rom_func_table:
    rom_func 'P', '3', rom_popcount32
    rom_func 'R', '3', rom_reverse32
    rom_func 'L', '3', rom_clz32
    rom_func 'T', '3', rom_ctz32
    rom_func 'M', 'S', rom_memset
    rom_func 'S', '4', rom_memset4
    rom_func 'M', 'C', rom_memcpy
    rom_func 'C', '4', rom_memcpy44
    rom_func 'U', 'B', rom_reset_to_usb_boot
    rom_func 'D', 'T', rom_debug_trampoline
    rom_data 'D', 'E', rom_debug_trampoline_end
    rom_func 'W', 'V', rom_wait_for_vector
    rom_func 'I', 'F', rom_connect_internal_flash
    rom_func 'E', 'X', rom_flash_exit_xip
    rom_func 'R', 'E', rom_flash_range_erase
    rom_func 'R', 'P', rom_flash_range_program
    rom_func 'F', 'C', rom_flash_flush_cache
    rom_func 'C', 'X', rom_flash_enter_cmd_xip
    .hword 0, 0
rom_data_table:
    rom_data 'G', 'R', rom_git_revision
    rom_data 'C', 'R', rom_copyright
    rom_data 'S', 'F', sf_table
    rom_data 'S', 'D', sd_table
    rom_data 'F', 'Z', sf_table_size
    .hword 0, 0

rom_git_revision:
    .word 0                                 /* not a pico-bootrom build: no git revision */
rom_copyright:
    .asciz "rp2040_sim ROM (picozoo), written from the RP2040 datasheet"

/* ---- soft-float tables (§2.8.3.2): 32 entries, byte offset = 4 * index; the byte before each table holds its
 * entry count ('FZ' points at the one before 'SF', as the SDK reads it) ---- */
    .balign 4
    .hword 0
sf_table_size:
    .byte 32, 0
sf_table:
    .word sf_fadd, sf_fsub, sf_fmul, sf_fdiv                     /* 0x00 */
    .word sf_fcmp, sf_fcmp, sf_fsqrt, sf_float2int               /* 0x10 fcmp, fcmp_flags: one routine */
    .word sf_float2fix, sf_float2uint, sf_float2ufix, sf_int2float   /* 0x20 */
    .word sf_fix2float, sf_uint2float, sf_ufix2float, sf_fcos    /* 0x30 */
    .word sf_fsincos, sf_ftan, sf_fsincos, sf_fexp               /* 0x40 fsin returns cos in r1 too */
    .word sf_fln, sf_fcmp, sf_fatan2, sf_int642float             /* 0x50 */
    .word sf_fix642float, sf_uint642float, sf_ufix642float, sf_float2int64   /* 0x60 */
    .word sf_float2fix64, sf_float2uint64, sf_float2ufix64, sf_float2double  /* 0x70 */
    .hword 0
sd_table_size:
    .byte 32, 0
sd_table:
    .word sd_dadd, sd_dsub, sd_dmul, sd_ddiv
    .word sd_dcmp, sd_dcmp, sd_dsqrt, sd_double2int
    .word sd_double2fix, sd_double2uint, sd_double2ufix, sd_int2double
    .word sd_fix2double, sd_uint2double, sd_ufix2double, sd_dcos
    .word sd_dsincos, sd_dtan, sd_dsincos, sd_dexp               /* 0x40 dsin returns cos in r2:r3 too */
    .word sd_dln, sd_dcmp, sd_datan2, sd_int642double
    .word sd_fix642double, sd_uint642double, sd_ufix642double, sd_double2int64
    .word sd_double2fix64, sd_double2uint64, sd_double2ufix64, sd_double2float

    .text
    .balign 2

/* fcmp / dcmp: r0 = -1, 0 or 1 (a < b, equal, a > b or unordered) and the flags of comparing r0 + 1 with 1,
 * so EQ, LT/LO, GE/HS, GT/HI all read as for a < b; r1-r3 are preserved */
    .thumb_func
    .type sf_fcmp, %function
sf_fcmp:
    push {r1, r2, r3, lr}
    bl sf_fcmp_c
    b cmp_flags
    .thumb_func
    .type sd_dcmp, %function
sd_dcmp:
    push {r1, r2, r3, lr}
    bl sd_dcmp_c
cmp_flags:
    adds r1, r0, #1
    cmp r1, #1
    pop {r1, r2, r3, pc}

/* dsin / dsincos: sin in r0:r1, cos in r2:r3 */
    .thumb_func
    .type sd_dsincos, %function
sd_dsincos:
    push {lr}
    sub sp, #16
    mov r2, sp
    bl sd_dsincos_c
    pop {r0, r1, r2, r3}
    pop {pc}

/* 'UB' reset_to_usb_boot(gpio_activity_mask, disable_interface_mask): the chip stores the arguments in watchdog
 * scratch 0/1 and reboots into its USB mass-storage loader, which the emulator does not have: it stops */
    .thumb_func
    .type rom_reset_to_usb_boot, %function
rom_reset_to_usb_boot:
    ldr r2, =WATCHDOG_SCRATCH0
    str r0, [r2]
    str r1, [r2, #4]
    bkpt #BKPT_USB_BOOT
    b rom_dead

/* 'DT' debug_trampoline: a debugger sets r7 to a function and r0-r3 to its arguments; the BKPT at 'DE' marks
 * the return. Here bkpt #0 is also the emulator's normal halt. */
    .thumb_func
    .type rom_debug_trampoline, %function
rom_debug_trampoline:
    mov ip, r6
    movs r6, #1
    orrs r7, r6
    mov r6, ip
    blx r7
rom_debug_trampoline_end:
    bkpt #0
    b rom_debug_trampoline_end

/* 'WV' wait_for_vector (§2.8.2): core 1's holding pen. Uses no stack. Every word core 0 sends is echoed back;
 * a 0 restarts the sequence (after draining our RX FIFO), then 1, VTOR, SP and the entry point follow. */
    .thumb_func
    .type rom_wait_for_vector, %function
rom_wait_for_vector:
    ldr r4, =SIO_BASE
    ldr r5, =PPB_SCR
    ldr r0, [r5]
    movs r1, #SCR_SLEEPDEEP
    orrs r0, r1
    str r0, [r5]
wv_restart:
    ldr r0, [r4, #SIO_FIFO_ST]
    lsrs r0, r0, #1                         /* VLD into carry */
    bcc wv_send_zero
    ldr r0, [r4, #SIO_FIFO_RD]
    b wv_restart
wv_send_zero:
    movs r0, #0
    bl wv_push
    bl wv_pop
    cmp r0, #1
    bne wv_restart                          /* a 0 (or anything but 1) starts over */
    bl wv_push
    bl wv_pop
    cmp r0, #0
    beq wv_restart
    ldr r1, =PPB_VTOR
    str r0, [r1]
    bl wv_push
    bl wv_pop
    cmp r0, #0
    beq wv_restart
    msr msp, r0
    bl wv_push
    bl wv_pop
    cmp r0, #0
    beq wv_restart
    mov r6, r0
    bl wv_push
    ldr r0, [r5]
    movs r1, #SCR_SLEEPDEEP
    bics r0, r1
    str r0, [r5]
    blx r6
    b rom_dead
/* push r0 to core 0 (wait for room, then SEV); pop into r0 (WFE until a word is there); r1, r2 scratch */
wv_push:
    ldr r1, [r4, #SIO_FIFO_ST]
    movs r2, #FIFO_ST_RDY
    tst r1, r2
    bne 1f
    wfe
    b wv_push
1:  str r0, [r4, #SIO_FIFO_WR]
    sev
    bx lr
wv_pop:
    ldr r0, [r4, #SIO_FIFO_ST]
    lsrs r0, r0, #1
    bcs 1f
    wfe
    b wv_pop
1:  ldr r0, [r4, #SIO_FIFO_RD]
    bx lr

/* Reset: core 1 to the holding pen; core 0 loads and checks boot2, then enters it like the chip */
    .global rom_reset
    .thumb_func
    .type rom_reset, %function
rom_reset:
    ldr r0, =SIO_BASE
    ldr r0, [r0, #SIO_CPUID]
    cmp r0, #0
    bne rom_wait_for_vector
    bl rom_boot2_valid
    cmp r0, #0
    beq 1f
    ldr r0, =ROM_INITIAL_SP
    mov sp, r0
    movs r0, #0
    mov lr, r0
    ldr r0, =ROM_INITIAL_SP + 1
    bx r0
1:  movs r0, #0
    movs r1, #0
    b rom_reset_to_usb_boot

/* Unexpected NMI / HardFault in ROM code: park, as the chip does, but say so */
    .thumb_func
    .type rom_dead, %function
rom_dead:
    bkpt #BKPT_DEAD
    wfi
    b rom_dead
    .ltorg
