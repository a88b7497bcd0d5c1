/*
 * keccak.c — Keccak-256, the hash Ethereum calls "sha3": the Keccak-f[1600] permutation with a
 * 1088-bit rate and the original multi-rate padding (first pad byte 0x01). NIST SHA3-256 is the
 * same sponge with pad byte 0x06, which is why OpenSSL 3.0 (SHA3 only) cannot be used.
 *
 * Lanes are loaded and stored little-endian byte by byte, so the code does not depend on the
 * host's byte order or on unaligned access. Nothing here allocates; the state lives on the
 * caller's stack, so keccak256 is reentrant.
 */
#include "door/keccak.h"

#include <string.h>

#define KECCAK_ROUNDS 24
#define KECCAK256_RATE 136 /* (1600 - 2 * 256) / 8 bytes */

static const uint64_t keccak_round_constants[KECCAK_ROUNDS] = {
	0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
	0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
	0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
	0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
	0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
	0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* rho offsets and pi lane order, walked together along the (x, y) -> (y, 2x + 3y) cycle
 * that starts at lane 1. */
static const unsigned keccak_rho[24] = {1,	3,	6,	10, 15, 21, 28, 36, 45, 55, 2,	14,
										27, 41, 56, 8,	25, 43, 62, 18, 39, 61, 20, 44};
static const unsigned keccak_pi[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
									   15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

static inline uint64_t
keccak_rotl(uint64_t x, unsigned n)
{
	return (x << n) | (x >> (64 - n));
}

static void
keccak_f1600(uint64_t st[25])
{
	uint64_t bc[5];

	for (int round = 0; round < KECCAK_ROUNDS; round++)
	{
		/* theta */
		for (int i = 0; i < 5; i++)
			bc[i] = st[i] ^ st[i + 5] ^ st[i + 10] ^ st[i + 15] ^ st[i + 20];
		for (int i = 0; i < 5; i++)
		{
			uint64_t t = bc[(i + 4) % 5] ^ keccak_rotl(bc[(i + 1) % 5], 1);

			for (int j = 0; j < 25; j += 5)
				st[j + i] ^= t;
		}

		/* rho and pi */
		uint64_t t = st[1];

		for (int i = 0; i < 24; i++)
		{
			unsigned j = keccak_pi[i];
			uint64_t next = st[j];

			st[j] = keccak_rotl(t, keccak_rho[i]);
			t = next;
		}

		/* chi */
		for (int j = 0; j < 25; j += 5)
		{
			for (int i = 0; i < 5; i++)
				bc[i] = st[j + i];
			for (int i = 0; i < 5; i++)
				st[j + i] ^= (~bc[(i + 1) % 5]) & bc[(i + 2) % 5];
		}

		/* iota */
		st[0] ^= keccak_round_constants[round];
	}
}

static inline uint64_t
keccak_load64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* XORs one full rate block into the state and permutes. */
static void
keccak_absorb_block(uint64_t st[25], const uint8_t *block)
{
	for (int i = 0; i < KECCAK256_RATE / 8; i++)
		st[i] ^= keccak_load64(block + 8 * i);
	keccak_f1600(st);
}

void
keccak256(const uint8_t *data, size_t len, uint8_t out[32])
{
	uint64_t st[25] = {0};
	uint8_t	 last[KECCAK256_RATE];

	while (len >= KECCAK256_RATE)
	{
		keccak_absorb_block(st, data);
		data += KECCAK256_RATE;
		len -= KECCAK256_RATE;
	}

	/* The tail always gets its own block: pad10*1 with Keccak's 0x01 domain byte. When the tail
	 * is rate - 1 bytes long both pad bits land in the same byte (0x81). */
	memset(last, 0, sizeof(last));
	if (len > 0)
		memcpy(last, data, len);
	last[len] ^= 0x01;
	last[KECCAK256_RATE - 1] ^= 0x80;
	keccak_absorb_block(st, last);

	for (int i = 0; i < 4; i++)
	{
		uint64_t lane = st[i];

		for (int b = 0; b < 8; b++)
			out[8 * i + b] = (uint8_t) (lane >> (8 * b));
	}
}
