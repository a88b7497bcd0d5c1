/*
 * address -- checking and lower-casing "0x" + 40 hex digit addresses, ASCII only (no locale).
 */
#include "lib/address.h"

#include <stddef.h>

#include "lib/hex.h"

bool
address_valid(const char *s)
{
	if (s == NULL || s[0] != '0' || s[1] != 'x')
		return false;
	for (int i = 2; i < ADDRESS_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[ADDRESS_LEN] == '\0';
}

bool
address_hex(const char *s, bool upper_x)
{
	if (s == NULL || s[0] != '0' || !(s[1] == 'x' || (upper_x && s[1] == 'X')))
		return false;
	for (int i = 2; i < ADDRESS_LEN; i++)
		if (hex_value((unsigned char) s[i]) < 0)
			return false;
	return true;
}

void
address_lower(const char *s, char out[ADDRESS_LEN + 1])
{
	for (int i = 0; i < ADDRESS_LEN; i++)
		out[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char) (s[i] - 'A' + 'a') : s[i];
	out[ADDRESS_LEN] = '\0';
}
