/* Pointwise (1x1, stride 1, unpadded) int8 conv2d for the Cortex-M0+ (conv.h); byte-identical to conv_q8_ref.c.
 * docs/FIRMWARE.md "Pointwise kernel".
 *
 * pz_conv2d_q8_m0 hands every pointwise layer here first; pz_pwconv_q8_m0 returns 0 for a conv8 layer it does not
 * take (without the build's one-multiply records, K not a multiple of 8 with ceil8(K) over PZ_PW_BATCH_BYTES, C not
 * a multiple of 4 or above 1024, an input not 4-byte aligned, an out_xor other than 0 / 0x80, the host build), which
 * conv_q8_m0.c then runs; K not a multiple of 8 runs in batches (pw_batched). A pw16 layer (compress/conv_layout.py
 * conv_weight_layout: records, K a multiple of 8 or ceil8(K) within the batch buffer, C even) always runs here: the
 * pw16 loop below (at C = 8 and 16 with the input 4-byte aligned, the loop for that C: PZ_PW16C_FN), or the reference
 * where the build never sends one (conv_q8_m0.c's paths read conv8 only). A
 * pointwise window is one input pixel, C contiguous bytes; the conv8 weights of a group of 8 output channels are its
 * 32-byte header then 8 bytes per input channel, as for every conv2d. One call does the whole layer, pixel by pixel,
 * and for each pixel:
 * - X = the pixel's byte sum (SWAR over its words, 7 cycles a word, below);
 * - every group: the lanes start at the header with 128 X taken from the even ones (the layout's + 128 on even
 *   lanes), so the output stage needs no X; the MAC steps (int8_mac_m0.h, 30 cycles per 8 MACs) run straight
 *   through blocks of 32 input bytes (one block test per 256 MACs), the pixel's C bytes entered at byte
 *   32 - C mod 32 of the unrolled block through a computed jump; then the one-multiply output stage on the lanes in
 *   registers (no accumulator store and reload), its record {L, A, m' << 8 | s} loaded by one LDM: per output LDM,
 *   two compares, LSRS, MULS, ASRS, ADCS, STRB (14 cycles inside the clamp), plus 1 to combine an even lane with
 *   its odd one (acc_even = A_even - 256 A_odd) and 1 to move a lane from a high register.
 * Inputs whose zero point is the byte 0 (ReLU outputs) take the zero-skipping loop, whose block steps over a zero
 * byte in 5 cycles (PZ_PW_BLOCK_Z).
 *
 * Write order (outputs written over their own input, docs/FIRMWARE.md "Overlapped outputs"): output pixels in
 * increasing order, a pixel's groups in order; pixel p's window is read for its sum and once per group, the last
 * time before its last group's outputs are written: after writing any byte of output pixel p the kernel reads only
 * window p and later ones (convgen.OVERLAP_LOOKBACK "conv2d" = 8 holds with room). */
#include "conv.h"
#include "int8_impl.h"
#include "int8_mac_m0.h"
#include "conv_q8_m0.h"

/* What the Thumb-1 loop reads (in this order; offsets checked below). */
typedef struct {
    uint32_t c;             /* input channels: bytes per pixel, a multiple of 4, 4..1024 */
    uint32_t lead;          /* (32 - C mod 32) mod 32: the unrolled block's steps before a pixel's first byte */
    const int32_t *rq_end;  /* past the records of output channel K - 1 (pw16: past the last group, records inside):
                               a pixel's last group is done */
    uint32_t w_back;        /* the zero-skipping loop: bytes from a group's first weight back to r1 at entry */
    const int32_t *rq;      /* the records of output channel 0 (conv.h rq) */
    uint32_t add, lo, hi;   /* out_zp + out_xor, act_min + out_xor, act_max + out_xor */
    uint32_t pixels;        /* > 0 */
    uint32_t entry;         /* bytes from the block's start to the step of the pixel's first byte */
} pz_pw_args_t;

#if PZ_Q8_M0_ASM
_Static_assert(__builtin_offsetof(pz_pw_args_t, rq) == 16 && __builtin_offsetof(pz_pw_args_t, entry) == 36,
               "pz_pw_args_t offsets");

void pz_q8_pw_m0(const uint8_t *x, const uint8_t *w, const pz_pw_args_t *a, uint8_t *y);
void pz_q8_pwz_m0(const uint8_t *x, const uint8_t *w, const pz_pw_args_t *a, uint8_t *y);
void pz_q8_pw16_m0(const uint8_t *x, const uint8_t *w, const pz_pw_args_t *a, uint8_t *y);
void pz_q8_pw16_c8_m0(const uint8_t *x, const uint8_t *w, const pz_pw_args_t *a, uint8_t *y);
void pz_q8_pw16_c16_m0(const uint8_t *x, const uint8_t *w, const pz_pw_args_t *a, uint8_t *y);

/* Frame: [sp] = end of this pixel's bytes, [sp+4] = entry into the block, [sp+8] = this pixel's first byte - lead,
 * [sp+16] = rq_end (pw16: the end of the weights), [sp+20] = 0x00FF00FF, [sp+24] = this group's records,
 * [sp+28] = y of this group, [sp+32] = add, [sp+36] = act_min + out_xor, [sp+40] = act_max + out_xor, [sp+44] = rq,
 * [sp+48] = pixels left, [sp+52] = C, [sp+56] = w_back, [sp+60] = the first group, [sp+64] = the next group,
 * [sp+68] = 128 X of this pixel. */

/* A new pixel: records from channel 0, its 128 X, r1 = the first group's header. X is summed over the pixel's words
 * w (C / 4 <= 256 of them, by pairs): R = the sum of w >> 8 = B1 + 2^8 B2 + 2^16 B3 and E = the sum of
 * w & 0x00FF00FF = B0 + 2^16 B2 (Bi: the sum of byte i of the words, <= 255 * 256 = 65,280; R <= 2^32 - 256), then
 * X = B0 + B1 + B2 + B3 from the 16-bit fields of E and R - 2^8 B2: 7 cycles a word. */
#define PZ_PW_PIXEL_START \
    "    ldr   r4, [sp, #44]\n" \
    "    str   r4, [sp, #24]\n" \
    "    ldr   r1, [sp]\n" \
    "    ldr   r4, [sp, #52]\n" \
    "    subs  r0, r1, r4\n"                /* the pixel's first byte */ \
    "    ldr   r6, [sp, #20]\n"             /* 0x00FF00FF */ \
    "    movs  r2, #0\n" \
    "    movs  r3, #0\n" \
    "    lsls  r4, r4, #29\n" \
    "    bpl   32f\n"                       /* an odd number of words: the first alone */ \
    "    ldm   r0!, {r4}\n" \
    "    lsrs  r2, r4, #8\n" \
    "    ands  r4, r6\n" \
    "    movs  r3, r4\n" \
    "    cmp   r0, r1\n" \
    "    beq   33f\n" \
    "32:\n" \
    "    ldm   r0!, {r4, r5}\n" \
    "    lsrs  r7, r4, #8\n" \
    "    adds  r2, r2, r7\n" \
    "    ands  r4, r6\n" \
    "    adds  r3, r3, r4\n" \
    "    lsrs  r7, r5, #8\n" \
    "    adds  r2, r2, r7\n" \
    "    ands  r5, r6\n" \
    "    adds  r3, r3, r5\n" \
    "    cmp   r0, r1\n" \
    "    bne   32b\n" \
    "33:\n" \
    "    lsrs  r4, r3, #16\n"               /* B2 */ \
    "    uxth  r3, r3\n"                    /* B0 */ \
    "    adds  r3, r3, r4\n" \
    "    lsls  r4, r4, #8\n" \
    "    subs  r2, r2, r4\n"                /* B1 + 2^16 B3 */ \
    "    uxth  r4, r2\n" \
    "    lsrs  r2, r2, #16\n" \
    "    adds  r3, r3, r4\n" \
    "    adds  r3, r3, r2\n" \
    "    lsls  r0, r3, #7\n"                /* 128 X */ \
    "    str   r0, [sp, #68]\n" \
    "    ldr   r1, [sp, #60]\n"

/* A group (r1 = its header): lanes r6, r7, r8 .. r12, lr from the header, the even ones (r6, r8, r10, r12) less
 * 128 X, then into the block at the pixel's first byte (r0 = that byte - lead). */
#define PZ_PW_GROUP_START(W_BACK) \
    "    ldr   r0, [sp, #68]\n" \
    "    ldm   r1!, {r2, r3, r4, r5}\n" \
    "    subs  r4, r4, r0\n" \
    "    mov   r8, r4\n" \
    "    mov   r9, r5\n" \
    "    subs  r6, r2, r0\n" \
    "    movs  r7, r3\n" \
    "    ldm   r1!, {r2, r3, r4, r5}\n" \
    "    subs  r2, r2, r0\n" \
    "    subs  r4, r4, r0\n" \
    "    mov   r10, r2\n" \
    "    mov   r11, r3\n" \
    "    mov   r12, r4\n" \
    "    mov   lr, r5\n" \
    W_BACK \
    "    ldr   r0, [sp, #8]\n" \
    "    ldr   r5, [sp, #4]\n" \
    "    mov   pc, r5\n"

/* Bytes 1..31 of the unrolled block (byte 0 comes before). */
#define PZ_PW_MAC_K_1_31(MAC_K) \
    MAC_K("1") MAC_K("2") MAC_K("3") MAC_K("4") MAC_K("5") MAC_K("6") MAC_K("7") MAC_K("8") MAC_K("9") \
    MAC_K("10") MAC_K("11") MAC_K("12") MAC_K("13") MAC_K("14") MAC_K("15") MAC_K("16") MAC_K("17") MAC_K("18") \
    MAC_K("19") MAC_K("20") MAC_K("21") MAC_K("22") MAC_K("23") MAC_K("24") MAC_K("25") MAC_K("26") MAC_K("27") \
    MAC_K("28") MAC_K("29") MAC_K("30") MAC_K("31")

/* One output from lane C (compared where it lies), multiplied in the low register S (MOVE puts C there, or is empty
 * when C is S): the record {L, A, w = m' << 8 | s} by one LDM (REC advancing); acc <= L: act_min, acc >= A: act_max
 * (out of line at LOW / HIGH, back to STORE); else round_half_up(acc m' / 2^s) + add by MULS, ASRS (the carry holds
 * the last bit shifted out) and ADCS (pz_q8_requant_rec_m0's steps and bytes). Y = y of the group, r5 = add; conv8's
 * loops: REC r0, Y r1; pw16's: REC r1 (the records follow the group's weights), Y r0. */
#define PZ_PW_OUT_VIA(C, MOVE, S, I, LOW, HIGH, STORE, REC, Y) \
    "    ldm   " REC "!, {r2, r3, r4}\n" \
    "    cmp   " C ", r2\n" \
    "    ble   " LOW "\n" \
    "    cmp   " C ", r3\n" \
    "    bge   " HIGH "\n" \
    "    lsrs  r3, r4, #8\n" \
    MOVE \
    "    muls  " S ", r3, " S "\n" \
    "    asrs  " S ", r4\n" \
    "    adcs  " S ", r5\n" \
    STORE ":\n" \
    "    strb  " S ", [" Y ", #" I "]\n"
/* Lane S (r6 or r7) itself. */
#define PZ_PW_OUT_AT(S, I, LOW, HIGH, STORE, REC, Y) PZ_PW_OUT_VIA(S, "", S, I, LOW, HIGH, STORE, REC, Y)
#define PZ_PW_OUT(S, I, LOW, HIGH, STORE) PZ_PW_OUT_AT(S, I, LOW, HIGH, STORE, "r0", "r1")
/* Lanes r6 (even) and r7 (odd) to outputs I0, I1: acc_even = lane_even - 256 lane_odd. Labels 4N.. (act_min),
 * 5N.. (act_max), 6N.. (store), DIR the side their out-of-line stubs lie on ("b" before, "f" after). */
#define PZ_PW_PAIR(N0, N1, DIR) \
    "    lsls  r4, r7, #8\n" \
    "    subs  r6, r6, r4\n" \
    PZ_PW_OUT("r6", N0, "4" N0 DIR, "5" N0 DIR, "6" N0) \
    PZ_PW_OUT("r7", N1, "4" N1 DIR, "5" N1 DIR, "6" N1)
#define PZ_PW_STUBS(S, N, STORE_DIR) \
    "4" N ":\n" \
    "    ldr   " S ", [sp, #36]\n" \
    "    b     6" N STORE_DIR "\n" \
    "5" N ":\n" \
    "    ldr   " S ", [sp, #40]\n" \
    "    b     6" N STORE_DIR "\n"

/* r0 = x (the first pixel), r1 = the first group's header, r2 = the pz_pw_args_t, r3 = y; PIXEL_START and
 * GROUP_START the set-up of a pixel and of a group (ending in the computed jump into the block), BLOCK = the MAC steps
 * of 32 input bytes, BLOCK_END what the zero-skipping block adds at the block's end, STAGE_IN and STAGE_OUT what comes
 * before and after the output stage (the pointers it needs; STAGE_OUT ends in a branch to 17 after a pixel's last
 * group and leaves r1 at the next group's header), PAIR the output stage of two lanes in r6, r7 (PZ_PW_PAIR, or
 * PZ_PW16_PAIR: pw16's lanes need no combining). */
#define PZ_PW_FN(NAME, PIXEL_START, GROUP_START, BLOCK, BLOCK_END, STAGE_IN, PAIR, STAGE_OUT) \
__asm__( \
    PZ_M0_FUNC(NAME) \
    PZ_M0_SAVE_R4_R11 \
    "    sub   sp, #72\n" \
    "    str   r3, [sp, #28]\n" \
    "    str   r1, [sp, #60]\n" \
    "    ldm   r2!, {r3, r4, r5, r6}\n"      /* C, lead, rq_end, w_back */ \
    "    str   r3, [sp, #52]\n" \
    "    str   r5, [sp, #16]\n" \
    "    str   r6, [sp, #56]\n" \
    "    adds  r3, r0, r3\n" \
    "    str   r3, [sp]\n"                   /* x + C */ \
    "    subs  r0, r0, r4\n" \
    "    str   r0, [sp, #8]\n"               /* x - lead */ \
    "    ldm   r2!, {r3, r4, r5, r6, r7}\n"  /* rq, add, lo, hi, pixels */ \
    "    str   r3, [sp, #44]\n" \
    "    str   r4, [sp, #32]\n" \
    "    str   r5, [sp, #36]\n" \
    "    str   r6, [sp, #40]\n" \
    "    str   r7, [sp, #48]\n" \
    "    movs  r4, #0xFF\n" \
    "    lsls  r5, r4, #16\n" \
    "    orrs  r4, r5\n" \
    "    str   r4, [sp, #20]\n"             /* the byte-sum mask 0x00FF00FF */ \
    "    ldm   r2!, {r4}\n"                  /* entry */ \
    "    mov   r5, pc\n"                     /* the address of label 19 */ \
    "    adds  r5, r5, r4\n" \
    "19:\n" \
    "    adds  r5, #(13f - 19b)\n" \
    "    str   r5, [sp, #4]\n"               /* the block + entry */ \
    PIXEL_START \
    GROUP_START \
    "13:\n" \
    BLOCK \
    "    adds  r0, #32\n" \
    BLOCK_END \
    "    ldr   r4, [sp]\n" \
    "    cmp   r0, r4\n" \
    "    beq   15f\n" \
    "    b     13b\n" \
    PZ_PW_STUBS("r6", "0", "f") \
    PZ_PW_STUBS("r7", "1", "f") \
    PZ_PW_STUBS("r6", "2", "f") \
    PZ_PW_STUBS("r7", "3", "f") \
    "15:\n"                                  /* the group's dot products are done */ \
    STAGE_IN \
    PAIR("0", "1", "b") \
    "    mov   r6, r8\n" \
    "    mov   r7, r9\n" \
    PAIR("2", "3", "b") \
    "    mov   r6, r10\n" \
    "    mov   r7, r11\n" \
    PAIR("4", "5", "f") \
    "    mov   r6, r12\n" \
    "    mov   r7, lr\n" \
    PAIR("6", "7", "f") \
    STAGE_OUT \
    GROUP_START \
    PZ_PW_STUBS("r6", "4", "b") \
    PZ_PW_STUBS("r7", "5", "b") \
    PZ_PW_STUBS("r6", "6", "b") \
    PZ_PW_STUBS("r7", "7", "b") \
    "17:\n"                                  /* the pixel is done: the next one */ \
    "    ldr   r5, [sp, #52]\n" \
    "    ldr   r4, [sp, #8]\n" \
    "    adds  r4, r4, r5\n" \
    "    str   r4, [sp, #8]\n" \
    "    ldr   r4, [sp]\n" \
    "    adds  r4, r4, r5\n" \
    "    str   r4, [sp]\n" \
    "    ldr   r4, [sp, #48]\n" \
    "    subs  r4, #1\n" \
    "    str   r4, [sp, #48]\n" \
    "    beq   18f\n" \
    PIXEL_START \
    GROUP_START \
    "18:\n" \
    "    add   sp, #72\n" \
    PZ_M0_RESTORE_R4_R11_RETURN \
    "    .size   " NAME ", . - " NAME "\n" \
    "    .popsection\n");

/* The plain block: 32 steps of int8_mac_m0.h's MAC step, the weights read by LDM (r1 advancing). */
#define PZ_XSTR(V) PZ_STR(V)
#define PZ_STR(V) #V
#define PZ_PW_STEP_BYTES 54
#define PZ_PW_BLOCK \
    "20:\n" \
    PZ_Q8_MAC_K("0") \
    "21:\n" \
    PZ_PW_MAC_K_1_31(PZ_Q8_MAC_K) \
    "    .if (21b - 20b) != " PZ_Q8_MAC_K_BYTES " || " PZ_Q8_MAC_K_BYTES " != " PZ_XSTR(PZ_PW_STEP_BYTES) "\n" \
    "    .error \"PZ_PW_STEP_BYTES is not the size of one MAC step\"\n" \
    "    .endif\n"

/* The zero-skipping block (pad == 0: the input's zero point is the byte 0, ReLU outputs; an input byte 0 adds
 * nothing to any lane nor to 128 X). Its weights are read at fixed offsets from r1 (LDR [r1, #8 k], k = the step's
 * index mod 16; r1 steps 128 bytes after each half block), so a zero byte costs LDRB, CMP, BEQ (5 cycles) and a
 * non-zero one 32, against 7 and 33 for conv_q8_m0.c's step, which advances r1 past the skipped weights. A group's
 * r1 starts w_back = 8 lead - (lead >= 16 ? 128 : 0) bytes before its first weight, so the step the block is entered
 * at reads that weight, and ends at the next group's header. */
#define PZ_PW_STEP_Z_BYTES 58
#define PZ_PW_MAC_WORD_AT(OFF, a0, a1, a2, a3) \
    "    ldr   r3, [r1, #" OFF "]\n" \
    PZ_Q8_MAC_LANES(a0, a1, a2, a3)
#define PZ_PW_MAC_Z(X, W0, W1) \
    "    ldrb  r2, [r0, #" X "]\n" \
    "    cmp   r2, #0\n" \
    "    beq   8f\n" \
    PZ_PW_MAC_WORD_AT(W0, "adds  r6, r6", "adds  r7, r7", "add   r8", "add   r9") \
    PZ_PW_MAC_WORD_AT(W1, "add   r10", "add   r11", "add   r12", "add   lr") \
    "8:\n"
/* Steps X + 1 .. X + 15 of a half block (X = 0 or 16): x[X + j] and the weights at 8 j and 8 j + 4. */
#define PZ_PW_HALF_Z(X) \
    PZ_PW_MAC_Z(X "+1", "8", "12") PZ_PW_MAC_Z(X "+2", "16", "20") PZ_PW_MAC_Z(X "+3", "24", "28") \
    PZ_PW_MAC_Z(X "+4", "32", "36") PZ_PW_MAC_Z(X "+5", "40", "44") PZ_PW_MAC_Z(X "+6", "48", "52") \
    PZ_PW_MAC_Z(X "+7", "56", "60") PZ_PW_MAC_Z(X "+8", "64", "68") PZ_PW_MAC_Z(X "+9", "72", "76") \
    PZ_PW_MAC_Z(X "+10", "80", "84") PZ_PW_MAC_Z(X "+11", "88", "92") PZ_PW_MAC_Z(X "+12", "96", "100") \
    PZ_PW_MAC_Z(X "+13", "104", "108") PZ_PW_MAC_Z(X "+14", "112", "116") PZ_PW_MAC_Z(X "+15", "120", "124")
/* Steps k = 0..31 read x[k] and the weights at 8 (k mod 16) and 8 (k mod 16) + 4; r1 steps 128 after step 15. */
#define PZ_PW_BLOCK_Z \
    "20:\n" \
    PZ_PW_MAC_Z("0", "0", "4") \
    "21:\n" \
    PZ_PW_HALF_Z("0") \
    "22:\n" \
    "    adds  r1, #128\n" \
    PZ_PW_MAC_Z("16", "0", "4") \
    PZ_PW_HALF_Z("16") \
    "    .if (21b - 20b) != " PZ_XSTR(PZ_PW_STEP_Z_BYTES) " || (22b - 20b) != 16 * " PZ_XSTR(PZ_PW_STEP_Z_BYTES) "\n" \
    "    .error \"PZ_PW_STEP_Z_BYTES is not the size of one zero-skipping step\"\n" \
    "    .endif\n"
#define PZ_PW_W_BACK \
    "    ldr   r4, [sp, #56]\n" \
    "    subs  r1, r1, r4\n"

/* conv8's output stage: r1 (the next group's header) saved, r0 = the records, r1 = y, r5 = add; then both pointers
 * saved, and the pixel is done when the records reach rq_end. */
#define PZ_PW_STAGE_IN \
    "    str   r1, [sp, #64]\n" \
    "    ldr   r0, [sp, #24]\n" \
    "    ldr   r1, [sp, #28]\n" \
    "    ldr   r5, [sp, #32]\n"
#define PZ_PW_STAGE_OUT \
    "    adds  r1, #8\n" \
    "    str   r1, [sp, #28]\n" \
    "    str   r0, [sp, #24]\n" \
    "    ldr   r4, [sp, #16]\n" \
    "    cmp   r0, r4\n"                      /* past the last channel's records: the pixel is done */ \
    "    beq   17f\n" \
    "    ldr   r1, [sp, #64]\n"

PZ_PW_FN("pz_q8_pw_m0", PZ_PW_PIXEL_START, PZ_PW_GROUP_START(""), PZ_PW_BLOCK, "", PZ_PW_STAGE_IN, PZ_PW_PAIR,
         PZ_PW_STAGE_OUT)
PZ_PW_FN("pz_q8_pwz_m0", PZ_PW_PIXEL_START, PZ_PW_GROUP_START(PZ_PW_W_BACK), PZ_PW_BLOCK_Z, "    adds  r1, #128\n",
         PZ_PW_STAGE_IN, PZ_PW_PAIR, PZ_PW_STAGE_OUT)

/* -- pw16: two MACs per MULS (compress/conv_layout.py "pw16") -------------------------------------------------------
 * Signed x = xu - 128 times a word W = w_a + 65536 w_b of two output channels' weights is x w_a + 65536 x w_b
 * (mod 2^32); the sum S of two input channels' products has its low half lo = x_c w_a,c + x_c+1 w_a,c+1 with
 * |lo| <= 2 * 128 * 127 = 32,512 < 2^15, so SXTH S = lo exactly and (S - lo) >> 16 = the high half exactly. One
 * input-channel pair and one lane pair (4 MACs): LDM {W_c, W_c+1} (3), MULS, MULS, ADDS, SXTH, SUBS, ASRS, ADD, ADD
 * (8); a step of two input bytes (LDRB, SUBS #128, twice: 6) and four lane pairs is 50 cycles for 16 MACs. The lanes
 * start at the header's bias_folded + 128 sum w and end at exactly the conv8 lanes' acc (no X, no even-lane
 * combining), so the same records and output stage follow. */

/* A new pixel: r1 = the first group's header. */
#define PZ_PW16_PIXEL_START \
    "    ldr   r1, [sp, #60]\n"

/* A group's lane starts (r1 = its header, lanes 2, 3, 4, 5, 0, 1, 6, 7: conv_layout.PW16_HEADER_LANES) into lanes
 * r6, r7, r8 .. r12, lr: 16 cycles. */
#define PZ_PW16_LANE_STARTS \
    "    ldm   r1!, {r2, r3, r4, r5, r6, r7}\n" \
    "    mov   r8, r2\n" \
    "    mov   r9, r3\n" \
    "    mov   r10, r4\n" \
    "    mov   r11, r5\n" \
    "    ldm   r1!, {r2, r3}\n" \
    "    mov   r12, r2\n" \
    "    mov   lr, r3\n"
/* A group: its lane starts, then into the block at the pixel's first byte (r0 = that byte - lead). */
#define PZ_PW16_GROUP_START \
    PZ_PW16_LANE_STARTS \
    "    ldr   r0, [sp, #8]\n" \
    "    ldr   r5, [sp, #4]\n" \
    "    mov   pc, r5\n"

/* One lane pair of a step: the words of channels c (times r2) and c + 1 (times r3) into lanes A (low half) and B. */
#define PZ_PW16_LANES(A, B) \
    "    ldm   r1!, {r4, r5}\n" \
    "    muls  r4, r2, r4\n" \
    "    muls  r5, r3, r5\n" \
    "    adds  r4, r4, r5\n" \
    "    sxth  r5, r4\n" \
    "    subs  r4, r4, r5\n" \
    "    asrs  r4, r4, #16\n" \
    "    " A ", r5\n" \
    "    " B ", r4\n"
/* Step k: input bytes X0 = 2k and X1 = 2k + 1 of the block. */
#define PZ_PW16_STEP(X0, X1) \
    "    ldrb  r2, [r0, #" X0 "]\n" \
    "    subs  r2, #128\n" \
    "    ldrb  r3, [r0, #" X1 "]\n" \
    "    subs  r3, #128\n" \
    PZ_PW16_LANES("adds  r6, r6", "adds  r7, r7") \
    PZ_PW16_LANES("add   r8", "add   r9") \
    PZ_PW16_LANES("add   r10", "add   r11") \
    PZ_PW16_LANES("add   r12", "add   lr")
#define PZ_PW16_STEP_BYTES 80
#define PZ_PW16_BLOCK \
    "20:\n" \
    PZ_PW16_STEP("0", "1") \
    "21:\n" \
    PZ_PW16_STEP("2", "3") PZ_PW16_STEP("4", "5") PZ_PW16_STEP("6", "7") PZ_PW16_STEP("8", "9") \
    PZ_PW16_STEP("10", "11") PZ_PW16_STEP("12", "13") PZ_PW16_STEP("14", "15") PZ_PW16_STEP("16", "17") \
    PZ_PW16_STEP("18", "19") PZ_PW16_STEP("20", "21") PZ_PW16_STEP("22", "23") PZ_PW16_STEP("24", "25") \
    PZ_PW16_STEP("26", "27") PZ_PW16_STEP("28", "29") PZ_PW16_STEP("30", "31") \
    "    .if (21b - 20b) != " PZ_XSTR(PZ_PW16_STEP_BYTES) "\n" \
    "    .error \"PZ_PW16_STEP_BYTES is not the size of one pw16 step\"\n" \
    "    .endif\n"
/* The output stage: r1 runs on from the group's last weight into its records (the layout puts them there) and then
 * to the next group's header, so only y (r0) and add (r5) come from the frame; the pixel is done when r1 reaches the
 * end of the weights (the frame's rq_end). 11 cycles a group against conv8's 19. */
#define PZ_PW16_STAGE_IN \
    "    ldr   r0, [sp, #28]\n" \
    "    ldr   r5, [sp, #32]\n"
#define PZ_PW16_STAGE_OUT \
    "    adds  r0, #8\n" \
    "    str   r0, [sp, #28]\n" \
    "    ldr   r4, [sp, #16]\n" \
    "    cmp   r1, r4\n"                      /* past the last group: the pixel is done */ \
    "    beq   17f\n"
/* Lanes r6, r7 to outputs I0, I1 (labels as PZ_PW_PAIR's). */
#define PZ_PW16_PAIR(N0, N1, DIR) \
    PZ_PW_OUT_AT("r6", N0, "4" N0 DIR, "5" N0 DIR, "6" N0, "r1", "r0") \
    PZ_PW_OUT_AT("r7", N1, "4" N1 DIR, "5" N1 DIR, "6" N1, "r1", "r0")

PZ_PW_FN("pz_q8_pw16_m0", PZ_PW16_PIXEL_START, PZ_PW16_GROUP_START, PZ_PW16_BLOCK, "", PZ_PW16_STAGE_IN,
         PZ_PW16_PAIR, PZ_PW16_STAGE_OUT)

/* -- pw16 for small C: one loop per C (docs/FIRMWARE.md "Pointwise kernel", pw16 at small C) -------------------------
 * At C = 8 or 16 a group's MACs (200 or 400 cycles above) are few enough that what surrounds them counts: the computed
 * jump into the block and the block-end test (13 cycles a group), reading each input byte again for every group
 * (LDRB, SUBS #128: 3 cycles a byte a group) and the frame traffic. These loops take one C each, the steps written
 * out C / 2 times (no jump, no block test), and convert the pixel's C bytes once per pixel into signed words
 * x = xu - 128 in a table on the stack (12.5 cycles per 4 bytes: EORS 0x80808080 makes every byte the signed x, then
 * SXTB, REV16 + SXTB, ASRS #24 after REV16, ASRS #24 take bytes 0, 1, 2, 3), which every group's steps read two at a
 * time by one LDM (3 cycles against 6): a step is 47 cycles for 16 MACs (2.94 cycles/MAC). The walk through the table
 * ends at y and add, stored right after it, so one LDM loads both for the output stage. Input pixels must be 4-byte
 * aligned (C a multiple of 8 and x aligned: pz_pwconv_q8_m0 checks x). Outputs of lanes in high registers are
 * compared there (CMP takes them) and moved to r6 only when multiplied, so a saturated output costs 13 cycles.
 *
 * Frame: [sp] = x of the next pixel, [sp+4] = x of the pixel after the last, [sp+8] = the first group,
 * [sp+12] = the end of the weights (records inside), [sp+16] = 0x80808080, [sp+36] = act_min + out_xor, [sp+40] =
 * act_max + out_xor (PZ_PW_STUBS), [sp+48] = the pixel's x table (C words), then y of this group, add.
 * Write order: a pixel's bytes are all read (into the table) before any of its outputs is written, so after writing
 * output pixel p the kernel reads only windows p + 1 on. */
#define PZ_PW16C_TABLE "48"
/* Word V of 4 input bytes, each already xor 0x80 (a signed x): x of bytes 0, 1, 2, 3 into r0, r2, r3, V. */
#define PZ_PW16C_X4(V) \
    "    rev16 r3, " V "\n"                 /* bytes 1, 0, 3, 2 */ \
    "    sxtb  r2, r3\n" \
    "    asrs  r3, r3, #24\n" \
    "    sxtb  r0, " V "\n" \
    "    asrs  " V ", " V ", #24\n"
/* 8 input bytes (r1 advancing) to 8 table words (r6 advancing); r7 = 0x80808080: 25 cycles. */
#define PZ_PW16C_X8 \
    "    ldm   r1!, {r4, r5}\n" \
    "    eors  r4, r7\n" \
    "    eors  r5, r7\n" \
    PZ_PW16C_X4("r4") \
    "    stm   r6!, {r0, r2, r3, r4}\n" \
    PZ_PW16C_X4("r5") \
    "    stm   r6!, {r0, r2, r3, r5}\n"
/* One step: x of input channels c, c + 1 from the table (r0 advancing), then the four lane pairs (PZ_PW16_LANES). */
#define PZ_PW16C_STEP \
    "    ldm   r0!, {r2, r3}\n" \
    PZ_PW16_LANES("adds  r6, r6", "adds  r7, r7") \
    PZ_PW16_LANES("add   r8", "add   r9") \
    PZ_PW16_LANES("add   r10", "add   r11") \
    PZ_PW16_LANES("add   r12", "add   lr")
#define PZ_PW16C_STEPS_4 PZ_PW16C_STEP PZ_PW16C_STEP PZ_PW16C_STEP PZ_PW16C_STEP
/* One output from lane H (a high register: compared there, moved to r6 only when multiplied), its record by r1, y r0,
 * add r5; labels as PZ_PW_PAIR's, the stubs after the group. */
#define PZ_PW16C_OUT_HIGH(H, I) \
    PZ_PW_OUT_VIA(H, "    mov   r6, " H "\n", "r6", I, "4" I "f", "5" I "f", "6" I, "r1", "r0")

/* The loop for C input channels (C a multiple of 8): XWORDS = C / 8 PZ_PW16C_X8, STEPS = C / 2 PZ_PW16C_STEP.
 * r0 = x, r1 = the first group's header, r2 = the pz_pw_args_t, r3 = y. */
#define PZ_PW16C_FN(NAME, C, XWORDS, STEPS) \
__asm__( \
    PZ_M0_FUNC(NAME) \
    PZ_M0_SAVE_R4_R11 \
    "    sub   sp, #(" PZ_PW16C_TABLE " + 8 + 4 * " C ")\n" \
    "    str   r0, [sp]\n" \
    "    str   r1, [sp, #8]\n" \
    "    str   r3, [sp, #(" PZ_PW16C_TABLE " + 4 * " C ")]\n"      /* y */ \
    "    ldr   r4, [r2, #8]\n"                                    /* rq_end: the end of the weights */ \
    "    str   r4, [sp, #12]\n" \
    "    ldr   r4, [r2, #20]\n"                                   /* add */ \
    "    str   r4, [sp, #(" PZ_PW16C_TABLE " + 4 + 4 * " C ")]\n" \
    "    ldr   r4, [r2, #24]\n" \
    "    str   r4, [sp, #36]\n" \
    "    ldr   r4, [r2, #28]\n" \
    "    str   r4, [sp, #40]\n" \
    "    ldr   r4, [r2, #32]\n"                                   /* pixels */ \
    "    movs  r5, #" C "\n" \
    "    muls  r4, r5, r4\n" \
    "    adds  r4, r0, r4\n" \
    "    str   r4, [sp, #4]\n" \
    "    movs  r4, #0x80\n" \
    "    lsls  r5, r4, #8\n" \
    "    orrs  r4, r5\n" \
    "    lsls  r5, r4, #16\n" \
    "    orrs  r4, r5\n" \
    "    str   r4, [sp, #16]\n"                                   /* 0x80808080 */ \
    "    mov   r1, r0\n" \
    "    b     1f\n" \
    "2:\n"                                                         /* a group */ \
    PZ_PW16_LANE_STARTS \
    "    add   r0, sp, #" PZ_PW16C_TABLE "\n" \
    STEPS \
    "    ldm   r0, {r0, r5}\n"                                     /* y, add (after the table) */ \
    PZ_PW16_PAIR("0", "1", "f") \
    PZ_PW16C_OUT_HIGH("r8", "2") \
    PZ_PW16C_OUT_HIGH("r9", "3") \
    PZ_PW16C_OUT_HIGH("r10", "4") \
    PZ_PW16C_OUT_HIGH("r11", "5") \
    PZ_PW16C_OUT_HIGH("r12", "6") \
    PZ_PW16C_OUT_HIGH("lr", "7") \
    "    adds  r0, #8\n" \
    "    str   r0, [sp, #(" PZ_PW16C_TABLE " + 4 * " C ")]\n" \
    "    ldr   r4, [sp, #12]\n" \
    "    cmp   r1, r4\n"                                           /* past the last group: the pixel is done */ \
    "    beq   17f\n" \
    "    b     2b\n" \
    PZ_PW_STUBS("r6", "0", "b") \
    PZ_PW_STUBS("r7", "1", "b") \
    PZ_PW_STUBS("r6", "2", "b") \
    PZ_PW_STUBS("r6", "3", "b") \
    PZ_PW_STUBS("r6", "4", "b") \
    PZ_PW_STUBS("r6", "5", "b") \
    PZ_PW_STUBS("r6", "6", "b") \
    PZ_PW_STUBS("r6", "7", "b") \
    "17:\n"                                                        /* the pixel is done: the next one */ \
    "    ldr   r1, [sp]\n" \
    "    ldr   r4, [sp, #4]\n" \
    "    cmp   r1, r4\n" \
    "    beq   18f\n" \
    "1:\n"                                                         /* a pixel (r1 = its bytes): its x table */ \
    "    ldr   r7, [sp, #16]\n" \
    "    add   r6, sp, #" PZ_PW16C_TABLE "\n" \
    XWORDS \
    "    str   r1, [sp]\n" \
    "    ldr   r1, [sp, #8]\n" \
    "    b     2b\n" \
    "18:\n" \
    "    add   sp, #(" PZ_PW16C_TABLE " + 8 + 4 * " C ")\n" \
    PZ_M0_RESTORE_R4_R11_RETURN \
    "    .size   " NAME ", . - " NAME "\n" \
    "    .popsection\n");

PZ_PW16C_FN("pz_q8_pw16_c8_m0", "8", PZ_PW16C_X8, PZ_PW16C_STEPS_4)
PZ_PW16C_FN("pz_q8_pw16_c16_m0", "16", PZ_PW16C_X8 PZ_PW16C_X8, PZ_PW16C_STEPS_4 PZ_PW16C_STEPS_4)

typedef void (*pz_pw_loop_t)(const uint8_t *, const uint8_t *, const pz_pw_args_t *, uint8_t *);
/* the pw16 loops for one C each, by C / 8 */
static const pz_pw_loop_t pw16_by_c8[] = {0, pz_q8_pw16_c8_m0, pz_q8_pw16_c16_m0};

/* K not a multiple of 8: the loops write whole groups of 8 outputs, ceil8(K) bytes a pixel (the padding lanes have
 * zero weights and zero records: compress/conv_layout.py), so batches of pixels go through `loop` into a buffer on
 * the stack and each pixel's K bytes are then copied to y. A batch's windows are all read before its first output
 * is written, so the write order above still holds. Its own function: only these layers pay the buffer's stack. */
__attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
static void pw_batched(pz_pw_loop_t loop, const uint8_t *xu, const pz_q8_conv_t *l, pz_pw_args_t *a, uint8_t *y) {
    uint8_t buf[PZ_PW_BATCH_BYTES] __attribute__((aligned(4)));
    const uint32_t C = l->s.in_c, K = l->s.out_c, K8 = (K + 7u) & ~7u, batch = PZ_PW_BATCH_BYTES / K8;
    for (uint32_t left = (uint32_t)l->s.out_h * l->s.out_w; left; ) {
        const uint32_t n = left < batch ? left : batch;
        a->pixels = n;
        loop(xu, l->w, a, buf);
        const uint8_t *src = buf;
        if (((K | (uint32_t)(uintptr_t)y) & 3u) == 0) {  /* whole words: y and every pixel's K bytes aligned */
            for (; src < buf + n * K8; src += K8, y += K) {
                for (uint32_t j = 0; j < K; j += 4u) {
                    *(pz_word_alias *)(void *)(y + j) = *(const pz_word_alias *)(const void *)(src + j);
                }
            }
        }
        for (; src < buf + n * K8; src += K8, y += K) {  /* bytes, where the words did not run */
            for (uint32_t j = 0; j < K; j++) y[j] = src[j];
        }
        xu += n * C;
        left -= n;
    }
}
#endif

int pz_pwconv_q8_m0(const pz_q8_conv_t *l, const uint8_t *xu, uint8_t *y) {
#if PZ_Q8_M0_ASM
    const pz_conv_shape_t *s = &l->s;
    const uint32_t C = s->in_c, K = s->out_c;
    const uint32_t pw16 = l->w_layout == PZ_Q8_W_PW16;
    /* pw16 reads bytes one by one (any alignment) and two at a time (C even), and needs no byte sum (any C) */
    const uint32_t K8 = (K + 7u) & ~7u;  /* whole groups of 8 output channels */
    if (s->k_h != 1 || s->k_w != 1 || s->stride_h != 1 || s->stride_w != 1 || s->pad_top || s->pad_left ||
        s->in_w != s->out_w || s->in_h != s->out_h || (l->out_xor & 0x7Fu) || (K8 != K && K8 > PZ_PW_BATCH_BYTES) ||
        (pw16 ? C % 2u : !l->rq || C % 4u || C > 1024u || ((uintptr_t)xu & 3u))) {
        if (!pw16) return 0;
        pz_conv2d_q8_ref(l, xu, y);  /* conv_q8_m0.c's paths read conv8 only; the build never gets here */
        return 1;
    }
    pz_pw_args_t a;
    a.c = C;
    a.lead = (32u - C % 32u) % 32u;
    /* the frame's end of a pixel's groups: conv8, the records' end; pw16, the weights' (records inside) */
    a.rq_end = pw16 ? (const int32_t *)(const void *)(l->w + K8 / 8u * PZ_PW16_GROUP_BYTES(C))
                    : l->rq + PZ_Q8_RQ_WORDS * K8;
    const uint32_t zero_skipping = !pw16 && l->pad == 0;
    /* the zero-skipping block's steps are PZ_PW_STEP_Z_BYTES long with a 2-byte ADDS after its step 15; pw16's steps
     * take two bytes */
    a.entry = pw16 ? a.lead / 2u * PZ_PW16_STEP_BYTES
              : zero_skipping ? a.lead * PZ_PW_STEP_Z_BYTES + (a.lead >= 16u ? 2u : 0u) : a.lead * PZ_PW_STEP_BYTES;
    a.w_back = zero_skipping ? 8u * a.lead - (a.lead >= 16u ? 128u : 0u) : 0u;
    a.rq = l->rq;
    a.add = (uint32_t)(l->out_zp + l->out_xor);
    a.lo = (uint32_t)(l->act_min + l->out_xor);
    a.hi = (uint32_t)(l->act_max + l->out_xor);
    pz_pw_loop_t loop = pw16 ? pz_q8_pw16_m0 : zero_skipping ? pz_q8_pwz_m0 : pz_q8_pw_m0;
    /* pw16 at a C with its own loop (PZ_PW16C_FN: the pixel's words read by LDM, so x 4-byte aligned) */
    if (pw16 && C % 8u == 0 && C / 8u < sizeof pw16_by_c8 / sizeof pw16_by_c8[0] && pw16_by_c8[C / 8u] &&
        ((uintptr_t)xu & 3u) == 0)
        loop = pw16_by_c8[C / 8u];
    a.pixels = (uint32_t)s->out_h * s->out_w;
    if (K8 != K) {
        pw_batched(loop, xu, l, &a, y);
    } else if (a.pixels) {
        loop(xu, l->w, &a, y);
    }
    return 1;
#else
    if (l->w_layout != PZ_Q8_W_PW16) return 0;
    pz_conv2d_q8_ref(l, xu, y);  /* the host build: conv_q8_m0.c's C paths read conv8 only */
    return 1;
#endif
}
