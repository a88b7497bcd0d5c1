/*-------------------------------------------------------------------------
 *
 * address.h
 *	  Wallet addresses: '0x' + 40 hex digits, stored in lower case.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SOCIAL_ADDRESS_H
#define SOCIAL_ADDRESS_H

#include "fmgr.h"

#define ADDRESS_LEN 42	   /* characters of the text form */
#define ADDRESS_RAW_LEN 20 /* bytes of the binary form */

/*
 * Validates 'in' and writes its lower-case form, NUL-terminated, to 'out'
 * (ADDRESS_LEN + 1 bytes).  'what' names the argument in the error (NULL: none).
 * Raises SC010 on NULL or malformed input.
 */
extern void AddressNormalize(const text *in, const char *what, char *out);

/* Same, for a nullable function argument. */
extern void AddressFromArg(FunctionCallInfo fcinfo, int argno, const char *what, char *out);

/* Lower-case text form <-> 20 raw bytes.  The text must be normalized. */
extern void AddressToRaw(const char *addr, uint8 *raw);
extern void AddressFromRaw(const uint8 *raw, char *addr);

#endif /* SOCIAL_ADDRESS_H */
