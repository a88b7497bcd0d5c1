/*
 * pgl.c — PostgreSQL on the loop: a pool of query connections and one LISTEN connection.
 *
 * Connections. A Pgl owns pool_size query connections and, when a channel is configured, one
 * listener. Each is a small state machine; pgl_conn_set_state() is the only place that assigns
 * a state, and it keeps the count of live query connections and the G_PG_UP gauge:
 *
 *   BACKOFF --timer--> CONNECTING --PQconnectPoll OK--> SETUP --result--> READY <--> BUSY
 *      ^                   |                              |                 |         |
 *      +------- failure, loss, connect timeout ----------+-----------------+         |
 *                          ^                                                          |
 *                          +------------- query timeout: reconnect at once -----------+
 *
 * SETUP runs one statement before a connection is used: on the listener `LISTEN <channel>`
 * (then hooks->ready), on a query connection `SET client_connection_check_interval` (see
 * Timeouts). A connection's single timer means what its state says: the reconnect delay in
 * BACKOFF, the connect deadline in CONNECTING and SETUP, the query deadline in BUSY.
 *
 * Sockets. One uv_poll per socket. libpq may close its socket and open another inside
 * PQconnectPoll (next address, SSL or GSS fallback), so the poll is stopped before every
 * PQconnectPoll and re-created when PQsocket() changes: libuv must never watch a descriptor
 * that libpq closed. The poll is closed before PQfinish. An established connection always
 * watches readable (a dying server, or a notification, arrives unasked) and writable only
 * while PQflush has output left.
 *
 * Queries. A query waits in one FIFO (at most max_queued) until a READY connection takes it;
 * each connection runs one query at a time, so per connection results come back in submission
 * order. The deadline is fixed at submission (uv_now + query_timeout_ms) and covers the wait in
 * the queue as well as the run: the caller is promised an answer within it. The timeout is the
 * same for every query, so the FIFO is also sorted by deadline and one timer on its head does.
 *
 * Timeouts. PQcancel and PQrequestCancel both open a new connection to the server and block
 * the calling thread until it answers, so they are not used. Instead the connection running a
 * late query is closed (the query fails with 57014) and reconnected at once. Closing alone would
 * leave the backend running the statement until it next writes to its socket; the SET in SETUP
 * makes the backend check every second whether its client is still there and abort the
 * statement when it is not, which is a cancel in effect. A server that does not know the
 * setting (before PostgreSQL 14) is warned about and used anyway.
 *
 * Failures. A lost connection fails its in-flight query with 08006 and reconnects after a delay
 * from pgl_backoff_ms (equal jitter: between half and all of the entry), per connection; the
 * step goes back to the start once a connection is READY again. Queued queries keep waiting
 * while some query connection is up or trying to connect; when none is, the queue fails with
 * 08001 and new queries fail at once with 08001, so callers answer promptly while PostgreSQL
 * is down.
 *
 * Callbacks. A query's callback is never called from pgl_query or from inside libpq processing:
 * finished queries, results and failures alike, go to the done list, which an idle handle
 * drains on the next loop iteration (pgl_on_deliver). That is the one place query callbacks
 * run, with nothing of pgl's on the stack, so a callback may call pgl_query or pgl_destroy.
 * pgl_destroy delivers what is left itself: the done list as it is, then in-flight and queued
 * queries with 08006. The listener hooks run from the listener's poll callback as the last use
 * of the connection's state; after each hook the code checks whether pgl_destroy ran.
 *
 * Memory. A query is one allocation (SQL and parameters copied in, at most PGL_MAX_QUERY_BYTES).
 * At most pool_size + max_queued accepted queries exist, plus rejected ones until the next loop
 * iteration delivers them. Handles are freed in their close callbacks, the Pgl itself when the
 * last one has closed after pgl_destroy.
 *
 * Thread: everything here, callbacks and hooks included, runs on the loop thread.
 */
#include "pgl.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

#define PGL_MAX_POOL 64
#define PGL_MAX_QUEUED 1000000
#define PGL_MAX_PARAMS 65535 /* the protocol's limit */
#define PGL_MAX_QUERY_BYTES (256 * 1024)
#define PGL_MAX_CHANNEL 63			/* NAMEDATALEN - 1: the server truncates longer names */
#define PGL_CONNECT_TIMEOUT_MS 5000 /* when conninfo sets no connect_timeout */
#define PGL_MESSAGE_MAX 256
#define PGL_TLS_EXTRA_READS 4
#define PGL_STR_(x) #x
#define PGL_STR(x) PGL_STR_(x)

/* The backend notices a closed client within this time and aborts its statement. */
static const char pgl_pool_setup_sql[] = "SET client_connection_check_interval = 1000";

/* Reconnect delays per connection, ms; the last one repeats. */
static const uint64_t pgl_backoff_ms[] = {100, 200, 500, 1000, 2000, 5000};
#define PGL_BACKOFF_STEPS (sizeof(pgl_backoff_ms) / sizeof(pgl_backoff_ms[0]))

typedef enum PglConnState
{
	PGLC_BACKOFF = 0, /* no connection; the timer starts the next attempt */
	PGLC_CONNECTING,  /* PQconnectPoll in progress; timer: connect deadline */
	PGLC_SETUP,		  /* connected; LISTEN or SET in flight; timer: connect deadline */
	PGLC_READY,		  /* query connection: idle; listener: LISTEN active */
	PGLC_BUSY,		  /* query connection: one query in flight; timer: its deadline */
	PGLC_CLOSED		  /* pgl_destroy ran */
} PglConnState;

typedef struct PglQuery
{
	struct PglQuery *next;
	PglResultFn		 cb;
	void			*ud;
	uint64_t		 deadline; /* uv_now() ms by which the caller gets an answer */
	int				 nparams;
	const char		*sql;	 /* in this allocation */
	char		   **values; /* nparams entries, in this allocation; NULL entries are SQL NULL */
	PGresult		*res;	 /* owned; the (error) result once finished, or NULL */
	char			 sqlstate[6];			   /* "" on success */
	char			 message[PGL_MESSAGE_MAX]; /* failure text; "" means res's primary message */
} PglQuery;

/* A FIFO of queries, linked through next. */
typedef struct PglList
{
	PglQuery *head;
	PglQuery *tail;
	size_t	  count;
} PglList;

typedef struct PglConn
{
	Pgl			*p;
	char		 name[24]; /* "listener", "pool#1", ... for log lines */
	bool		 listener;
	PglConnState state;
	PGconn		*pg;		  /* owned; NULL in BACKOFF and CLOSED */
	uv_poll_t	*poll;		  /* owned, freed in its close callback; NULL when not watching */
	int			 poll_fd;	  /* the socket poll watches */
	int			 poll_events; /* what poll watches now (0: stopped) */
	uv_timer_t	 timer;
	size_t		 attempt; /* index into pgl_backoff_ms for the next failure */
	bool		 ever_ready;
	bool		 copy_started; /* the server started COPY: the connection cannot continue */
	PglQuery	*query;		   /* owned; the query in flight (BUSY) */
	PGresult	*res;		   /* owned; result of query (or of SETUP) collected so far */
} PglConn;

struct Pgl
{
	uv_loop_t			 *loop;
	char				 *conninfo; /* owned copy */
	char				 *channel;	/* owned copy; NULL: no listener */
	int					  pool_size;
	int					  max_queued;
	int					  query_timeout_ms;
	int					  connect_timeout_ms;
	PglConn				 *conns; /* pool_size query connections, then the listener */
	int					  nconns;
	int					  up_count;	   /* query connections READY or BUSY */
	bool				  listen_up;   /* LISTEN active and hooks->ready called */
	PglList				  queue;	   /* waiting for a connection */
	PglList				  done;		   /* finished, callbacks not yet called */
	uv_timer_t			  queue_timer; /* fires at the queue head's deadline */
	uv_idle_t			  deliver;	   /* runs while the done list is not empty */
	const PglListenHooks *hooks;	   /* borrowed */
	void				 *hooks_ud;
	uint64_t			  rng;
	bool				  destroying;
	int					  open_handles; /* the Pgl is freed when this drops to 0 after destroy */
};

static void pgl_conn_start(PglConn *c);
static void pgl_conn_down(PglConn *c, const char *why, bool immediate);
static void pgl_dispatch(Pgl *p);
static void pgl_on_deliver(uv_idle_t *handle);

/* ------------------------------------------------------------------------------------------ */
/* Small helpers */

/* Copies src into dst as one line: libpq's messages end in a newline and may span several
 * ("server closed the connection unexpectedly\n\tThis probably means..."). */
static void
pgl_copy_message(char *dst, size_t size, const char *src)
{
	size_t n = 0;
	bool   space = false;

	if (src == NULL || src[0] == '\0')
		src = "unknown error";
	for (; *src != '\0' && n + 1 < size; src++)
	{
		if (*src == '\n' || *src == '\t' || *src == '\r' || *src == ' ')
		{
			space = n > 0;
			continue;
		}
		if (space && n + 2 < size)
			dst[n++] = ' ';
		space = false;
		dst[n++] = *src;
	}
	dst[n] = '\0';
}

/* xorshift64: jitter only, no need for quality or for touching rand()'s global state. */
static uint64_t
pgl_random(Pgl *p)
{
	p->rng ^= p->rng << 13;
	p->rng ^= p->rng >> 7;
	p->rng ^= p->rng << 17;
	return p->rng;
}

/* Equal jitter: connections that failed together do not retry together. */
static uint64_t
pgl_backoff_delay(Pgl *p, size_t attempt)
{
	uint64_t base = pgl_backoff_ms[attempt < PGL_BACKOFF_STEPS ? attempt : PGL_BACKOFF_STEPS - 1];

	return base / 2 + pgl_random(p) % (base / 2 + 1);
}

static bool
pgl_result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* Server errors that say something about the server or the connection, not about the query. */
static bool
pgl_sqlstate_is_system(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
		   strncmp(sqlstate, "57", 2) == 0 || strncmp(sqlstate, "58", 2) == 0 ||
		   strncmp(sqlstate, "XX", 2) == 0;
}

/* Server notices would go to stderr unformatted; route them through the log. */
static void
pgl_on_notice(void *arg, const PGresult *res)
{
	PglConn	   *c = arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	if (severity != NULL && strcmp(severity, "NOTICE") != 0 && strcmp(severity, "INFO") != 0 &&
		strcmp(severity, "LOG") != 0 && strncmp(severity, "DEBUG", 5) != 0)
		log_warn("pgl: %s: server says %s: %s", c->name, severity, msg);
	else
		log_debug("pgl: %s: server says %s: %s", c->name, severity ? severity : "?", msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Handles */

static void
pgl_handle_closed(Pgl *p)
{
	p->open_handles--;
	if (p->destroying && p->open_handles == 0)
	{
		free(p->conns);
		free(p->conninfo);
		free(p->channel);
		free(p);
	}
}

/* For timers and the idle handle; their data is the Pgl by then. Thread: loop. */
static void
pgl_on_handle_close(uv_handle_t *handle)
{
	pgl_handle_closed(handle->data);
}

/* Thread: loop. */
static void
pgl_on_poll_close(uv_handle_t *handle)
{
	PglConn *c = handle->data;
	Pgl		*p = c->p;

	free(handle);
	pgl_handle_closed(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Query lists */

static void
pgl_list_push(PglList *l, PglQuery *q)
{
	q->next = NULL;
	if (l->tail != NULL)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->count++;
}

static PglQuery *
pgl_list_pop(PglList *l)
{
	PglQuery *q = l->head;

	if (q == NULL)
		return NULL;
	l->head = q->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->count--;
	q->next = NULL;
	return q;
}

/* Finished: the callback runs on the next loop iteration (or in pgl_destroy). */
static void
pgl_done_push(Pgl *p, PglQuery *q)
{
	pgl_list_push(&p->done, q);
	if (!p->destroying)
		uv_idle_start(&p->deliver, pgl_on_deliver);
}

/* A failure pgl itself decided (not a server error). Shutting down is not counted. */
static void __attribute__((format(printf, 4, 5)))
pgl_query_fail(Pgl *p, PglQuery *q, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", sqlstate);
	va_start(ap, fmt);
	vsnprintf(q->message, sizeof(q->message), fmt, ap);
	va_end(ap);
	if (!p->destroying)
		metrics_count(M_PG_QUERY_ERRORS, 1);
	pgl_done_push(p, q);
}

/* Calls the callback once and frees the query. */
static void
pgl_deliver_one(PglQuery *q)
{
	const char *msg = q->message;

	if (q->sqlstate[0] == '\0')
		q->cb(q->ud, q->res, NULL, NULL);
	else
	{
		if (msg[0] == '\0' && q->res != NULL)
			msg = PQresultErrorField(q->res, PG_DIAG_MESSAGE_PRIMARY);
		q->cb(q->ud, q->res, q->sqlstate, msg != NULL ? msg : "unknown error");
	}
	PQclear(q->res);
	free(q);
}

/* The one place query callbacks run (besides pgl_destroy). Thread: loop. */
static void
pgl_on_deliver(uv_idle_t *handle)
{
	Pgl *p = handle->data;
	/* Only what is there now: failures a callback causes wait one turn, so a callback that
	 * retries at once cannot keep the loop here. */
	size_t n = p->done.count;

	while (n-- > 0)
	{
		PglQuery *q = pgl_list_pop(&p->done);

		if (q == NULL)
			break;
		pgl_deliver_one(q);
		if (p->destroying)
			return; /* pgl_destroy delivered the rest and closed this handle */
	}
	if (p->done.head == NULL)
		uv_idle_stop(&p->deliver);
}

/* ------------------------------------------------------------------------------------------ */
/* Pool state */

/* The only assignment of a connection's state. */
static void
pgl_conn_set_state(PglConn *c, PglConnState state)
{
	Pgl *p = c->p;
	bool was_up = !c->listener && (c->state == PGLC_READY || c->state == PGLC_BUSY);
	bool is_up = !c->listener && (state == PGLC_READY || state == PGLC_BUSY);

	c->state = state;
	if (was_up == is_up)
		return;
	p->up_count += is_up ? 1 : -1;
	if (p->up_count == (is_up ? 1 : 0))
		metrics_gauge_set(G_PG_UP, p->up_count > 0 ? 1 : 0);
}

/* No query connection is up or even trying: waiting cannot help. */
static bool
pgl_pool_down(const Pgl *p)
{
	for (int i = 0; i < p->pool_size; i++)
	{
		PglConnState st = p->conns[i].state;

		if (st == PGLC_CONNECTING || st == PGLC_SETUP || st == PGLC_READY || st == PGLC_BUSY)
			return false;
	}
	return true;
}

static PglConn *
pgl_ready_conn(Pgl *p)
{
	for (int i = 0; i < p->pool_size; i++)
		if (p->conns[i].state == PGLC_READY)
			return &p->conns[i];
	return NULL;
}

static void
pgl_on_queue_timer(uv_timer_t *handle)
{
	pgl_dispatch(handle->data);
}

static void
pgl_queue_timer_update(Pgl *p)
{
	uint64_t now;

	if (p->destroying)
		return;
	if (p->queue.head == NULL)
	{
		uv_timer_stop(&p->queue_timer);
		return;
	}
	now = uv_now(p->loop);
	uv_timer_start(&p->queue_timer, pgl_on_queue_timer,
				   p->queue.head->deadline > now ? p->queue.head->deadline - now : 0, 0);
}

static void
pgl_fail_queue(Pgl *p, const char *sqlstate, const char *message)
{
	PglQuery *q;

	while ((q = pgl_list_pop(&p->queue)) != NULL)
		pgl_query_fail(p, q, sqlstate, "%s", message);
	pgl_queue_timer_update(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Socket watching */

static void pgl_on_poll(uv_poll_t *handle, int status, int events);

static void
pgl_conn_unwatch(PglConn *c)
{
	if (c->poll == NULL)
		return;
	uv_close((uv_handle_t *) c->poll, pgl_on_poll_close);
	c->poll = NULL;
	c->poll_events = 0;
}

/* Watches PQsocket() for events, re-creating the poll when the socket changed. */
static int
pgl_conn_watch(PglConn *c, int events)
{
	int fd = PQsocket(c->pg);
	int rc;

	if (fd < 0)
		return -1;
	if (c->poll != NULL && c->poll_fd != fd)
		pgl_conn_unwatch(c);
	if (c->poll == NULL)
	{
		c->poll = malloc(sizeof(*c->poll));
		if (c->poll == NULL)
			return -1;
		rc = uv_poll_init_socket(c->p->loop, c->poll, fd);
		if (rc < 0)
		{
			log_error("pgl: %s: cannot watch socket %d: %s", c->name, fd, uv_strerror(rc));
			free(c->poll);
			c->poll = NULL;
			return -1;
		}
		c->poll->data = c;
		c->p->open_handles++;
		c->poll_fd = fd;
		c->poll_events = 0;
	}
	if (events != c->poll_events)
	{
		rc = uv_poll_start(c->poll, events, pgl_on_poll);
		if (rc < 0)
		{
			log_error("pgl: %s: cannot watch socket %d: %s", c->name, fd, uv_strerror(rc));
			return -1;
		}
		c->poll_events = events;
	}
	return 0;
}

/* Sends what libpq buffered; watches writable until all is out. */
static int
pgl_conn_flush(PglConn *c)
{
	int rc = PQflush(c->pg);

	if (rc < 0)
		return -1;
	return pgl_conn_watch(c, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* ------------------------------------------------------------------------------------------ */
/* Connection life */

static void
pgl_on_conn_timer(uv_timer_t *handle)
{
	PglConn	 *c = handle->data;
	Pgl		 *p = c->p;
	PglQuery *q;

	switch (c->state)
	{
		case PGLC_BACKOFF:
			pgl_conn_start(c);
			return;
		case PGLC_CONNECTING:
		case PGLC_SETUP:
			pgl_conn_down(c, "connect timed out", false);
			return;
		case PGLC_BUSY:
			q = c->query;
			c->query = NULL;
			PQclear(c->res);
			c->res = NULL;
			log_warn("pgl: %s: query ran past its deadline (%d ms); closing the connection",
					 c->name, p->query_timeout_ms);
			pgl_query_fail(p, q, "57014",
						   "canceling query: no result within %d ms (connection closed)",
						   p->query_timeout_ms);
			/* The server is not at fault: reconnect without waiting. */
			pgl_conn_down(c, "query timed out", true);
			return;
		case PGLC_READY:
		case PGLC_CLOSED:
			return;
	}
}

/* Starts a non-blocking connect (PQconnectStartParams does no DNS lookup with hostaddr=). */
static void
pgl_conn_start(PglConn *c)
{
	Pgl *p = c->p;
	/* The caller's conninfo is expanded first; the keywords after it override it. */
	const char *keywords[] = {"dbname", "application_name", NULL};
	const char *values[] = {p->conninfo, c->listener ? "sociald-listen" : "sociald-pool", NULL};

	c->pg = PQconnectStartParams(keywords, values, 1);
	if (c->pg == NULL)
	{
		pgl_conn_down(c, "out of memory", false);
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
	{
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	PQsetNoticeReceiver(c->pg, pgl_on_notice, c);
	pgl_conn_set_state(c, PGLC_CONNECTING);
	uv_timer_start(&c->timer, pgl_on_conn_timer, (uint64_t) p->connect_timeout_ms, 0);
	/* Before the first PQconnectPoll, libpq wants the socket writable (connect finished). */
	if (pgl_conn_watch(c, UV_WRITABLE) < 0)
		pgl_conn_down(c, "cannot watch the socket", false);
}

/*
 * The connection failed or was lost: fail its query with 08006, drop it, and connect again —
 * at once after a query timeout (the server is fine), else after the backoff delay. The
 * caller must not use c's state afterwards: the listener's lost hook runs here, last.
 */
static void
pgl_conn_down(PglConn *c, const char *why, bool immediate)
{
	Pgl *p = c->p;
	char reason[PGL_MESSAGE_MAX];
	bool established = c->state == PGLC_SETUP || c->state == PGLC_READY || c->state == PGLC_BUSY;
	bool lost_listen = c->listener && p->listen_up;
	uint64_t delay;

	/* why may point into c->pg, which is about to go. */
	pgl_copy_message(reason, sizeof(reason), why);
	if (established)
		log_warn("pgl: %s: connection lost: %s", c->name, reason);
	else if (c->attempt == 0)
		log_warn("pgl: %s: cannot connect: %s", c->name, reason);
	else
		log_info("pgl: %s: cannot connect (attempt %zu): %s", c->name, c->attempt + 1, reason);

	if (c->query != NULL)
	{
		pgl_query_fail(p, c->query, "08006", "connection to PostgreSQL lost: %s", reason);
		c->query = NULL;
	}
	PQclear(c->res);
	c->res = NULL;
	c->copy_started = false;
	pgl_conn_unwatch(c); /* before PQfinish closes the socket */
	if (c->pg != NULL)
	{
		PQfinish(c->pg);
		c->pg = NULL;
	}
	uv_timer_stop(&c->timer);
	if (lost_listen)
	{
		p->listen_up = false;
		metrics_gauge_set(G_PG_LISTEN_UP, 0);
	}

	if (immediate)
	{
		/* A synchronous failure inside lands in the backoff branch below, one level down. */
		pgl_conn_set_state(c, PGLC_BACKOFF);
		pgl_conn_start(c);
	}
	else
	{
		delay = pgl_backoff_delay(p, c->attempt);
		if (c->attempt + 1 < PGL_BACKOFF_STEPS)
			c->attempt++;
		pgl_conn_set_state(c, PGLC_BACKOFF);
		uv_timer_start(&c->timer, pgl_on_conn_timer, delay, 0);
	}

	if (!c->listener && pgl_pool_down(p))
		pgl_fail_queue(p, "08001", "no connection to PostgreSQL");
	if (lost_listen && p->hooks != NULL && p->hooks->lost != NULL)
		p->hooks->lost(p->hooks_ud);
}

/* PQconnectPoll said OK: go non-blocking and run the setup statement. */
static void
pgl_conn_connected(PglConn *c)
{
	Pgl		   *p = c->p;
	const char *sql = pgl_pool_setup_sql;
	/* The channel has at most PGL_MAX_CHANNEL bytes, so its quoted form at most twice that + 2. */
	char  listen_sql[2 * PGL_MAX_CHANNEL + 16];
	char *ident = NULL;

	if (PQsetnonblocking(c->pg, 1) != 0)
	{
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	if (c->listener)
	{
		/* Quoted: the channel is a configured identifier, never spliced in raw. */
		ident = PQescapeIdentifier(c->pg, p->channel, strlen(p->channel));
		if (ident == NULL)
		{
			pgl_conn_down(c, PQerrorMessage(c->pg), false);
			return;
		}
		snprintf(listen_sql, sizeof(listen_sql), "LISTEN %s", ident);
		PQfreemem(ident);
		sql = listen_sql;
	}
	if (!PQsendQuery(c->pg, sql))
	{
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	pgl_conn_set_state(c, PGLC_SETUP);
	if (pgl_conn_flush(c) < 0)
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
}

/* One step of the connection handshake; the socket was ready as PQconnectPoll asked. */
static void
pgl_conn_connect_step(PglConn *c)
{
	/* PQconnectPoll may close this socket and open another: stop watching it first. */
	uv_poll_stop(c->poll);
	c->poll_events = 0;
	switch (PQconnectPoll(c->pg))
	{
		case PGRES_POLLING_READING:
			if (pgl_conn_watch(c, UV_READABLE) < 0)
				pgl_conn_down(c, "cannot watch the socket", false);
			return;
		case PGRES_POLLING_WRITING:
			if (pgl_conn_watch(c, UV_WRITABLE) < 0)
				pgl_conn_down(c, "cannot watch the socket", false);
			return;
		case PGRES_POLLING_OK:
			pgl_conn_connected(c);
			return;
		default:
			pgl_conn_down(c, PQerrorMessage(c->pg), false);
			return;
	}
}

/* The setup statement finished. Returns -1 when c went down or pgl_destroy ran. */
static int
pgl_conn_setup_done(PglConn *c)
{
	Pgl		   *p = c->p;
	PGresult   *res = c->res;
	const char *msg;
	char		why[PGL_MESSAGE_MAX];

	c->res = NULL;
	if (res == NULL || !pgl_result_ok(res))
	{
		msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		if (msg == NULL)
			msg = res != NULL ? PQresultErrorMessage(res) : "no result";
		if (c->listener)
		{
			snprintf(why, sizeof(why), "LISTEN failed: %s", msg);
			PQclear(res);
			pgl_conn_down(c, why, false);
			return -1;
		}
		log_warn("pgl: %s: \"%s\" failed (%s): a timed-out statement keeps running on the "
				 "server until it ends",
				 c->name, pgl_pool_setup_sql, msg);
	}
	PQclear(res);

	uv_timer_stop(&c->timer);
	c->attempt = 0;
	if (c->ever_ready)
		metrics_count(M_PG_RECONNECTS, 1);
	log_info("pgl: %s: %s", c->name, c->ever_ready ? "reconnected" : "connected");
	c->ever_ready = true;
	pgl_conn_set_state(c, PGLC_READY);
	if (c->listener)
	{
		p->listen_up = true;
		metrics_gauge_set(G_PG_LISTEN_UP, 1);
		log_info("pgl: listening on channel \"%s\"", p->channel);
		if (p->hooks != NULL && p->hooks->ready != NULL)
			p->hooks->ready(p->hooks_ud);
		return p->destroying ? -1 : 0;
	}
	pgl_dispatch(p);
	return c->pg == NULL ? -1 : 0;
}

/* The query in flight finished: queue its callback, give the connection the next query. */
static void
pgl_conn_query_done(PglConn *c)
{
	Pgl		   *p = c->p;
	PglQuery   *q = c->query;
	PGresult   *res = c->res;
	const char *code;

	c->query = NULL;
	c->res = NULL;
	uv_timer_stop(&c->timer);
	pgl_conn_set_state(c, PGLC_READY);

	q->res = res;
	if (res == NULL)
		pgl_query_fail(p, q, "XX000", "PostgreSQL returned no result");
	else if (pgl_result_ok(res))
		pgl_done_push(p, q);
	else if (PQresultStatus(res) == PGRES_FATAL_ERROR ||
			 PQresultStatus(res) == PGRES_NONFATAL_ERROR)
	{
		code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", code != NULL ? code : "XX000");
		if (PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) == NULL)
			pgl_copy_message(q->message, sizeof(q->message), PQresultErrorMessage(res));
		if (code == NULL || pgl_sqlstate_is_system(code))
			metrics_count(M_PG_QUERY_ERRORS, 1);
		pgl_done_push(p, q);
	}
	else
		pgl_query_fail(p, q, "XX000", "unexpected result status %s",
					   PQresStatus(PQresultStatus(res)));
	pgl_dispatch(p);
}

/* Keeps the first result, or the first error: a single statement has one result. */
static void
pgl_conn_collect(PglConn *c, PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
	{
		c->copy_started = true;
		PQclear(r);
		return;
	}
	if (c->res == NULL)
		c->res = r;
	else if (!pgl_result_ok(r) && pgl_result_ok(c->res))
	{
		PQclear(c->res);
		c->res = r;
	}
	else
		PQclear(r);
}

static void
pgl_conn_notifies(PglConn *c)
{
	Pgl		 *p = c->p;
	PGnotify *n;

	while (!p->destroying && c->pg != NULL && (n = PQnotifies(c->pg)) != NULL)
	{
		/* Query connections never LISTEN; whatever reaches them is dropped. */
		if (c->listener && c->state == PGLC_READY && p->hooks != NULL && p->hooks->notify != NULL)
			p->hooks->notify(p->hooks_ud, n->extra);
		PQfreemem(n);
	}
}

/* Socket activity on an established connection. */
static void
pgl_conn_io(PglConn *c, int events)
{
	Pgl		 *p = c->p;
	PglQuery *q;
	PGresult *r;
	bool	  finished = false;

	if ((events & UV_READABLE) && !PQconsumeInput(c->pg))
	{
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	/* With TLS, OpenSSL can hold decrypted bytes the socket no longer signals: libpq looks at
	 * SSL_pending only in its own blocking waits, and a TLS record can be larger than one read
	 * takes. Read again while a result is incomplete (or on the listener, for notifications);
	 * when nothing is buffered, an extra read is one recv() that finds nothing. */
	for (int i = 0; i < PGL_TLS_EXTRA_READS && (events & UV_READABLE) && PQsslInUse(c->pg) &&
					(c->listener || PQisBusy(c->pg));
		 i++)
	{
		if (!PQconsumeInput(c->pg))
		{
			pgl_conn_down(c, PQerrorMessage(c->pg), false);
			return;
		}
	}
	/* After reading, libpq may be able to send more (PQflush docs): retry while pending. */
	if ((c->poll_events & UV_WRITABLE) && pgl_conn_flush(c) < 0)
	{
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	if (c->state == PGLC_SETUP || c->state == PGLC_BUSY)
	{
		/* PQgetResult only when PQisBusy says it will not block. */
		while (!c->copy_started && !PQisBusy(c->pg))
		{
			r = PQgetResult(c->pg);
			if (r == NULL)
			{
				finished = true;
				break;
			}
			pgl_conn_collect(c, r);
		}
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
	{
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	if (c->copy_started)
	{
		/* Leaving COPY takes protocol steps this module has no use for: start afresh. */
		q = c->query;
		c->query = NULL;
		if (q != NULL)
			pgl_query_fail(p, q, "0A000", "COPY is not supported on pgl connections");
		pgl_conn_down(c, "the server started COPY", true);
		return;
	}
	if (finished)
	{
		if (c->state == PGLC_SETUP)
		{
			if (pgl_conn_setup_done(c) < 0)
				return;
		}
		else
			pgl_conn_query_done(c);
		if (p->destroying || c->pg == NULL)
			return;
	}
	pgl_conn_notifies(c);
}

/* Thread: loop. */
static void
pgl_on_poll(uv_poll_t *handle, int status, int events)
{
	PglConn *c = handle->data;
	char	 why[PGL_MESSAGE_MAX];

	if (status < 0)
	{
		/* libuv reports POLLERR as UV_EBADF and has stopped watching. libpq knows better what
		 * went wrong: while connecting, PQconnectPoll reads the socket error (and may try the
		 * next address); later, PQconsumeInput finds the reset. */
		c->poll_events = 0;
		if (c->state == PGLC_CONNECTING)
		{
			pgl_conn_connect_step(c);
			return;
		}
		if (c->state == PGLC_SETUP || c->state == PGLC_READY || c->state == PGLC_BUSY)
		{
			snprintf(why, sizeof(why), "socket error: %s", uv_strerror(status));
			pgl_conn_down(c, PQconsumeInput(c->pg) ? why : PQerrorMessage(c->pg), false);
		}
		return;
	}
	if (c->state == PGLC_CONNECTING)
		pgl_conn_connect_step(c);
	else if (c->state == PGLC_SETUP || c->state == PGLC_READY || c->state == PGLC_BUSY)
		pgl_conn_io(c, events);
}

/* ------------------------------------------------------------------------------------------ */
/* Queries */

/* Sends q on the READY connection c. */
static void
pgl_conn_send(PglConn *c, PglQuery *q, uint64_t now)
{
	c->query = q;
	pgl_conn_set_state(c, PGLC_BUSY);
	uv_timer_start(&c->timer, pgl_on_conn_timer, q->deadline - now, 0);
	if (!PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, (const char *const *) q->values, NULL,
						   NULL, 0) ||
		pgl_conn_flush(c) < 0)
		pgl_conn_down(c, PQerrorMessage(c->pg), false);
}

/* Hands queued queries to READY connections; fails the ones whose deadline passed. */
static void
pgl_dispatch(Pgl *p)
{
	uint64_t  now = uv_now(p->loop);
	PglQuery *q;
	PglConn	 *c;

	if (p->destroying)
		return;
	while (p->queue.head != NULL)
	{
		if (p->queue.head->deadline <= now)
		{
			q = pgl_list_pop(&p->queue);
			pgl_query_fail(p, q, "57014",
						   "canceling query: no PostgreSQL connection became free within %d ms",
						   p->query_timeout_ms);
			continue;
		}
		c = pgl_ready_conn(p);
		if (c == NULL)
			break;
		pgl_conn_send(c, pgl_list_pop(&p->queue), now);
	}
	pgl_queue_timer_update(p);
}

/* Returns -1 (and cb will never be called) only for invalid arguments, a query larger than
 * PGL_MAX_QUERY_BYTES, out of memory, or a Pgl being destroyed. */
int
pgl_query(Pgl *p, const char *sql, int nparams, const char *const *values, PglResultFn cb, void *ud)
{
	const char *reject = NULL;
	size_t		size = sizeof(PglQuery);
	size_t		len;
	PglQuery   *q;
	char	   *pos;

	if (p == NULL || sql == NULL || cb == NULL || nparams < 0 || nparams > PGL_MAX_PARAMS ||
		(nparams > 0 && values == NULL))
	{
		log_error("pgl_query: invalid arguments (sql %s, %d parameters, callback %s)",
				  sql != NULL ? "given" : "NULL", nparams, cb != NULL ? "given" : "NULL");
		return -1;
	}
	if (p->destroying)
	{
		log_error("pgl_query: called during pgl_destroy");
		return -1;
	}

	if (pgl_pool_down(p))
		reject = "08001";
	else if (p->queue.count >= (size_t) p->max_queued && pgl_ready_conn(p) == NULL)
		reject = "53300";
	else
	{
		/* One allocation: the struct, the parameter array, then the strings. */
		size += (size_t) nparams * sizeof(char *) + strlen(sql) + 1;
		for (int i = 0; i < nparams && size <= PGL_MAX_QUERY_BYTES; i++)
			if (values[i] != NULL)
				size += strlen(values[i]) + 1;
		if (size > PGL_MAX_QUERY_BYTES)
		{
			log_error("pgl_query: query with its parameters exceeds %d bytes", PGL_MAX_QUERY_BYTES);
			return -1;
		}
	}

	q = malloc(size);
	if (q == NULL)
	{
		log_error("pgl_query: out of memory");
		return -1;
	}
	memset(q, 0, sizeof(*q));
	q->cb = cb;
	q->ud = ud;
	q->deadline = uv_now(p->loop) + (uint64_t) p->query_timeout_ms;

	if (reject != NULL)
	{
		/* Deferred like every callback: never from inside pgl_query. */
		if (strcmp(reject, "08001") == 0)
			pgl_query_fail(p, q, reject, "no connection to PostgreSQL");
		else
			pgl_query_fail(p, q, reject, "too many queries waiting for PostgreSQL (max %d)",
						   p->max_queued);
		return 0;
	}

	q->nparams = nparams;
	q->values = (char **) (q + 1);
	pos = (char *) (q->values + nparams);
	len = strlen(sql) + 1;
	q->sql = memcpy(pos, sql, len);
	pos += len;
	for (int i = 0; i < nparams; i++)
	{
		q->values[i] = NULL;
		if (values[i] == NULL)
			continue;
		len = strlen(values[i]) + 1;
		q->values[i] = memcpy(pos, values[i], len);
		pos += len;
	}
	pgl_list_push(&p->queue, q);
	pgl_dispatch(p);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle */

/* Warns about host names that libpq would resolve with a blocking lookup at every connect;
 * reads connect_timeout (libpq ignores it in non-blocking mode: the timer applies it). */
static void
pgl_inspect_conninfo(Pgl *p, PQconninfoOption *opts)
{
	const char *host = NULL;
	const char *hostaddr = NULL;
	const char *timeout = NULL;
	const char *s;
	char		item[256];
	char		addr[sizeof(struct in6_addr)];
	size_t		n;
	int			seconds;

	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "connect_timeout") == 0)
			timeout = o->val;
	}
	if (host == NULL)
		host = getenv("PGHOST");
	if (hostaddr == NULL)
		hostaddr = getenv("PGHOSTADDR");
	if (timeout == NULL)
		timeout = getenv("PGCONNECT_TIMEOUT");

	p->connect_timeout_ms = PGL_CONNECT_TIMEOUT_MS;
	if (timeout != NULL && (seconds = atoi(timeout)) > 0)
		p->connect_timeout_ms = (seconds < 2 ? 2 : seconds > 3600 ? 3600 : seconds) * 1000;

	if ((hostaddr != NULL && hostaddr[0] != '\0') || host == NULL)
		return;
	for (s = host; *s != '\0'; s += n + (s[n] == ',' ? 1 : 0))
	{
		n = strcspn(s, ",");
		snprintf(item, sizeof(item), "%.*s", (int) n, s);
		if (item[0] == '\0' || item[0] == '/' || item[0] == '@' ||
			inet_pton(AF_INET, item, addr) == 1 || inet_pton(AF_INET6, item, addr) == 1)
			continue;
		log_warn("pgl: host \"%s\" without hostaddr=: its name lookup blocks the event loop at "
				 "every connect",
				 item);
		return;
	}
}

Pgl *
pgl_create(uv_loop_t *loop, const PglOptions *opts)
{
	Pgl				 *p = NULL;
	PQconninfoOption *parsed = NULL;
	const char		 *err = NULL;
	char			 *parse_err = NULL;

	if (loop == NULL || opts == NULL || opts->conninfo == NULL)
		err = "no loop, options or conninfo";
	else if (opts->pool_size < 1 || opts->pool_size > PGL_MAX_POOL)
		err = "pool_size is out of range 1.." PGL_STR(PGL_MAX_POOL);
	else if (opts->max_queued < 0 || opts->max_queued > PGL_MAX_QUEUED)
		err = "max_queued is out of range 0.." PGL_STR(PGL_MAX_QUEUED);
	else if (opts->query_timeout_ms < 1)
		err = "query_timeout_ms must be positive";
	else if (opts->listen_channel != NULL &&
			 (opts->listen_channel[0] == '\0' || strlen(opts->listen_channel) > PGL_MAX_CHANNEL))
		err = "listen_channel must have 1.." PGL_STR(PGL_MAX_CHANNEL) " bytes";
	if (err != NULL)
	{
		log_error("pgl_create: %s", err);
		return NULL;
	}
	parsed = PQconninfoParse(opts->conninfo, &parse_err);
	if (parsed == NULL)
	{
		log_error("pgl_create: bad conninfo: %s", parse_err != NULL ? parse_err : "out of memory");
		PQfreemem(parse_err);
		return NULL;
	}

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		goto fail;
	p->loop = loop;
	p->pool_size = opts->pool_size;
	p->max_queued = opts->max_queued;
	p->query_timeout_ms = opts->query_timeout_ms;
	p->nconns = opts->pool_size + (opts->listen_channel != NULL ? 1 : 0);
	p->conninfo = strdup(opts->conninfo);
	p->channel = opts->listen_channel != NULL ? strdup(opts->listen_channel) : NULL;
	p->conns = calloc((size_t) p->nconns, sizeof(*p->conns));
	if (p->conninfo == NULL || p->conns == NULL ||
		(opts->listen_channel != NULL && p->channel == NULL))
		goto fail;
	pgl_inspect_conninfo(p, parsed);
	PQconninfoFree(parsed);
	parsed = NULL;
	p->rng = uv_hrtime() ^ (uint64_t) (uintptr_t) p;
	if (p->rng == 0)
		p->rng = 0x9e3779b97f4a7c15ULL;

	/* Nothing below can fail: from here on p is only released through pgl_destroy. */
	uv_timer_init(loop, &p->queue_timer);
	p->queue_timer.data = p;
	uv_idle_init(loop, &p->deliver);
	p->deliver.data = p;
	p->open_handles = 2;
	for (int i = 0; i < p->nconns; i++)
	{
		PglConn *c = &p->conns[i];

		c->p = p;
		c->listener = i == p->pool_size;
		if (c->listener)
			snprintf(c->name, sizeof(c->name), "listener");
		else
			snprintf(c->name, sizeof(c->name), "pool#%d", i + 1);
		c->state = PGLC_BACKOFF;
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
		p->open_handles++;
	}

	metrics_gauge_set(G_PG_UP, 0);
	if (p->channel != NULL)
		metrics_gauge_set(G_PG_LISTEN_UP, 0);
	for (int i = 0; i < p->nconns; i++)
		pgl_conn_start(&p->conns[i]);
	return p;

fail:
	log_error("pgl_create: out of memory");
	PQconninfoFree(parsed);
	if (p != NULL)
	{
		free(p->conns);
		free(p->conninfo);
		free(p->channel);
		free(p);
	}
	return NULL;
}

void
pgl_destroy(Pgl *p)
{
	PglQuery *q;

	if (p == NULL || p->destroying)
		return;
	p->destroying = true;

	for (int i = 0; i < p->nconns; i++)
	{
		PglConn *c = &p->conns[i];

		if (c->query != NULL)
			pgl_query_fail(p, c->query, "08006", "connection to PostgreSQL closed: shutting down");
		c->query = NULL;
		PQclear(c->res);
		c->res = NULL;
		pgl_conn_unwatch(c);
		if (c->pg != NULL)
		{
			PQfinish(c->pg);
			c->pg = NULL;
		}
		pgl_conn_set_state(c, PGLC_CLOSED);
		c->timer.data = p; /* a closing timer never fires: its data now serves the close */
		uv_close((uv_handle_t *) &c->timer, pgl_on_handle_close);
	}
	while ((q = pgl_list_pop(&p->queue)) != NULL)
		pgl_query_fail(p, q, "08006", "not sent to PostgreSQL: shutting down");
	if (p->listen_up)
	{
		p->listen_up = false;
		metrics_gauge_set(G_PG_LISTEN_UP, 0);
	}
	uv_close((uv_handle_t *) &p->queue_timer, pgl_on_handle_close);
	uv_close((uv_handle_t *) &p->deliver, pgl_on_handle_close);

	/* Callbacks may run pgl_query (refused now) or pgl_destroy (a no-op now). */
	while ((q = pgl_list_pop(&p->done)) != NULL)
		pgl_deliver_one(q);
}

void
pgl_set_listen_hooks(Pgl *p, const PglListenHooks *hooks, void *ud)
{
	if (p == NULL)
		return;
	p->hooks = hooks;
	p->hooks_ud = ud;
}

int
pgl_connected_count(const Pgl *p)
{
	return p != NULL ? p->up_count : 0;
}

int
pgl_listen_up(const Pgl *p)
{
	return p != NULL && p->listen_up ? 1 : 0;
}
