/*
 * pg_pool.h — PostgreSQL on the loop: a small pool of non-blocking libpq connections for calls,
 * and one LISTEN connection.
 *
 * Nothing here blocks: PQconnectStart/PQconnectPoll, PQsendQueryParams, uv_poll on the socket
 * (doc/event-loop.md). Each pooled connection runs one query at a time; queries wait in a bounded
 * FIFO. A lost connection is reconnected with backoff and jitter; queries on it fail with
 * SQLSTATE 08006. While no connection is up, queries fail at once (08001) instead of hanging.
 * All callbacks run on the loop thread.
 */
#ifndef SOCIALD_PG_POOL_H
#define SOCIALD_PG_POOL_H

#include <libpq-fe.h>
#include <stddef.h>
#include <uv.h>

typedef struct PgPool PgPool;

typedef struct PgPoolOptions
{
	const char *conninfo;		  /* libpq connection string; use hostaddr= to avoid DNS blocking */
	int			pool_size;		  /* query connections */
	int			max_queued;		  /* queries waiting for a connection; beyond: 53300 at once */
	int			query_timeout_ms; /* a query running longer fails with 57014 (and is cancelled) */
	const char *listen_channel;	  /* e.g. "social_events"; NULL: no listener */
} PgPoolOptions;

/*
 * Result of one query. On success: res is the PGRES_TUPLES_OK/COMMAND_OK result and sqlstate
 * is NULL. On failure: sqlstate is the five-character SQLSTATE (the server's, or 08006
 * connection lost, 08001 not connected, 57014 timeout, 53300 queue full), message a
 * human-readable text, res the error result or NULL. Everything is valid only during the call.
 */
typedef void (*PgPoolResultFn)(void *ud, const PGresult *res, const char *sqlstate,
							   const char *message);

typedef struct PgPoolListenHooks
{
	/* LISTEN is active: at start and after every reconnect. Catch up from the log now. */
	void (*ready)(void *ud);
	/* One notification on the channel; payload valid during the call. */
	void (*notify)(void *ud, const char *payload);
	/* The listening connection was lost (notifications may be missed until ready again). */
	void (*lost)(void *ud);
} PgPoolListenHooks;

/* Starts connecting (asynchronously). opts strings are copied. */
PgPool *pg_pool_create(uv_loop_t *loop, const PgPoolOptions *opts);
/* Closes every connection (handles freed in their close callbacks); pending queries get 08006.
 * NULL is a no-op. */
void pg_pool_destroy(PgPool *p);

/* Sets the listener hooks (before the loop runs). hooks and ud must outlive p. */
void pg_pool_set_listen_hooks(PgPool *p, const PgPoolListenHooks *hooks, void *ud);

/* Queues a query with text parameters ($1..$n; values may be NULL for SQL NULL). The strings
 * are copied. cb is always called exactly once, never from inside pg_pool_query. */
int pg_pool_query(PgPool *p, const char *sql, int nparams, const char *const *values,
				  PgPoolResultFn cb, void *ud) __attribute__((warn_unused_result));

/* For /status and /metrics. */
int pg_pool_connected_count(const PgPool *p);
int pg_pool_listen_up(const PgPool *p);

#endif /* SOCIALD_PG_POOL_H */
