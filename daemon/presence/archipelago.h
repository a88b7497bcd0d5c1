/*
 * archipelago.h — the Archipelago presence source: who the comms servers currently see.
 *
 * Every ARCHIPELAGO_POLL_INTERVAL_IN_MS one sociald instance fetches
 * GET {ARCHIPELAGO_STATS_URL}/peers ({"peers":[{"id":"0x…"}, …]}) and vouches for every valid
 * id with presence_seen(PRESENCE_SOURCE_ARCHIPELAGO, id, NULL); a peer that disappears from the
 * list simply stops being vouched for and lapses with the presence TTL. Which instance polls is
 * decided by a Redis lease (SET presence:archipelago:lease <id> NX PX 2×interval, renewed by its
 * holder), so a fleet of instances costs Archipelago one request per interval; when the holder
 * dies, another takes over within two intervals.
 *
 * The request uses libwebsockets' HTTP client on the daemon's own lws context (one vhost of
 * ours, no listener), so it runs on the loop like everything else; the host name is resolved on
 * libuv's thread pool first (this lws build resolves synchronously). The body is bounded
 * (ARCHIPELAGO_BODY_MAX), parsed with jansson, and fed to presence in batches paced by Redis'
 * backlog. A timeout, a refused connection, a non-200 status, an oversized or malformed body:
 * logged (throttled), counted (M_ARCHIPELAGO_ERRORS), and the next poll happens as usual.
 *
 * Everything declared here runs on the loop thread.
 */
#ifndef SOCIALD_ARCHIPELAGO_H
#define SOCIALD_ARCHIPELAGO_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "lib/address.h"
#include "store/redis_client.h"

struct lws_context;

/* The largest /peers body read; a longer one fails the poll. */
#define ARCHIPELAGO_BODY_MAX (8 * 1024 * 1024)
/* The Redis key of the poll lease. */
#define ARCHIPELAGO_LEASE_KEY "presence:archipelago:lease"

typedef struct Archipelago Archipelago;

typedef struct ArchipelagoOptions
{
	const char *stats_url;		  /* ARCHIPELAGO_STATS_URL: GET <url>/peers is polled */
	int			poll_interval_ms; /* ARCHIPELAGO_POLL_INTERVAL_IN_MS, > 0 */
} ArchipelagoOptions;

/*
 * Starts polling opts->stats_url every opts->poll_interval_ms (the first
 * poll about a second after the loop runs). lws is the daemon's context (ws_context()) and redis
 * its Redis client; both are borrowed and must outlive the Archipelago: call
 * archipelago_destroy before ws_destroy and redis_client_destroy. NULL (logged) for a URL that is
 * not http(s)://host[:port][/path], a non-positive interval, or when the vhost cannot be created.
 * At most one Archipelago exists per process.
 */
Archipelago *archipelago_create(uv_loop_t *loop, struct lws_context *lws, RedisClient *redis,
								const ArchipelagoOptions *opts) __attribute__((warn_unused_result));

/* Stops polling, abandons a request in flight, and hands the lease back if this instance holds
 * it (fire and forget). Memory is freed once the loop has run the close callbacks and Redis has
 * answered. NULL is a no-op. */
void archipelago_destroy(Archipelago *a);

/* ---- Pure parts (no I/O; unit-tested) ---- */

typedef struct ArchipelagoUrl
{
	bool tls;			   /* https */
	char host[256];		   /* name or IP literal (IPv6 without brackets) */
	bool numeric;		   /* host is an IP literal: nothing to resolve */
	int	 port;			   /* explicit, or 80 / 443 */
	char path[1024];	   /* the base path without trailing '/', plus "/peers" */
	char host_header[272]; /* host[:port] as the Host header wants it */
} ArchipelagoUrl;

/* Parses ARCHIPELAGO_STATS_URL: http(s)://host[:port][/base/path], no user info, query or
 * fragment. 0, or -1 with a one-line reason in err. */
int archipelago_url_parse(const char *url, ArchipelagoUrl *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* id as an address: "0x" + 40 hex digits in any case, lower-cased into out. */
bool archipelago_address(const char *id, char out[ADDRESS_LEN + 1]);

/* One valid peer address (lower case, valid during the call); return -1 to stop parsing. */
typedef int (*ArchipelagoPeerFn)(void *ud, const char *address);

/*
 * Reads a /peers body: a JSON object whose "peers" member is an array of objects with a string
 * "id". fn runs for each valid id, in order; entries that are not objects, lack a string id or
 * carry an invalid address are skipped and counted in *invalid. Other members are ignored.
 * Returns the number of valid ids, or -1 with a one-line reason in err (not JSON, not an
 * object, no "peers" array, over ARCHIPELAGO_BODY_MAX, or fn asked to stop).
 */
long archipelago_parse_peers(const char *body, size_t len, ArchipelagoPeerFn fn, void *ud,
							 size_t *invalid, char *err, size_t errlen);

#endif /* SOCIALD_ARCHIPELAGO_H */
