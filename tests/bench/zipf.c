/* SPDX-License-Identifier: MIT */
/*
 * Zipf-distributed ranks by the method of Gray et al., "Quickly generating
 * billion-record synthetic databases" (SIGMOD 1994), as YCSB uses it: one
 * uniform draw and one power per rank, after an O(n) zeta sum at set-up.
 *
 * spillway-bench does not link libm, so the power is computed here from a
 * log and an exp by series (relative error about 1e-15, far below what a
 * load generator needs).
 */
#include <string.h>

#include "bench_pager.h"

#define LN2 0.6931471805599453

static double xlog(double x) /* x > 0, normal */
{
	uint64_t b;
	memcpy(&b, &x, sizeof(b));
	int e = (int)((b >> 52) & 0x7ff) - 1023;
	b = (b & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
	double m;
	memcpy(&m, &b, sizeof(m)); /* x = m * 2^e, m in [1, 2) */
	if (m > 1.4142135623730951) {
		m /= 2;
		e++;
	}
	/* ln m = 2 atanh(s), |s| <= 0.172: 16 odd terms reach 1e-25. */
	double s = (m - 1) / (m + 1), s2 = s * s, term = s, sum = 0;
	for (int k = 1; k < 32; k += 2) {
		sum += term / k;
		term *= s2;
	}
	return e * LN2 + 2 * sum;
}

static double xexp(double x)
{
	if (x < -700)
		return 0;
	double kf = x / LN2;
	long k = (long)(kf < 0 ? kf - 0.5 : kf + 0.5);
	double r = x - (double)k * LN2, term = 1, sum = 1; /* |r| <= ln2 / 2 */
	for (int i = 1; i < 20; i++) {
		term *= r / i;
		sum += term;
	}
	if (k > 1023)
		k = 1023;
	uint64_t b = (uint64_t)(k + 1023) << 52;
	double p;
	memcpy(&p, &b, sizeof(p));
	return sum * p;
}

static double xpow(double x, double y) /* x > 0 */
{
	return xexp(y * xlog(x));
}

static double zeta(uint64_t n, double theta)
{
	double sum = 0;
	for (uint64_t i = 1; i <= n; i++)
		sum += xpow((double)i, -theta);
	return sum;
}

void zipf_init(struct zipf *z, uint64_t n, double theta)
{
	double zeta2 = zeta(2, theta);
	z->n = n;
	z->theta = theta;
	z->alpha = 1.0 / (1.0 - theta);
	z->zetan = zeta(n, theta);
	z->eta = (1.0 - xpow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan);
	z->half_pow = 1.0 + xpow(0.5, theta);
}

uint64_t zipf_next(const struct zipf *z, uint64_t *rng)
{
	double u = (double)(rng_next(rng) >> 11) * 0x1.0p-53;
	double uz = u * z->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < z->half_pow)
		return 1;
	double base = z->eta * u - z->eta + 1.0;
	uint64_t r = base > 0 ? (uint64_t)((double)z->n * xpow(base, z->alpha)) : 0;
	return r < z->n ? r : z->n - 1;
}
