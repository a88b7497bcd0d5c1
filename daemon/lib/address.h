/*
 * address -- Ethereum addresses as the daemon keeps them: "0x" + 40 lower-case hex digits.
 *
 * What comes from outside (an auth chain, a NATS subject, an Archipelago peer id) may be in any
 * case; it is checked with address_hex and lower-cased with address_lower. What the daemon keeps
 * and hands around is checked with address_valid.
 */
#ifndef SOCIALD_ADDRESS_H
#define SOCIALD_ADDRESS_H

#include <stdbool.h>

/* "0x" + 40 hex digits; a buffer for one holds ADDRESS_LEN + 1 bytes. */
#define ADDRESS_LEN 42

/* True for "0x" + 40 lower-case hex digits and nothing after; false for NULL. */
bool address_valid(const char *s);

/* True when s starts with '0', 'x' (or 'X' when upper_x) and 40 hex digits in any case. Reads no
 * more than ADDRESS_LEN bytes, and stops at a NUL; what follows is the caller's to check. */
bool address_hex(const char *s, bool upper_x);

/* The first ADDRESS_LEN bytes of s, ASCII lower-cased, and a NUL, into out. */
void address_lower(const char *s, char out[ADDRESS_LEN + 1]);

#endif /* SOCIALD_ADDRESS_H */
