/*
 * auth.h — the signed auth chain a client sends as its first WebSocket frame
 * (doc/auth-chain.md), verified offline: personal-sign over Keccak-256, secp256k1
 * public-key recovery, ephemeral expiry, timestamp window, metadata bound byte for byte.
 *
 * auth_verify is pure and thread-safe (the daemon runs it on libuv's thread pool); the clock is
 * a parameter so tests inject it.
 */
#ifndef SOCIALD_AUTH_H
#define SOCIALD_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "lib/address.h"

/* The largest first frame auth_verify reads; a larger one is AUTH_NOT_JSON. A real one is about
 * 1.5 KB, so a connection can be refused as soon as its first frame announces more. */
#define AUTH_FRAME_MAX (64 * 1024)

typedef enum AuthStatus
{
	AUTH_OK = 0,
	AUTH_NOT_JSON,			/* frame is not a JSON object */
	AUTH_BAD_CHAIN,			/* missing/malformed links, < 2 or > 10 links, first not SIGNER, ... */
	AUTH_BAD_TIMESTAMP,		/* missing, not a number, or outside the window */
	AUTH_BAD_METADATA,		/* not a JSON object */
	AUTH_SCENE_SIGNER,		/* metadata.signer is a scene (or not lower-case) */
	AUTH_UNSUPPORTED,		/* EIP-1654 contract wallet chains: need network, refused */
	AUTH_BAD_SIGNATURE,		/* malformed signature or recovery failed */
	AUTH_WRONG_SIGNER,		/* a link is signed by someone other than the authority */
	AUTH_EPHEMERAL_EXPIRED, /* ephemeral key expired or its date unparseable */
	AUTH_PAYLOAD_MISMATCH,	/* the final authority is not "get:/:<ts>:<metadata>" */
} AuthStatus;

typedef struct AuthOptions
{
	int64_t now_ms;				 /* wall clock, ms since the epoch */
	int64_t timestamp_window_ms; /* default 300000 */
} AuthOptions;

/* Verifies a first frame (text or binary, not NUL-terminated). On AUTH_OK writes the
 * lower-case signer address (ADDRESS_LEN + 1 bytes) to address_out. */
AuthStatus auth_verify(const char *frame, size_t len, const AuthOptions *opt, char *address_out);

/* Stable snake_case name for logs and metrics ("ok", "bad_signature", ...). */
const char *auth_status_name(AuthStatus status);

/*
 * The signing side, for socialctl and tests.
 */
/* Lower-case address of a private key; 0 ok, -1 invalid key. */
int auth_address_from_key(const uint8_t key[32], char *address_out);
/* personal_sign: 65-byte r||s||v with v in {27, 28}; 0 ok, -1 failure. */
int auth_personal_sign(const uint8_t key[32], const char *msg, size_t len, uint8_t sig_out[65]);
/* The first frame a client sends, signed by owner (identity) and ephemeral (per connection) keys,
 * with the ephemeral link expiring at 'expiration' (e.g. "2030-01-01T00:00:00.000Z") and
 * metadata "{}". malloc'd JSON; NULL on failure. */
char *auth_build_frame(const uint8_t owner_key[32], const uint8_t ephemeral_key[32],
					   int64_t timestamp_ms, const char *expiration);
/* Parses "0x" + 64 hex digits (the 0x is optional); 0 ok, -1 malformed. */
int auth_parse_key(const char *hex, uint8_t key_out[32]);

#endif /* SOCIALD_AUTH_H */
