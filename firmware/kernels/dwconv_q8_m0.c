/* Optimised int8 depthwise conv2d for the Cortex-M0+ (conv.h pz_dwconv2d_q8_m0); byte-identical to conv_q8_ref.c.
 *
 * 3x3 (other kernel sizes: dw_any_kernel, below): pixel-major, all channels of a group of n output pixels side by side
 * per pass over the dw records (bias, 9 weights). Per channel and kernel row the three weights are extracted once and
 * each input byte of the row is loaded once and multiplied into every pixel of the group it feeds. Each output row
 * is cut left to right into groups of six, four, three, two, one pixels; a group's window columns are read in place
 * where they lie inside the input, else from a band (3 rows x its columns) copied into the scratch with the padding
 * cells.
 * - With the build's one-multiply records (every layer compress writes): groups of six (strides 1, 2), four and
 *   three write their output bytes from the loop itself (pz_q8_dw3x3_{hex,hex2,quad,quad2,triple,triple2}_out_m0:
 *   each channel's record loaded once for its pixels, 10 cycles per output), and a run of such groups read in place
 *   is one call: about 323 cycles per channel of six pixels (54 MACs) at stride 1. Groups of six and three whose window
 *   leaves the input by one padding column (its bytes: the padding byte from the frame) and / or one padding row (those
 *   kernel rows not run, the bias corrected) are read in place too (the group loops' MODE, dw_form); a row's groups of
 *   six are one call (PZ_DW_HEX_ROW_FN: bodies for the plain groups and for a first / last one with a padding column),
 *   and where they fill the rows, so are the rows that run all kernel rows (pz_dw_out_t rows). With C = 8 at stride 1
 *   those run a copy of the loop with C built in (pz_q8_dw3x3_hex8_out_m0: 303 cycles a channel of six pixels).
 * - Otherwise (older model directories): the accumulator loops (pz_q8_dw3x3_quad_m0 / quad2_m0, triple_m0, pair_m0
 *   / pair2_m0, acc_m0) write int32 accumulators to the scratch, then conv_q8_m0.c's output stage (conv_q8_m0.h)
 *   runs per pixel.
 * - A layer whose output is one 3x3 tile (stride 1 over 3x3, stride 2 over 6x6, SAME; with records) runs channel by
 *   channel over the whole tile in one call (pz_q8_dw3x3_tile_out_m0 / tile2_out_m0, dw_tile), the padding taps
 *   left out: about 484 cycles per channel (81 nominal MACs) at stride 1. Its write order is channel-major (below).
 * Write order (what a layer written over its own input relies on): output pixels in increasing order by groups of
 * at most 6 pixels of one row; inside a fused group channel by channel, pixel k's byte c after channel c of the
 * group's whole window was read and before channel c + 1's is. So when a byte of output pixel p is written, the input
 * still to be read lies in the windows of p's group (whose first pixel is at most 5 before p, in p's row) and of
 * later pixels: inside the one-output-row lookback a planner allows the depthwise kernel (before: all of a group's
 * window was read before its first byte was written). The tile loop writes channel by channel: lookback "tile". */
#include "conv.h"
#include "int8_impl.h"
#include "int8_mac_m0.h"
#include "conv_q8_m0.h"

/* Code placement (see conv_q8_m0.c's): the sections in the order named here, so that the six-pixel row functions
 * and the padding forms come after the driver and leave the accumulator path's code where it was (its hot code
 * shares the XIP cache with conv_q8_m0.c's output stages; measured in the kernel table, 31-bit column). */
#if PZ_Q8_M0_ASM
#define PZ_DW_SECTION(NAME) "    .pushsection .text." NAME ", \"ax\", %progbits\n    .popsection\n"
__asm__(
    PZ_DW_SECTION("pz_q8_dw3x3_acc_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_pair_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_pair2_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_quad_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_quad2_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_quad_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_quad2_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple2_out_m0")
    PZ_DW_SECTION("pz_q8_words_copy_m0")
    PZ_DW_SECTION("pz_q8_words_fill_m0")
    PZ_DW_SECTION("dw_band")
    PZ_DW_SECTION("pz_dwconv_q8_m0_scratch_bytes")
    PZ_DW_SECTION("pz_dwconv2d_q8_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex2_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex_lr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex_t_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex_tlr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex_b_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex_blr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex2_b_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_r_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_lr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_tr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_tlr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_br_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple_blr_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple2_r_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_triple2_br_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_tile_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_tile2_out_m0")
    PZ_DW_SECTION("pz_q8_dw3x3_hex8_out_m0")
    PZ_DW_SECTION("dw_any_kernel")
    PZ_DW_SECTION("pz_q8_dw_any_m0")
);
#endif

/* Depthwise 3x3 (pz_dwconv2d_q8_m0): the int32 accumulators of its largest group of pixels (at least 2), then a band
 * of that group's window columns, (n - 1) s + 3 of them. */
static uint32_t dw_group_max(const pz_conv_shape_t *s) {
    if (s->stride_w > 2u) return 1u;
    return s->out_w >= 4u ? 4u : s->out_w == 3u && s->stride_w == 2u ? 2u : s->out_w;
}

static uint32_t dw_band_at(const pz_conv_shape_t *s) {
    const uint32_t n = dw_group_max(s);
    return 4u * (n < 2u ? 2u : n) * s->in_c;
}

static uint32_t dw_band_cols(const pz_conv_shape_t *s) { return (dw_group_max(s) - 1u) * s->stride_w + 3u; }

uint32_t pz_dwconv_q8_m0_scratch_bytes(const pz_conv_shape_t *s) {
    return (dw_band_at(s) + 3u * dw_band_cols(s) * s->in_c + 3u) & ~3u;
}

/* Depthwise 3x3, interior pixels: acc[c] for every channel c of one output pixel, from the window's top-left byte
 * x (channel 0) and the dw records (bias + 9 weights + 3 pad bytes = 16 bytes per channel). */
#if PZ_Q8_M0_ASM
typedef struct {
    uint32_t c;          /* channels */
    uint32_t row;        /* in_w * C: from one window row to the next */
} pz_dw_geom_t;

/* The fused group loops' geometry and output constants (pz_q8_dw3x3_quad_out_m0 ...). */
typedef struct {
    uint32_t c, row;     /* as pz_dw_geom_t */
    const int32_t *rq;   /* the one-multiply records of channel 0 (conv.h rq) */
    int32_t add;         /* out_zp + out_xor */
    int32_t lo, hi;      /* act_min + out_xor, act_max + out_xor */
    uint32_t groups;     /* >= 1 groups side by side, all read in place: */
    uint32_t x_step;     /* from one group's x + C to the next one's x: n s C - C */
    uint32_t y_step;     /* from one group's y + C to the next one's y: (n - 1) C */
    uint32_t pad;        /* the layer's padding byte (conv.h pad): PZ_DW_LD_PAD */
    uint32_t forms;      /* PZ_DW_HEX_ROW_FN: bit 0 the first group has a padding column at its left, bit 1 the
                            last one at its right */
    uint32_t rows;       /* PZ_DW_HEX_ROW_FN: >= 1 output rows of the same groups one under the other, */
    uint32_t row_x;      /* from the last group's x + C to the next row's first x, */
    uint32_t row_dy;     /* and what y - x changes by from the last group to the next row's first */
} pz_dw_out_t;

void pz_q8_dw3x3_acc_m0(const uint8_t *x, const uint8_t *w, int32_t *acc, const pz_dw_geom_t *g);

/* One tap: r5 = x byte, r6 = the weight (extracted by `ext`), acc r4 += r5 * r6. */
#define PZ_DW_TAP(load, ext) \
    "    " load "\n"          \
    ext                       \
    "    muls  r6, r5, r6\n"  \
    "    adds  r4, r4, r6\n"
#define PZ_DW_B0 "    sxtb  r6, r7\n"
#define PZ_DW_B1 "    sxth  r6, r7\n    asrs  r6, r6, #8\n"
#define PZ_DW_B2 "    lsls  r6, r7, #8\n    asrs  r6, r6, #24\n"
#define PZ_DW_B3 "    asrs  r6, r7, #24\n"

/* Per channel: LDM bias + 3 LDM weight words, 9 x (LDRB + extract + MULS + ADDS), 3 row moves, the store:
 * 67 cycles for 9 MACs. r0 = x (+ c), r1 = records, r2 = C, r3 = 2C, r8 = row, r9 = 1 - 2 row, r10 = x + C,
 * r11 = acc. */
__asm__(
    PZ_M0_FUNC("pz_q8_dw3x3_acc_m0")
    PZ_M0_SAVE_R4_R11
    "    mov   r11, r2\n"
    "    ldm   r3!, {r2, r4}\n"      /* r2 = C, r4 = row */
    "    mov   r8, r4\n"
    "    lsls  r4, r4, #1\n"
    "    movs  r5, #1\n"
    "    subs  r5, r5, r4\n"
    "    mov   r9, r5\n"
    "    adds  r5, r0, r2\n"
    "    mov   r10, r5\n"
    "    lsls  r3, r2, #1\n"
    "1:\n"
    "    ldm   r1!, {r4}\n"          /* acc = folded bias */
    "    ldm   r1!, {r7}\n"          /* taps 0..3 */
    PZ_DW_TAP("ldrb  r5, [r0]", PZ_DW_B0)
    PZ_DW_TAP("ldrb  r5, [r0, r2]", PZ_DW_B1)
    PZ_DW_TAP("ldrb  r5, [r0, r3]", PZ_DW_B2)
    "    add   r0, r8\n"
    PZ_DW_TAP("ldrb  r5, [r0]", PZ_DW_B3)
    "    ldm   r1!, {r7}\n"          /* taps 4..7 */
    PZ_DW_TAP("ldrb  r5, [r0, r2]", PZ_DW_B0)
    PZ_DW_TAP("ldrb  r5, [r0, r3]", PZ_DW_B1)
    "    add   r0, r8\n"
    PZ_DW_TAP("ldrb  r5, [r0]", PZ_DW_B2)
    PZ_DW_TAP("ldrb  r5, [r0, r2]", PZ_DW_B3)
    "    ldm   r1!, {r7}\n"          /* tap 8, 3 pad bytes */
    PZ_DW_TAP("ldrb  r5, [r0, r3]", PZ_DW_B0)
    "    add   r0, r9\n"             /* back to row 0, next channel */
    "    mov   r5, r11\n"
    "    stm   r5!, {r4}\n"
    "    mov   r11, r5\n"
    "    cmp   r0, r10\n"
    "    bne   1b\n"
    PZ_M0_RESTORE_R4_R11_RETURN
    "    .size   pz_q8_dw3x3_acc_m0, . - pz_q8_dw3x3_acc_m0\n"
    "    .popsection\n");
#endif

#if PZ_Q8_M0_ASM
void pz_q8_dw3x3_pair_m0(const uint8_t *x, const uint8_t *w, int32_t *acc, const pz_dw_geom_t *g);

/* One tap for two neighbouring pixels (stride 1): the weight extracted once (`ext` into r6), pixel A's byte at `a`
 * into r4, pixel B's at `b` into r12; `mid` runs between the two (a row pointer step). 8 cycles + the extract. */
#define PZ_DW_TAP2(ext, a, mid, b) \
    ext                            \
    "    ldrb  r5, " a "\n"        \
    "    muls  r5, r6, r5\n"       \
    "    adds  r4, r4, r5\n"       \
    mid                            \
    "    ldrb  r5, " b "\n"        \
    "    muls  r5, r6, r5\n"       \
    "    add   r12, r5\n"

/* Two interior pixels side by side, all channels: acc[c] for the left one, acc[C + c] for the right one. Each
 * channel's bias and 9 weights are loaded and extracted once for both pixels (the per-pixel loop loads them per
 * pixel): 112 cycles per 18 MACs instead of 2 x 67. Pixel B's taps are pixel A's + s C; the taps past 2C are read
 * after a step of C (stride 1) or 2C (stride 2) of the row pointer, which the row step (row - s C) and `back` undo.
 * r0 = row pointer, r1 = records, r2 = C, r3 = 2C, r4 = acc A, r12 = acc B, r8 = row - s C, r9 = back =
 * 1 - 2 row - s C, r10 = x + C (end), r11 = acc A out, lr = 4C - 4. T0..T2: one kernel row's taps (PZ_DW_TAP2),
 * SC: the register holding s C. */
#define PZ_DW_PAIR_FN(NAME, T0, T1, T2, SC)                                                        \
__asm__(                                                                                           \
    PZ_M0_FUNC(NAME) \
    PZ_M0_SAVE_R4_R11 \
    "    mov   r11, r2\n"                                                                          \
    "    ldm   r3!, {r2, r4}\n"      /* r2 = C, r4 = row */                                        \
    "    lsls  r3, r2, #1\n"                                                                       \
    "    subs  r5, r4, " SC "\n"                                                                   \
    "    mov   r8, r5\n"                                                                           \
    "    lsls  r5, r4, #1\n"                                                                       \
    "    adds  r5, r5, " SC "\n"                                                                   \
    "    movs  r6, #1\n"                                                                           \
    "    subs  r6, r6, r5\n"                                                                       \
    "    mov   r9, r6\n"                                                                           \
    "    adds  r5, r0, r2\n"                                                                       \
    "    mov   r10, r5\n"                                                                          \
    "    lsls  r5, r2, #2\n"                                                                       \
    "    subs  r5, #4\n"                                                                           \
    "    mov   lr, r5\n"                                                                           \
    "1:\n"                                                                                         \
    "    ldm   r1!, {r4}\n"          /* both accumulators = folded bias */                         \
    "    mov   r12, r4\n"                                                                          \
    "    ldm   r1!, {r7}\n"          /* taps 0..3 */                                               \
    T0(PZ_DW_B0) T1(PZ_DW_B1) T2(PZ_DW_B2)                                                         \
    "    add   r0, r8\n"                                                                           \
    T0(PZ_DW_B3)                                                                                   \
    "    ldm   r1!, {r7}\n"          /* taps 4..7 */                                               \
    T1(PZ_DW_B0) T2(PZ_DW_B1)                                                                      \
    "    add   r0, r8\n"                                                                           \
    T0(PZ_DW_B2) T1(PZ_DW_B3)                                                                      \
    "    ldm   r1!, {r7}\n"          /* tap 8, 3 pad bytes */                                      \
    T2(PZ_DW_B0)                                                                                   \
    "    add   r0, r9\n"             /* back to row 0, next channel */                             \
    "    mov   r5, r11\n"                                                                          \
    "    stm   r5!, {r4}\n"                                                                        \
    "    mov   r11, r5\n"                                                                          \
    "    mov   r6, r12\n"                                                                          \
    "    mov   r7, lr\n"                                                                           \
    "    str   r6, [r5, r7]\n"       /* acc B: 4C after acc A */                                   \
    "    cmp   r0, r10\n"                                                                          \
    "    bne   1b\n"                                                                               \
    PZ_M0_RESTORE_R4_R11_RETURN \
    "    .size   " NAME ", . - " NAME "\n"                                                         \
    "    .popsection\n");

/* stride 1: A at 0, C, 2C; B at C, 2C, 3C (after a step of C) */
#define PZ_DW_S1_T0(ext) PZ_DW_TAP2(ext, "[r0]", "", "[r0, r2]")
#define PZ_DW_S1_T1(ext) PZ_DW_TAP2(ext, "[r0, r2]", "", "[r0, r3]")
#define PZ_DW_S1_T2(ext) PZ_DW_TAP2(ext, "[r0, r3]", "    add   r0, r2\n", "[r0, r3]")
/* stride 2: A at 0, C, 2C; B at 2C, 3C, 4C (after a step of 2C) */
#define PZ_DW_S2_T0(ext) PZ_DW_TAP2(ext, "[r0]", "", "[r0, r3]")
#define PZ_DW_S2_T1(ext) PZ_DW_TAP2(ext, "[r0, r2]", "    add   r0, r3\n", "[r0, r2]")
#define PZ_DW_S2_T2(ext) PZ_DW_TAP2(ext, "[r0]", "", "[r0, r3]")

void pz_q8_dw3x3_pair2_m0(const uint8_t *x, const uint8_t *w, int32_t *acc, const pz_dw_geom_t *g);
PZ_DW_PAIR_FN("pz_q8_dw3x3_pair_m0", PZ_DW_S1_T0, PZ_DW_S1_T1, PZ_DW_S1_T2, "r2")
PZ_DW_PAIR_FN("pz_q8_dw3x3_pair2_m0", PZ_DW_S2_T0, PZ_DW_S2_T1, PZ_DW_S2_T2, "r3")
#endif

#if PZ_Q8_M0_ASM
void pz_q8_dw3x3_quad_m0(const uint8_t *x, const uint8_t *w, int32_t *acc, const pz_dw_geom_t *g);
void pz_q8_dw3x3_quad2_m0(const uint8_t *x, const uint8_t *w, int32_t *acc, const pz_dw_geom_t *g);
void pz_q8_dw3x3_triple_m0(const uint8_t *x, const uint8_t *w, int32_t *acc, const pz_dw_geom_t *g);

/* One MAC of the three- and four-pixel loops: acc += the input byte times a weight, MULS overwriting `dst`, one of
 * the two operands (the one at its last use: a byte's last pixel, a weight's last byte), or, where neither is, a
 * copy of the byte in r4 (COPY). */
#define PZ_DW_MAC(dst, other, acc) "    muls  " dst ", " other ", " dst "\n    add   " acc ", " dst "\n"
#define PZ_DW_COPY(w, acc) "    movs  r4, r3\n" PZ_DW_MAC("r4", w, acc)

/* One kernel row of four neighbouring pixels: each input byte (r3) loaded once, at [r0], [r0, C], [r0, 2C] and
 * then 3C further (r12), times the row's weights u0, u1, u2 (r5, r6, r7) into the pixels' accumulators A..D
 * (r8..r11). Stride 1 (pixel k reads columns k..k + 2): 6 bytes, 12 MACs, 4 copies, one 3C step: 41 cycles. */
#define PZ_DW_QUAD_ROW                                                                                   \
    "    ldrb  r3, [r0]\n"       PZ_DW_MAC("r3", "r5", "r8")                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_COPY("r6", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r8") PZ_DW_COPY("r6", "r9") PZ_DW_MAC("r3", "r5", "r10") \
    "    add   r0, r12\n"                                                                                \
    "    ldrb  r3, [r0]\n"       PZ_DW_MAC("r5", "r3", "r11") PZ_DW_COPY("r7", "r9")                     \
                                 PZ_DW_MAC("r3", "r6", "r10")                                            \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r6", "r3", "r11") PZ_DW_MAC("r3", "r7", "r10")               \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r7", "r3", "r11")
/* The common start of a stride-2 kernel row (PZ_DW_QUAD2_ROW, PZ_DW_TRIPLE2_ROW_, PZ_DW_TILE2_ROW): columns
 * x0..x3, pixel 0 complete, pixel 1's x2 u0 and x3 u1. */
#define PZ_DW_S2_ROW_HEAD                                                                                \
    "    ldrb  r3, [r0]\n"       PZ_DW_MAC("r3", "r5", "r8")                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r3", "r6", "r8")                                             \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    add   r0, r12\n"                                                                                \
    "    ldrb  r3, [r0]\n"       PZ_DW_MAC("r3", "r6", "r9")
/* Stride 2 (pixel k reads columns 2k..2k + 2): 9 bytes, 12 MACs, 2 copies, two 3C steps: 46 cycles. */
#define PZ_DW_QUAD2_ROW                                                                                  \
    PZ_DW_S2_ROW_HEAD                                                                                    \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_COPY("r7", "r9") PZ_DW_MAC("r3", "r5", "r10")                     \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r3", "r6", "r10")                                            \
    "    add   r0, r12\n"                                                                                \
    "    ldrb  r3, [r0]\n"       PZ_DW_MAC("r5", "r3", "r11") PZ_DW_MAC("r3", "r7", "r10")               \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r6", "r3", "r11")                                            \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r7", "r3", "r11")

/* Three pixels at stride 1 (rows of 3 outputs, what a row of 7 leaves after a quad): 5 bytes, 9 MACs, 4 copies,
 * one 3C step: 33 cycles. (At stride 2 a pair and one pixel are as fast as three, and read the input in place
 * where three would need a band of 7 columns.) */
#define PZ_DW_TRIPLE_ROW_(FIRST, LAST)                                                                   \
    FIRST                        PZ_DW_MAC("r3", "r5", "r8")                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_COPY("r6", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r8") PZ_DW_COPY("r6", "r9") PZ_DW_MAC("r5", "r3", "r10") \
    "    add   r0, r12\n"                                                                                \
    "    ldrb  r3, [r0]\n"       PZ_DW_COPY("r7", "r9") PZ_DW_MAC("r6", "r3", "r10")                     \
    LAST                         PZ_DW_MAC("r7", "r3", "r10")
#define PZ_DW_TRIPLE_ROW PZ_DW_TRIPLE_ROW_("    ldrb  r3, [r0]\n", "    ldrb  r3, [r0, r1]\n")

/* Three pixels at stride 2 (rows of 3 outputs: fused output stage only, pz_q8_dw3x3_triple2_out_m0): 7 bytes, 9
 * MACs, 1 copy (b2; b4, b5, b6 meet the weights' last uses), two 3C steps: 35 cycles. */
#define PZ_DW_TRIPLE2_ROW_(LAST)                                                                         \
    PZ_DW_S2_ROW_HEAD                                                                                    \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r5", "r3", "r10") PZ_DW_MAC("r3", "r7", "r9")                \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r6", "r3", "r10")                                            \
    "    add   r0, r12\n"                                                                                \
    LAST                         PZ_DW_MAC("r7", "r3", "r10")
#define PZ_DW_TRIPLE2_ROW PZ_DW_TRIPLE2_ROW_("    ldrb  r3, [r0]\n")

/* The bias into the accumulators of three or four pixels (r3 = the folded bias), and their stores (r4 = &acc[c],
 * r5 = 4C). */
#define PZ_DW_INIT3 "    mov   r8, r3\n    mov   r9, r3\n    mov   r10, r3\n"
#define PZ_DW_INIT4 PZ_DW_INIT3 "    mov   r11, r3\n"
#define PZ_DW_STORE3                 \
    "    mov   r3, r8\n"             \
    "    str   r3, [r4]\n"           \
    "    mov   r3, r9\n"             \
    "    str   r3, [r4, r5]\n"       \
    "    lsls  r6, r5, #1\n"         \
    "    mov   r3, r10\n"            \
    "    str   r3, [r4, r6]\n"
#define PZ_DW_STORE4 PZ_DW_STORE3    \
    "    adds  r6, r6, r5\n"         \
    "    mov   r3, r11\n"            \
    "    str   r3, [r4, r6]\n"

/* The kernel rows a group loop runs (PZ_DW_GROUP_FN's MODE): FULL all three; TOP rows 1 and 2 only (kernel row 0
 * lies in the padding above the input, x points at row 1's window) and BOT rows 0 and 1 (row 2 lies below it),
 * where HEAD adds what the padding row would have added to the folded bias, pad * (the row's three taps), about 11
 * and 15 cycles instead of a kernel row (about 71; padding cells count pad * w in the folded bias, see
 * compress/conv_layout.folded_depthwise_bias). K0 / K2: kernel row 0 / 2 with the step to / from row 1; K1_AT: from the
 * record pointer in the frame to taps 0..3 (the frame keeps the channel's record until kernel row 2 loads its last word
 * and stores the next one's; BOT stores it in HEAD); ROWS: the rows the row pointer crosses, in row units (r6 = row in
 * r4), for the step back to row 0. */
#define PZ_DW_ROW0(ROW)                                                                   \
    "    sxtb  r5, r7\n"             /* taps 0, 1, 2 */                               \
    "    sxth  r6, r7\n"                                                              \
    "    asrs  r6, r6, #8\n"                                                          \
    "    lsls  r7, r7, #8\n"                                                          \
    "    asrs  r7, r7, #24\n"                                                         \
    ROW
#define PZ_DW_ROW2(ROW)                                                                   \
    "    ldr   r4, [sp]\n"                                                            \
    "    adds  r4, #8\n"                                                              \
    "    ldm   r4!, {r6, r7}\n"      /* taps 4..7, tap 8 and 3 pad bytes */           \
    "    str   r4, [sp]\n"           /* the next channel's record */                  \
    "    lsls  r5, r6, #8\n"         /* taps 6, 7, 8 */                               \
    "    asrs  r5, r5, #24\n"                                                         \
    "    asrs  r6, r6, #24\n"                                                         \
    "    sxtb  r7, r7\n"                                                              \
    ROW
#define PZ_DW_FULL_HEAD ""
#define PZ_DW_FULL_K0(ROW, ROWSTEP) PZ_DW_ROW0(ROW) ROWSTEP
#define PZ_DW_FULL_K1_AT "    adds  r4, #4\n"
#define PZ_DW_FULL_K2(ROW, ROWSTEP) ROWSTEP PZ_DW_ROW2(ROW)
#define PZ_DW_FULL_ROWS "    lsls  r6, r4, #1\n"
/* TOP: r3 = bias + pad (t0 + t1 + t2), from r7 = taps 0..3 */
#define PZ_DW_TOP_HEAD                   \
    "    sxtb  r5, r7\n"                 \
    "    sxth  r6, r7\n"                 \
    "    asrs  r6, r6, #8\n"             \
    "    adds  r5, r5, r6\n"             \
    "    lsls  r6, r7, #8\n"             \
    "    asrs  r6, r6, #24\n"            \
    "    adds  r5, r5, r6\n"             \
    "    ldr   r6, [sp, #8]\n"           /* pad */ \
    "    muls  r5, r6, r5\n"             \
    "    adds  r3, r3, r5\n"
#define PZ_DW_TOP_K0(ROW, ROWSTEP) ""
#define PZ_DW_TOP_K1_AT "    adds  r4, #4\n"
#define PZ_DW_TOP_K2(ROW, ROWSTEP) PZ_DW_FULL_K2(ROW, ROWSTEP)
#define PZ_DW_TOP_ROWS "    movs  r6, r4\n"
/* BOT: r3 = bias + pad (t6 + t7 + t8), from taps 4..7 and 8 (r4 = the record + 8; the frame gets the next one, so
 * K1_AT steps back 12) */
#define PZ_DW_BOT_HEAD                   \
    "    ldm   r4!, {r5, r6}\n"          \
    "    str   r4, [sp]\n"               \
    "    lsls  r4, r5, #8\n"             \
    "    asrs  r4, r4, #24\n"            \
    "    asrs  r5, r5, #24\n"            \
    "    adds  r4, r4, r5\n"             \
    "    sxtb  r6, r6\n"                 \
    "    adds  r4, r4, r6\n"             \
    "    ldr   r5, [sp, #8]\n"           /* pad */ \
    "    muls  r4, r5, r4\n"             \
    "    adds  r3, r3, r4\n"
#define PZ_DW_BOT_K0(ROW, ROWSTEP) PZ_DW_FULL_K0(ROW, ROWSTEP)
#define PZ_DW_BOT_K1_AT "    subs  r4, #12\n"
#define PZ_DW_BOT_K2(ROW, ROWSTEP) ""
#define PZ_DW_BOT_ROWS "    movs  r6, r4\n"

/* Four pixels side by side at stride 1 or 2 (three at stride 1), all channels: acc[k C + c] for pixel k. Per
 * channel: the bias into the accumulators (INIT), then per kernel row its three weights extracted from the record
 * words (LDM) and ROW, then FINISH (the stores, or the fused output stage below): about 191 (stride 1) / 206
 * (stride 2) cycles per 36 MACs (three pixels: 166 per 27; the pair loops 112 per 18), because each input byte
 * feeds all the pixels it reaches from one load. r0 = row pointer (channel c), r1 = C, r2 = 2C, r12 = 3C, lr = row -
 * SPAN (next kernel row; SPAN = the columns ROW stepped over, 3C or 6C); frame (FRAME bytes): [sp] = this channel's
 * record (the next one's after kernel row 2's LDM), [sp+4] = &acc[c] (the fused loops: y - x - 1), [sp+8] = 4C (CSTEP
 * turns r5 = C into it; the fused loops: the padding byte, which PRO loads into r5), [sp+12] = 1 - 2 row - SPAN (back
 * to row 0, next channel), [sp+16] = x + C (end); PRO: what else the frame holds. SPAN_FROM_3C turns r5 = 3C into SPAN;
 * NEXT: after the last channel (the next group, or on to the return); TAIL: code after the return (FINISH's out-of-line
 * branches); POST: after the set-up; ROWSTEP: on to the next kernel row (add lr). PZ_DW_GROUP_ENTRY is the set-up,
 * PZ_DW_GROUP_LOOP the loop over the channels (PZ_DW_HEX_ROW_FN has three of them). */
#define PZ_DW_GROUP_ENTRY(NAME, SPAN_FROM_3C, FRAME, PRO, CSTEP, POST, MODE)               \
    PZ_M0_FUNC(NAME)                                                                  \
    PZ_M0_SAVE_R4_R11                                                                 \
    "    sub   sp, #" FRAME "\n"                                                      \
    "    str   r1, [sp]\n"                                                            \
    "    str   r2, [sp, #4]\n"                                                        \
    "    ldm   r3!, {r1, r4}\n"      /* r1 = C, r4 = row */                           \
    PRO                                                                               \
    CSTEP                                                                             \
    "    str   r5, [sp, #8]\n"                                                        \
    "    lsls  r2, r1, #1\n"                                                          \
    "    adds  r5, r2, r1\n"                                                          \
    "    mov   r12, r5\n"                                                             \
    SPAN_FROM_3C                                                                      \
    "    subs  r6, r4, r5\n"                                                          \
    "    mov   lr, r6\n"                                                              \
    PZ_DW_##MODE##_ROWS                                                               \
    "    adds  r6, r6, r5\n"                                                          \
    "    movs  r7, #1\n"                                                              \
    "    subs  r7, r7, r6\n"                                                          \
    "    str   r7, [sp, #12]\n"                                                       \
    "    adds  r7, r0, r1\n"                                                          \
    "    str   r7, [sp, #16]\n"                                                       \
    POST
/* Kernel row 1's taps 3, 4, 5 into r5, r6, r7 from the channel's dw record at REC (bias, taps 0..3, 4..7), REC
 * advancing past taps 4..7. */
#define PZ_DW_TAPS_345(REC)                                 \
    "    ldm   " REC "!, {r5, r7}\n"  /* taps 0..3, 4..7 */ \
    "    asrs  r5, r5, #24\n"                               \
    "    sxtb  r6, r7\n"                                    \
    "    sxth  r7, r7\n"                                    \
    "    asrs  r7, r7, #8\n"
#define PZ_DW_GROUP_LOOP(ROW, INIT, FINISH, ROWSTEP, MODE)                              \
    "1:\n"                                                                            \
    "    ldr   r4, [sp]\n"                                                            \
    "    ldm   r4!, {r3, r7}\n"      /* folded bias, taps 0..3 */                     \
    PZ_DW_##MODE##_HEAD                                                               \
    INIT                                                                              \
    PZ_DW_##MODE##_K0(ROW, ROWSTEP)                                                   \
    "    ldr   r4, [sp]\n"                                                            \
    PZ_DW_##MODE##_K1_AT                                                              \
    PZ_DW_TAPS_345("r4")                                                              \
    ROW                                                                               \
    PZ_DW_##MODE##_K2(ROW, ROWSTEP)                                                   \
    "    ldr   r3, [sp, #12]\n"                                                       \
    "    add   r0, r3\n"             /* back to row 0, next channel */                \
    FINISH                                                                            \
    "    ldr   r3, [sp, #16]\n"                                                       \
    "    cmp   r0, r3\n"                                                              \
    "    beq   2f\n"                                                                  \
    "    b     1b\n"                 /* the loop is past BNE's reach */               \
    "2:\n"
#define PZ_DW_GROUP_FN(NAME, ROW, SPAN_FROM_3C, INIT, FINISH, FRAME, PRO, CSTEP, NEXT, TAIL, POST, ROWSTEP, MODE) \
__asm__(                                                                              \
    PZ_DW_GROUP_ENTRY(NAME, SPAN_FROM_3C, FRAME, PRO, CSTEP, POST, MODE)               \
    PZ_DW_GROUP_LOOP(ROW, INIT, FINISH, ROWSTEP, MODE)                                 \
    NEXT                                                                              \
    "    add   sp, #" FRAME "\n"                                                      \
    PZ_M0_RESTORE_R4_R11_RETURN                                                       \
    TAIL                                                                              \
    "    .size   " NAME ", . - " NAME "\n"                                            \
    "    .popsection\n");

/* The accumulator stores of the plain group loops: acc[k C + c] (r4 = &acc[c], r5 = 4C), then &acc[c + 1]. */
#define PZ_DW_FINISH_ACC(STORE)      \
    "    ldr   r4, [sp, #4]\n"       \
    "    ldr   r5, [sp, #8]\n"       \
    STORE                            \
    "    adds  r4, #4\n"             \
    "    str   r4, [sp, #4]\n"
#define PZ_DW_CSTEP_4C "    lsls  r5, r1, #2\n"

/* The fused output stage (pz_dwconv2d_q8_m0 with the build's one-multiply records, firmware/requant.py): each
 * channel's record {L, A, m' << 8 | s} is loaded once for its three or four pixels and their accumulators go
 * straight from r8..r11 to their output bytes, instead of to the scratch and through pz_q8_requant_rec_m0 (its
 * steps, per output: acc <= L -> act_min + out_xor, acc >= A -> act_max + out_xor, else x = acc m', ASRS by s with
 * the last bit out in the carry, ADCS add = out_zp + out_xor: round_half_up(x / 2^s) + add). Pixel 0's accumulator
 * leaves r8 first and the row pointer r0 waits there; r1 = C is 2C / 2 again after: r0 = add, r1 = value,
 * r3 = L, r4 = A, r5 = m' << 8 | s, r6 = m', r7 = y + c (pixel 0 at [r7], pixel 2 at [r7, 2C], pixel 3 at + 3C,
 * pixel 1 at + 3C - 2C; y + c = the row pointer + y - x - 1, the frame's [sp+4] for the group). 10 cycles per
 * output + 20 per channel, instead of the stores and 19 per output + the stage's calls. Frame: [sp+20] = the next
 * channel's record, [sp+24] = add, [sp+28] = act_min + out_xor, [sp+32] = act_max + out_xor. */
#define PZ_DW_OUT(ACC, STORE, N) PZ_DW_OUT_(ACC, STORE, N, "f")
/* TO: where the saturated branches lie, "f" after the output, "b" before it (PZ_DW_OUT_SATURATED_(N, "f")) */
#define PZ_DW_OUT_(ACC, STORE, N, TO)    \
    ACC                                  \
    "    cmp   r1, r3\n"                 \
    "    ble   " N "1" TO "\n"           \
    "    cmp   r1, r4\n"                 \
    "    bge   " N "2" TO "\n"           \
    "    muls  r1, r6, r1\n"             \
    "    asrs  r1, r5\n"                 \
    "    adcs  r1, r0\n"                 \
    N "3:\n"                             \
    "    strb  r1, " STORE "\n"
#define PZ_DW_OUT_SATURATED(N) PZ_DW_OUT_SATURATED_(N, "b")
#define PZ_DW_OUT_SATURATED_(N, BACK)    \
    N "1:\n"                             \
    "    ldr   r1, [sp, #28]\n"          \
    "    b     " N "3" BACK "\n"         \
    N "2:\n"                             \
    "    ldr   r1, [sp, #32]\n"          \
    "    b     " N "3" BACK "\n"
/* The common start of PZ_DW_FINISH_OUT and PZ_DW_FINISH_HEX: pixel 0's accumulator from r8 into r1 (r8 keeps the
 * row pointer meanwhile), the channel's record into r3 = L, r4 = A, r5 = m' << 8 | s, r6 = m', r0 = add, r7 = y. */
#define PZ_DW_RECORD_IN                  \
    "    mov   r1, r8\n"                 \
    "    mov   r8, r0\n"                 \
    "    ldr   r0, [sp, #20]\n"          \
    "    ldm   r0!, {r3, r4, r5}\n"      /* L, A, m' << 8 | s */ \
    "    str   r0, [sp, #20]\n"          \
    "    lsrs  r6, r5, #8\n"             \
    "    ldr   r0, [sp, #24]\n"          \
    "    ldr   r7, [sp, #4]\n"           \
    "    add   r7, r8\n"                 /* y + c = x + c + 1 + (y - x - 1) */
#define PZ_DW_FINISH_OUT(PIXEL3)         \
    PZ_DW_RECORD_IN                      \
    PZ_DW_OUT("", "[r7]", "5")           \
    PZ_DW_OUT("    mov   r1, r10\n", "[r7, r2]", "6") \
    "    add   r7, r12\n"                \
    PIXEL3                               \
    "    subs  r7, r7, r2\n"             \
    PZ_DW_OUT("    mov   r1, r9\n", "[r7]", "8") \
    "    lsrs  r1, r2, #1\n"             /* C again */ \
    "    mov   r0, r8\n"
#define PZ_DW_PIXEL3 PZ_DW_OUT("    mov   r1, r11\n", "[r7]", "7")
/* the rest of pz_dw_out_t into the frame (r3 = &g->rq; r0 = x, r1 = C, r4 = row kept): [sp+40] = groups left,
 * [sp+44] = x_step, [sp+48] = y_step - x_step (for y - x - 1), [sp+52] = w, [sp+56] = rq (the first group's record
 * pointers), [sp+8] = the padding byte */
#define PZ_DW_PRO_OUT                    \
    "    subs  r2, r2, r0\n"             \
    "    subs  r2, #1\n"                 \
    "    str   r2, [sp, #4]\n"           /* y - x - 1: RECORD_IN adds x + c + 1 */ \
    "    ldm   r3!, {r5, r6, r7}\n"      /* rq, add, act_min + out_xor */ \
    "    str   r5, [sp, #20]\n"          \
    "    str   r5, [sp, #56]\n"          \
    "    str   r6, [sp, #24]\n"          \
    "    str   r7, [sp, #28]\n"          \
    "    ldm   r3!, {r2, r5, r6, r7}\n"  /* act_max + out_xor, groups, x_step, y_step */ \
    "    str   r2, [sp, #32]\n"          \
    "    str   r5, [sp, #40]\n"          \
    "    str   r6, [sp, #44]\n"          \
    "    subs  r7, r7, r6\n"             \
    "    str   r7, [sp, #48]\n"          /* y_step - x_step */ \
    "    ldr   r5, [sp]\n"               \
    "    str   r5, [sp, #52]\n"          \
    "    ldr   r5, [r3]\n"               /* the padding byte: [sp+8] */
/* From a group's last channel (r0 = its x + C, r1 = C) to the next group of the run: x + x_step, its end x + C, the
 * first channel's records again, y + y_step (PZ_DW_NEXT_GROUP and the row loops' PZ_DW_NEXT_BODY). */
#define PZ_DW_GROUP_STEP                 \
    "    ldr   r3, [sp, #44]\n"          \
    "    adds  r0, r0, r3\n"             \
    "    adds  r3, r0, r1\n"             \
    "    str   r3, [sp, #16]\n"          /* end = x + C */ \
    "    ldr   r3, [sp, #52]\n"          \
    "    str   r3, [sp]\n"               \
    "    ldr   r3, [sp, #56]\n"          \
    "    str   r3, [sp, #20]\n"          \
    "    ldr   r3, [sp, #4]\n"           \
    "    ldr   r4, [sp, #48]\n"          \
    "    adds  r3, r3, r4\n"             \
    "    str   r3, [sp, #4]\n"
/* After a group's last channel (r0 = its x + C, r1 = C): the next group of the run, x_step and y_step further on,
 * from the first channel's records again: about 29 cycles instead of a call (about 190 with the driver's share). */
#define PZ_DW_NEXT_GROUP                 \
    "    ldr   r3, [sp, #40]\n"          \
    "    subs  r3, #1\n"                 \
    "    beq   3f\n"                     \
    "    str   r3, [sp, #40]\n"          \
    PZ_DW_GROUP_STEP                 \
    "    b     1b\n"                     \
    "3:\n"

#define PZ_DW_SPAN_6C "    lsls  r5, r5, #1\n"
#define PZ_DW_ROWSTEP_LR "    add   r0, lr\n"
#define PZ_DW_ACC_FN(NAME, ROW, SPAN, INIT, STORE) \
    PZ_DW_GROUP_FN(NAME, ROW, SPAN, INIT, PZ_DW_FINISH_ACC(STORE), "20", "", PZ_DW_CSTEP_4C, "", "", "", \
                   PZ_DW_ROWSTEP_LR, FULL)
#define PZ_DW_OUT_FN(NAME, ROW, SPAN, INIT, PIXEL3, SATURATED, MODE) \
    PZ_DW_GROUP_FN(NAME, ROW, SPAN, INIT, PZ_DW_FINISH_OUT(PIXEL3), "60", PZ_DW_PRO_OUT, "", PZ_DW_NEXT_GROUP, \
                   SATURATED, "", PZ_DW_ROWSTEP_LR, MODE)
PZ_DW_ACC_FN("pz_q8_dw3x3_quad_m0", PZ_DW_QUAD_ROW, "", PZ_DW_INIT4, PZ_DW_STORE4)
PZ_DW_ACC_FN("pz_q8_dw3x3_quad2_m0", PZ_DW_QUAD2_ROW, PZ_DW_SPAN_6C, PZ_DW_INIT4, PZ_DW_STORE4)
PZ_DW_ACC_FN("pz_q8_dw3x3_triple_m0", PZ_DW_TRIPLE_ROW, "", PZ_DW_INIT3, PZ_DW_STORE3)

/* The same loops with the fused output stage: y[k C + c] for pixel k. */
void pz_q8_dw3x3_quad_out_m0(const uint8_t *x, const uint8_t *w, uint8_t *y, const pz_dw_out_t *g);
void pz_q8_dw3x3_quad2_out_m0(const uint8_t *x, const uint8_t *w, uint8_t *y, const pz_dw_out_t *g);
void pz_q8_dw3x3_triple_out_m0(const uint8_t *x, const uint8_t *w, uint8_t *y, const pz_dw_out_t *g);
#define PZ_DW_SAT4 PZ_DW_OUT_SATURATED("5") PZ_DW_OUT_SATURATED("6") PZ_DW_OUT_SATURATED("7") PZ_DW_OUT_SATURATED("8")
#define PZ_DW_SAT3 PZ_DW_OUT_SATURATED("5") PZ_DW_OUT_SATURATED("6") PZ_DW_OUT_SATURATED("8")
PZ_DW_OUT_FN("pz_q8_dw3x3_quad_out_m0", PZ_DW_QUAD_ROW, "", PZ_DW_INIT4, PZ_DW_PIXEL3, PZ_DW_SAT4, FULL)
PZ_DW_OUT_FN("pz_q8_dw3x3_quad2_out_m0", PZ_DW_QUAD2_ROW, PZ_DW_SPAN_6C, PZ_DW_INIT4, PZ_DW_PIXEL3, PZ_DW_SAT4, FULL)
PZ_DW_OUT_FN("pz_q8_dw3x3_triple_out_m0", PZ_DW_TRIPLE_ROW, "", PZ_DW_INIT3, "", PZ_DW_SAT3, FULL)
void pz_q8_dw3x3_triple2_out_m0(const uint8_t *x, const uint8_t *w, uint8_t *y, const pz_dw_out_t *g);
PZ_DW_OUT_FN("pz_q8_dw3x3_triple2_out_m0", PZ_DW_TRIPLE2_ROW, PZ_DW_SPAN_6C, PZ_DW_INIT3, "", PZ_DW_SAT3, FULL)

/* Six pixels side by side at stride 1, fused output stage only (pz_q8_dw3x3_hex_out_m0): the accumulators are
 * r8..r12 and lr, so 3C and the kernel-row step (row - 6C) are not in registers: the row pointer steps 2C (bytes
 * 2k + 1 and 2k + 2 at [r0, C] and [r0, 2C] after k steps) and the row step is read from the frame ([sp+36]). One
 * kernel row: 8 bytes, each loaded once, 18 MACs and 8 copies (the fewest: a MAC overwrites one operand at its last
 * use, and 8 bytes + 3 weights can be overwritten 10 times here), three 2C steps: 63 cycles. Per channel about 324
 * cycles for 54 MACs (6.0 cycles/MAC) against 229 for 36 (6.4) in the fused quad, as the bias, the weight
 * extraction and the record loads are shared by six pixels. */
#define PZ_DW_HEX_ROW_(FIRST, LAST)                                                                      \
    FIRST                        PZ_DW_MAC("r3", "r5", "r8")                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_COPY("r6", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r8") PZ_DW_COPY("r6", "r9") PZ_DW_MAC("r3", "r5", "r10") \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_COPY("r7", "r9") PZ_DW_COPY("r6", "r10") PZ_DW_MAC("r3", "r5", "r11") \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r10") PZ_DW_COPY("r6", "r11") PZ_DW_MAC("r3", "r5", "r12") \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r5", "r3", "lr") PZ_DW_COPY("r7", "r11") PZ_DW_MAC("r3", "r6", "r12") \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r6", "r3", "lr") PZ_DW_MAC("r3", "r7", "r12")                \
    "    adds  r0, r0, r2\n"                                                                             \
    LAST                         PZ_DW_MAC("r3", "r7", "lr")
/* Stride 2 (pixel k reads columns 2k..2k + 2): 13 bytes, 18 MACs, 4 copies (the even bytes b2..b8, which feed two
 * pixels; b10 and b12 meet u0's and u2's last uses), five 2C steps (as in the stride-1 row; four of 3C took two
 * ADDS each): 71 cycles. */
#define PZ_DW_HEX2_ROW_(FIRST, LAST)                                                                     \
    FIRST                        PZ_DW_MAC("r3", "r5", "r8")                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r3", "r6", "r8")                                             \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r3", "r6", "r9")                                             \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r9") PZ_DW_MAC("r3", "r5", "r10")                     \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r3", "r6", "r10")                                            \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r10") PZ_DW_MAC("r3", "r5", "r11")                    \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r3", "r6", "r11")                                            \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_COPY("r7", "r11") PZ_DW_MAC("r3", "r5", "r12")                    \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r3", "r6", "r12")                                            \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r5", "r3", "lr") PZ_DW_MAC("r3", "r7", "r12")                \
    "    adds  r0, r0, r2\n"                                                                             \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r6", "r3", "lr")                                             \
    LAST                         PZ_DW_MAC("r7", "r3", "lr")
/* The first and last byte of a kernel row: read (the window inside the input), or the padding byte from the frame
 * ([sp+8], PZ_DW_PRO_OUT): a group whose window has one padding column at its left or right end (stride 1 SAME:
 * the first and last group of a row; stride 2 SAME with an even width: the last) reads its rows in place, with no
 * band copied, at the same cycles. */
#define PZ_DW_LD_PAD "    ldr   r3, [sp, #8]\n"
#define PZ_DW_HEX_ROW PZ_DW_HEX_ROW_("    ldrb  r3, [r0]\n", "    ldrb  r3, [r0, r1]\n")
#define PZ_DW_HEX_ROW_L PZ_DW_HEX_ROW_(PZ_DW_LD_PAD, "    ldrb  r3, [r0, r1]\n")
#define PZ_DW_HEX_ROW_R PZ_DW_HEX_ROW_("    ldrb  r3, [r0]\n", PZ_DW_LD_PAD)
#define PZ_DW_HEX_ROW_LR PZ_DW_HEX_ROW_(PZ_DW_LD_PAD, PZ_DW_LD_PAD)
#define PZ_DW_HEX2_ROW PZ_DW_HEX2_ROW_("    ldrb  r3, [r0]\n", "    ldrb  r3, [r0, r2]\n")
#define PZ_DW_HEX2_ROW_R PZ_DW_HEX2_ROW_("    ldrb  r3, [r0]\n", PZ_DW_LD_PAD)
#define PZ_DW_SPAN_10C "    lsls  r5, r2, #2\n    adds  r5, r5, r2\n"
#define PZ_DW_INIT6 PZ_DW_INIT4 "    mov   r12, r3\n    mov   lr, r3\n"
#define PZ_DW_ROWSTEP_FRAME "    ldr   r3, [sp, #36]\n    add   r0, r3\n"
#define PZ_DW_POST_HEX "    mov   r6, lr\n    str   r6, [sp, #36]\n"  /* row - SPAN */
/* The six outputs (PZ_DW_FINISH_OUT's registers): pixels 0, 2 at [r7], [r7, 2C]; 4 at + 2C + 2C; 3, 5 at + 3C,
 * + 5C (C from the frame); 1 at + C. */
#define PZ_DW_FINISH_HEX                 \
    PZ_DW_RECORD_IN                      \
    PZ_DW_OUT("", "[r7]", "4")           \
    PZ_DW_OUT("    mov   r1, r10\n", "[r7, r2]", "5") \
    "    adds  r7, r7, r2\n"             \
    PZ_DW_OUT("    mov   r1, r12\n", "[r7, r2]", "6") \
    "    lsrs  r1, r2, #1\n"             \
    "    adds  r7, r7, r1\n"             \
    PZ_DW_OUT("    mov   r1, r11\n", "[r7]", "7") \
    PZ_DW_OUT("    mov   r1, lr\n", "[r7, r2]", "8") \
    "    subs  r7, r7, r2\n"             \
    PZ_DW_OUT("    mov   r1, r9\n", "[r7]", "9") \
    "    lsrs  r1, r2, #1\n"             /* C again */ \
    "    mov   r0, r8\n"
#define PZ_DW_SAT6 PZ_DW_OUT_SATURATED("4") PZ_DW_OUT_SATURATED("5") PZ_DW_OUT_SATURATED("6") \
    PZ_DW_OUT_SATURATED("7") PZ_DW_OUT_SATURATED("8") PZ_DW_OUT_SATURATED("9")
typedef void pz_dw_out_fn(const uint8_t *x, const uint8_t *w, uint8_t *y, const pz_dw_out_t *g);
pz_dw_out_fn pz_q8_dw3x3_hex_out_m0, pz_q8_dw3x3_hex_t_out_m0, pz_q8_dw3x3_hex_b_out_m0;
pz_dw_out_fn pz_q8_dw3x3_hex2_out_m0, pz_q8_dw3x3_hex2_b_out_m0;
pz_dw_out_fn pz_q8_dw3x3_hex_lr_out_m0, pz_q8_dw3x3_hex_tlr_out_m0, pz_q8_dw3x3_hex_blr_out_m0;
#define PZ_DW_HEX_FN(NAME, ROW, SPAN, MODE) \
    PZ_DW_GROUP_FN(NAME, ROW, SPAN, PZ_DW_INIT6, PZ_DW_FINISH_HEX, "60", PZ_DW_PRO_OUT, "", PZ_DW_NEXT_GROUP, \
                   PZ_DW_SAT6, PZ_DW_POST_HEX, PZ_DW_ROWSTEP_FRAME, MODE)
/* a row of 6 at stride 1 with a 6-wide input: one group, a padding column at both ends */
PZ_DW_HEX_FN("pz_q8_dw3x3_hex_lr_out_m0", PZ_DW_HEX_ROW_LR, PZ_DW_SPAN_6C, FULL)
PZ_DW_HEX_FN("pz_q8_dw3x3_hex_tlr_out_m0", PZ_DW_HEX_ROW_LR, PZ_DW_SPAN_6C, TOP)
PZ_DW_HEX_FN("pz_q8_dw3x3_hex_blr_out_m0", PZ_DW_HEX_ROW_LR, PZ_DW_SPAN_6C, BOT)

/* A row's groups of six in one call: the loop body three times (bodies p, l, r: the plain rows, the form with the
 * padding column at the left, at the right), the first group in body l when pz_dw_out_t forms bit 0 is set, the
 * last in body r when bit 1 is (SAME: a row's first and last group), the others in body p; from one group to the
 * next as PZ_DW_NEXT_GROUP, then on to the body of the next group; after the last, the same groups of the next
 * output row when pz_dw_out_t rows says so (the rows of a layer whose groups of six fill its rows: one call, about
 * 250 cycles a row fewer than a call a row; PZ_DW_NEXT_ROW). Frame as the fused loops' + [sp+60] = forms, [sp+64] =
 * rows left, [sp+68] = row_x, [sp+72] = row_dy, [sp+76] = groups a row. Each body's start is a global label,
 * NAME_p / _l / _r (tests/test_conv_depthwise.py sees which ran). */
#define PZ_DW_PRO_ROW PZ_DW_PRO_OUT      \
    "    ldr   r6, [r3, #4]\n"           \
    "    str   r6, [sp, #60]\n"          /* forms */ \
    "    ldr   r6, [r3, #8]\n"           \
    "    str   r6, [sp, #64]\n"          /* rows */ \
    "    ldr   r6, [r3, #12]\n"          \
    "    str   r6, [sp, #68]\n"          /* row_x */ \
    "    ldr   r6, [r3, #16]\n"          \
    "    str   r6, [sp, #72]\n"          /* row_dy */ \
    "    ldr   r6, [sp, #40]\n"          \
    "    str   r6, [sp, #76]\n"          /* groups */
/* After a row's last group (r0 = its x + C): the next row if any (x + row_x, y - x - 1 + row_dy, the groups and the
 * first channel's records again, RECORDS: its end and the dw record pointer), then to the entry's choice of body
 * (.L NAME e); else to the return (.L NAME x). */
#define PZ_DW_NEXT_ROW(NAME, RECORDS)      \
    ".L" NAME "n:\n"                       \
    "    ldr   r5, [sp, #64]\n"            \
    "    subs  r5, #1\n"                   \
    "    beq   .L" NAME "x\n"              \
    "    str   r5, [sp, #64]\n"            \
    "    ldr   r3, [sp, #68]\n"            \
    "    adds  r0, r0, r3\n"               \
    "    ldr   r3, [sp, #4]\n"             \
    "    ldr   r4, [sp, #72]\n"            \
    "    adds  r3, r3, r4\n"               \
    "    str   r3, [sp, #4]\n"             \
    "    ldr   r3, [sp, #76]\n"            \
    "    str   r3, [sp, #40]\n"            \
    RECORDS                                \
    "    ldr   r3, [sp, #56]\n"            \
    "    str   r3, [sp, #20]\n"            \
    "    b     .L" NAME "e\n"
#define PZ_DW_ROW_RECORDS                  \
    "    adds  r3, r0, r1\n"               \
    "    str   r3, [sp, #16]\n"            /* end = x + C */ \
    "    ldr   r3, [sp, #52]\n"            \
    "    str   r3, [sp]\n"
/* After a group's last channel: the next group (STEP: x, end, records, y), the last one in body r if forms bit 1 is
 * set; after a row's last group on to the next row (PZ_DW_NEXT_ROW). */
#define PZ_DW_NEXT_BODY_STEP(NAME, STEP)   \
    "    ldr   r5, [sp, #40]\n"            \
    "    subs  r5, #1\n"                   \
    "    bne   5f\n"                       \
    "    b     .L" NAME "n\n"              \
    "5:\n"                                 \
    "    str   r5, [sp, #40]\n"            \
    STEP                                   \
    "    cmp   r5, #1\n"                   /* the last group next: body r if forms bit 1 */ \
    "    bne   6f\n"                       \
    "    ldr   r5, [sp, #60]\n"            \
    "    lsrs  r5, r5, #2\n"               \
    "    bcc   6f\n"                       \
    "    b     " NAME "_r\n"               \
    "6:\n"                                 \
    "    b     " NAME "_p\n"
#define PZ_DW_NEXT_BODY(NAME) PZ_DW_NEXT_BODY_STEP(NAME, PZ_DW_GROUP_STEP)
#define PZ_DW_BODY(NAME, B, ROW, MODE)                                                      \
    "    .global " NAME B "\n"                                                              \
    NAME B ":\n"                                                                            \
    PZ_DW_GROUP_LOOP(ROW, PZ_DW_INIT6, PZ_DW_FINISH_HEX, PZ_DW_ROWSTEP_FRAME, MODE)         \
    PZ_DW_NEXT_BODY(NAME)                                                                   \
    PZ_DW_SAT6
/* ENTRY_L: to body l when forms bit 0 is set (stride 1; at stride 2 a left padding column takes the band) */
#define PZ_DW_ENTRY_L(NAME) "    lsrs  r5, r5, #1\n    bcc   7f\n    b     " NAME "_l\n7:\n"
/* The row functions' entry into the first group's body: body l if ENTRY_L finds forms bit 0 (r5 = forms), else
 * body r for a row of one group with forms bit 1, else body p; and their return (.L NAME x). */
#define PZ_DW_FIRST_BODY(NAME, ENTRY_L)    \
    "    ldr   r5, [sp, #60]\n"            \
    ENTRY_L                                \
    "    ldr   r6, [sp, #40]\n"            /* one group: body r if forms bit 1 */ \
    "    cmp   r6, #1\n"                   \
    "    bne   8f\n"                       \
    "    lsrs  r5, r5, #1\n"               \
    "    bcc   8f\n"                       \
    "    b     " NAME "_r\n"               \
    "8:\n"
#define PZ_DW_ROW_FN_END(NAME)             \
    ".L" NAME "x:\n"                       \
    "    add   sp, #80\n"                  \
    PZ_M0_RESTORE_R4_R11_RETURN            \
    "    .size   " NAME ", . - " NAME "\n" \
    "    .popsection\n");
#define PZ_DW_HEX_ROW_FN(NAME, ROWP, ROWR, SPAN, MODE, ENTRY_L, BODY_L)                     \
__asm__(                                                                                    \
    PZ_DW_GROUP_ENTRY(NAME, SPAN, "80", PZ_DW_PRO_ROW, "", PZ_DW_POST_HEX, MODE)            \
    ".L" NAME "e:\n"                                                                        \
    PZ_DW_FIRST_BODY(NAME, ENTRY_L)                                                         \
    PZ_DW_BODY(NAME, "_p", ROWP, MODE)                                                      \
    BODY_L                                                                                  \
    PZ_DW_BODY(NAME, "_r", ROWR, MODE)                                                      \
    PZ_DW_NEXT_ROW(NAME, PZ_DW_ROW_RECORDS)                                                 \
    PZ_DW_ROW_FN_END(NAME)
#define PZ_DW_HEX_ROW_FN1(NAME, MODE) \
    PZ_DW_HEX_ROW_FN(NAME, PZ_DW_HEX_ROW, PZ_DW_HEX_ROW_R, PZ_DW_SPAN_6C, MODE, PZ_DW_ENTRY_L(NAME), \
                     PZ_DW_BODY(NAME, "_l", PZ_DW_HEX_ROW_L, MODE))
#define PZ_DW_HEX_ROW_FN2(NAME, MODE) \
    PZ_DW_HEX_ROW_FN(NAME, PZ_DW_HEX2_ROW, PZ_DW_HEX2_ROW_R, PZ_DW_SPAN_10C, MODE, "    lsrs  r5, r5, #1\n", "")
PZ_DW_HEX_ROW_FN1("pz_q8_dw3x3_hex_out_m0", FULL)
PZ_DW_HEX_ROW_FN1("pz_q8_dw3x3_hex_t_out_m0", TOP)
PZ_DW_HEX_ROW_FN1("pz_q8_dw3x3_hex_b_out_m0", BOT)
PZ_DW_HEX_ROW_FN2("pz_q8_dw3x3_hex2_out_m0", FULL)
PZ_DW_HEX_ROW_FN2("pz_q8_dw3x3_hex2_b_out_m0", BOT)

/* Eight channels at stride 1 (pd_mobilenet's first depthwise layer, 48x48x8), the kernel rows inside the input: the
 * six-pixel row function (bodies p, l, r, forms as PZ_DW_HEX_ROW_FN) with C = 8 built into the code. A kernel row's
 * bytes lie 8 apart, so LDRB's immediate offsets reach four of them (0..24) and one 32-byte step the other four: r1
 * and r2 (C and 2C in the general loop) are free and hold the row step (row - 32, one ADDS a kernel row instead of
 * LDR + ADD) and the channel's dw record pointer (LDM, no frame loads and stores); the output bytes lie 8 apart too
 * (STRB immediates). Per channel 20 cycles fewer than the general loop (303 against 323): 2 ADDS of each kernel
 * row's three, 8 of the record loads, 4 of the row steps, 4 of the output pointers, less 2 for reloading r1. One
 * kernel row: 8 bytes, 18 MACs, 8 copies, one step: 61 cycles. Frame as PZ_DW_HEX_ROW_FN's ([sp+4] = y - x - 1 is
 * the same for every group of the row: x_step = y_step = 5C at stride 1), + [sp+36] = the row step. */
#define PZ_DW_HEX8_ROW_(FIRST, LAST)                                                                     \
    FIRST                        PZ_DW_MAC("r3", "r5", "r8")                                             \
    "    ldrb  r3, [r0, #8]\n"   PZ_DW_COPY("r6", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    ldrb  r3, [r0, #16]\n"  PZ_DW_COPY("r7", "r8") PZ_DW_COPY("r6", "r9") PZ_DW_MAC("r3", "r5", "r10") \
    "    ldrb  r3, [r0, #24]\n"  PZ_DW_COPY("r7", "r9") PZ_DW_COPY("r6", "r10") PZ_DW_MAC("r3", "r5", "r11") \
    "    adds  r0, #32\n"                                                                                \
    "    ldrb  r3, [r0]\n"       PZ_DW_COPY("r7", "r10") PZ_DW_COPY("r6", "r11") PZ_DW_MAC("r3", "r5", "r12") \
    "    ldrb  r3, [r0, #8]\n"   PZ_DW_MAC("r5", "r3", "lr") PZ_DW_COPY("r7", "r11") PZ_DW_MAC("r3", "r6", "r12") \
    "    ldrb  r3, [r0, #16]\n"  PZ_DW_MAC("r6", "r3", "lr") PZ_DW_MAC("r3", "r7", "r12")                \
    LAST                         PZ_DW_MAC("r3", "r7", "lr")
#define PZ_DW_HEX8_ROW PZ_DW_HEX8_ROW_("    ldrb  r3, [r0]\n", "    ldrb  r3, [r0, #24]\n")
#define PZ_DW_HEX8_ROW_L PZ_DW_HEX8_ROW_(PZ_DW_LD_PAD, "    ldrb  r3, [r0, #24]\n")
#define PZ_DW_HEX8_ROW_R PZ_DW_HEX8_ROW_("    ldrb  r3, [r0]\n", PZ_DW_LD_PAD)
/* One channel (r0 = x + c, r1 = row - 32, r2 = its dw record): bias and taps 0..3 (LDM), kernel row 0, taps 0..3
 * and 4..7 again for row 1 (3, 4, 5), taps 4..7 and 8 for row 2 (6, 7, 8; r2 then at the next record), back to row
 * 0 of channel c + 1 ([sp+12] = 1 - 2 row - 32), the six outputs (PZ_DW_RECORD_IN, PZ_DW_OUT: y + c + 8 k), r1 the
 * row step again; to 1b until x + C ([sp+16]). */
#define PZ_DW_HEX8_LOOP(ROW)                                                                             \
    "1:\n"                                                                                               \
    "    ldm   r2!, {r3, r7}\n"      /* folded bias, taps 0..3 */                                        \
    PZ_DW_INIT6                                                                                          \
    PZ_DW_ROW0(ROW)                                                                                      \
    "    adds  r0, r0, r1\n"                                                                             \
    "    subs  r2, #4\n"                                                                                 \
    PZ_DW_TAPS_345("r2")                                                                                 \
    ROW                                                                                                  \
    "    adds  r0, r0, r1\n"                                                                             \
    "    subs  r2, #4\n"                                                                                 \
    "    ldm   r2!, {r6, r7}\n"      /* taps 4..7, tap 8 and 3 pad bytes: r2 = the next record */        \
    "    lsls  r5, r6, #8\n"         /* taps 6, 7, 8 */                                                  \
    "    asrs  r5, r5, #24\n"                                                                            \
    "    asrs  r6, r6, #24\n"                                                                            \
    "    sxtb  r7, r7\n"                                                                                 \
    ROW                                                                                                  \
    "    ldr   r3, [sp, #12]\n"                                                                          \
    "    add   r0, r3\n"             /* back to row 0, next channel */                                   \
    PZ_DW_RECORD_IN                                                                                      \
    PZ_DW_OUT("", "[r7]", "4")                                                                           \
    PZ_DW_OUT("    mov   r1, r9\n", "[r7, #8]", "5")                                                     \
    PZ_DW_OUT("    mov   r1, r10\n", "[r7, #16]", "6")                                                   \
    PZ_DW_OUT("    mov   r1, r11\n", "[r7, #24]", "7")                                                   \
    "    adds  r7, #32\n"                                                                                \
    PZ_DW_OUT("    mov   r1, r12\n", "[r7]", "8")                                                        \
    PZ_DW_OUT("    mov   r1, lr\n", "[r7, #8]", "9")                                                     \
    "    mov   r0, r8\n"                                                                                 \
    "    ldr   r1, [sp, #36]\n"                                                                          \
    "    ldr   r3, [sp, #16]\n"                                                                          \
    "    cmp   r0, r3\n"                                                                                 \
    "    beq   2f\n"                                                                                     \
    "    b     1b\n"                 /* the loop is past BNE's reach */                                  \
    "2:\n"
/* From a group's last channel (r0 = its x + C) to the next group: x + x_step, its end, the first channel's records
 * again (y - x - 1 stays): PZ_DW_NEXT_BODY_STEP's STEP. */
#define PZ_DW_HEX8_GROUP_STEP              \
    "    ldr   r3, [sp, #44]\n"            \
    "    adds  r0, r0, r3\n"               \
    "    movs  r3, r0\n"                   \
    "    adds  r3, #8\n"                   \
    "    str   r3, [sp, #16]\n"            /* end = x + C */ \
    "    ldr   r2, [sp, #52]\n"            \
    "    ldr   r3, [sp, #56]\n"            \
    "    str   r3, [sp, #20]\n"
#define PZ_DW_HEX8_BODY(NAME, B, ROW)       \
    "    .global " NAME B "\n"              \
    NAME B ":\n"                            \
    PZ_DW_HEX8_LOOP(ROW)                    \
    PZ_DW_NEXT_BODY_STEP(NAME, PZ_DW_HEX8_GROUP_STEP) \
    PZ_DW_SAT6
/* PZ_DW_NEXT_ROW's RECORDS: the end x + 8; the dw records from the frame (body entry: r2 = [sp]) */
#define PZ_DW_HEX8_ROW_RECORDS "    movs  r3, r0\n    adds  r3, #8\n    str   r3, [sp, #16]\n"
pz_dw_out_fn pz_q8_dw3x3_hex8_out_m0;
#define PZ_DW_HEX8_FN(NAME)                                                                               \
__asm__(                                                                                                  \
    PZ_M0_FUNC(NAME)                                                                                      \
    PZ_M0_SAVE_R4_R11                                                                                     \
    "    sub   sp, #80\n"                                                                                 \
    "    str   r1, [sp]\n"                                                                                \
    "    str   r2, [sp, #4]\n"                                                                            \
    "    ldm   r3!, {r1, r4}\n"      /* r1 = C (8), r4 = row */                                           \
    PZ_DW_PRO_ROW                                                                                         \
    "    str   r5, [sp, #8]\n"       /* the padding byte */                                               \
    "    adds  r7, r0, r1\n"                                                                              \
    "    str   r7, [sp, #16]\n"      /* end: x + C */                                                     \
    "    lsls  r7, r4, #1\n"                                                                              \
    "    adds  r7, #31\n"                                                                                 \
    "    rsbs  r7, r7, #0\n"                                                                              \
    "    str   r7, [sp, #12]\n"      /* 1 - 2 row - 32 */                                                 \
    "    movs  r1, r4\n"                                                                                  \
    "    subs  r1, #32\n"                                                                                 \
    "    str   r1, [sp, #36]\n"      /* row - 32 */                                                       \
    ".L" NAME "e:\n"                                                                                      \
    "    ldr   r2, [sp]\n"                                                                                \
    PZ_DW_FIRST_BODY(NAME, PZ_DW_ENTRY_L(NAME))                                                           \
    PZ_DW_HEX8_BODY(NAME, "_p", PZ_DW_HEX8_ROW)                                                           \
    PZ_DW_HEX8_BODY(NAME, "_l", PZ_DW_HEX8_ROW_L)                                                         \
    PZ_DW_HEX8_BODY(NAME, "_r", PZ_DW_HEX8_ROW_R)                                                         \
    PZ_DW_NEXT_ROW(NAME, PZ_DW_HEX8_ROW_RECORDS)                                                          \
    PZ_DW_ROW_FN_END(NAME)
PZ_DW_HEX8_FN("pz_q8_dw3x3_hex8_out_m0")

/* The same forms of the fused three-pixel loops (a SAME row's last group of three: a padding column at its right; a
 * row of three at stride 1 with a 3-wide input: at both ends), where only they would need a band. */
pz_dw_out_fn pz_q8_dw3x3_triple_r_out_m0, pz_q8_dw3x3_triple_lr_out_m0, pz_q8_dw3x3_triple_tr_out_m0;
pz_dw_out_fn pz_q8_dw3x3_triple_tlr_out_m0, pz_q8_dw3x3_triple_br_out_m0, pz_q8_dw3x3_triple_blr_out_m0;
pz_dw_out_fn pz_q8_dw3x3_triple2_r_out_m0, pz_q8_dw3x3_triple2_br_out_m0;
#define PZ_DW_TRIPLE_ROW_R PZ_DW_TRIPLE_ROW_("    ldrb  r3, [r0]\n", PZ_DW_LD_PAD)
#define PZ_DW_TRIPLE_ROW_LR PZ_DW_TRIPLE_ROW_(PZ_DW_LD_PAD, PZ_DW_LD_PAD)
#define PZ_DW_TRIPLE_FN(NAME, ROW, SPAN, MODE) \
    PZ_DW_OUT_FN(NAME, ROW, SPAN, PZ_DW_INIT3, "", PZ_DW_SAT3, MODE)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple_r_out_m0", PZ_DW_TRIPLE_ROW_R, "", FULL)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple_lr_out_m0", PZ_DW_TRIPLE_ROW_LR, "", FULL)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple_tr_out_m0", PZ_DW_TRIPLE_ROW_R, "", TOP)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple_tlr_out_m0", PZ_DW_TRIPLE_ROW_LR, "", TOP)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple_br_out_m0", PZ_DW_TRIPLE_ROW_R, "", BOT)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple_blr_out_m0", PZ_DW_TRIPLE_ROW_LR, "", BOT)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple2_r_out_m0", PZ_DW_TRIPLE2_ROW_(PZ_DW_LD_PAD), PZ_DW_SPAN_6C, FULL)
PZ_DW_TRIPLE_FN("pz_q8_dw3x3_triple2_br_out_m0", PZ_DW_TRIPLE2_ROW_(PZ_DW_LD_PAD), PZ_DW_SPAN_6C, BOT)

/* Tiny outputs: a layer whose output is one 3x3 tile (pd_mobilenet's last depthwise layers: stride 1 over a 3x3
 * input, SAME; stride 2 over a 6x6 one, SAME, padding below and right) runs channel by channel over the whole tile,
 * one call for the layer (pz_q8_dw3x3_tile_out_m0 / tile2_out_m0): per channel and output row the bias (with the
 * padding row's taps, as MODE TOP / BOT do), per kernel row that reaches the input its three weights extracted and
 * each byte of the input row loaded once for the three pixels, then the row's three outputs (the fused stage). The
 * taps in the padding columns are not run: the sums of the weights they would meet (r11: u0 at the left, lr: u2 at
 * the right; 1 cycle a kernel row) times the padding byte go to the row's first / last pixel (the folded bias counts
 * pad x w for every padding cell). Stride 1: 7 of the 9 MACs of a kernel row, 3 bytes, 3 copies: 23 cycles (the
 * three-pixel row with its padding columns: 33); stride 2: 8 MACs, 6 bytes, 1 copy: 30. Per channel (measured, C =
 * 256 against 128 / 128 against 64) about 484 cycles for 81 nominal MACs at stride 1 and 546 at stride 2, against
 * 528 and 574 in three rows of three pixels. Registers: r0 = the input row (channel c), r1 = C, r2 = 2C, r12 = 3C,
 * r8..r10 the row's accumulators, r11 the record at stride 2; frame: [sp] = the channel's dw record, [sp+4] = y + c,
 * [sp+8] = the padding byte, [sp+12] = x + c, [sp+16] = the channel's one-multiply record, [sp+20] = add, [sp+24] =
 * x + C (end), [sp+28] / [sp+32] = act_min / act_max + out_xor (PZ_DW_OUT_SATURATED); the last row's output steps
 * y + c and the one-multiply record, at stride 1 its kernel row 1 the dw record. Write order: channel by channel, so
 * its first output byte is written before the other channels of any window are read: a layer written over its own
 * input needs its output clear of it (convgen.OVERLAP_LOOKBACK "depthwise_conv2d_tile"). */
pz_dw_out_fn pz_q8_dw3x3_tile_out_m0, pz_q8_dw3x3_tile2_out_m0;
/* kernel row 0, 1, 2's taps into u0, u1, u2 (r5, r6, r7) from the channel's record */
#define PZ_DW_TILE_K0(REC)                                                                               \
    REC                                                                                                 \
    "    ldr   r7, [r4, #4]\n"                                                                          \
    "    sxtb  r5, r7\n"                                                                                \
    "    sxth  r6, r7\n"                                                                                \
    "    asrs  r6, r6, #8\n"                                                                            \
    "    lsls  r7, r7, #8\n"                                                                            \
    "    asrs  r7, r7, #24\n"
#define PZ_DW_TILE_K1(REC)                                                                               \
    REC                                                                                                 \
    "    ldr   r5, [r4, #4]\n"                                                                          \
    "    ldr   r7, [r4, #8]\n"                                                                          \
    "    asrs  r5, r5, #24\n"                                                                           \
    "    sxtb  r6, r7\n"                                                                                \
    "    sxth  r7, r7\n"                                                                                \
    "    asrs  r7, r7, #8\n"
#define PZ_DW_TILE_K2(REC)                                                                               \
    REC                                                                                                 \
    "    ldr   r6, [r4, #8]\n"                                                                          \
    "    ldr   r7, [r4, #12]\n"                                                                         \
    "    lsls  r5, r6, #8\n"                                                                            \
    "    asrs  r5, r5, #24\n"                                                                           \
    "    asrs  r6, r6, #24\n"                                                                           \
    "    sxtb  r7, r7\n"
/* the sums of the weights the padding columns would meet: the row's first kernel row sets them, the others add */
#define PZ_DW_TILE_SUM1 "    mov   r11, r5\n    mov   lr, r7\n"
#define PZ_DW_TILE_SUMN "    add   r11, r5\n    add   lr, r7\n"
#define PZ_DW_TILE2_SUM1 "    mov   lr, r7\n"
#define PZ_DW_TILE2_SUMN "    add   lr, r7\n"
/* Stride 1, one kernel row over a 3-wide input row x0, x1, x2 (the padding columns left out): pixel 0 += x0 u1 +
 * x1 u2, pixel 1 += x0 u0 + x1 u1 + x2 u2, pixel 2 += x1 u0 + x2 u1: 7 MACs, 3 copies; then on to the next row
 * (3C). */
#define PZ_DW_TILE_ROW                                                                                   \
    "    ldrb  r3, [r0]\n"       PZ_DW_COPY("r6", "r8") PZ_DW_MAC("r3", "r5", "r9")                      \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_COPY("r7", "r8") PZ_DW_COPY("r6", "r9") PZ_DW_MAC("r5", "r3", "r10") \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r7", "r3", "r9") PZ_DW_MAC("r3", "r6", "r10")                \
    "    add   r0, r12\n"
/* Stride 2, one kernel row over a 6-wide input row x0..x5 (the padding column x6 left out): pixel 0 += x0 u0 +
 * x1 u1 + x2 u2, pixel 1 += x2 u0 + x3 u1 + x4 u2, pixel 2 += x4 u0 + x5 u1: 8 MACs, 1 copy; on to the next row
 * (two 3C steps). */
#define PZ_DW_TILE2_ROW                                                                                  \
    PZ_DW_S2_ROW_HEAD                                                                                    \
    "    ldrb  r3, [r0, r1]\n"   PZ_DW_MAC("r7", "r3", "r9") PZ_DW_MAC("r3", "r5", "r10")                \
    "    ldrb  r3, [r0, r2]\n"   PZ_DW_MAC("r3", "r6", "r10")                                            \
    "    add   r0, r12\n"
/* the record pointer into r4: from the frame (stride 1: r11 holds a sum) or from r11 (stride 2) */
#define PZ_DW_TILE_REC "    ldr   r4, [sp]\n"
#define PZ_DW_TILE2_REC "    mov   r4, r11\n"
/* stride 1, the channel's last use of its record: the frame gets the next one's */
#define PZ_DW_TILE_REC_LAST "    ldr   r4, [sp]\n    adds  r4, #16\n    str   r4, [sp]\n    subs  r4, #16\n"
/* kernel row 1's taps after PZ_DW_TILE_BIAS_TOP (r7 = taps 0..3, r4 = the record + 8) */
#define PZ_DW_TILE_K1_AFTER_TOP          \
    "    asrs  r5, r7, #24\n"            \
    "    ldr   r7, [r4]\n"               \
    "    sxtb  r6, r7\n"                 \
    "    sxth  r7, r7\n"                 \
    "    asrs  r7, r7, #8\n"
/* the bias of an output row into its accumulators (r4 = the record after): all kernel rows inside the input (FULL),
 * row 0 above it (TOP: bias + pad (t0 + t1 + t2), r7 = taps 0..3 and r4 = the record + 8 after), row 2 below it
 * (BOT: bias + pad (t6 + t7 + t8)) */
#define PZ_DW_TILE_BIAS_FULL(REC) REC "    ldr   r3, [r4]\n" PZ_DW_INIT3
#define PZ_DW_TILE_BIAS_TOP "    ldr   r4, [sp]\n    ldm   r4!, {r3, r7}\n" PZ_DW_TOP_HEAD PZ_DW_INIT3
#define PZ_DW_TILE_BIAS_BOT(REC)         \
    REC                                  \
    "    ldr   r3, [r4]\n"               \
    "    ldr   r5, [r4, #8]\n"           \
    "    ldr   r6, [r4, #12]\n"          \
    "    lsls  r7, r5, #8\n"             \
    "    asrs  r7, r7, #24\n"            \
    "    asrs  r5, r5, #24\n"            \
    "    adds  r7, r7, r5\n"             \
    "    sxtb  r6, r6\n"                 \
    "    adds  r7, r7, r6\n"             \
    "    ldr   r5, [sp, #8]\n"           \
    "    muls  r7, r5, r7\n"             \
    "    adds  r3, r3, r7\n"             \
    PZ_DW_INIT3
/* the padding columns' taps: pad x r11 into pixel 0 (stride 1 only), pad x lr into pixel 2 */
#define PZ_DW_TILE_PADS_L                \
    "    mov   r3, r11\n"                \
    "    muls  r3, r4, r3\n"             \
    "    add   r8, r3\n"
#define PZ_DW_TILE_PADS(LEFT)            \
    "    ldr   r4, [sp, #8]\n"           \
    LEFT                                 \
    "    mov   r3, lr\n"                 \
    "    muls  r3, r4, r3\n"             \
    "    add   r10, r3\n"
/* An output row's three bytes (PZ_DW_FINISH_OUT's registers) at y + c + 3 a C (YSTEP: the 3C steps); RQ: after
 * the record's LDM (the last row: "str r0, [sp, #16]", the next channel's record); r1 = C again after. Their
 * saturated branches (PZ_DW_TILE_SAT, in reach of BLE / BGE) follow them, jumped over (SKIP), or lie where the
 * loop passes by them anyway: after its closing branch (the last row), or, TO "b", before the loop (the first row at
 * stride 1, whose code is short enough; PZ_DW_TILE_PRE: 2 cycles a channel fewer than SKIP). */
#define PZ_DW_TILE_SAT(A, B, D) PZ_DW_OUT_SATURATED(A) PZ_DW_OUT_SATURATED(B) PZ_DW_OUT_SATURATED(D)
#define PZ_DW_TILE_SKIP(A, B, D) "    b     " A "9f\n" PZ_DW_TILE_SAT(A, B, D) A "9:\n"
#define PZ_DW_TILE_PRE(A, B, D) \
    "    b     1f\n" PZ_DW_OUT_SATURATED_(D, "f") PZ_DW_OUT_SATURATED_(B, "f") PZ_DW_OUT_SATURATED_(A, "f")
#define PZ_DW_TILE_OUT(YSTEP, RQ, A, B, D, SAT) PZ_DW_TILE_OUT_(YSTEP, RQ, A, B, D, SAT, "f")
#define PZ_DW_TILE_OUT_(YSTEP, RQ, A, B, D, SAT, TO) \
    "    ldr   r0, [sp, #16]\n"          \
    "    ldm   r0!, {r3, r4, r5}\n"      /* L, A, m' << 8 | s */ \
    "    lsrs  r6, r5, #8\n"             \
    "    ldr   r7, [sp, #4]\n"           \
    RQ                                   \
    "    ldr   r0, [sp, #20]\n"          \
    YSTEP                                \
    PZ_DW_OUT_("    mov   r1, r8\n", "[r7]", A, TO) \
    PZ_DW_OUT_("    mov   r1, r10\n", "[r7, r2]", B, TO) \
    "    lsrs  r1, r2, #1\n"             \
    "    adds  r7, r7, r1\n"             \
    PZ_DW_OUT_("    mov   r1, r9\n", "[r7]", D, TO) \
    SAT                                  \
    "    lsrs  r1, r2, #1\n"
#define PZ_DW_TILE_RQ_NEXT "    str   r0, [sp, #16]\n    adds  r1, r7, #1\n    str   r1, [sp, #4]\n"
#define PZ_DW_TILE_3C "    add   r7, r12\n"
/* ROWS: a channel's three output rows, from r0 = x + c (r11 = the record at stride 2; stride 1 keeps it in the
 * frame, as the last row steps it); NEXT_REC: the record pointer on to the next channel (stride 2); SAT2: the last
 * row's saturated branches, after the loop; PRE: before it (PZ_DW_TILE_PRE) */
#define PZ_DW_TILE_FN(NAME, ROWS, NEXT_REC, SAT2, PRE)                                            \
__asm__(                                                                                              \
    PZ_M0_FUNC(NAME)                                                                                  \
    PZ_M0_SAVE_R4_R11                                                                                 \
    "    sub   sp, #36\n"                                                                             \
    "    str   r1, [sp]\n"                                                                            \
    "    mov   r11, r1\n"                                                                             \
    "    str   r2, [sp, #4]\n"                                                                        \
    "    str   r0, [sp, #12]\n"                                                                       \
    "    ldr   r1, [r3]\n"           /* C */                                                          \
    "    adds  r4, r0, r1\n"                                                                          \
    "    str   r4, [sp, #24]\n"      /* end: x + C */                                                 \
    "    ldr   r4, [r3, #8]\n"       /* rq */                                                         \
    "    str   r4, [sp, #16]\n"                                                                       \
    "    ldr   r4, [r3, #12]\n"      /* add */                                                        \
    "    str   r4, [sp, #20]\n"                                                                       \
    "    ldr   r4, [r3, #16]\n"      /* act_min + out_xor */                                          \
    "    str   r4, [sp, #28]\n"                                                                       \
    "    ldr   r4, [r3, #20]\n"      /* act_max + out_xor */                                          \
    "    str   r4, [sp, #32]\n"                                                                       \
    "    ldr   r4, [r3, #36]\n"      /* the padding byte */                                           \
    "    str   r4, [sp, #8]\n"                                                                        \
    "    lsls  r2, r1, #1\n"                                                                          \
    "    adds  r4, r2, r1\n"                                                                          \
    "    mov   r12, r4\n"                                                                             \
    PRE                                                                                               \
    "1:\n"                                                                                            \
    ROWS                                                                                              \
    "    ldr   r0, [sp, #12]\n"      /* the next channel */                                           \
    "    adds  r0, #1\n"                                                                              \
    "    str   r0, [sp, #12]\n"                                                                       \
    NEXT_REC                                                                                          \
    "    ldr   r4, [sp, #24]\n"                                                                       \
    "    cmp   r0, r4\n"                                                                              \
    "    beq   2f\n"                                                                                  \
    "    b     1b\n"                                                                                  \
    SAT2                                                                                              \
    "2:\n"                                                                                            \
    "    add   sp, #36\n"                                                                             \
    PZ_M0_RESTORE_R4_R11_RETURN                                                                       \
    "    .size   " NAME ", . - " NAME "\n"                                                            \
    "    .popsection\n");
#define PZ_DW_TILE2_NEXT_REC "    mov   r4, r11\n    adds  r4, #16\n    mov   r11, r4\n"
/* stride 1 over a 3x3 input: output row 0 from input rows 0, 1 (kernel rows 1, 2), row 1 from rows 0..2, row 2 from
 * rows 1, 2 (kernel rows 0, 1) */
PZ_DW_TILE_FN("pz_q8_dw3x3_tile_out_m0",
    PZ_DW_TILE_BIAS_TOP              /* r0 = x + c: the entry's x, or from the loop's end */
    PZ_DW_TILE_K1_AFTER_TOP PZ_DW_TILE_SUM1 PZ_DW_TILE_ROW
    PZ_DW_TILE_K2(PZ_DW_TILE_REC) PZ_DW_TILE_SUMN PZ_DW_TILE_ROW
    PZ_DW_TILE_PADS(PZ_DW_TILE_PADS_L)
    PZ_DW_TILE_OUT_("", "", "41", "42", "43", "", "b")
    PZ_DW_TILE_BIAS_FULL(PZ_DW_TILE_REC)
    "    ldr   r0, [sp, #12]\n"
    PZ_DW_TILE_K0("") PZ_DW_TILE_SUM1 PZ_DW_TILE_ROW
    PZ_DW_TILE_K1(PZ_DW_TILE_REC) PZ_DW_TILE_SUMN PZ_DW_TILE_ROW
    PZ_DW_TILE_K2(PZ_DW_TILE_REC) PZ_DW_TILE_SUMN PZ_DW_TILE_ROW
    PZ_DW_TILE_PADS(PZ_DW_TILE_PADS_L)
    PZ_DW_TILE_OUT(PZ_DW_TILE_3C, "", "44", "45", "46", PZ_DW_TILE_SKIP("44", "45", "46"))
    PZ_DW_TILE_BIAS_BOT(PZ_DW_TILE_REC)
    "    ldr   r0, [sp, #12]\n"
    "    add   r0, r12\n"
    PZ_DW_TILE_K0("") PZ_DW_TILE_SUM1 PZ_DW_TILE_ROW
    PZ_DW_TILE_K1(PZ_DW_TILE_REC_LAST) PZ_DW_TILE_SUMN PZ_DW_TILE_ROW
    PZ_DW_TILE_PADS(PZ_DW_TILE_PADS_L)
    PZ_DW_TILE_OUT(PZ_DW_TILE_3C PZ_DW_TILE_3C, PZ_DW_TILE_RQ_NEXT, "47", "48", "49", ""),
    "", PZ_DW_TILE_SAT("47", "48", "49"), PZ_DW_TILE_PRE("41", "42", "43"))
/* stride 2 over a 6x6 input (SAME: a padding row below, a padding column at the right): output row 0 from input
 * rows 0..2, row 1 from rows 2..4 (12C on), row 2 from rows 4, 5 (kernel rows 0, 1); r11 = the
 * channel's record */
#define PZ_DW_TILE_12C "    mov   r3, r12\n    lsls  r3, r3, #2\n    add   r0, r3\n"
#define PZ_DW_TILE_24C "    mov   r3, r12\n    lsls  r3, r3, #3\n    add   r0, r3\n"
PZ_DW_TILE_FN("pz_q8_dw3x3_tile2_out_m0",
    PZ_DW_TILE_BIAS_FULL(PZ_DW_TILE2_REC)  /* r0 = x + c: the entry's x, or from the loop's end */
    PZ_DW_TILE_K0("") PZ_DW_TILE2_SUM1 PZ_DW_TILE2_ROW
    PZ_DW_TILE_K1(PZ_DW_TILE2_REC) PZ_DW_TILE2_SUMN PZ_DW_TILE2_ROW
    PZ_DW_TILE_K2(PZ_DW_TILE2_REC) PZ_DW_TILE2_SUMN PZ_DW_TILE2_ROW
    PZ_DW_TILE_PADS("")
    PZ_DW_TILE_OUT("", "", "41", "42", "43", PZ_DW_TILE_SKIP("41", "42", "43"))
    PZ_DW_TILE_BIAS_FULL(PZ_DW_TILE2_REC)
    "    ldr   r0, [sp, #12]\n"
    PZ_DW_TILE_12C
    PZ_DW_TILE_K0("") PZ_DW_TILE2_SUM1 PZ_DW_TILE2_ROW
    PZ_DW_TILE_K1(PZ_DW_TILE2_REC) PZ_DW_TILE2_SUMN PZ_DW_TILE2_ROW
    PZ_DW_TILE_K2(PZ_DW_TILE2_REC) PZ_DW_TILE2_SUMN PZ_DW_TILE2_ROW
    PZ_DW_TILE_PADS("")
    PZ_DW_TILE_OUT(PZ_DW_TILE_3C, "", "44", "45", "46", PZ_DW_TILE_SKIP("44", "45", "46"))
    PZ_DW_TILE_BIAS_BOT(PZ_DW_TILE2_REC)
    "    ldr   r0, [sp, #12]\n"
    PZ_DW_TILE_24C
    PZ_DW_TILE_K0("") PZ_DW_TILE2_SUM1 PZ_DW_TILE2_ROW
    PZ_DW_TILE_K1(PZ_DW_TILE2_REC) PZ_DW_TILE2_SUMN PZ_DW_TILE2_ROW
    PZ_DW_TILE_PADS("")
    PZ_DW_TILE_OUT(PZ_DW_TILE_3C PZ_DW_TILE_3C, PZ_DW_TILE_RQ_NEXT, "47", "48", "49", ""),
    PZ_DW_TILE2_NEXT_REC, PZ_DW_TILE_SAT("47", "48", "49"), "")
#endif

#if PZ_Q8_M0_ASM
uint32_t *pz_q8_words_copy_m0(uint32_t *d, const uint32_t *src, uint32_t n);
uint32_t *pz_q8_words_fill_m0(uint32_t *d, uint32_t v, uint32_t n);

/* n words from src to d (both 4-byte aligned), four at a time by LDM/STM: 13 cycles per 4 words (a C loop of LDR
 * and STR takes about 7.6 per word); returns d + n. */
__asm__(
    PZ_M0_FUNC("pz_q8_words_copy_m0")
    "    push  {r4-r6, lr}\n"
    "    subs  r2, #4\n"
    "    bcc   2f\n"
    "1:\n"
    "    ldm   r1!, {r3, r4, r5, r6}\n"
    "    stm   r0!, {r3, r4, r5, r6}\n"
    "    subs  r2, #4\n"
    "    bcs   1b\n"
    "2:\n"
    "    adds  r2, #4\n"
    "    beq   4f\n"
    "3:\n"
    "    ldm   r1!, {r3}\n"
    "    stm   r0!, {r3}\n"
    "    subs  r2, #1\n"
    "    bne   3b\n"
    "4:\n"
    "    pop   {r4-r6, pc}\n"
    "    .size   pz_q8_words_copy_m0, . - pz_q8_words_copy_m0\n"
    "    .popsection\n");

/* n words v from d on (4-byte aligned), four at a time by STM; returns d + n. */
__asm__(
    PZ_M0_FUNC("pz_q8_words_fill_m0")
    "    push  {r4, r5, lr}\n"
    "    movs  r3, r1\n"
    "    movs  r4, r1\n"
    "    movs  r5, r1\n"
    "    subs  r2, #4\n"
    "    bcc   2f\n"
    "1:\n"
    "    stm   r0!, {r1, r3, r4, r5}\n"
    "    subs  r2, #4\n"
    "    bcs   1b\n"
    "2:\n"
    "    adds  r2, #4\n"
    "    beq   4f\n"
    "3:\n"
    "    stm   r0!, {r1}\n"
    "    subs  r2, #1\n"
    "    bne   3b\n"
    "4:\n"
    "    pop   {r4, r5, pc}\n"
    "    .size   pz_q8_words_fill_m0, . - pz_q8_words_fill_m0\n"
    "    .popsection\n");
#endif

/* Copy rows iy0..iy0+2, columns ix0..ix0+cols-1 of the input into dst (3 rows of cols * C bytes), padding cells =
 * pad: the windows of n = 1, 2 or 4 neighbouring pixels at stride s (cols = (n - 1) s + 3), which the kernels
 * then read like the input with a row stride of cols * C. Each row is at most a pad run, a copy run and a pad run
 * (whole words when C is a multiple of 4 and x 4-byte aligned; dst is: by LDM/STM on the M0+). GCC is told not to
 * call memcpy/memset: the kernels link without a C library (kernel_harness.py). */
__attribute__((optimize("no-tree-loop-distribute-patterns")))
static void dw_band(const pz_q8_conv_t *l, const uint8_t *xu, int32_t iy0, int32_t ix0, uint32_t cols,
                    uint8_t *dst) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c;
    const int32_t in_w = s->in_w;
    const int32_t a = ix0 < 0 ? 0 : ix0, b = ix0 + (int32_t)cols > in_w ? in_w : ix0 + (int32_t)cols;
    const uint32_t words = (C & 3u) == 0 && ((uintptr_t)xu & 3u) == 0;
    const uint32_t pad4 = l->pad * 0x01010101u;
    for (int32_t iy = iy0; iy < iy0 + 3; iy++) {
        const int row_in = iy >= 0 && iy < (int32_t)s->in_h && a < b;
        const uint32_t before = row_in ? (uint32_t)(a - ix0) * C : cols * C;
        const uint32_t copy = row_in ? (uint32_t)(b - a) * C : 0u;
        const uint32_t after = cols * C - before - copy;
        const uint8_t *src = xu + ((uint32_t)(row_in ? iy : 0) * (uint32_t)in_w + (uint32_t)a) * C;
        if (words) {
#if PZ_Q8_M0_ASM
            uint32_t *d = (uint32_t *)(void *)dst;
            if (before) d = pz_q8_words_fill_m0(d, pad4, before / 4u);
            if (copy) d = pz_q8_words_copy_m0(d, (const uint32_t *)(const void *)src, copy / 4u);
            if (after) pz_q8_words_fill_m0(d, pad4, after / 4u);
#else
            pz_word_alias *d = (pz_word_alias *)(void *)dst;
            const pz_word_alias *w = (const pz_word_alias *)(const void *)src;
            for (uint32_t i = 0; i < before / 4u; i++) *d++ = pad4;
            for (uint32_t i = 0; i < copy / 4u; i++) *d++ = w[i];
            for (uint32_t i = 0; i < after / 4u; i++) *d++ = pad4;
#endif
        } else {
            uint8_t *d = dst;
            for (uint32_t i = 0; i < before; i++) *d++ = l->pad;
            for (uint32_t i = 0; i < copy; i++) *d++ = src[i];
            for (uint32_t i = 0; i < after; i++) *d++ = l->pad;
        }
        dst += cols * C;
    }
}

/* acc[k C + c] for every channel c of n = 1..4 pixels side by side at stride s (n > 1: s <= 2), the first
 * one's window starting at x (channel 0), window rows `row` bytes apart. */
static void dw3x3_run(const uint8_t *x, const uint8_t *w, int32_t *acc, uint32_t C, uint32_t row, uint32_t s,
                      uint32_t n) {
#if PZ_Q8_M0_ASM
    const pz_dw_geom_t g = {C, row};
    if (n == 4u) (s == 1u ? pz_q8_dw3x3_quad_m0 : pz_q8_dw3x3_quad2_m0)(x, w, acc, &g);
    else if (n == 3u) pz_q8_dw3x3_triple_m0(x, w, acc, &g);
    else if (n == 1u) pz_q8_dw3x3_acc_m0(x, w, acc, &g);
    else if (s == 1u) pz_q8_dw3x3_pair_m0(x, w, acc, &g);
    else pz_q8_dw3x3_pair2_m0(x, w, acc, &g);
#else
    for (uint32_t px = 0; px < n; px++, acc += C, x += s * C) {
        const uint8_t *r = w, *xc = x;
        for (uint32_t c = 0; c < C; c++, r += 16, xc++) {
            int32_t a = (int32_t)((uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 | (uint32_t)r[3] << 24);
            const int8_t *k = (const int8_t *)r + 4;
            for (uint32_t dy = 0; dy < 3; dy++) {
                for (uint32_t dx = 0; dx < 3; dx++) a += (int32_t)xc[dy * row + dx * C] * k[dy * 3 + dx];
            }
            acc[c] = a;
        }
    }
#endif
}

/* The groups of n pixels from ox on whose windows lie inside the input horizontally (the first one's does): a run
 * that one fused call takes (pz_dw_out_t groups). */
static uint32_t dw_run_groups(const pz_conv_shape_t *s, uint32_t ox, uint32_t n) {
    uint32_t groups = 1;
    for (uint32_t o = ox + n; s->out_w - o >= n && (o + n - 1u) * s->stride_w + 3u <= s->in_w + s->pad_left; o += n) {
        groups++;
    }
    return groups;
}

#if PZ_Q8_M0_ASM
/* The forms of the six-pixel loop, [stride - 1][kernel rows: all, TOP (row 0 in the padding), BOT (row 2)][padding
 * column: none, left, right, both]: a row function (PZ_DW_HEX_ROW_FN, which takes the left and right ones as its
 * bodies l and r) or, for one group with both, its own. */
static pz_dw_out_fn *const dw_hex_forms[2][3][4] = {
    {{pz_q8_dw3x3_hex_out_m0, pz_q8_dw3x3_hex_out_m0, pz_q8_dw3x3_hex_out_m0, pz_q8_dw3x3_hex_lr_out_m0},
     {pz_q8_dw3x3_hex_t_out_m0, pz_q8_dw3x3_hex_t_out_m0, pz_q8_dw3x3_hex_t_out_m0, pz_q8_dw3x3_hex_tlr_out_m0},
     {pz_q8_dw3x3_hex_b_out_m0, pz_q8_dw3x3_hex_b_out_m0, pz_q8_dw3x3_hex_b_out_m0, pz_q8_dw3x3_hex_blr_out_m0}},
    {{pz_q8_dw3x3_hex2_out_m0, 0, pz_q8_dw3x3_hex2_out_m0, 0},
     {0, 0, 0, 0},
     {pz_q8_dw3x3_hex2_b_out_m0, 0, pz_q8_dw3x3_hex2_b_out_m0, 0}},
};

/* The six-pixel form for kernel rows `rows` (dw_rows) and padding columns `edge` (bit 0 left, bit 1 right): C = 8 at
 * stride 1 with all kernel rows and at most one padding column, the loop with C built in (pz_q8_dw3x3_hex8_out_m0). */
static pz_dw_out_fn *dw_hex_form(const pz_conv_shape_t *s, uint32_t rows, uint32_t edge) {
    if (s->in_c == 8u && s->stride_w == 1u && rows == 0u && edge < 3u) return pz_q8_dw3x3_hex8_out_m0;
    return dw_hex_forms[s->stride_w - 1u][rows][edge];
}

/* The groups of six from ox on that one row function call takes, the first one's window from ix0: it and the
 * following ones inside the input, up to one with a padding column at its right; returns pz_dw_out_t forms. */
static uint32_t dw_hex_run(const pz_conv_shape_t *s, uint32_t ox, int32_t ix0, uint32_t cols, uint32_t *groups) {
    const int32_t end = (int32_t)s->in_w + 1;  /* a window reaching it has a padding column at its right */
    const uint32_t forms = ix0 == -1;
    *groups = 1;
    if (ix0 + (int32_t)cols == end) return forms | 2u;
    for (uint32_t o = ox + 6u; s->out_w - o >= 6u; o += 6u) {
        const int32_t ix = (int32_t)(o * s->stride_w) - s->pad_left;
        if (ix + (int32_t)cols > end) break;
        ++*groups;
        if (ix + (int32_t)cols == end) return forms | 2u;
    }
    return forms;
}

/* The same for the fused three-pixel loops (the forms a SAME layer's rows end with). */
static pz_dw_out_fn *const dw_triple_forms[2][3][4] = {
    {{pz_q8_dw3x3_triple_out_m0, 0, pz_q8_dw3x3_triple_r_out_m0, pz_q8_dw3x3_triple_lr_out_m0},
     {0, 0, pz_q8_dw3x3_triple_tr_out_m0, pz_q8_dw3x3_triple_tlr_out_m0},
     {0, 0, pz_q8_dw3x3_triple_br_out_m0, pz_q8_dw3x3_triple_blr_out_m0}},
    {{pz_q8_dw3x3_triple2_out_m0, 0, pz_q8_dw3x3_triple2_r_out_m0, 0},
     {0, 0, 0, 0},
     {0, 0, pz_q8_dw3x3_triple2_br_out_m0, 0}},
};

/* The kernel rows of an output row whose window starts at input row iy0 that a form runs in place: 0 all three, 1
 * rows 1 and 2 (row 0 is a padding row above the input), 2 rows 0 and 1 (row 2 below it), 3 none (the band). */
static uint32_t dw_rows(const pz_conv_shape_t *s, int32_t iy0) {
    const int32_t in_h = (int32_t)s->in_h;
    return iy0 >= 0 && iy0 + 3 <= in_h ? 0u : iy0 == -1 && in_h >= 2 ? 1u : iy0 >= 0 && iy0 + 2 == in_h ? 2u : 3u;
}

/* The form of the six- or three-pixel loop (n) that reads a window of those rows (dw_rows, < 3) and `cols` columns
 * from ix0 in place: it may leave the input by one padding column at its left and / or right end (read from the
 * padding byte: PZ_DW_LD_PAD); 0 where none does (the band). */
static pz_dw_out_fn *dw_form(const pz_conv_shape_t *s, uint32_t n, uint32_t rows, int32_t ix0, uint32_t cols) {
    const int32_t in_w = (int32_t)s->in_w;
    const int32_t pl = ix0 == -1, pr = ix0 + (int32_t)cols == in_w + 1;
    if (ix0 + pl < 0 || ix0 + (int32_t)cols - pr > in_w) return 0;
    const uint32_t edge = (uint32_t)(pl + 2 * pr);
    return n == 6u ? dw_hex_form(s, rows, edge) : dw_triple_forms[s->stride_w - 1u][rows][edge];
}

/* The output rows after oy whose windows have all kernel rows inside the input (dw_rows 0), as oy's has. */
__attribute__((noinline)) static uint32_t dw_rows_below(const pz_conv_shape_t *s, uint32_t oy) {
    uint32_t more = 0;
    while (oy + more + 1u < s->out_h && dw_rows(s, (int32_t)((oy + more + 1u) * s->stride_h) - s->pad_top) == 0u) {
        more++;
    }
    return more;
}

/* The tile loop of a layer whose output is one 3x3 tile (firmware/convgen.py depthwise_tile mirrors it): stride 1
 * over a 3x3 input with a padding cell on every side (SAME), stride 2 over a 6x6 one padded below and right (SAME,
 * even size); 0 otherwise. */
static pz_dw_out_fn *dw_tile(const pz_conv_shape_t *s) {
    if (s->out_h != 3u || s->out_w != 3u || s->stride_h != s->stride_w) return 0;
    if (s->stride_w == 1u && s->in_h == 3u && s->in_w == 3u && s->pad_top == 1u && s->pad_left == 1u) {
        return pz_q8_dw3x3_tile_out_m0;
    }
    if (s->stride_w == 2u && s->in_h == 6u && s->in_w == 6u && s->pad_top == 0u && s->pad_left == 0u) {
        return pz_q8_dw3x3_tile2_out_m0;
    }
    return 0;
}
#endif

/* Kernels other than 3x3 (5x5, 7x7, 1x3, ...: the 3x3 record stride is built into the loops above): pixel by
 * pixel, runs of up to PZ_DW_ANY_RUN channels, each channel's taps summed in a register through the table of the
 * taps' byte offsets (pz_q8_dw_any_m0; no bounds test). A border window's table points the taps outside the input
 * at a buffer of pad bytes: the padding cells add pad w, which the folded bias cancels (compress/conv_layout.py).
 * The host build runs the same tables through dw_any_c. Then the run's output stage (conv_q8_m0.h: the
 * records where the build gave them). 11.7-12.4 cycles a MAC at 5x5 and 7x7 against the reference's 35-42
 * (docs/BENCHMARKS.md "Depthwise kernel: any kernel size"). Write order: pixel by pixel, a run's outputs after its
 * window was read (as the reference's, channel by channel). No scratch. */
#define PZ_DW_ANY_RUN 32u
#define PZ_DW_ANY_TAPS 64u  /* up to 8x8; larger kernels run the reference */
typedef struct {
    const uintptr_t *off, *off_end;  /* the taps' byte offsets from a channel's cell, ceil4(taps) of them */
    int32_t *acc_end;                /* one past the run's accumulators */
} pz_dw_any_args_t;
#if PZ_Q8_M0_ASM
/* A run of channels: acc[i] = the folded bias + the taps of channel c0 + i, the byte at x + i + off[t] times the
 * record's weight t, four taps a record word (SXTB, LSLS/ASRS, ASRS take its bytes) and two offsets a LDM: 33 cycles
 * per four taps (GCC's loop: 13 a tap). r0 = channel c0's cell (+1 a channel), r1 = its record (runs on into the
 * next: 4 + 4 quads bytes), r7 = the sum, r2 = the offsets, r9 / r10 their start / end, r11 = acc, r12 = its end. */
void pz_q8_dw_any_m0(const uint8_t *x, const uint8_t *rec, int32_t *acc, const pz_dw_any_args_t *g);
#define PZ_DW_ANY_RUN_FN pz_q8_dw_any_m0
__asm__(
    PZ_M0_FUNC("pz_q8_dw_any_m0")
    PZ_M0_SAVE_R4_R11
    "    ldm   r3!, {r4, r5, r6}\n"
    "    mov   r9, r4\n"
    "    mov   r10, r5\n"
    "    mov   r12, r6\n"
    "    mov   r11, r2\n"
    "1:\n"
    "    ldm   r1!, {r7}\n"              /* the folded bias */
    "    mov   r2, r9\n"
    "2:\n"
    "    ldm   r1!, {r3}\n"              /* four taps' weights */
    "    ldm   r2!, {r4, r5}\n"
    "    ldrb  r4, [r0, r4]\n"
    "    ldrb  r5, [r0, r5]\n"
    "    sxtb  r6, r3\n"
    "    muls  r4, r6, r4\n"
    "    adds  r7, r7, r4\n"
    "    lsls  r6, r3, #16\n"
    "    asrs  r6, r6, #24\n"
    "    muls  r5, r6, r5\n"
    "    adds  r7, r7, r5\n"
    "    ldm   r2!, {r4, r5}\n"
    "    ldrb  r4, [r0, r4]\n"
    "    ldrb  r5, [r0, r5]\n"
    "    lsls  r6, r3, #8\n"
    "    asrs  r6, r6, #24\n"
    "    muls  r4, r6, r4\n"
    "    adds  r7, r7, r4\n"
    "    asrs  r6, r3, #24\n"
    "    muls  r5, r6, r5\n"
    "    adds  r7, r7, r5\n"
    "    cmp   r2, r10\n"
    "    bne   2b\n"
    "    mov   r4, r11\n"
    "    stm   r4!, {r7}\n"
    "    mov   r11, r4\n"
    "    adds  r0, #1\n"                 /* the next channel's cell */
    "    cmp   r4, r12\n"
    "    bne   1b\n"
    PZ_M0_RESTORE_R4_R11_RETURN
    "    .size   pz_q8_dw_any_m0, . - pz_q8_dw_any_m0\n"
    "    .popsection\n");
#else
/* pz_q8_dw_any_m0 in C (the host build): the same sums over the same tables. */
static void dw_any_c(const uint8_t *x, const uint8_t *rec, int32_t *acc, const pz_dw_any_args_t *g) {
    for (; acc < g->acc_end; acc++, x++) {
        int32_t a = *(const int32_t *)(const void *)rec;  /* the folded bias (records 4-byte aligned) */
        const int8_t *w = (const int8_t *)rec + 4;
        for (const uintptr_t *o = g->off; o < g->off_end; o++, w++) {
            a += (int32_t)*(const uint8_t *)((uintptr_t)x + *o) * *w;
        }
        *acc = a;
        rec = (const uint8_t *)w;
    }
}
#define PZ_DW_ANY_RUN_FN dw_any_c
#endif
__attribute__((noinline)) static void dw_any_kernel(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, kh = s->k_h, kw = s->k_w, taps = kh * kw, row = (uint32_t)s->in_w * C;
    const uint32_t taps4 = (taps + 3u) & ~3u, rec_bytes = 4u + taps4;
    if (taps > PZ_DW_ANY_TAPS) {
        pz_dwconv2d_q8_ref(l, xu, y);
        return;
    }
    /* tap t's byte offset in the window, dy row + dx C; the record's padding taps (zero weights) read offset 0 */
    uintptr_t off[PZ_DW_ANY_TAPS];
    for (uint32_t t = 0; t < taps4; t++) off[t] = t < taps ? t / kw * row + t % kw * C : 0u;
    /* a border window's offsets: a tap outside the input (or a padding tap) reads channel c0 + i's byte pad from
     * pads[i], at the same distance from every channel's cell */
    uintptr_t off_border[PZ_DW_ANY_TAPS];
    uint8_t pads[PZ_DW_ANY_RUN];
    for (uint32_t i = 0; i < PZ_DW_ANY_RUN; i++) pads[i] = l->pad;
    pz_requant_run_t rq;
    pz_q8_requant_init(&rq, l, C, 1);
    int32_t acc[PZ_DW_ANY_RUN];
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        const int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        for (uint32_t ox = 0; ox < s->out_w; ox++, y += C) {
            const int32_t ix0 = (int32_t)(ox * s->stride_w) - s->pad_left;
            const int inside = iy0 >= 0 && ix0 >= 0 && iy0 + (int32_t)kh <= s->in_h && ix0 + (int32_t)kw <= s->in_w;
            /* the taps inside the input: rows dy0..dy1 - 1, columns dx0..dx1 - 1 */
            const uint32_t dy0 = iy0 < 0 ? (uint32_t)-iy0 : 0u, dx0 = ix0 < 0 ? (uint32_t)-ix0 : 0u;
            const uint32_t dy1 = iy0 + (int32_t)kh > s->in_h ? (uint32_t)(s->in_h - iy0) : kh;
            const uint32_t dx1 = ix0 + (int32_t)kw > s->in_w ? (uint32_t)(s->in_w - ix0) : kw;
            const int32_t window = (iy0 * s->in_w + ix0) * (int32_t)C;  /* its first cell, maybe in the padding */
            const uint8_t *rec = l->w;
            for (uint32_t c0 = 0; c0 < C; c0 += PZ_DW_ANY_RUN) {
                const uint32_t n = C - c0 < PZ_DW_ANY_RUN ? C - c0 : PZ_DW_ANY_RUN;
                const uintptr_t x = (uintptr_t)xu + (uintptr_t)(window + (int32_t)c0);  /* channel c0's cell */
                const uintptr_t *o = off;
                if (!inside) {
                    const uintptr_t to_pad = (uintptr_t)pads - x;
                    uint32_t t = 0;
                    for (uint32_t dy = 0; dy < kh; dy++) {
                        for (uint32_t dx = 0; dx < kw; dx++, t++) {
                            off_border[t] = dy >= dy0 && dy < dy1 && dx >= dx0 && dx < dx1 ? off[t] : to_pad;
                        }
                    }
                    for (; t < taps4; t++) off_border[t] = to_pad;
                    o = off_border;
                }
                const pz_dw_any_args_t run = {o, o + taps4, acc + n};
                PZ_DW_ANY_RUN_FN((const uint8_t *)x, rec, acc, &run);
                rec += n * rec_bytes;
                pz_q8_requant_run(&rq, acc, y + c0, n, l->multiplier + c0, l->shift + c0, l);
            }
        }
    }
}

/* Scratch: see dw_band_at (pz_conv_q8_scratch_bytes, firmware/convgen.py). */
void pz_dwconv2d_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, row = (uint32_t)s->in_w * C, sw = s->stride_w;
    if (s->k_h != 3 || s->k_w != 3) {
        dw_any_kernel(l, xu, y);
        return;
    }
    const int32_t *mult = l->multiplier;
    const int8_t *shift = l->shift;
    /* the output stage of the accumulator loops, set up on their first use: with the build's records (out_xor 0
     * or 0x80, as pz_q8_requant_init decides rec) most layers never take them, and its pass over the C shifts
     * cost about 23 cycles a channel */
    pz_requant_run_t rq;
    uint32_t rq_ready = 0;
    int32_t *acc = (int32_t *)(void *)l->scratch;
    uint8_t *band = l->scratch + dw_band_at(s);
#if PZ_Q8_M0_ASM
    /* with the build's records (rq.rec: out_xor is 0 or 0x80) groups of three, four and six pixels write their
     * outputs straight from the loop (pz_q8_dw3x3_quad_out_m0 ...) */
    pz_dw_out_t out;  /* the tile loop reads c, rq, add, lo, hi and pad; the rest is set below */
    out.c = C;
    out.row = row;
    out.rq = l->rq;
    out.add = l->out_zp + l->out_xor;
    out.lo = l->act_min + l->out_xor;
    out.hi = l->act_max + l->out_xor;
    out.pad = l->pad;
#endif
    const uint32_t fused = PZ_Q8_M0_ASM && l->rq != 0 && (l->out_xor & 0x7Fu) == 0;  /* = rq.rec */
#if PZ_Q8_M0_ASM
    const uint32_t step6 = 6u * sw * C - C, step4 = 4u * sw * C - C;  /* the fused loops' x_step: n s C - C */
    /* every row starts with the same groups of six (their columns are the same): found once, one call a row */
    /* a 3x3 output tile: channel by channel, one call (pz_q8_dw3x3_tile_out_m0) */
    pz_dw_out_fn *const tile = fused ? dw_tile(s) : 0;
    if (tile) {
        tile(xu, l->w, y, &out);
        return;
    }
    uint32_t hex_groups = 0, hex_forms = 0, hex_edge = 0;
    if (fused && sw <= 2u && s->out_w >= 6u) {
        const int32_t ix0 = -(int32_t)s->pad_left, cols = 5 * (int32_t)sw + 3;
        const int32_t pl = ix0 == -1, pr = ix0 + cols == (int32_t)s->in_w + 1;
        if (ix0 + pl >= 0 && ix0 + cols - pr <= (int32_t)s->in_w) {
            hex_edge = (uint32_t)(pl + 2 * pr);
            hex_forms = dw_hex_run(s, 0, ix0, (uint32_t)cols, &hex_groups);
        }
    }
    /* where the groups of six fill a row, the rows below with all kernel rows inside the input go to the same call of
     * a row function (not the one-group form with both padding columns): from the last group's x + C to the next
     * row's first x, and what y - x changes by from that group to it */
    const uint32_t row_runs = hex_groups && hex_edge < 3u && 6u * hex_groups == s->out_w;
    const uint32_t down = s->stride_h * row, back = 6u * sw * C * (hex_groups - 1u);
    out.groups = 1u;
    out.x_step = out.y_step = out.forms = 0u;
    out.rows = 1u;
    out.row_x = down - back - C;
    out.row_dy = 6u * C - down + back;
#endif
    for (uint32_t oy = 0; oy < s->out_h; oy++) {
        const int32_t iy0 = (int32_t)(oy * s->stride_h) - s->pad_top;
        const int rows_in = iy0 >= 0 && iy0 + 3 <= (int32_t)s->in_h;
        uint32_t ox = 0;
#if PZ_Q8_M0_ASM
        const uint32_t rows = fused ? dw_rows(s, iy0) : 3u;
        /* the first input row the forms read (may lie above xu: then it is not read) */
        const uintptr_t x_iy = (uintptr_t)xu + (uintptr_t)((iy0 + (rows == 1u)) * (int32_t)row);
        pz_dw_out_fn *const first = hex_groups && rows < 3u ? dw_hex_form(s, rows, hex_edge) : 0;
        if (first) {
            out.row = row;
            out.groups = hex_groups;
            out.x_step = step6;
            out.y_step = 5u * C;
            out.forms = hex_forms;
            const uint32_t more = row_runs && rows == 0u ? dw_rows_below(s, oy) : 0u;
            out.rows = 1u + more;
            first((const uint8_t *)(x_iy - (uintptr_t)s->pad_left * C), l->w, y, &out);
            out.rows = 1u;
            ox = 6u * hex_groups;
            y += ox * C + more * s->out_w * C;
            oy += more;
        }
#endif
        while (ox < s->out_w) {
            const int32_t ix0 = (int32_t)(ox * sw) - s->pad_left;
            /* six pixels side by side at stride 1 (fused only), four at stride 1 or 2, three at stride 1 load each
             * input byte once for all of them (pz_q8_dw3x3_hex_out_m0, quad_m0 / quad2_m0, triple_m0 and their
             * fused forms), two share each channel's weight loads (pz_q8_dw3x3_pair_m0 / pair2_m0), one (the last
             * of a row, strides >= 3) pz_q8_dw3x3_acc_m0; their window columns are read in place when inside the
             * input, else from a band copied with the padding cells (the fused six-pixel loop, which needs no
             * accumulators, takes its 8-column band from the start of the scratch) */
            const uint32_t left = s->out_w - ox;
            const uint32_t n = fused && sw <= 2u && left >= 6u ? 6u
                             : sw > 2u ? 1u : left >= 4u ? 4u : left == 3u && sw == 2u && !fused ? 2u : left;
            const uint32_t cols = (n - 1u) * sw + 3u;
            /* the fused loops need no accumulators: their band starts at the scratch (the widest, six pixels at
             * stride 2, 39 C of the 43 C reserved; see pz_dwconv_q8_m0_scratch_bytes) */
            uint8_t *n_band = fused && n >= 3u ? l->scratch : band;
            const uint8_t *x = n_band;
            uint32_t x_row = cols * C, groups = 1;
#if PZ_Q8_M0_ASM
            /* groups of six and three in place wherever a form of their loop reads them so */
            pz_dw_out_fn *const form = rows < 3u && (n == 6u || n == 3u) ? dw_form(s, n, rows, ix0, cols) : 0;
            out.forms = 0;
            if (form) {
                x = (const uint8_t *)(x_iy + (uintptr_t)(ix0 * (int32_t)C));
                x_row = row;
                if (n == 6u) out.forms = dw_hex_run(s, ox, ix0, cols, &groups);  /* the row's groups of six */
            } else
#endif
            if (rows_in && ix0 >= 0 && ix0 + (int32_t)cols <= (int32_t)s->in_w) {
                x = xu + ((uint32_t)iy0 * s->in_w + (uint32_t)ix0) * C;
                x_row = row;
                /* the fused groups of four read in place take the rest of such groups in the same call */
                if (fused && n >= 4u) groups = dw_run_groups(s, ox, n);
            } else {
                dw_band(l, xu, iy0, ix0, cols, n_band);
            }
#if !PZ_Q8_M0_ASM
            (void)groups;  /* runs of groups: the fused calls only */
#else
            if (fused && n >= 3u) {
                out.row = x_row;
                out.groups = groups;
                out.x_step = n == 6u ? step6 : step4;
                out.y_step = (n - 1u) * C;
                (form ? form
                 : n == 6u ? (sw == 1u ? pz_q8_dw3x3_hex_out_m0 : pz_q8_dw3x3_hex2_out_m0)
                 : n == 3u ? (sw == 1u ? pz_q8_dw3x3_triple_out_m0 : pz_q8_dw3x3_triple2_out_m0)
                 : sw == 1u ? pz_q8_dw3x3_quad_out_m0 : pz_q8_dw3x3_quad2_out_m0)(x, l->w, y, &out);
                ox += n * groups;
                y += n * groups * C;
                continue;
            }
#endif
            dw3x3_run(x, l->w, acc, C, x_row, sw, n);
            if (!rq_ready) {
                pz_q8_requant_init(&rq, l, C, 1);
                rq_ready = 1;
            }
            for (uint32_t k = 0; k < n; k++) pz_q8_requant_run(&rq, acc + k * C, y + k * C, C, mult, shift, l);
            ox += n;
            y += n * C;
        }
    }
}
