/*
 * keccak.h — Keccak-256 as Ethereum uses it (original Keccak padding 0x01, not NIST SHA3-256).
 */
#ifndef SOCIALD_KECCAK_H
#define SOCIALD_KECCAK_H

#include <stddef.h>
#include <stdint.h>

void keccak256(const uint8_t *data, size_t len, uint8_t out[32]);

#endif /* SOCIALD_KECCAK_H */
