/* Bit operations and memory fill/copy of the public function table (datasheet §2.8.3.1): 'P3' 'R3' 'L3' 'T3',
 * 'MS' 'S4' 'MC' 'C4', and rom_table_lookup (§2.8.3). Built with -fno-builtin so the loops stay loops. */
#include "rom.h"

/* Table entries are (code, pointer) halfword pairs ended by code 0; the code is c1 | c2 << 8. */
void *rom_table_lookup(const uint16_t *table, uint32_t code) {
    for (; table[0]; table += 2) {
        if (table[0] == code)
            return (void *)(uintptr_t)table[1];
    }
    return 0;
}

uint32_t rom_popcount32(uint32_t x) {
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return (x * 0x01010101u) >> 24;
}

uint32_t rom_reverse32(uint32_t x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
    x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
    return (x >> 16) | (x << 16);
}

/* Leading / trailing zeros; 32 for x = 0 */
uint32_t rom_clz32(uint32_t x) {
    uint32_t n = 0;
    if (!x)
        return 32;
    for (uint32_t step = 16; step; step >>= 1) {
        if (!(x >> (32 - step))) {
            n += step;
            x <<= step;
        }
    }
    return n;
}

uint32_t rom_ctz32(uint32_t x) {
    if (!x)
        return 32;
    return 31 - rom_clz32(x & -x);
}

void *rom_memset(void *ptr, int c, uint32_t n) {
    uint8_t *p = ptr;
    while (n--)
        *p++ = (uint8_t)c;
    return ptr;
}

/* ptr word aligned; whole words are stored (n rounded up to a multiple of 4) */
void *rom_memset4(uint32_t *ptr, int c, uint32_t n) {
    uint32_t word = (uint8_t)c * 0x01010101u;
    uint32_t *p = ptr;
    for (uint32_t i = 0; i < n; i += 4)
        *p++ = word;
    return ptr;
}

void *rom_memcpy(void *dst, const void *src, uint32_t n) {
    uint8_t *d = dst;
    const uint8_t *s = src;
    while (n--)
        *d++ = *s++;
    return dst;
}

/* both word aligned; whole words are copied (n rounded up to a multiple of 4) */
void *rom_memcpy44(uint32_t *dst, const uint32_t *src, uint32_t n) {
    uint32_t *d = dst;
    for (uint32_t i = 0; i < n; i += 4)
        *d++ = *src++;
    return dst;
}
