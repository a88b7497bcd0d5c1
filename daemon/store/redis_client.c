/*
 * redis_client.c — Redis on the loop: a command connection and a subscriber connection,
 * reconnected.
 *
 * Links. A RedisClient owns two links, each one hiredis async context at a time. A link is a small
 * state machine; the states mean what its single timer does:
 *
 *   IDLE --first subscription--+
 *                              v
 *   BACKOFF --timer--> RESOLVING --address--> CONNECTING --handshake done--> READY
 *      ^                  |                      |                             |
 *      +----- failure, connect deadline, loss ---+-----------------------------+
 *
 * BACKOFF waits the reconnect delay (redis_client_backoff_ms, equal jitter, per link; back to the
 * first step once READY). RESOLVING (host names only) and CONNECTING share one connect deadline for
 * the whole attempt. CONNECTING covers the TCP connect and the handshake, which is pipelined
 * right after redisAsyncConnect: AUTH (when the URL has a password), SELECT (command link, db
 * != 0) and PING; a PING answer proves the server is serving, not -LOADING. The subscriber
 * link then sends one SUBSCRIBE per channel and is READY when every one is confirmed. In READY
 * the command link's timer is the deadline of the oldest command, or the next idle PING.
 * redis_client_link_set_state() is the only writer of a link's state, and a link entering or
 * leaving READY re-derives up/down for the whole RedisClient there (redis_client_update_state,
 * the only place up is derived; adding a subscription is the other thing that can change it).
 *
 * hiredis rules this file lives by (0.14.1):
 *  - Every reply callback registered with a command is called exactly once: with the reply, or
 *    with NULL when the context is freed. So a RedisClientCall is freed in
 *    redis_client_on_reply, always.
 *  - redisAsyncFree inside a reply callback is deferred until the callback returns; anywhere
 *    else it is immediate and runs the pending callbacks (with NULL) and the disconnect
 *    callback before returning. It must not be called from the connect or disconnect callback
 *    (hiredis still uses the context afterwards); those only forget the context, which hiredis
 *    frees itself.
 *  - Before freeing a context we clear ac->data and link->ac, so every late callback of that
 *    context recognizes itself as stale (link->ac != ac) and does nothing.
 *  - A subscribed context can run nothing but (P)SUBSCRIBE/UNSUBSCRIBE: the subscriber link
 *    sends its AUTH and PING before the first SUBSCRIBE and nothing after. Commands that would
 *    put the command link into such a mode are refused by redis_client_command.
 *  - hiredis has no timeouts: connects, handshakes and commands are bounded by our timers.
 *
 * Failures are never delivered from inside redis_client_command or from inside hiredis: a failed
 * call goes to the done list, which an idle handle drains on the next loop turn
 * (redis_client_on_deliver), and the up/down hooks run from there too, with nothing of ours or
 * hiredis's on the stack. Replies and pub/sub messages are delivered from the read callback, where
 * hiredis owns the reply; redis_client_destroy from there is safe because hiredis defers the free.
 *
 * Up/down. up = command link READY and (no subscriptions or subscriber link READY). Every
 * transition to up bumps a generation; the deliver step compares what the hooks last reported
 * with the current state and generation, so a loss and recovery between two loop turns still
 * yields down then up, and a user rebuilding its view in the up hook never misses a gap.
 * A command timeout resets both links: a server that does not answer one connection is not
 * trusted to deliver on the other.
 *
 * Memory. A call is one allocation (redis_client_eval keeps a copy of its EVALSHA for the NOSCRIPT
 * retry). In flight are at most max_pending calls and max_pending_bytes of arguments, plus a few
 * internal PING/SCRIPT LOAD calls; rejected calls live until the next loop turn. Subscriptions and
 * scripts are capped. Handles are freed in their close callbacks, the RedisClient when the last one
 * (and any host lookup still running on the thread pool) has finished after redis_client_destroy.
 *
 * Thread: the loop thread only; the host lookup runs on libuv's thread pool and reports back on
 * the loop.
 */
#include "store/redis_client.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Defines a static on_close(): no function of that name in this file. */
#include <hiredis/adapters/libuv.h>
#include <libwebsockets.h> /* lws_SHA1 */

#include "lib/backoff.h"
#include "lib/hex.h"
#include "lib/url.h"
#include "main/log.h"
#include "main/metrics.h"

#define REDIS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define REDIS_CLIENT_DEFAULT_COMMAND_TIMEOUT_MS 2000
#define REDIS_CLIENT_DEFAULT_PING_INTERVAL_MS 5000
#define REDIS_CLIENT_DEFAULT_MAX_PENDING 10000
#define REDIS_CLIENT_DEFAULT_MAX_PENDING_BYTES ((size_t) 64 << 20)
#define REDIS_CLIENT_MAX_TIMEOUT_MS 600000
#define REDIS_CLIENT_MAX_PENDING 10000000
#define REDIS_CLIENT_MAX_ARGS 1048576
#define REDIS_CLIENT_MAX_COMMAND_BYTES ((size_t) 16 << 20)
#define REDIS_CLIENT_MAX_SCRIPT_BYTES ((size_t) 256 << 10)
#define REDIS_CLIENT_MAX_SCRIPTS 64
#define REDIS_CLIENT_MAX_SUBSCRIPTIONS 64
#define REDIS_CLIENT_MAX_CHANNEL 256
#define REDIS_CLIENT_MAX_DB 999999999
#define REDIS_CLIENT_RESOLVE_WAIT_MS 100

/* What a failed call's callback is told; static, so a queued failure never dangles. */
static const char redis_client_err_down[] = "redis is not connected";
static const char redis_client_err_lost[] = "connection to redis lost";
static const char redis_client_err_timeout[] = "redis command timed out";
static const char redis_client_err_busy[] = "too many redis commands in flight";
static const char redis_client_err_too_large[] = "redis command too large";
static const char redis_client_err_shutdown[] = "redis client is shutting down";

/* Reconnect delays per link, ms; the last one repeats. */
static const uint32_t	  redis_client_backoff_ms[] = {100, 200, 500, 1000, 2000, 5000};
static const BackoffTable redis_client_backoff =
	BACKOFF_TABLE(redis_client_backoff_ms, BACKOFF_JITTER_EQUAL);

/* Commands that would take the shared command connection out of request/reply mode or change
 * state that a reconnect silently loses. */
static const char *const redis_client_forbidden[] = {
	"subscribe",	"psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
	"sunsubscribe", "monitor",	  "select",		"auth",		   "hello",
	"quit",			"reset",	  "sync",		"psync",	   "replconf",
};

typedef enum RedisClientLinkState
{
	REDIS_LINK_IDLE = 0,   /* not started: the subscriber link before the first subscription */
	REDIS_LINK_BACKOFF,	   /* no connection; the timer starts the next attempt */
	REDIS_LINK_RESOLVING,  /* host lookup on the thread pool; timer: connect deadline */
	REDIS_LINK_CONNECTING, /* TCP connect and handshake; timer: connect deadline */
	REDIS_LINK_READY, /* command link: timer is the oldest command's deadline or the next PING */
	REDIS_LINK_CLOSED /* redis_client_destroy ran */
} RedisClientLinkState;

typedef struct RedisClientCall RedisClientCall;

struct RedisClientCall
{
	RedisClientCall			*prev;
	RedisClientCall			*next;
	RedisClient				*redis;
	RedisClientReplyFn		 cb;
	void					*ud;
	uint64_t				 deadline; /* uv_now() ms by which a reply is due */
	size_t					 bytes;	  /* argument bytes, counted in pending_bytes while in flight */
	bool					 orphan;  /* answered by redis_client_destroy; hiredis still holds it */
	const char				*error;	  /* failure text, one of redis_client_err_* */
	const RedisClientScript *script;  /* redis_client_eval: the script, for the NOSCRIPT retry */
	bool					 retried; /* redis_client_eval: the EVALSHA was repeated once already */
	int						 argc; /* redis_client_eval: the EVALSHA command, in this allocation */
	const char			   **argv;
	size_t					*argvlen;
};

typedef struct RedisClientCallList
{
	RedisClientCall *head;
	RedisClientCall *tail;
	size_t			 count;
} RedisClientCallList;

typedef struct RedisClientLink
{
	RedisClient			*redis;
	const char			*name; /* "command" or "subscriber", for log lines */
	bool				 subscriber;
	RedisClientLinkState state;
	redisAsyncContext	*ac;		/* owned; NULL when not connected */
	uv_timer_t			 timer;		/* see RedisClientLinkState */
	uv_getaddrinfo_t	*resolving; /* owned; the lookup running, freed in its callback */
	size_t				 attempt;	/* index into redis_client_backoff_ms for the next failure */
	unsigned			 failures;	/* failed attempts since the last READY, for log volume */
	bool				 ever_ready;
	bool				 subscribing;	 /* subscriber: SUBSCRIBEs sent on this connection */
	int					 handshake_left; /* replies still due before READY */
	const char			*drop_reason; /* redis_client_err_* for calls failed by the current drop */
	char				 ip[INET6_ADDRSTRLEN];
} RedisClientLink;

typedef struct RedisClientSub
{
	RedisClient			*redis;
	RedisClientMessageFn fn;
	void				*ud;
	bool				 confirmed; /* SUBSCRIBE confirmed on the current subscriber connection */
	char				 channel[];
} RedisClientSub;

struct RedisClientScript
{
	char   sha[41];
	size_t len;
	char   source[];
};

struct RedisClient
{
	uv_loop_t		   *loop;
	RedisClientAddress	addr;
	char				endpoint[300];
	char				port_str[8];
	bool				numeric; /* addr.host is an IP literal: no lookup */
	int					connect_timeout_ms;
	int					command_timeout_ms;
	int					ping_interval_ms; /* <= 0: never */
	size_t				max_pending;
	size_t				max_pending_bytes;
	RedisClientLink		cmd;
	RedisClientLink		sub;
	RedisClientCallList pending; /* sent on cmd.ac, in send order (= deadline order) */
	size_t				pending_bytes;
	RedisClientCallList done;	 /* failed, callbacks not yet called */
	uv_idle_t			deliver; /* runs while there are failures or hook changes to deliver */
	RedisClientHooks	hooks;
	void			   *hooks_ud;
	bool				up;
	uint64_t			generation; /* transitions to up so far */
	bool				reported_up;
	uint64_t			reported_generation;
	RedisClientSub	   *subs[REDIS_CLIENT_MAX_SUBSCRIPTIONS];
	int					nsubs;
	RedisClientScript  *scripts[REDIS_CLIENT_MAX_SCRIPTS];
	int					nscripts;
	uint64_t			rng;
	bool				destroying;
	int open_handles; /* handles and lookups; the RedisClient is freed at 0 after destroy */
};

static void redis_client_link_start(RedisClientLink *link);
static void redis_client_link_fail(RedisClientLink *link, const char *call_error, const char *fmt,
								   ...) __attribute__((format(printf, 3, 4)));
static void redis_client_on_reply(redisAsyncContext *ac, void *r, void *privdata);
static void redis_client_on_link_timer(uv_timer_t *timer);

/* ------------------------------------------------------------------------------------------ */
/* URL */

static int __attribute__((format(printf, 3, 4)))
redis_client_url_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0)
	{
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Percent-decodes n bytes of src into dst (cap bytes with the NUL); -1 on a bad escape, an
 * encoded NUL or overflow. */
static int
redis_client_url_decode(const char *src, size_t n, char *dst, size_t cap)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++)
	{
		int c = (unsigned char) src[i];

		if (c == '%')
		{
			int hi, lo;

			if (i + 2 >= n)
				return -1;
			hi = hex_value((unsigned char) src[i + 1]);
			lo = hex_value((unsigned char) src[i + 2]);
			if (hi < 0 || lo < 0)
				return -1;
			c = hi * 16 + lo;
			if (c == 0)
				return -1;
			i += 2;
		}
		if (out + 1 >= cap)
			return -1;
		dst[out++] = (char) c;
	}
	dst[out] = '\0';
	return 0;
}

/* A host name (letters, digits, '-', '.', '_') or an IPv4 literal. */
static bool
redis_client_host_name_ok(const char *s, size_t n)
{
	return n > 0 && n <= 253 && url_host_span(s, s + n) == n;
}

/* Digits only, value in [min, max]; -1 otherwise. */
static long
redis_client_parse_number(const char *s, size_t n, long min, long max)
{
	long v = 0;

	if (n == 0 || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= min && v <= max ? v : -1;
}

int
redis_client_url_parse(const char *url, RedisClientAddress *out, char *err, size_t errlen)
{
	static const char *const schemes[] = {"rediss", "redis"};
	const char				*p, *auth_end, *at, *rest, *colon;
	UrlAuthority			 a;
	long					 v;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL)
		return redis_client_url_error(err, errlen, "no output");
	memset(out, 0, sizeof(*out));
	out->port = REDIS_CLIENT_DEFAULT_PORT;
	if (url == NULL || url[0] == '\0')
		return redis_client_url_error(err, errlen, "empty URL");
	switch (url_scheme(url, schemes, 2, &p))
	{
		case 0:
			return redis_client_url_error(err, errlen,
										  "rediss:// (TLS) is not supported; use redis://");
		case 1:
			break;
		default:
			return redis_client_url_error(err, errlen, "the URL must start with redis://");
	}
	for (const char *q = p; *q != '\0'; q++)
	{
		if (*q == '?' || *q == '#')
			return redis_client_url_error(err, errlen,
										  "query strings and fragments are not supported");
		if ((unsigned char) *q <= ' ' || *q == 0x7f)
			return redis_client_url_error(err, errlen,
										  "the URL contains a space or control character");
	}

	/* [[user]:password@]host[:port] up to the first '/'; the password may contain '@'. */
	auth_end = p + strcspn(p, "/");
	at = NULL;
	for (const char *q = p; q < auth_end; q++)
		if (*q == '@')
			at = q;
	if (at != NULL)
	{
		colon = memchr(p, ':', (size_t) (at - p));
		if (colon == NULL)
			return redis_client_url_error(
				err, errlen, "a user name needs a password (redis://user:password@host)");
		if (redis_client_url_decode(p, (size_t) (colon - p), out->user, sizeof(out->user)) != 0)
			return redis_client_url_error(err, errlen, "bad or overlong user name");
		if (redis_client_url_decode(colon + 1, (size_t) (at - colon - 1), out->password,
									sizeof(out->password)) != 0)
			return redis_client_url_error(err, errlen, "bad or overlong password");
		if (out->password[0] == '\0')
			return redis_client_url_error(err, errlen, "empty password");
		p = at + 1;
	}

	if (url_authority(p, auth_end, &a) != 0)
		return redis_client_url_error(err, errlen, "unclosed '[' in the host");
	if (a.bracketed)
	{
		if (a.host_len == 0 || a.host_len >= sizeof(out->host))
			return redis_client_url_error(err, errlen, "bad IPv6 address");
		memcpy(out->host, a.host, a.host_len);
		out->host[a.host_len] = '\0';
		if (!url_ipv6(out->host))
			return redis_client_url_error(err, errlen, "bad IPv6 address '%s'", out->host);
		if (a.after_host < auth_end && *a.after_host != ':')
			return redis_client_url_error(err, errlen, "unexpected text after the IPv6 address");
	}
	else
	{
		/* The host is what comes before the port's ':', whatever it holds, for the message. */
		colon = memchr(p, ':', (size_t) (auth_end - p));
		rest = colon != NULL ? colon : auth_end;
		if (rest == p)
			return redis_client_url_error(err, errlen, "no host");
		if (a.after_host != rest || !redis_client_host_name_ok(a.host, a.host_len))
			return redis_client_url_error(err, errlen, "bad host '%.*s'",
										  (int) (rest - p > 64 ? 64 : rest - p), p);
		memcpy(out->host, a.host, a.host_len);
		out->host[a.host_len] = '\0';
	}
	if (a.has_port)
	{
		/* Digits only, up to the '/' (or the end), at most 10 of them. */
		if (a.port < 0 || a.end != auth_end || a.port_digits > 10)
			return redis_client_url_error(err, errlen, "bad port (1..65535)");
		out->port = (int) a.port;
	}

	if (*auth_end == '/' && auth_end[1] != '\0')
	{
		v = redis_client_parse_number(auth_end + 1, strlen(auth_end + 1), 0, REDIS_CLIENT_MAX_DB);
		if (v < 0)
			return redis_client_url_error(
				err, errlen, "bad database number '%s' (a number after /)", auth_end + 1);
		out->db = (int) v;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers */

/* Equal jitter: instances that lost Redis together do not come back together. */
static uint64_t
redis_client_backoff_delay(RedisClient *redis, size_t attempt)
{
	return backoff_delay_ms(&redis_client_backoff, attempt, backoff_random(&redis->rng));
}

static void
redis_client_list_push(RedisClientCallList *list, RedisClientCall *call)
{
	call->next = NULL;
	call->prev = list->tail;
	if (list->tail != NULL)
		list->tail->next = call;
	else
		list->head = call;
	list->tail = call;
	list->count++;
}

static void
redis_client_list_remove(RedisClientCallList *list, RedisClientCall *call)
{
	if (call->prev != NULL)
		call->prev->next = call->next;
	else
		list->head = call->next;
	if (call->next != NULL)
		call->next->prev = call->prev;
	else
		list->tail = call->prev;
	call->prev = call->next = NULL;
	list->count--;
}

static void
redis_client_handle_closed(RedisClient *redis)
{
	redis->open_handles--;
	if (!redis->destroying || redis->open_handles > 0)
		return;
	for (int i = 0; i < redis->nsubs; i++)
		free(redis->subs[i]);
	for (int i = 0; i < redis->nscripts; i++)
		free(redis->scripts[i]);
	free(redis);
}

static void
redis_client_on_handle_closed(uv_handle_t *handle)
{
	redis_client_handle_closed(handle->data);
}

/* ------------------------------------------------------------------------------------------ */
/* Delivery: failures and hooks, from their own loop turn */

static bool
redis_client_hooks_due(const RedisClient *redis)
{
	return redis->reported_up != redis->up ||
		   (redis->up && redis->reported_generation != redis->generation);
}

/* The one place failure callbacks and hooks run (besides redis_client_destroy). Thread: loop. */
static void
redis_client_on_deliver(uv_idle_t *handle)
{
	RedisClient *redis = handle->data;
	/* Only what is there now: failures a callback causes wait one turn, so a callback that
	 * retries at once cannot keep the loop here. */
	size_t n = redis->done.count;

	while (n-- > 0 && redis->done.head != NULL)
	{
		RedisClientCall *call = redis->done.head;

		redis_client_list_remove(&redis->done, call);
		call->cb(call->ud, NULL, call->error);
		free(call);
		if (redis->destroying)
			return; /* redis_client_destroy delivered the rest and closed this handle */
	}
	if (redis->reported_up && (!redis->up || redis->reported_generation != redis->generation))
	{
		redis->reported_up = false;
		if (redis->hooks.down != NULL)
			redis->hooks.down(redis->hooks_ud);
		if (redis->destroying)
			return;
	}
	if (!redis->reported_up && redis->up)
	{
		redis->reported_up = true;
		redis->reported_generation = redis->generation;
		if (redis->hooks.up != NULL)
			redis->hooks.up(redis->hooks_ud);
		if (redis->destroying)
			return;
	}
	if (redis->done.head == NULL && !redis_client_hooks_due(redis))
		uv_idle_stop(&redis->deliver);
}

static void
redis_client_wake(RedisClient *redis)
{
	if (!redis->destroying)
		uv_idle_start(&redis->deliver, redis_client_on_deliver);
}

/* Queues a failure for the next loop turn. */
static void
redis_client_fail(RedisClient *redis, RedisClientCall *call, const char *error)
{
	call->error = error;
	metrics_count(M_REDIS_COMMAND_ERRORS, 1);
	redis_client_list_push(&redis->done, call);
	redis_client_wake(redis);
}

/* The only place up is derived. */
static void
redis_client_update_state(RedisClient *redis)
{
	bool up = redis->cmd.state == REDIS_LINK_READY &&
			  (redis->nsubs == 0 || redis->sub.state == REDIS_LINK_READY);

	if (up == redis->up || redis->destroying)
		return;
	redis->up = up;
	if (up)
		redis->generation++;
	metrics_gauge_set(G_REDIS_UP, up ? 1 : 0);
	if (up)
		log_info("redis: redis at %s is up", redis->endpoint);
	else
		log_warn("redis: redis at %s is down", redis->endpoint);
	redis_client_wake(redis);
}

/* The only writer of a link's state. Entering or leaving READY may change up/down, which is
 * derived at once. */
static void
redis_client_link_set_state(RedisClientLink *link, RedisClientLinkState next)
{
	bool ready_changed = (link->state == REDIS_LINK_READY) != (next == REDIS_LINK_READY);

	link->state = next;
	if (ready_changed)
		redis_client_update_state(link->redis);
}

/* ------------------------------------------------------------------------------------------ */
/* Commands on the command link */

/* The command link's timer in READY: the oldest command's deadline, else the next PING. */
static void
redis_client_cmd_arm(RedisClient *redis)
{
	uint64_t now = uv_now(redis->loop);
	uint64_t delay;

	if (redis->pending.head != NULL)
		delay = redis->pending.head->deadline > now ? redis->pending.head->deadline - now : 0;
	else if (redis->ping_interval_ms > 0)
		delay = (uint64_t) redis->ping_interval_ms;
	else
	{
		uv_timer_stop(&redis->cmd.timer);
		return;
	}
	uv_timer_start(&redis->cmd.timer, redis_client_on_link_timer, delay, 0);
}

/* Hands a call to hiredis on the ready command link. -1 if hiredis refused it (the call is
 * untouched and still the caller's). */
static int
redis_client_submit(RedisClient *redis, RedisClientCall *call, int argc, const char **argv,
					const size_t *argvlen)
{
	bool was_empty = redis->pending.head == NULL;

	if (redis->cmd.state != REDIS_LINK_READY || redis->cmd.ac == NULL)
		return -1;
	if (redisAsyncCommandArgv(redis->cmd.ac, redis_client_on_reply, call, argc, argv, argvlen) !=
		REDIS_OK)
		return -1;
	call->deadline = uv_now(redis->loop) + (uint64_t) redis->command_timeout_ms;
	redis_client_list_push(&redis->pending, call);
	redis->pending_bytes += call->bytes;
	if (was_empty)
		redis_client_cmd_arm(redis);
	return 0;
}

static RedisClientCall *
redis_client_call_new(RedisClient *redis, RedisClientReplyFn cb, void *ud, size_t extra)
{
	RedisClientCall *call = calloc(1, sizeof(RedisClientCall) + extra);

	if (call == NULL)
		return NULL;
	call->redis = redis;
	call->cb = cb;
	call->ud = ud;
	return call;
}

/* Internal PING: its reply proves the server alive; a missing one trips the deadline. */
static void
redis_client_on_ping_reply(void *ud, const redisReply *reply, const char *error)
{
	RedisClient *redis = ud;

	if (error != NULL && reply != NULL)
		log_warn("redis: PING to %s answered %s", redis->endpoint, error);
}

static void
redis_client_on_load_reply(void *ud, const redisReply *reply, const char *error)
{
	RedisClient *redis = ud;

	if (error != NULL && reply != NULL)
		log_error("redis: SCRIPT LOAD on %s refused: %s", redis->endpoint, error);
}

static void
redis_client_ping(RedisClient *redis)
{
	static const char *const argv[] = {"PING"};
	RedisClientCall *call = redis_client_call_new(redis, redis_client_on_ping_reply, redis, 0);

	if (call == NULL)
		return;
	call->bytes = 4;
	if (redis_client_submit(redis, call, 1, (const char **) argv, NULL) != 0)
		free(call);
}

/* NOSCRIPT: SCRIPT LOAD, then the same EVALSHA again, back to back on the same connection, so
 * the retry runs after the load whatever else is in flight. */
static int
redis_client_eval_retry(RedisClient *redis, RedisClientCall *call)
{
	const RedisClientScript *script = call->script;
	const char				*argv[3] = {"SCRIPT", "LOAD", script->source};
	size_t					 argvlen[3] = {6, 4, script->len};
	RedisClientCall *load = redis_client_call_new(redis, redis_client_on_load_reply, redis, 0);

	if (load == NULL)
		return -1;
	load->bytes = script->len;
	if (redis_client_submit(redis, load, 3, argv, argvlen) != 0)
	{
		free(load);
		return -1;
	}
	call->retried = true;
	log_info("redis: script %.12s... was not loaded on %s; loaded it", script->sha,
			 redis->endpoint);
	return redis_client_submit(redis, call, call->argc, call->argv, call->argvlen);
}

/* hiredis' reply callback for every call on the command link. Thread: loop, from hiredis'
 * read processing or from redisAsyncFree (reply NULL). */
static void
redis_client_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	RedisClientCall *call = privdata;
	RedisClient		*redis = call->redis;
	redisReply		*reply = r;
	const char		*error;

	if (call->orphan)
	{
		free(call);
		return;
	}
	redis_client_list_remove(&redis->pending, call);
	redis->pending_bytes -= call->bytes;
	if (reply == NULL)
	{
		redis_client_fail(redis, call,
						  redis->cmd.drop_reason != NULL ? redis->cmd.drop_reason
														 : redis_client_err_lost);
		return;
	}
	if (redis->cmd.state == REDIS_LINK_READY && redis->cmd.ac == ac)
		redis_client_cmd_arm(redis);
	if (call->script != NULL && !call->retried && reply->type == REDIS_REPLY_ERROR &&
		reply->str != NULL && strncmp(reply->str, "NOSCRIPT", 8) == 0)
	{
		if (redis_client_eval_retry(redis, call) == 0)
			return;
		/* Not resent (cannot happen on a ready link): the caller gets the NOSCRIPT. */
	}
	error = NULL;
	if (reply->type == REDIS_REPLY_ERROR)
		error = reply->str != NULL && reply->str[0] != '\0' ? reply->str : "redis error";
	call->cb(call->ud, reply, error);
	free(call);
}

/* ------------------------------------------------------------------------------------------ */
/* Links */

static void
redis_client_link_ready(RedisClientLink *link)
{
	RedisClient *redis = link->redis;

	redis_client_link_set_state(link, REDIS_LINK_READY);
	link->attempt = 0;
	if (link->ever_ready)
		metrics_count(M_REDIS_RECONNECTS, 1);
	if (link->failures > 0)
		log_info("redis: %s connection to %s ready after %u failed attempt%s", link->name,
				 redis->endpoint, link->failures, link->failures == 1 ? "" : "s");
	else
		log_info("redis: %s connection to %s ready", link->name, redis->endpoint);
	link->ever_ready = true;
	link->failures = 0;
	if (link->subscriber)
		uv_timer_stop(&link->timer);
	else
		redis_client_cmd_arm(redis);
}

/* Forgets the link's context and frees it (see the hiredis rules at the top); stops a lookup. */
static void
redis_client_link_release(RedisClientLink *link)
{
	redisAsyncContext *ac = link->ac;

	if (ac != NULL)
	{
		link->ac = NULL;
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	if (link->resolving != NULL)
		uv_cancel((uv_req_t *) link->resolving); /* its callback still runs and frees it */
	link->subscribing = false;
	if (link->subscriber)
		for (int i = 0; i < link->redis->nsubs; i++)
			link->redis->subs[i]->confirmed = false;
}

/*
 * The one way into BACKOFF: drops the connection (calls in flight fail with call_error), logs
 * why, and schedules the next attempt. The first failure after a success is a warning; repeats
 * of an outage are debug lines, and redis_client_link_ready says how many there were.
 */
static void
redis_client_link_fail(RedisClientLink *link, const char *call_error, const char *fmt, ...)
{
	RedisClient *redis = link->redis;
	bool		 was_ready = link->state == REDIS_LINK_READY;
	char		 why[256];
	uint64_t	 delay;
	va_list		 ap;

	if (link->state == REDIS_LINK_CLOSED || link->state == REDIS_LINK_IDLE)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);

	link->drop_reason = call_error;
	redis_client_link_release(link);
	redis_client_link_set_state(link, REDIS_LINK_BACKOFF);
	delay = redis_client_backoff_delay(redis, link->attempt);
	link->attempt = backoff_next_attempt(&redis_client_backoff, link->attempt);
	link->failures++;
	if (was_ready || link->failures == 1)
		log_warn("redis: %s connection to %s %s: %s; retrying in %llu ms", link->name,
				 redis->endpoint, was_ready ? "lost" : "failed", why, (unsigned long long) delay);
	else
		log_debug("redis: %s connection to %s failed again (%u): %s; retrying in %llu ms",
				  link->name, redis->endpoint, link->failures, why, (unsigned long long) delay);
	uv_timer_start(&link->timer, redis_client_on_link_timer, delay, 0);
}

/* Connect callback. Thread: loop, from hiredis; must not free ac (see the top). */
static void
redis_client_on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *) cac;
	RedisClientLink	  *link = ac->data;

	if (link == NULL || link->ac != ac)
		return;
	if (status != REDIS_OK)
	{
		/* hiredis frees the context when this returns. */
		link->ac = NULL;
		ac->data = NULL;
		redis_client_link_fail(link, redis_client_err_down, "cannot connect: %s",
							   ac->errstr != NULL ? ac->errstr : "unknown error");
		return;
	}
	/* An idle connection to a vanished host is noticed within about 30 s. */
	if (redisEnableKeepAlive(&ac->c) != REDIS_OK)
		log_debug("redis: %s connection: cannot enable TCP keepalive", link->name);
}

/* Disconnect callback: hiredis already failed the pending replies and frees ac after this.
 * Thread: loop, from hiredis. */
static void
redis_client_on_disconnect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *) cac;
	RedisClientLink	  *link = ac->data;

	if (link == NULL || link->ac != ac)
		return;
	link->ac = NULL;
	ac->data = NULL;
	redis_client_link_fail(
		link, redis_client_err_lost, "%s",
		status == REDIS_OK || ac->errstr == NULL || ac->errstr[0] == '\0' ? "closed" : ac->errstr);
}

static void redis_client_on_sub_reply(redisAsyncContext *ac, void *r, void *privdata);

static int
redis_client_send_subscribe(RedisClientLink *link, RedisClientSub *sub)
{
	const char *argv[2] = {"SUBSCRIBE", sub->channel};

	return redisAsyncCommandArgv(link->ac, redis_client_on_sub_reply, sub, 2, argv, NULL) ==
				   REDIS_OK
			   ? 0
			   : -1;
}

/* Subscriber link, handshake done: one SUBSCRIBE per channel; READY when all are confirmed. */
static void
redis_client_link_subscribe_all(RedisClientLink *link)
{
	RedisClient *redis = link->redis;

	link->subscribing = true;
	link->handshake_left = 0;
	for (int i = 0; i < redis->nsubs; i++)
	{
		redis->subs[i]->confirmed = false;
		if (redis_client_send_subscribe(link, redis->subs[i]) != 0)
		{
			redis_client_link_fail(link, redis_client_err_down, "cannot send SUBSCRIBE");
			return;
		}
		link->handshake_left++;
	}
	if (link->handshake_left == 0)
		redis_client_link_ready(link);
}

/* Replies to AUTH / SELECT / PING. Thread: loop, from hiredis. */
static void
redis_client_on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
	RedisClientLink *link = privdata;
	redisReply		*reply = r;

	if (reply == NULL || link->ac != ac || link->state != REDIS_LINK_CONNECTING)
		return; /* a dropped context being freed */
	if (reply->type == REDIS_REPLY_ERROR)
	{
		const char *msg = reply->str != NULL ? reply->str : "error";
		const char *hint = "";

		if (strncmp(msg, "NOAUTH", 6) == 0)
			hint = " (give the password in REDIS_URL: redis://:password@host:port)";
		else if (strncmp(msg, "WRONGPASS", 9) == 0 || strstr(msg, "invalid password") != NULL)
			hint = " (check the user and password in REDIS_URL)";
		/* Inside a reply callback: hiredis frees the context once this returns. */
		redis_client_link_fail(link, redis_client_err_down, "refused: %s%s", msg, hint);
		return;
	}
	if (--link->handshake_left > 0)
		return;
	if (link->subscriber)
		redis_client_link_subscribe_all(link);
	else
		redis_client_link_ready(link);
}

/* Subscription confirmations and messages. Thread: loop, from hiredis. */
static void
redis_client_on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	RedisClientSub	 *sub = privdata;
	RedisClient		 *redis = sub->redis;
	RedisClientLink	 *link = &redis->sub;
	redisReply		 *reply = r;
	const redisReply *kind;

	if (reply == NULL || link->ac != ac)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
		reply->element[0]->type != REDIS_REPLY_STRING)
	{
		log_debug("redis: unexpected reply of type %d on the subscriber connection", reply->type);
		return;
	}
	kind = reply->element[0];
	if (strcasecmp(kind->str, "message") == 0)
	{
		const redisReply *payload = reply->element[2];

		if (payload->type != REDIS_REPLY_STRING)
			return;
		metrics_count(M_REDIS_MESSAGES, 1);
		sub->fn(sub->ud, sub->channel, payload->str, payload->len);
		return;
	}
	if (strcasecmp(kind->str, "subscribe") == 0 && !sub->confirmed)
	{
		sub->confirmed = true;
		if (link->state == REDIS_LINK_CONNECTING && --link->handshake_left == 0)
			redis_client_link_ready(link);
	}
}

/* Opens the connection to ip (a literal) and pipelines the handshake. */
static void
redis_client_link_connect(RedisClientLink *link, const char *ip)
{
	RedisClient		  *redis = link->redis;
	redisAsyncContext *ac;
	char			   db[16];
	const char		  *argv[3];
	int				   argc = 0;

	ac = redisAsyncConnect(ip, redis->addr.port);
	if (ac == NULL)
	{
		redis_client_link_fail(link, redis_client_err_down, "out of memory");
		return;
	}
	if (ac->err)
	{
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr != NULL ? ac->errstr : "unknown error");
		redisAsyncFree(ac);
		redis_client_link_fail(link, redis_client_err_down, "cannot connect: %s", why);
		return;
	}
	if (redisLibuvAttach(ac, redis->loop) != REDIS_OK)
	{
		/* The 0.14 adapter sets its hooks before it can fail; without its data they crash. */
		memset(&ac->ev, 0, sizeof(ac->ev));
		redisAsyncFree(ac);
		redis_client_link_fail(link, redis_client_err_down,
							   "cannot attach the connection to the loop");
		return;
	}
	ac->data = link;
	link->ac = ac;
	redis_client_link_set_state(link, REDIS_LINK_CONNECTING);
	link->handshake_left = 0;
	if (redisAsyncSetConnectCallback(ac, redis_client_on_connect) != REDIS_OK ||
		redisAsyncSetDisconnectCallback(ac, redis_client_on_disconnect) != REDIS_OK)
		goto fail;

	if (redis->addr.password[0] != '\0')
	{
		argv[argc++] = "AUTH";
		if (redis->addr.user[0] != '\0')
			argv[argc++] = redis->addr.user;
		argv[argc++] = redis->addr.password;
		if (redisAsyncCommandArgv(ac, redis_client_on_handshake, link, argc, argv, NULL) !=
			REDIS_OK)
			goto fail;
		link->handshake_left++;
	}
	if (!link->subscriber && redis->addr.db != 0)
	{
		snprintf(db, sizeof(db), "%d", redis->addr.db);
		argv[0] = "SELECT";
		argv[1] = db;
		if (redisAsyncCommandArgv(ac, redis_client_on_handshake, link, 2, argv, NULL) != REDIS_OK)
			goto fail;
		link->handshake_left++;
	}
	argv[0] = "PING";
	if (redisAsyncCommandArgv(ac, redis_client_on_handshake, link, 1, argv, NULL) != REDIS_OK)
		goto fail;
	link->handshake_left++;
	return;

fail:
	redis_client_link_fail(link, redis_client_err_down, "cannot queue the handshake");
}

/* Thread: loop (the lookup itself ran on the thread pool). */
static void
redis_client_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	RedisClientLink		  *link = req->data;
	RedisClient			  *redis = link->redis;
	const struct addrinfo *pick = NULL;

	if (link->resolving == req)
		link->resolving = NULL;
	free(req);
	if (redis->destroying || link->state != REDIS_LINK_RESOLVING)
	{
		uv_freeaddrinfo(res);
		redis_client_handle_closed(redis); /* may free redis */
		return;
	}
	redis->open_handles--;
	if (status != 0)
	{
		redis_client_link_fail(link, redis_client_err_down, "cannot resolve %s: %s",
							   redis->addr.host, uv_strerror(status));
		return;
	}
	/* IPv4 first, like hiredis itself. */
	for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET)
			pick = ai;
	for (const struct addrinfo *ai = res; ai != NULL && pick == NULL; ai = ai->ai_next)
		if (ai->ai_family == AF_INET6)
			pick = ai;
	if (pick == NULL ||
		(pick->ai_family == AF_INET
			 ? uv_ip4_name((const struct sockaddr_in *) pick->ai_addr, link->ip, sizeof(link->ip))
			 : uv_ip6_name((const struct sockaddr_in6 *) pick->ai_addr, link->ip,
						   sizeof(link->ip))) != 0)
	{
		uv_freeaddrinfo(res);
		redis_client_link_fail(link, redis_client_err_down, "%s has no usable address",
							   redis->addr.host);
		return;
	}
	uv_freeaddrinfo(res);
	redis_client_link_connect(link, link->ip);
}

static void
redis_client_link_start(RedisClientLink *link)
{
	RedisClient		 *redis = link->redis;
	uv_getaddrinfo_t *req;
	struct addrinfo	  hints;
	int				  rc;

	if (link->resolving != NULL)
	{
		/* A lookup of an earlier attempt is still running (uv_cancel could not stop it once it
		 * started): one at a time, so wait for it. */
		redis_client_link_set_state(link, REDIS_LINK_BACKOFF);
		uv_timer_start(&link->timer, redis_client_on_link_timer, REDIS_CLIENT_RESOLVE_WAIT_MS, 0);
		return;
	}
	link->drop_reason = NULL;
	uv_timer_start(&link->timer, redis_client_on_link_timer, (uint64_t) redis->connect_timeout_ms,
				   0);
	if (redis->numeric)
	{
		redis_client_link_set_state(link, REDIS_LINK_CONNECTING);
		redis_client_link_connect(link, redis->addr.host);
		return;
	}
	req = malloc(sizeof(*req));
	if (req == NULL)
	{
		redis_client_link_set_state(link, REDIS_LINK_RESOLVING);
		redis_client_link_fail(link, redis_client_err_down, "out of memory");
		return;
	}
	req->data = link;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	redis_client_link_set_state(link, REDIS_LINK_RESOLVING);
	rc = uv_getaddrinfo(redis->loop, req, redis_client_on_resolved, redis->addr.host,
						redis->port_str, &hints);
	if (rc != 0)
	{
		free(req);
		redis_client_link_fail(link, redis_client_err_down, "cannot resolve %s: %s",
							   redis->addr.host, uv_strerror(rc));
		return;
	}
	link->resolving = req;
	redis->open_handles++;
}

/* A command timed out: both links are reset (see the top). */
static void
redis_client_cmd_timeout(RedisClient *redis)
{
	uint64_t late = uv_now(redis->loop) - redis->pending.head->deadline;

	log_warn("redis: no reply from %s within %d ms (%zu command%s waiting)", redis->endpoint,
			 redis->command_timeout_ms + (int) (late < 1000000 ? late : 1000000),
			 redis->pending.count, redis->pending.count == 1 ? "" : "s");
	redis_client_link_fail(&redis->cmd, redis_client_err_timeout, "command timed out");
	if (redis->sub.state == REDIS_LINK_CONNECTING || redis->sub.state == REDIS_LINK_READY)
		redis_client_link_fail(&redis->sub, redis_client_err_down,
							   "the command connection timed out");
}

/* Each link's timer; what it means depends on the state. Thread: loop. */
static void
redis_client_on_link_timer(uv_timer_t *timer)
{
	RedisClientLink *link = timer->data;
	RedisClient		*redis = link->redis;

	switch (link->state)
	{
		case REDIS_LINK_BACKOFF:
			redis_client_link_start(link);
			break;
		case REDIS_LINK_RESOLVING:
		case REDIS_LINK_CONNECTING:
			redis_client_link_fail(link, redis_client_err_down, "no answer within %d ms",
								   redis->connect_timeout_ms);
			break;
		case REDIS_LINK_READY:
			if (link->subscriber)
				break;
			if (redis->pending.head == NULL)
				redis_client_ping(redis);
			else if (redis->pending.head->deadline <= uv_now(redis->loop))
				redis_client_cmd_timeout(redis);
			else
				redis_client_cmd_arm(redis);
			break;
		case REDIS_LINK_IDLE:
		case REDIS_LINK_CLOSED:
			break;
	}
}

static void
redis_client_link_init(RedisClient *redis, RedisClientLink *link, const char *name, bool subscriber)
{
	link->redis = redis;
	link->name = name;
	link->subscriber = subscriber;
	redis_client_link_set_state(link, REDIS_LINK_IDLE);
	/* Cannot fail: libuv 1.44 only fills in the struct. */
	(void) uv_timer_init(redis->loop, &link->timer);
	link->timer.data = link;
	redis->open_handles++;
}

static void
redis_client_link_close(RedisClientLink *link)
{
	redis_client_link_set_state(link, REDIS_LINK_CLOSED);
	redis_client_link_release(link);
	uv_timer_stop(&link->timer);
	link->timer.data = link->redis;
	uv_close((uv_handle_t *) &link->timer, redis_client_on_handle_closed);
}

/* ------------------------------------------------------------------------------------------ */
/* Public interface */

static int
redis_client_option_ms(const char *name, int value, int fallback, int *out)
{
	if (value == 0)
		value = fallback;
	if (value < 1 || value > REDIS_CLIENT_MAX_TIMEOUT_MS)
	{
		log_error("redis: %s %d ms is out of range (1..%d)", name, value,
				  REDIS_CLIENT_MAX_TIMEOUT_MS);
		return -1;
	}
	*out = value;
	return 0;
}

RedisClient *
redis_client_create(uv_loop_t *loop, const RedisClientOptions *opts)
{
	RedisClient		  *redis;
	RedisClientAddress addr;
	char			   err[160];
	int				   connect_ms, command_ms;
	char			   probe[sizeof(struct in6_addr)];

	if (loop == NULL || opts == NULL)
	{
		log_error("redis_client_create: no loop or no options");
		return NULL;
	}
	if (opts->url != NULL && opts->url[0] != '\0')
	{
		if (redis_client_url_parse(opts->url, &addr, err, sizeof(err)) != 0)
		{
			log_error("redis: bad redis URL: %s", err);
			return NULL;
		}
	}
	else
	{
		const char *host =
			opts->host != NULL && opts->host[0] != '\0' ? opts->host : REDIS_CLIENT_DEFAULT_HOST;
		size_t len = strlen(host);

		memset(&addr, 0, sizeof(addr));
		if (len >= sizeof(addr.host) ||
			(!redis_client_host_name_ok(host, len) && inet_pton(AF_INET6, host, probe) != 1))
		{
			log_error("redis: bad redis host '%.64s' (a host name or IP address)", host);
			return NULL;
		}
		memcpy(addr.host, host, len + 1);
		addr.port = opts->port == 0 ? REDIS_CLIENT_DEFAULT_PORT : opts->port;
		if (addr.port < 1 || addr.port > 65535)
		{
			log_error("redis: bad redis port %d (1..65535)", opts->port);
			return NULL;
		}
	}
	if (redis_client_option_ms("connect timeout", opts->connect_timeout_ms,
							   REDIS_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS, &connect_ms) != 0 ||
		redis_client_option_ms("command timeout", opts->command_timeout_ms,
							   REDIS_CLIENT_DEFAULT_COMMAND_TIMEOUT_MS, &command_ms) != 0)
		return NULL;
	if (opts->ping_interval_ms > REDIS_CLIENT_MAX_TIMEOUT_MS || opts->max_pending < 0 ||
		opts->max_pending > REDIS_CLIENT_MAX_PENDING)
	{
		log_error("redis: ping interval %d ms or max pending %d out of range",
				  opts->ping_interval_ms, opts->max_pending);
		return NULL;
	}

	redis = calloc(1, sizeof(*redis));
	if (redis == NULL)
	{
		log_error("redis_client_create: out of memory");
		return NULL;
	}
	redis->loop = loop;
	redis->addr = addr;
	redis->numeric =
		inet_pton(AF_INET, addr.host, probe) == 1 || inet_pton(AF_INET6, addr.host, probe) == 1;
	snprintf(redis->endpoint, sizeof(redis->endpoint),
			 strchr(addr.host, ':') ? "[%s]:%d/%d" : "%s:%d/%d", addr.host, addr.port, addr.db);
	snprintf(redis->port_str, sizeof(redis->port_str), "%d", addr.port);
	redis->connect_timeout_ms = connect_ms;
	redis->command_timeout_ms = command_ms;
	redis->ping_interval_ms = opts->ping_interval_ms == 0 ? REDIS_CLIENT_DEFAULT_PING_INTERVAL_MS
														  : opts->ping_interval_ms;
	redis->max_pending =
		opts->max_pending == 0 ? REDIS_CLIENT_DEFAULT_MAX_PENDING : (size_t) opts->max_pending;
	redis->max_pending_bytes = opts->max_pending_bytes == 0 ? REDIS_CLIENT_DEFAULT_MAX_PENDING_BYTES
															: opts->max_pending_bytes;
	redis->rng = backoff_seed(uv_hrtime() ^ (uint64_t) (uintptr_t) redis);

	redis_client_link_init(redis, &redis->cmd, "command", false);
	redis_client_link_init(redis, &redis->sub, "subscriber", true);
	(void) uv_idle_init(loop, &redis->deliver); /* cannot fail, as uv_timer_init */
	redis->deliver.data = redis;
	redis->open_handles++;
	metrics_gauge_set(G_REDIS_UP, 0);

	redis_client_link_set_state(&redis->cmd, REDIS_LINK_BACKOFF);
	redis_client_link_start(&redis->cmd);
	return redis;
}

void
redis_client_destroy(RedisClient *redis)
{
	RedisClientCall *call;

	if (redis == NULL || redis->destroying)
		return;
	redis->destroying = true;
	/* Contexts freed here fail their calls into the done list; one a callback of which is
	 * running is freed by hiredis when it returns, so its calls are still pending below. */
	redis->cmd.drop_reason = redis_client_err_shutdown;
	redis_client_link_close(&redis->cmd);
	redis_client_link_close(&redis->sub);
	while ((call = redis->pending.head) != NULL)
	{
		redis_client_list_remove(&redis->pending, call);
		call->orphan = true; /* hiredis still holds it; redis_client_on_reply frees it */
		call->cb(call->ud, NULL, redis_client_err_shutdown);
	}
	redis->pending_bytes = 0;
	while ((call = redis->done.head) != NULL)
	{
		redis_client_list_remove(&redis->done, call);
		call->cb(call->ud, NULL, call->error);
		free(call);
	}
	if (redis->up)
		metrics_gauge_set(G_REDIS_UP, 0);
	redis->up = false;
	uv_idle_stop(&redis->deliver);
	uv_close((uv_handle_t *) &redis->deliver, redis_client_on_handle_closed);
}

void
redis_client_set_hooks(RedisClient *redis, const RedisClientHooks *hooks, void *ud)
{
	if (redis == NULL)
		return;
	if (hooks != NULL)
		redis->hooks = *hooks;
	else
		memset(&redis->hooks, 0, sizeof(redis->hooks));
	redis->hooks_ud = ud;
	if (redis_client_hooks_due(redis))
		redis_client_wake(redis);
}

/* Argument checks shared by redis_client_command and redis_client_eval; sums the bytes. */
static int
redis_client_check_args(const char *what, int argc, const char **argv, const size_t *argvlen,
						size_t *bytes)
{
	size_t total = 0;

	if (argc < 0 || argc > REDIS_CLIENT_MAX_ARGS || (argc > 0 && argv == NULL))
	{
		log_error("%s: bad argument count %d", what, argc);
		return -1;
	}
	for (int i = 0; i < argc; i++)
	{
		if (argv[i] == NULL)
		{
			log_error("%s: argument %d is NULL", what, i);
			return -1;
		}
		total += argvlen != NULL ? argvlen[i] : strlen(argv[i]);
	}
	*bytes = total;
	return 0;
}

static bool
redis_client_forbidden_command(const char *name, size_t len, int argc, const char **argv,
							   const size_t *argvlen)
{
	for (size_t i = 0; i < sizeof(redis_client_forbidden) / sizeof(redis_client_forbidden[0]); i++)
		if (strlen(redis_client_forbidden[i]) == len &&
			strncasecmp(name, redis_client_forbidden[i], len) == 0)
			return true;
	/* CLIENT REPLY OFF|SKIP would make replies and callbacks drift apart. */
	if (len == 6 && strncasecmp(name, "client", 6) == 0 && argc > 1 &&
		(argvlen != NULL ? argvlen[1] : strlen(argv[1])) == 5 &&
		strncasecmp(argv[1], "reply", 5) == 0)
		return true;
	return false;
}

/* Admission shared by redis_client_command and redis_client_eval: sends the call or queues its
 * failure. */
static void
redis_client_admit(RedisClient *redis, RedisClientCall *call, int argc, const char **argv,
				   const size_t *argvlen)
{
	if (call->bytes > REDIS_CLIENT_MAX_COMMAND_BYTES)
		redis_client_fail(redis, call, redis_client_err_too_large);
	else if (redis->cmd.state != REDIS_LINK_READY)
		redis_client_fail(redis, call, redis_client_err_down);
	else if (redis->pending.count >= redis->max_pending ||
			 redis->pending_bytes + call->bytes > redis->max_pending_bytes)
		redis_client_fail(redis, call, redis_client_err_busy);
	else if (redis_client_submit(redis, call, argc, argv, argvlen) != 0)
		redis_client_fail(redis, call, redis_client_err_down);
}

int
redis_client_command(RedisClient *redis, RedisClientReplyFn cb, void *ud, int argc,
					 const char **argv, const size_t *argvlen)
{
	RedisClientCall *call;
	size_t			 bytes;

	if (redis == NULL || cb == NULL || argc < 1)
	{
		log_error("redis_client_command: no client, callback or command");
		return -1;
	}
	if (redis_client_check_args("redis_client_command", argc, argv, argvlen, &bytes) != 0)
		return -1;
	if (redis_client_forbidden_command(argv[0], argvlen != NULL ? argvlen[0] : strlen(argv[0]),
									   argc, argv, argvlen))
	{
		log_error("redis_client_command: %.32s is not allowed on the shared command connection",
				  argv[0]);
		return -1;
	}
	if (redis->destroying)
	{
		log_error("redis_client_command: called during redis_client_destroy");
		return -1;
	}
	call = redis_client_call_new(redis, cb, ud, 0);
	if (call == NULL)
	{
		log_error("redis_client_command: out of memory");
		return -1;
	}
	call->bytes = bytes;
	redis_client_admit(redis, call, argc, argv, argvlen);
	return 0;
}

const RedisClientScript *
redis_client_script(RedisClient *redis, const char *source)
{
	RedisClientScript *script;
	size_t			   len;
	unsigned char	   md[20];

	if (redis == NULL || source == NULL || source[0] == '\0')
	{
		log_error("redis_client_script: no client or empty source");
		return NULL;
	}
	len = strlen(source);
	for (int i = 0; i < redis->nscripts; i++)
		if (redis->scripts[i]->len == len && memcmp(redis->scripts[i]->source, source, len) == 0)
			return redis->scripts[i];
	if (len > REDIS_CLIENT_MAX_SCRIPT_BYTES || redis->nscripts == REDIS_CLIENT_MAX_SCRIPTS)
	{
		log_error("redis_client_script: source of %zu bytes, or more than %d scripts", len,
				  REDIS_CLIENT_MAX_SCRIPTS);
		return NULL;
	}
	script = malloc(sizeof(*script) + len + 1);
	if (script == NULL)
	{
		log_error("redis_client_script: out of memory");
		return NULL;
	}
	memcpy(script->source, source, len + 1);
	script->len = len;
	/* EVALSHA names a script by the SHA-1 of its source, which Redis computes the same way. */
	lws_SHA1((const unsigned char *) source, len, md);
	for (int i = 0; i < 20; i++)
		snprintf(script->sha + 2 * i, 3, "%02x", md[i]);
	redis->scripts[redis->nscripts++] = script;
	return script;
}

const char *
redis_client_script_sha(const RedisClientScript *script)
{
	return script != NULL ? script->sha : "";
}

int
redis_client_eval(RedisClient *redis, const RedisClientScript *script, RedisClientReplyFn cb,
				  void *ud, int nkeys, int argc, const char **argv, const size_t *argvlen)
{
	RedisClientCall *call;
	size_t			 bytes, extra;
	int				 total;
	char			*pos;
	char			 nkeys_str[16];

	if (redis == NULL || script == NULL || cb == NULL)
	{
		log_error("redis_client_eval: no client, script or callback");
		return -1;
	}
	if (redis_client_check_args("redis_client_eval", argc, argv, argvlen, &bytes) != 0)
		return -1;
	if (nkeys < 0 || nkeys > argc)
	{
		log_error("redis_client_eval: %d keys among %d arguments", nkeys, argc);
		return -1;
	}
	if (redis->destroying)
	{
		log_error("redis_client_eval: called during redis_client_destroy");
		return -1;
	}
	snprintf(nkeys_str, sizeof(nkeys_str), "%d", nkeys);
	total = argc + 3;
	if (bytes > REDIS_CLIENT_MAX_COMMAND_BYTES)
		extra = 0; /* refused below; no copy */
	else
		extra = (size_t) total * (sizeof(char *) + sizeof(size_t)) + bytes + argc +
				sizeof(script->sha) + strlen(nkeys_str) + 1;
	call = redis_client_call_new(redis, cb, ud, extra);
	if (call == NULL)
	{
		log_error("redis_client_eval: out of memory");
		return -1;
	}
	call->bytes = bytes + sizeof(script->sha);
	if (extra > 0)
	{
		/* EVALSHA sha nkeys keys... args..., kept for the NOSCRIPT retry. */
		call->script = script;
		call->argc = total;
		call->argv = (const char **) (call + 1);
		call->argvlen = (size_t *) (call->argv + total);
		pos = (char *) (call->argvlen + total);
		call->argv[0] = "EVALSHA";
		call->argvlen[0] = 7;
		call->argv[1] = script->sha;
		call->argvlen[1] = 40;
		memcpy(pos, nkeys_str, strlen(nkeys_str) + 1);
		call->argv[2] = pos;
		call->argvlen[2] = strlen(nkeys_str);
		pos += strlen(nkeys_str) + 1;
		for (int i = 0; i < argc; i++)
		{
			size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);

			memcpy(pos, argv[i], len);
			pos[len] = '\0';
			call->argv[3 + i] = pos;
			call->argvlen[3 + i] = len;
			pos += len + 1;
		}
	}
	redis_client_admit(redis, call, call->argc, call->argv, call->argvlen);
	return 0;
}

int
redis_client_subscribe(RedisClient *redis, const char *channel, RedisClientMessageFn fn, void *ud)
{
	RedisClientSub *sub;
	size_t			len;

	if (redis == NULL || channel == NULL || fn == NULL || redis->destroying)
	{
		log_error(
			"redis_client_subscribe: no client, channel or callback, or during redis_client_destroy");
		return -1;
	}
	len = strlen(channel);
	if (len == 0 || len > REDIS_CLIENT_MAX_CHANNEL)
	{
		log_error("redis_client_subscribe: channel name of %zu bytes (1..%d)", len,
				  REDIS_CLIENT_MAX_CHANNEL);
		return -1;
	}
	for (int i = 0; i < redis->nsubs; i++)
		if (strcmp(redis->subs[i]->channel, channel) == 0)
		{
			log_error("redis_client_subscribe: already subscribed to %s", channel);
			return -1;
		}
	if (redis->nsubs == REDIS_CLIENT_MAX_SUBSCRIPTIONS)
	{
		log_error("redis_client_subscribe: more than %d channels", REDIS_CLIENT_MAX_SUBSCRIPTIONS);
		return -1;
	}
	sub = calloc(1, sizeof(*sub) + len + 1);
	if (sub == NULL)
	{
		log_error("redis_client_subscribe: out of memory");
		return -1;
	}
	sub->redis = redis;
	sub->fn = fn;
	sub->ud = ud;
	memcpy(sub->channel, channel, len + 1);
	redis->subs[redis->nsubs++] = sub;

	if (redis->sub.state == REDIS_LINK_IDLE)
	{
		redis_client_link_set_state(&redis->sub, REDIS_LINK_BACKOFF);
		redis_client_link_start(&redis->sub);
	}
	else if (redis->sub.subscribing)
	{
		/* Handshake done on this connection: subscribe now; READY waits for it if not yet. */
		if (redis_client_send_subscribe(&redis->sub, sub) != 0)
			redis_client_link_fail(&redis->sub, redis_client_err_down, "cannot send SUBSCRIBE");
		else if (redis->sub.state == REDIS_LINK_CONNECTING)
			redis->sub.handshake_left++;
	}
	/* Otherwise the connection's handshake subscribes every channel when it completes. */
	redis_client_update_state(redis);
	return 0;
}

int
redis_client_is_up(const RedisClient *redis)
{
	return redis != NULL && redis->up ? 1 : 0;
}

const char *
redis_client_endpoint(const RedisClient *redis)
{
	return redis != NULL ? redis->endpoint : "";
}

size_t
redis_client_pending(const RedisClient *redis)
{
	return redis != NULL ? redis->pending.count : 0;
}
