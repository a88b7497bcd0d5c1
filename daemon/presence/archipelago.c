/*
 * archipelago.c — polling Archipelago's /peers on the loop (libwebsockets' HTTP client).
 *
 * Lease. Every tick, independently of the poll below, the holder renews
 * presence:archipelago:lease with a compare-and-PEXPIRE script; anyone else (and a holder whose
 * renewal found the key gone or someone else's) tries SET NX PX. The TTL is two intervals, so a
 * holder that stops renewing is replaced within two ticks, and a Redis outage means nobody
 * polls (presence pauses with Redis anyway). archipelago_destroy releases the lease with a
 * compare-and-DEL, so another instance can take over at its next tick: best effort, as Redis
 * may be closed right after. The lease id is this process' instance id (lib/instance_id.h).
 *
 * Poll. A lease reply that finds this instance holding it starts a poll, a small state machine
 * changed only by archipelago_set_state():
 *
 *   IDLE --held--> RESOLVE --address--> FETCH --200 + body--> PARSE --ids--> FEED --done--> IDLE
 *                     |                    |                    |
 *                     `-- resolve / connect / status / timeout / size / junk --> IDLE
 *
 * A poll still running at the next tick (a slow Archipelago, a long feed) means no new one, so
 * at most one request exists, and none starts before lws has closed the previous connection.
 * Parsing (jansson, up to ARCHIPELAGO_BODY_MAX) runs on libuv's thread pool: a few MiB of JSON
 * take long enough to be felt on the loop.
 *
 * HTTP. Our own vhost on the daemon's lws context (no listener, its own protocol, and a client
 * TLS context for https with the system CA bundle) keeps these connections away from ws.c's
 * callback. lws 4.1.6 as Debian builds it resolves host names synchronously, so the name is
 * resolved with uv_getaddrinfo and lws gets the numeric address, with the name as Host header
 * (and TLS server name). Redirects are not followed (lws would resolve their target on the
 * loop). A deadline timer bounds the whole request: on expiry the connection is closed at
 * once. The body is copied into one buffer that grows up to ARCHIPELAGO_BODY_MAX; a
 * Content-Length above it fails the poll before reading. One request per connection: lws
 * closes it once the body is complete.
 *
 * Feeding. The parsed addresses are kept (ADDRESS_LEN + 1 bytes each) and handed to presence_seen in batches
 * from a timer: a batch while Redis has fewer than ARCHIPELAGO_FEED_PENDING commands in flight,
 * else a short pause. A large Archipelago cannot flood Redis or hold the loop. Redis going down
 * mid-feed drops the rest: the next poll brings them again.
 *
 * Lifetime. lws callbacks find the Archipelago through a static pointer (one per process), so a
 * connection that outlives archipelago_destroy finds nothing and is let go; should the lws
 * context go first, PROTOCOL_DESTROY makes us forget the vhost. Redis replies, name lookups and
 * parse jobs each hold a reference: the memory is freed when the last handle has closed and the
 * last of those is back.
 *
 * Everything here runs on the loop thread, except archipelago_parse_work() and the resolver's
 * lookup (libuv's thread pool; their completions run on the loop).
 */
#include "presence/archipelago.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/instance_id.h"
#include "lib/url.h"
#include "main/log.h"
#include "main/metrics.h"
#include "presence/presence.h"

#define ARCHIPELAGO_PROTOCOL "sociald-archipelago"
/* A request never takes longer than this, nor longer than 3/4 of the interval. */
#define ARCHIPELAGO_TIMEOUT_MS 10000
/* The first poll waits this long, so Redis can come up; while Redis is down, the lease is
 * tried again this often instead of once an interval, so polling resumes soon after it is back. */
#define ARCHIPELAGO_FIRST_POLL_MS 1000
/* presence_seen calls per batch, and the Redis backlog above which feeding pauses. */
#define ARCHIPELAGO_FEED_BATCH 256
#define ARCHIPELAGO_FEED_PENDING 1000
#define ARCHIPELAGO_FEED_PAUSE_MS 10
/* A failing source logs once, then at most this often while it keeps failing. */
#define ARCHIPELAGO_LOG_EVERY_MS 60000
/* Where Debian keeps the CA bundle for https (a build may point elsewhere). */
#ifndef ARCHIPELAGO_CA_BUNDLE
#define ARCHIPELAGO_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#endif

typedef enum ArchState
{
	ARCH_IDLE = 0,
	ARCH_RESOLVE, /* uv_getaddrinfo in flight */
	ARCH_FETCH,	  /* the HTTP request is in flight */
	ARCH_PARSE,	  /* the body is being parsed on the thread pool */
	ARCH_FEED,	  /* handing addresses to presence */
} ArchState;

typedef enum ArchLeaseOp
{
	LEASE_RENEW = 0,
	LEASE_ACQUIRE,
	LEASE_RELEASE,
} ArchLeaseOp;

/* Log throttle of one kind of failure: the first is logged, then one line a minute at most. */
typedef struct ArchFailures
{
	bool	 failing;
	uint64_t since_log; /* failures not logged since the last line */
	uint64_t logged_at;
} ArchFailures;

typedef struct ArchLeaseCall
{
	struct Archipelago *a;
	ArchLeaseOp			op;
} ArchLeaseCall;

/* One parse on the thread pool: owns the body while it runs, and the addresses it finds. */
typedef struct ArchParse
{
	uv_work_t			req;
	struct Archipelago *a;
	char			   *body;
	size_t				len;
	char (*peers)[ADDRESS_LEN + 1];
	size_t count;
	size_t cap;
	size_t invalid;
	long   valid;
	char   err[256];
} ArchParse;

struct Archipelago
{
	uv_loop_t				*loop;
	struct lws_context		*lws; /* borrowed */
	struct lws_vhost		*vhost;
	RedisClient				*redis; /* borrowed */
	const RedisClientScript *renew;
	const RedisClientScript *release;
	ArchipelagoUrl			 url;
	char			 shown[sizeof("https://") + sizeof(((ArchipelagoUrl *) 0)->host_header) +
			   sizeof(((ArchipelagoUrl *) 0)->path)]; /* the URL for logs */
	const char		*lease_id;									  /* instance_id() */
	char			 lease_ttl[24];								  /* ms, as text for Redis */
	int				 interval_ms;
	int				 timeout_ms;
	ArchState		 state;
	bool			 lease_busy; /* a renew or acquire is in flight */
	bool			 holder;
	bool			 closing;
	ArchFailures	 fetch_failures;
	ArchFailures	 lease_failures;
	uv_timer_t		 tick;
	uv_timer_t		 deadline;
	uv_timer_t		 feed;
	uv_getaddrinfo_t resolve;
	bool			 resolving;
	char			 ip[sizeof(((ArchipelagoUrl *) 0)->host)]; /* numeric, for lws */
	struct lws		*wsi; /* the request's connection, until lws closes it */
	int				 status;
	char			*body;
	size_t			 body_len;
	size_t			 body_cap;
	char (*peers)[ADDRESS_LEN + 1];
	size_t	 peer_count;
	size_t	 peer_cap;
	size_t	 peer_next;
	unsigned refs; /* open handles + Redis replies and lookups still to come */
};

/* lws callbacks reach the live Archipelago through this (one per process, loop thread only). */
static Archipelago *archipelago_live;

static const char archipelago_renew_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
											"  return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
											"end\n"
											"return 0\n";

static const char archipelago_release_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
											  "  return redis.call('DEL', KEYS[1])\n"
											  "end\n"
											  "return 0\n";

/* ---- Pure parts ---- */

bool
archipelago_address(const char *id, char out[ADDRESS_LEN + 1])
{
	if (!address_hex(id, false) || id[ADDRESS_LEN] != '\0')
		return false;
	address_lower(id, out);
	return true;
}

int
archipelago_url_parse(const char *url, ArchipelagoUrl *out, char *err, size_t errlen)
{
	static const char *const schemes[] = {"http", "https"};
	const char				*p;
	UrlAuthority			 a;
	size_t					 path_len;
	int						 scheme;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (!url || !*url)
	{
		snprintf(err, errlen, "the URL is empty");
		return -1;
	}
	scheme = url_scheme(url, schemes, 2, &p);
	if (scheme < 0)
	{
		snprintf(err, errlen, "the URL must start with http:// or https://");
		return -1;
	}
	out->tls = scheme == 1;
	out->port = out->tls ? 443 : 80;

	if (url_authority(p, p + strlen(p), &a) != 0 || (a.bracketed && a.host_len == 0))
	{
		snprintf(err, errlen, "an IPv6 host must be written [address]");
		return -1;
	}
	if (!a.bracketed && *a.after_host == '@')
	{
		snprintf(err, errlen, "user information in the URL is not supported");
		return -1;
	}
	if (a.host_len == 0 || a.host_len >= sizeof(out->host))
	{
		snprintf(err, errlen, a.host_len ? "the host name is too long" : "the URL has no host");
		return -1;
	}
	memcpy(out->host, a.host, a.host_len);
	out->host[a.host_len] = '\0';
	if (a.bracketed)
	{
		if (!url_ipv6(out->host))
		{
			snprintf(err, errlen, "\"%s\" is not an IPv6 address", out->host);
			return -1;
		}
		out->numeric = true;
	}
	else
		out->numeric = url_ipv4(out->host);

	if (a.has_port)
	{
		if (a.port < 0)
		{
			snprintf(err, errlen, "the port must be a number from 1 to 65535");
			return -1;
		}
		out->port = (int) a.port;
	}
	p = a.end;
	if (*p != '\0' && *p != '/')
	{
		snprintf(err, errlen, "unexpected '%c' after the host", *p);
		return -1;
	}
	path_len = strlen(p);
	for (size_t i = 0; i < path_len; i++)
	{
		unsigned char c = (unsigned char) p[i];

		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#')
		{
			snprintf(err, errlen,
					 "the path may not hold spaces, control characters, a query or a "
					 "fragment");
			return -1;
		}
	}
	while (path_len > 0 && p[path_len - 1] == '/')
		path_len--;
	if (path_len + sizeof("/peers") > sizeof(out->path))
	{
		snprintf(err, errlen, "the path is too long");
		return -1;
	}
	memcpy(out->path, p, path_len);
	memcpy(out->path + path_len, "/peers", sizeof("/peers"));

	if (out->port == (out->tls ? 443 : 80))
		snprintf(out->host_header, sizeof(out->host_header), a.bracketed ? "[%s]" : "%s",
				 out->host);
	else
		snprintf(out->host_header, sizeof(out->host_header), a.bracketed ? "[%s]:%d" : "%s:%d",
				 out->host, out->port);
	return 0;
}

long
archipelago_parse_peers(const char *body, size_t len, ArchipelagoPeerFn fn, void *ud,
						size_t *invalid, char *err, size_t errlen)
{
	json_t		*root;
	json_t		*peers;
	json_error_t je;
	long		 valid = 0;
	size_t		 i;
	json_t		*entry;

	*invalid = 0;
	err[0] = '\0';
	if (len > ARCHIPELAGO_BODY_MAX)
	{
		snprintf(err, errlen, "the body is over %d bytes", ARCHIPELAGO_BODY_MAX);
		return -1;
	}
	root = json_loadb(body, len, 0, &je);
	if (!root)
	{
		snprintf(err, errlen, "not JSON: %s at line %d column %d", je.text, je.line, je.column);
		return -1;
	}
	peers = json_is_object(root) ? json_object_get(root, "peers") : NULL;
	if (!json_is_array(peers))
	{
		snprintf(err, errlen,
				 json_is_object(root) ? "no \"peers\" array in the object"
									  : "the body is not a JSON object");
		json_decref(root);
		return -1;
	}
	json_array_foreach(peers, i, entry)
	{
		const char *id = json_string_value(json_object_get(entry, "id"));
		char		address[ADDRESS_LEN + 1];

		/* json_object_get of a non-object is NULL, and so is json_string_value of a non-string. */
		if (!id || !archipelago_address(id, address))
		{
			(*invalid)++;
			continue;
		}
		if (fn(ud, address) != 0)
		{
			snprintf(err, errlen, "out of memory");
			json_decref(root);
			return -1;
		}
		valid++;
	}
	json_decref(root);
	return valid;
}

/* ---- The loop thread ---- */

static void archipelago_lease_step(Archipelago *a, ArchLeaseOp op);
static void archipelago_fetch(Archipelago *a);
static void archipelago_on_tick(uv_timer_t *t);

/* One reference per open handle and per Redis call in flight; the last one frees, from a close
 * callback or a reply (libuv's rule, which every handle owner here follows the same way). */
static void
archipelago_unref(Archipelago *a)
{
	if (--a->refs > 0)
		return;
	free(a->body);
	free(a->peers);
	free(a);
}

static void
archipelago_on_closed(uv_handle_t *h)
{
	archipelago_unref(h->data);
}

static void
archipelago_set_state(Archipelago *a, ArchState next)
{
	a->state = next;
	if (next == ARCH_IDLE)
	{
		uv_timer_stop(&a->deadline);
		uv_timer_stop(&a->feed);
		/* Nothing large is kept between polls. */
		free(a->body);
		a->body = NULL;
		a->body_len = a->body_cap = 0;
		free(a->peers);
		a->peers = NULL;
		a->peer_count = a->peer_cap = a->peer_next = 0;
	}
}

/* why: for losing it, what happened. */
static void
archipelago_set_holder(Archipelago *a, bool holder, const char *why)
{
	if (holder && !a->holder)
		log_info("archipelago: this instance holds the poll lease and polls %s", a->shown);
	else if (!holder && a->holder)
		log_info("archipelago: this instance stops polling %s: %s", a->shown, why);
	a->holder = holder;
	metrics_gauge_set(G_ARCHIPELAGO_LEASE, holder ? 1 : 0);
}

/* A failing source logs its first failure, then at most once a minute; debug shows them all. */
static void
archipelago_failed(Archipelago *a, ArchFailures *f, const char *what, const char *why)
{
	uint64_t now = uv_now(a->loop);

	if (!f->failing || now - f->logged_at >= ARCHIPELAGO_LOG_EVERY_MS)
	{
		if (f->failing && f->since_log > 0)
			log_warn("archipelago: %s: %s (and %llu more failures since the last report)", what,
					 why, (unsigned long long) f->since_log);
		else
			log_warn("archipelago: %s: %s", what, why);
		f->failing = true;
		f->logged_at = now;
		f->since_log = 0;
	}
	else
	{
		f->since_log++;
		log_debug("archipelago: %s: %s", what, why);
	}
}

/* Returns whether the failures had been reported (so the caller can say it is over). */
static bool
archipelago_recovered(ArchFailures *f)
{
	bool was = f->failing;

	f->failing = false;
	f->since_log = 0;
	return was;
}

/*
 * The request failed: count it and wait for the next tick. The connection is the caller's to
 * end: from inside its lws callback by returning -1, from outside with archipelago_kill().
 */
static void
archipelago_fail(Archipelago *a, const char *why)
{
	if (a->state != ARCH_RESOLVE && a->state != ARCH_FETCH)
		return;
	archipelago_set_state(a, ARCH_IDLE);
	metrics_count(M_ARCHIPELAGO_ERRORS, 1);
	archipelago_failed(a, &a->fetch_failures, "GET /peers failed", why);
}

/*
 * Closes the request's connection now. Only from outside lws callbacks for it (a timer,
 * destroy): LWS_TO_KILL_ASYNC would wait for lws' next timeout sweep, seconds away on a
 * foreign loop. Its CLOSED (or CONNECTION_ERROR) callback runs from in here.
 */
static void
archipelago_kill(Archipelago *a)
{
	struct lws *wsi = a->wsi;

	if (wsi)
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	a->wsi = NULL;
}

/* ---- Feeding presence ---- */

/* Thread pool. */
static int
archipelago_collect(void *ud, const char *address)
{
	ArchParse *job = ud;

	if (job->count == job->cap)
	{
		size_t ncap = job->cap ? job->cap * 2 : 1024;
		void  *n = realloc(job->peers, ncap * sizeof(*job->peers));

		if (!n)
			return -1;
		job->peers = n;
		job->cap = ncap;
	}
	memcpy(job->peers[job->count++], address, ADDRESS_LEN + 1);
	return 0;
}

/* Thread pool: touches only the job. */
static void
archipelago_parse_work(uv_work_t *req)
{
	ArchParse *job = req->data;

	job->valid = archipelago_parse_peers(job->body ? job->body : "", job->len, archipelago_collect,
										 job, &job->invalid, job->err, sizeof(job->err));
	free(job->body);
	job->body = NULL;
}

static void
archipelago_parse_free(ArchParse *job)
{
	free(job->body);
	free(job->peers);
	free(job);
}

static void
archipelago_on_feed(uv_timer_t *t)
{
	Archipelago *a = t->data;
	size_t		 n = 0;

	if (a->state != ARCH_FEED)
		return;
	if (!redis_client_is_up(a->redis))
	{
		log_debug("archipelago: Redis is down, %zu peers not fed this time",
				  a->peer_count - a->peer_next);
		archipelago_set_state(a, ARCH_IDLE);
		return;
	}
	while (a->peer_next < a->peer_count && n < ARCHIPELAGO_FEED_BATCH &&
		   redis_client_pending(a->redis) < ARCHIPELAGO_FEED_PENDING)
	{
		presence_seen(PRESENCE_SOURCE_ARCHIPELAGO, a->peers[a->peer_next++], NULL);
		n++;
		if (a->state != ARCH_FEED) /* presence may have run archipelago_destroy */
			return;
	}
	if (a->peer_next == a->peer_count)
	{
		log_debug("archipelago: fed %zu peers", a->peer_count);
		archipelago_set_state(a, ARCH_IDLE);
		return;
	}
	uv_timer_start(&a->feed, archipelago_on_feed, n > 0 ? 0 : ARCHIPELAGO_FEED_PAUSE_MS, 0);
}

static void archipelago_parsed(uv_work_t *req, int status);

/* The whole body is in (lws COMPLETED callback): parse it off the loop. */
static void
archipelago_fetched(Archipelago *a)
{
	char	   err[64];
	ArchParse *job;

	if (a->state != ARCH_FETCH)
		return;
	if (a->status != HTTP_STATUS_OK)
	{
		snprintf(err, sizeof(err), "HTTP status %d", a->status);
		archipelago_fail(a, err);
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
	{
		archipelago_fail(a, "out of memory");
		return;
	}
	/* The body moves to the job; the request is over as far as the deadline goes. */
	job->a = a;
	job->body = a->body;
	job->len = a->body_len;
	job->req.data = job;
	a->body = NULL;
	a->body_len = a->body_cap = 0;
	uv_timer_stop(&a->deadline);
	archipelago_set_state(a, ARCH_PARSE);
	if (uv_queue_work(a->loop, &job->req, archipelago_parse_work, archipelago_parsed) != 0)
	{
		archipelago_parse_free(job);
		archipelago_set_state(a, ARCH_FETCH);
		archipelago_fail(a, "cannot queue the parse");
		return;
	}
	a->refs++;
}

/* Loop thread: the thread pool is done with a parse job (or it was cancelled). */
static void
archipelago_parsed(uv_work_t *req, int status)
{
	ArchParse	*job = req->data;
	Archipelago *a = job->a;
	long		 valid = job->valid;
	size_t		 invalid = job->invalid;

	if (a->closing || a->state != ARCH_PARSE || status != 0)
	{
		archipelago_parse_free(job);
		archipelago_unref(a);
		return;
	}
	a->refs--; /* never the last: the handles hold theirs */
	if (valid < 0)
	{
		metrics_count(M_ARCHIPELAGO_ERRORS, 1);
		archipelago_failed(a, &a->fetch_failures, "GET /peers failed", job->err);
		archipelago_parse_free(job);
		archipelago_set_state(a, ARCH_IDLE);
		return;
	}
	a->peers = job->peers;
	a->peer_count = job->count;
	a->peer_cap = job->cap;
	job->peers = NULL;
	archipelago_parse_free(job);
	metrics_count(M_ARCHIPELAGO_POLLS, 1);
	metrics_count(M_ARCHIPELAGO_PEERS, (uint64_t) valid);
	metrics_count(M_ARCHIPELAGO_INVALID_IDS, invalid);
	if (archipelago_recovered(&a->fetch_failures))
		log_info("archipelago: %s answers again", a->shown);
	if (invalid > 0)
		log_debug("archipelago: %zu peer entries without a valid id skipped", invalid);
	archipelago_set_state(a, ARCH_FEED);
	a->peer_next = 0;
	uv_timer_start(&a->feed, archipelago_on_feed, 0, 0);
}

static int
archipelago_append(Archipelago *a, const void *data, size_t len)
{
	if (len > ARCHIPELAGO_BODY_MAX - a->body_len)
	{
		archipelago_fail(a, "the body is over 8 MiB");
		return -1;
	}
	if (a->body_len + len > a->body_cap)
	{
		size_t ncap = a->body_cap ? a->body_cap : 16384;
		char  *n;

		while (ncap < a->body_len + len)
			ncap *= 2;
		if (ncap > ARCHIPELAGO_BODY_MAX)
			ncap = ARCHIPELAGO_BODY_MAX;
		n = realloc(a->body, ncap);
		if (!n)
		{
			archipelago_fail(a, "out of memory for the body");
			return -1;
		}
		a->body = n;
		a->body_cap = ncap;
	}
	memcpy(a->body + a->body_len, data, len);
	a->body_len += len;
	return 0;
}

/* Response headers are in: the status, and a Content-Length that cannot fit fails early. */
static int
archipelago_headers(Archipelago *a, struct lws *wsi)
{
	char cl[32];
	char why[96];

	a->status = (int) lws_http_client_http_response(wsi);
	if (a->status != HTTP_STATUS_OK)
	{
		snprintf(why, sizeof(why), "HTTP status %d", a->status);
		archipelago_fail(a, why);
		return -1;
	}
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
		strtoull(cl, NULL, 10) > ARCHIPELAGO_BODY_MAX)
	{
		snprintf(why, sizeof(why), "the body of %s bytes is over 8 MiB", cl);
		archipelago_fail(a, why);
		return -1;
	}
	return 0;
}

/* The one protocol callback of our vhost. Loop thread. */
static int
archipelago_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
					 size_t len)
{
	Archipelago *a = archipelago_live;
	bool		 ours = a && wsi && a->wsi == wsi;

	switch (reason)
	{
		case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		{
			uint8_t **p = in;

			if (!ours)
				return 0;
			if (lws_add_http_header_by_name(
					wsi, (const uint8_t *) "accept:", (const uint8_t *) "application/json", 16, p,
					(*p) + len))
				return -1;
			return 0;
		}
		case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
			if (ours)
			{
				char why[160];

				snprintf(why, sizeof(why), "%s", in ? (const char *) in : "connection failed");
				a->wsi = NULL; /* lws frees it without a CLOSED callback */
				archipelago_fail(a, why);
			}
			return 0;
		case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
			if (!ours || a->state != ARCH_FETCH)
				return -1;
			return archipelago_headers(a, wsi);
		case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		{
			char  buf[LWS_PRE + 4096];
			char *px = buf + LWS_PRE;
			int	  lenx = (int) sizeof(buf) - LWS_PRE;

			if (!ours || a->state != ARCH_FETCH)
				return -1;
			/* lws calls RECEIVE_CLIENT_HTTP_READ from in here with the de-chunked data. */
			return lws_http_client_read(wsi, &px, &lenx) < 0 ? -1 : 0;
		}
		case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
			if (!ours || a->state != ARCH_FETCH)
				return -1;
			return archipelago_append(a, in, len);
		case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
			if (ours)
				archipelago_fetched(a);
			return -1; /* one request per connection: no idle keep-alive to track */
		case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
			if (ours)
			{
				a->wsi = NULL;
				archipelago_fail(a, "the connection closed before the body was complete");
			}
			return 0;
		case LWS_CALLBACK_PROTOCOL_DESTROY:
			/* The context is going (ws_destroy before archipelago_destroy): forget the vhost. */
			if (a && lws_get_vhost(wsi) == a->vhost)
			{
				a->vhost = NULL;
				a->wsi = NULL;
			}
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols archipelago_protocols[] = {
	{ARCHIPELAGO_PROTOCOL, archipelago_callback, 0, 0, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};

static void
archipelago_on_deadline(uv_timer_t *t)
{
	Archipelago *a = t->data;
	char		 why[64];

	snprintf(why, sizeof(why), "no answer within %d ms", a->timeout_ms);
	archipelago_fail(a, why);
	archipelago_kill(a);
}

static void
archipelago_connect(Archipelago *a)
{
	struct lws_client_connect_info i;

	memset(&i, 0, sizeof(i));
	i.context = a->lws;
	i.vhost = a->vhost;
	i.address = a->ip;
	i.port = a->url.port;
	i.path = a->url.path;
	i.host = a->url.host_header;
	i.origin = a->url.host_header;
	i.method = "GET";
	i.protocol = ARCHIPELAGO_PROTOCOL;
	i.local_protocol_name = ARCHIPELAGO_PROTOCOL;
	i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (a->url.tls ? LCCSCF_USE_SSL : 0);
	i.alpn = "http/1.1";
	i.pwsi = &a->wsi;

	a->status = 0;
	a->body_len = 0;
	archipelago_set_state(a, ARCH_FETCH);
	if (!lws_client_connect_via_info(&i))
	{
		/* Usually already reported through CLIENT_CONNECTION_ERROR; fail is idempotent. */
		a->wsi = NULL;
		archipelago_fail(a, "lws could not start the request");
	}
}

static void
archipelago_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	Archipelago *a = req->data;
	char		 why[300];

	a->resolving = false;
	if (a->closing)
	{
		uv_freeaddrinfo(res);
		archipelago_unref(a);
		return;
	}
	a->refs--; /* never the last: the handles hold theirs */
	if (status != 0 || !res)
	{
		snprintf(why, sizeof(why), "cannot resolve %s: %s", a->url.host, uv_strerror(status));
		uv_freeaddrinfo(res);
		archipelago_fail(a, why);
		return;
	}
	if (uv_ip_name(res->ai_addr, a->ip, sizeof(a->ip)) != 0)
	{
		uv_freeaddrinfo(res);
		archipelago_fail(a, "the resolver returned an unusable address");
		return;
	}
	uv_freeaddrinfo(res);
	archipelago_connect(a);
}

static void
archipelago_fetch(Archipelago *a)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	char			port[8];

	archipelago_set_state(a, ARCH_RESOLVE);
	uv_timer_start(&a->deadline, archipelago_on_deadline, (uint64_t) a->timeout_ms, 0);
	if (a->url.numeric)
	{
		snprintf(a->ip, sizeof(a->ip), "%s", a->url.host);
		archipelago_connect(a);
		return;
	}
	snprintf(port, sizeof(port), "%d", a->url.port);
	a->resolve.data = a;
	if (uv_getaddrinfo(a->loop, &a->resolve, archipelago_on_resolved, a->url.host, port, &hints) !=
		0)
	{
		archipelago_fail(a, "cannot start resolving the host name");
		return;
	}
	a->resolving = true;
	a->refs++;
}

/* A lease reply: ud is an ArchLeaseCall (owned here). Loop thread. */
static void
archipelago_on_lease(void *ud, const redisReply *reply, const char *error)
{
	ArchLeaseCall *call = ud;
	Archipelago	  *a = call->a;
	ArchLeaseOp	   op = call->op;
	bool		   got;

	free(call);
	if (a->closing || op == LEASE_RELEASE)
	{
		archipelago_unref(a);
		return;
	}
	a->refs--; /* never the last: the handles hold theirs */
	a->lease_busy = false;
	if (error)
	{
		archipelago_set_holder(a, false, "the lease cannot be renewed");
		/* Redis being down is redis' to report; an error reply from a live Redis is ours. */
		if (redis_client_is_up(a->redis))
			archipelago_failed(a, &a->lease_failures, "cannot take the poll lease", error);
		else
		{
			log_debug("archipelago: no poll lease while Redis is down: %s", error);
			if (a->interval_ms > ARCHIPELAGO_FIRST_POLL_MS)
				uv_timer_start(&a->tick, archipelago_on_tick, ARCHIPELAGO_FIRST_POLL_MS,
							   (uint64_t) a->interval_ms);
		}
		return;
	}
	if (archipelago_recovered(&a->lease_failures))
		log_info("archipelago: the poll lease works again");
	if (op == LEASE_RENEW)
	{
		got = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1;
		if (!got)
		{
			/* Expired or taken over: try for it like anyone else (logged by the outcome). */
			archipelago_lease_step(a, LEASE_ACQUIRE);
			return;
		}
	}
	else
		got = reply->type == REDIS_REPLY_STATUS && reply->str && strcmp(reply->str, "OK") == 0;
	archipelago_set_holder(a, got, "another instance holds the lease");
	if (!got)
		return;
	if (a->state == ARCH_IDLE && !a->wsi)
		archipelago_fetch(a);
	else
		log_debug("archipelago: the previous poll is still running, skipping this one");
}

static void
archipelago_lease_step(Archipelago *a, ArchLeaseOp op)
{
	ArchLeaseCall *call = malloc(sizeof(*call));
	int			   rc;

	if (!call)
	{
		archipelago_failed(a, &a->lease_failures, "cannot take the poll lease", "out of memory");
		return;
	}
	call->a = a;
	call->op = op;
	if (op == LEASE_ACQUIRE)
	{
		const char *argv[] = {"SET", ARCHIPELAGO_LEASE_KEY, a->lease_id, "NX", "PX", a->lease_ttl};

		rc = redis_client_command(a->redis, archipelago_on_lease, call, 6, argv, NULL);
	}
	else
	{
		const char *argv[] = {ARCHIPELAGO_LEASE_KEY, a->lease_id, a->lease_ttl};

		rc =
			redis_client_eval(a->redis, op == LEASE_RENEW ? a->renew : a->release,
							  archipelago_on_lease, call, 1, op == LEASE_RENEW ? 3 : 2, argv, NULL);
	}
	if (rc != 0)
	{
		free(call);
		archipelago_failed(a, &a->lease_failures,
						   op == LEASE_RELEASE ? "cannot release the poll lease"
											   : "cannot take the poll lease",
						   "Redis refused the command");
		return;
	}
	a->refs++;
	if (op != LEASE_RELEASE)
		a->lease_busy = true;
}

static void
archipelago_on_tick(uv_timer_t *t)
{
	Archipelago *a = t->data;

	if (!a->lease_busy)
		archipelago_lease_step(a, a->holder ? LEASE_RENEW : LEASE_ACQUIRE);
}

Archipelago *
archipelago_create(uv_loop_t *loop, struct lws_context *lws, RedisClient *redis,
				   const ArchipelagoOptions *opts)
{
	struct lws_context_creation_info info;
	Archipelago						*a;
	char							 err[160];

	if (archipelago_live)
	{
		log_error("archipelago: a poller already exists");
		return NULL;
	}
	if (!lws || !redis)
	{
		log_error("archipelago: needs the lws context and Redis");
		return NULL;
	}
	if (opts->poll_interval_ms <= 0)
	{
		log_error("archipelago: ARCHIPELAGO_POLL_INTERVAL_IN_MS must be positive");
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
	{
		log_error("archipelago: out of memory");
		return NULL;
	}
	if (archipelago_url_parse(opts->stats_url, &a->url, err, sizeof(err)) != 0)
	{
		log_error("archipelago: ARCHIPELAGO_STATS_URL: %s", err);
		free(a);
		return NULL;
	}
	snprintf(a->shown, sizeof(a->shown), "%s://%s%s", a->url.tls ? "https" : "http",
			 a->url.host_header, a->url.path);
	a->loop = loop;
	a->lws = lws;
	a->redis = redis;
	a->interval_ms = opts->poll_interval_ms;
	/* Three quarters of the interval: a request that times out leaves the next tick free. */
	a->timeout_ms = a->interval_ms / 4 * 3 > 0 ? a->interval_ms / 4 * 3 : 1;
	if (a->timeout_ms > ARCHIPELAGO_TIMEOUT_MS)
		a->timeout_ms = ARCHIPELAGO_TIMEOUT_MS;
	snprintf(a->lease_ttl, sizeof(a->lease_ttl), "%lld", 2LL * a->interval_ms);
	/* The process' one name (lib/instance_id.h), the one presence's socket field uses. */
	a->lease_id = instance_id();
	a->renew = redis_client_script(redis, archipelago_renew_lua);
	a->release = redis_client_script(redis, archipelago_release_lua);
	if (!a->renew || !a->release)
	{
		log_error("archipelago: cannot register the lease scripts");
		free(a);
		return NULL;
	}

	memset(&info, 0, sizeof(info));
	info.vhost_name = "sociald-archipelago";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = archipelago_protocols;
	/* Builds this vhost's client TLS context, for https. */
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (a->url.tls && access(ARCHIPELAGO_CA_BUNDLE, R_OK) == 0)
		info.client_ssl_ca_filepath = ARCHIPELAGO_CA_BUNDLE;
	archipelago_live = a; /* PROTOCOL_INIT may already call back */
	a->vhost = lws_create_vhost(lws, &info);
	if (!a->vhost)
	{
		archipelago_live = NULL;
		log_error("archipelago: cannot create the lws client vhost");
		free(a);
		return NULL;
	}

	uv_timer_init(loop, &a->tick);
	uv_timer_init(loop, &a->deadline);
	uv_timer_init(loop, &a->feed);
	a->tick.data = a->deadline.data = a->feed.data = a;
	a->refs = 3;
	metrics_gauge_set(G_ARCHIPELAGO_LEASE, 0);
	uv_timer_start(&a->tick, archipelago_on_tick,
				   a->interval_ms < ARCHIPELAGO_FIRST_POLL_MS ? (uint64_t) a->interval_ms
															  : ARCHIPELAGO_FIRST_POLL_MS,
				   (uint64_t) a->interval_ms);
	log_info("archipelago: polling %s every %d ms (lease %s, id %s)", a->shown, a->interval_ms,
			 ARCHIPELAGO_LEASE_KEY, a->lease_id);
	return a;
}

void
archipelago_destroy(Archipelago *a)
{
	if (!a || a->closing)
		return;
	if (a->holder)
		archipelago_lease_step(a, LEASE_RELEASE);
	a->closing = true;
	archipelago_live = NULL;
	/* Its callbacks find archipelago_live NULL from here on. */
	archipelago_kill(a);
	if (a->vhost)
		lws_vhost_destroy(a->vhost);
	a->vhost = NULL;
	if (a->resolving)
		uv_cancel((uv_req_t *) &a->resolve); /* its callback still comes back */
	archipelago_set_state(a, ARCH_IDLE);
	metrics_gauge_set(G_ARCHIPELAGO_LEASE, 0);
	uv_close((uv_handle_t *) &a->tick, archipelago_on_closed);
	uv_close((uv_handle_t *) &a->deadline, archipelago_on_closed);
	uv_close((uv_handle_t *) &a->feed, archipelago_on_closed);
	log_info("archipelago: source stopped");
}
