/* Optimised int8 conv2d for the Cortex-M0+ (conv.h); byte-identical to conv_q8_ref.c.
 *
 * conv2d, no im2col: an NHWC window is kh runs of kw * C contiguous bytes, the conv8 weights walk the window in the
 * same order, so each group of 8 output channels is the dense kernel's 8-lane dot product (int8_dense_m0.c) over
 * those runs: per window byte, LDRB x + 2 x [LDM word + 4 extract + 4 MULS + 4 ADD] = 30 cycles for 8 MACs. Lanes
 * 0, 2, 4, 6 are stored + 128, so S_even = A_even - 256 * A_odd - 128 * X with X = sum of the window bytes, which
 * is computed once per output pixel (a SWAR byte sum) and shared by all groups.
 * - Interior windows (inside the input) are read in place: kh runs of any length (a run enters the 16-byte
 *   unrolled body at byte 16 - length mod 16 through a computed jump), the next one a row (in_w * C bytes) further;
 *   a first layer with one input channel reads its 3 x 3 window as three runs of 3 bytes, without copying it and
 *   without the layout's zero padding.
 * - A window that crosses the border is first copied into `scratch` with padding cells = `pad` (whole words when C
 *   is a multiple of 4) and zeros up to the layout's padded length, then read as one run.
 * - One call does up to 4 groups (32 outputs), then one output-stage call for them.
 * - Zero skipping when pad == 0 (the input's zero point is the byte 0: ReLU outputs): pz_q8_conv_dot8z_m0.
 * - Few outputs per pixel (K <= 32: first layers, pointwise convs of few channels), where the per-pixel set-up
 *   dominated: the windows inside the input go in batches of up to 8 pixels per call of one loop
 *   (pz_q8_conv_px8*_m0, px8_for), the run geometry worked out once per call, the window sums from shared byte
 *   columns, and for layers with one-multiply records and K a multiple of 8 the output stage run on the lanes in
 *   registers (conv2d_small_k). There a row with border windows runs whole from a band of its k_h input rows
 *   copied into the scratch with the padding (band_pitch, band_fill) instead of pixel by pixel through gather.
 *
 * depthwise 3x3: dwconv_q8_m0.c (it shares the output stage below through conv_q8_m0.h).
 *
 * Output stage: see requant_init (four exact paths: one multiply with the build's records, small accumulators, high
 * word, general). */
#include "conv.h"
#include "int8_impl.h"
#include "int8_mac_m0.h"
#include "conv_q8_m0.h"

/* Code placement. The XIP cache (datasheet 2.6.3.1) has 2 ways of 8 kB: a layer runs from flash without conflict
 * misses only if no cache set holds more than two of its hot lines. Here each path's hot code is kept together, so
 * it spans less than one way (at most one line per set), and the weights, records and multipliers of a layer, which
 * lie together in flash, then cannot push it out unless they span more than a way themselves. GCC emits file-scope
 * assembly before the C functions and orders the C functions by its call graph; an object's sections come in the
 * order they are first named, so naming them here first (-ffunction-sections: one per function) fixes the order:
 * the per-pixel path (dot products, output stages, their C driver; 5.8 kB), then the small-K path (its loops around
 * its C driver, each loop within 6 kB of it). Measured in rp2040_sim (pd_mobilenet, 64 kB build, one core): with
 * the order left to GCC, the same code ran 245.9-252.0 ms depending on what came before it. */
#if PZ_Q8_M0_ASM
#define PZ_M0_SECTION(NAME) "    .pushsection .text." NAME ", \"ax\", %progbits\n    .popsection\n"
__asm__(
    PZ_M0_SECTION("pz_q8_conv_dot8_m0")
    PZ_M0_SECTION("pz_q8_conv_dot8z_m0")
    PZ_M0_SECTION("pz_q8_requant_run_m0")
    PZ_M0_SECTION("pz_q8_requant_small_m0")
    PZ_M0_SECTION("pz_q8_requant_small_relu_m0")
    PZ_M0_SECTION("pz_q8_requant_rec_m0")
    PZ_M0_SECTION("sum_bytes")
    PZ_M0_SECTION("gather")
    PZ_M0_SECTION("requant_init")
    PZ_M0_SECTION("pz_conv2d_q8_m0")
    PZ_M0_SECTION("pz_q8_conv_px8r_m0")
    PZ_M0_SECTION("pz_q8_conv_px8zr_m0")
    PZ_M0_SECTION("pz_q8_conv_px8zs_m0")
    PZ_M0_SECTION("pz_q8_conv_px8s_m0")
    PZ_M0_SECTION("conv2d_small_k")
    PZ_M0_SECTION("conv_pixels")
    PZ_M0_SECTION("pz_q8_requant_rec_px_m0")
    PZ_M0_SECTION("pz_q8_conv_px8sr_m0")
    PZ_M0_SECTION("pz_q8_conv_px8zsr_m0")
    PZ_M0_SECTION("band_fill")
);
#endif

typedef struct {
    uint32_t run_bytes;  /* bytes per run, > 0 */
    uint32_t skip;       /* from the end of one run to the start of the next */
    uint32_t runs;       /* > 0 */
    uint32_t x128;       /* 128 * (sum of the window bytes the runs cover) */
    uint32_t groups;     /* groups of 8 output channels to do, > 0 */
    uint32_t group_bytes;
} pz_conv_runs_t;

#define PZ_CONV_GROUPS_PER_CALL 4u  /* 32 accumulators on the stack */

/* A batch of output pixels for the small-K path (conv_pixels, K <= 32): windows `step` apart, every one inside the
 * input, kh runs each; the Thumb-1 loops (pz_q8_conv_px8*_m0) read span .. hi in this order. */
typedef struct pz_conv_px {
    uint32_t span;         /* lead + run_bytes (a multiple of 16): from a run's first byte - lead to its end */
    uint32_t skip_adj;     /* skip - lead: from the end of one run to the next run's first byte - lead */
    uint32_t window;       /* runs * (run_bytes + skip) */
    uint32_t lead;         /* (16 - run_bytes mod 16) mod 16: the unrolled body's steps before a run's first byte */
    uint32_t groups;       /* all of K: <= PZ_CONV_GROUPS_PER_CALL */
    uint32_t group_bytes;
    uint32_t pixels;       /* > 0 */
    uint32_t step;         /* from one window to the next: stride_w * C */
    const uint32_t *x128;  /* 128 * each window's byte sum */
    uint8_t *y;            /* the _r loops (output stage fused): the first pixel's outputs */
    const int32_t *rq;     /* the _r loops: the layer's records (conv.h rq) */
    uint32_t add, lo, hi;  /* the _r loops: out_zp + out_xor, act_min + out_xor, act_max + out_xor */
    uint32_t run_bytes, skip, runs;  /* as pz_conv_runs_t (the portable version's) */
    uint32_t cell_step, cell_kw;     /* step / C, run_bytes / C: batch_sums' cells (no division per batch) */
} pz_conv_px_t;

/* Accumulators of one batch (on the stack) and its pixels: at most 8 windows are read before the batch's first
 * output is written (the order docs/FIRMWARE.md promises for outputs written over their own input). */
#define PZ_CONV_PX_ACC 128u
#define PZ_CONV_PX_MAX 8u
#define PZ_CONV_PX_CELLS 32u  /* input columns whose sums a batch shares (batch_sums) */

/* The band of one output row (conv2d_small_k): the k_h input rows its windows read, each from the first window's
 * first column to the last window's last, padding cells = pad, one row every `pitch` bytes (a multiple of 4, so
 * that rows of whole words stay aligned). Layers with runs of at most PZ_CONV_BAND_RUN bytes that have windows
 * crossing the border (same padding) get one; 0: none. It depends only on the row geometry, so a row or channel
 * share of a layer (conv_layers.c) needs no more than the whole layer. Mirrored by firmware/convgen.py. */
#define PZ_CONV_BAND_RUN 32u
static uint32_t band_pitch(const pz_conv_shape_t *s) {
    const uint32_t cols = ((uint32_t)s->out_w - 1u) * s->stride_w + s->k_w;  /* band columns */
    const uint32_t rows = ((uint32_t)s->out_h - 1u) * s->stride_h + s->k_h;
    const int pointwise = s->k_h == 1 && s->k_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 &&
                          s->pad_left == 0 && s->in_w == s->out_w;
    const int border = s->pad_top || s->pad_left || rows > s->in_h || cols > s->in_w;
    if (pointwise || !border || (uint32_t)s->k_w * s->in_c > PZ_CONV_BAND_RUN) return 0;
    return (cols * s->in_c + 3u) & ~3u;
}

uint32_t pz_conv_q8_scratch_bytes(const pz_conv_shape_t *s, uint32_t depthwise) {
    if (depthwise) {
        return (s->k_h == 3 && s->k_w == 3) ? pz_dwconv_q8_m0_scratch_bytes(s) : 0u;
    }
    const uint32_t window = ((uint32_t)s->k_h * s->k_w * s->in_c + 3u) & ~3u, band = s->k_h * band_pitch(s);
    return band > window ? band : window;
}

/* Sum of n bytes at p (any alignment; words when aligned). */
static uint32_t sum_bytes(const uint8_t *p, uint32_t n) {
    uint32_t total = 0;
    while (n && ((uintptr_t)p & 3u)) { total += *p++; n--; }
    while (n >= 4) {
        uint32_t chunk = n > 512u ? 512u : n & ~3u;  /* <= 128 words: 16-bit lanes hold 128 * 510 */
        const pz_word_alias *w = (const pz_word_alias *)p;
        uint32_t lanes = 0;
        for (uint32_t i = 0; i < chunk / 4u; i++) {
            uint32_t v = w[i];
            lanes += v & 0x00FF00FFu;
            lanes += (v >> 8) & 0x00FF00FFu;
        }
        total += (lanes & 0xFFFFu) + (lanes >> 16);
        p += chunk;
        n -= chunk;
    }
    while (n--) total += *p++;
    return total;
}

#if PZ_Q8_M0_ASM
void pz_q8_conv_dot8_m0(const uint8_t *x, const uint8_t *w, const pz_conv_runs_t *r, uint32_t *A);


/* One lane pair's accumulators (r6 even, r7 odd; r1 = 128 X) stored at A + off0, A + off1. */
#define PZ_CONV_PAIR(off0, off1)            \
    "    lsls  r4, r7, #8\n"                 \
    "    subs  r6, r6, r4\n"                 \
    "    subs  r6, r6, r1\n"                 \
    "    str   r6, [r3, #" off0 "]\n"        \
    "    str   r7, [r3, #" off1 "]\n"

/* The 8 lanes (r6, r7, r8 .. r12, lr; r1 = 128 X) as 8 accumulators at r3 .. r3 + 28, pair by pair (the dot
 * products' epilogue and the px8 loops' PZ_CONV_PX_TO_ACC). */
#define PZ_CONV_STORE_LANES \
    PZ_CONV_PAIR("0", "4") \
    "    mov   r6, r8\n" \
    "    mov   r7, r9\n" \
    PZ_CONV_PAIR("8", "12") \
    "    mov   r6, r10\n" \
    "    mov   r7, r11\n" \
    PZ_CONV_PAIR("16", "20") \
    "    mov   r6, r12\n" \
    "    mov   r7, lr\n" \
    PZ_CONV_PAIR("24", "28")

/* A conv8 group's header (r1, advancing past it): its 8 initial lane values into r6, r7, r8 .. r12, lr in order
 * (words 0 and 1 wait in r2, r3 while the high registers are filled through r4..r7). */
#define PZ_CONV_HEADER_LANES \
    "    ldm   r1!, {r2, r3, r4, r5}\n" \
    "    ldm   r1!, {r6, r7}\n" \
    "    mov   r8, r4\n" \
    "    mov   r9, r5\n" \
    "    mov   r10, r6\n" \
    "    mov   r11, r7\n" \
    "    ldm   r1!, {r4, r5}\n" \
    "    mov   r12, r4\n" \
    "    mov   lr, r5\n" \
    "    mov   r6, r2\n" \
    "    mov   r7, r3\n"

/* Bytes 1..15 of the 16-byte unrolled MAC body that PZ_CONV_DOT8_FN and PZ_CONV_PX8_FN jump into (byte 0 comes
 * before their entry label). */
#define PZ_CONV_MAC_K_1_15(MAC_K) \
    MAC_K("1") \
    MAC_K("2") \
    MAC_K("3") \
    MAC_K("4") \
    MAC_K("5") \
    MAC_K("6") \
    MAC_K("7") \
    MAC_K("8") \
    MAC_K("9") \
    MAC_K("10") \
    MAC_K("11") \
    MAC_K("12") \
    MAC_K("13") \
    MAC_K("14") \
    MAC_K("15")

/* The second 16-byte half of the fused short-run loops' body (PZ_CONV_PX8_FN's MORE, after the first half's
 * bytes 0..15): r0 += 16, then the same 16 steps. A run of 17..32 bytes enters the first half at byte
 * 16 - run mod 16, a run of at most 16 the second one (PZ_CONV_PX_SECOND_HALF_ENTRY), so it costs what it costs in
 * a 16-byte body. Label 4: the second half's byte 0, where the entry adds 16 steps and the ADDS. */
#define PZ_CONV_SECOND_HALF(MAC_K, MAC_K_BYTES) \
    "    adds  r0, #16\n" \
    "4:\n" \
    MAC_K("0") \
    PZ_CONV_MAC_K_1_15(MAC_K) \
    "    .if (4b - 13b) != 16 * " MAC_K_BYTES " + 2\n" \
    "    .error \"the second half is not 16 steps and an ADDS after the first\"\n" \
    "    .endif\n"
/* r5 = the entry into the first half: a run of at most 16 bytes (span = lead + run = 16) enters the second. */
#define PZ_CONV_PX_SECOND_HALF_ENTRY(MAC_K_BYTES) \
    "    ldr   r3, [sp, #20]\n" \
    "    cmp   r3, #16\n" \
    "    bhi   7f\n" \
    "    movs  r3, #" MAC_K_BYTES "\n" \
    "    lsls  r3, r3, #4\n" \
    "    adds  r3, #2\n" \
    "    adds  r5, r5, r3\n" \
    "7:\n"

/* r0 = x, r1 = the first group (32-byte header, then weights; 4-byte aligned), r2 = runs, r3 = acc[8 groups] (bias +
 * dot product per channel). Frame: [sp] = end of this run, [sp+4] = skip, [sp+8] = runs left, [sp+12] = acc of this
 * group, [sp+16] = run bytes, [sp+20] = 128 X, [sp+24] = x, [sp+28] = runs, [sp+32] = groups left, [sp+36] = group
 * bytes, [sp+40] = this group. Several groups per call: the call and register saves once per pixel, not per group.
 * Each run enters the 16-byte unrolled body part way, at byte 16 - j for j = run bytes mod 16 (Duff's device at byte
 * granularity: every MAC_K step of one body is the same size, MAC_K_BYTES, which the assembler checks). */
#define PZ_CONV_DOT8_FN(NAME, MAC_K, MAC_K_BYTES) \
__asm__( \
    PZ_M0_FUNC(NAME) \
    PZ_M0_SAVE_R4_R11 \
    "    sub   sp, #44\n" \
    "    str   r0, [sp, #24]\n" \
    "    str   r3, [sp, #12]\n" \
    "    ldm   r2!, {r3, r4, r5, r6, r7}\n"  /* run bytes, skip, runs, x128, groups */ \
    "    str   r3, [sp, #16]\n" \
    "    str   r4, [sp, #4]\n" \
    "    str   r5, [sp, #28]\n" \
    "    str   r6, [sp, #20]\n" \
    "    str   r7, [sp, #32]\n" \
    "    ldm   r2!, {r3}\n"                  /* group bytes */ \
    "    str   r3, [sp, #36]\n" \
    "7:\n"                                   /* next group: r1 = its header */ \
    "    str   r1, [sp, #40]\n" \
    "    ldr   r4, [sp, #28]\n" \
    "    str   r4, [sp, #8]\n" \
    "    ldr   r0, [sp, #24]\n" \
    PZ_CONV_HEADER_LANES \
    "0:\n"                            /* next run: r0 = its first byte */ \
    "    ldr   r4, [sp, #16]\n" \
    "    adds  r5, r0, r4\n" \
    "    str   r5, [sp]\n" \
    "    lsls  r4, r4, #28\n" \
    "    lsrs  r4, r4, #28\n"        /* j = bytes mod 16 */ \
    "    beq   1f\n" \
    "    subs  r4, #16\n" \
    "    adds  r0, r0, r4\n"         /* x -= 16 - j: the first LDRB done reads x[0] */ \
    "    movs  r5, #" MAC_K_BYTES "\n" \
    "    muls  r4, r5, r4\n" \
    "    mov   r5, pc\n"             /* the address of this instruction + 4 = label 9 */ \
    "    subs  r5, r5, r4\n" \
    "9:\n" \
    "    adds  r5, #(1f - 9b)\n" \
    "    mov   pc, r5\n"             /* into the body at byte 16 - j */ \
    "1:\n" \
    MAC_K("0") \
    "2:\n" \
    PZ_CONV_MAC_K_1_15(MAC_K) \
    "    .if (2b - 1b) != " MAC_K_BYTES "\n" \
    "    .error \"MAC_K_BYTES is not the size of one PZ_Q8_MAC_K\"\n" \
    "    .endif\n" \
    PZ_Q8_NEXT_BLOCK16 \
    "    ldr   r4, [sp, #4]\n" \
    "    adds  r0, r0, r4\n" \
    "    ldr   r4, [sp, #8]\n" \
    "    subs  r4, #1\n" \
    "    str   r4, [sp, #8]\n" \
    "    beq   4f\n" \
    "    b     0b\n" \
    "4:\n"                            /* acc_even = A_even - 256 A_odd - 128 X, acc_odd = A_odd */ \
    "    ldr   r3, [sp, #12]\n" \
    "    ldr   r1, [sp, #20]\n" \
    PZ_CONV_STORE_LANES \
    "    adds  r3, #32\n" \
    "    str   r3, [sp, #12]\n" \
    "    ldr   r4, [sp, #32]\n" \
    "    subs  r4, #1\n" \
    "    str   r4, [sp, #32]\n" \
    "    beq   8f\n" \
    "    ldr   r1, [sp, #40]\n" \
    "    ldr   r4, [sp, #36]\n" \
    "    adds  r1, r1, r4\n" \
    "    b     7b\n" \
    "8:\n" \
    "    add   sp, #44\n" \
    PZ_M0_RESTORE_R4_R11_RETURN \
    "    .size   " NAME ", . - " NAME "\n" \
    "    .popsection\n");
/* The same with zero skipping, for inputs whose zero point is the byte 0 (pad == 0: ReLU / ReLU6 outputs, whose
 * zeros are exact and many): an input byte 0 adds exactly nothing to any lane, folded bias or 128 X, so its two
 * weight words are stepped over: 7 cycles instead of 30, and 33 instead of 30 for a non-zero byte (it pays from
 * about 1 zero in 9). */
#define PZ_Q8_MAC_K_SKIP0(off)                                                 \
    "    ldrb  r2, [r0, #" off "]\n"                                          \
    "    cmp   r2, #0\n"                                                      \
    "    bne   5f\n"                                                          \
    "    adds  r1, #8\n"                                                      \
    "    b     6f\n"                                                          \
    "5:\n"                                                                    \
    PZ_Q8_MAC_WORD("adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9")    \
    PZ_Q8_MAC_WORD("add   r10", "add   r11", "add   r12", "add   lr")         \
    "6:\n"
#define PZ_Q8_MAC_K_SKIP0_BYTES "62"

void pz_q8_conv_dot8z_m0(const uint8_t *x, const uint8_t *w, const pz_conv_runs_t *r, uint32_t *A);
PZ_CONV_DOT8_FN("pz_q8_conv_dot8_m0", PZ_Q8_MAC_K, PZ_Q8_MAC_K_BYTES)
PZ_CONV_DOT8_FN("pz_q8_conv_dot8z_m0", PZ_Q8_MAC_K_SKIP0, PZ_Q8_MAC_K_SKIP0_BYTES)
#else
/* acc[0..8) of one group: header + lane sums over the runs, combined (portable version of the assembly). */
static void dot8_group_c(const uint8_t *x, const uint8_t *w, const pz_conv_runs_t *r, uint32_t *A) {
    for (uint32_t i = 0; i < 8; i++, w += 4) {
        A[i] = (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24;
    }
    for (uint32_t run = 0; run < r->runs; run++) {
        for (uint32_t k = 0; k < r->run_bytes; k++, w += 8) {
            int32_t v = x[k];
            for (uint32_t h = 0; h < 8; h += 4) {
                uint32_t W = (uint32_t)w[h] | (uint32_t)w[h + 1] << 8 | (uint32_t)w[h + 2] << 16 |
                             (uint32_t)w[h + 3] << 24;
                int32_t lo = (int32_t)((W & 0xFFFFu) ^ 0x8000u) - 0x8000;  /* sxth */
                int32_t hi = (int32_t)((W >> 16) ^ 0x8000u) - 0x8000;      /* asr 16 */
                A[h + 0] += (uint32_t)(lo * v);
                A[h + 1] += (uint32_t)((lo >> 8) * v);
                A[h + 2] += (uint32_t)(hi * v);
                A[h + 3] += (uint32_t)((hi >> 8) * v);
            }
        }
        x += r->run_bytes + r->skip;
    }
    for (uint32_t i = 0; i < 8; i += 2) A[i] = A[i] - 256u * A[i + 1] - r->x128;
}

static void dot8_c(const uint8_t *x, const uint8_t *w, const pz_conv_runs_t *r, uint32_t *A) {
    for (uint32_t g = 0; g < r->groups; g++) dot8_group_c(x, w + g * r->group_bytes, r, A + 8u * g);
}

static void px8_c(const uint8_t *x, const uint8_t *w, const pz_conv_px_t *p, uint32_t *A) {
    pz_conv_runs_t r = {p->run_bytes, p->skip, p->runs, 0, p->groups, p->group_bytes};
    for (uint32_t i = 0; i < p->pixels; i++, x += p->step, A += 8u * p->groups) {
        r.x128 = p->x128[i];
        dot8_c(x, w, &r, A);
    }
}

#endif

/* The output stage for the M0+: the product in four MULS and a branch-free 64-bit shift by t = 31 + shift with
 * register shifts (LSL/LSR by 32 or more give 0 on ARMv6-M, which C cannot express); GCC's uint64_t code for the
 * same spills to the stack. */
#if PZ_Q8_M0_ASM
static inline uint32_t shl_m0(uint32_t v, uint32_t n) {  /* v << n, 0 when n >= 32 */
    __asm__("lsl %0, %1" : "+l"(v) : "l"(n) : "cc");
    return v;
}

/* round_half_up(acc * m / 2^t) saturated to [-2^30, 2^30], as pz_q8_requantize_i. GCC handles Thumb-1 inline
 * assembly in divided syntax, where LSL/LSR/ORR/ADD/ADC/MUL/UXTH are the flag-setting 16-bit forms. */
static inline int32_t requantize_m0(int32_t acc, uint32_t m, uint32_t t) {
    const uint32_t neg = acc < 0;
    uint32_t a = neg ? 0u - (uint32_t)acc : (uint32_t)acc, lo, hi, x, y;
    /* hi:lo = a * m from four 16 x 16 products (a <= 2^31, m < 2^31: the middle sum fits 32 bits) */
    __asm__("lsr %[x], %[a], #16\n\t"
            "uxth %[a], %[a]\n\t"
            "lsr %[y], %[m], #16\n\t"
            "uxth %[m], %[m]\n\t"
            "mov %[lo], %[a]\n\t"
            "mul %[lo], %[m]\n\t"     /* a0 m0 */
            "mul %[a], %[y]\n\t"      /* a0 m1 */
            "mov %[hi], %[x]\n\t"
            "mul %[hi], %[y]\n\t"     /* a1 m1 */
            "mul %[x], %[m]\n\t"      /* a1 m0 */
            "add %[a], %[x]\n\t"      /* mid */
            "lsr %[x], %[a], #16\n\t"
            "lsl %[a], %[a], #16\n\t"
            "add %[lo], %[a]\n\t"
            "adc %[hi], %[x]"
            : [lo] "=&l"(lo), [hi] "=&l"(hi), [x] "=&l"(x), [y] "=&l"(y), [a] "+l"(a), [m] "+l"(m) : : "cc");
    /* + 2^(t-1), - 1 when acc < 0 (round half up of the negative product), as a 64-bit constant */
    uint32_t rlo = shl_m0(1u, t - 1u), rhi = shl_m0(1u, t - 33u);
    if (neg) {
        rhi -= rlo == 0u;
        rlo -= 1u;
    }
    /* q = (hi:lo + rhi:rlo) >> t with register shifts (0 for amounts of 32 or more): lo >> t | hi << 32 - t |
     * hi >> t - 32; ov = hi >> t is non-zero when q needs more than 32 bits */
    uint32_t up = 32u - t, ov;
    __asm__("add %[lo], %[rlo]\n\t"
            "adc %[hi], %[rhi]\n\t"
            "mov %[ov], %[hi]\n\t"
            "lsr %[ov], %[t]\n\t"
            "lsr %[lo], %[t]\n\t"
            "mov %[rlo], %[hi]\n\t"
            "lsl %[rlo], %[up]\n\t"
            "orr %[lo], %[rlo]\n\t"
            "neg %[up], %[up]\n\t"
            "lsr %[hi], %[up]\n\t"
            "orr %[lo], %[hi]"
            : [lo] "+l"(lo), [hi] "+l"(hi), [rlo] "+l"(rlo), [up] "+l"(up), [ov] "=&l"(ov)
            : [rhi] "l"(rhi), [t] "l"(t) : "cc");
    if (ov != 0u || lo > (1u << 30)) lo = 1u << 30;
    return neg ? -(int32_t)lo : (int32_t)lo;
}

/* floor(acc * m / 2^32) for m < 2^31, from 16-bit halves (MULS is single-cycle): acc = ah 2^16 + al (ah signed),
 * m = mh 2^16 + ml, A = ah ml = A_h 2^16 + A_l; the high word is ah mh + A_h + (A_l + al mh + (al ml >> 16)) >> 16,
 * every partial sum fitting 32 bits (the last one unsigned, < 2^32). 18 instructions, no branch. */
static inline int32_t mulhi_m0(int32_t acc, uint32_t m) {
    uint32_t ah, al, mh, t1, t2;
    __asm__("asr %[ah], %[acc], #16\n\t"
            "uxth %[al], %[acc]\n\t"
            "lsr %[mh], %[m], #16\n\t"
            "uxth %[m], %[m]\n\t"
            "mov %[t1], %[al]\n\t"
            "mul %[t1], %[m]\n\t"      /* al ml */
            "lsr %[t1], %[t1], #16\n\t"
            "mul %[al], %[mh]\n\t"     /* al mh < 2^31 */
            "add %[t1], %[al]\n\t"
            "mov %[t2], %[ah]\n\t"
            "mul %[t2], %[m]\n\t"      /* A = ah ml, signed, |A| < 2^31 */
            "uxth %[al], %[t2]\n\t"
            "asr %[t2], %[t2], #16\n\t"
            "add %[t1], %[al]\n\t"
            "lsr %[t1], %[t1], #16\n\t"
            "add %[t1], %[t2]\n\t"
            "mul %[ah], %[mh]\n\t"     /* ah mh */
            "add %[t1], %[ah]"
            : [ah] "=&l"(ah), [al] "=&l"(al), [mh] "=&l"(mh), [t1] "=&l"(t1), [t2] "=&l"(t2), [m] "+l"(m)
            : [acc] "l"(acc) : "cc");
    return (int32_t)t1;
}

/* pz_q8_out_i (int8_impl.h) bit for bit. Total shift t >= 33 (every layer whose scale s_in s_w / s_out is below
 * 1/4, i.e. nearly all): round_half_up(acc m / 2^t) = (hi + 2^(t-33)) >> (t - 32) with hi = floor(acc m / 2^32),
 * because the low word only adds a fraction below 1 to hi before the floor; |hi| < 2^30, so no saturation.
 * Smaller t: requantize_m0's full 64-bit path. */
static inline uint8_t out_m0(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp, int32_t act_min,
                             int32_t act_max, uint32_t out_xor) {
    int32_t v;
    if (acc <= 0 && act_min >= out_zp) {
        v = act_min;
    } else {
        if (shift >= 2) {
            const uint32_t s = (uint32_t)shift - 1u;  /* t - 32 */
            v = ((mulhi_m0(acc, (uint32_t)multiplier) + (1 << (s - 1u))) >> s) + out_zp;
        } else {
            v = requantize_m0(acc, (uint32_t)multiplier, (uint32_t)(31 + shift)) + out_zp;
        }
        if (v < act_min) v = act_min;
        if (v > act_max) v = act_max;
    }
    return (uint8_t)((uint8_t)(int8_t)v ^ out_xor);
}
#define PZ_CONV_OUT out_m0
#else
#define PZ_CONV_OUT pz_q8_out_i
#endif

#if PZ_Q8_M0_ASM  /* the offsets the Thumb-1 loops load */
_Static_assert(__builtin_offsetof(pz_conv_px_t, x128) == 32 && __builtin_offsetof(pz_conv_px_t, hi) == 52,
               "pz_conv_px_t offsets");
_Static_assert(__builtin_offsetof(pz_requant_run_t, rq) == 36 && __builtin_offsetof(pz_requant_run_t, pixels) == 60 &&
               __builtin_offsetof(pz_requant_run_t, acc_skip) == 64, "pz_requant_run_t offsets");
#endif

#if PZ_Q8_M0_ASM
void pz_q8_requant_run_m0(const pz_requant_run_t *r);
void pz_q8_requant_small_m0(const pz_requant_run_t *r);
void pz_q8_requant_small_relu_m0(const pz_requant_run_t *r);
void pz_q8_requant_rec_m0(const pz_requant_run_t *r);
void pz_q8_requant_rec_px_m0(const pz_requant_run_t *r);
/* The batched conv2d loops and output stage (the end of this file; pz_conv2d_q8_m0: px8_for). */
void pz_q8_conv_px8s_m0(const uint8_t *x, const uint8_t *w, const struct pz_conv_px *p, uint32_t *A);
void pz_q8_conv_px8zs_m0(const uint8_t *x, const uint8_t *w, const struct pz_conv_px *p, uint32_t *A);
void pz_q8_conv_px8r_m0(const uint8_t *x, const uint8_t *w, const struct pz_conv_px *p, uint32_t *A);
void pz_q8_conv_px8zr_m0(const uint8_t *x, const uint8_t *w, const struct pz_conv_px *p, uint32_t *A);
void pz_q8_conv_px8sr_m0(const uint8_t *x, const uint8_t *w, const struct pz_conv_px *p, uint32_t *A);
void pz_q8_conv_px8zsr_m0(const uint8_t *x, const uint8_t *w, const struct pz_conv_px *p, uint32_t *A);
#endif

/* The "small accumulator" output stage. For |acc| < 2^20 the product acc * m (m < 2^31) splits over three 11-bit
 * pieces of m = m2 2^22 + m1 2^11 + m0 with every partial product inside int32 (|acc m1| + |acc m0| / 2^11 < 2^31):
 *   X = floor(acc m / 2^22) = acc m2 + ((acc m1 + (acc m0 >> 11)) >> 11)     (>> = floor, exact nesting)
 * and round_half_up(acc m / 2^t) = ((X >> (t - 23)) + 1) >> 1 = ((X >> (shift + 8)) + 1) >> 1: 3 MULS instead of
 * the 4 of the high word plus its rounding constant. An arithmetic shift by 32 or more (ARMv6-M register shifts,
 * here written out for C) gives the sign, i.e. q = 0, as the exact value is then 0 too (|X| < 2^29). */
static inline int32_t asr_any(int32_t v, uint32_t n) {
    return n >= 31u ? (v < 0 ? -1 : 0) : (v >> n);
}

static inline uint8_t out_small(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp, int32_t act_min,
                                int32_t act_max, uint32_t out_xor) {
    int32_t v;
    if (acc <= 0 && act_min >= out_zp) {
        v = act_min;
    } else {
        const uint32_t m = (uint32_t)multiplier;
        int32_t u = (acc * (int32_t)(m & 0x7FFu)) >> 11;
        u = (acc * (int32_t)((m >> 11) & 0x7FFu) + u) >> 11;
        const int32_t x = acc * (int32_t)(m >> 22) + u;
        v = ((asr_any(x, (uint32_t)shift + 8u) + 1) >> 1) + out_zp;
        if (v < act_min) v = act_min;
        if (v > act_max) v = act_max;
    }
    return (uint8_t)((uint8_t)(int8_t)v ^ out_xor);
}

#define PZ_SMALL_ACC ((1 << 20) - 1)

/* Whether channel accumulators bias + sum(xu * w) with xu in [0, 255] all stay within +-PZ_SMALL_ACC: the range of
 * each channel from its folded bias and the sums of its negative and positive weights. */
static int small_range(int32_t bias, int32_t neg, int32_t pos) {
    if (bias < -PZ_SMALL_ACC || bias > PZ_SMALL_ACC) return 0;
    return bias + 255 * neg >= -PZ_SMALL_ACC && bias + 255 * pos <= PZ_SMALL_ACC;
}

/* conv8: only windows of <= 32 indices are checked (a pass over K * 32 weight bytes at most, once per call; larger
 * windows rarely fit and the output stage matters less there); depthwise: every channel's 9 taps. */
static uint32_t accs_small(const pz_q8_conv_t *l, uint32_t depthwise) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t taps = (uint32_t)s->k_h * s->k_w;
    if (depthwise) {
        for (uint32_t c = 0; c < s->in_c; c++) {
            const uint8_t *rec = pz_q8_dw_record(l, c);
            int32_t neg = 0, pos = 0;
            for (uint32_t i = 0; i < taps; i++) {
                int32_t w = (int8_t)rec[4 + i];
                if (w < 0) neg += w; else pos += w;
            }
            int32_t b = (int32_t)((uint32_t)rec[0] | (uint32_t)rec[1] << 8 | (uint32_t)rec[2] << 16 |
                                  (uint32_t)rec[3] << 24);
            if (!small_range(b, neg, pos)) return 0;
        }
        return 1;
    }
    const uint32_t n = taps * s->in_c;
    if (n > 32u) return 0;
    for (uint32_t k = 0; k < s->out_c; k++) {
        int32_t neg = 0, pos = 0;
        for (uint32_t i = 0; i < n; i++) {
            int32_t w = pz_q8_conv_weight(l, k, i);
            if (w < 0) neg += w; else pos += w;
        }
        if (!small_range(pz_q8_conv_bias(l, k), neg, pos)) return 0;
    }
    return 1;
}

static void requant_init(pz_requant_run_t *r, const pz_q8_conv_t *l, uint32_t channels, uint32_t depthwise) {
    r->lo = l->act_min - l->out_zp;
    r->hi = l->act_max - l->out_zp;
    r->add = l->out_zp + l->out_xor;
    r->cut = l->act_min >= l->out_zp ? 1 : INT32_MIN;
    r->fast = PZ_Q8_M0_ASM && (l->out_xor & 0x7Fu) == 0;
    uint32_t nonneg = 1;
    for (uint32_t k = 0; k < channels; k++) {
        r->fast &= l->shift[k] >= 2;
        nonneg &= l->shift[k] >= 0;
    }
    /* records (firmware/requant.py): built only for act_min <= out_zp; cut exactly when act_min = out_zp */
    r->rec = l->rq != 0 && (!PZ_Q8_M0_ASM || (l->out_xor & 0x7Fu) == 0);
    r->rq = l->rq;
    r->mult0 = l->multiplier;
    r->small = 0;
    if (!r->rec) {  /* accs_small's weight pass only where the records are not there */
        r->small = nonneg && (!PZ_Q8_M0_ASM || (l->out_xor & 0x7Fu) == 0) && accs_small(l, depthwise);
        if (r->small && l->act_min == l->out_zp) r->small = 2u;  /* fused ReLU: no lower clamp needed */
    }
#if PZ_Q8_M0_ASM
    r->stage = r->rec        ? pz_q8_requant_rec_m0
             : r->small == 2u ? pz_q8_requant_small_relu_m0
             : r->small      ? pz_q8_requant_small_m0
             : r->fast       ? pz_q8_requant_run_m0
                             : 0;
#else
    r->stage = 0;
#endif
}

#if PZ_Q8_M0_ASM
/* r0 = the run. High registers: r8 = acc, r9 = mult, r10 = shift, r11 = y, r12 = &lo, lr = n; r7 = i. Per output:
 * loads and the ReLU test, mulhi_m0's 18 instructions, the rounding shift, clamp, add, store. */
__asm__(
    PZ_M0_FUNC("pz_q8_requant_run_m0")
    PZ_M0_SAVE_R4_R11
    "    ldm   r0!, {r1, r2, r3, r4, r5}\n"  /* acc, y, mult, shift, n; r0 = &lo */
    "    mov   r8, r1\n"
    "    mov   r11, r2\n"
    "    mov   r9, r3\n"
    "    mov   r10, r4\n"
    "    mov   lr, r5\n"
    "    mov   r12, r0\n"
    "    movs  r7, #0\n"
    "1:\n"
    "    lsls  r6, r7, #2\n"
    "    mov   r0, r8\n"
    "    ldr   r0, [r0, r6]\n"       /* acc */
    "    mov   r5, r12\n"
    "    ldr   r2, [r5, #12]\n"      /* cut */
    "    cmp   r0, r2\n"
    "    blt   5f\n"
    "    mov   r1, r9\n"
    "    ldr   r1, [r1, r6]\n"       /* m */
    "    mov   r2, r10\n"
    "    ldrsb r2, [r2, r7]\n"       /* shift >= 2 */
    "    uxth  r3, r0\n"             /* al */
    "    asrs  r0, r0, #16\n"        /* ah */
    "    lsrs  r4, r1, #16\n"        /* mh */
    "    uxth  r1, r1\n"             /* ml */
    "    movs  r5, r3\n"
    "    muls  r5, r1, r5\n"         /* al ml */
    "    lsrs  r5, r5, #16\n"
    "    muls  r3, r4, r3\n"         /* al mh */
    "    adds  r5, r5, r3\n"
    "    movs  r6, r0\n"
    "    muls  r6, r1, r6\n"         /* A = ah ml */
    "    uxth  r3, r6\n"
    "    asrs  r6, r6, #16\n"
    "    adds  r5, r5, r3\n"
    "    lsrs  r5, r5, #16\n"
    "    adds  r5, r5, r6\n"
    "    muls  r0, r4, r0\n"         /* ah mh */
    "    adds  r5, r5, r0\n"         /* hi = floor(acc m / 2^32) */
    "    subs  r2, r2, #2\n"
    "    movs  r3, #1\n"
    "    lsls  r3, r3, r2\n"         /* 2^(t-33) */
    "    adds  r5, r5, r3\n"
    "    adds  r2, r2, #1\n"
    "    asrs  r5, r5, r2\n"         /* q = (hi + 2^(t-33)) >> (t - 32) */
    "    mov   r6, r12\n"
    "    ldm   r6!, {r2, r3, r4}\n"  /* lo, hi, add */
    "    cmp   r5, r2\n"
    "    bge   2f\n"
    "    movs  r5, r2\n"
    "2:\n"
    "    cmp   r5, r3\n"
    "    ble   3f\n"
    "    movs  r5, r3\n"
    "3:\n"
    "    adds  r5, r5, r4\n"
    "    mov   r6, r11\n"
    "    strb  r5, [r6, r7]\n"
    "    adds  r7, #1\n"
    "    cmp   r7, lr\n"
    "    bne   1b\n"
    PZ_M0_RESTORE_R4_R11_RETURN
    "5:\n"                            /* acc <= 0 under a fused ReLU: act_min */
    "    ldm   r5!, {r2, r3, r4}\n"
    "    movs  r5, r2\n"
    "    b     3b\n"
    "    .size   pz_q8_requant_run_m0, . - pz_q8_requant_run_m0\n"
    "    .popsection\n");


/* out_small over a run (r->small set). Low registers: r0 = acc, r1 = mult, r7 = shift (all advancing), r2 = acc,
 * r3 = m, r4-r6 temporaries; high: r8 = lo, r9 = hi, r10 = add, r11 = cut, r12 = the end of acc, lr = y - shift
 * (y[i] is written at shift + i + lr). Per output: 38 cycles when the result is inside the clamp, 17 on the fused
 * ReLU's cut. */
#define PZ_REQUANT_SMALL_FN(NAME, LOWER) \
__asm__( \
    PZ_M0_FUNC(NAME) \
    PZ_M0_SAVE_R4_R11 \
    "    ldm   r0!, {r1, r2, r3, r4, r5}\n"  /* acc, y, mult, shift, n */ \
    "    lsls  r5, r5, #2\n" \
    "    adds  r5, r5, r1\n" \
    "    mov   r12, r5\n" \
    "    subs  r2, r2, r4\n" \
    "    mov   lr, r2\n" \
    "    ldm   r0!, {r2, r5, r6, r7}\n"      /* lo, hi, add, cut */ \
    "    mov   r8, r2\n" \
    "    mov   r9, r5\n" \
    "    mov   r10, r6\n" \
    "    mov   r11, r7\n" \
    "    movs  r0, r1\n" \
    "    movs  r1, r3\n" \
    "    movs  r7, r4\n" \
    "1:\n" \
    "    ldm   r0!, {r2}\n"                 /* acc */ \
    "    cmp   r2, r11\n" \
    "    blt   5f\n" \
    "    ldm   r1!, {r3}\n"                 /* m */ \
    "    lsls  r4, r3, #21\n" \
    "    lsrs  r4, r4, #21\n"               /* m0 */ \
    "    muls  r4, r2, r4\n" \
    "    asrs  r4, r4, #11\n" \
    "    lsls  r5, r3, #10\n" \
    "    lsrs  r5, r5, #21\n"               /* m1 */ \
    "    muls  r5, r2, r5\n" \
    "    adds  r5, r5, r4\n" \
    "    asrs  r5, r5, #11\n" \
    "    lsrs  r3, r3, #22\n"               /* m2 */ \
    "    muls  r3, r2, r3\n" \
    "    adds  r3, r3, r5\n"                /* X = floor(acc m / 2^22) */ \
    "    ldrb  r6, [r7]\n" \
    "    adds  r6, #8\n" \
    "    asrs  r3, r6\n" \
    "    adds  r3, #1\n" \
    "    asrs  r3, r3, #1\n"                /* q */ \
    LOWER \
    "    cmp   r3, r9\n" \
    "    ble   3f\n" \
    "    mov   r3, r9\n" \
    "3:\n" \
    "    add   r3, r10\n" \
    "    mov   r6, lr\n" \
    "    strb  r3, [r7, r6]\n" \
    "    adds  r7, #1\n" \
    "    cmp   r0, r12\n" \
    "    bne   1b\n" \
    PZ_M0_RESTORE_R4_R11_RETURN \
    "5:\n"                                  /* acc <= 0 under a fused ReLU: act_min */ \
    "    adds  r1, #4\n" \
    "    mov   r3, r8\n" \
    "    b     3b\n" \
    "    .size   " NAME ", . - " NAME "\n" \
    "    .popsection\n");
/* The lower clamp; the _relu variant leaves it out: it is used when act_min = out_zp (a fused ReLU / ReLU6), where
 * every accumulator that reaches the multiply is >= 1 (the cut) and so q >= 0 = lo, 3 cycles less per output. */
#define PZ_REQUANT_LOWER_CLAMP \
    "    cmp   r3, r8\n"     \
    "    bge   2f\n"         \
    "    mov   r3, r8\n"     \
    "2:\n"
PZ_REQUANT_SMALL_FN("pz_q8_requant_small_m0", PZ_REQUANT_LOWER_CLAMP)
PZ_REQUANT_SMALL_FN("pz_q8_requant_small_relu_m0", "")

/* One output of the one-multiply stage (pz_q8_requant_rec_m0), its byte stored at label STORE; acc <= L branches
 * to LOW, acc >= A to HIGH (out of line: they skip the record's last word, load the clamp, return to STORE). */
#define PZ_REC_OUTPUT(STORE, LOW, HIGH) \
    "    ldm   r0!, {r2}\n"                 /* acc */ \
    "    ldm   r1!, {r3, r4}\n"             /* L, A */ \
    "    cmp   r2, r3\n" \
    "    ble   " LOW "f\n" \
    "    cmp   r2, r4\n" \
    "    bge   " HIGH "f\n" \
    "    ldm   r1!, {r4}\n"                 /* w */ \
    "    lsrs  r3, r4, #8\n"                /* m' */ \
    "    muls  r2, r3, r2\n" \
    "    asrs  r2, r4\n"                    /* floor(x / 2^s), C = bit s - 1 of x */ \
    "    adcs  r2, r6\n"                    /* q + add */ \
    STORE ":\n" \
    "    strb  r2, [r5, r7]\n"
#define PZ_REC_SATURATED(LABEL, CLAMP, STORE) \
    LABEL ":\n" \
    "    adds  r1, #4\n" \
    "    mov   r2, " CLAMP "\n" \
    "    b     " STORE "b\n"

/* The one-multiply stage over a run (r->rec set; the records of its channels from rq, mult0 and mult; firmware/
 * requant.py): per output LDM
 * acc, LDM the record's {L, A}; acc <= L writes act_min, acc >= A act_max (a fused ReLU's cut is L >= 0); else LDM
 * w = m' << 8 | s, m' = w >> 8, x = acc m' (exact: the build checked it for every accumulator between), ASRS x by w
 * (a register shift takes w's low byte, s >= 1) leaves floor(x / 2^s) with the last bit shifted out in the carry,
 * and ADCS adds it and add = out_zp + out_xor at once: round_half_up(x / 2^s) + add, the golden value, strictly
 * inside the clamp, so no clamp. The byte store drops the rest (out_xor 0x80 = + 0x80 modulo 256); y is indexed
 * from its end by a count -n..-1, so ADDS sets the loop's flags. Two outputs per pass (an odd run enters at the
 * second): 19 cycles per output (16 at act_min, 18 at act_max). Low registers: r0 = acc, r1 = records (both
 * advancing), r5 = y + n, r6 = add, r7 = -count; high: r8 = act_min + out_xor (= lo + add), r9 = act_max +
 * out_xor. */
__asm__(
    PZ_M0_FUNC("pz_q8_requant_rec_m0")
    PZ_M0_SAVE_R4_R11
    "    ldm   r0!, {r1, r2, r3, r4, r5}\n"  /* acc, y, mult, shift (unused), n */
    "    ldr   r4, [r0, #20]\n"              /* mult0 */
    "    subs  r3, r3, r4\n"
    "    lsls  r4, r3, #1\n"
    "    adds  r3, r3, r4\n"                 /* 3 (mult - mult0): PZ_Q8_RQ_WORDS words per 4-byte multiplier */
    "    ldr   r4, [r0, #16]\n"              /* rq */
    "    adds  r3, r3, r4\n"                 /* the records of mult[0]: rq + 3 (mult - mult0) */
    "    adds  r2, r2, r5\n"
    "    negs  r7, r5\n"
    "    movs  r5, r2\n"                     /* y + n */
    "    ldm   r0!, {r2, r4, r6}\n"          /* lo, hi, add */
    "    adds  r2, r2, r6\n"
    "    mov   r8, r2\n"
    "    adds  r4, r4, r6\n"
    "    mov   r9, r4\n"
    "    movs  r0, r1\n"
    "    movs  r1, r3\n"
    "    lsls  r2, r7, #31\n"                /* n odd: start with the second output of a pass */
    "    bne   2f\n"
    "1:\n"
    PZ_REC_OUTPUT("3", "5", "6")
    "    adds  r7, #1\n"                     /* never 0 here: an even count was left */
    "2:\n"
    PZ_REC_OUTPUT("4", "7", "8")
    "    adds  r7, #1\n"
    "    bne   1b\n"
    PZ_M0_RESTORE_R4_R11_RETURN
    PZ_REC_SATURATED("5", "r8", "3")
    PZ_REC_SATURATED("6", "r9", "3")
    PZ_REC_SATURATED("7", "r8", "4")
    PZ_REC_SATURATED("8", "r9", "4")
    "    .size   pz_q8_requant_rec_m0, . - pz_q8_requant_rec_m0\n"
    "    .popsection\n");
#endif

/* The plain C output stage (the fallback, and the host build). */
__attribute__((noinline)) void pz_q8_requant_c(const pz_requant_run_t *r, const int32_t *acc, uint8_t *y, uint32_t n,
                                               const int32_t *mult, const int8_t *shift, const pz_q8_conv_t *l) {
    if (r->rec) {  /* the records (pz_q8_requant_rec_m0) */
        mult = r->rq + PZ_Q8_RQ_WORDS * (uint32_t)(mult - r->mult0);
        for (uint32_t i = 0; i < n; i++, mult += PZ_Q8_RQ_WORDS) {
            int32_t v;
            if (acc[i] <= mult[0]) {
                v = l->act_min;
            } else if (acc[i] >= mult[1]) {
                v = l->act_max;
            } else {
                const uint32_t w = (uint32_t)mult[2];
                const int32_t x = (int32_t)((uint32_t)acc[i] * (w >> 8));
                v = ((asr_any(x, (w & 0xFFu) - 1u) + 1) >> 1) + l->out_zp;  /* floor nesting: exact rounding */
            }
            y[i] = (uint8_t)((uint8_t)(int8_t)v ^ l->out_xor);
        }
        return;
    }
    if (r->small) {
        for (uint32_t i = 0; i < n; i++) {
            y[i] = out_small(acc[i], mult[i], shift[i], l->out_zp, l->act_min, l->act_max, l->out_xor);
        }
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        y[i] = PZ_CONV_OUT(acc[i], mult[i], shift[i], l->out_zp, l->act_min, l->act_max, l->out_xor);
    }
}

/* The output stage for the depthwise kernel (dwconv_q8_m0.c, through conv_q8_m0.h): requant_init as it is. */
void pz_q8_requant_init(pz_requant_run_t *r, const pz_q8_conv_t *l, uint32_t channels, uint32_t depthwise) {
    requant_init(r, l, channels, depthwise);
}

/* Copy the window of output (oy, ox) into dst (k_h * k_w * C bytes, then zeros up to a multiple of 4), padding
 * cells = pad. Plain loops, and GCC
 * told not to turn them into memcpy/memset calls: the kernels link without a C library (kernel_harness.py). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void gather(const pz_q8_conv_t *l, const uint8_t *xu, uint32_t oy, uint32_t ox, uint8_t *dst) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, n_win = (uint32_t)s->k_h * s->k_w * C;
    for (uint32_t i = n_win; i < ((n_win + 3u) & ~3u); i++) dst[i] = 0;  /* the layout's zero-weight padding */
    /* whole words when every cell is: C a multiple of 4, x and dst 4-byte aligned (scratch is) */
    const int words = (C & 3u) == 0 && ((uintptr_t)xu & 3u) == 0;
    const uint32_t pad4 = l->pad * 0x01010101u;
    for (uint32_t dy = 0; dy < s->k_h; dy++) {
        int32_t iy = (int32_t)(oy * s->stride_h + dy) - s->pad_top;
        for (uint32_t dx = 0; dx < s->k_w; dx++, dst += C) {
            int32_t ix = (int32_t)(ox * s->stride_w + dx) - s->pad_left;
            if (iy < 0 || ix < 0 || iy >= s->in_h || ix >= s->in_w) {
                if (words) {
                    for (uint32_t c = 0; c < C; c += 4) *(pz_word_alias *)(void *)(dst + c) = pad4;
                } else {
                    for (uint32_t c = 0; c < C; c++) dst[c] = l->pad;
                }
            } else {
                const uint8_t *src = xu + ((uint32_t)iy * s->in_w + (uint32_t)ix) * C;
                if (words) {
                    for (uint32_t c = 0; c < C; c += 4) {
                        *(pz_word_alias *)(void *)(dst + c) = *(const pz_word_alias *)(const void *)(src + c);
                    }
                } else {
                    for (uint32_t c = 0; c < C; c++) dst[c] = src[c];
                }
            }
        }
    }
}

/* The sum of a window's bytes: `runs` runs of run_bytes, `row` apart (X of the lanes' - 128 X). */
static inline __attribute__((always_inline)) uint32_t window_sum(const uint8_t *x, uint32_t runs, uint32_t run_bytes,
                                                                uint32_t row) {
    uint32_t X = 0;
    if (run_bytes < 8u) {  /* short runs (a first layer's 3 x 1 bytes): bytewise, no word set-up */
        for (uint32_t i = 0; i < runs; i++) {
            const uint8_t *p = x + i * row;
            for (uint32_t b = 0; b < run_bytes; b++) X += p[b];
        }
    } else if ((runs > 1u || run_bytes <= 32u) && ((run_bytes | row | (uint32_t)(uintptr_t)x) & 3u) == 0
               && run_bytes * runs <= 512u) {
        /* several runs, or one short one, of whole aligned words (C a multiple of 4): one pass of 16-bit lanes over
         * the window (<= 128 words: a lane holds 128 * 510), folded once, instead of a sum_bytes call per run (a
         * long single run, pointwise from 64 channels, is a little faster through sum_bytes) */
        const uint32_t words = run_bytes / 4u;
        uint32_t lanes = 0;
        for (uint32_t i = 0; i < runs; i++) {
            const pz_word_alias *p = (const pz_word_alias *)(const void *)(x + i * row), *end = p + words;
            for (; p != end; p++) {
                const uint32_t v = *p;
                lanes += v & 0x00FF00FFu;
                lanes += (v >> 8) & 0x00FF00FFu;
            }
        }
        X = (lanes & 0xFFFFu) + (lanes >> 16);
    } else {
        for (uint32_t i = 0; i < runs; i++) X += sum_bytes(x + i * row, run_bytes);
    }
    return X;
}

typedef void (*pz_dot8_fn)(const uint8_t *, const uint8_t *, const pz_conv_runs_t *, uint32_t *);

/* All K outputs of one pixel whose window is x with runs r (X and groups still to fill in): calls of up to
 * PZ_CONV_GROUPS_PER_CALL groups, each followed by the output stage of its outputs. */
static inline __attribute__((always_inline)) void conv_pixel(const pz_q8_conv_t *l, pz_requant_run_t *rq,
                                                            pz_dot8_fn dot8, const uint8_t *x, pz_conv_runs_t *r,
                                                            uint32_t row, uint32_t group_bytes, uint32_t last_groups,
                                                            uint8_t *y) {
    const uint32_t K = l->s.out_c;
    const uint32_t X = window_sum(x, r->runs, r->run_bytes, row);
    r->x128 = X * 128u;
    const uint8_t *w = l->w;
    uint32_t acc[8u * PZ_CONV_GROUPS_PER_CALL];
    r->group_bytes = group_bytes;
    r->groups = PZ_CONV_GROUPS_PER_CALL;
    uint32_t j0 = 0;
    for (; j0 + 8u * PZ_CONV_GROUPS_PER_CALL < K; j0 += 8u * PZ_CONV_GROUPS_PER_CALL) {
        dot8(x, w, r, acc);
        pz_q8_requant_run(rq, (const int32_t *)acc, y + j0, 8u * PZ_CONV_GROUPS_PER_CALL, l->multiplier + j0,
                          l->shift + j0, l);
        w += PZ_CONV_GROUPS_PER_CALL * group_bytes;
    }
    r->groups = last_groups;  /* the last call: up to PZ_CONV_GROUPS_PER_CALL groups, K - j0 outputs */
    dot8(x, w, r, acc);
    pz_q8_requant_run(rq, (const int32_t *)acc, y + j0, K - j0, l->multiplier + j0, l->shift + j0, l);
}

typedef void (*pz_px8_fn)(const uint8_t *, const uint8_t *, const pz_conv_px_t *, uint32_t *);

static void conv2d_small_k(const pz_q8_conv_t *l, pz_requant_run_t *rq, pz_dot8_fn dot8, pz_px8_fn px8,
                           uint32_t fused, const uint8_t *xu, uint8_t *y);

/* The batched loop of a layer with K <= 32 (conv2d_small_k), or NULL for the per-pixel path; *fused: it runs the
 * output stage itself. [fused][zero skipping][short runs: at most 32 bytes fused, 16 otherwise]: the output stage is
 * fused for layers with one-multiply records and K a multiple of 8 (every group whole); others store accumulators,
 * which only the short-run loops do (a first layer with K = 12), longer runs take the per-pixel path. */
static pz_px8_fn px8_for(const pz_q8_conv_t *l, const pz_requant_run_t *rq, uint32_t *fused) {
#if PZ_Q8_M0_ASM
    static const pz_px8_fn loops[2][2][2] = {
        {{0, pz_q8_conv_px8s_m0}, {0, pz_q8_conv_px8zs_m0}},
        {{pz_q8_conv_px8r_m0, pz_q8_conv_px8sr_m0}, {pz_q8_conv_px8zr_m0, pz_q8_conv_px8zsr_m0}}};
    *fused = rq->stage == pz_q8_requant_rec_m0 && l->s.out_c % 8u == 0;
    return loops[*fused][l->pad == 0][(uint32_t)l->s.k_w * l->s.in_c <= (*fused ? 32u : 16u)];
#else
    (void)l;
    (void)rq;
    *fused = 0;
    return px8_c;
#endif
}

void pz_conv2d_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    if (pz_pwconv_q8_m0(l, xu, y)) return;  /* pointwise layers: pwconv_q8_m0.c */
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, K = s->out_c, n_win = ((uint32_t)s->k_h * s->k_w * C + 3u) & ~3u;
    const uint32_t row = (uint32_t)s->in_w * C, run = (uint32_t)s->k_w * C;
    const uint32_t group_bytes = 32u + 8u * n_win;
    const uint32_t last_groups = ((K - 1u) % (8u * PZ_CONV_GROUPS_PER_CALL)) / 8u + 1u;
    uint8_t *scratch = l->scratch;
    pz_requant_run_t rq;
    requant_init(&rq, l, K, 0);
#if PZ_Q8_M0_ASM
    /* the input's zero is the byte 0 (ReLU outputs): skip the zeros (exact, see pz_q8_conv_dot8z_m0) */
    const pz_dot8_fn dot8 = l->pad == 0 ? pz_q8_conv_dot8z_m0 : pz_q8_conv_dot8_m0;
#else
    const pz_dot8_fn dot8 = dot8_c;
#endif
    uint32_t fused;
    const pz_px8_fn px8 = K <= 8u * PZ_CONV_GROUPS_PER_CALL ? px8_for(l, &rq, &fused) : 0;
    if (px8) {  /* few outputs per pixel: batches of pixels per call */
        conv2d_small_k(l, &rq, dot8, px8, fused, xu, y);
        return;
    }
    pz_conv_runs_t r;
    if (s->k_h == 1 && s->k_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 && s->pad_left == 0 &&
        s->in_w == s->out_w) {
        /* pointwise: pixel p's window is the C bytes of input pixel p, no bounds to test */
        r.run_bytes = C;
        r.skip = 0;
        r.runs = 1;
        const uint8_t *x = xu;
        for (uint32_t p = (uint32_t)s->out_h * s->out_w; p; p--, x += C, y += K) {
            conv_pixel(l, &rq, dot8, x, &r, row, group_bytes, last_groups, y);
        }
        return;
    }
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        for (uint32_t ox = 0; ox < s->out_w; ox++, y += K) {
            int32_t ix0 = (int32_t)(ox * s->stride_w) - s->pad_left;
            const uint8_t *x;
            if (iy0 >= 0 && ix0 >= 0 && iy0 + s->k_h <= s->in_h && ix0 + s->k_w <= s->in_w) {
                x = xu + ((uint32_t)iy0 * s->in_w + (uint32_t)ix0) * C;  /* in place, any run length */
                r.run_bytes = run;
                r.skip = row - run;
                r.runs = s->k_h;
            } else {
                gather(l, xu, oy, ox, scratch);
                x = scratch;
                r.run_bytes = n_win;  /* padded to whole blocks with zero bytes and zero weights */
                r.skip = 0;
                r.runs = 1;
            }
            conv_pixel(l, &rq, dot8, x, &r, row, group_bytes, last_groups, y);
        }
    }
}

/* -- The small-K path (K <= 32): batches of pixels, their Thumb-1 loops, output stage and C driver (where they lie
 * in flash: the code placement table at the top). -- */
#if PZ_Q8_M0_ASM
/* Several output pixels per call (pz_conv2d_q8_m0's small-K path, K <= 32): the same lanes, header and MAC steps as
 * PZ_CONV_DOT8_FN, with the run geometry worked out once per call instead of once per run (a run's entry into the
 * unrolled body from `lead`, its end from `span`) and the call, register saves and frame set-up paid once per
 * `pixels` pixels rather than once per pixel. r0 = the first pixel's window, r1 = the first group's header, r2 = the
 * pz_conv_px_t, r3 = acc (groups * 8 per pixel, pixel after pixel). Frame: [sp] = end of this run, [sp+4] = entry
 * into the body, [sp+8] = skip_adj, [sp+12] = window, [sp+16] = this window's end, [sp+20] = span, [sp+24] = acc,
 * [sp+28] = x128 of this pixel, [sp+32] = this pixel's first run - lead, [sp+36] = groups, [sp+40] = groups left,
 * [sp+44] = group bytes, [sp+48] = this group, [sp+52] = the first group, [sp+56] = pixels left, [sp+60] = step. */
#define PZ_CONV_PX8_FN(NAME, MAC_K, MAC_K_BYTES, RUN_END, BLOCK_END, PIXEL_START, EPILOGUE, ENTRY, MORE) \
__asm__( \
    PZ_M0_FUNC(NAME) \
    PZ_M0_SAVE_R4_R11 \
    "    sub   sp, #92\n" \
    "    str   r3, [sp, #24]\n" \
    "    str   r1, [sp, #52]\n" \
    "    ldm   r2!, {r3, r4, r5, r6}\n"  /* span, skip_adj, window, lead */ \
    "    str   r3, [sp, #20]\n" \
    "    str   r4, [sp, #8]\n" \
    "    str   r5, [sp, #12]\n" \
    "    subs  r0, r0, r6\n"             /* the first LDRB of the entered body reads the run's first byte */ \
    "    str   r0, [sp, #32]\n" \
    "    movs  r5, #" MAC_K_BYTES "\n" \
    "    muls  r6, r5, r6\n" \
    "    ldm   r2!, {r3, r4, r5, r7}\n"  /* groups, group bytes, pixels, step */ \
    "    str   r3, [sp, #36]\n" \
    "    str   r4, [sp, #44]\n" \
    "    str   r5, [sp, #56]\n" \
    "    str   r7, [sp, #60]\n" \
    "    ldm   r2!, {r3}\n"              /* x128 */ \
    "    str   r3, [sp, #28]\n" \
    "    mov   r5, pc\n"                 /* the address of label 19 */ \
    "    adds  r5, r5, r6\n" \
    "19:\n" \
    "    adds  r5, #(13f - 19b)\n" \
    ENTRY \
    "    str   r5, [sp, #4]\n"           /* entry = body + lead steps */ \
    "    ldm   r2!, {r3, r4, r5, r6, r7}\n"  /* y, rq, add, lo, hi: the _r loops' output stage */ \
    "    str   r3, [sp, #64]\n" \
    "    str   r4, [sp, #88]\n" \
    "    str   r5, [sp, #72]\n" \
    "    str   r6, [sp, #76]\n" \
    "    str   r7, [sp, #80]\n" \
    "10:\n"                              /* next pixel */ \
    PIXEL_START \
    "    ldr   r4, [sp, #36]\n" \
    "    str   r4, [sp, #40]\n" \
    "    ldr   r0, [sp, #32]\n" \
    "    ldr   r4, [sp, #12]\n" \
    "    adds  r4, r0, r4\n" \
    "    str   r4, [sp, #16]\n"           /* the window's end */ \
    "    ldr   r1, [sp, #52]\n" \
    "11:\n"                              /* next group: r1 = its header */ \
    "    str   r1, [sp, #48]\n" \
    "    ldr   r0, [sp, #32]\n" \
    PZ_CONV_HEADER_LANES \
    "12:\n"                              /* next run: r0 = its first byte - lead */ \
    RUN_END \
    "    ldr   r5, [sp, #4]\n" \
    "    mov   pc, r5\n" \
    "13:\n" \
    MAC_K("0") \
    "14:\n" \
    PZ_CONV_MAC_K_1_15(MAC_K) \
    "    .if (14b - 13b) != " MAC_K_BYTES "\n" \
    "    .error \"MAC_K_BYTES is not the size of one PZ_Q8_MAC_K\"\n" \
    "    .endif\n" \
    MORE \
    "    adds  r0, #16\n" \
    BLOCK_END \
    "15:\n"                              /* the run's end: on to the next run, or the window is done */ \
    "    ldr   r4, [sp, #8]\n" \
    "    adds  r0, r0, r4\n" \
    "    ldr   r4, [sp, #16]\n" \
    "    cmp   r0, r4\n" \
    "    beq   16f\n" \
    "    b     12b\n" \
    "16:\n" \
    EPILOGUE \
    "    ldr   r4, [sp, #40]\n" \
    "    subs  r4, #1\n" \
    "    str   r4, [sp, #40]\n" \
    "    beq   17f\n" \
    "    ldr   r1, [sp, #48]\n" \
    "    ldr   r4, [sp, #44]\n" \
    "    adds  r1, r1, r4\n" \
    "    bl    11b\n"                     /* a long B: lr is free here, the header reloads it */ \
    "17:\n"                              /* the pixel's groups are done: the next pixel */ \
    "    ldr   r4, [sp, #28]\n" \
    "    adds  r4, #4\n" \
    "    str   r4, [sp, #28]\n" \
    "    ldr   r4, [sp, #32]\n" \
    "    ldr   r5, [sp, #60]\n" \
    "    adds  r4, r4, r5\n" \
    "    str   r4, [sp, #32]\n" \
    "    ldr   r4, [sp, #56]\n" \
    "    subs  r4, #1\n" \
    "    str   r4, [sp, #56]\n" \
    "    beq   18f\n" \
    "    bl    10b\n" \
    "18:\n" \
    "    add   sp, #92\n" \
    PZ_M0_RESTORE_R4_R11_RETURN \
    "    .size   " NAME ", . - " NAME "\n" \
    "    .popsection\n");
/* Runs of any length: the run's end ([sp]) set at its start and checked after every 16-byte block. */
#define PZ_CONV_PX_RUN_END \
    "    ldr   r4, [sp, #20]\n" \
    "    adds  r4, r0, r4\n" \
    "    str   r4, [sp]\n"
#define PZ_CONV_PX_BLOCK_END \
    "    ldr   r4, [sp]\n" \
    "    cmp   r0, r4\n" \
    "    beq   15f\n" \
    "    b     13b\n"

/* The group's accumulators to acc (the output stage runs after the call): acc_even = A_even - 256 A_odd - 128 X,
 * acc_odd = A_odd. */
#define PZ_CONV_PX_TO_ACC \
    "    ldr   r3, [sp, #24]\n" \
    "    ldr   r1, [sp, #28]\n" \
    "    ldr   r1, [r1]\n" \
    PZ_CONV_STORE_LANES \
    "    adds  r3, #32\n" \
    "    str   r3, [sp, #24]\n"

/* The _r loops: the one-multiply output stage (pz_q8_requant_rec_m0's per output, same records, same bytes) on the
 * lanes in registers, so accumulators are neither stored nor loaded again: per output LDM {L, A}, two compares, LDM
 * w, LSRS, MULS, ASRS, ADCS add, STRB y[i]. Lane S (r6 or r7), r0 = records (advancing), r1 = this group's y, r5 =
 * add; act_min / act_max + out_xor from the frame on the saturated paths (LOW, HIGH: out of line, after the
 * function's return). */
#define PZ_CONV_PX_OUT(S, I, LOW, HIGH, STORE) \
    "    ldm   r0!, {r3, r4}\n"             /* L, A */ \
    "    cmp   " S ", r3\n" \
    "    ble   " LOW "f\n" \
    "    cmp   " S ", r4\n" \
    "    bge   " HIGH "f\n" \
    "    ldm   r0!, {r4}\n"                 /* w = m' << 8 | s */ \
    "    lsrs  r3, r4, #8\n" \
    "    muls  " S ", r3, " S "\n" \
    "    asrs  " S ", r4\n" \
    "    adcs  " S ", r5\n" \
    STORE ":\n" \
    "    strb  " S ", [r1, #" I "]\n"
#define PZ_CONV_PX_SATURATED(S, LABEL, CLAMP_AT, STORE) \
    LABEL ":\n" \
    "    adds  r0, #4\n" \
    "    ldr   " S ", [sp, #" CLAMP_AT "]\n" \
    "    b     " STORE "b\n"
/* One lane pair (r6 even, r7 odd; `from` moves it there from the high registers), r2 = 128 X. */
#define PZ_CONV_PX_PAIR_OUT(FROM, I0, I1, N) \
    FROM \
    "    lsls  r4, r7, #8\n" \
    "    subs  r6, r6, r4\n" \
    "    subs  r6, r6, r2\n" \
    PZ_CONV_PX_OUT("r6", I0, "2" N "0", "2" N "1", "2" N "2") \
    PZ_CONV_PX_OUT("r7", I1, "2" N "3", "2" N "4", "2" N "5")
#define PZ_CONV_PX_PAIR_SAT(N) \
    PZ_CONV_PX_SATURATED("r6", "2" N "0", "76", "2" N "2") \
    PZ_CONV_PX_SATURATED("r6", "2" N "1", "80", "2" N "2") \
    PZ_CONV_PX_SATURATED("r7", "2" N "3", "76", "2" N "5") \
    PZ_CONV_PX_SATURATED("r7", "2" N "4", "80", "2" N "5")
/* Frame of the _r loops: [sp+64] = y of this group, [sp+68] = its records, [sp+72] = add = out_zp + out_xor, [sp+76]
 * = act_min + out_xor, [sp+80] = act_max + out_xor, [sp+88] = rq (every pixel restarts at channel 0's records; y
 * runs on: a pixel's groups hold its K outputs). r2 = 128 X (the output steps leave it alone). */
#define PZ_CONV_PX_REC_PIXEL \
    "    ldr   r4, [sp, #88]\n" \
    "    str   r4, [sp, #68]\n"
#define PZ_CONV_PX_REC \
    "    ldr   r0, [sp, #68]\n" \
    "    ldr   r1, [sp, #64]\n" \
    "    ldr   r5, [sp, #72]\n" \
    "    ldr   r2, [sp, #28]\n" \
    "    ldr   r2, [r2]\n" \
    PZ_CONV_PX_PAIR_OUT("", "0", "1", "0") \
    PZ_CONV_PX_PAIR_OUT("    mov   r6, r8\n    mov   r7, r9\n", "2", "3", "1") \
    PZ_CONV_PX_PAIR_OUT("    mov   r6, r10\n    mov   r7, r11\n", "4", "5", "2") \
    PZ_CONV_PX_PAIR_OUT("    mov   r6, r12\n    mov   r7, lr\n", "6", "7", "3") \
    "    adds  r1, #8\n" \
    "    str   r1, [sp, #64]\n" \
    "    str   r0, [sp, #68]\n" \
    "    b     29f\n" \
    PZ_CONV_PX_PAIR_SAT("0") \
    PZ_CONV_PX_PAIR_SAT("1") \
    PZ_CONV_PX_PAIR_SAT("2") \
    PZ_CONV_PX_PAIR_SAT("3") \
    "29:\n"

/* The variants: _s loops for short runs, which end after one pass through the unrolled body without a test (10 or
 * more cycles less per run): 16 bytes unrolled (a first layer's three 3-byte runs, pointwise convs of up to 16
 * channels), the fused _sr loops 32 in two halves (MORE: also 3x3 windows of 8-10 channels, three 24-30-byte runs;
 * runs of at most 16 enter the second half; their loop-backs past the longer body are BL); z: zero skipping (pad 0);
 * _r: the output stage fused (layers with one-multiply records and K a multiple of 8); the others store the
 * accumulators for pz_q8_requant_rec_px_m0 or pz_q8_requant_run. */
PZ_CONV_PX8_FN("pz_q8_conv_px8s_m0", PZ_Q8_MAC_K, PZ_Q8_MAC_K_BYTES, "", "", "", PZ_CONV_PX_TO_ACC, "", "")
PZ_CONV_PX8_FN("pz_q8_conv_px8zs_m0", PZ_Q8_MAC_K_SKIP0, PZ_Q8_MAC_K_SKIP0_BYTES, "", "", "", PZ_CONV_PX_TO_ACC, "",
               "")
PZ_CONV_PX8_FN("pz_q8_conv_px8r_m0", PZ_Q8_MAC_K, PZ_Q8_MAC_K_BYTES, PZ_CONV_PX_RUN_END, PZ_CONV_PX_BLOCK_END,
               PZ_CONV_PX_REC_PIXEL, PZ_CONV_PX_REC, "", "")
PZ_CONV_PX8_FN("pz_q8_conv_px8zr_m0", PZ_Q8_MAC_K_SKIP0, PZ_Q8_MAC_K_SKIP0_BYTES, PZ_CONV_PX_RUN_END,
               PZ_CONV_PX_BLOCK_END, PZ_CONV_PX_REC_PIXEL, PZ_CONV_PX_REC, "", "")
PZ_CONV_PX8_FN("pz_q8_conv_px8sr_m0", PZ_Q8_MAC_K, PZ_Q8_MAC_K_BYTES, "", "", PZ_CONV_PX_REC_PIXEL, PZ_CONV_PX_REC,
               PZ_CONV_PX_SECOND_HALF_ENTRY(PZ_Q8_MAC_K_BYTES), PZ_CONV_SECOND_HALF(PZ_Q8_MAC_K, PZ_Q8_MAC_K_BYTES))
PZ_CONV_PX8_FN("pz_q8_conv_px8zsr_m0", PZ_Q8_MAC_K_SKIP0, PZ_Q8_MAC_K_SKIP0_BYTES, "", "", PZ_CONV_PX_REC_PIXEL,
               PZ_CONV_PX_REC, PZ_CONV_PX_SECOND_HALF_ENTRY(PZ_Q8_MAC_K_SKIP0_BYTES),
               PZ_CONV_SECOND_HALF(PZ_Q8_MAC_K_SKIP0, PZ_Q8_MAC_K_SKIP0_BYTES))

/* pz_q8_requant_rec_m0 over `pixels` pixels of n outputs each (the small-K path, conv_pixels): the records restart
 * at every pixel, acc_skip bytes of unused accumulators (the last group's channels past K) follow each pixel's n, and
 * y advances by n. Per pixel about 12 cycles on top of the outputs, instead of a call (about 45). Low registers as
 * there; high: r8, r9 as there, r10 = the records of mult[0], r11 = n, r12 = pixels left, lr = acc_skip. */
__asm__(
    PZ_M0_FUNC("pz_q8_requant_rec_px_m0")
    PZ_M0_SAVE_R4_R11
    "    ldm   r0!, {r1, r2, r3, r4, r5}\n"  /* acc, y, mult, shift (unused), n */
    "    ldr   r4, [r0, #20]\n"              /* mult0 */
    "    subs  r3, r3, r4\n"
    "    lsls  r4, r3, #1\n"
    "    adds  r3, r3, r4\n"
    "    ldr   r4, [r0, #16]\n"              /* rq */
    "    adds  r3, r3, r4\n"
    "    mov   r10, r3\n"
    "    mov   r11, r5\n"
    "    ldr   r4, [r0, #40]\n"              /* pixels */
    "    mov   r12, r4\n"
    "    ldr   r4, [r0, #44]\n"              /* acc_skip */
    "    mov   lr, r4\n"
    "    adds  r5, r2, r5\n"                 /* y + n */
    "    ldm   r0!, {r2, r4, r6}\n"          /* lo, hi, add */
    "    adds  r2, r2, r6\n"
    "    mov   r8, r2\n"
    "    adds  r4, r4, r6\n"
    "    mov   r9, r4\n"
    "    movs  r0, r1\n"
    "10:\n"                                  /* next pixel */
    "    mov   r1, r10\n"
    "    mov   r7, r11\n"
    "    negs  r7, r7\n"
    "    lsls  r2, r7, #31\n"                /* n odd: start with the second output of a pass */
    "    bne   2f\n"
    "1:\n"
    PZ_REC_OUTPUT("3", "5", "6")
    "    adds  r7, #1\n"
    "2:\n"
    PZ_REC_OUTPUT("4", "7", "8")
    "    adds  r7, #1\n"
    "    bne   1b\n"
    "    add   r0, lr\n"
    "    add   r5, r11\n"
    "    mov   r2, r12\n"
    "    subs  r2, #1\n"
    "    mov   r12, r2\n"
    "    bne   10b\n"
    PZ_M0_RESTORE_R4_R11_RETURN
    PZ_REC_SATURATED("5", "r8", "3")
    PZ_REC_SATURATED("6", "r9", "3")
    PZ_REC_SATURATED("7", "r8", "4")
    PZ_REC_SATURATED("8", "r9", "4")
    "    .size   pz_q8_requant_rec_px_m0, . - pz_q8_requant_rec_px_m0\n"
    "    .popsection\n");
#endif

/* The output stage of n pixels' K outputs, kacc accumulators per pixel: one call of the one-multiply stage over all
 * of them, else one run per pixel. */
static void requant_pixels(pz_requant_run_t *rq, const int32_t *acc, uint8_t *y, uint32_t n, uint32_t kacc,
                           const pz_q8_conv_t *l) {
    const uint32_t K = l->s.out_c;
#if PZ_Q8_M0_ASM
    if (rq->stage == pz_q8_requant_rec_m0) {
        rq->acc = acc;
        rq->y = y;
        rq->mult = l->multiplier;
        rq->shift = l->shift;
        rq->n = K;
        rq->pixels = n;
        rq->acc_skip = 4u * (kacc - K);
        pz_q8_requant_rec_px_m0(rq);
        return;
    }
#endif
    for (uint32_t i = 0; i < n; i++) pz_q8_requant_run(rq, acc + i * kacc, y + i * K, K, l->multiplier, l->shift, l);
}

/* x128[i] = 128 * the byte sum of window i of a batch (conv_pixels). */
static void batch_sums(const uint8_t *x, const pz_conv_px_t *p, uint32_t n, uint32_t row, uint32_t C,
                       uint32_t *x128) {
    const uint32_t cols = (n - 1u) * p->step + p->run_bytes;
    uint16_t col[(PZ_CONV_PX_MAX - 1u) * 8u + 8u];  /* <= 255 rows of bytes; step <= run_bytes < 8 */
    if (p->run_bytes < 8u && cols <= sizeof col / sizeof col[0]) {
        /* short runs (few channels: a first layer's 3 x 1 bytes): neighbouring windows share columns, so each
         * byte column of the batch's span is summed over the runs once, then each window's run_bytes columns */
        if (p->runs == 3u) {  /* 3 x 3 kernels, unrolled */
            for (uint32_t b = 0; b < cols; b++) col[b] = (uint16_t)(x[b] + x[b + row] + x[b + 2u * row]);
        } else {
            for (uint32_t b = 0; b < cols; b++) {
                const uint8_t *q = x + b;
                uint32_t sum = 0;
                for (uint32_t r = p->runs; r; r--, q += row) sum += *q;
                col[b] = (uint16_t)sum;
            }
        }
        const uint16_t *c = col;
        if (p->run_bytes == 3u) {  /* 3-wide windows of one channel, unrolled */
            for (uint32_t i = 0; i < n; i++, c += p->step) x128[i] = 128u * ((uint32_t)c[0] + c[1] + c[2]);
        } else {
            for (uint32_t i = 0; i < n; i++, c += p->step) {
                uint32_t sum = 0;
                for (uint32_t b = 0; b < p->run_bytes; b++) sum += c[b];
                x128[i] = 128u * sum;
            }
        }
    } else if (p->runs == 1u && p->run_bytes <= 32u &&
               ((p->run_bytes | p->step | (uint32_t)(uintptr_t)x) & 3u) == 0) {
        /* one run of whole aligned words (pointwise, C a multiple of 4 up to 32): 16-bit lanes, folded once */
        const uint32_t words = p->run_bytes / 4u, step = p->step / 4u;
        const pz_word_alias *win = (const pz_word_alias *)(const void *)x;
        for (uint32_t i = 0; i < n; i++, win += step) {
            uint32_t lanes = 0;
            for (uint32_t k = 0; k < words; k++) {
                const uint32_t v = win[k];
                lanes += v & 0x00FF00FFu;
                lanes += (v >> 8) & 0x00FF00FFu;
            }
            x128[i] = 128u * ((lanes & 0xFFFFu) + (lanes >> 16));
        }
    } else if (p->runs > 1u && C % 4u == 0 && ((row | (uint32_t)(uintptr_t)x) & 3u) == 0 &&
               (n - 1u) * p->cell_step + p->cell_kw <= PZ_CONV_PX_CELLS && p->runs * C <= 512u) {
        /* several runs of whole aligned words (3x3 kernels on C a multiple of 4): windows step / C cells apart share
         * cells (the kh x C bytes of one input column), so each cell of the batch's span is summed once in 16-bit
         * lanes (<= 128 words), then each window's kw cells: at stride 1 one cell per pixel instead of kw */
        const uint32_t kw = p->cell_kw, s = p->cell_step, cells = (n - 1u) * s + kw, words = C / 4u;
        uint32_t cell[PZ_CONV_PX_CELLS];
        const uint8_t *c0 = x;
        for (uint32_t k = 0; k < cells; k++, c0 += C) {
            uint32_t lanes = 0;
            if (p->runs == 3u) {  /* 3 x 3 kernels: the three rows of a word together */
                const pz_word_alias *w = (const pz_word_alias *)(const void *)c0;
                const uint32_t r1 = row / 4u, r2 = 2u * r1;
                for (uint32_t j = 0; j < words; j++) {
                    const uint32_t u = w[j], v = w[j + r1], t = w[j + r2];
                    lanes += (u & 0x00FF00FFu) + ((u >> 8) & 0x00FF00FFu);
                    lanes += (v & 0x00FF00FFu) + ((v >> 8) & 0x00FF00FFu);
                    lanes += (t & 0x00FF00FFu) + ((t >> 8) & 0x00FF00FFu);
                }
            } else {
                const uint8_t *r = c0;
                for (uint32_t i = 0; i < p->runs; i++, r += row) {
                    const pz_word_alias *w = (const pz_word_alias *)(const void *)r;
                    for (uint32_t j = 0; j < words; j++) {
                        const uint32_t v = w[j];
                        lanes += v & 0x00FF00FFu;
                        lanes += (v >> 8) & 0x00FF00FFu;
                    }
                }
            }
            cell[k] = (lanes & 0xFFFFu) + (lanes >> 16);
        }
        const uint32_t *c = cell;
        if (kw == 3u) {  /* 3 x 3 kernels, unrolled */
            for (uint32_t i = 0; i < n; i++, c += s) x128[i] = 128u * (c[0] + c[1] + c[2]);
        } else {
            for (uint32_t i = 0; i < n; i++, c += s) {
                uint32_t sum = 0;
                for (uint32_t k = 0; k < kw; k++) sum += c[k];
                x128[i] = 128u * sum;
            }
        }
    } else {
        for (uint32_t i = 0; i < n; i++, x += p->step) x128[i] = 128u * window_sum(x, p->runs, p->run_bytes, row);
    }
}

/* n <= PZ_CONV_PX_MAX output pixels (n * 8 * groups <= PZ_CONV_PX_ACC accumulators) whose windows lie inside the
 * input, p->step apart from x on: their window sums, one dot-product call, one output-stage call. */
static void conv_pixels(const pz_q8_conv_t *l, pz_requant_run_t *rq, pz_px8_fn px8, uint32_t fused,
                        const uint8_t *x, pz_conv_px_t *p, uint32_t n, uint32_t row, uint8_t *y) {
    uint32_t x128[PZ_CONV_PX_MAX], acc[PZ_CONV_PX_ACC];
    batch_sums(x, p, n, row, l->s.in_c, x128);
    p->pixels = n;
    p->x128 = x128;
    p->y = y;
    px8(x, l->w, p, acc);
    if (!fused) requant_pixels(rq, (const int32_t *)acc, y, n, 8u * p->groups, l);
}

/* Copy n words (n > 0), four at a time where it can: LDM/STM of 4 registers, 13 cycles per 16 bytes instead of 32
 * for GCC's LDR/STR/ADDS/CMP/BNE loop word by word. */
static inline __attribute__((always_inline)) void copy_words(pz_word_alias *d, const pz_word_alias *q, uint32_t n) {
#if PZ_Q8_M0_ASM
    uint32_t quads = n / 4u;
    if (quads) {  /* fixed registers: an LDM/STM list is written in ascending order */
        __asm__ volatile("1:\n\t"
                         "ldm %[q]!, {r4, r5, r6, r7}\n\t"
                         "stm %[d]!, {r4, r5, r6, r7}\n\t"
                         "sub %[k], #1\n\t"
                         "bne 1b"
                         : [q] "+l"(q), [d] "+l"(d), [k] "+l"(quads) : : "r4", "r5", "r6", "r7", "cc", "memory");
    }
    n &= 3u;
#endif
    for (; n; n--) *d++ = *q++;
}

/* Fill the band of the output row whose windows start at input row iy0 (band_pitch): k_h rows of cols cells, input
 * column ix at cell ix + pad_left, cells outside the input = pad; whole words where the input row and its place in
 * the band are aligned (C a multiple of 4, or a first layer's rows of whole words). Plain loops, as gather. */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void band_fill(const pz_q8_conv_t *l, const uint8_t *xu, int32_t iy0, uint32_t pitch, uint8_t *band) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, row = (uint32_t)s->in_w * C, lead = (uint32_t)s->pad_left * C;
    const uint32_t cols = ((uint32_t)s->out_w - 1u) * s->stride_w + s->k_w;
    uint32_t inside = cols - s->pad_left;  /* input columns the band holds */
    if (inside > s->in_w) inside = s->in_w;
    const uint32_t n = inside * C, pad4 = l->pad * 0x01010101u;
    const int words = ((lead | row | (uint32_t)(uintptr_t)xu) & 3u) == 0;
    for (uint32_t dy = 0; dy < s->k_h; dy++, band += pitch) {
        const int32_t iy = iy0 + (int32_t)dy;
        pz_word_alias *w = (pz_word_alias *)(void *)band;
        if (iy < 0 || iy >= (int32_t)s->in_h) {  /* a row of padding: whole words (pitch is) */
            for (uint32_t b = 0; b < pitch; b += 4u) *w++ = pad4;
            continue;
        }
        const uint8_t *src = xu + (uint32_t)iy * row;
        uint32_t b = 0;
        if (words) {
            for (; b < lead; b += 4u) *w++ = pad4;
            if (n >= 4u) copy_words(w, (const pz_word_alias *)(const void *)src, n / 4u);
            src += n & ~3u;
            b += n & ~3u;
        } else {
            for (; b < lead; b++) band[b] = l->pad;
        }
        for (; b < lead + n; b++) band[b] = *src++;
        for (; b < cols * C && (b & 3u); b++) band[b] = l->pad;
        for (w = (pz_word_alias *)(void *)(band + b); b < cols * C; b += 4u) *w++ = pad4;  /* up to the pitch */
    }
}

/* The small-K path (K <= 32, all groups in one call: few input channels make the per-pixel costs dominate): the
 * windows inside the input in batches of up to PZ_CONV_PX_ACC / (8 groups) pixels along a row (a pointwise layer:
 * along the whole image), the others one by one through the gathered scratch as in the general path. Outputs in
 * increasing pixel order; at most PZ_CONV_PX_MAX windows read ahead of the first output of a batch. */
__attribute__((noinline)) static void conv2d_small_k(const pz_q8_conv_t *l, pz_requant_run_t *rq, pz_dot8_fn dot8,
                                                     pz_px8_fn px8, uint32_t fused, const uint8_t *xu,
                                                     uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, K = s->out_c, n_win = ((uint32_t)s->k_h * s->k_w * C + 3u) & ~3u;
    const uint32_t row = (uint32_t)s->in_w * C, run = (uint32_t)s->k_w * C;
    const uint32_t groups = (K + 7u) / 8u, group_bytes = 32u + 8u * n_win;
    uint32_t batch = PZ_CONV_PX_ACC / (8u * groups);
    if (batch > PZ_CONV_PX_MAX) batch = PZ_CONV_PX_MAX;
    pz_conv_px_t p;
    p.groups = groups;
    p.group_bytes = group_bytes;
    p.step = (uint32_t)s->stride_w * C;
    p.run_bytes = run;
    p.runs = s->k_h;
    p.cell_step = s->stride_w;
    p.cell_kw = s->k_w;
    const int pointwise = s->k_h == 1 && s->k_w == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_top == 0 &&
                          s->pad_left == 0 && s->in_w == s->out_w;
    p.skip = pointwise ? 0u : row - run;
    p.lead = (16u - run % 16u) % 16u;
    p.span = run + p.lead;
    p.skip_adj = p.skip - p.lead;
    p.window = p.runs * (run + p.skip);
    p.rq = l->rq;
    p.add = (uint32_t)rq->add;
    p.lo = (uint32_t)(rq->lo + rq->add);
    p.hi = (uint32_t)(rq->hi + rq->add);
    if (pointwise) {  /* one run of pixels over the whole image */
        uint32_t left = (uint32_t)s->out_h * s->out_w;
        for (; left; ) {
            const uint32_t n = left < batch ? left : batch;
            conv_pixels(l, rq, px8, fused, xu, &p, n, row, y);
            xu += n * C;
            y += n * K;
            left -= n;
        }
        return;
    }
    pz_conv_runs_t r;
    r.groups = groups;
    /* the interior columns: ix0 = ox s - pad_left >= 0 and ix0 + k_w <= in_w */
    const uint32_t sw = s->stride_w;
    const uint32_t ox_lo = (s->pad_left + sw - 1u) / sw;
    const uint32_t ox_end = s->in_w < s->k_w ? 0u : ((uint32_t)s->in_w - s->k_w + s->pad_left) / sw + 1u;
    /* rows with border windows: all of the row from its band (band_pitch), in batches as the interior */
    const uint32_t pitch = band_pitch(s);
    const uint32_t in_skip = p.skip, in_skip_adj = p.skip_adj, in_window = p.window;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        const int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        const int rows_inside = iy0 >= 0 && iy0 + s->k_h <= s->in_h;
        uint32_t ox = 0;
        if (pitch && !(rows_inside && ox_lo == 0 && ox_end >= s->out_w)) {
            band_fill(l, xu, iy0, pitch, l->scratch);
            p.skip = pitch - run;
            p.skip_adj = p.skip - p.lead;
            p.window = p.runs * pitch;
            for (; ox < s->out_w; ) {
                uint32_t n = s->out_w - ox;
                if (n > batch) n = batch;
                conv_pixels(l, rq, px8, fused, l->scratch + ox * p.step, &p, n, pitch, y);
                ox += n;
                y += n * K;
            }
            p.skip = in_skip;
            p.skip_adj = in_skip_adj;
            p.window = in_window;
            continue;
        }
        while (ox < s->out_w) {
            if (rows_inside && ox >= ox_lo && ox < ox_end) {
                uint32_t n = ox_end - ox;
                if (n > s->out_w - ox) n = s->out_w - ox;
                if (n > batch) n = batch;
                const uint8_t *x = xu + ((uint32_t)iy0 * s->in_w + (ox * sw - s->pad_left)) * C;
                conv_pixels(l, rq, px8, fused, x, &p, n, row, y);
                ox += n;
                y += n * K;
            } else {
                gather(l, xu, oy, ox, l->scratch);
                r.run_bytes = n_win;  /* padded to whole blocks with zero bytes and zero weights */
                r.skip = 0;
                r.runs = 1;
                conv_pixel(l, rq, dot8, l->scratch, &r, row, group_bytes, groups, y);
                ox++;
                y += K;
            }
        }
    }
}

/* Max pool on offset-binary bytes: max(q) = max(xu) - 128, so the bytes are compared as they are and the result is
 * written ^ (0x80 ^ out_xor). A window inside the input is read with fixed offsets (2x2 unrolled); a window that
 * crosses the border checks each cell. Same order of writes as the reference, so in place works as there. */
void pz_maxpool2d_q8_m0(const pz_conv_shape_t *s, const uint8_t *xu, uint8_t *y, uint8_t out_xor) {
    const uint32_t C = s->in_c, row = (uint32_t)s->in_w * C, flip = 0x80u ^ out_xor;
    const uint32_t kh = s->k_h, kw = s->k_w;
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        const int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        for (uint32_t ox = 0; ox < s->out_w; ox++, y += C) {
            const int32_t ix0 = (int32_t)(ox * s->stride_w) - s->pad_left;
            if (iy0 >= 0 && ix0 >= 0 && iy0 + (int32_t)kh <= s->in_h && ix0 + (int32_t)kw <= s->in_w) {
                const uint8_t *p = xu + ((uint32_t)iy0 * s->in_w + (uint32_t)ix0) * C;
                if (kh == 2 && kw == 2) {
                    for (uint32_t c = 0; c < C; c++, p++) {
                        uint32_t a = p[0], b = p[C], d = p[row], e = p[row + C];
                        a = b > a ? b : a;
                        d = e > d ? e : d;
                        y[c] = (uint8_t)((d > a ? d : a) ^ flip);
                    }
                } else {
                    for (uint32_t c = 0; c < C; c++, p++) {
                        uint32_t m = 0;
                        for (uint32_t dy = 0; dy < kh; dy++) {
                            for (uint32_t dx = 0; dx < kw; dx++) {
                                uint32_t v = p[dy * row + dx * C];
                                m = v > m ? v : m;
                            }
                        }
                        y[c] = (uint8_t)(m ^ flip);
                    }
                }
            } else {
                for (uint32_t c = 0; c < C; c++) {
                    uint32_t m = 0;  /* q = -128; padding cells never win */
                    for (uint32_t dy = 0; dy < kh; dy++) {
                        const int32_t iy = iy0 + (int32_t)dy;
                        if (iy < 0 || iy >= s->in_h) continue;
                        for (uint32_t dx = 0; dx < kw; dx++) {
                            const int32_t ix = ix0 + (int32_t)dx;
                            if (ix < 0 || ix >= s->in_w) continue;
                            uint32_t v = xu[((uint32_t)iy * s->in_w + (uint32_t)ix) * C + c];
                            m = v > m ? v : m;
                        }
                    }
                    y[c] = (uint8_t)(m ^ flip);
                }
            }
        }
    }
}
