/*
 * nats_source.c — the NATS presence source (nats.c 3.4.1 on the daemon's libuv loop).
 *
 * Threads. nats.c does its socket I/O and protocol parsing on the loop (the libuv adapter, whose
 * non-static symbols live in this file only: adapters/libuv.h is included here and nowhere
 * else), but it keeps threads of its own: timers (pings), connection events, reconnects.
 * Nothing of ours runs on them except four tiny callbacks (disconnected, reconnected, closed,
 * async error), which only record what happened in the static link below and wake the loop
 * with uv_async_send. The loop then asks nats.c for the truth (natsConnection_Status) instead
 * of trusting the order in which the wake-ups were coalesced.
 *
 * Delivery is single-threaded: a synchronous queue subscription (natsConnection_
 * QueueSubscribeSync on "peer.>"). Messages are parsed into it by natsConnection_
 * ProcessReadEvent, which the adapter calls on the loop in the poll phase; a uv_check handle
 * then takes them with natsSubscription_NextMsg(&m, sub, 0), which never waits. At most
 * NATS_SOURCE_BATCH per loop turn, so a flood cannot stall the loop: when more are left, an idle
 * handle keeps the next poll from blocking, and the rest goes on the next turn. The backlog is
 * bounded by the subscription's pending limits; beyond them nats.c drops messages and counts
 * them (M_NATS_DROPPED). (The other option doc/event-loop.md names — an async subscription whose
 * delivery thread fills a mutex-protected queue drained after uv_async_send — would add a thread
 * hop per message and a second queue to bound, for nothing.)
 *
 * Connecting. natsConnection_Connect handshakes blocking on the calling thread, and the first
 * attach of the libuv adapter must happen on the loop thread, so the connect runs on the loop,
 * bounded by a short natsOptions_SetTimeout (a one-second budget shared by the servers of the list,
 * at least 250 ms each). RetryOnFailedConnect is not used (it freezes the loop or hangs,
 * doc/event-loop.md): a failed connect is retried from a uv_timer with backoff and jitter. Before
 * each attempt every server's host name is resolved off the loop (uv_getaddrinfo on libuv's thread
 * pool), and only servers whose name resolved are handed to nats.c; so a DNS outage costs the loop
 * nothing, and the lookup nats.c repeats inside Connect is for a name that has just answered. Once
 * connected, nats.c reconnects by itself on its own thread, forever, with the same backoff table
 * (natsOptions_SetCustomReconnectDelay); the subscription survives reconnects. Should nats.c ever
 * close the connection for good, the closed callback brings us back to the timer.
 *
 * The link. nats.c may call back after a connection was closed or after nats_source_destroy. The
 * callbacks get the connection's generation as closure and touch only the static link (never a
 * NatsSource): a callback for a generation that is no longer current is dropped, and once the
 * NatsSource is gone there is no async handle to wake. Hence at most one NatsSource per process.
 */
#include "presence/nats_source.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>
#include <nats/adapters/libuv.h>

#include "decentraland/kernel/comms/v3/comms.pb-c.h"
#include "lib/address.h"
#include "lib/backoff.h"
#include "main/log.h"
#include "main/metrics.h"

#define NATS_SOURCE_SUBJECT "peer.>"
/*
 * natsConnection_Connect tries every server in turn, each bounded by the options' timeout
 * (TCP connect + INFO + CONNECT/PING/PONG). The budget is shared among the servers, so a
 * blackholed cluster holds the loop about a second per attempt, never less than the floor per
 * server.
 */
#define NATS_SOURCE_CONNECT_BUDGET_MS 1000
#define NATS_SOURCE_CONNECT_MIN_TIMEOUT_MS 250
/* A dead server is noticed after about PING_INTERVAL * (MAX_PINGS_OUT + 1). */
#define NATS_SOURCE_PING_INTERVAL_MS 10000
#define NATS_SOURCE_MAX_PINGS_OUT 2
/* Messages taken from the subscription per loop turn. */
#define NATS_SOURCE_BATCH 256
/* What nats.c may hold for us before it drops (slow consumer): bounded memory. */
#define NATS_SOURCE_PENDING_MSGS 65536
#define NATS_SOURCE_PENDING_BYTES (64 * 1024 * 1024)
/* A real heartbeat is a few dozen bytes; anything this large is junk. */
#define NATS_SOURCE_HEARTBEAT_MAX 4096
#define NATS_SOURCE_MAX_SERVERS 16
#define NATS_SOURCE_URL_MAX 512
/* Async errors (slow consumer, permissions) are logged at most this often. */
#define NATS_SOURCE_ERROR_LOG_MS 10000

/* Reconnect delays in ms, equal jitter: between half and all of the entry. */
static const uint32_t	  nats_source_backoff_ms[] = {250, 500, 1000, 2000, 5000, 10000, 30000};
static const BackoffTable nats_source_backoff_table =
	BACKOFF_TABLE(nats_source_backoff_ms, BACKOFF_JITTER_EQUAL);

enum
{
	NATS_SOURCE_LINK_DISCONNECTED = 1 << 0,
	NATS_SOURCE_LINK_RECONNECTED = 1 << 1,
	NATS_SOURCE_LINK_CLOSED = 1 << 2,
	NATS_SOURCE_LINK_ERROR = 1 << 3,
};

/* Shared with nats.c's threads; every field under lock. */
static struct
{
	pthread_mutex_t lock;
	uv_async_t	   *wake;		/* NULL when no NatsSource exists */
	uintptr_t		generation; /* of the current connection; 0: none */
	unsigned		pending;	/* NATS_SOURCE_LINK_* */
	natsStatus		error;		/* the last async error */
} nats_source_link = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef struct NatsSourceServer
{
	char			   url[NATS_SOURCE_URL_MAX];  /* as configured: may carry user:password@ */
	char			   host[NATS_SOURCE_URL_MAX]; /* the name to resolve; "" when numeric */
	uv_getaddrinfo_t   req;
	bool			   resolving;
	bool			   resolved;
	struct NatsSource *owner;
} NatsSourceServer;

struct NatsSource
{
	uv_loop_t		 *loop;
	char			  queue_group[NATS_SOURCE_QUEUE_GROUP_MAX];
	NatsSourceServer  servers[NATS_SOURCE_MAX_SERVERS];
	size_t			  server_count;
	size_t			  resolving; /* lookups in flight for this attempt */
	natsConnection	 *nc;		 /* owned; NULL while not connected */
	natsSubscription *sub;		 /* owned */
	uintptr_t		  generation;
	size_t			  attempt; /* failed attempts in a row: index into the backoff table */
	bool			  connected;
	bool			  closing;
	int64_t			  dropped_seen; /* natsSubscription_GetDropped already counted */
	uint64_t		  error_logged_at;
	natsStatus		  error_logged;
	uv_timer_t		  retry;
	uv_check_t		  drain;
	uv_idle_t		  backlog; /* active while messages are left after a batch */
	uv_async_t		  wake;
	unsigned		  refs; /* handles and lookups still to come back after nats_source_destroy */
};

/* ---- Pure parts ---- */

NatsSourceEvent
nats_source_parse_subject(const char *subject, char address[ADDRESS_LEN + 1])
{
	static const struct
	{
		const char	   *suffix;
		NatsSourceEvent event;
	} events[] = {
		{"heartbeat", NATS_SOURCE_HEARTBEAT},	  {"world.join", NATS_SOURCE_WORLD_JOIN},
		{"disconnect", NATS_SOURCE_DISCONNECT},	  {"connect", NATS_SOURCE_CONNECT},
		{"world.leave", NATS_SOURCE_WORLD_LEAVE},
	};
	const char *a;

	if (!subject || strncmp(subject, "peer.0x", 7) != 0)
		return NATS_SOURCE_JUNK;
	a = subject + 5;
	/* Stops at the terminating NUL of a short subject: '\0' is not a hex digit. */
	if (!address_hex(a, false))
		return NATS_SOURCE_JUNK;
	if (a[ADDRESS_LEN] != '.')
		return NATS_SOURCE_JUNK;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
	{
		if (strcmp(a + ADDRESS_LEN + 1, events[i].suffix) != 0)
			continue;
		address_lower(a, address);
		return events[i].event;
	}
	return NATS_SOURCE_JUNK;
}

bool
nats_source_event_online(NatsSourceEvent ev)
{
	return ev == NATS_SOURCE_HEARTBEAT || ev == NATS_SOURCE_WORLD_JOIN;
}

int
nats_source_parcel(float metres, int32_t *parcel)
{
	/* Dividing by a power of two is exact, so this is floor(x / 16) of the float itself. */
	double q = floor((double) metres / 16.0);

	if (!isfinite(q) || q < (double) INT32_MIN || q > (double) INT32_MAX)
		return -1;
	*parcel = (int32_t) q;
	return 0;
}

/* A room name is stored and shown to friends: keep it short and plain. */
static bool
nats_source_room_ok(const char *room)
{
	size_t n = 0;

	for (; room[n]; n++)
		if (n >= NATS_SOURCE_ROOM_MAX || room[n] < 0x20 || room[n] > 0x7e)
			return false;
	return n > 0;
}

int
nats_source_decode_heartbeat(const uint8_t *data, size_t len, PresenceDetail *detail, char *room,
							 size_t room_size)
{
	Decentraland__Kernel__Comms__V3__Heartbeat *hb;

	memset(detail, 0, sizeof(*detail));
	if (len > NATS_SOURCE_HEARTBEAT_MAX || (len > 0 && !data))
		return -1;
	hb = decentraland__kernel__comms__v3__heartbeat__unpack(NULL, len, data);
	if (!hb)
		return -1;
	if (hb->position && nats_source_parcel(hb->position->x, &detail->parcel_x) == 0 &&
		nats_source_parcel(hb->position->z, &detail->parcel_y) == 0)
		detail->has_parcel = true;
	else
		detail->parcel_x = detail->parcel_y = 0;
	if (hb->_desired_room_case ==
			DECENTRALAND__KERNEL__COMMS__V3__HEARTBEAT___DESIRED_ROOM_DESIRED_ROOM &&
		hb->desired_room && room_size > NATS_SOURCE_ROOM_MAX &&
		nats_source_room_ok(hb->desired_room))
	{
		strcpy(room,
			   hb->desired_room); /* fits: nats_source_room_ok bounds it by NATS_SOURCE_ROOM_MAX */
		detail->desired_room = room;
	}
	decentraland__kernel__comms__v3__heartbeat__free_unpacked(hb, NULL);
	return detail->has_parcel || detail->desired_room ? 1 : 0;
}

/* xorshift64 per thread (nats.c calls the reconnect delay on its own thread): jitter only. */
static uint32_t
nats_source_random(void)
{
	static __thread uint64_t s;

	if (s == 0)
		s = (uv_hrtime() ^ (uint64_t) (uintptr_t) &s) | 1;
	return (uint32_t) (backoff_random(&s) >> 32);
}

static uint64_t
nats_source_backoff(size_t attempt)
{
	return backoff_delay_ms(&nats_source_backoff_table, attempt, nats_source_random());
}

/*
 * The host of one configured URL ("nats://user:pw@host:4222", "host:4222", "tls://[::1]:4222"),
 * into host; "" when it is a numeric address (nothing to resolve). -1 when there is no host.
 */
static int
nats_source_url_host(const char *url, char *host, size_t size)
{
	const char *p = strstr(url, "://");
	const char *end;
	const char *at;
	size_t		n;
	char		probe[64];
	uint8_t		addr[16];

	p = p ? p + 3 : url;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t) (end - p));
	while (at && memchr(at + 1, '@', (size_t) (end - at - 1)))
		at = memchr(at + 1, '@', (size_t) (end - at - 1));
	if (at)
		p = at + 1;
	if (*p == '[')
	{
		const char *close = memchr(p, ']', (size_t) (end - p));

		if (!close || close == p + 1)
			return -1;
		host[0] = '\0'; /* a bracketed address is an IPv6 literal */
		return 0;
	}
	n = strcspn(p, ":/?#");
	if (n == 0 || n >= size)
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	if (n < sizeof(probe))
	{
		memcpy(probe, p, n);
		probe[n] = '\0';
		if (inet_pton(AF_INET, probe, addr) == 1 || inet_pton(AF_INET6, probe, addr) == 1)
			host[0] = '\0';
	}
	return 0;
}

/* The URL without user:password@, for logs. */
static void
nats_source_url_display(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://");
	const char *rest = scheme ? scheme + 3 : url;
	const char *end = rest + strcspn(rest, "/?#");
	const char *at = NULL;

	for (const char *q = rest; q < end; q++)
		if (*q == '@')
			at = q;
	if (!at)
	{
		snprintf(out, size, "%s", url);
		return;
	}
	snprintf(out, size, "%.*s%s", scheme ? (int) (rest - url) : 0, url, at + 1);
}

/* ---- nats.c's threads ---- */

static void
nats_source_link_post(void *closure, unsigned what, natsStatus err)
{
	pthread_mutex_lock(&nats_source_link.lock);
	if (nats_source_link.wake && nats_source_link.generation != 0 &&
		nats_source_link.generation == (uintptr_t) closure)
	{
		nats_source_link.pending |= what;
		if (what & NATS_SOURCE_LINK_ERROR)
			nats_source_link.error = err;
		uv_async_send(nats_source_link.wake);
	}
	pthread_mutex_unlock(&nats_source_link.lock);
}

/* nats.c connection-event thread. */
static void
nats_source_on_disconnected(natsConnection *nc, void *closure)
{
	nats_source_link_post(closure, NATS_SOURCE_LINK_DISCONNECTED, NATS_OK);
}

/* nats.c connection-event thread. */
static void
nats_source_on_reconnected(natsConnection *nc, void *closure)
{
	nats_source_link_post(closure, NATS_SOURCE_LINK_RECONNECTED, NATS_OK);
}

/* nats.c connection-event thread. */
static void
nats_source_on_closed(natsConnection *nc, void *closure)
{
	nats_source_link_post(closure, NATS_SOURCE_LINK_CLOSED, NATS_OK);
}

/* nats.c thread (slow consumer, permission violation, ...). */
static void
nats_source_on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	nats_source_link_post(closure, NATS_SOURCE_LINK_ERROR, err);
}

/* nats.c reconnect thread, after every server of the list failed once more. */
static int64_t
nats_source_reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	return (int64_t) nats_source_backoff(attempts > 0 ? (size_t) attempts - 1 : 0);
}

/* ---- The loop thread ---- */

static void nats_source_start_attempt(NatsSource *p);

/* One reference per open handle; the last close callback frees (libuv's rule, which every
 * handle owner here follows the same way). */
static void
nats_source_unref(NatsSource *p)
{
	if (--p->refs == 0)
		free(p);
}

static void
nats_source_on_handle_closed(uv_handle_t *h)
{
	nats_source_unref(h->data);
}

static void
nats_source_set_connected(NatsSource *p, bool up)
{
	p->connected = up;
	metrics_gauge_set(G_NATS_UP, up ? 1 : 0);
}

/*
 * Close first, then destroy the subscription: destroying it first would queue an UNSUB, and a
 * public close with unsent output waits up to 500 ms for a flush that only this (the loop)
 * thread could perform. Closing detaches from the loop; the adapter closes its handles as the
 * loop runs on. Either may be NULL.
 */
static void
nats_source_close(natsConnection *nc, natsSubscription *sub)
{
	if (nc)
		natsConnection_Close(nc);
	natsSubscription_Destroy(sub);
	natsConnection_Destroy(nc);
}

/* Forgets the current connection: its callbacks are ignored from here on. */
static void
nats_source_drop(NatsSource *p)
{
	pthread_mutex_lock(&nats_source_link.lock);
	nats_source_link.generation = 0;
	nats_source_link.pending = 0;
	pthread_mutex_unlock(&nats_source_link.lock);
	uv_idle_stop(&p->backlog);
	nats_source_close(p->nc, p->sub);
	p->nc = NULL;
	p->sub = NULL;
	if (p->connected)
		nats_source_set_connected(p, false);
}

static void
nats_source_on_retry(uv_timer_t *t)
{
	nats_source_start_attempt(t->data);
}

/* Arms the retry timer; returns the delay, for the caller's log line. */
static uint64_t
nats_source_schedule(NatsSource *p)
{
	uint64_t delay = nats_source_backoff(p->attempt);

	p->attempt = backoff_next_attempt(&nats_source_backoff_table, p->attempt);
	uv_timer_start(&p->retry, nats_source_on_retry, delay, 0);
	return delay;
}

/* One line per failed attempt: what failed, nats.c's words for it, and when we try again. */
static void
nats_source_fail(NatsSource *p, const char *what, natsStatus s)
{
	const char *text = s != NATS_OK ? natsStatus_GetText(s) : NULL;
	const char *detail = s != NATS_OK ? nats_GetLastError(NULL) : NULL;
	uint64_t	delay = nats_source_schedule(p);

	/* nats.c prefixes its last error with "(file.c:line): ", which tells an operator nothing. */
	if (detail && detail[0] == '(' && strstr(detail, "): "))
		detail = strstr(detail, "): ") + 3;
	if (detail && (!*detail || strcmp(detail, text) == 0))
		detail = NULL;
	log_warn("nats: %s%s%s%s%s; retrying in %llu ms", what, text ? ": " : "", text ? text : "",
			 detail ? ": " : "", detail ? detail : "", (unsigned long long) delay);
}

/* All lookups of this attempt are back: connect to the servers whose names resolved. */
static void
nats_source_connect(NatsSource *p)
{
	const char		 *urls[NATS_SOURCE_MAX_SERVERS];
	int				  n = 0;
	natsOptions		 *o = NULL;
	natsConnection	 *nc = NULL;
	natsSubscription *sub = NULL;
	natsStatus		  s;
	void			 *closure;
	const char		 *what = NULL;
	char			  url[NATS_SOURCE_URL_MAX];
	char			  shown[NATS_SOURCE_URL_MAX];

	for (size_t i = 0; i < p->server_count; i++)
		if (p->servers[i].resolved)
			urls[n++] = p->servers[i].url;
	if (n == 0)
	{
		nats_source_fail(p, "no server name in NATS_URL resolved", NATS_OK);
		return;
	}

	p->generation++;
	closure = (void *) p->generation;
	pthread_mutex_lock(&nats_source_link.lock);
	nats_source_link.generation = p->generation;
	nats_source_link.pending = 0;
	pthread_mutex_unlock(&nats_source_link.lock);

	s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetServers(o, urls, n);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "sociald");
	if (s == NATS_OK)
		s = natsOptions_SetEventLoop(o, p->loop, natsLibuv_Attach, natsLibuv_Read, natsLibuv_Write,
									 natsLibuv_Detach);
	/* No flusher thread: what we write (SUB, PONG) goes out at once from the loop. */
	if (s == NATS_OK)
		s = natsOptions_SetSendAsap(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, NATS_SOURCE_CONNECT_BUDGET_MS / n >
											  NATS_SOURCE_CONNECT_MIN_TIMEOUT_MS
										  ? NATS_SOURCE_CONNECT_BUDGET_MS / n
										  : NATS_SOURCE_CONNECT_MIN_TIMEOUT_MS);
	if (s == NATS_OK)
		s = natsOptions_SetPingInterval(o, NATS_SOURCE_PING_INTERVAL_MS);
	if (s == NATS_OK)
		s = natsOptions_SetMaxPingsOut(o, NATS_SOURCE_MAX_PINGS_OUT);
	if (s == NATS_OK)
		s = natsOptions_SetAllowReconnect(o, true);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1); /* forever: NATS down is never final */
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(o, nats_source_reconnect_delay, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(o, nats_source_on_disconnected, closure);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(o, nats_source_on_reconnected, closure);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(o, nats_source_on_closed, closure);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(o, nats_source_on_error, closure);
	if (s != NATS_OK)
	{
		what = "cannot set up the connection options";
		goto fail;
	}

	s = natsConnection_Connect(&nc, o);
	if (s != NATS_OK)
	{
		what = "cannot connect";
		goto fail;
	}
	s = natsConnection_QueueSubscribeSync(&sub, nc, NATS_SOURCE_SUBJECT, p->queue_group);
	if (s == NATS_OK)
		s = natsSubscription_SetPendingLimits(sub, NATS_SOURCE_PENDING_MSGS,
											  NATS_SOURCE_PENDING_BYTES);
	if (s != NATS_OK)
	{
		what = "cannot subscribe to " NATS_SOURCE_SUBJECT;
		goto fail;
	}
	natsOptions_Destroy(o);

	p->nc = nc;
	p->sub = sub;
	p->attempt = 0;
	p->dropped_seen = 0;
	nats_source_set_connected(p, true);
	url[0] = '\0';
	if (natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		url[0] = '\0';
	nats_source_url_display(url, shown, sizeof(shown));
	log_info("nats: connected to %s, subscribed to " NATS_SOURCE_SUBJECT " in queue group %s",
			 shown, p->queue_group);
	return;

fail:
	/* Taken before the cleanup below can overwrite this thread's last nats.c error. */
	nats_source_fail(p, what, s);
	pthread_mutex_lock(&nats_source_link.lock);
	nats_source_link.generation = 0;
	pthread_mutex_unlock(&nats_source_link.lock);
	nats_source_close(nc, sub);
	natsOptions_Destroy(o);
}

/* libuv thread pool → loop thread: one server's name lookup is back. */
static void
nats_source_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	NatsSourceServer *srv = req->data;
	NatsSource		 *p = srv->owner;

	uv_freeaddrinfo(res);
	srv->resolving = false;
	if (p->closing)
	{
		nats_source_unref(p);
		return;
	}
	p->refs--; /* never the last: the handles hold their own references */
	srv->resolved = status == 0;
	if (status != 0)
		log_warn("nats: cannot resolve %s: %s", srv->host, uv_strerror(status));
	if (--p->resolving == 0)
		nats_source_connect(p);
}

static void
nats_source_start_attempt(NatsSource *p)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

	p->resolving = 1; /* held until every lookup is started */
	for (size_t i = 0; i < p->server_count; i++)
	{
		NatsSourceServer *srv = &p->servers[i];

		srv->resolved = srv->host[0] == '\0';
		if (srv->resolved)
			continue;
		srv->req.data = srv;
		if (uv_getaddrinfo(p->loop, &srv->req, nats_source_on_resolved, srv->host, NULL, &hints) !=
			0)
		{
			log_warn("nats: cannot start resolving %s", srv->host);
			continue;
		}
		srv->resolving = true;
		p->resolving++;
		p->refs++;
	}
	if (--p->resolving == 0)
		nats_source_connect(p);
}

static void
nats_source_count_dropped(NatsSource *p)
{
	int64_t dropped = 0;

	if (natsSubscription_GetDropped(p->sub, &dropped) == NATS_OK && dropped > p->dropped_seen)
	{
		metrics_count(M_NATS_DROPPED, (uint64_t) (dropped - p->dropped_seen));
		p->dropped_seen = dropped;
	}
}

/* Safe to log: subjects from the wire may hold any byte. */
static void
nats_source_printable(const char *in, char *out, size_t size)
{
	size_t n = 0;

	for (; in[n] && n + 1 < size; n++)
		out[n] = in[n] >= 0x20 && in[n] < 0x7f ? in[n] : '?';
	out[n] = '\0';
}

static void
nats_source_handle(natsMsg *m)
{
	const char	   *subject = natsMsg_GetSubject(m);
	char			address[ADDRESS_LEN + 1];
	char			room[NATS_SOURCE_ROOM_MAX + 1];
	PresenceDetail	detail;
	NatsSourceEvent ev = nats_source_parse_subject(subject, address);
	int				rc;

	metrics_count(M_NATS_MESSAGES, 1);
	switch (ev)
	{
		case NATS_SOURCE_JUNK:
		{
			char shown[96];

			metrics_count(M_NATS_JUNK_SUBJECTS, 1);
			if (log_level >= LOG_LEVEL_DEBUG)
			{
				nats_source_printable(subject ? subject : "", shown, sizeof(shown));
				log_debug("nats: ignoring subject %s", shown);
			}
			return;
		}
		case NATS_SOURCE_HEARTBEAT:
			rc = nats_source_decode_heartbeat((const uint8_t *) natsMsg_GetData(m),
											  (size_t) natsMsg_GetDataLength(m), &detail, room,
											  sizeof(room));
			if (rc < 0)
				metrics_count(M_NATS_BAD_HEARTBEATS, 1);
			presence_seen(PRESENCE_SOURCE_NATS, address, rc > 0 ? &detail : NULL);
			return;
		case NATS_SOURCE_WORLD_JOIN:
			presence_seen(PRESENCE_SOURCE_NATS, address, NULL);
			return;
		case NATS_SOURCE_DISCONNECT:
		case NATS_SOURCE_CONNECT:
		case NATS_SOURCE_WORLD_LEAVE:
			presence_gone(PRESENCE_SOURCE_NATS, address);
			return;
	}
}

/* Loop thread. Nothing to do: an active idle handle only keeps the next poll from blocking. */
static void
nats_source_on_backlog(uv_idle_t *h)
{
}

/* Loop thread, after every poll phase: take at most one batch from the subscription. */
static void
nats_source_on_drain(uv_check_t *h)
{
	NatsSource *p = h->data;
	int			pending = 0;
	natsMsg	   *m;
	natsStatus	s;
	int			n;

	if (!p->sub || natsSubscription_GetPending(p->sub, &pending, NULL) != NATS_OK || pending <= 0)
	{
		uv_idle_stop(&p->backlog);
		return;
	}
	for (n = 0; n < NATS_SOURCE_BATCH && n < pending; n++)
	{
		m = NULL;
		s = natsSubscription_NextMsg(&m, p->sub, 0);
		if (s == NATS_SLOW_CONSUMER)
		{
			/* Reported once per episode; the messages that follow are still there. */
			nats_source_count_dropped(p);
			s = natsSubscription_NextMsg(&m, p->sub, 0);
		}
		if (s != NATS_OK || !m)
			break;
		nats_source_handle(m);
		natsMsg_Destroy(m);
		/* presence_* never closes us, but nats_source_destroy from a callback must stay safe. */
		if (p->closing || !p->sub)
			return;
	}
	if (n == NATS_SOURCE_BATCH && pending > NATS_SOURCE_BATCH)
		uv_idle_start(&p->backlog, nats_source_on_backlog);
	else
		uv_idle_stop(&p->backlog);
}

/* Loop thread: nats.c's threads said something happened to the current connection. */
static void
nats_source_on_wake(uv_async_t *h)
{
	NatsSource *p = h->data;
	unsigned	what;
	natsStatus	err;
	uint64_t	now = uv_now(p->loop);

	pthread_mutex_lock(&nats_source_link.lock);
	what = nats_source_link.pending;
	err = nats_source_link.error;
	nats_source_link.pending = 0;
	pthread_mutex_unlock(&nats_source_link.lock);
	if (!p->nc || p->closing)
		return;

	if (what & NATS_SOURCE_LINK_ERROR)
	{
		if (err == NATS_SLOW_CONSUMER && p->sub)
			nats_source_count_dropped(p);
		if (err != p->error_logged || now - p->error_logged_at >= NATS_SOURCE_ERROR_LOG_MS)
		{
			log_warn("nats: %s", natsStatus_GetText(err));
			p->error_logged = err;
			p->error_logged_at = now;
		}
	}
	if (what & NATS_SOURCE_LINK_CLOSED)
	{
		nats_source_drop(p);
		nats_source_fail(p, "the connection was closed", NATS_OK);
		return;
	}
	if (what & (NATS_SOURCE_LINK_DISCONNECTED | NATS_SOURCE_LINK_RECONNECTED))
	{
		bool up = natsConnection_Status(p->nc) == NATS_CONN_STATUS_CONNECTED;

		if (what & NATS_SOURCE_LINK_RECONNECTED)
			metrics_count(M_NATS_RECONNECTS, 1);
		if (up != p->connected)
		{
			if (up)
				log_info("nats: reconnected");
			else
				log_warn("nats: disconnected; reconnecting with backoff");
			nats_source_set_connected(p, up);
		}
	}
}

/* NATS_URL: servers separated by commas, blanks around them ignored. */
static int
nats_source_parse_servers(NatsSource *p, const char *list)
{
	const char *s = list;

	while (*s)
	{
		size_t			  n;
		NatsSourceServer *srv;

		s += strspn(s, " \t,");
		n = strcspn(s, ",");
		while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
			n--;
		if (n == 0)
		{
			s += strcspn(s, ",");
			continue;
		}
		if (p->server_count == NATS_SOURCE_MAX_SERVERS)
		{
			log_error("nats: NATS_URL lists more than %d servers", NATS_SOURCE_MAX_SERVERS);
			return -1;
		}
		if (n >= NATS_SOURCE_URL_MAX)
		{
			log_error("nats: a server URL in NATS_URL is longer than %d bytes",
					  NATS_SOURCE_URL_MAX - 1);
			return -1;
		}
		srv = &p->servers[p->server_count];
		memcpy(srv->url, s, n);
		srv->url[n] = '\0';
		srv->owner = p;
		if (nats_source_url_host(srv->url, srv->host, sizeof(srv->host)) != 0)
		{
			char shown[NATS_SOURCE_URL_MAX];

			nats_source_url_display(srv->url, shown, sizeof(shown));
			log_error("nats: no host in NATS_URL server %s", shown);
			return -1;
		}
		p->server_count++;
		s += strcspn(s, ",");
	}
	if (p->server_count == 0)
	{
		log_error("nats: NATS_URL is empty");
		return -1;
	}
	return 0;
}

NatsSource *
nats_source_create(uv_loop_t *loop, const NatsSourceOptions *opts)
{
	NatsSource *p;
	bool		taken;

	pthread_mutex_lock(&nats_source_link.lock);
	taken = nats_source_link.wake != NULL;
	pthread_mutex_unlock(&nats_source_link.lock);
	if (taken)
	{
		log_error("nats: a NATS source already exists");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
	{
		log_error("nats: out of memory");
		return NULL;
	}
	p->loop = loop;
	if (nats_source_parse_servers(p, opts->url) != 0)
	{
		free(p);
		return NULL;
	}
	snprintf(p->queue_group, sizeof(p->queue_group), "%s", opts->queue_group);

	/* The adapter must know which thread runs the loop: this one. */
	natsLibuv_Init();
	natsLibuv_SetThreadLocalLoop(loop);

	uv_timer_init(loop, &p->retry);
	uv_check_init(loop, &p->drain);
	uv_idle_init(loop, &p->backlog);
	uv_async_init(loop, &p->wake, nats_source_on_wake);
	p->retry.data = p->drain.data = p->backlog.data = p->wake.data = p;
	uv_check_start(&p->drain, nats_source_on_drain);
	/* The check must not keep a stopping loop alive by itself. */
	uv_unref((uv_handle_t *) &p->drain);
	uv_unref((uv_handle_t *) &p->wake);
	p->refs = 4; /* the four handles, released in their close callbacks */

	pthread_mutex_lock(&nats_source_link.lock);
	nats_source_link.wake = &p->wake;
	nats_source_link.generation = 0;
	nats_source_link.pending = 0;
	pthread_mutex_unlock(&nats_source_link.lock);
	metrics_gauge_set(G_NATS_UP, 0);

	/* The first attempt runs from the loop, so create never blocks. */
	uv_timer_start(&p->retry, nats_source_on_retry, 0, 0);
	return p;
}

void
nats_source_destroy(NatsSource *p)
{
	if (!p || p->closing)
		return;
	pthread_mutex_lock(&nats_source_link.lock);
	nats_source_link.wake = NULL;
	pthread_mutex_unlock(&nats_source_link.lock);
	nats_source_drop(p);
	p->closing = true;
	for (size_t i = 0; i < p->server_count; i++)
		if (p->servers[i].resolving)
			uv_cancel((uv_req_t *) &p->servers[i].req); /* its callback still comes back */
	uv_close((uv_handle_t *) &p->retry, nats_source_on_handle_closed);
	uv_close((uv_handle_t *) &p->drain, nats_source_on_handle_closed);
	uv_close((uv_handle_t *) &p->backlog, nats_source_on_handle_closed);
	uv_close((uv_handle_t *) &p->wake, nats_source_on_handle_closed);
	log_info("nats: source stopped");
}

bool
nats_source_connected(const NatsSource *p)
{
	return p && p->connected;
}
