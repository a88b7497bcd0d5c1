/*
 * auth.c — verifies the signed auth chain a client sends as its first WebSocket frame, and
 * builds one (socialctl, tests). The algorithm is doc/auth-chain.md#verification, which is
 * @dcl/crypto-middleware 6.x verify('get', '/', headers) with a 5-minute timestamp window and
 * the scene-signer gate; the numbers in comments below (§3.1, ...) point into that document.
 *
 * Invariants that span the functions of this file:
 *
 * - Steps run in the reference's order: chain shape, timestamp, metadata, EIP-1654 routing,
 *   chain walk. A frame with several faults reports the first one the reference would hit.
 * - Frame text is handled as (pointer, length) from the first byte to the verdict. JSON may
 *   carry \u0000 inside strings and the final authority is compared byte for byte with the
 *   expected payload, so no C-string function ever looks at frame data.
 * - Everything is bounded by the frame: frames over AUTH_MAX_FRAME bytes are refused before
 *   parsing, jansson caps nesting depth (JSON_PARSER_MAX_DEPTH), at most AUTH_MAX_LINKS links
 *   are parsed, and every allocation is at most the size of a string taken from the frame.
 * - Out of memory fails closed: the step that could not allocate reports its own rejection.
 * - JavaScript's toLowerCase is applied to ASCII only, which is exact where it is used:
 *   addresses are compared with a recovered "0x" + hex string and no non-ASCII character
 *   lowercases to [0-9a-fx]; a timestamp that Number() accepts holds no cased non-ASCII
 *   character. The one place where full Unicode casing would matter, metadata.signer, refuses
 *   non-ASCII instead (§3 step 3 below).
 * - One secp256k1 context, created and randomized once under pthread_once and afterwards used
 *   only through const pointers (libsecp256k1 allows concurrent use then), so auth_verify and
 *   the signing functions are thread-safe. It lives as long as the process.
 */
#include "door/auth.h"

#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <jansson.h>
#include <secp256k1.h>
#include <secp256k1_recovery.h>

#include "lib/hex.h"
#include "door/keccak.h"

/* A real first frame is about 1.5 KB (three links double-encoded); anything near this size is
 * not an auth frame, and refusing it before parsing keeps a hostile client from making a
 * thread-pool worker chew megabytes. */
#define AUTH_MAX_FRAME AUTH_FRAME_MAX
#define AUTH_MAX_LINKS 10

#define AUTH_CHAIN_HEADER "x-identity-auth-chain-"
#define AUTH_TIMESTAMP_HEADER "x-identity-timestamp"
#define AUTH_METADATA_HEADER "x-identity-metadata"

#define AUTH_LINK_SIGNER "SIGNER"
#define AUTH_LINK_EPHEMERAL "ECDSA_EPHEMERAL"
#define AUTH_LINK_SIGNED_ENTITY "ECDSA_SIGNED_ENTITY"
#define AUTH_LINK_EIP1654_EPHEMERAL "ECDSA_EIP_1654_EPHEMERAL"
#define AUTH_LINK_EIP1654_SIGNED_ENTITY "ECDSA_EIP_1654_SIGNED_ENTITY"

#define AUTH_EPHEMERAL_PREFIX "Decentraland Login\nEphemeral address: "
#define AUTH_EPHEMERAL_ADDRESS_LINE "Ephemeral address: "
#define AUTH_EXPIRATION_LINE "Expiration: "
#define AUTH_SCENE_SIGNER_NAME "decentraland-kernel-scene"
#define AUTH_PERSONAL_PREFIX \
	"\x19"                   \
	"Ethereum Signed Message:\n"

#define AUTH_SIGNATURE_LEN 65
#define AUTH_SIGNATURE_HEX_LEN (2 + 2 * AUTH_SIGNATURE_LEN)

/* Numbers as reals so a big integer in metadata is not a parse error (JSON.parse takes it);
 * NUL allowed inside strings because JSON.parse allows it and every string here has a length. */
#define AUTH_JSON_FLAGS (JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)

/* A borrowed run of bytes, not NUL-terminated as far as this file is concerned. */
typedef struct AuthStr
{
	const char *ptr;
	size_t		len;
} AuthStr;

typedef struct AuthLink
{
	AuthStr type;
	AuthStr payload;
	AuthStr signature;
} AuthLink;

typedef struct AuthChain
{
	json_t	*docs[AUTH_MAX_LINKS];	/* owned: each parsed link object */
	AuthLink links[AUTH_MAX_LINKS]; /* borrowed from docs[] */
	int		 count;
} AuthChain;

static pthread_once_t	  auth_once = PTHREAD_ONCE_INIT;
static secp256k1_context *auth_secp;	 /* NULL when creation failed */
static locale_t			  auth_c_locale; /* (locale_t) 0 when creation failed */

/* Runs once, on whichever thread first needs the context. */
static void
auth_init_once(void)
{
	unsigned char seed[32];

	auth_secp = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
	/* Randomization blinds signing against timing side channels; a context that could not be
	 * randomized still signs and recovers correctly, so failure here is not fatal. */
	if (auth_secp != NULL && getrandom(seed, sizeof(seed), 0) == (ssize_t) sizeof(seed))
	{
		/* Documented to fail only for the static context, which this is not. */
		int randomized = secp256k1_context_randomize(auth_secp, seed);

		(void) randomized;
	}
	explicit_bzero(seed, sizeof(seed));

	/* Timestamps are parsed with strtod_l in the C locale so that a setlocale() elsewhere in
	 * the process cannot change what a decimal point is. */
	auth_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t) 0);
}

static const secp256k1_context *
auth_context(void)
{
	pthread_once(&auth_once, auth_init_once);
	return auth_secp;
}

/*
 * Small text helpers. All ASCII and locale-free.
 */
static inline bool
auth_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static inline char
auth_ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* Decodes exactly 2 * n hex digits; 0 ok, -1 on a non-hex character. */
static int
auth_hex_decode(const char *hex, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n; i++)
	{
		int hi = hex_value(hex[2 * i]);
		int lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t) (hi << 4 | lo);
	}
	return 0;
}

static void
auth_hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static bool
auth_str_is(AuthStr s, const char *literal)
{
	size_t n = strlen(literal);

	return s.len == n && memcmp(s.ptr, literal, n) == 0;
}

/* lower(a) == lower(b) over ASCII. */
static bool
auth_str_ieq(AuthStr a, AuthStr b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
	{
		if (auth_ascii_lower(a.ptr[i]) != auth_ascii_lower(b.ptr[i]))
			return false;
	}
	return true;
}

static bool
auth_has_prefix(const char *p, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(p, prefix, n) == 0;
}

/* Reads a header or link field: 1 a string (out set), 0 absent or null (JavaScript reads both
 * as "not there"), -1 any other JSON type. */
static int
auth_json_member(json_t *obj, const char *key, AuthStr *out)
{
	json_t *value = json_object_get(obj, key);

	if (value == NULL || json_is_null(value))
		return 0;
	if (!json_is_string(value))
		return -1;
	out->ptr = json_string_value(value);
	out->len = json_string_length(value);
	return 1;
}

/*
 * §3.1 ecrecover_personal and addresses.
 */

/* keccak256("\x19Ethereum Signed Message:\n" || decimal(len) || msg); 0 ok, -1 out of memory. */
static int
auth_personal_hash(const char *msg, size_t len, uint8_t hash[32])
{
	char	 decimal[24];
	int		 dlen = snprintf(decimal, sizeof(decimal), "%zu", len);
	size_t	 plen = strlen(AUTH_PERSONAL_PREFIX);
	uint8_t *buf = malloc(plen + (size_t) dlen + len + 1);

	if (buf == NULL)
		return -1;
	memcpy(buf, AUTH_PERSONAL_PREFIX, plen);
	memcpy(buf + plen, decimal, (size_t) dlen);
	if (len > 0)
		memcpy(buf + plen + (size_t) dlen, msg, len);
	keccak256(buf, plen + (size_t) dlen + len, hash);
	free(buf);
	return 0;
}

/* "0x" + hex(last 20 bytes of keccak256(X || Y)) for an uncompressed (0x04-prefixed) key. */
static void
auth_address_from_pubkey(const uint8_t pub[65], char *address_out)
{
	uint8_t hash[32];

	keccak256(pub + 1, 64, hash);
	address_out[0] = '0';
	address_out[1] = 'x';
	auth_hex_encode(hash + 12, 20, address_out + 2);
}

/* Recovers the lower-case address that personal-signed msg; AUTH_OK or AUTH_BAD_SIGNATURE. */
static AuthStatus
auth_recover(AuthStr sig_hex, const char *msg, size_t len, char address_out[ADDRESS_LEN + 1])
{
	const secp256k1_context				 *ctx = auth_context();
	secp256k1_ecdsa_recoverable_signature sig;
	secp256k1_pubkey					  pubkey;
	uint8_t								  raw[AUTH_SIGNATURE_LEN];
	uint8_t								  hash[32];
	uint8_t								  pub[65];
	size_t								  publen = sizeof(pub);
	int									  v;

	if (ctx == NULL)
		return AUTH_BAD_SIGNATURE;
	/* ^0x[0-9a-fA-F]+$ decoding to exactly 65 bytes, i.e. exactly 132 characters. */
	if (sig_hex.len != AUTH_SIGNATURE_HEX_LEN || sig_hex.ptr[0] != '0' || sig_hex.ptr[1] != 'x' ||
		auth_hex_decode(sig_hex.ptr + 2, AUTH_SIGNATURE_LEN, raw) < 0)
		return AUTH_BAD_SIGNATURE;

	v = raw[64];
	if (v == 0 || v == 1)
		v += 27;
	if (v != 27 && v != 28)
		return AUTH_BAD_SIGNATURE; /* EIP-155 style v and garbage alike */

	if (auth_personal_hash(msg, len, hash) < 0)
		return AUTH_BAD_SIGNATURE;
	/* parse_compact refuses r or s >= n but, like noble, accepts high s: no normalization. */
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact(ctx, &sig, raw, v - 27))
		return AUTH_BAD_SIGNATURE;
	if (!secp256k1_ecdsa_recover(ctx, &pubkey, &sig, hash))
		return AUTH_BAD_SIGNATURE;
	if (!secp256k1_ec_pubkey_serialize(ctx, pub, &publen, &pubkey, SECP256K1_EC_UNCOMPRESSED) ||
		publen != sizeof(pub))
		return AUTH_BAD_SIGNATURE;
	auth_address_from_pubkey(pub, address_out);
	return AUTH_OK;
}

/*
 * §3.2 parseDate: the ISO forms of JavaScript's Date.parse as V8 reads them,
 * YYYY-MM-DDTHH:MM:SS(.f+)?(Z|±HH:MM)?, no zone meaning UTC (the reference server runs in UTC).
 * Like V8: any number of fraction digits (the first three count), day 1..31 whatever the
 * month (Feb 31 rolls into March), hour 24 only as 24:00:00.000. Anything else is refused.
 */

/* Reads exactly n ASCII digits. */
static bool
auth_read_digits(const char *p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!auth_is_digit(p[i]))
			return false;
		v = v * 10 + (p[i] - '0');
	}
	*out = v;
	return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's algorithm);
 * d may exceed the month's length and then counts on into the next month. */
static int64_t
auth_days_from_civil(int64_t y, int m, int d)
{
	int64_t era;
	int64_t yoe;
	int64_t doy;
	int64_t doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* 0 and *ms_out = ms since the epoch, or -1 when the text is not a supported date. */
static int
auth_parse_date(const char *s, size_t len, int64_t *ms_out)
{
	int	   year, month, day, hour, minute, second;
	int	   millis = 0;
	int	   offset_min = 0;
	size_t i = 19;

	if (len < 19 || !auth_read_digits(s, 4, &year) || s[4] != '-' ||
		!auth_read_digits(s + 5, 2, &month) || s[7] != '-' || !auth_read_digits(s + 8, 2, &day) ||
		s[10] != 'T' || !auth_read_digits(s + 11, 2, &hour) || s[13] != ':' ||
		!auth_read_digits(s + 14, 2, &minute) || s[16] != ':' ||
		!auth_read_digits(s + 17, 2, &second))
		return -1;

	if (i < len && s[i] == '.')
	{
		size_t first = ++i;

		while (i < len && auth_is_digit(s[i]))
		{
			if (i - first < 3)
				millis = millis * 10 + (s[i] - '0');
			i++;
		}
		if (i == first)
			return -1;
		for (size_t n = i - first; n < 3; n++)
			millis *= 10;
	}

	if (i < len)
	{
		int oh, om;

		if (s[i] == 'Z' && i + 1 == len)
			offset_min = 0;
		else if ((s[i] == '+' || s[i] == '-') && len - i == 6 &&
				 auth_read_digits(s + i + 1, 2, &oh) && s[i + 3] == ':' &&
				 auth_read_digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59)
			offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
		else
			return -1;
	}

	if (month < 1 || month > 12 || day < 1 || day > 31 || minute > 59 || second > 59)
		return -1;
	if (hour > 24 || (hour == 24 && (minute != 0 || second != 0 || millis != 0)))
		return -1;

	*ms_out = ((auth_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60000 +
			  (int64_t) second * 1000 + millis - (int64_t) offset_min * 60000;
	return 0;
}

/*
 * JavaScript's Number(string) for the timestamp header: surrounding white space (ECMAScript
 * WhiteSpace and LineTerminator) is ignored, an empty string is 0, then either a decimal
 * literal (sign, digits, fraction, exponent) or an unsigned 0x / 0o / 0b integer; anything
 * else, "Infinity" included, is NaN for our purposes since only finite values pass.
 */

/* Length of the JS white-space character at p (UTF-8), 0 if there is none. */
static size_t
auth_js_space(const unsigned char *p, size_t len)
{
	if (len >= 1 && (p[0] == ' ' || (p[0] >= '\t' && p[0] <= '\r')))
		return 1;
	if (len >= 2 && p[0] == 0xC2 && p[1] == 0xA0) /* U+00A0 */
		return 2;
	if (len >= 3)
	{
		if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) /* U+1680 */
			return 3;
		/* U+2000..U+200A, U+2028, U+2029, U+202F */
		if (p[0] == 0xE2 && p[1] == 0x80 &&
			((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF))
			return 3;
		if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) /* U+205F */
			return 3;
		if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) /* U+3000 */
			return 3;
		if (p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF) /* U+FEFF */
			return 3;
	}
	return 0;
}

static size_t
auth_skip_js_space(const unsigned char *p, size_t len, size_t i)
{
	size_t n;

	while (i < len && (n = auth_js_space(p + i, len - i)) > 0)
		i += n;
	return i;
}

static size_t
auth_skip_digits(const unsigned char *p, size_t len, size_t i)
{
	while (i < len && auth_is_digit((char) p[i]))
		i++;
	return i;
}

/* The base named by the letter after "0" in 0x / 0o / 0b literals, 0 for any other. */
static int
auth_radix(unsigned char c)
{
	switch (c | 0x20)
	{
		case 'x':
			return 16;
		case 'o':
			return 8;
		case 'b':
			return 2;
	}
	return 0;
}

/* 0 and a finite *out, or -1. */
static int
auth_js_number(AuthStr s, double *out)
{
	const unsigned char *p = (const unsigned char *) s.ptr;
	size_t				 len = s.len;
	size_t				 i = auth_skip_js_space(p, len, 0);
	size_t				 start = i;
	double				 value = 0;

	if (i == len)
	{
		*out = 0;
		return 0;
	}

	if (len - i > 2 && p[i] == '0' && auth_radix(p[i + 1]) > 0)
	{
		int	   base = auth_radix(p[i + 1]);
		size_t first = i + 2;

		for (i = first; i < len; i++)
		{
			int d = hex_value((char) p[i]);

			if (d < 0 || d >= base)
				break;
			value = value * base + d;
		}
		if (i == first)
			return -1;
	}
	else
	{
		size_t int_end, frac_end;
		char  *copy;
		char  *end;

		if (p[i] == '+' || p[i] == '-')
			i++;
		int_end = auth_skip_digits(p, len, i);
		frac_end = int_end;
		if (frac_end < len && p[frac_end] == '.')
			frac_end = auth_skip_digits(p, len, frac_end + 1);
		/* At least one digit before or after the point. */
		if (int_end == i && frac_end <= int_end + 1)
			return -1;
		i = frac_end;
		if (i < len && (p[i] == 'e' || p[i] == 'E'))
		{
			size_t exp_start = i + 1;

			if (exp_start < len && (p[exp_start] == '+' || p[exp_start] == '-'))
				exp_start++;
			i = auth_skip_digits(p, len, exp_start);
			if (i == exp_start)
				return -1;
		}

		/* The literal is now known to be in strtod's grammar too; strtod rounds correctly. */
		copy = strndup((const char *) p + start, i - start);
		if (copy == NULL)
			return -1;
		value = auth_c_locale != (locale_t) 0 ? strtod_l(copy, &end, auth_c_locale)
											  : strtod(copy, &end);
		if (*end != '\0')
			value = NAN;
		free(copy);
	}

	if (auth_skip_js_space(p, len, i) != len || !isfinite(value))
		return -1;
	*out = value;
	return 0;
}

/*
 * §3 steps 1–3: chain, timestamp, metadata.
 */
static void
auth_chain_clear(AuthChain *chain)
{
	for (int i = 0; i < chain->count; i++)
		json_decref(chain->docs[i]);
	chain->count = 0;
}

/* Step 1. Links are read from x-identity-auth-chain-0 up to the first absent or empty one;
 * each is a JSON string holding one link object whose three fields are strings. */
static AuthStatus
auth_chain_extract(json_t *headers, AuthChain *chain)
{
	char key[sizeof(AUTH_CHAIN_HEADER) + 11]; /* room for any int */

	for (int i = 0; i < AUTH_MAX_LINKS; i++)
	{
		AuthStr	  raw;
		AuthLink *link = &chain->links[i];
		json_t	 *doc;
		int		  found;

		snprintf(key, sizeof(key), AUTH_CHAIN_HEADER "%d", i);
		found = auth_json_member(headers, key, &raw);
		if (found < 0)
			return AUTH_BAD_CHAIN;
		if (found == 0 || raw.len == 0)
			break;

		doc = json_loadb(raw.ptr, raw.len, AUTH_JSON_FLAGS, NULL);
		if (doc == NULL)
			return AUTH_BAD_CHAIN;
		chain->docs[chain->count++] = doc;
		if (!json_is_object(doc) || auth_json_member(doc, "type", &link->type) != 1 ||
			auth_json_member(doc, "payload", &link->payload) != 1 ||
			auth_json_member(doc, "signature", &link->signature) != 1)
			return AUTH_BAD_CHAIN;
	}

	/* An eleventh link is refused outright rather than silently cut off. */
	if (json_object_get(headers, AUTH_CHAIN_HEADER "10") != NULL)
		return AUTH_BAD_CHAIN;
	if (chain->count < 2)
		return AUTH_BAD_CHAIN;
	return AUTH_OK;
}

/* Step 2. raw_ts is set to the header's text ("" when absent): it is signed verbatim. */
static AuthStatus
auth_timestamp_check(json_t *headers, const AuthOptions *opt, AuthStr *raw_ts)
{
	double ts;
	double now = (double) opt->now_ms;
	double window = (double) opt->timestamp_window_ms;
	int	   found = auth_json_member(headers, AUTH_TIMESTAMP_HEADER, raw_ts);

	if (found < 0)
		return AUTH_BAD_TIMESTAMP;
	if (found == 0)
	{
		raw_ts->ptr = "";
		raw_ts->len = 0;
	}
	/* Number(rawTs || "0"): absent and empty both read as 0, which the window then refuses. */
	if (auth_js_number(*raw_ts, &ts) < 0)
		return AUTH_BAD_TIMESTAMP;
	if (ts + window < now || ts > now + window)
		return AUTH_BAD_TIMESTAMP;
	return AUTH_OK;
}

/* metadata.signer must be a string equal to its own trim().toLowerCase() and not the scene
 * signer. Signers are ASCII in every client; a non-ASCII one is refused rather than carrying
 * Unicode case tables (and e.g. U+212A KELVIN SIGN lowercases to an ASCII 'k'). */
static AuthStatus
auth_signer_check(json_t *signer)
{
	const char *s;
	size_t		len;

	if (!json_is_string(signer))
		return AUTH_BAD_METADATA;
	s = json_string_value(signer);
	len = json_string_length(signer);
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x80 || (c >= 'A' && c <= 'Z'))
			return AUTH_SCENE_SIGNER;
	}
	if (len > 0 && (auth_js_space((const unsigned char *) s, 1) ||
					auth_js_space((const unsigned char *) s + len - 1, 1)))
		return AUTH_SCENE_SIGNER;
	if (len == strlen(AUTH_SCENE_SIGNER_NAME) && memcmp(s, AUTH_SCENE_SIGNER_NAME, len) == 0)
		return AUTH_SCENE_SIGNER;
	return AUTH_OK;
}

/* Step 3. raw_meta is set to the header's text ("" when absent): it is signed verbatim. */
static AuthStatus
auth_metadata_check(json_t *headers, AuthStr *raw_meta)
{
	json_t	  *meta;
	json_t	  *signer;
	AuthStatus status = AUTH_OK;
	int		   found = auth_json_member(headers, AUTH_METADATA_HEADER, raw_meta);

	if (found < 0)
		return AUTH_BAD_METADATA;
	if (found == 0)
	{
		/* JSON.parse("{}"): nothing to check, and the payload's last part is empty. */
		raw_meta->ptr = "";
		raw_meta->len = 0;
		return AUTH_OK;
	}

	meta = json_loadb(raw_meta->ptr, raw_meta->len, AUTH_JSON_FLAGS | JSON_DECODE_ANY, NULL);
	if (meta == NULL)
		return AUTH_BAD_METADATA;
	if (json_is_null(meta))
		status = AUTH_OK; /* null counts as {} */
	else if (!json_is_object(meta))
		status = AUTH_BAD_METADATA;
	else if ((signer = json_object_get(meta, "signer")) != NULL)
		status = auth_signer_check(signer);
	json_decref(meta);
	return status;
}

/* Step 4: "get" ":" "/" ":" lower(rawTs) ":" rawMeta, metadata verbatim. malloc'd, length in
 * *len_out; NULL when out of memory. */
static char *
auth_expected_payload(AuthStr raw_ts, AuthStr raw_meta, size_t *len_out)
{
	static const char head[] = "get:/:";
	size_t			  len = strlen(head) + raw_ts.len + 1 + raw_meta.len;
	char			 *out = malloc(len + 1);
	char			 *p = out;

	if (out == NULL)
		return NULL;
	memcpy(p, head, strlen(head));
	p += strlen(head);
	for (size_t i = 0; i < raw_ts.len; i++)
		*p++ = auth_ascii_lower(raw_ts.ptr[i]);
	*p++ = ':';
	if (raw_meta.len > 0)
		memcpy(p, raw_meta.ptr, raw_meta.len);
	out[len] = '\0';
	*len_out = len;
	return out;
}

/*
 * §3 step 6: the chain walk. `authority` is who may sign the next link; it starts empty, a
 * SIGNER link names it, each signed link must be signed by it and hands it on.
 */

/* ECDSA_EPHEMERAL: the current authority signed "…\nEphemeral address: A\nExpiration: D"
 * (with \r removed); A becomes the authority. *owned holds A's bytes. */
static AuthStatus
auth_link_ephemeral(const AuthLink *link, int64_t now_ms, AuthStr *authority, char **owned)
{
	char	   *msg;
	char	   *copy;
	size_t		len = 0;
	const char *line1, *line2, *nl;
	size_t		line1_len, line2_len;
	int64_t		expiration;
	char		signer[ADDRESS_LEN + 1];
	AuthStatus	status;

	if (link->signature.len == 0)
		return AUTH_BAD_SIGNATURE;

	msg = malloc(link->payload.len + 1);
	if (msg == NULL)
		return AUTH_BAD_CHAIN;
	for (size_t i = 0; i < link->payload.len; i++)
	{
		if (link->payload.ptr[i] != '\r')
			msg[len++] = link->payload.ptr[i];
	}

	/* msg.split('\n'): line 1 is the address, line 2 the expiration, more lines are allowed. */
	status = AUTH_BAD_CHAIN;
	nl = memchr(msg, '\n', len);
	if (nl == NULL)
		goto done;
	line1 = nl + 1;
	nl = memchr(line1, '\n', len - (size_t) (line1 - msg));
	if (nl == NULL)
		goto done;
	line1_len = (size_t) (nl - line1);
	line2 = nl + 1;
	nl = memchr(line2, '\n', len - (size_t) (line2 - msg));
	line2_len = nl != NULL ? (size_t) (nl - line2) : len - (size_t) (line2 - msg);
	if (!auth_has_prefix(line1, line1_len, AUTH_EPHEMERAL_ADDRESS_LINE) ||
		!auth_has_prefix(line2, line2_len, AUTH_EXPIRATION_LINE))
		goto done;

	status = AUTH_EPHEMERAL_EXPIRED;
	if (auth_parse_date(line2 + strlen(AUTH_EXPIRATION_LINE),
						line2_len - strlen(AUTH_EXPIRATION_LINE), &expiration) < 0 ||
		expiration <= now_ms)
		goto done;

	status = auth_recover(link->signature, msg, len, signer);
	if (status != AUTH_OK)
		goto done;
	if (!auth_str_ieq((AuthStr){signer, ADDRESS_LEN}, *authority))
	{
		status = AUTH_WRONG_SIGNER;
		goto done;
	}

	line1 += strlen(AUTH_EPHEMERAL_ADDRESS_LINE);
	line1_len -= strlen(AUTH_EPHEMERAL_ADDRESS_LINE);
	copy = malloc(line1_len + 1);
	if (copy == NULL)
	{
		status = AUTH_BAD_CHAIN;
		goto done;
	}
	memcpy(copy, line1, line1_len);
	copy[line1_len] = '\0';
	/* The old authority may live in *owned: replace it only after it was compared. */
	free(*owned);
	*owned = copy;
	authority->ptr = copy;
	authority->len = line1_len;

done:
	free(msg);
	return status;
}

/* ECDSA_SIGNED_ENTITY: the current authority signed the payload, which becomes the authority
 * (and must in the end be the expected "get:/:…" payload). */
static AuthStatus
auth_link_signed_entity(const AuthLink *link, AuthStr *authority)
{
	char	   signer[ADDRESS_LEN + 1];
	AuthStatus status;

	if (link->signature.len == 0)
		return AUTH_BAD_SIGNATURE;
	status = auth_recover(link->signature, link->payload.ptr, link->payload.len, signer);
	if (status != AUTH_OK)
		return status;
	if (!auth_str_ieq((AuthStr){signer, ADDRESS_LEN}, *authority))
		return AUTH_WRONG_SIGNER;
	*authority = link->payload;
	return AUTH_OK;
}

static AuthStatus
auth_chain_walk(const AuthChain *chain, AuthStr expected, int64_t now_ms)
{
	AuthStr	   authority = {"", 0};
	char	  *owned = NULL; /* the latest ephemeral address, when authority points at it */
	AuthStatus status = AUTH_OK;

	if (!auth_str_is(chain->links[0].type, AUTH_LINK_SIGNER))
		return AUTH_BAD_CHAIN;
	for (int i = 1; i < chain->count; i++)
	{
		if (auth_str_is(chain->links[i].type, AUTH_LINK_SIGNER))
			return AUTH_BAD_CHAIN;
	}

	for (int i = 0; i < chain->count && status == AUTH_OK; i++)
	{
		const AuthLink *link = &chain->links[i];

		if (auth_str_is(link->type, AUTH_LINK_SIGNER))
			authority = link->payload; /* its signature is ignored, usually "" */
		else if (auth_str_is(link->type, AUTH_LINK_EPHEMERAL))
			status = auth_link_ephemeral(link, now_ms, &authority, &owned);
		else if (auth_str_is(link->type, AUTH_LINK_SIGNED_ENTITY))
			status = auth_link_signed_entity(link, &authority);
		else if (auth_str_is(link->type, AUTH_LINK_EIP1654_EPHEMERAL) ||
				 auth_str_is(link->type, AUTH_LINK_EIP1654_SIGNED_ENTITY))
			status = AUTH_UNSUPPORTED; /* contract wallets need an RPC node (§4) */
		else
			authority = (AuthStr){"", 0}; /* unknown links vouch for nothing */
	}

	if (status == AUTH_OK &&
		(authority.len != expected.len || memcmp(authority.ptr, expected.ptr, expected.len) != 0))
		status = AUTH_PAYLOAD_MISMATCH;
	free(owned);
	return status;
}

/* Step 7's user, lower-cased. The walk already tied chain[0].payload to a recovered address;
 * the shape is checked again so that nothing but an address can ever reach address_out. */
static AuthStatus
auth_user_address(AuthStr payload, char *address_out)
{
	if (payload.len != ADDRESS_LEN || !address_hex(payload.ptr, true))
		return AUTH_BAD_CHAIN;
	address_lower(payload.ptr, address_out);
	return AUTH_OK;
}

AuthStatus
auth_verify(const char *frame, size_t len, const AuthOptions *opt, char *address_out)
{
	json_t	  *headers = NULL;
	AuthChain  chain;
	AuthStr	   raw_ts, raw_meta;
	char	  *expected = NULL;
	size_t	   expected_len = 0;
	AuthStatus status;

	chain.count = 0;
	if (address_out != NULL)
		address_out[0] = '\0';
	if (frame == NULL || opt == NULL || address_out == NULL || len > AUTH_MAX_FRAME)
		return AUTH_NOT_JSON;

	headers = json_loadb(frame, len, AUTH_JSON_FLAGS, NULL);
	if (headers == NULL || !json_is_object(headers))
	{
		status = AUTH_NOT_JSON;
		goto done;
	}

	status = auth_chain_extract(headers, &chain);
	if (status != AUTH_OK)
		goto done;
	status = auth_timestamp_check(headers, opt, &raw_ts);
	if (status != AUTH_OK)
		goto done;
	status = auth_metadata_check(headers, &raw_meta);
	if (status != AUTH_OK)
		goto done;

	expected = auth_expected_payload(raw_ts, raw_meta, &expected_len);
	if (expected == NULL)
	{
		status = AUTH_PAYLOAD_MISMATCH;
		goto done;
	}

	/* Step 5: the contract-wallet shape goes to a catalyst in the reference; offline, no. */
	if ((chain.count == 2 || chain.count == 3) &&
		auth_str_is(chain.links[0].type, AUTH_LINK_SIGNER) &&
		auth_str_is(chain.links[1].type, AUTH_LINK_EIP1654_EPHEMERAL))
	{
		status = AUTH_UNSUPPORTED;
		goto done;
	}

	status = auth_chain_walk(&chain, (AuthStr){expected, expected_len}, opt->now_ms);
	if (status == AUTH_OK)
		status = auth_user_address(chain.links[0].payload, address_out);

done:
	free(expected);
	auth_chain_clear(&chain);
	json_decref(headers);
	return status;
}

const char *
auth_status_name(AuthStatus status)
{
	switch (status)
	{
		case AUTH_OK:
			return "ok";
		case AUTH_NOT_JSON:
			return "not_json";
		case AUTH_BAD_CHAIN:
			return "bad_chain";
		case AUTH_BAD_TIMESTAMP:
			return "bad_timestamp";
		case AUTH_BAD_METADATA:
			return "bad_metadata";
		case AUTH_SCENE_SIGNER:
			return "scene_signer";
		case AUTH_UNSUPPORTED:
			return "unsupported";
		case AUTH_BAD_SIGNATURE:
			return "bad_signature";
		case AUTH_WRONG_SIGNER:
			return "wrong_signer";
		case AUTH_EPHEMERAL_EXPIRED:
			return "ephemeral_expired";
		case AUTH_PAYLOAD_MISMATCH:
			return "payload_mismatch";
	}
	return "unknown";
}

/*
 * The signing side.
 */
int
auth_address_from_key(const uint8_t key[32], char *address_out)
{
	const secp256k1_context *ctx = auth_context();
	secp256k1_pubkey		 pubkey;
	uint8_t					 pub[65];
	size_t					 publen = sizeof(pub);

	if (ctx == NULL || key == NULL || address_out == NULL)
		return -1;
	/* pubkey_create also refuses 0 and keys >= n. */
	if (!secp256k1_ec_pubkey_create(ctx, &pubkey, key) ||
		!secp256k1_ec_pubkey_serialize(ctx, pub, &publen, &pubkey, SECP256K1_EC_UNCOMPRESSED))
		return -1;
	auth_address_from_pubkey(pub, address_out);
	return 0;
}

int
auth_personal_sign(const uint8_t key[32], const char *msg, size_t len, uint8_t sig_out[65])
{
	const secp256k1_context				 *ctx = auth_context();
	secp256k1_ecdsa_recoverable_signature sig;
	uint8_t								  hash[32];
	int									  recid;

	if (ctx == NULL || key == NULL || sig_out == NULL || (msg == NULL && len > 0))
		return -1;
	if (auth_personal_hash(msg, len, hash) < 0)
		return -1;
	/* NULL nonce function: RFC 6979, so the same key and message give the same bytes as ethers
	 * and @dcl/crypto, and libsecp256k1 always emits low s. */
	if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, hash, key, NULL, NULL) ||
		!secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, sig_out, &recid, &sig))
		return -1;
	/* recid 2 and 3 (r overflowed n) cannot be written as v = 27/28. */
	if (recid < 0 || recid > 1)
		return -1;
	sig_out[64] = (uint8_t) (27 + recid);
	return 0;
}

/* Adds x-identity-auth-chain-<index>: the JSON text of {type, payload, signature}, signed by
 * key over payload (signature "" when key is NULL). 0 ok, -1 failure. */
static int
auth_frame_add_link(json_t *frame, int index, const char *type, const char *payload,
					const uint8_t *key)
{
	char	header[sizeof(AUTH_CHAIN_HEADER) + 11]; /* room for any int */
	char	sig_hex[AUTH_SIGNATURE_HEX_LEN + 1] = "";
	uint8_t sig[AUTH_SIGNATURE_LEN];
	json_t *link;
	char   *text;
	int		rc;

	if (key != NULL)
	{
		if (auth_personal_sign(key, payload, strlen(payload), sig) < 0)
			return -1;
		sig_hex[0] = '0';
		sig_hex[1] = 'x';
		auth_hex_encode(sig, sizeof(sig), sig_hex + 2);
	}
	/* Insertion order is kept by jansson, giving the clients' {type, payload, signature}. */
	link = json_pack("{s:s, s:s, s:s}", "type", type, "payload", payload, "signature", sig_hex);
	if (link == NULL)
		return -1;
	text = json_dumps(link, JSON_COMPACT);
	json_decref(link);
	if (text == NULL)
		return -1;
	snprintf(header, sizeof(header), AUTH_CHAIN_HEADER "%d", index);
	rc = json_object_set_new(frame, header, json_string(text));
	free(text);
	return rc;
}

char *
auth_build_frame(const uint8_t owner_key[32], const uint8_t ephemeral_key[32], int64_t timestamp_ms,
				 const char *expiration)
{
	char	owner[ADDRESS_LEN + 1];
	char	ephemeral[ADDRESS_LEN + 1];
	char	timestamp[24];
	char	payload[64];
	char   *ephemeral_msg = NULL;
	char   *text = NULL;
	json_t *frame = NULL;
	int64_t expiration_ms;

	/* The expiration goes into a signed line of its own: refuse one the server would not read
	 * back (or that could smuggle in a newline). */
	if (expiration == NULL || auth_parse_date(expiration, strlen(expiration), &expiration_ms) < 0)
		goto done;
	if (auth_address_from_key(owner_key, owner) < 0 ||
		auth_address_from_key(ephemeral_key, ephemeral) < 0)
		goto done;
	snprintf(timestamp, sizeof(timestamp), "%" PRId64, timestamp_ms);
	snprintf(payload, sizeof(payload), "get:/:%s:{}", timestamp);
	if (asprintf(&ephemeral_msg, AUTH_EPHEMERAL_PREFIX "%s\n" AUTH_EXPIRATION_LINE "%s", ephemeral,
				 expiration) < 0)
	{
		ephemeral_msg = NULL;
		goto done;
	}

	frame = json_object();
	if (frame == NULL || auth_frame_add_link(frame, 0, AUTH_LINK_SIGNER, owner, NULL) < 0 ||
		auth_frame_add_link(frame, 1, AUTH_LINK_EPHEMERAL, ephemeral_msg, owner_key) < 0 ||
		auth_frame_add_link(frame, 2, AUTH_LINK_SIGNED_ENTITY, payload, ephemeral_key) < 0 ||
		json_object_set_new(frame, AUTH_TIMESTAMP_HEADER, json_string(timestamp)) < 0 ||
		json_object_set_new(frame, AUTH_METADATA_HEADER, json_string("{}")) < 0)
		goto done;
	text = json_dumps(frame, JSON_COMPACT);

done:
	free(ephemeral_msg);
	json_decref(frame);
	return text;
}

int
auth_parse_key(const char *hex, uint8_t key_out[32])
{
	uint8_t key[32];

	if (hex == NULL || key_out == NULL)
		return -1;
	if (hex[0] == '0' && hex[1] == 'x')
		hex += 2;
	if (strnlen(hex, 65) != 64 || auth_hex_decode(hex, 32, key) < 0)
		return -1;
	memcpy(key_out, key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	return 0;
}
