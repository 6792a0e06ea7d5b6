/* Cycle accounting for the RP2040 emulator, called by libunicorn itself (no Python on the hot path).
 *
 * A Unicorn block hook (UC_HOOK_BLOCK) fires once per executed translated block. The first time a block is
 * seen its Thumb instructions are decoded here into a static cost from the Cortex-M0+ timing table
 * (ARM DDI0484C Table 3-1 = RP2040 datasheet Table 81); later executions are one hash lookup. A conditional
 * branch that ends a block is charged as not taken (1 cycle); at the next block's entry we know whether it was
 * taken (next address != fallthrough) and add the extra cycle then. Instruction fetches from XIP flash are run
 * through a model of the XIP cache (datasheet 2.6.3.1: 16 kB, 2-way, 8-byte lines) per block. Data reads from
 * flash are sent, by a TLB-fill hook (Unicorn's UC_TLB_VIRTUAL mode), to MMIO views of the flash whose read
 * callbacks below do the cache accounting: a UC_HOOK_MEM_READ would instead force every load of the program
 * (SRAM too) through Unicorn's slow path and cost ~60 ns per hooked access. Built as a plain shared library and
 * loaded with ctypes; it needs no unicorn header, the few prototypes are declared below.
 */
#define _POSIX_C_SOURCE 199309L   /* clock_gettime under -std=c11 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void uc_engine;
typedef uc_engine *uc_handle;
typedef int (*uc_mem_read_fn)(uc_engine *, uint64_t, void *, uint64_t);
typedef int (*uc_reg_read_fn)(uc_engine *, int, void *);
typedef int (*uc_emu_stop_fn)(uc_engine *);

#define UC_ARM_REG_SP 12            /* unicorn arm_const.py */
#define UC_MEM_READ 16              /* unicorn.h uc_mem_type */
#define UC_MEM_WRITE 17
#define UC_PROT_READ 1
#define UC_PROT_WRITE 2
#define UC_PROT_EXEC 4
#define UC_PROT_ALL 7
typedef struct { uint64_t paddr; uint32_t perms; } uc_tlb_entry_t;

/* Memory map (pico-sdk addressmap.h) */
#define XIP_BASE 0x10000000u
#define XIP_WINDOW 0x04000000u      /* 0x10..0x13: cached, no-alloc, no-cache, no-cache-no-alloc aliases */
#define XIP_ALIAS_SPAN 0x01000000u  /* each alias is a 16 MB window; the Pico's flash fills the first 2 MB */
/* Physical addresses of the MMIO data views of the four aliases (not visible to the program: in virtual-TLB
 * mode only our TLB fill maps there, for data reads from XIP). */
#define XIP_DATA_VIEW 0x70000000u
#define SRAM_BASE 0x20000000u
#define SRAM_END 0x20042000u

/* XIP cache geometry, datasheet 2.6.3.1: 16 kB, 2 ways, 8-byte lines -> 1024 sets; index addr[12:3],
 * tag addr[23:13]. */
#define XIP_LINE_SHIFT 3
#define XIP_SETS 1024u
#define XIP_WAYS 2

/* Timing classes (Table 3-1). */
enum { LAST_OTHER = 0, LAST_COND_BRANCH = 1 };
#define FLAG_SP_DOWN 1u      /* block may lower SP (PUSH, SUB SP, MOV SP, ADD SP,reg, MSR): check the limit after it */
#define FLAG_SELF_LOOP 2u    /* the block is one `b .`: stop before it, Python decides "idle" or "stuck" */
#define FLAG_IRQ_UNMASK 4u   /* CPSIE or MSR (may clear PRIMASK): stop after it when an interrupt is pending */
#define FLAG_SEV 8u          /* SEV: sets the event register (of both cores) */
/* How often (in blocks) the hook looks at the wall clock when a wall-clock limit is set. */
#define WALL_CHECK_MASK 0xffffu

typedef struct block {
    uint32_t addr, size;           /* key: unicorn may start blocks at any branch target */
    uint32_t cycles;               /* static cost, branches not taken */
    uint32_t insns;
    uint32_t flags;
    uint32_t last_kind;
    uint32_t checksum;             /* for blocks in SRAM: code may be rewritten there */
    uint32_t used;
    uint64_t execs;                /* profile: executions */
    uint64_t total_cycles;         /* profile: all cycles charged to this block */
} block_t;

/* The XIP cache: tags (tag+1, 0 = invalid) and the way to replace next (LRU). The chip has one cache in front of
 * the one QSPI flash for both cores (datasheet 2.6.3): core 1's state points at core 0's (sim_share_xip). */
typedef struct xip_cache {
    uint32_t tags[XIP_SETS][XIP_WAYS];
    uint8_t lru[XIP_SETS];
} xip_cache_t;

typedef struct sim_state {
    /* counters, read by Python through ctypes (keep layout in sync with native.py) */
    uint64_t cycles;
    uint64_t instructions;
    uint64_t xip_hits;             /* accesses through the cached aliases that hit */
    uint64_t xip_accesses;         /* accesses through the cached aliases (CTR_ACC) */
    uint64_t xip_misses;           /* line fills (cached aliases) + uncached alias accesses */
    uint64_t budget;               /* stop once cycles >= budget */
    uint32_t stop_reason;          /* STOP_* below, 0 = none */
    uint32_t stack_limit;          /* SP below this = stack overflow; 0 disables */
    uint32_t min_sp;
    uint32_t xip_miss_penalty;     /* clk_sys cycles per line fill from flash */
    uint32_t xip_cache_enabled;    /* XIP_CTRL.CTRL.EN */
    uint32_t fault_addr;
    uint64_t block_hook_calls;
    uint64_t wall_deadline_ns;     /* CLOCK_MONOTONIC limit of this run; 0 = none */
    uint32_t irq_hint;             /* Python: an enabled exception is pending (stop after CPSIE/MSR) */
    uint32_t event_reg;            /* the core's event register (WFE), set by SEV */
    uint32_t *other_event;         /* the other core's event register (SEV sets both); NULL = single core */
    uint32_t stop_pc;              /* address of the block the run stopped before */
    uint32_t stop_before;          /* stop before the next block (after a CPSIE/MSR with an interrupt pending) */
    /* engine */
    uc_engine *uc;
    uc_mem_read_fn mem_read;
    uc_reg_read_fn reg_read;
    uc_emu_stop_fn emu_stop;
    /* block table */
    block_t *table;
    uint32_t mask;
    uint32_t count;
    block_t *prev;                 /* block executed before the current one */
    const uint8_t *flash;          /* the 2 MB flash array behind all aliases */
    xip_cache_t *xip;              /* the cache this core looks up and fills: own_xip, or the other core's */
    xip_cache_t own_xip;
} sim_state;

enum { STOP_NONE = 0, STOP_BUDGET = 1, STOP_STACK = 2, STOP_DECODE = 3, STOP_WALL = 4, STOP_SPECIAL = 5 };

/* ---- Thumb (ARMv6-M) decoder: static cycles of one instruction --------------------------------------- */
static int popcount8(uint32_t x) { return __builtin_popcount(x & 0xffu); }

/* Returns the instruction length in bytes; fills cycles, flags and whether it is a conditional branch.
 * Choices where the TRM is ambiguous are marked CHOICE and listed in docs/EMULATOR.md. */
static int decode_one(uint16_t hw, uint16_t hw2, uint32_t *cyc, uint32_t *flags, int *cond)
{
    *cond = 0;
    uint32_t top5 = hw >> 11;
    if (top5 == 0x1d || top5 == 0x1e || top5 == 0x1f) {
        /* 32-bit encodings: BL, MSR, MRS, DMB/DSB/ISB are all ARMv6-M has; anything else faults in unicorn. */
        if ((hw & 0xf800) == 0xf000 && (hw2 & 0xd000) == 0xd000) *cyc = 3;       /* BL */
        else if ((hw & 0xffe0) == 0xf380) {                                      /* MSR (MSP/PSP/PRIMASK) */
            *cyc = 3; *flags |= FLAG_SP_DOWN | FLAG_IRQ_UNMASK;
        }
        else if ((hw & 0xfff0) == 0xf3b0 || (hw & 0xffe0) == 0xf3e0) *cyc = 3;   /* barriers, MRS */
        else *cyc = 1;
        return 4;
    }
    if (hw < 0x4000) { *cyc = 1; return 2; }                       /* shifts, add/sub, mov/cmp/add/sub imm */
    if (hw < 0x4400) { *cyc = 1; return 2; }                       /* ALU incl. MULS (fast multiplier) */
    if (hw < 0x4800) {
        uint32_t op = (hw >> 8) & 3, rd = ((hw >> 4) & 8) | (hw & 7);
        if (op == 3) { *cyc = 2; return 2; }                       /* BX, BLX */
        if (op == 0 || op == 2) {                                  /* ADD / MOV (high registers) */
            if (rd == 15) { *cyc = 2; return 2; }                  /* writes PC: branch */
            if (rd == 13) *flags |= FLAG_SP_DOWN;
        }
        *cyc = 1; return 2;
    }
    if (hw < 0xa000) { *cyc = 2; return 2; }                       /* LDR literal, LDR/STR reg/imm/SP-rel */
    if (hw < 0xb000) { *cyc = 1; return 2; }                       /* ADR, ADD Rd, SP, #imm */
    if (hw < 0xc000) {
        if ((hw & 0xff80) == 0xb080) { *flags |= FLAG_SP_DOWN; *cyc = 1; return 2; }    /* SUB SP, #imm */
        if ((hw & 0xfe00) == 0xb400) {                             /* PUSH: 1 + N, N counts LR too (CHOICE) */
            *flags |= FLAG_SP_DOWN;
            *cyc = 1 + popcount8(hw) + ((hw >> 8) & 1); return 2;
        }
        if ((hw & 0xfe00) == 0xbc00) {                             /* POP: 1 + N, with PC 3 + N, N counts PC (CHOICE) */
            int n = popcount8(hw) + ((hw >> 8) & 1);
            *cyc = ((hw >> 8) & 1) ? 3 + n : 1 + n; return 2;
        }
        if ((hw & 0xff00) == 0xbf00) {                             /* hints: WFI/WFE 2, others 1 */
            uint32_t h = (hw >> 4) & 0xf;
            if (h == 4 && (hw & 0xf) == 0) *flags |= FLAG_SEV;
            *cyc = (h == 2 || h == 3) ? 2 : 1; return 2;
        }
        if (hw == 0xb662) *flags |= FLAG_IRQ_UNMASK;               /* CPSIE i */
        *cyc = 1; return 2;                                        /* ADD SP, extend, REV, CPS, BKPT */
    }
    if (hw < 0xd000) { *cyc = 1 + popcount8(hw); return 2; }       /* LDM/STM: 1 + N */
    if (hw < 0xde00) { *cyc = 1; *cond = 1; return 2; }            /* B<cond>: 1 not taken, +1 if taken */
    if (hw < 0xe000) { *cyc = 1; return 2; }                       /* UDF, SVC (exception entry not modelled) */
    *cyc = 2; return 2;                                            /* B */
}

static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) { h ^= p[i]; h *= 16777619u; }
    return h;
}

static int decode_block(sim_state *s, block_t *b)
{
    uint8_t buf[4096 + 4];
    uint32_t n = b->size;
    if (n > 4096) n = 4096;
    memset(buf, 0, sizeof buf);
    if (s->mem_read(s->uc, b->addr, buf, n) != 0) return -1;
    b->cycles = b->insns = b->flags = 0;
    b->last_kind = LAST_OTHER;
    uint32_t off = 0;
    while (off < n) {
        uint16_t hw = buf[off] | (buf[off + 1] << 8);
        uint16_t hw2 = buf[off + 2] | (buf[off + 3] << 8);
        uint32_t cyc = 1; int cond;
        int len = decode_one(hw, hw2, &cyc, &b->flags, &cond);
        b->cycles += cyc;
        b->insns++;
        off += len;
        b->last_kind = cond ? LAST_COND_BRANCH : LAST_OTHER;
    }
    if (n == 2 && (buf[0] | (buf[1] << 8)) == 0xe7fe) b->flags |= FLAG_SELF_LOOP;     /* `b .` */
    if (b->addr >= SRAM_BASE && b->addr < SRAM_END) b->checksum = fnv1a(buf, n);
    return 0;
}

/* ---- block table ----------------------------------------------------------------------------------------- */
static inline uint32_t hash_key(uint32_t addr, uint32_t size) { return (addr >> 1) * 2654435761u ^ size * 40503u; }

static int grow(sim_state *s);

static block_t *lookup(sim_state *s, uint32_t addr, uint32_t size)
{
    uint32_t i = hash_key(addr, size) & s->mask;
    for (;;) {
        block_t *b = &s->table[i];
        if (!b->used) {
            if ((s->count + 1) * 2 > s->mask) {
                if (grow(s) != 0) return NULL;
                return lookup(s, addr, size);
            }
            b->used = 1; b->addr = addr; b->size = size;
            s->count++;
            if (decode_block(s, b) != 0) return NULL;
            return b;
        }
        if (b->addr == addr && b->size == size) return b;
        i = (i + 1) & s->mask;
    }
}

static int grow(sim_state *s)
{
    uint32_t old_n = s->mask + 1, new_n = old_n * 2;
    block_t *old = s->table, *t = calloc(new_n, sizeof(block_t));
    if (!t) return -1;
    s->table = t; s->mask = new_n - 1;
    for (uint32_t k = 0; k < old_n; k++) {
        if (!old[k].used) continue;
        uint32_t i = hash_key(old[k].addr, old[k].size) & s->mask;
        while (t[i].used) i = (i + 1) & s->mask;
        t[i] = old[k];
    }
    s->prev = NULL;
    free(old);
    return 0;
}

/* ---- XIP cache ------------------------------------------------------------------------------------------ */
/* One access to flash through the alias `addr` selects (datasheet 2.6.3.2); returns the stall in cycles. */
static inline uint32_t xip_line_access(sim_state *s, uint32_t addr, uint32_t words)
{
    uint32_t alias = (addr >> 24) & 3;          /* 0 cached, 1 no-allocate, 2 no-cache, 3 no-cache no-alloc */
    if (alias >= 2 || !s->xip_cache_enabled) {
        s->xip_misses += words;
        return s->xip_miss_penalty * words;
    }
    uint32_t set = (addr >> XIP_LINE_SHIFT) & (XIP_SETS - 1);
    uint32_t tag = ((addr >> 13) & 0x7ff) + 1;
    xip_cache_t *c = s->xip;
    uint32_t *t = c->tags[set];
    s->xip_accesses += words;
    if (t[0] == tag) { c->lru[set] = 1; s->xip_hits += words; return 0; }
    if (t[1] == tag) { c->lru[set] = 0; s->xip_hits += words; return 0; }
    s->xip_misses++;
    s->xip_hits += words - 1;                   /* the rest of the line arrives with the fill */
    if (alias == 0) {                           /* allocate into the least recently used way (CHOICE: LRU) */
        uint32_t w = c->lru[set];
        t[w] = tag;
        c->lru[set] = w ^ 1;
    }
    return s->xip_miss_penalty;
}

/* Instruction fetch of [addr, addr+size): the M0+ fetches 32-bit words; each word is one cache access. */
static inline uint32_t xip_fetch(sim_state *s, uint32_t addr, uint32_t size)
{
    uint32_t a = addr & ~3u, end = addr + size, stall = 0;
    while (a < end) {
        uint32_t line_end = (a | 7u) + 1;
        uint32_t stop = line_end < end ? line_end : end;
        uint32_t words = (stop - a + 3) >> 2;
        stall += xip_line_access(s, a, words);
        a = line_end;
    }
    return stall;
}

/* ---- hooks called by libunicorn ------------------------------------------------------------------------- */
static void stop(sim_state *s, uint32_t reason, uint32_t addr)
{
    if (s->stop_reason == STOP_NONE) { s->stop_reason = reason; s->fault_addr = addr; }
    s->emu_stop(s->uc);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sim_block_hook(uc_engine *uc, uint64_t address, uint32_t size, void *user)
{
    sim_state *s = (sim_state *)user;
    uint32_t addr = (uint32_t)address;
    s->block_hook_calls++;
    block_t *p = s->prev;
    if (p) {
        if (p->last_kind == LAST_COND_BRANCH && addr != p->addr + p->size) { s->cycles++; p->total_cycles++; }
        if (p->flags & FLAG_SP_DOWN) {
            uint32_t sp = 0;
            s->reg_read(uc, UC_ARM_REG_SP, &sp);
            if (sp < s->min_sp) s->min_sp = sp;
            if (sp < s->stack_limit && s->stack_limit) { s->prev = NULL; stop(s, STOP_STACK, sp); return; }
        }
    }
    block_t *b = lookup(s, addr, size);
    if (!b) { s->prev = NULL; stop(s, STOP_DECODE, addr); return; }
    if (b->checksum) {                          /* code in SRAM: re-decode if it was rewritten */
        uint8_t buf[4096];
        uint32_t n = size > 4096 ? 4096 : size;
        if (s->mem_read(uc, addr, buf, n) == 0 && fnv1a(buf, n) != b->checksum) decode_block(s, b);
    }
    /* Stops decided here come before this block runs: Unicorn honours a stop requested from the block hook
     * before executing the block, so the block is neither charged nor run, and the run resumes at addr. */
    uint32_t why = STOP_NONE;
    if (s->cycles >= s->budget) why = STOP_BUDGET;
    else if (s->stop_before || (b->flags & FLAG_SELF_LOOP)) why = STOP_SPECIAL;
    else if ((s->block_hook_calls & WALL_CHECK_MASK) == 0 && s->wall_deadline_ns && now_ns() >= s->wall_deadline_ns)
        why = STOP_WALL;
    if (why != STOP_NONE) {
        if (s->stop_reason == STOP_NONE) s->stop_pc = addr;
        s->stop_before = 0;
        s->prev = NULL;                         /* the taken-branch cycle of p is already counted above */
        stop(s, why, addr);
        return;
    }
    uint64_t c = b->cycles;
    if (addr - XIP_BASE < XIP_WINDOW) c += xip_fetch(s, addr, size);
    s->cycles += c;
    s->instructions += b->insns;
    b->execs++;
    b->total_cycles += c;
    s->prev = b;
    if (b->flags & (FLAG_SEV | FLAG_IRQ_UNMASK)) {
        if (b->flags & FLAG_SEV) {              /* SEV sets the event register of both cores */
            s->event_reg = 1;
            if (s->other_event) *s->other_event = 1;
        }
        if ((b->flags & FLAG_IRQ_UNMASK) && s->irq_hint) s->stop_before = 1;   /* take it after this block */
    }
}

/* TLB fill (UC_TLB_VIRTUAL): identity everywhere, except data reads from the XIP window, which go to the MMIO
 * data views (same bytes, through the cache model). Writes and fetches stay on the read-only flash mapping, so
 * a store still faults and code still runs from translated blocks. An XIP entry grants only the access that
 * filled it: a fetch entry that also allowed reads would let literal-pool loads from a code page bypass the
 * data view (and the cache model). QEMU's victim TLB keeps the fetch/read alternation on a page cheap. */
int sim_tlb_fill(uc_engine *uc, uint64_t vaddr, int type, uc_tlb_entry_t *e, void *user)
{
    (void)uc; (void)user;
    uint32_t a = (uint32_t)vaddr;
    if (a - XIP_BASE >= XIP_WINDOW) {
        e->paddr = vaddr;
        e->perms = UC_PROT_ALL;             /* the mapping's own permissions still apply */
    } else if (type == UC_MEM_READ) {
        e->paddr = vaddr - XIP_BASE + XIP_DATA_VIEW;
        e->perms = UC_PROT_READ;
    } else {
        e->paddr = vaddr;                   /* the flash mapping is read/execute only: a store faults there */
        e->perms = type == UC_MEM_WRITE ? UC_PROT_WRITE : UC_PROT_EXEC;
    }
    return 1;
}

/* Data read from flash through alias `alias` at flash offset `off`: one cache access, then the bytes. */
static inline uint64_t flash_data(sim_state *s, uint32_t alias, uint64_t off, unsigned size)
{
    uint32_t stall = xip_line_access(s, XIP_BASE + alias * XIP_ALIAS_SPAN + (uint32_t)off, 1);
    s->cycles += stall;
    if (s->prev) s->prev->total_cycles += stall;
    const uint8_t *p = s->flash + off;
    if (size == 1) return p[0];
    if (size == 2) return (uint64_t)p[0] | (uint64_t)p[1] << 8;
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

uint64_t sim_flash_data0(uc_engine *uc, uint64_t off, unsigned size, void *u) { (void)uc; return flash_data(u, 0, off, size); }
uint64_t sim_flash_data1(uc_engine *uc, uint64_t off, unsigned size, void *u) { (void)uc; return flash_data(u, 1, off, size); }
uint64_t sim_flash_data2(uc_engine *uc, uint64_t off, unsigned size, void *u) { (void)uc; return flash_data(u, 2, off, size); }
uint64_t sim_flash_data3(uc_engine *uc, uint64_t off, unsigned size, void *u) { (void)uc; return flash_data(u, 3, off, size); }

void sim_set_flash(sim_state *s, const uint8_t *flash) { s->flash = flash; }

/* ---- peripheral ports ------------------------------------------------------------------------------------- */
/* A peripheral's MMIO range calls these (one port per peripheral and core): the bus cycles of the access are
 * charged here, then the access is answered natively if the port has a native register set that takes it (below:
 * the SIO's CPUID, divider and spinlocks; the UART's flag register and transmit path), else by the peripheral's
 * Python callback. Going through Unicorn's Python MMIO wrapper and charging from Python cost three more Python
 * frames and a ctypes call per access (about half of each access; pico-sdk programs make tens of thousands); a
 * Python callback still costs ~1.3 us, a native answer tens of nanoseconds. */
typedef uint64_t (*py_read_fn)(uint64_t offset, uint32_t size);
typedef void (*py_write_fn)(uint64_t offset, uint32_t size, uint64_t value);
/* A native register set: returns 1 if it answered the access, 0 to pass it on to Python. */
typedef int (*native_read_fn)(void *dev, uint32_t offset, uint32_t size, uint64_t *value);
typedef int (*native_write_fn)(void *dev, uint32_t offset, uint32_t size, uint64_t value);
typedef struct mmio_port {
    sim_state *s;                  /* the core whose engine maps the range: bus cycles go to it */
    int32_t read_extra, write_extra;
    py_read_fn read;
    py_write_fn write;
    void *dev;                     /* native register set (NULL: every access goes to Python) */
    native_read_fn native_read;
    native_write_fn native_write;
} mmio_port;

static inline void charge(sim_state *s, int64_t delta)
{
    s->cycles += delta;
    if (s->prev) s->prev->total_cycles += delta;
}

uint64_t sim_mmio_read(uc_engine *uc, uint64_t offset, unsigned size, void *user)
{
    (void)uc;
    mmio_port *p = (mmio_port *)user;
    if (p->read_extra) charge(p->s, p->read_extra);
    uint64_t value;
    if (p->native_read && p->native_read(p->dev, (uint32_t)offset, size, &value)) return value;
    return p->read(offset, size);
}

void sim_mmio_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user)
{
    (void)uc;
    mmio_port *p = (mmio_port *)user;
    if (p->write_extra) charge(p->s, p->write_extra);
    if (p->native_write && p->native_write(p->dev, (uint32_t)offset, size, value)) return;
    p->write(offset, size, value);
}

mmio_port *sim_port_new(sim_state *s, int32_t read_extra, int32_t write_extra, void *read, void *write)
{
    mmio_port *p = calloc(1, sizeof(mmio_port));
    if (!p) return NULL;
    p->s = s; p->read_extra = read_extra; p->write_extra = write_extra;
    p->read = (py_read_fn)read; p->write = (py_write_fn)write;
    return p;
}

void sim_port_free(mmio_port *p) { free(p); }

/* ---- SIO registers answered natively (datasheet 2.3.1.7): CPUID, the divider, the spinlocks ------------------ */
/* Pure register state with no Python-side effects; the rest of the SIO (FIFOs, GPIO, interpolators) stays in
 * peripherals/sio.py, which reaches these through sim_sio_read/sim_sio_write for its own (test) accesses. */
#define SIO_CPUID 0x000u
#define SIO_SPINLOCK_ST 0x05Cu
#define SIO_DIV_UDIVIDEND 0x060u
#define SIO_DIV_UDIVISOR 0x064u
#define SIO_DIV_SDIVIDEND 0x068u
#define SIO_DIV_SDIVISOR 0x06Cu
#define SIO_DIV_QUOTIENT 0x070u
#define SIO_DIV_REMAINDER 0x074u
#define SIO_DIV_CSR 0x078u
#define SIO_SPINLOCK0 0x100u
#define SIO_NUM_SPINLOCKS 32u
#define DIV_CSR_READY 1u
#define DIV_CSR_DIRTY 2u
#define DIV_LATENCY_CYCLES 8u       /* datasheet 2.3.1.5: the result is valid 8 cycles after the last operand write */

typedef struct sio_native {
    uint32_t cpuid;
    uint32_t dividend, divisor, quotient, remainder, dirty;
    uint64_t ready_at;             /* chip time (cycles) at which CSR.READY sets */
    uint32_t *spinlocks;           /* bitmap of claimed locks, shared by both cores' SIO */
    sim_state *time_a, *time_b;    /* chip time = the later of the two counts (time_b NULL: time_a alone) */
} sio_native;

static inline uint64_t sio_now(const sio_native *d)
{
    uint64_t t = d->time_a->cycles;
    if (d->time_b && d->time_b->cycles > t) t = d->time_b->cycles;
    return t;
}

/* Truncating division as the divider returns it: the remainder takes the dividend's sign; divide by zero gives
 * remainder = dividend and quotient all-ones unsigned, or -1 / +1 by the dividend's sign when signed;
 * INT_MIN / -1 wraps to INT_MIN, remainder 0. */
static void sio_divide(sio_native *d, int is_signed)
{
    uint32_t n = d->dividend, m = d->divisor;
    if (!is_signed) {
        d->quotient = m ? n / m : 0xFFFFFFFFu;
        d->remainder = m ? n % m : n;
    } else {
        int32_t sn = (int32_t)n, sm = (int32_t)m;
        if (sm == 0) { d->quotient = sn >= 0 ? 0xFFFFFFFFu : 1u; d->remainder = n; }
        else if (sn == INT32_MIN && sm == -1) { d->quotient = 0x80000000u; d->remainder = 0; }
        else { d->quotient = (uint32_t)(sn / sm); d->remainder = (uint32_t)(sn % sm); }
    }
    d->dirty = 1;
    d->ready_at = sio_now(d) + DIV_LATENCY_CYCLES;
}

/* Word accesses only: a narrow one goes to Python, which splits it and comes back through these. */
int sim_sio_read(void *dev, uint32_t offset, uint32_t size, uint64_t *value)
{
    sio_native *d = (sio_native *)dev;
    if (size != 4) return 0;
    switch (offset) {
    case SIO_CPUID: *value = d->cpuid; return 1;
    case SIO_SPINLOCK_ST: *value = *d->spinlocks; return 1;
    case SIO_DIV_UDIVIDEND: case SIO_DIV_SDIVIDEND: *value = d->dividend; return 1;
    case SIO_DIV_UDIVISOR: case SIO_DIV_SDIVISOR: *value = d->divisor; return 1;
    case SIO_DIV_QUOTIENT: d->dirty = 0; *value = d->quotient; return 1;   /* reading QUOTIENT clears DIRTY */
    case SIO_DIV_REMAINDER: *value = d->remainder; return 1;
    case SIO_DIV_CSR:
        *value = (sio_now(d) >= d->ready_at ? DIV_CSR_READY : 0) | (d->dirty ? DIV_CSR_DIRTY : 0);
        return 1;
    default: break;
    }
    if (offset - SIO_SPINLOCK0 < 4 * SIO_NUM_SPINLOCKS && !(offset & 3)) {
        uint32_t bit = 1u << ((offset - SIO_SPINLOCK0) >> 2);    /* reading claims it: 1 << n, or 0 if taken */
        if (*d->spinlocks & bit) { *value = 0; return 1; }
        *d->spinlocks |= bit;
        *value = bit;
        return 1;
    }
    return 0;
}

int sim_sio_write(void *dev, uint32_t offset, uint32_t size, uint64_t value)
{
    sio_native *d = (sio_native *)dev;
    uint32_t v = (uint32_t)value;
    if (size != 4) return 0;
    switch (offset) {
    case SIO_CPUID: case SIO_SPINLOCK_ST: case SIO_DIV_CSR: return 1;           /* read-only */
    case SIO_DIV_UDIVIDEND: d->dividend = v; sio_divide(d, 0); return 1;
    case SIO_DIV_SDIVIDEND: d->dividend = v; sio_divide(d, 1); return 1;
    case SIO_DIV_UDIVISOR: d->divisor = v; sio_divide(d, 0); return 1;
    case SIO_DIV_SDIVISOR: d->divisor = v; sio_divide(d, 1); return 1;
    case SIO_DIV_QUOTIENT: case SIO_DIV_REMAINDER:
        /* writing a result register restores divider state (save/restore in interrupts), result ready now */
        if (offset == SIO_DIV_QUOTIENT) d->quotient = v; else d->remainder = v;
        d->dirty = 1;
        d->ready_at = sio_now(d);
        return 1;
    default: break;
    }
    if (offset - SIO_SPINLOCK0 < 4 * SIO_NUM_SPINLOCKS && !(offset & 3)) {
        *d->spinlocks &= ~(1u << ((offset - SIO_SPINLOCK0) >> 2));             /* any write releases it */
        return 1;
    }
    return 0;
}

/* Whether `offset` (word aligned) is one of the registers above. */
int sim_sio_owns(uint32_t offset)
{
    return offset == SIO_CPUID || offset == SIO_SPINLOCK_ST || (offset >= SIO_DIV_UDIVIDEND && offset <= SIO_DIV_CSR)
        || (offset - SIO_SPINLOCK0 < 4 * SIO_NUM_SPINLOCKS);
}

sio_native *sim_sio_new(sim_state *time_a, uint32_t *spinlocks, uint32_t cpuid)
{
    sio_native *d = calloc(1, sizeof(sio_native));
    if (!d) return NULL;
    d->cpuid = cpuid; d->spinlocks = spinlocks; d->time_a = time_a;
    return d;
}

void sim_sio_set_time_b(sio_native *d, sim_state *time_b) { d->time_b = time_b; }
void sim_sio_free(sio_native *d) { free(d); }

/* ---- UART: UARTFR reads and UARTDR stores answered natively (datasheet 4.2.8) ----------------------------------- */
/* The Python model (peripherals/uart.py) stays the authority: it publishes UARTFR whenever what it shows changes,
 * and sets tx_direct when a UARTDR store would do nothing but append the byte (UART and TX enabled, no live
 * sink, TXRIS already set). Those bytes collect here until Python takes them (Uart.tx). */
#define UARTDR 0x000u
#define UARTFR 0x018u

typedef struct uart_native {
    uint32_t fr;
    uint32_t tx_direct;
    uint32_t len, cap;
    uint8_t *buf;
} uart_native;

int sim_uart_read(void *dev, uint32_t offset, uint32_t size, uint64_t *value)
{
    uart_native *d = (uart_native *)dev;
    if (offset != UARTFR || size != 4) return 0;
    *value = d->fr;
    return 1;
}

int sim_uart_write(void *dev, uint32_t offset, uint32_t size, uint64_t value)
{
    uart_native *d = (uart_native *)dev;
    (void)size;                    /* a narrow store's low byte is the same byte (datasheet 2.1.4 replication) */
    if (offset != UARTDR || !d->tx_direct) return 0;
    if (d->len == d->cap) {
        uint32_t cap = d->cap ? 2 * d->cap : 256;
        uint8_t *b = realloc(d->buf, cap);
        if (!b) return 0;          /* Python appends it instead */
        d->buf = b; d->cap = cap;
    }
    d->buf[d->len++] = (uint8_t)value;
    return 1;
}

uart_native *sim_uart_new(void) { return calloc(1, sizeof(uart_native)); }
uint32_t sim_uart_size(void) { return sizeof(uart_native); }
void sim_uart_free(uart_native *d) { if (d) { free(d->buf); free(d); } }

/* ---- SSI: the flash status poll answered natively (datasheet 4.10.13; W25Q16JV 05h/35h) ------------------------ */
/* Every boot2 and the ROM's flash functions wait for the flash chip by sending 05h (read status register 1) in
 * standard SPI frames and reading BUSY back, thousands of times while a status write, erase or program runs.
 * The Python SSI and flash-chip models (peripherals/xip.py, flash_chip.py) stay the authority: after each access
 * they serve, they publish here whether the next status transactions may be answered natively (SSI enabled,
 * standard SPI, 8-bit frames, TX+RX, RX FIFO empty, the chip with no command under way, not in continuous-read
 * mode), with the status registers, the first cycle count at which the chip is no longer busy, and the chip
 * select: IO_QSPI GPIO_QSPI_SS_CTRL (its OUTOVER forces CS low or high, as the ROM's flash functions do around
 * each command; 2.19.6.2), whose plain word accesses are answered here too. A transaction that starts with 05h or
 * 35h then runs here: the chip's replies queue in `rx`; CS rises at a read of SR, RXFLR or DR0 unless forced low,
 * or when OUTOVER is written (neither command does anything when CS rises). Any other access to the SSI or
 * IO_QSPI goes to Python, which first takes over what is here (Ssi._take_native). */
#define SSI_RXFLR 0x024u
#define SSI_SR 0x028u
#define SSI_DR0 0x060u
#define SSI_SR_TFNF 2u
#define SSI_SR_TFE 4u
#define SSI_SR_RFNE 8u
#define FLASH_CMD_READ_STATUS1 0x05u
#define FLASH_CMD_READ_STATUS2 0x35u
#define FLASH_SR1_BUSY 1u
#define SSI_POLL_RX 64u
#define IO_QSPI_SS_CTRL 0x00Cu
#define SS_OUTOVER_SHIFT 8
#define SS_OUTOVER_LOW 2u
#define SS_OUTOVER_HIGH 3u

typedef struct ssi_native {
    uint32_t poll_ok;              /* Python: status transactions may run here */
    uint32_t sr1, sr2;             /* the chip's status registers (BUSY comes from busy_until) */
    uint32_t cmd;                  /* 0: no command under way here; else its command (05h or 35h) */
    uint32_t nargs;                /* bytes clocked after the command */
    uint32_t rx_head, rx_len;      /* the SSI's RX FIFO while transactions run here */
    uint32_t rx[SSI_POLL_RX];
    uint32_t selected;             /* the chip's CS is low */
    uint32_t ss_ctrl;              /* IO_QSPI GPIO_QSPI_SS_CTRL */
    uint32_t ss_written;           /* ss_ctrl was written here since Python published */
    uint32_t pad_;
    uint64_t busy_until;           /* chip time (cycles) from which BUSY reads 0 */
    sim_state *time_a, *time_b;    /* chip time, as sio_native's */
} ssi_native;

static inline uint64_t ssi_now(const ssi_native *d)
{
    uint64_t t = d->time_a->cycles;
    if (d->time_b && d->time_b->cycles > t) t = d->time_b->cycles;
    return t;
}

static inline uint32_t ssi_outover(const ssi_native *d) { return (d->ss_ctrl >> SS_OUTOVER_SHIFT) & 3u; }

static inline uint32_t ssi_pop(ssi_native *d)
{
    if (!d->rx_len) return 0;
    uint32_t v = d->rx[d->rx_head];
    d->rx_head = (d->rx_head + 1) % SSI_POLL_RX;
    d->rx_len--;
    return v;
}

/* The program looks at the SSI again: the transaction ends (CS high) unless CS is forced low. */
static inline void ssi_end(ssi_native *d)
{
    if (ssi_outover(d) != SS_OUTOVER_LOW) { d->selected = 0; d->cmd = 0; }
}

int sim_ssi_read(void *dev, uint32_t offset, uint32_t size, uint64_t *value)
{
    ssi_native *d = (ssi_native *)dev;
    if (!d->poll_ok || size != 4) return 0;
    switch (offset) {
    case SSI_SR: ssi_end(d); *value = SSI_SR_TFE | SSI_SR_TFNF | (d->rx_len ? SSI_SR_RFNE : 0); return 1;
    case SSI_RXFLR: ssi_end(d); *value = d->rx_len; return 1;
    case SSI_DR0: ssi_end(d); *value = ssi_pop(d); return 1;
    default: return 0;
    }
}

int sim_ssi_write(void *dev, uint32_t offset, uint32_t size, uint64_t value)
{
    ssi_native *d = (ssi_native *)dev;
    if (!d->poll_ok || size != 4 || offset != SSI_DR0 || d->rx_len == SSI_POLL_RX) return 0;
    uint32_t byte = (uint32_t)value & 0xFFu, reply = 0xFFu;
    if (ssi_outover(d) == SS_OUTOVER_HIGH) {
        /* CS forced high: the byte goes nowhere, 0xFF comes back */
    } else if (!d->cmd) {
        if (byte != FLASH_CMD_READ_STATUS1 && byte != FLASH_CMD_READ_STATUS2) return 0;
        d->selected = 1;
        d->cmd = byte;
        d->nargs = 0;
    } else {
        d->nargs++;
        reply = d->cmd == FLASH_CMD_READ_STATUS2 ? d->sr2
              : (d->sr1 & ~FLASH_SR1_BUSY) | (ssi_now(d) < d->busy_until ? FLASH_SR1_BUSY : 0);
    }
    d->rx[(d->rx_head + d->rx_len) % SSI_POLL_RX] = reply & 0xFFu;
    d->rx_len++;
    return 1;
}

/* IO_QSPI GPIO_QSPI_SS_CTRL, plain word accesses (the atomic aliases go to Python). */
int sim_qspi_ss_read(void *dev, uint32_t offset, uint32_t size, uint64_t *value)
{
    ssi_native *d = (ssi_native *)dev;
    if (!d->poll_ok || size != 4 || offset != IO_QSPI_SS_CTRL) return 0;
    *value = d->ss_ctrl;
    return 1;
}

int sim_qspi_ss_write(void *dev, uint32_t offset, uint32_t size, uint64_t value)
{
    ssi_native *d = (ssi_native *)dev;
    if (!d->poll_ok || size != 4 || offset != IO_QSPI_SS_CTRL) return 0;
    d->ss_ctrl = (uint32_t)value;
    d->ss_written = 1;
    if (ssi_outover(d) == SS_OUTOVER_LOW) {
        if (!d->selected) { d->selected = 1; d->cmd = 0; }      /* CS low: the chip waits for a command */
    } else {
        d->selected = 0;                                         /* CS high: a status command just ends */
        d->cmd = 0;
    }
    return 1;
}

ssi_native *sim_ssi_new(sim_state *time_a)
{
    ssi_native *d = calloc(1, sizeof(ssi_native));
    if (d) d->time_a = time_a;
    return d;
}

uint32_t sim_ssi_size(void) { return sizeof(ssi_native); }
void sim_ssi_set_time_b(ssi_native *d, sim_state *time_b) { d->time_b = time_b; }
void sim_ssi_free(ssi_native *d) { free(d); }

/* Set the native register set of a port (dev NULL: none). */
void sim_port_set_native(mmio_port *p, void *dev, void *read, void *write)
{
    p->dev = dev;
    p->native_read = (native_read_fn)read;
    p->native_write = (native_write_fn)write;
}

/* ---- API for Python (ctypes) ------------------------------------------------------------------------------ */
sim_state *sim_new(void)
{
    sim_state *s = calloc(1, sizeof(sim_state));
    if (!s) return NULL;
    s->mask = 4096 - 1;
    s->table = calloc(s->mask + 1, sizeof(block_t));
    if (!s->table) { free(s); return NULL; }
    s->budget = UINT64_MAX;
    s->min_sp = 0xffffffffu;
    s->xip_miss_penalty = 56;
    s->xip_cache_enabled = 1;
    s->xip = &s->own_xip;
    return s;
}

void sim_free(sim_state *s) { if (s) { free(s->table); free(s); } }

void sim_bind(sim_state *s, uc_engine *uc, void *mem_read, void *reg_read, void *emu_stop)
{
    s->uc = uc;
    s->mem_read = (uc_mem_read_fn)mem_read;
    s->reg_read = (uc_reg_read_fn)reg_read;
    s->emu_stop = (uc_emu_stop_fn)emu_stop;
}

uint32_t sim_state_size(void) { return sizeof(sim_state); }
uint32_t sim_block_size(void) { return sizeof(block_t); }

/* Forget the previous block (a new emu_start begins at an arbitrary address, not a branch). */
void sim_reset_prev(sim_state *s) { s->prev = NULL; s->stop_reason = STOP_NONE; s->stop_before = 0; }

/* The run stopped between blocks and `next_pc` is where the program goes next: charge the taken-branch cycle of
 * the last block as its successor's hook would have, so a stop and resume costs nothing extra. */
void sim_settle(sim_state *s, uint32_t next_pc)
{
    block_t *p = s->prev;
    if (p && p->last_kind == LAST_COND_BRANCH && (next_pc & ~1u) != p->addr + p->size) {
        s->cycles++;
        p->total_cycles++;
    }
    s->prev = NULL;
}

/* An MMIO store stopped the run in the middle of the last block (Unicorn aborts the block right after the
 * access): take back the static cost of the instructions from `resume` to the block's end, which did not run and
 * will be charged again when they do. Their XIP fetch stalls stay: the lines were fetched, and refetching them
 * hits the cache. Returns the cycles taken back. */
uint32_t sim_abort_block(sim_state *s, uint32_t resume)
{
    block_t *p = s->prev;
    s->prev = NULL;
    if (!p || resume < p->addr || resume >= p->addr + p->size) return 0;
    uint8_t buf[4096 + 4];
    uint32_t n = p->addr + p->size - resume;
    if (n > 4096) n = 4096;
    memset(buf, 0, sizeof buf);
    if (s->mem_read(s->uc, resume, buf, n) != 0) return 0;
    uint32_t cycles = 0, insns = 0, flags = 0, off = 0; int cond;
    while (off < n) {
        uint32_t c = 1;
        off += decode_one(buf[off] | (buf[off + 1] << 8), buf[off + 2] | (buf[off + 3] << 8), &c, &flags, &cond);
        cycles += c; insns++;
    }
    s->cycles -= cycles;
    s->instructions -= insns;
    p->total_cycles -= cycles;
    return cycles;
}

/* End address of the last block that ran (0 = none). */
uint32_t sim_prev_end(sim_state *s) { return s->prev ? s->prev->addr + s->prev->size : 0; }

void sim_set_other_event(sim_state *s, uint32_t *other) { s->other_event = other; }

/* Charge extra cycles (bus penalties decided in Python peripheral callbacks) to the running block. */
void sim_add_cycles(sim_state *s, int64_t delta) { charge(s, delta); }

void sim_xip_flush(sim_state *s) { memset(s->xip, 0, sizeof *s->xip); }

/* Core `s` looks up and fills the cache of `with` from now on (NULL: its own again). */
void sim_share_xip(sim_state *s, sim_state *with) { s->xip = with ? with->xip : &s->own_xip; }

/* Snapshot and restore of the cache (eval restores the post-boot cache before every image). */
uint32_t sim_xip_state_size(void) { return sizeof(xip_cache_t); }
void sim_xip_save(sim_state *s, uint8_t *out) { memcpy(out, s->xip, sizeof *s->xip); }
void sim_xip_load(sim_state *s, const uint8_t *in) { memcpy(s->xip, in, sizeof *s->xip); }

/* Profile export: fills up to `max` entries of (addr, size, insns, execs, total_cycles). */
uint32_t sim_profile(sim_state *s, uint32_t *addr, uint32_t *size, uint64_t *execs, uint64_t *cycles, uint32_t max)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i <= s->mask && k < max; i++) {
        block_t *b = &s->table[i];
        if (!b->used || !b->execs) continue;
        addr[k] = b->addr; size[k] = b->size; execs[k] = b->execs; cycles[k] = b->total_cycles;
        k++;
    }
    return k;
}

/* Static cost of one block decoded from given bytes (for tests of the timing table). */
uint32_t sim_decode_cost(const uint8_t *code, uint32_t n, uint32_t *insns, uint32_t *cond_last)
{
    uint32_t cycles = 0, flags = 0, off = 0, count = 0; int cond = 0;
    while (off + 1 < n) {
        uint16_t hw = code[off] | (code[off + 1] << 8);
        uint16_t hw2 = off + 3 < n ? (code[off + 2] | (code[off + 3] << 8)) : 0;
        uint32_t c = 1;
        off += decode_one(hw, hw2, &c, &flags, &cond);
        cycles += c; count++;
    }
    *insns = count; *cond_last = cond;
    return cycles;
}

uint32_t sim_block_count(sim_state *s) { return s->count; }

/* Forget every decoded block (code was replaced behind Unicorn's back, e.g. a new flash image). */
void sim_forget_blocks(sim_state *s)
{
    memset(s->table, 0, (size_t)(s->mask + 1) * sizeof(block_t));
    s->count = 0;
    s->prev = NULL;
}
