/*
 * pg_pool.c — PostgreSQL on the loop: a pool of query connections and one LISTEN connection.
 *
 * Connections. A PgPool owns pool_size query connections and, when a channel is configured, one
 * listener. Each is a small state machine; pg_pool_conn_set_state() is the only place that assigns
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
 * from pg_pool_backoff_ms (equal jitter: between half and all of the entry), per connection; the
 * step goes back to the start once a connection is READY again. Queued queries keep waiting
 * while some query connection is up or trying to connect; when none is, the queue fails with
 * 08001 and new queries fail at once with 08001, so callers answer promptly while PostgreSQL
 * is down.
 *
 * Callbacks. A query's callback is never called from pg_pool_query or from inside libpq processing:
 * finished queries, results and failures alike, go to the done list, which an idle handle drains on
 * the next loop iteration (pg_pool_on_deliver). That is the one place query callbacks run, with
 * nothing of pg_pool's on the stack, so a callback may call pg_pool_query or pg_pool_destroy.
 * pg_pool_destroy delivers what is left itself: the done list as it is, then in-flight and queued
 * queries with 08006. The listener hooks run from the listener's poll callback as the last use of
 * the connection's state; after each hook the code checks whether pg_pool_destroy ran.
 *
 * Memory. A query is one allocation (SQL and parameters copied in, at most
 * PG_POOL_MAX_QUERY_BYTES). At most pool_size + max_queued accepted queries exist, plus rejected
 * ones until the next loop iteration delivers them. Handles are freed in their close callbacks, the
 * PgPool itself when the last one has closed after pg_pool_destroy.
 *
 * Thread: everything here, callbacks and hooks included, runs on the loop thread.
 */
#include "store/pg_pool.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/backoff.h"
#include "main/log.h"
#include "main/metrics.h"

#define PG_POOL_MAX_POOL 64
#define PG_POOL_MAX_QUEUED 1000000
#define PG_POOL_MAX_PARAMS 65535 /* the protocol's limit */
#define PG_POOL_MAX_QUERY_BYTES (256 * 1024)
#define PG_POOL_MAX_CHANNEL 63			/* NAMEDATALEN - 1: the server truncates longer names */
#define PG_POOL_CONNECT_TIMEOUT_MS 5000 /* when conninfo sets no connect_timeout */
#define PG_POOL_MESSAGE_MAX 256
#define PG_POOL_TLS_EXTRA_READS 4
#define PG_POOL_STR_(x) #x
#define PG_POOL_STR(x) PG_POOL_STR_(x)

/* The backend notices a closed client within this time and aborts its statement. */
static const char pg_pool_pool_setup_sql[] = "SET client_connection_check_interval = 1000";

/* Reconnect delays per connection, ms; the last one repeats. */
static const uint32_t	  pg_pool_backoff_ms[] = {100, 200, 500, 1000, 2000, 5000};
static const BackoffTable pg_pool_backoff = BACKOFF_TABLE(pg_pool_backoff_ms, BACKOFF_JITTER_EQUAL);

typedef enum PgPoolConnState
{
	PG_POOL_CONN_BACKOFF = 0, /* no connection; the timer starts the next attempt */
	PG_POOL_CONN_CONNECTING,  /* PQconnectPoll in progress; timer: connect deadline */
	PG_POOL_CONN_SETUP,		  /* connected; LISTEN or SET in flight; timer: connect deadline */
	PG_POOL_CONN_READY,		  /* query connection: idle; listener: LISTEN active */
	PG_POOL_CONN_BUSY,		  /* query connection: one query in flight; timer: its deadline */
	PG_POOL_CONN_CLOSED		  /* pg_pool_destroy ran */
} PgPoolConnState;

typedef struct PgPoolQuery
{
	struct PgPoolQuery *next;
	PgPoolResultFn		cb;
	void			   *ud;
	uint64_t			deadline; /* uv_now() ms by which the caller gets an answer */
	int					nparams;
	const char		   *sql;	/* in this allocation */
	char			  **values; /* nparams entries, in this allocation; NULL entries are SQL NULL */
	PGresult		   *res;	/* owned; the (error) result once finished, or NULL */
	char				sqlstate[6];   /* "" on success */
	char message[PG_POOL_MESSAGE_MAX]; /* failure text; "" means res's primary message */
} PgPoolQuery;

/* A FIFO of queries, linked through next. */
typedef struct PgPoolList
{
	PgPoolQuery *head;
	PgPoolQuery *tail;
	size_t		 count;
} PgPoolList;

typedef struct PgPoolConn
{
	PgPool		   *p;
	char			name[24]; /* "listener", "pool#1", ... for log lines */
	bool			listener;
	PgPoolConnState state;
	PGconn		   *pg;			 /* owned; NULL in BACKOFF and CLOSED */
	uv_poll_t	   *poll;		 /* owned, freed in its close callback; NULL when not watching */
	int				poll_fd;	 /* the socket poll watches */
	int				poll_events; /* what poll watches now (0: stopped) */
	uv_timer_t		timer;
	size_t			attempt; /* index into pg_pool_backoff_ms for the next failure */
	bool			ever_ready;
	bool			copy_started; /* the server started COPY: the connection cannot continue */
	PgPoolQuery	   *query;		  /* owned; the query in flight (BUSY) */
	PGresult	   *res;		  /* owned; result of query (or of SETUP) collected so far */
} PgPoolConn;

struct PgPool
{
	uv_loop_t				*loop;
	char					*conninfo; /* owned copy */
	char					*channel;  /* owned copy; NULL: no listener */
	int						 pool_size;
	int						 max_queued;
	int						 query_timeout_ms;
	int						 connect_timeout_ms;
	PgPoolConn				*conns; /* pool_size query connections, then the listener */
	int						 nconns;
	int						 up_count;	  /* query connections READY or BUSY */
	bool					 listen_up;	  /* LISTEN active and hooks->ready called */
	PgPoolList				 queue;		  /* waiting for a connection */
	PgPoolList				 done;		  /* finished, callbacks not yet called */
	uv_timer_t				 queue_timer; /* fires at the queue head's deadline */
	uv_idle_t				 deliver;	  /* runs while the done list is not empty */
	const PgPoolListenHooks *hooks;		  /* borrowed */
	void					*hooks_ud;
	uint64_t				 rng;
	bool					 destroying;
	int open_handles; /* the PgPool is freed when this drops to 0 after destroy */
};

static void pg_pool_conn_start(PgPoolConn *c);
static void pg_pool_conn_down(PgPoolConn *c, const char *why, bool immediate);
static void pg_pool_dispatch(PgPool *p);
static void pg_pool_on_deliver(uv_idle_t *handle);

/* ------------------------------------------------------------------------------------------ */
/* Small helpers */

/* Copies src into dst as one line: libpq's messages end in a newline and may span several
 * ("server closed the connection unexpectedly\n\tThis probably means..."). */
static void
pg_pool_copy_message(char *dst, size_t size, const char *src)
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

/* Equal jitter: connections that failed together do not retry together. */
static uint64_t
pg_pool_backoff_delay(PgPool *p, size_t attempt)
{
	return backoff_delay_ms(&pg_pool_backoff, attempt, backoff_random(&p->rng));
}

static bool
pg_pool_result_ok(const PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);

	return st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
}

/* Server errors that say something about the server or the connection, not about the query. */
static bool
pg_pool_sqlstate_is_system(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strncmp(sqlstate, "53", 2) == 0 ||
		   strncmp(sqlstate, "57", 2) == 0 || strncmp(sqlstate, "58", 2) == 0 ||
		   strncmp(sqlstate, "XX", 2) == 0;
}

/* Server notices would go to stderr unformatted; route them through the log. */
static void
pg_pool_on_notice(void *arg, const PGresult *res)
{
	PgPoolConn *c = arg;
	const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	if (msg == NULL)
		msg = PQresultErrorMessage(res);
	if (severity != NULL && strcmp(severity, "NOTICE") != 0 && strcmp(severity, "INFO") != 0 &&
		strcmp(severity, "LOG") != 0 && strncmp(severity, "DEBUG", 5) != 0)
		log_warn("pg_pool: %s: server says %s: %s", c->name, severity, msg);
	else
		log_debug("pg_pool: %s: server says %s: %s", c->name, severity ? severity : "?", msg);
}

/* ------------------------------------------------------------------------------------------ */
/* Handles */

static void
pg_pool_handle_closed(PgPool *p)
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

/* For timers and the idle handle; their data is the PgPool by then. Thread: loop. */
static void
pg_pool_on_handle_close(uv_handle_t *handle)
{
	pg_pool_handle_closed(handle->data);
}

/* Thread: loop. */
static void
pg_pool_on_poll_close(uv_handle_t *handle)
{
	PgPoolConn *c = handle->data;
	PgPool	   *p = c->p;

	free(handle);
	pg_pool_handle_closed(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Query lists */

static void
pg_pool_list_push(PgPoolList *l, PgPoolQuery *q)
{
	q->next = NULL;
	if (l->tail != NULL)
		l->tail->next = q;
	else
		l->head = q;
	l->tail = q;
	l->count++;
}

static PgPoolQuery *
pg_pool_list_pop(PgPoolList *l)
{
	PgPoolQuery *q = l->head;

	if (q == NULL)
		return NULL;
	l->head = q->next;
	if (l->head == NULL)
		l->tail = NULL;
	l->count--;
	q->next = NULL;
	return q;
}

/* Finished: the callback runs on the next loop iteration (or in pg_pool_destroy). */
static void
pg_pool_done_push(PgPool *p, PgPoolQuery *q)
{
	pg_pool_list_push(&p->done, q);
	if (!p->destroying)
		uv_idle_start(&p->deliver, pg_pool_on_deliver);
}

/* A failure pg_pool itself decided (not a server error). Shutting down is not counted. */
static void __attribute__((format(printf, 4, 5)))
pg_pool_query_fail(PgPool *p, PgPoolQuery *q, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", sqlstate);
	va_start(ap, fmt);
	vsnprintf(q->message, sizeof(q->message), fmt, ap);
	va_end(ap);
	if (!p->destroying)
		metrics_count(M_PG_QUERY_ERRORS, 1);
	pg_pool_done_push(p, q);
}

/* Calls the callback once and frees the query. */
static void
pg_pool_deliver_one(PgPoolQuery *q)
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

/* The one place query callbacks run (besides pg_pool_destroy). Thread: loop. */
static void
pg_pool_on_deliver(uv_idle_t *handle)
{
	PgPool *p = handle->data;
	/* Only what is there now: failures a callback causes wait one turn, so a callback that
	 * retries at once cannot keep the loop here. */
	size_t n = p->done.count;

	while (n-- > 0)
	{
		PgPoolQuery *q = pg_pool_list_pop(&p->done);

		if (q == NULL)
			break;
		pg_pool_deliver_one(q);
		if (p->destroying)
			return; /* pg_pool_destroy delivered the rest and closed this handle */
	}
	if (p->done.head == NULL)
		uv_idle_stop(&p->deliver);
}

/* ------------------------------------------------------------------------------------------ */
/* Pool state */

/* The only assignment of a connection's state. */
static void
pg_pool_conn_set_state(PgPoolConn *c, PgPoolConnState state)
{
	PgPool *p = c->p;
	bool was_up = !c->listener && (c->state == PG_POOL_CONN_READY || c->state == PG_POOL_CONN_BUSY);
	bool is_up = !c->listener && (state == PG_POOL_CONN_READY || state == PG_POOL_CONN_BUSY);

	c->state = state;
	if (was_up == is_up)
		return;
	p->up_count += is_up ? 1 : -1;
	if (p->up_count == (is_up ? 1 : 0))
		metrics_gauge_set(G_PG_UP, p->up_count > 0 ? 1 : 0);
}

/* No query connection is up or even trying: waiting cannot help. */
static bool
pg_pool_pool_down(const PgPool *p)
{
	for (int i = 0; i < p->pool_size; i++)
	{
		PgPoolConnState st = p->conns[i].state;

		if (st == PG_POOL_CONN_CONNECTING || st == PG_POOL_CONN_SETUP || st == PG_POOL_CONN_READY ||
			st == PG_POOL_CONN_BUSY)
			return false;
	}
	return true;
}

static PgPoolConn *
pg_pool_ready_conn(PgPool *p)
{
	for (int i = 0; i < p->pool_size; i++)
		if (p->conns[i].state == PG_POOL_CONN_READY)
			return &p->conns[i];
	return NULL;
}

static void
pg_pool_on_queue_timer(uv_timer_t *handle)
{
	pg_pool_dispatch(handle->data);
}

static void
pg_pool_queue_timer_update(PgPool *p)
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
	uv_timer_start(&p->queue_timer, pg_pool_on_queue_timer,
				   p->queue.head->deadline > now ? p->queue.head->deadline - now : 0, 0);
}

static void
pg_pool_fail_queue(PgPool *p, const char *sqlstate, const char *message)
{
	PgPoolQuery *q;

	while ((q = pg_pool_list_pop(&p->queue)) != NULL)
		pg_pool_query_fail(p, q, sqlstate, "%s", message);
	pg_pool_queue_timer_update(p);
}

/* ------------------------------------------------------------------------------------------ */
/* Socket watching */

static void pg_pool_on_poll(uv_poll_t *handle, int status, int events);

static void
pg_pool_conn_unwatch(PgPoolConn *c)
{
	if (c->poll == NULL)
		return;
	uv_close((uv_handle_t *) c->poll, pg_pool_on_poll_close);
	c->poll = NULL;
	c->poll_events = 0;
}

/* Watches PQsocket() for events, re-creating the poll when the socket changed. */
static int
pg_pool_conn_watch(PgPoolConn *c, int events)
{
	int fd = PQsocket(c->pg);
	int rc;

	if (fd < 0)
		return -1;
	if (c->poll != NULL && c->poll_fd != fd)
		pg_pool_conn_unwatch(c);
	if (c->poll == NULL)
	{
		c->poll = malloc(sizeof(*c->poll));
		if (c->poll == NULL)
			return -1;
		rc = uv_poll_init_socket(c->p->loop, c->poll, fd);
		if (rc < 0)
		{
			log_error("pg_pool: %s: cannot watch socket %d: %s", c->name, fd, uv_strerror(rc));
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
		rc = uv_poll_start(c->poll, events, pg_pool_on_poll);
		if (rc < 0)
		{
			log_error("pg_pool: %s: cannot watch socket %d: %s", c->name, fd, uv_strerror(rc));
			return -1;
		}
		c->poll_events = events;
	}
	return 0;
}

/* Sends what libpq buffered; watches writable until all is out. */
static int
pg_pool_conn_flush(PgPoolConn *c)
{
	int rc = PQflush(c->pg);

	if (rc < 0)
		return -1;
	return pg_pool_conn_watch(c, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* ------------------------------------------------------------------------------------------ */
/* Connection life */

static void
pg_pool_on_conn_timer(uv_timer_t *handle)
{
	PgPoolConn	*c = handle->data;
	PgPool		*p = c->p;
	PgPoolQuery *q;

	switch (c->state)
	{
		case PG_POOL_CONN_BACKOFF:
			pg_pool_conn_start(c);
			return;
		case PG_POOL_CONN_CONNECTING:
		case PG_POOL_CONN_SETUP:
			pg_pool_conn_down(c, "connect timed out", false);
			return;
		case PG_POOL_CONN_BUSY:
			q = c->query;
			c->query = NULL;
			PQclear(c->res);
			c->res = NULL;
			log_warn("pg_pool: %s: query ran past its deadline (%d ms); closing the connection",
					 c->name, p->query_timeout_ms);
			pg_pool_query_fail(p, q, "57014",
							   "canceling query: no result within %d ms (connection closed)",
							   p->query_timeout_ms);
			/* The server is not at fault: reconnect without waiting. */
			pg_pool_conn_down(c, "query timed out", true);
			return;
		case PG_POOL_CONN_READY:
		case PG_POOL_CONN_CLOSED:
			return;
	}
}

/* Starts a non-blocking connect (PQconnectStartParams does no DNS lookup with hostaddr=). */
static void
pg_pool_conn_start(PgPoolConn *c)
{
	PgPool *p = c->p;
	/* The caller's conninfo is expanded first; the keywords after it override it. */
	const char *keywords[] = {"dbname", "application_name", NULL};
	const char *values[] = {p->conninfo, c->listener ? "sociald-listen" : "sociald-pool", NULL};

	c->pg = PQconnectStartParams(keywords, values, 1);
	if (c->pg == NULL)
	{
		pg_pool_conn_down(c, "out of memory", false);
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
	{
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	PQsetNoticeReceiver(c->pg, pg_pool_on_notice, c);
	pg_pool_conn_set_state(c, PG_POOL_CONN_CONNECTING);
	uv_timer_start(&c->timer, pg_pool_on_conn_timer, (uint64_t) p->connect_timeout_ms, 0);
	/* Before the first PQconnectPoll, libpq wants the socket writable (connect finished). */
	if (pg_pool_conn_watch(c, UV_WRITABLE) < 0)
		pg_pool_conn_down(c, "cannot watch the socket", false);
}

/*
 * The connection failed or was lost: fail its query with 08006, drop it, and connect again —
 * at once after a query timeout (the server is fine), else after the backoff delay. The
 * caller must not use c's state afterwards: the listener's lost hook runs here, last.
 */
static void
pg_pool_conn_down(PgPoolConn *c, const char *why, bool immediate)
{
	PgPool *p = c->p;
	char	reason[PG_POOL_MESSAGE_MAX];
	bool	established = c->state == PG_POOL_CONN_SETUP || c->state == PG_POOL_CONN_READY ||
					   c->state == PG_POOL_CONN_BUSY;
	bool	 lost_listen = c->listener && p->listen_up;
	uint64_t delay;

	/* why may point into c->pg, which is about to go. */
	pg_pool_copy_message(reason, sizeof(reason), why);
	if (established)
		log_warn("pg_pool: %s: connection lost: %s", c->name, reason);
	else if (c->attempt == 0)
		log_warn("pg_pool: %s: cannot connect: %s", c->name, reason);
	else
		log_info("pg_pool: %s: cannot connect (attempt %zu): %s", c->name, c->attempt + 1, reason);

	if (c->query != NULL)
	{
		pg_pool_query_fail(p, c->query, "08006", "connection to PostgreSQL lost: %s", reason);
		c->query = NULL;
	}
	PQclear(c->res);
	c->res = NULL;
	c->copy_started = false;
	pg_pool_conn_unwatch(c); /* before PQfinish closes the socket */
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
		pg_pool_conn_set_state(c, PG_POOL_CONN_BACKOFF);
		pg_pool_conn_start(c);
	}
	else
	{
		delay = pg_pool_backoff_delay(p, c->attempt);
		c->attempt = backoff_next_attempt(&pg_pool_backoff, c->attempt);
		pg_pool_conn_set_state(c, PG_POOL_CONN_BACKOFF);
		uv_timer_start(&c->timer, pg_pool_on_conn_timer, delay, 0);
	}

	if (!c->listener && pg_pool_pool_down(p))
		pg_pool_fail_queue(p, "08001", "no connection to PostgreSQL");
	if (lost_listen && p->hooks != NULL && p->hooks->lost != NULL)
		p->hooks->lost(p->hooks_ud);
}

/* PQconnectPoll said OK: go non-blocking and run the setup statement. */
static void
pg_pool_conn_connected(PgPoolConn *c)
{
	PgPool	   *p = c->p;
	const char *sql = pg_pool_pool_setup_sql;
	/* The channel has at most PG_POOL_MAX_CHANNEL bytes, so its quoted form at most twice
	 * that + 2. */
	char  listen_sql[2 * PG_POOL_MAX_CHANNEL + 16];
	char *ident = NULL;

	if (PQsetnonblocking(c->pg, 1) != 0)
	{
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	if (c->listener)
	{
		/* Quoted: the channel is a configured identifier, never spliced in raw. */
		ident = PQescapeIdentifier(c->pg, p->channel, strlen(p->channel));
		if (ident == NULL)
		{
			pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
			return;
		}
		snprintf(listen_sql, sizeof(listen_sql), "LISTEN %s", ident);
		PQfreemem(ident);
		sql = listen_sql;
	}
	if (!PQsendQuery(c->pg, sql))
	{
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	pg_pool_conn_set_state(c, PG_POOL_CONN_SETUP);
	if (pg_pool_conn_flush(c) < 0)
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
}

/* One step of the connection handshake; the socket was ready as PQconnectPoll asked. */
static void
pg_pool_conn_connect_step(PgPoolConn *c)
{
	/* PQconnectPoll may close this socket and open another: stop watching it first. */
	uv_poll_stop(c->poll);
	c->poll_events = 0;
	switch (PQconnectPoll(c->pg))
	{
		case PGRES_POLLING_READING:
			if (pg_pool_conn_watch(c, UV_READABLE) < 0)
				pg_pool_conn_down(c, "cannot watch the socket", false);
			return;
		case PGRES_POLLING_WRITING:
			if (pg_pool_conn_watch(c, UV_WRITABLE) < 0)
				pg_pool_conn_down(c, "cannot watch the socket", false);
			return;
		case PGRES_POLLING_OK:
			pg_pool_conn_connected(c);
			return;
		default:
			pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
			return;
	}
}

/* The setup statement finished. Returns -1 when c went down or pg_pool_destroy ran. */
static int
pg_pool_conn_setup_done(PgPoolConn *c)
{
	PgPool	   *p = c->p;
	PGresult   *res = c->res;
	const char *msg;
	char		why[PG_POOL_MESSAGE_MAX];

	c->res = NULL;
	if (res == NULL || !pg_pool_result_ok(res))
	{
		msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
		if (msg == NULL)
			msg = res != NULL ? PQresultErrorMessage(res) : "no result";
		if (c->listener)
		{
			snprintf(why, sizeof(why), "LISTEN failed: %s", msg);
			PQclear(res);
			pg_pool_conn_down(c, why, false);
			return -1;
		}
		log_warn("pg_pool: %s: \"%s\" failed (%s): a timed-out statement keeps running on the "
				 "server until it ends",
				 c->name, pg_pool_pool_setup_sql, msg);
	}
	PQclear(res);

	uv_timer_stop(&c->timer);
	c->attempt = 0;
	if (c->ever_ready)
		metrics_count(M_PG_RECONNECTS, 1);
	log_info("pg_pool: %s: %s", c->name, c->ever_ready ? "reconnected" : "connected");
	c->ever_ready = true;
	pg_pool_conn_set_state(c, PG_POOL_CONN_READY);
	if (c->listener)
	{
		p->listen_up = true;
		metrics_gauge_set(G_PG_LISTEN_UP, 1);
		log_info("pg_pool: listening on channel \"%s\"", p->channel);
		if (p->hooks != NULL && p->hooks->ready != NULL)
			p->hooks->ready(p->hooks_ud);
		return p->destroying ? -1 : 0;
	}
	pg_pool_dispatch(p);
	return c->pg == NULL ? -1 : 0;
}

/* The query in flight finished: queue its callback, give the connection the next query. */
static void
pg_pool_conn_query_done(PgPoolConn *c)
{
	PgPool		*p = c->p;
	PgPoolQuery *q = c->query;
	PGresult	*res = c->res;
	const char	*code;

	c->query = NULL;
	c->res = NULL;
	uv_timer_stop(&c->timer);
	pg_pool_conn_set_state(c, PG_POOL_CONN_READY);

	q->res = res;
	if (res == NULL)
		pg_pool_query_fail(p, q, "XX000", "PostgreSQL returned no result");
	else if (pg_pool_result_ok(res))
		pg_pool_done_push(p, q);
	else if (PQresultStatus(res) == PGRES_FATAL_ERROR ||
			 PQresultStatus(res) == PGRES_NONFATAL_ERROR)
	{
		code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", code != NULL ? code : "XX000");
		if (PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) == NULL)
			pg_pool_copy_message(q->message, sizeof(q->message), PQresultErrorMessage(res));
		if (code == NULL || pg_pool_sqlstate_is_system(code))
			metrics_count(M_PG_QUERY_ERRORS, 1);
		pg_pool_done_push(p, q);
	}
	else
		pg_pool_query_fail(p, q, "XX000", "unexpected result status %s",
						   PQresStatus(PQresultStatus(res)));
	pg_pool_dispatch(p);
}

/* Keeps the first result, or the first error: a single statement has one result. */
static void
pg_pool_conn_collect(PgPoolConn *c, PGresult *r)
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
	else if (!pg_pool_result_ok(r) && pg_pool_result_ok(c->res))
	{
		PQclear(c->res);
		c->res = r;
	}
	else
		PQclear(r);
}

static void
pg_pool_conn_notifies(PgPoolConn *c)
{
	PgPool	 *p = c->p;
	PGnotify *n;

	while (!p->destroying && c->pg != NULL && (n = PQnotifies(c->pg)) != NULL)
	{
		/* Query connections never LISTEN; whatever reaches them is dropped. */
		if (c->listener && c->state == PG_POOL_CONN_READY && p->hooks != NULL &&
			p->hooks->notify != NULL)
			p->hooks->notify(p->hooks_ud, n->extra);
		PQfreemem(n);
	}
}

/* Socket activity on an established connection. */
static void
pg_pool_conn_io(PgPoolConn *c, int events)
{
	PgPool		*p = c->p;
	PgPoolQuery *q;
	PGresult	*r;
	bool		 finished = false;

	if ((events & UV_READABLE) && !PQconsumeInput(c->pg))
	{
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	/* With TLS, OpenSSL can hold decrypted bytes the socket no longer signals: libpq looks at
	 * SSL_pending only in its own blocking waits, and a TLS record can be larger than one read
	 * takes. Read again while a result is incomplete (or on the listener, for notifications);
	 * when nothing is buffered, an extra read is one recv() that finds nothing. */
	for (int i = 0; i < PG_POOL_TLS_EXTRA_READS && (events & UV_READABLE) && PQsslInUse(c->pg) &&
					(c->listener || PQisBusy(c->pg));
		 i++)
	{
		if (!PQconsumeInput(c->pg))
		{
			pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
			return;
		}
	}
	/* After reading, libpq may be able to send more (PQflush docs): retry while pending. */
	if ((c->poll_events & UV_WRITABLE) && pg_pool_conn_flush(c) < 0)
	{
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	if (c->state == PG_POOL_CONN_SETUP || c->state == PG_POOL_CONN_BUSY)
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
			pg_pool_conn_collect(c, r);
		}
	}
	if (PQstatus(c->pg) == CONNECTION_BAD)
	{
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
		return;
	}
	if (c->copy_started)
	{
		/* Leaving COPY takes protocol steps this module has no use for: start afresh. */
		q = c->query;
		c->query = NULL;
		if (q != NULL)
			pg_pool_query_fail(p, q, "0A000", "COPY is not supported on pg_pool connections");
		pg_pool_conn_down(c, "the server started COPY", true);
		return;
	}
	if (finished)
	{
		if (c->state == PG_POOL_CONN_SETUP)
		{
			if (pg_pool_conn_setup_done(c) < 0)
				return;
		}
		else
			pg_pool_conn_query_done(c);
		if (p->destroying || c->pg == NULL)
			return;
	}
	pg_pool_conn_notifies(c);
}

/* Thread: loop. */
static void
pg_pool_on_poll(uv_poll_t *handle, int status, int events)
{
	PgPoolConn *c = handle->data;
	char		why[PG_POOL_MESSAGE_MAX];

	if (status < 0)
	{
		/* libuv reports POLLERR as UV_EBADF and has stopped watching. libpq knows better what
		 * went wrong: while connecting, PQconnectPoll reads the socket error (and may try the
		 * next address); later, PQconsumeInput finds the reset. */
		c->poll_events = 0;
		if (c->state == PG_POOL_CONN_CONNECTING)
		{
			pg_pool_conn_connect_step(c);
			return;
		}
		if (c->state == PG_POOL_CONN_SETUP || c->state == PG_POOL_CONN_READY ||
			c->state == PG_POOL_CONN_BUSY)
		{
			snprintf(why, sizeof(why), "socket error: %s", uv_strerror(status));
			pg_pool_conn_down(c, PQconsumeInput(c->pg) ? why : PQerrorMessage(c->pg), false);
		}
		return;
	}
	if (c->state == PG_POOL_CONN_CONNECTING)
		pg_pool_conn_connect_step(c);
	else if (c->state == PG_POOL_CONN_SETUP || c->state == PG_POOL_CONN_READY ||
			 c->state == PG_POOL_CONN_BUSY)
		pg_pool_conn_io(c, events);
}

/* ------------------------------------------------------------------------------------------ */
/* Queries */

/* Sends q on the READY connection c. */
static void
pg_pool_conn_send(PgPoolConn *c, PgPoolQuery *q, uint64_t now)
{
	c->query = q;
	pg_pool_conn_set_state(c, PG_POOL_CONN_BUSY);
	uv_timer_start(&c->timer, pg_pool_on_conn_timer, q->deadline - now, 0);
	if (!PQsendQueryParams(c->pg, q->sql, q->nparams, NULL, (const char *const *) q->values, NULL,
						   NULL, 0) ||
		pg_pool_conn_flush(c) < 0)
		pg_pool_conn_down(c, PQerrorMessage(c->pg), false);
}

/* Hands queued queries to READY connections; fails the ones whose deadline passed. */
static void
pg_pool_dispatch(PgPool *p)
{
	uint64_t	 now = uv_now(p->loop);
	PgPoolQuery *q;
	PgPoolConn	*c;

	if (p->destroying)
		return;
	while (p->queue.head != NULL)
	{
		if (p->queue.head->deadline <= now)
		{
			q = pg_pool_list_pop(&p->queue);
			pg_pool_query_fail(p, q, "57014",
							   "canceling query: no PostgreSQL connection became free within %d ms",
							   p->query_timeout_ms);
			continue;
		}
		c = pg_pool_ready_conn(p);
		if (c == NULL)
			break;
		pg_pool_conn_send(c, pg_pool_list_pop(&p->queue), now);
	}
	pg_pool_queue_timer_update(p);
}

/* Returns -1 (and cb will never be called) only for invalid arguments, a query larger than
 * PG_POOL_MAX_QUERY_BYTES, out of memory, or a PgPool being destroyed. */
int
pg_pool_query(PgPool *p, const char *sql, int nparams, const char *const *values, PgPoolResultFn cb,
			  void *ud)
{
	const char	*reject = NULL;
	size_t		 size = sizeof(PgPoolQuery);
	size_t		 len;
	PgPoolQuery *q;
	char		*pos;

	if (p == NULL || sql == NULL || cb == NULL || nparams < 0 || nparams > PG_POOL_MAX_PARAMS ||
		(nparams > 0 && values == NULL))
	{
		log_error("pg_pool_query: invalid arguments (sql %s, %d parameters, callback %s)",
				  sql != NULL ? "given" : "NULL", nparams, cb != NULL ? "given" : "NULL");
		return -1;
	}
	if (p->destroying)
	{
		log_error("pg_pool_query: called during pg_pool_destroy");
		return -1;
	}

	if (pg_pool_pool_down(p))
		reject = "08001";
	else if (p->queue.count >= (size_t) p->max_queued && pg_pool_ready_conn(p) == NULL)
		reject = "53300";
	else
	{
		/* One allocation: the struct, the parameter array, then the strings. */
		size += (size_t) nparams * sizeof(char *) + strlen(sql) + 1;
		for (int i = 0; i < nparams && size <= PG_POOL_MAX_QUERY_BYTES; i++)
			if (values[i] != NULL)
				size += strlen(values[i]) + 1;
		if (size > PG_POOL_MAX_QUERY_BYTES)
		{
			log_error("pg_pool_query: query with its parameters exceeds %d bytes",
					  PG_POOL_MAX_QUERY_BYTES);
			return -1;
		}
	}

	q = malloc(size);
	if (q == NULL)
	{
		log_error("pg_pool_query: out of memory");
		return -1;
	}
	memset(q, 0, sizeof(*q));
	q->cb = cb;
	q->ud = ud;
	q->deadline = uv_now(p->loop) + (uint64_t) p->query_timeout_ms;

	if (reject != NULL)
	{
		/* Deferred like every callback: never from inside pg_pool_query. */
		if (strcmp(reject, "08001") == 0)
			pg_pool_query_fail(p, q, reject, "no connection to PostgreSQL");
		else
			pg_pool_query_fail(p, q, reject, "too many queries waiting for PostgreSQL (max %d)",
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
	pg_pool_list_push(&p->queue, q);
	pg_pool_dispatch(p);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Life cycle */

/* Warns about host names that libpq would resolve with a blocking lookup at every connect;
 * reads connect_timeout (libpq ignores it in non-blocking mode: the timer applies it). */
static void
pg_pool_inspect_conninfo(PgPool *p, PQconninfoOption *opts)
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

	p->connect_timeout_ms = PG_POOL_CONNECT_TIMEOUT_MS;
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
		log_warn("pg_pool: host \"%s\" without hostaddr=: its name lookup blocks the event loop at "
				 "every connect",
				 item);
		return;
	}
}

PgPool *
pg_pool_create(uv_loop_t *loop, const PgPoolOptions *opts)
{
	PgPool			 *p = NULL;
	PQconninfoOption *parsed = NULL;
	const char		 *err = NULL;
	char			 *parse_err = NULL;

	if (loop == NULL || opts == NULL || opts->conninfo == NULL)
		err = "no loop, options or conninfo";
	else if (opts->pool_size < 1 || opts->pool_size > PG_POOL_MAX_POOL)
		err = "pool_size is out of range 1.." PG_POOL_STR(PG_POOL_MAX_POOL);
	else if (opts->max_queued < 0 || opts->max_queued > PG_POOL_MAX_QUEUED)
		err = "max_queued is out of range 0.." PG_POOL_STR(PG_POOL_MAX_QUEUED);
	else if (opts->query_timeout_ms < 1)
		err = "query_timeout_ms must be positive";
	else if (opts->listen_channel != NULL && (opts->listen_channel[0] == '\0' ||
											  strlen(opts->listen_channel) > PG_POOL_MAX_CHANNEL))
		err = "listen_channel must have 1.." PG_POOL_STR(PG_POOL_MAX_CHANNEL) " bytes";
	if (err != NULL)
	{
		log_error("pg_pool_create: %s", err);
		return NULL;
	}
	parsed = PQconninfoParse(opts->conninfo, &parse_err);
	if (parsed == NULL)
	{
		log_error("pg_pool_create: bad conninfo: %s",
				  parse_err != NULL ? parse_err : "out of memory");
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
	pg_pool_inspect_conninfo(p, parsed);
	PQconninfoFree(parsed);
	parsed = NULL;
	p->rng = backoff_seed(uv_hrtime() ^ (uint64_t) (uintptr_t) p);

	/* Nothing below can fail: from here on p is only released through pg_pool_destroy. */
	uv_timer_init(loop, &p->queue_timer);
	p->queue_timer.data = p;
	uv_idle_init(loop, &p->deliver);
	p->deliver.data = p;
	p->open_handles = 2;
	for (int i = 0; i < p->nconns; i++)
	{
		PgPoolConn *c = &p->conns[i];

		c->p = p;
		c->listener = i == p->pool_size;
		if (c->listener)
			snprintf(c->name, sizeof(c->name), "listener");
		else
			snprintf(c->name, sizeof(c->name), "pool#%d", i + 1);
		c->state = PG_POOL_CONN_BACKOFF;
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
		p->open_handles++;
	}

	metrics_gauge_set(G_PG_UP, 0);
	if (p->channel != NULL)
		metrics_gauge_set(G_PG_LISTEN_UP, 0);
	for (int i = 0; i < p->nconns; i++)
		pg_pool_conn_start(&p->conns[i]);
	return p;

fail:
	log_error("pg_pool_create: out of memory");
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
pg_pool_destroy(PgPool *p)
{
	PgPoolQuery *q;

	if (p == NULL || p->destroying)
		return;
	p->destroying = true;

	for (int i = 0; i < p->nconns; i++)
	{
		PgPoolConn *c = &p->conns[i];

		if (c->query != NULL)
			pg_pool_query_fail(p, c->query, "08006",
							   "connection to PostgreSQL closed: shutting down");
		c->query = NULL;
		PQclear(c->res);
		c->res = NULL;
		pg_pool_conn_unwatch(c);
		if (c->pg != NULL)
		{
			PQfinish(c->pg);
			c->pg = NULL;
		}
		pg_pool_conn_set_state(c, PG_POOL_CONN_CLOSED);
		c->timer.data = p; /* a closing timer never fires: its data now serves the close */
		uv_close((uv_handle_t *) &c->timer, pg_pool_on_handle_close);
	}
	while ((q = pg_pool_list_pop(&p->queue)) != NULL)
		pg_pool_query_fail(p, q, "08006", "not sent to PostgreSQL: shutting down");
	if (p->listen_up)
	{
		p->listen_up = false;
		metrics_gauge_set(G_PG_LISTEN_UP, 0);
	}
	uv_close((uv_handle_t *) &p->queue_timer, pg_pool_on_handle_close);
	uv_close((uv_handle_t *) &p->deliver, pg_pool_on_handle_close);

	/* Callbacks may run pg_pool_query (refused now) or pg_pool_destroy (a no-op now). */
	while ((q = pg_pool_list_pop(&p->done)) != NULL)
		pg_pool_deliver_one(q);
}

void
pg_pool_set_listen_hooks(PgPool *p, const PgPoolListenHooks *hooks, void *ud)
{
	if (p == NULL)
		return;
	p->hooks = hooks;
	p->hooks_ud = ud;
}

int
pg_pool_connected_count(const PgPool *p)
{
	return p != NULL ? p->up_count : 0;
}

int
pg_pool_listen_up(const PgPool *p)
{
	return p != NULL && p->listen_up ? 1 : 0;
}
