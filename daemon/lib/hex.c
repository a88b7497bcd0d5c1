/*
 * hex -- the value of one hexadecimal digit, ASCII only (no locale).
 */
#include "lib/hex.h"

int
hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
