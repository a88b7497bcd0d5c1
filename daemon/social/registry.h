/*
 * registry.h — profiles from Decentraland's profile registry (REGISTRY_URL), in the background.
 *
 * Answers never wait for the registry: every profile the protocol carries is read from
 * social.profiles in the answer's own SQL statement (social_pb.h), and each address shown is
 * told to registry_want() through social_pb's profile hook. An address this instance has not
 * looked up within the TTL (REGISTRY_PROFILE_TTL_MS, the reference's 10 minutes) is queued
 * (deduplicated, at most REGISTRY_QUEUE_MAX waiting; beyond that it is skipped and counted), and
 * sent in batches of up to REGISTRY_BATCH ids per POST {REGISTRY_URL}/profiles with body
 * {"ids":[…]}, at most REGISTRY_MAX_INFLIGHT requests at a time, each bounded by a deadline and
 * a body size. The answer (a JSON array of profiles) is parsed on libuv's thread pool and the
 * usable profiles are written with one statement of social.upsert_profile calls, so the next
 * answer — and analysts — see names and pictures. A slow, failing or garbage-answering registry
 * costs nothing but a counter and a log line: the addresses are tried again after
 * REGISTRY_RETRY_MS, and answers go on with what social.profiles holds, or the address alone.
 *
 * Freshness is this instance's memory of when it last asked (at most REGISTRY_KNOWN_MAX
 * addresses), not a column: a restarted instance refreshes each shown address once.
 *
 * Everything declared here runs on the loop thread, except the pure parts (any thread).
 */
#ifndef SOCIALD_REGISTRY_H
#define SOCIALD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lib/address.h"
#include "store/pg_pool.h"

struct lws_context;

#define REGISTRY_PROFILE_TTL_MS (10 * 60 * 1000)
#define REGISTRY_RETRY_MS (30 * 1000)
#define REGISTRY_BATCH 100
#define REGISTRY_MAX_INFLIGHT 4
#define REGISTRY_QUEUE_MAX 10000
#define REGISTRY_KNOWN_MAX 200000
#define REGISTRY_BODY_MAX (8 * 1024 * 1024)

typedef struct Registry Registry;

typedef struct RegistryOptions
{
	const char *url;		/* REGISTRY_URL: POST <url>/profiles */
	int			timeout_ms; /* REGISTRY_TIMEOUT_MS: one request, resolve to last byte, > 0 */
} RegistryOptions;

/*
 * Starts the registry client and hooks it to every profile served (social_pb_set_profile_hook).
 * lws is the daemon's context (ws_context()) and pg its pool; both borrowed: call
 * registry_destroy before ws_destroy and pg_pool_destroy. NULL (logged) for a URL that is not
 * http(s)://host[:port][/path] or when the vhost cannot be created. At most one per process.
 */
Registry *registry_create(uv_loop_t *loop, struct lws_context *lws, PgPool *pg,
						  const RegistryOptions *opts) __attribute__((warn_unused_result));

/* Unhooks, abandons requests in flight; memory is freed once every handle, lookup and parse
 * is back. NULL is a no-op. */
void registry_destroy(Registry *r);

/* address is being shown: queue it for a lookup unless it was looked up within the TTL. */
void registry_want(Registry *r, const char *address);

/* ---- Pure parts (no I/O; unit-tested) ---- */

/* Parses REGISTRY_URL (the rules of ARCHIPELAGO_STATS_URL) into the host and the path of
 * <url>/profiles. 0, or -1 with a one-line reason in err. */
int registry_url_parse(const char *url, bool *tls, char *host, size_t hostlen, bool *numeric,
					   int *port, char *path, size_t pathlen, char *host_header,
					   size_t host_header_len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* One usable profile, strings borrowed from the parsed document (valid during the call). */
typedef struct RegistryProfile
{
	char		address[ADDRESS_LEN + 1]; /* avatars[0].userId, lower case */
	const char *name;					  /* name, else unclaimedName; never empty */
	bool		has_claimed_name;
	const char *picture; /* avatar.snapshots.face256; never empty */
	bool		has_color;
	double		color[3]; /* nameColor r, g, b, each in [0, 1] */
} RegistryProfile;

/* return -1 to stop parsing. */
typedef int (*RegistryProfileFn)(void *ud, const RegistryProfile *p);

/*
 * Reads a /profiles answer: a JSON array of profiles, each with avatars[0] holding userId, name
 * or unclaimedName, hasClaimedName, nameColor {r,g,b} and avatar.snapshots.face256. fn runs for
 * each usable one, in order; a profile without a valid user id, a name or a picture is skipped
 * and counted in *unusable (a nameColor that is not three numbers in [0, 1] is dropped, the
 * profile kept). Returns the number of usable profiles, or -1 with a reason in err (not JSON,
 * not an array, over REGISTRY_BODY_MAX, or fn asked to stop).
 */
long registry_parse_profiles(const char *body, size_t len, RegistryProfileFn fn, void *ud,
							 size_t *unusable, char *err, size_t errlen);

#endif /* SOCIALD_REGISTRY_H */
