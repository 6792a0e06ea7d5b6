/* The soft-float ('SF') and soft-double ('SD') tables' functions (datasheet §2.8.3.2, entry order in rom.S).
 *
 * Arithmetic and int/float conversions with round-to-nearest-even are the toolchain's libgcc routines (the C
 * operators below compile to them). Square root is computed here bit by bit, correctly rounded. Conversions to
 * integers round toward -infinity and clamp to the target range, as the datasheet specifies (NaN gives 0).
 * The transcendental functions are evaluated in double with range reduction and series written here; the float
 * versions round that double once. Soft-float ABI: a float travels in r0, a double in r0:r1. */
#include "rom.h"

typedef union { float f; uint32_t u; } fbits;
typedef union { double d; uint64_t u; } dbits;

static inline uint32_t fu(float f) { fbits b = {.f = f}; return b.u; }
static inline float uf(uint32_t u) { fbits b = {.u = u}; return b.f; }
static inline uint64_t du(double d) { dbits b = {.d = d}; return b.u; }
static inline double ud(uint64_t u) { dbits b = {.u = u}; return b.d; }

#define F_QNAN 0x7FC00000u
#define D_QNAN 0x7FF8000000000000ull
#define D_INF  0x7FF0000000000000ull

/* x * 2^n exactly (one rounding at most, for results in the subnormal range) */
static double scale2(double x, int n) {
    while (n > 1000) { x *= ud(0x7E70000000000000ull); n -= 1000; }      /* 2^1000 */
    while (n < -1000) { x *= ud(0x0170000000000000ull); n += 1000; }     /* 2^-1000 */
    if (n >= -1022)
        return x * ud((uint64_t)(n + 1023) << 52);
    return x * ud(1ull << (n + 1074));                                   /* 2^n as a subnormal */
}

static float scale2f(float x, int n) {
    while (n > 100) { x *= uf(0x71800000u); n -= 100; }                   /* 2^100 */
    while (n < -100) { x *= uf(0x0D800000u); n += 100; }                  /* 2^-100 */
    return x * uf((uint32_t)(n + 127) << 23);
}

/* ---- arithmetic and comparison ---- */
__attribute__((noipa)) float sf_fadd(float a, float b) { return a + b; }
/* a - b is a + (-b) exactly; the sign flip keeps libgcc's separate subtract routines (2.6 kB) out of the ROM */
float sf_fsub(float a, float b) { return sf_fadd(a, uf(fu(b) ^ 0x80000000u)); }
float sf_fmul(float a, float b) { return a * b; }
float sf_fdiv(float a, float b) { return a / b; }
__attribute__((noipa)) double sd_dadd(double a, double b) { return a + b; }
double sd_dsub(double a, double b) { return sd_dadd(a, ud(du(b) ^ (1ull << 63))); }
#define SUB(a, b) sd_dsub((a), (b))      /* every double subtraction below goes through the adder */
double sd_dmul(double a, double b) { return a * b; }
double sd_ddiv(double a, double b) { return a / b; }

/* -1 if a < b, 0 if equal, 1 if a > b or unordered (rom.S adds the flags variant) */
int sf_fcmp_c(float a, float b) { return a < b ? -1 : a == b ? 0 : 1; }
int sd_dcmp_c(double a, double b) { return a < b ? -1 : a == b ? 0 : 1; }

/* ---- square root: digit by digit on the mantissa, round to nearest (never a tie for integer radicands) ---- */
static uint64_t sqrt_mant(uint64_t m, int shift, int pairs) {
    uint64_t q = 0, r = 0;
    for (int i = pairs - 1; i >= 0; i--) {
        int p = 2 * i - shift;
        r = (r << 2) | (p >= 0 ? (m >> p) & 3 : 0);
        uint64_t t = (q << 2) | 1;
        if (r >= t) { r -= t; q = (q << 1) | 1; }
        else q <<= 1;
    }
    return r > q ? q + 1 : q;
}

float sf_fsqrt(float x) {
    uint32_t u = fu(x);
    if ((u & 0x7FFFFFFFu) == 0 || u == 0x7F800000u || (u & 0x7FFFFFFFu) > 0x7F800000u)
        return x;                                                   /* +-0, +inf, NaN */
    if (u >> 31)
        return uf(F_QNAN);
    int e = (int)(u >> 23);
    uint32_t m = u & 0x7FFFFFu;
    if (e == 0) {                                                   /* subnormal: normalise */
        e = 1;
        while (!(m & 0x800000u)) { m <<= 1; e--; }
    } else m |= 0x800000u;
    int E = e - 127 - 23, s = (E & 1) ? 22 : 24;    /* x = m * 2^E, m in [2^23, 2^24); radicand in [2^46, 2^48) */
    if (E & 1) { m <<= 1; E--; }
    uint64_t q = sqrt_mant(m, s, 24);                               /* q in [2^23, 2^24] */
    return uf((uint32_t)(((E - s) / 2 + 23 + 127) << 23) + (uint32_t)(q - 0x800000u));
}

double sd_dsqrt(double x) {
    uint64_t u = du(x);
    if ((u << 1) == 0 || u == D_INF || (u & ~(1ull << 63)) > D_INF)
        return x;
    if (u >> 63)
        return ud(D_QNAN);
    int e = (int)(u >> 52);
    uint64_t m = u & 0xFFFFFFFFFFFFFull;
    if (e == 0) {
        e = 1;
        while (!(m >> 52)) { m <<= 1; e--; }
    } else m |= 1ull << 52;
    int E = e - 1023 - 52, s = 52;                                  /* radicand in [2^104, 2^106) either way */
    if (E & 1) { m <<= 1; E--; }
    uint64_t q = sqrt_mant(m, s, 53);
    return ud(((uint64_t)((E - s) / 2 + 52 + 1023) << 52) + (q - (1ull << 52)));
}

/* ---- to integer: floor(x * 2^n), clamped to [lo, hi] given as a signed/unsigned 64-bit range ---- */
static uint64_t to_fixed(double x, int n, int is_unsigned, int bits) {
    uint64_t u = du(x);
    int neg = (int)(u >> 63), e = (int)(u >> 52) & 0x7FF;
    uint64_t m = u & 0xFFFFFFFFFFFFFull;
    uint64_t hi = is_unsigned ? (bits == 64 ? ~0ull : (1ull << bits) - 1) : (1ull << (bits - 1)) - 1;
    uint64_t lo_mag = is_unsigned ? 0 : 1ull << (bits - 1);     /* magnitude of the most negative value */
    if (e == 0x7FF && m)
        return 0;                                                  /* NaN */
    if (e) m |= 1ull << 52; else e = 1;
    int shift = e - 1075 + n;                                      /* |x| * 2^n = m * 2^shift */
    uint64_t mag;
    int inexact = 0, huge = 0;
    if (e == 0x7FF) huge = 1;
    else if (shift >= 0) {
        if (shift >= 11 || (m << shift) >> 63) huge = 1;           /* >= 2^63 */
        else mag = m << shift;
    } else if (shift <= -64) {
        mag = 0;
        inexact = m != 0;
    } else {
        mag = m >> -shift;
        inexact = (m & ((1ull << -shift) - 1)) != 0;
    }
    if (!neg)
        return huge || mag > hi ? hi : mag;
    if (huge) return is_unsigned ? 0 : -lo_mag;
    mag += inexact;                                                /* floor of a negative value */
    if (is_unsigned) return 0;
    return mag > lo_mag ? -lo_mag : -mag;
}

int32_t sf_float2int(float f) { return (int32_t)to_fixed(f, 0, 0, 32); }
int32_t sf_float2fix(float f, int n) { return (int32_t)to_fixed(f, n, 0, 32); }
uint32_t sf_float2uint(float f) { return (uint32_t)to_fixed(f, 0, 1, 32); }
uint32_t sf_float2ufix(float f, int n) { return (uint32_t)to_fixed(f, n, 1, 32); }
int64_t sf_float2int64(float f) { return (int64_t)to_fixed(f, 0, 0, 64); }
int64_t sf_float2fix64(float f, int n) { return (int64_t)to_fixed(f, n, 0, 64); }
uint64_t sf_float2uint64(float f) { return to_fixed(f, 0, 1, 64); }
uint64_t sf_float2ufix64(float f, int n) { return to_fixed(f, n, 1, 64); }
int32_t sd_double2int(double d) { return (int32_t)to_fixed(d, 0, 0, 32); }
int32_t sd_double2fix(double d, int n) { return (int32_t)to_fixed(d, n, 0, 32); }
uint32_t sd_double2uint(double d) { return (uint32_t)to_fixed(d, 0, 1, 32); }
uint32_t sd_double2ufix(double d, int n) { return (uint32_t)to_fixed(d, n, 1, 32); }
int64_t sd_double2int64(double d) { return (int64_t)to_fixed(d, 0, 0, 64); }
int64_t sd_double2fix64(double d, int n) { return (int64_t)to_fixed(d, n, 0, 64); }
uint64_t sd_double2uint64(double d) { return to_fixed(d, 0, 1, 64); }
uint64_t sd_double2ufix64(double d, int n) { return to_fixed(d, n, 1, 64); }

/* ---- from integer: one rounding to nearest, then an exact power-of-two scale ---- */
float sf_int2float(int32_t i) { return (float)i; }
float sf_uint2float(uint32_t i) { return (float)i; }
float sf_fix2float(int32_t i, int n) { return scale2f((float)i, -n); }
float sf_ufix2float(uint32_t i, int n) { return scale2f((float)i, -n); }
float sf_int642float(int64_t i) { return (float)i; }
float sf_uint642float(uint64_t i) { return (float)i; }
float sf_fix642float(int64_t i, int n) { return scale2f((float)i, -n); }
float sf_ufix642float(uint64_t i, int n) { return scale2f((float)i, -n); }
double sd_int2double(int32_t i) { return (double)i; }
double sd_uint2double(uint32_t i) { return (double)i; }
double sd_fix2double(int32_t i, int n) { return scale2((double)i, -n); }
double sd_ufix2double(uint32_t i, int n) { return scale2((double)i, -n); }
double sd_int642double(int64_t i) { return (double)i; }
double sd_uint642double(uint64_t i) { return (double)i; }
double sd_fix642double(int64_t i, int n) { return scale2((double)i, -n); }
double sd_ufix642double(uint64_t i, int n) { return scale2((double)i, -n); }
double sf_float2double(float f) { return (double)f; }
float sd_double2float(double d) { return (float)d; }

/* ---- transcendental functions, in double ---- */
static int is_nan(double x) { return (du(x) & ~(1ull << 63)) > D_INF; }
static int is_inf(double x) { return (du(x) & ~(1ull << 63)) == D_INF; }

/* pi/2 split into parts of 33 significant bits, so k * part is exact for |k| < 2^20 (Cody-Waite reduction);
 * the constants were computed from 80 digits of pi and ln 2 */
#define PIO2_HI  0x1.921fb544p+0
#define PIO2_MID 0x1.0b4611a6p-34
#define PIO2_LO  0x1.3198a2e037073p-69
#define TWO_OVER_PI 0x1.45f306dc9c883p-1
#define LN2_HI   0x1.62e42fefp-1                  /* ln 2 split likewise */
#define LN2_LO   0x1.473de6af278edp-34
#define INV_LN2  0x1.71547652b82fep+0
#define PI_2     0x1.921fb54442d18p+0
#define PI_4     0x1.921fb54442d18p-1
#define PI       0x1.921fb54442d18p+1

/* Series coefficients, folded by the compiler: SIN_COS[k] = (-1)^k / (k + 2)! alternating between the sine
 * terms (odd factorials) and the cosine terms (even); EXP_C[k] = 1 / k!; INV_ODD[k] = 1 / (2k + 3) */
static const double SIN_C[] = {-1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800,
                               1.0 / 6227020800.0, -1.0 / 1307674368000.0, 1.0 / 355687428096000.0,
                               -1.0 / 121645100408832000.0};
static const double COS_C[] = {-1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320, -1.0 / 3628800, 1.0 / 479001600,
                               -1.0 / 87178291200.0, 1.0 / 20922789888000.0, -1.0 / 6402373705728000.0,
                               1.0 / 2432902008176640000.0};
static const double EXP_C[] = {1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                               1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,
                               1.0 / 6227020800.0, 1.0 / 87178291200.0, 1.0 / 1307674368000.0};
static const double INV_ODD[] = {1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11, 1.0 / 13, 1.0 / 15, 1.0 / 17,
                                 1.0 / 19, 1.0 / 21, 1.0 / 23, 1.0 / 25, 1.0 / 27, 1.0 / 29, 1.0 / 31};
#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* c0 + c1 x + c2 x^2 + ... by Horner's rule */
static double poly(const double *c, int n, double x) {
    double sum = c[n - 1];
    for (int k = n - 2; k >= 0; k--)
        sum = sum * x + c[k];
    return sum;
}

/* sin and cos of r in [-pi/4, pi/4] from their Taylor series (terms below 2^-60 dropped) */
static double sin_small(double r) {
    double r2 = r * r;
    return r + r * r2 * poly(SIN_C, COUNT(SIN_C), r2);
}

static double cos_small(double r) {
    double r2 = r * r;
    return 1.0 + r2 * poly(COS_C, COUNT(COS_C), r2);
}

/* sin and cos of x together: x = k * pi/2 + r */
static void sincos_d(double x, double *s, double *c) {
    if (is_nan(x) || is_inf(x)) { *s = *c = ud(D_QNAN); return; }
    double kf = x * TWO_OVER_PI;
    int k = (int)(kf + (kf < 0 ? -0.5 : 0.5));                      /* exact reduction needs |k| < 2^20 anyway */
    double kd = (double)k;
    double r = SUB(SUB(SUB(x, kd * PIO2_HI), kd * PIO2_MID), kd * PIO2_LO);
    double sr = sin_small(r), cr = cos_small(r);
    switch (k & 3) {
    case 0: *s = sr; *c = cr; break;
    case 1: *s = cr; *c = -sr; break;
    case 2: *s = -sr; *c = -cr; break;
    default: *s = -cr; *c = sr; break;
    }
}

static double exp_d(double x) {
    if (is_nan(x)) return x;
    if (x > 709.8) return ud(D_INF);
    if (x < -745.2) return 0.0;
    double kf = x * INV_LN2;
    int k = (int)(kf + (kf < 0 ? -0.5 : 0.5));
    double r = SUB(SUB(x, k * LN2_HI), k * LN2_LO);
    return scale2(1.0 + r + r * r * poly(EXP_C, COUNT(EXP_C), r), k);
}

static double ln_d(double x) {
    uint64_t u = du(x);
    if (is_nan(x)) return x;
    if (u >> 63) return (u << 1) ? ud(D_QNAN) : -ud(D_INF);   /* ln(-0) = -inf, ln(negative) = NaN */
    if (u == 0) return -ud(D_INF);
    if (u == D_INF) return x;
    int e = 0;
    if (!(u >> 52)) { x = scale2(x, 54); e = -54; u = du(x); }   /* subnormal */
    e += (int)(u >> 52) - 1023;
    double m = ud((u & 0xFFFFFFFFFFFFFull) | (1023ull << 52)); /* m in [1, 2) */
    if (m > 1.41421356237309504880) { m *= 0.5; e++; }
    double t = SUB(m, 1.0) / (m + 1.0), t2 = t * t;
    double sum = t + t * t2 * poly(INV_ODD, COUNT(INV_ODD), t2);       /* atanh(t) */
    return e * LN2_HI + (e * LN2_LO + 2.0 * sum);
}

/* atan(z) for 0 <= z <= 1 */
static double atan_unit(double z) {
    double base = 0.0;
    if (z > 0.41421356237309504880) { base = PI_4; z = SUB(z, 1.0) / (z + 1.0); }   /* tan(pi/8) */
    double z2 = z * z, term = z, sum = z;
    for (int n = 3; n < 50; n += 2) { term = -term * z2; sum += term / n; }
    return base + sum;
}

static double atan2_d(double y, double x) {
    if (is_nan(x) || is_nan(y)) return x + y;
    int ny = (int)(du(y) >> 63), nx = (int)(du(x) >> 63);
    double ay = ny ? -y : y, ax = nx ? -x : x, a;
    if (is_inf(ay) && is_inf(ax)) a = PI_4;
    else if (ay == 0.0 && ax == 0.0) a = 0.0;
    else if (ay <= ax) a = atan_unit(ay / ax);
    else a = SUB(PI_2, atan_unit(ax / ay));
    if (nx) a = SUB(PI, a);
    return ny ? -a : a;
}

/* fsin returns sin in r0 and cos in r1 (the 'sincos' entry is the same function) */
uint64_t sf_fsincos(float x) {
    double s, c;
    sincos_d(x, &s, &c);
    return fu((float)s) | (uint64_t)fu((float)c) << 32;
}
float sf_fcos(float x) { double s, c; sincos_d(x, &s, &c); return (float)c; }
float sf_ftan(float x) { double s, c; sincos_d(x, &s, &c); return (float)(s / c); }
float sf_fexp(float x) { return (float)exp_d(x); }
float sf_fln(float x) { return (float)ln_d(x); }
float sf_fatan2(float y, float x) { return (float)atan2_d(y, x); }

double sd_dsin(double x) { double s, c; sincos_d(x, &s, &c); return s; }
double sd_dcos(double x) { double s, c; sincos_d(x, &s, &c); return c; }
double sd_dtan(double x) { double s, c; sincos_d(x, &s, &c); return s / c; }
double sd_dexp(double x) { return exp_d(x); }
double sd_dln(double x) { return ln_d(x); }
double sd_datan2(double y, double x) { return atan2_d(y, x); }
/* 'SD' 0x48 sincos: rom.S returns sin in r0:r1 and cos in r2:r3 */
void sd_dsincos_c(double x, double *out) { sincos_d(x, &out[0], &out[1]); }
