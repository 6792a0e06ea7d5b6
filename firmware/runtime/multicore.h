/* The second core: launch at boot and fork/join of one layer's work (multicore.c, docs/FIRMWARE.md "Two cores").
 * PZ_CORES (1 or 2) comes from firmware/build.py --cores; with 1, core 1 stays in the bootrom and only
 * pz_multicore_init exists (it does nothing). */
#ifndef PZ_MULTICORE_H
#define PZ_MULTICORE_H

#include <stdint.h>

#ifndef PZ_CORES
#define PZ_CORES 1
#endif

/* A layer's work for one core: core 0 or 1 of the two. */
typedef void (*pz_part_fn)(const void *arg, uint32_t core);

/* Core 0 at boot: launch core 1 (datasheet §2.8.2) into its work loop when PZ_CORES == 2; nothing otherwise. */
void pz_multicore_init(void);

#if PZ_CORES == 2
/* Core 0: run fn(arg, 1) on core 1 and fn(arg, 0) here, return when both have returned (fork, then join). */
void pz_parallel(pz_part_fn fn, const void *arg);

/* Inside a pz_parallel part: give the other core a word and take its word (both cores call it once; a barrier:
 * neither returns before the other has arrived). */
uintptr_t pz_core_swap(uintptr_t mine);
#endif

#endif
