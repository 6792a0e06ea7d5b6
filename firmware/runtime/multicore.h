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

/* Work shared by the two cores inside one pz_parallel: `units` items (rows, pixels, groups of channels), of which
 * the first `ready` can be run now (the rest wait for data being copied: core 0 raises ready as it copies). */
typedef struct {
    volatile uint32_t next;    /* the first unit nobody has taken */
    volatile uint32_t ready;   /* units whose inputs are in place, <= units */
    uint32_t units;
    uint32_t min_take;         /* the smallest share worth a kernel call, >= 1 */
} pz_share_t;

/* The one share in use (one layer runs at a time): core 0 fills it before pz_parallel. */
extern pz_share_t pz_share;

/* Take the next share of pz_share: half of the units left, rounded up (at least min_take, at most what is ready;
 * waits while nothing is ready yet). Returns its first unit in *first and its size, 0 when every unit is taken.
 * Half, not less: each share is a kernel call whose set-up costs ~9 k cycles on pd_mobilenet's 3x3x256 layer, and a
 * quarter measured slower there (1,197,532 cycles against 1,168,961; docs/BENCHMARKS.md). */
uint32_t pz_share_take(uint32_t *first);
#endif

#endif
