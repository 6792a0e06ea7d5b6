/* Core 1 for the int8 layers: launched once at boot through the bootrom's FIFO handshake (datasheet §2.8.2), then
 * a work loop driven by the SIO FIFOs (§2.3.1.3).
 *
 * Barrier choice: the FIFOs, not a spinlock-protected flag. A FIFO word carries the work (the part function and
 * its argument) and the completion in one hardware step, needs no lock and no shared flag to reset, and a core
 * waiting on an empty FIFO sleeps in WFE until the other core's SEV (the writer signals after every word). The
 * M0+ issues its loads and stores in program order and has no cache, so the outputs a core stored before writing
 * a FIFO word are in SRAM when the other core reads that word; the "memory" clobbers keep the compiler from
 * moving them across. */
#include "multicore.h"
#include "rp2040.h"

static inline __attribute__((always_inline)) void fifo_push(uint32_t w) {
    while (!(PZ_REG(SIO_FIFO_ST) & SIO_FIFO_ST_RDY)) {
    }
    __asm__ volatile("" ::: "memory");
    PZ_REG(SIO_FIFO_WR) = w;
    __asm__ volatile("sev" ::: "memory");   /* wake the other core if it waits in WFE */
}

static inline __attribute__((always_inline)) uint32_t fifo_pop(void) {
    while (!(PZ_REG(SIO_FIFO_ST) & SIO_FIFO_ST_VLD)) {
        __asm__ volatile("wfe");
    }
    uint32_t w = PZ_REG(SIO_FIFO_RD);
    __asm__ volatile("" ::: "memory");
    return w;
}

#if PZ_CORES == 2
uintptr_t pz_core_swap(uintptr_t mine) {
    fifo_push(mine);
    return fifo_pop();
}

extern const uint32_t pz_vectors[];
extern uint32_t __stack1_top[];   /* rp2040.ld: core 1's stack, below core 0's */

/* Core 1's program: take (fn, arg) from the FIFO, run its part, answer with a word (the join). No function calls
 * between a part's return and the next part: core 0 may still be reading a part's data on core 1's stack. */
static void __attribute__((noreturn)) core1_main(void) {
    for (;;) {
        pz_part_fn fn = (pz_part_fn)fifo_pop();
        const void *arg = (const void *)fifo_pop();
        fn(arg, 1);
        fifo_push(1);
    }
}

void pz_multicore_init(void) {
    /* §2.8.2: 0, 0, 1, vector table, stack pointer, entry; core 1's bootrom echoes each word. Before each 0 our RX
     * FIFO is drained (core 1 sent a 0 at reset) and the other core woken; any echo that differs restarts. */
    const uint32_t seq[6] = {0u, 0u, 1u, (uint32_t)pz_vectors, (uint32_t)__stack1_top, (uint32_t)core1_main};
    uint32_t i = 0;
    while (i < 6u) {
        uint32_t w = seq[i];
        if (w == 0u) {
            while (PZ_REG(SIO_FIFO_ST) & SIO_FIFO_ST_VLD) {
                (void)PZ_REG(SIO_FIFO_RD);
            }
            __asm__ volatile("sev");
        }
        fifo_push(w);
        i = fifo_pop() == w ? i + 1u : 0u;
    }
}

/* §2.3.1 SIO spinlocks (SPINLOCK0..31 at SIO + 0x100 + 4 n): a read claims the lock (non-zero) or returns 0 when
 * the other core holds it; any write releases it. 24: the first of the pico-sdk's "claim-free" locks, so firmware
 * that mixes in SDK code does not collide with us. */
#define SIO_SPINLOCK0 (SIO_BASE + 0x100u)
#define PZ_SHARE_SPINLOCK 24u
#define PZ_SHARE_LOCK (SIO_SPINLOCK0 + 4u * PZ_SHARE_SPINLOCK)

pz_share_t pz_share;

uint32_t pz_share_take(uint32_t *first) {
    for (;;) {
        while (PZ_REG(PZ_SHARE_LOCK) == 0u) {
        }
        __asm__ volatile("" ::: "memory");   /* read the counter only while holding the lock */
        const uint32_t next = pz_share.next, left = pz_share.units - next, ready = pz_share.ready - next;
        uint32_t n = (left + 1u) / 2u;
        if (n < pz_share.min_take) n = pz_share.min_take;
        if (n > ready) n = ready;   /* ready <= left */
        pz_share.next = next + n;
        __asm__ volatile("" ::: "memory");   /* the new counter is stored before the release */
        PZ_REG(PZ_SHARE_LOCK) = 1u;
        if (n != 0u || left == 0u) {
            *first = next;
            return n;
        }
        while (pz_share.ready == next) {   /* the unit at `next` is still being copied */
        }
    }
}

void pz_parallel(pz_part_fn fn, const void *arg) {
    fifo_push((uint32_t)fn);
    fifo_push((uint32_t)arg);
    fn(arg, 0);
    (void)fifo_pop();   /* core 1 has returned from its part */
}
#else
void pz_multicore_init(void) {   /* one core: core 1 stays in the bootrom */
}
#endif
