/*
 * kvs.c — Redis on the loop: a command connection and a subscriber connection, reconnected.
 *
 * Links. A Kvs owns two links, each one hiredis async context at a time. A link is a small
 * state machine; the states mean what its single timer does:
 *
 *   IDLE --first subscription--+
 *                              v
 *   BACKOFF --timer--> RESOLVING --address--> CONNECTING --handshake done--> READY
 *      ^                  |                      |                             |
 *      +----- failure, connect deadline, loss ---+-----------------------------+
 *
 * BACKOFF waits the reconnect delay (kvs_backoff_ms, equal jitter, per link; back to the first
 * step once READY). RESOLVING (host names only) and CONNECTING share one connect deadline for
 * the whole attempt. CONNECTING covers the TCP connect and the handshake, which is pipelined
 * right after redisAsyncConnect: AUTH (when the URL has a password), SELECT (command link, db
 * != 0) and PING; a PING answer proves the server is serving, not -LOADING. The subscriber
 * link then sends one SUBSCRIBE per channel and is READY when every one is confirmed. In READY
 * the command link's timer is the deadline of the oldest command, or the next idle PING.
 * kvs_link_ready() and kvs_link_fail() are the only ways into READY and BACKOFF, and both end
 * in kvs_update_state(), which derives up/down for the whole Kvs.
 *
 * hiredis rules this file lives by (0.14.1):
 *  - Every reply callback registered with a command is called exactly once: with the reply, or
 *    with NULL when the context is freed. So a KvsCall is freed in kvs_on_reply, always.
 *  - redisAsyncFree inside a reply callback is deferred until the callback returns; anywhere
 *    else it is immediate and runs the pending callbacks (with NULL) and the disconnect
 *    callback before returning. It must not be called from the connect or disconnect callback
 *    (hiredis still uses the context afterwards); those only forget the context, which hiredis
 *    frees itself.
 *  - Before freeing a context we clear ac->data and link->ac, so every late callback of that
 *    context recognizes itself as stale (link->ac != ac) and does nothing.
 *  - A subscribed context can run nothing but (P)SUBSCRIBE/UNSUBSCRIBE: the subscriber link
 *    sends its AUTH and PING before the first SUBSCRIBE and nothing after. Commands that would
 *    put the command link into such a mode are refused by kvs_command.
 *  - hiredis has no timeouts: connects, handshakes and commands are bounded by our timers.
 *
 * Failures are never delivered from inside kvs_command or from inside hiredis: a failed call
 * goes to the done list, which an idle handle drains on the next loop turn (kvs_on_deliver),
 * and the up/down hooks run from there too, with nothing of ours or hiredis's on the stack.
 * Replies and pub/sub messages are delivered from the read callback, where hiredis owns the
 * reply; kvs_destroy from there is safe because hiredis defers the free.
 *
 * Up/down. up = command link READY and (no subscriptions or subscriber link READY). Every
 * transition to up bumps a generation; the deliver step compares what the hooks last reported
 * with the current state and generation, so a loss and recovery between two loop turns still
 * yields down then up, and a user rebuilding its view in the up hook never misses a gap.
 * A command timeout resets both links: a server that does not answer one connection is not
 * trusted to deliver on the other.
 *
 * Memory. A call is one allocation (kvs_eval keeps a copy of its EVALSHA for the NOSCRIPT retry).
 * In flight are at most max_pending calls and max_pending_bytes of arguments, plus a few
 * internal PING/SCRIPT LOAD calls; rejected calls live until the next loop turn. Subscriptions
 * and scripts are capped. Handles are freed in their close callbacks, the Kvs when the last one
 * (and any host lookup still running on the thread pool) has finished after kvs_destroy.
 *
 * Thread: the loop thread only; the host lookup runs on libuv's thread pool and reports back on
 * the loop.
 */
#include "kvs.h"

#include <arpa/inet.h>
#include <ctype.h>
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

#include "log.h"
#include "metrics.h"

#define KVS_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define KVS_DEFAULT_COMMAND_TIMEOUT_MS 2000
#define KVS_DEFAULT_PING_INTERVAL_MS 5000
#define KVS_DEFAULT_MAX_PENDING 10000
#define KVS_DEFAULT_MAX_PENDING_BYTES ((size_t) 64 << 20)
#define KVS_MAX_TIMEOUT_MS 600000
#define KVS_MAX_PENDING 10000000
#define KVS_MAX_ARGS 1048576
#define KVS_MAX_COMMAND_BYTES ((size_t) 16 << 20)
#define KVS_MAX_SCRIPT_BYTES ((size_t) 256 << 10)
#define KVS_MAX_SCRIPTS 64
#define KVS_MAX_SUBSCRIPTIONS 64
#define KVS_MAX_CHANNEL 256
#define KVS_MAX_DB 999999999
#define KVS_RESOLVE_WAIT_MS 100

/* What a failed call's callback is told; static, so a queued failure never dangles. */
static const char kvs_err_down[] = "redis is not connected";
static const char kvs_err_lost[] = "connection to redis lost";
static const char kvs_err_timeout[] = "redis command timed out";
static const char kvs_err_busy[] = "too many redis commands in flight";
static const char kvs_err_too_large[] = "redis command too large";
static const char kvs_err_shutdown[] = "redis client is shutting down";

/* Reconnect delays per link, ms; the last one repeats. */
static const uint64_t kvs_backoff_ms[] = {100, 200, 500, 1000, 2000, 5000};
#define KVS_BACKOFF_STEPS (sizeof(kvs_backoff_ms) / sizeof(kvs_backoff_ms[0]))

/* Commands that would take the shared command connection out of request/reply mode or change
 * state that a reconnect silently loses. */
static const char *const kvs_forbidden[] = {
	"subscribe",	"psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
	"sunsubscribe", "monitor",	  "select",		"auth",		   "hello",
	"quit",			"reset",	  "sync",		"psync",	   "replconf",
};

typedef enum KvsLinkState
{
	KVSL_IDLE = 0,	 /* not started: the subscriber link before the first subscription */
	KVSL_BACKOFF,	 /* no connection; the timer starts the next attempt */
	KVSL_RESOLVING,	 /* host lookup on the thread pool; timer: connect deadline */
	KVSL_CONNECTING, /* TCP connect and handshake; timer: connect deadline */
	KVSL_READY,		 /* command link: timer is the oldest command's deadline or the next PING */
	KVSL_CLOSED		 /* kvs_destroy ran */
} KvsLinkState;

typedef struct KvsCall KvsCall;

struct KvsCall
{
	KvsCall			*prev;
	KvsCall			*next;
	Kvs				*kvs;
	KvsReplyFn		 cb;
	void			*ud;
	uint64_t		 deadline; /* uv_now() ms by which a reply is due */
	size_t			 bytes;	   /* argument bytes, counted in pending_bytes while in flight */
	bool			 orphan;   /* answered by kvs_destroy; hiredis still holds it */
	const char		*error;	   /* failure text, one of kvs_err_* */
	const KvsScript *script;   /* kvs_eval: the script, for the NOSCRIPT retry */
	bool			 retried;  /* kvs_eval: the EVALSHA was repeated once already */
	int				 argc;	   /* kvs_eval: the EVALSHA command, in this allocation */
	const char	   **argv;
	size_t			*argvlen;
};

typedef struct KvsCallList
{
	KvsCall *head;
	KvsCall *tail;
	size_t	 count;
} KvsCallList;

typedef struct KvsLink
{
	Kvs				  *kvs;
	const char		  *name; /* "command" or "subscriber", for log lines */
	bool			   subscriber;
	KvsLinkState	   state;
	redisAsyncContext *ac;		  /* owned; NULL when not connected */
	uv_timer_t		   timer;	  /* see KvsLinkState */
	uv_getaddrinfo_t  *resolving; /* owned; the lookup running, freed in its callback */
	size_t			   attempt;	  /* index into kvs_backoff_ms for the next failure */
	unsigned		   failures;  /* failed attempts since the last READY, for log volume */
	bool			   ever_ready;
	bool			   subscribing;	   /* subscriber: SUBSCRIBEs sent on this connection */
	int				   handshake_left; /* replies still due before READY */
	const char		  *drop_reason;	   /* kvs_err_* for calls failed by the current drop */
	char			   ip[INET6_ADDRSTRLEN];
} KvsLink;

typedef struct KvsSub
{
	Kvs			*kvs;
	KvsMessageFn fn;
	void		*ud;
	bool		 confirmed; /* SUBSCRIBE confirmed on the current subscriber connection */
	char		 channel[];
} KvsSub;

struct KvsScript
{
	char   sha[41];
	size_t len;
	char   source[];
};

struct Kvs
{
	uv_loop_t  *loop;
	KvsAddress	addr;
	char		endpoint[300];
	char		port_str[8];
	bool		numeric; /* addr.host is an IP literal: no lookup */
	int			connect_timeout_ms;
	int			command_timeout_ms;
	int			ping_interval_ms; /* <= 0: never */
	size_t		max_pending;
	size_t		max_pending_bytes;
	KvsLink		cmd;
	KvsLink		sub;
	KvsCallList pending; /* sent on cmd.ac, in send order (= deadline order) */
	size_t		pending_bytes;
	KvsCallList done;	 /* failed, callbacks not yet called */
	uv_idle_t	deliver; /* runs while there are failures or hook changes to deliver */
	KvsHooks	hooks;
	void	   *hooks_ud;
	bool		up;
	uint64_t	generation; /* transitions to up so far */
	bool		reported_up;
	uint64_t	reported_generation;
	KvsSub	   *subs[KVS_MAX_SUBSCRIPTIONS];
	int			nsubs;
	KvsScript  *scripts[KVS_MAX_SCRIPTS];
	int			nscripts;
	uint64_t	rng;
	bool		destroying;
	int			open_handles; /* handles and lookups; the Kvs is freed at 0 after destroy */
};

static void kvs_link_start(KvsLink *link);
static void kvs_link_fail(KvsLink *link, const char *call_error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void kvs_on_reply(redisAsyncContext *ac, void *r, void *privdata);
static void kvs_on_link_timer(uv_timer_t *timer);

/* ------------------------------------------------------------------------------------------ */
/* URL */

static int __attribute__((format(printf, 3, 4)))
kvs_url_error(char *err, size_t errlen, const char *fmt, ...)
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

static int
kvs_hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes n bytes of src into dst (cap bytes with the NUL); -1 on a bad escape, an
 * encoded NUL or overflow. */
static int
kvs_url_decode(const char *src, size_t n, char *dst, size_t cap)
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
			hi = kvs_hex_value((unsigned char) src[i + 1]);
			lo = kvs_hex_value((unsigned char) src[i + 2]);
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
kvs_host_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char) s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_')
			return false;
	return true;
}

/* Digits only, value in [min, max]; -1 otherwise. */
static long
kvs_parse_number(const char *s, size_t n, long min, long max)
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
kvs_url_parse(const char *url, KvsAddress *out, char *err, size_t errlen)
{
	const char *p, *auth_end, *at, *host, *rest, *colon;
	size_t		host_len;
	long		v;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL)
		return kvs_url_error(err, errlen, "no output");
	memset(out, 0, sizeof(*out));
	out->port = KVS_DEFAULT_PORT;
	if (url == NULL || url[0] == '\0')
		return kvs_url_error(err, errlen, "empty URL");
	if (strncasecmp(url, "rediss://", 9) == 0)
		return kvs_url_error(err, errlen, "rediss:// (TLS) is not supported; use redis://");
	if (strncasecmp(url, "redis://", 8) != 0)
		return kvs_url_error(err, errlen, "the URL must start with redis://");
	p = url + 8;
	for (const char *q = p; *q != '\0'; q++)
	{
		if (*q == '?' || *q == '#')
			return kvs_url_error(err, errlen, "query strings and fragments are not supported");
		if ((unsigned char) *q <= ' ' || *q == 0x7f)
			return kvs_url_error(err, errlen, "the URL contains a space or control character");
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
			return kvs_url_error(err, errlen,
								 "a user name needs a password (redis://user:password@host)");
		if (kvs_url_decode(p, (size_t) (colon - p), out->user, sizeof(out->user)) != 0)
			return kvs_url_error(err, errlen, "bad or overlong user name");
		if (kvs_url_decode(colon + 1, (size_t) (at - colon - 1), out->password,
						   sizeof(out->password)) != 0)
			return kvs_url_error(err, errlen, "bad or overlong password");
		if (out->password[0] == '\0')
			return kvs_url_error(err, errlen, "empty password");
		p = at + 1;
	}

	if (*p == '[')
	{
		const char *close = memchr(p, ']', (size_t) (auth_end - p));
		char		probe[sizeof(struct in6_addr)];

		if (close == NULL)
			return kvs_url_error(err, errlen, "unclosed '[' in the host");
		host = p + 1;
		host_len = (size_t) (close - host);
		if (host_len == 0 || host_len >= sizeof(out->host))
			return kvs_url_error(err, errlen, "bad IPv6 address");
		memcpy(out->host, host, host_len);
		out->host[host_len] = '\0';
		if (inet_pton(AF_INET6, out->host, probe) != 1)
			return kvs_url_error(err, errlen, "bad IPv6 address '%s'", out->host);
		rest = close + 1;
		if (rest < auth_end && *rest != ':')
			return kvs_url_error(err, errlen, "unexpected text after the IPv6 address");
	}
	else
	{
		colon = memchr(p, ':', (size_t) (auth_end - p));
		rest = colon != NULL ? colon : auth_end;
		host = p;
		host_len = (size_t) (rest - p);
		if (host_len == 0)
			return kvs_url_error(err, errlen, "no host");
		if (!kvs_host_name_ok(host, host_len))
			return kvs_url_error(err, errlen, "bad host '%.*s'",
								 (int) (host_len > 64 ? 64 : host_len), host);
		memcpy(out->host, host, host_len);
		out->host[host_len] = '\0';
	}
	if (rest < auth_end)
	{
		/* rest points at ':' */
		v = kvs_parse_number(rest + 1, (size_t) (auth_end - rest - 1), 1, 65535);
		if (v < 0)
			return kvs_url_error(err, errlen, "bad port (1..65535)");
		out->port = (int) v;
	}

	if (*auth_end == '/' && auth_end[1] != '\0')
	{
		v = kvs_parse_number(auth_end + 1, strlen(auth_end + 1), 0, KVS_MAX_DB);
		if (v < 0)
			return kvs_url_error(err, errlen, "bad database number '%s' (a number after /)",
								 auth_end + 1);
		out->db = (int) v;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Small helpers */

/* xorshift64: jitter only, no need for quality or for touching rand()'s global state. */
static uint64_t
kvs_random(Kvs *kvs)
{
	kvs->rng ^= kvs->rng << 13;
	kvs->rng ^= kvs->rng >> 7;
	kvs->rng ^= kvs->rng << 17;
	return kvs->rng;
}

/* Equal jitter: instances that lost Redis together do not come back together. */
static uint64_t
kvs_backoff_delay(Kvs *kvs, size_t attempt)
{
	uint64_t base = kvs_backoff_ms[attempt < KVS_BACKOFF_STEPS ? attempt : KVS_BACKOFF_STEPS - 1];

	return base / 2 + kvs_random(kvs) % (base / 2 + 1);
}

static void
kvs_list_push(KvsCallList *list, KvsCall *call)
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
kvs_list_remove(KvsCallList *list, KvsCall *call)
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
kvs_handle_closed(Kvs *kvs)
{
	kvs->open_handles--;
	if (!kvs->destroying || kvs->open_handles > 0)
		return;
	for (int i = 0; i < kvs->nsubs; i++)
		free(kvs->subs[i]);
	for (int i = 0; i < kvs->nscripts; i++)
		free(kvs->scripts[i]);
	free(kvs);
}

static void
kvs_on_handle_closed(uv_handle_t *handle)
{
	kvs_handle_closed(handle->data);
}

/* ------------------------------------------------------------------------------------------ */
/* Delivery: failures and hooks, from their own loop turn */

static bool
kvs_hooks_due(const Kvs *kvs)
{
	return kvs->reported_up != kvs->up || (kvs->up && kvs->reported_generation != kvs->generation);
}

/* The one place failure callbacks and hooks run (besides kvs_destroy). Thread: loop. */
static void
kvs_on_deliver(uv_idle_t *handle)
{
	Kvs *kvs = handle->data;
	/* Only what is there now: failures a callback causes wait one turn, so a callback that
	 * retries at once cannot keep the loop here. */
	size_t n = kvs->done.count;

	while (n-- > 0 && kvs->done.head != NULL)
	{
		KvsCall *call = kvs->done.head;

		kvs_list_remove(&kvs->done, call);
		call->cb(call->ud, NULL, call->error);
		free(call);
		if (kvs->destroying)
			return; /* kvs_destroy delivered the rest and closed this handle */
	}
	if (kvs->reported_up && (!kvs->up || kvs->reported_generation != kvs->generation))
	{
		kvs->reported_up = false;
		if (kvs->hooks.down != NULL)
			kvs->hooks.down(kvs->hooks_ud);
		if (kvs->destroying)
			return;
	}
	if (!kvs->reported_up && kvs->up)
	{
		kvs->reported_up = true;
		kvs->reported_generation = kvs->generation;
		if (kvs->hooks.up != NULL)
			kvs->hooks.up(kvs->hooks_ud);
		if (kvs->destroying)
			return;
	}
	if (kvs->done.head == NULL && !kvs_hooks_due(kvs))
		uv_idle_stop(&kvs->deliver);
}

static void
kvs_wake(Kvs *kvs)
{
	if (!kvs->destroying)
		uv_idle_start(&kvs->deliver, kvs_on_deliver);
}

/* Queues a failure for the next loop turn. */
static void
kvs_fail(Kvs *kvs, KvsCall *call, const char *error)
{
	call->error = error;
	metrics_count(M_REDIS_COMMAND_ERRORS, 1);
	kvs_list_push(&kvs->done, call);
	kvs_wake(kvs);
}

/* The only place up is derived. */
static void
kvs_update_state(Kvs *kvs)
{
	bool up = kvs->cmd.state == KVSL_READY && (kvs->nsubs == 0 || kvs->sub.state == KVSL_READY);

	if (up == kvs->up || kvs->destroying)
		return;
	kvs->up = up;
	if (up)
		kvs->generation++;
	metrics_gauge_set(G_REDIS_UP, up ? 1 : 0);
	if (up)
		log_info("kvs: redis at %s is up", kvs->endpoint);
	else
		log_warn("kvs: redis at %s is down", kvs->endpoint);
	kvs_wake(kvs);
}

/* ------------------------------------------------------------------------------------------ */
/* Commands on the command link */

/* The command link's timer in READY: the oldest command's deadline, else the next PING. */
static void
kvs_cmd_arm(Kvs *kvs)
{
	uint64_t now = uv_now(kvs->loop);
	uint64_t delay;

	if (kvs->pending.head != NULL)
		delay = kvs->pending.head->deadline > now ? kvs->pending.head->deadline - now : 0;
	else if (kvs->ping_interval_ms > 0)
		delay = (uint64_t) kvs->ping_interval_ms;
	else
	{
		uv_timer_stop(&kvs->cmd.timer);
		return;
	}
	uv_timer_start(&kvs->cmd.timer, kvs_on_link_timer, delay, 0);
}

/* Hands a call to hiredis on the ready command link. -1 if hiredis refused it (the call is
 * untouched and still the caller's). */
static int
kvs_submit(Kvs *kvs, KvsCall *call, int argc, const char **argv, const size_t *argvlen)
{
	bool was_empty = kvs->pending.head == NULL;

	if (kvs->cmd.state != KVSL_READY || kvs->cmd.ac == NULL)
		return -1;
	if (redisAsyncCommandArgv(kvs->cmd.ac, kvs_on_reply, call, argc, argv, argvlen) != REDIS_OK)
		return -1;
	call->deadline = uv_now(kvs->loop) + (uint64_t) kvs->command_timeout_ms;
	kvs_list_push(&kvs->pending, call);
	kvs->pending_bytes += call->bytes;
	if (was_empty)
		kvs_cmd_arm(kvs);
	return 0;
}

static KvsCall *
kvs_call_new(Kvs *kvs, KvsReplyFn cb, void *ud, size_t extra)
{
	KvsCall *call = calloc(1, sizeof(KvsCall) + extra);

	if (call == NULL)
		return NULL;
	call->kvs = kvs;
	call->cb = cb;
	call->ud = ud;
	return call;
}

/* Internal PING: its reply proves the server alive; a missing one trips the deadline. */
static void
kvs_on_ping_reply(void *ud, const redisReply *reply, const char *error)
{
	Kvs *kvs = ud;

	if (error != NULL && reply != NULL)
		log_warn("kvs: PING to %s answered %s", kvs->endpoint, error);
}

static void
kvs_on_load_reply(void *ud, const redisReply *reply, const char *error)
{
	Kvs *kvs = ud;

	if (error != NULL && reply != NULL)
		log_error("kvs: SCRIPT LOAD on %s refused: %s", kvs->endpoint, error);
}

static void
kvs_ping(Kvs *kvs)
{
	static const char *const argv[] = {"PING"};
	KvsCall					*call = kvs_call_new(kvs, kvs_on_ping_reply, kvs, 0);

	if (call == NULL)
		return;
	call->bytes = 4;
	if (kvs_submit(kvs, call, 1, (const char **) argv, NULL) != 0)
		free(call);
}

/* NOSCRIPT: SCRIPT LOAD, then the same EVALSHA again, back to back on the same connection, so
 * the retry runs after the load whatever else is in flight. */
static int
kvs_eval_retry(Kvs *kvs, KvsCall *call)
{
	const KvsScript *script = call->script;
	const char		*argv[3] = {"SCRIPT", "LOAD", script->source};
	size_t			 argvlen[3] = {6, 4, script->len};
	KvsCall			*load = kvs_call_new(kvs, kvs_on_load_reply, kvs, 0);

	if (load == NULL)
		return -1;
	load->bytes = script->len;
	if (kvs_submit(kvs, load, 3, argv, argvlen) != 0)
	{
		free(load);
		return -1;
	}
	call->retried = true;
	log_info("kvs: script %.12s... was not loaded on %s; loaded it", script->sha, kvs->endpoint);
	return kvs_submit(kvs, call, call->argc, call->argv, call->argvlen);
}

/* hiredis' reply callback for every call on the command link. Thread: loop, from hiredis'
 * read processing or from redisAsyncFree (reply NULL). */
static void
kvs_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	KvsCall	   *call = privdata;
	Kvs		   *kvs = call->kvs;
	redisReply *reply = r;
	const char *error;

	if (call->orphan)
	{
		free(call);
		return;
	}
	kvs_list_remove(&kvs->pending, call);
	kvs->pending_bytes -= call->bytes;
	if (reply == NULL)
	{
		kvs_fail(kvs, call, kvs->cmd.drop_reason != NULL ? kvs->cmd.drop_reason : kvs_err_lost);
		return;
	}
	if (kvs->cmd.state == KVSL_READY && kvs->cmd.ac == ac)
		kvs_cmd_arm(kvs);
	if (call->script != NULL && !call->retried && reply->type == REDIS_REPLY_ERROR &&
		reply->str != NULL && strncmp(reply->str, "NOSCRIPT", 8) == 0)
	{
		if (kvs_eval_retry(kvs, call) == 0)
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
kvs_link_ready(KvsLink *link)
{
	Kvs *kvs = link->kvs;

	link->state = KVSL_READY;
	link->attempt = 0;
	if (link->ever_ready)
		metrics_count(M_REDIS_RECONNECTS, 1);
	if (link->failures > 0)
		log_info("kvs: %s connection to %s ready after %u failed attempt%s", link->name,
				 kvs->endpoint, link->failures, link->failures == 1 ? "" : "s");
	else
		log_info("kvs: %s connection to %s ready", link->name, kvs->endpoint);
	link->ever_ready = true;
	link->failures = 0;
	if (link->subscriber)
		uv_timer_stop(&link->timer);
	else
		kvs_cmd_arm(kvs);
	kvs_update_state(kvs);
}

/* Forgets the link's context and frees it (see the hiredis rules at the top); stops a lookup. */
static void
kvs_link_release(KvsLink *link)
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
		for (int i = 0; i < link->kvs->nsubs; i++)
			link->kvs->subs[i]->confirmed = false;
}

/*
 * The one way into BACKOFF: drops the connection (calls in flight fail with call_error), logs
 * why, and schedules the next attempt. The first failure after a success is a warning; repeats
 * of an outage are debug lines, and kvs_link_ready says how many there were.
 */
static void
kvs_link_fail(KvsLink *link, const char *call_error, const char *fmt, ...)
{
	Kvs		*kvs = link->kvs;
	bool	 was_ready = link->state == KVSL_READY;
	char	 why[256];
	uint64_t delay;
	va_list	 ap;

	if (link->state == KVSL_CLOSED || link->state == KVSL_IDLE)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);

	link->drop_reason = call_error;
	kvs_link_release(link);
	link->state = KVSL_BACKOFF;
	delay = kvs_backoff_delay(kvs, link->attempt);
	if (link->attempt + 1 < KVS_BACKOFF_STEPS)
		link->attempt++;
	link->failures++;
	if (was_ready || link->failures == 1)
		log_warn("kvs: %s connection to %s %s: %s; retrying in %llu ms", link->name, kvs->endpoint,
				 was_ready ? "lost" : "failed", why, (unsigned long long) delay);
	else
		log_debug("kvs: %s connection to %s failed again (%u): %s; retrying in %llu ms", link->name,
				  kvs->endpoint, link->failures, why, (unsigned long long) delay);
	uv_timer_start(&link->timer, kvs_on_link_timer, delay, 0);
	kvs_update_state(kvs);
}

/* Connect callback. Thread: loop, from hiredis; must not free ac (see the top). */
static void
kvs_on_connect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *) cac;
	KvsLink			  *link = ac->data;

	if (link == NULL || link->ac != ac)
		return;
	if (status != REDIS_OK)
	{
		/* hiredis frees the context when this returns. */
		link->ac = NULL;
		ac->data = NULL;
		kvs_link_fail(link, kvs_err_down, "cannot connect: %s",
					  ac->errstr != NULL ? ac->errstr : "unknown error");
		return;
	}
	/* An idle connection to a vanished host is noticed within about 30 s. */
	if (redisEnableKeepAlive(&ac->c) != REDIS_OK)
		log_debug("kvs: %s connection: cannot enable TCP keepalive", link->name);
}

/* Disconnect callback: hiredis already failed the pending replies and frees ac after this.
 * Thread: loop, from hiredis. */
static void
kvs_on_disconnect(const redisAsyncContext *cac, int status)
{
	redisAsyncContext *ac = (redisAsyncContext *) cac;
	KvsLink			  *link = ac->data;

	if (link == NULL || link->ac != ac)
		return;
	link->ac = NULL;
	ac->data = NULL;
	kvs_link_fail(link, kvs_err_lost, "%s",
				  status == REDIS_OK || ac->errstr == NULL || ac->errstr[0] == '\0' ? "closed"
																					: ac->errstr);
}

static void kvs_on_sub_reply(redisAsyncContext *ac, void *r, void *privdata);

static int
kvs_send_subscribe(KvsLink *link, KvsSub *sub)
{
	const char *argv[2] = {"SUBSCRIBE", sub->channel};

	return redisAsyncCommandArgv(link->ac, kvs_on_sub_reply, sub, 2, argv, NULL) == REDIS_OK ? 0
																							 : -1;
}

/* Subscriber link, handshake done: one SUBSCRIBE per channel; READY when all are confirmed. */
static void
kvs_link_subscribe_all(KvsLink *link)
{
	Kvs *kvs = link->kvs;

	link->subscribing = true;
	link->handshake_left = 0;
	for (int i = 0; i < kvs->nsubs; i++)
	{
		kvs->subs[i]->confirmed = false;
		if (kvs_send_subscribe(link, kvs->subs[i]) != 0)
		{
			kvs_link_fail(link, kvs_err_down, "cannot send SUBSCRIBE");
			return;
		}
		link->handshake_left++;
	}
	if (link->handshake_left == 0)
		kvs_link_ready(link);
}

/* Replies to AUTH / SELECT / PING. Thread: loop, from hiredis. */
static void
kvs_on_handshake(redisAsyncContext *ac, void *r, void *privdata)
{
	KvsLink	   *link = privdata;
	redisReply *reply = r;

	if (reply == NULL || link->ac != ac || link->state != KVSL_CONNECTING)
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
		kvs_link_fail(link, kvs_err_down, "refused: %s%s", msg, hint);
		return;
	}
	if (--link->handshake_left > 0)
		return;
	if (link->subscriber)
		kvs_link_subscribe_all(link);
	else
		kvs_link_ready(link);
}

/* Subscription confirmations and messages. Thread: loop, from hiredis. */
static void
kvs_on_sub_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	KvsSub			 *sub = privdata;
	Kvs				 *kvs = sub->kvs;
	KvsLink			 *link = &kvs->sub;
	redisReply		 *reply = r;
	const redisReply *kind;

	if (reply == NULL || link->ac != ac)
		return;
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
		reply->element[0]->type != REDIS_REPLY_STRING)
	{
		log_debug("kvs: unexpected reply of type %d on the subscriber connection", reply->type);
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
		if (link->state == KVSL_CONNECTING && --link->handshake_left == 0)
			kvs_link_ready(link);
	}
}

/* Opens the connection to ip (a literal) and pipelines the handshake. */
static void
kvs_link_connect(KvsLink *link, const char *ip)
{
	Kvs				  *kvs = link->kvs;
	redisAsyncContext *ac;
	char			   db[16];
	const char		  *argv[3];
	int				   argc = 0;

	ac = redisAsyncConnect(ip, kvs->addr.port);
	if (ac == NULL)
	{
		kvs_link_fail(link, kvs_err_down, "out of memory");
		return;
	}
	if (ac->err)
	{
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr != NULL ? ac->errstr : "unknown error");
		redisAsyncFree(ac);
		kvs_link_fail(link, kvs_err_down, "cannot connect: %s", why);
		return;
	}
	if (redisLibuvAttach(ac, kvs->loop) != REDIS_OK)
	{
		/* The 0.14 adapter sets its hooks before it can fail; without its data they crash. */
		memset(&ac->ev, 0, sizeof(ac->ev));
		redisAsyncFree(ac);
		kvs_link_fail(link, kvs_err_down, "cannot attach the connection to the loop");
		return;
	}
	ac->data = link;
	link->ac = ac;
	link->state = KVSL_CONNECTING;
	link->handshake_left = 0;
	if (redisAsyncSetConnectCallback(ac, kvs_on_connect) != REDIS_OK ||
		redisAsyncSetDisconnectCallback(ac, kvs_on_disconnect) != REDIS_OK)
		goto fail;

	if (kvs->addr.password[0] != '\0')
	{
		argv[argc++] = "AUTH";
		if (kvs->addr.user[0] != '\0')
			argv[argc++] = kvs->addr.user;
		argv[argc++] = kvs->addr.password;
		if (redisAsyncCommandArgv(ac, kvs_on_handshake, link, argc, argv, NULL) != REDIS_OK)
			goto fail;
		link->handshake_left++;
	}
	if (!link->subscriber && kvs->addr.db != 0)
	{
		snprintf(db, sizeof(db), "%d", kvs->addr.db);
		argv[0] = "SELECT";
		argv[1] = db;
		if (redisAsyncCommandArgv(ac, kvs_on_handshake, link, 2, argv, NULL) != REDIS_OK)
			goto fail;
		link->handshake_left++;
	}
	argv[0] = "PING";
	if (redisAsyncCommandArgv(ac, kvs_on_handshake, link, 1, argv, NULL) != REDIS_OK)
		goto fail;
	link->handshake_left++;
	return;

fail:
	kvs_link_fail(link, kvs_err_down, "cannot queue the handshake");
}

/* Thread: loop (the lookup itself ran on the thread pool). */
static void
kvs_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	KvsLink				  *link = req->data;
	Kvs					  *kvs = link->kvs;
	const struct addrinfo *pick = NULL;

	if (link->resolving == req)
		link->resolving = NULL;
	free(req);
	if (kvs->destroying || link->state != KVSL_RESOLVING)
	{
		uv_freeaddrinfo(res);
		kvs_handle_closed(kvs); /* may free kvs */
		return;
	}
	kvs->open_handles--;
	if (status != 0)
	{
		kvs_link_fail(link, kvs_err_down, "cannot resolve %s: %s", kvs->addr.host,
					  uv_strerror(status));
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
		kvs_link_fail(link, kvs_err_down, "%s has no usable address", kvs->addr.host);
		return;
	}
	uv_freeaddrinfo(res);
	kvs_link_connect(link, link->ip);
}

static void
kvs_link_start(KvsLink *link)
{
	Kvs				 *kvs = link->kvs;
	uv_getaddrinfo_t *req;
	struct addrinfo	  hints;
	int				  rc;

	if (link->resolving != NULL)
	{
		/* A lookup of an earlier attempt is still running (uv_cancel could not stop it once it
		 * started): one at a time, so wait for it. */
		link->state = KVSL_BACKOFF;
		uv_timer_start(&link->timer, kvs_on_link_timer, KVS_RESOLVE_WAIT_MS, 0);
		return;
	}
	link->drop_reason = NULL;
	uv_timer_start(&link->timer, kvs_on_link_timer, (uint64_t) kvs->connect_timeout_ms, 0);
	if (kvs->numeric)
	{
		link->state = KVSL_CONNECTING;
		kvs_link_connect(link, kvs->addr.host);
		return;
	}
	req = malloc(sizeof(*req));
	if (req == NULL)
	{
		link->state = KVSL_RESOLVING;
		kvs_link_fail(link, kvs_err_down, "out of memory");
		return;
	}
	req->data = link;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	link->state = KVSL_RESOLVING;
	rc = uv_getaddrinfo(kvs->loop, req, kvs_on_resolved, kvs->addr.host, kvs->port_str, &hints);
	if (rc != 0)
	{
		free(req);
		kvs_link_fail(link, kvs_err_down, "cannot resolve %s: %s", kvs->addr.host, uv_strerror(rc));
		return;
	}
	link->resolving = req;
	kvs->open_handles++;
}

/* A command timed out: both links are reset (see the top). */
static void
kvs_cmd_timeout(Kvs *kvs)
{
	uint64_t late = uv_now(kvs->loop) - kvs->pending.head->deadline;

	log_warn("kvs: no reply from %s within %d ms (%zu command%s waiting)", kvs->endpoint,
			 kvs->command_timeout_ms + (int) (late < 1000000 ? late : 1000000), kvs->pending.count,
			 kvs->pending.count == 1 ? "" : "s");
	kvs_link_fail(&kvs->cmd, kvs_err_timeout, "command timed out");
	if (kvs->sub.state == KVSL_CONNECTING || kvs->sub.state == KVSL_READY)
		kvs_link_fail(&kvs->sub, kvs_err_down, "the command connection timed out");
}

/* Each link's timer; what it means depends on the state. Thread: loop. */
static void
kvs_on_link_timer(uv_timer_t *timer)
{
	KvsLink *link = timer->data;
	Kvs		*kvs = link->kvs;

	switch (link->state)
	{
		case KVSL_BACKOFF:
			kvs_link_start(link);
			break;
		case KVSL_RESOLVING:
		case KVSL_CONNECTING:
			kvs_link_fail(link, kvs_err_down, "no answer within %d ms", kvs->connect_timeout_ms);
			break;
		case KVSL_READY:
			if (link->subscriber)
				break;
			if (kvs->pending.head == NULL)
				kvs_ping(kvs);
			else if (kvs->pending.head->deadline <= uv_now(kvs->loop))
				kvs_cmd_timeout(kvs);
			else
				kvs_cmd_arm(kvs);
			break;
		case KVSL_IDLE:
		case KVSL_CLOSED:
			break;
	}
}

static void
kvs_link_init(Kvs *kvs, KvsLink *link, const char *name, bool subscriber)
{
	link->kvs = kvs;
	link->name = name;
	link->subscriber = subscriber;
	link->state = KVSL_IDLE;
	/* Cannot fail: libuv 1.44 only fills in the struct. */
	(void) uv_timer_init(kvs->loop, &link->timer);
	link->timer.data = link;
	kvs->open_handles++;
}

static void
kvs_link_close(KvsLink *link)
{
	link->state = KVSL_CLOSED;
	kvs_link_release(link);
	uv_timer_stop(&link->timer);
	link->timer.data = link->kvs;
	uv_close((uv_handle_t *) &link->timer, kvs_on_handle_closed);
}

/* ------------------------------------------------------------------------------------------ */
/* Public interface */

static int
kvs_option_ms(const char *name, int value, int fallback, int *out)
{
	if (value == 0)
		value = fallback;
	if (value < 1 || value > KVS_MAX_TIMEOUT_MS)
	{
		log_error("kvs: %s %d ms is out of range (1..%d)", name, value, KVS_MAX_TIMEOUT_MS);
		return -1;
	}
	*out = value;
	return 0;
}

Kvs *
kvs_create(uv_loop_t *loop, const KvsOptions *opts)
{
	Kvs		  *kvs;
	KvsAddress addr;
	char	   err[160];
	int		   connect_ms, command_ms;
	char	   probe[sizeof(struct in6_addr)];

	if (loop == NULL || opts == NULL)
	{
		log_error("kvs_create: no loop or no options");
		return NULL;
	}
	if (opts->url != NULL && opts->url[0] != '\0')
	{
		if (kvs_url_parse(opts->url, &addr, err, sizeof(err)) != 0)
		{
			log_error("kvs: bad redis URL: %s", err);
			return NULL;
		}
	}
	else
	{
		const char *host =
			opts->host != NULL && opts->host[0] != '\0' ? opts->host : KVS_DEFAULT_HOST;
		size_t len = strlen(host);

		memset(&addr, 0, sizeof(addr));
		if (len >= sizeof(addr.host) ||
			(!kvs_host_name_ok(host, len) && inet_pton(AF_INET6, host, probe) != 1))
		{
			log_error("kvs: bad redis host '%.64s' (a host name or IP address)", host);
			return NULL;
		}
		memcpy(addr.host, host, len + 1);
		addr.port = opts->port == 0 ? KVS_DEFAULT_PORT : opts->port;
		if (addr.port < 1 || addr.port > 65535)
		{
			log_error("kvs: bad redis port %d (1..65535)", opts->port);
			return NULL;
		}
	}
	if (kvs_option_ms("connect timeout", opts->connect_timeout_ms, KVS_DEFAULT_CONNECT_TIMEOUT_MS,
					  &connect_ms) != 0 ||
		kvs_option_ms("command timeout", opts->command_timeout_ms, KVS_DEFAULT_COMMAND_TIMEOUT_MS,
					  &command_ms) != 0)
		return NULL;
	if (opts->ping_interval_ms > KVS_MAX_TIMEOUT_MS || opts->max_pending < 0 ||
		opts->max_pending > KVS_MAX_PENDING)
	{
		log_error("kvs: ping interval %d ms or max pending %d out of range", opts->ping_interval_ms,
				  opts->max_pending);
		return NULL;
	}

	kvs = calloc(1, sizeof(*kvs));
	if (kvs == NULL)
	{
		log_error("kvs_create: out of memory");
		return NULL;
	}
	kvs->loop = loop;
	kvs->addr = addr;
	kvs->numeric =
		inet_pton(AF_INET, addr.host, probe) == 1 || inet_pton(AF_INET6, addr.host, probe) == 1;
	snprintf(kvs->endpoint, sizeof(kvs->endpoint),
			 strchr(addr.host, ':') ? "[%s]:%d/%d" : "%s:%d/%d", addr.host, addr.port, addr.db);
	snprintf(kvs->port_str, sizeof(kvs->port_str), "%d", addr.port);
	kvs->connect_timeout_ms = connect_ms;
	kvs->command_timeout_ms = command_ms;
	kvs->ping_interval_ms =
		opts->ping_interval_ms == 0 ? KVS_DEFAULT_PING_INTERVAL_MS : opts->ping_interval_ms;
	kvs->max_pending =
		opts->max_pending == 0 ? KVS_DEFAULT_MAX_PENDING : (size_t) opts->max_pending;
	kvs->max_pending_bytes =
		opts->max_pending_bytes == 0 ? KVS_DEFAULT_MAX_PENDING_BYTES : opts->max_pending_bytes;
	kvs->rng = uv_hrtime() ^ (uint64_t) (uintptr_t) kvs;
	if (kvs->rng == 0)
		kvs->rng = 0x9e3779b97f4a7c15ULL;

	kvs_link_init(kvs, &kvs->cmd, "command", false);
	kvs_link_init(kvs, &kvs->sub, "subscriber", true);
	(void) uv_idle_init(loop, &kvs->deliver); /* cannot fail, as uv_timer_init */
	kvs->deliver.data = kvs;
	kvs->open_handles++;
	metrics_gauge_set(G_REDIS_UP, 0);

	kvs->cmd.state = KVSL_BACKOFF;
	kvs_link_start(&kvs->cmd);
	return kvs;
}

void
kvs_destroy(Kvs *kvs)
{
	KvsCall *call;

	if (kvs == NULL || kvs->destroying)
		return;
	kvs->destroying = true;
	/* Contexts freed here fail their calls into the done list; one a callback of which is
	 * running is freed by hiredis when it returns, so its calls are still pending below. */
	kvs->cmd.drop_reason = kvs_err_shutdown;
	kvs_link_close(&kvs->cmd);
	kvs_link_close(&kvs->sub);
	while ((call = kvs->pending.head) != NULL)
	{
		kvs_list_remove(&kvs->pending, call);
		call->orphan = true; /* hiredis still holds it; kvs_on_reply frees it */
		call->cb(call->ud, NULL, kvs_err_shutdown);
	}
	kvs->pending_bytes = 0;
	while ((call = kvs->done.head) != NULL)
	{
		kvs_list_remove(&kvs->done, call);
		call->cb(call->ud, NULL, call->error);
		free(call);
	}
	if (kvs->up)
		metrics_gauge_set(G_REDIS_UP, 0);
	kvs->up = false;
	uv_idle_stop(&kvs->deliver);
	uv_close((uv_handle_t *) &kvs->deliver, kvs_on_handle_closed);
}

void
kvs_set_hooks(Kvs *kvs, const KvsHooks *hooks, void *ud)
{
	if (kvs == NULL)
		return;
	if (hooks != NULL)
		kvs->hooks = *hooks;
	else
		memset(&kvs->hooks, 0, sizeof(kvs->hooks));
	kvs->hooks_ud = ud;
	if (kvs_hooks_due(kvs))
		kvs_wake(kvs);
}

/* Argument checks shared by kvs_command and kvs_eval; sums the bytes. */
static int
kvs_check_args(const char *what, int argc, const char **argv, const size_t *argvlen, size_t *bytes)
{
	size_t total = 0;

	if (argc < 0 || argc > KVS_MAX_ARGS || (argc > 0 && argv == NULL))
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
kvs_forbidden_command(const char *name, size_t len, int argc, const char **argv,
					  const size_t *argvlen)
{
	for (size_t i = 0; i < sizeof(kvs_forbidden) / sizeof(kvs_forbidden[0]); i++)
		if (strlen(kvs_forbidden[i]) == len && strncasecmp(name, kvs_forbidden[i], len) == 0)
			return true;
	/* CLIENT REPLY OFF|SKIP would make replies and callbacks drift apart. */
	if (len == 6 && strncasecmp(name, "client", 6) == 0 && argc > 1 &&
		(argvlen != NULL ? argvlen[1] : strlen(argv[1])) == 5 &&
		strncasecmp(argv[1], "reply", 5) == 0)
		return true;
	return false;
}

/* Admission shared by kvs_command and kvs_eval: sends the call or queues its failure. */
static void
kvs_admit(Kvs *kvs, KvsCall *call, int argc, const char **argv, const size_t *argvlen)
{
	if (call->bytes > KVS_MAX_COMMAND_BYTES)
		kvs_fail(kvs, call, kvs_err_too_large);
	else if (kvs->cmd.state != KVSL_READY)
		kvs_fail(kvs, call, kvs_err_down);
	else if (kvs->pending.count >= kvs->max_pending ||
			 kvs->pending_bytes + call->bytes > kvs->max_pending_bytes)
		kvs_fail(kvs, call, kvs_err_busy);
	else if (kvs_submit(kvs, call, argc, argv, argvlen) != 0)
		kvs_fail(kvs, call, kvs_err_down);
}

int
kvs_command(Kvs *kvs, KvsReplyFn cb, void *ud, int argc, const char **argv, const size_t *argvlen)
{
	KvsCall *call;
	size_t	 bytes;

	if (kvs == NULL || cb == NULL || argc < 1)
	{
		log_error("kvs_command: no client, callback or command");
		return -1;
	}
	if (kvs_check_args("kvs_command", argc, argv, argvlen, &bytes) != 0)
		return -1;
	if (kvs_forbidden_command(argv[0], argvlen != NULL ? argvlen[0] : strlen(argv[0]), argc, argv,
							  argvlen))
	{
		log_error("kvs_command: %.32s is not allowed on the shared command connection", argv[0]);
		return -1;
	}
	if (kvs->destroying)
	{
		log_error("kvs_command: called during kvs_destroy");
		return -1;
	}
	call = kvs_call_new(kvs, cb, ud, 0);
	if (call == NULL)
	{
		log_error("kvs_command: out of memory");
		return -1;
	}
	call->bytes = bytes;
	kvs_admit(kvs, call, argc, argv, argvlen);
	return 0;
}

const KvsScript *
kvs_script(Kvs *kvs, const char *source)
{
	KvsScript	 *script;
	size_t		  len;
	unsigned char md[20];

	if (kvs == NULL || source == NULL || source[0] == '\0')
	{
		log_error("kvs_script: no client or empty source");
		return NULL;
	}
	len = strlen(source);
	for (int i = 0; i < kvs->nscripts; i++)
		if (kvs->scripts[i]->len == len && memcmp(kvs->scripts[i]->source, source, len) == 0)
			return kvs->scripts[i];
	if (len > KVS_MAX_SCRIPT_BYTES || kvs->nscripts == KVS_MAX_SCRIPTS)
	{
		log_error("kvs_script: source of %zu bytes, or more than %d scripts", len, KVS_MAX_SCRIPTS);
		return NULL;
	}
	script = malloc(sizeof(*script) + len + 1);
	if (script == NULL)
	{
		log_error("kvs_script: out of memory");
		return NULL;
	}
	memcpy(script->source, source, len + 1);
	script->len = len;
	/* EVALSHA names a script by the SHA-1 of its source, which Redis computes the same way. */
	lws_SHA1((const unsigned char *) source, len, md);
	for (int i = 0; i < 20; i++)
		snprintf(script->sha + 2 * i, 3, "%02x", md[i]);
	kvs->scripts[kvs->nscripts++] = script;
	return script;
}

const char *
kvs_script_sha(const KvsScript *script)
{
	return script != NULL ? script->sha : "";
}

int
kvs_eval(Kvs *kvs, const KvsScript *script, KvsReplyFn cb, void *ud, int nkeys, int argc,
		 const char **argv, const size_t *argvlen)
{
	KvsCall *call;
	size_t	 bytes, extra;
	int		 total;
	char	*pos;
	char	 nkeys_str[16];

	if (kvs == NULL || script == NULL || cb == NULL)
	{
		log_error("kvs_eval: no client, script or callback");
		return -1;
	}
	if (kvs_check_args("kvs_eval", argc, argv, argvlen, &bytes) != 0)
		return -1;
	if (nkeys < 0 || nkeys > argc)
	{
		log_error("kvs_eval: %d keys among %d arguments", nkeys, argc);
		return -1;
	}
	if (kvs->destroying)
	{
		log_error("kvs_eval: called during kvs_destroy");
		return -1;
	}
	snprintf(nkeys_str, sizeof(nkeys_str), "%d", nkeys);
	total = argc + 3;
	if (bytes > KVS_MAX_COMMAND_BYTES)
		extra = 0; /* refused below; no copy */
	else
		extra = (size_t) total * (sizeof(char *) + sizeof(size_t)) + bytes + argc +
				sizeof(script->sha) + strlen(nkeys_str) + 1;
	call = kvs_call_new(kvs, cb, ud, extra);
	if (call == NULL)
	{
		log_error("kvs_eval: out of memory");
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
	kvs_admit(kvs, call, call->argc, call->argv, call->argvlen);
	return 0;
}

int
kvs_subscribe(Kvs *kvs, const char *channel, KvsMessageFn fn, void *ud)
{
	KvsSub *sub;
	size_t	len;

	if (kvs == NULL || channel == NULL || fn == NULL || kvs->destroying)
	{
		log_error("kvs_subscribe: no client, channel or callback, or during kvs_destroy");
		return -1;
	}
	len = strlen(channel);
	if (len == 0 || len > KVS_MAX_CHANNEL)
	{
		log_error("kvs_subscribe: channel name of %zu bytes (1..%d)", len, KVS_MAX_CHANNEL);
		return -1;
	}
	for (int i = 0; i < kvs->nsubs; i++)
		if (strcmp(kvs->subs[i]->channel, channel) == 0)
		{
			log_error("kvs_subscribe: already subscribed to %s", channel);
			return -1;
		}
	if (kvs->nsubs == KVS_MAX_SUBSCRIPTIONS)
	{
		log_error("kvs_subscribe: more than %d channels", KVS_MAX_SUBSCRIPTIONS);
		return -1;
	}
	sub = calloc(1, sizeof(*sub) + len + 1);
	if (sub == NULL)
	{
		log_error("kvs_subscribe: out of memory");
		return -1;
	}
	sub->kvs = kvs;
	sub->fn = fn;
	sub->ud = ud;
	memcpy(sub->channel, channel, len + 1);
	kvs->subs[kvs->nsubs++] = sub;

	if (kvs->sub.state == KVSL_IDLE)
	{
		kvs->sub.state = KVSL_BACKOFF;
		kvs_link_start(&kvs->sub);
	}
	else if (kvs->sub.subscribing)
	{
		/* Handshake done on this connection: subscribe now; READY waits for it if not yet. */
		if (kvs_send_subscribe(&kvs->sub, sub) != 0)
			kvs_link_fail(&kvs->sub, kvs_err_down, "cannot send SUBSCRIBE");
		else if (kvs->sub.state == KVSL_CONNECTING)
			kvs->sub.handshake_left++;
	}
	/* Otherwise the connection's handshake subscribes every channel when it completes. */
	kvs_update_state(kvs);
	return 0;
}

int
kvs_is_up(const Kvs *kvs)
{
	return kvs != NULL && kvs->up ? 1 : 0;
}

const char *
kvs_endpoint(const Kvs *kvs)
{
	return kvs != NULL ? kvs->endpoint : "";
}

size_t
kvs_pending(const Kvs *kvs)
{
	return kvs != NULL ? kvs->pending.count : 0;
}
