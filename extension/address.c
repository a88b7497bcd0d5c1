/*-------------------------------------------------------------------------
 *
 * address.c
 *	  Validation and normalization of wallet addresses.
 *
 * Clients send checksummed (mixed-case) or lower-case addresses; the
 * database compares them as text, so every entry point lower-cases first
 * and rejects anything that is not exactly '0x' followed by 40 hex digits
 * (the reference service's ^0x[0-9a-fA-F]{40}$).  No trimming: " 0xab.."
 * is a client bug that should be reported, not guessed at.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "address.h"

#include "errors.h"
#include "fmgr.h"
#include "utils/builtins.h"

static const char hexdigits[] = "0123456789abcdef";

static int
HexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
AddressNormalize(const text *in, const char *what, char *out)
{
	const char *s;
	int			len;
	bool		ok;

	if (in == NULL)
		ereport(ERROR, (errcode(ERRCODE_SOCIAL_INVALID_ADDRESS),
						what ? errmsg("%s address must not be null", what)
							 : errmsg("address must not be null")));

	s = VARDATA_ANY(in);
	len = VARSIZE_ANY_EXHDR(in);
	ok = (len == ADDRESS_LEN && s[0] == '0' && s[1] == 'x');
	for (int i = 2; ok && i < ADDRESS_LEN; i++)
		ok = HexValue(s[i]) >= 0;

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_SOCIAL_INVALID_ADDRESS),
				 what ? errmsg("invalid %s address: \"%s\"", what, text_to_cstring(in))
					  : errmsg("invalid address: \"%s\"", text_to_cstring(in)),
				 errdetail("An address is \"0x\" followed by 40 hexadecimal digits."),
				 errhint("Checksummed (mixed-case) addresses are accepted; spaces are not.")));

	out[0] = '0';
	out[1] = 'x';
	for (int i = 2; i < ADDRESS_LEN; i++)
		out[i] = hexdigits[HexValue(s[i])];
	out[ADDRESS_LEN] = '\0';
}

void
AddressFromArg(FunctionCallInfo fcinfo, int argno, const char *what, char *out)
{
	AddressNormalize(PG_ARGISNULL(argno) ? NULL : PG_GETARG_TEXT_PP(argno), what, out);
}

void
AddressToRaw(const char *addr, uint8 *raw)
{
	for (int i = 0; i < ADDRESS_RAW_LEN; i++)
		raw[i] = (uint8) ((HexValue(addr[2 + 2 * i]) << 4) | HexValue(addr[3 + 2 * i]));
}

void
AddressFromRaw(const uint8 *raw, char *addr)
{
	addr[0] = '0';
	addr[1] = 'x';
	for (int i = 0; i < ADDRESS_RAW_LEN; i++)
	{
		addr[2 + 2 * i] = hexdigits[raw[i] >> 4];
		addr[3 + 2 * i] = hexdigits[raw[i] & 0xf];
	}
	addr[ADDRESS_LEN] = '\0';
}

PG_FUNCTION_INFO_V1(social_normalize_address);
Datum
social_normalize_address(PG_FUNCTION_ARGS)
{
	char addr[ADDRESS_LEN + 1];

	AddressFromArg(fcinfo, 0, NULL, addr);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(addr, ADDRESS_LEN));
}
