/*
 * test_pg_pool.c — black-box tests of pg_pool against a real PostgreSQL.
 *
 * The server comes from the environment (PGHOST, PGPORT; PGUSER and PGDATABASE are read by
 * libpq itself): run as `tools/pg_harness -- daemon/build/unit/test_pg_pool`. Without PGHOST/PGPORT
 * only the tests that need no server run; the rest call cmocka's skip(), so they are reported
 * as skipped and never counted as passed (make check fails on a skip).
 *
 * Every test drives its own uv loop with uv_run and ends by destroying the PgPool and checking
 * that the loop closes with no handle left. Waits are "run the loop until a condition holds";
 * their time limits are safety nets, never the thing asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "store/pg_pool.h"

#define SAFETY_MS 10000
#define MAX_RESULTS 64

static char test_conninfo[512];

/* One query's outcome, filled by on_result. */
typedef struct Result
{
	int	 seq; /* 1, 2, ... in the order callbacks ran; 0: not yet */
	int	 calls;
	bool ok;
	char sqlstate[6];
	char message[256];
	bool had_res;
	int	 ntuples;
	char value[3][64]; /* first row, first columns; "<null>" for SQL NULL */
} Result;

typedef struct Ctx
{
	uv_loop_t		  loop;
	PgPool			 *p;
	int				  pool_size;
	int				  seq;
	int				  ready;
	int				  lost;
	int				  notifies;
	char			  payload[128];
	PgPoolListenHooks hooks;
	/* For the re-entrancy test. */
	bool destroy_in_callback;
	bool in_pgl_query;
} Ctx;

typedef struct Call
{
	Ctx	   *ctx;
	Result *r;
} Call;

static Call calls[MAX_RESULTS];

static void
on_result(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	Call   *call = ud;
	Result *r = call->r;

	/* A callback is never called from inside pg_pool_query. */
	assert_false(call->ctx->in_pgl_query);
	r->calls++;
	r->seq = ++call->ctx->seq;
	r->ok = sqlstate == NULL;
	r->had_res = res != NULL;
	if (sqlstate != NULL)
	{
		assert_int_equal(strlen(sqlstate), 5);
		assert_non_null(message);
		snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", sqlstate);
		snprintf(r->message, sizeof(r->message), "%s", message);
	}
	else
	{
		assert_non_null(res);
		assert_null(message);
		r->ntuples = PQntuples(res);
		for (int i = 0; i < 3 && i < PQnfields(res) && r->ntuples > 0; i++)
			snprintf(r->value[i], sizeof(r->value[i]), "%s",
					 PQgetisnull(res, 0, i) ? "<null>" : PQgetvalue(res, 0, i));
	}
	if (call->ctx->destroy_in_callback)
	{
		call->ctx->destroy_in_callback = false;
		pg_pool_destroy(call->ctx->p);
		call->ctx->p = NULL;
	}
}

/* Submits a query on p; asserts it was accepted and that no callback ran meanwhile. */
static void
submit_on(Ctx *ctx, PgPool *p, Result *r, int slot, const char *sql, int nparams,
		  const char *const *values)
{
	int rc;

	assert_true(slot < MAX_RESULTS);
	memset(r, 0, sizeof(*r));
	calls[slot].ctx = ctx;
	calls[slot].r = r;
	ctx->in_pgl_query = true;
	rc = pg_pool_query(p, sql, nparams, values, on_result, &calls[slot]);
	ctx->in_pgl_query = false;
	assert_int_equal(rc, 0);
	assert_int_equal(r->calls, 0);
}

static void
submit(Ctx *ctx, Result *r, int slot, const char *sql, int nparams, const char *const *values)
{
	submit_on(ctx, ctx->p, r, slot, sql, nparams, values);
}

/* ---- loop driving ---- */

static void
on_safety(uv_timer_t *t)
{
	*(bool *) t->data = true;
}

/* Runs the loop until cond holds; false if the safety net ran out first. */
static bool
run_until(Ctx *ctx, bool (*cond)(Ctx *, const void *), const void *arg, unsigned timeout_ms)
{
	uv_timer_t t;
	bool	   expired = false;

	uv_timer_init(&ctx->loop, &t);
	t.data = &expired;
	uv_timer_start(&t, on_safety, timeout_ms, 0);
	while (!cond(ctx, arg) && !expired)
		uv_run(&ctx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *) &t, NULL);
	uv_run(&ctx->loop, UV_RUN_NOWAIT); /* t lives on this stack: let the close finish */
	return cond(ctx, arg);
}

static bool
cond_done(Ctx *ctx, const void *arg)
{
	return ((const Result *) arg)->calls > 0;
}

static bool
cond_connected(Ctx *ctx, const void *arg)
{
	return pg_pool_connected_count(ctx->p) == ctx->pool_size;
}

static bool
cond_ready(Ctx *ctx, const void *arg)
{
	return ctx->ready >= *(const int *) arg && pg_pool_listen_up(ctx->p);
}

static bool
cond_lost(Ctx *ctx, const void *arg)
{
	return ctx->lost >= *(const int *) arg;
}

static bool
cond_notifies(Ctx *ctx, const void *arg)
{
	return ctx->notifies >= *(const int *) arg;
}

typedef struct Many
{
	Result *r;
	int		n;
} Many;

static bool
cond_all_done(Ctx *ctx, const void *arg)
{
	const Many *m = arg;

	for (int i = 0; i < m->n; i++)
		if (m->r[i].calls == 0)
			return false;
	return true;
}

static void
wait_done(Ctx *ctx, Result *r)
{
	assert_true(run_until(ctx, cond_done, r, SAFETY_MS));
	assert_int_equal(r->calls, 1);
}

/* ---- listener hooks ---- */

static void
hook_ready(void *ud)
{
	((Ctx *) ud)->ready++;
}

static void
hook_notify(void *ud, const char *payload)
{
	Ctx *ctx = ud;

	ctx->notifies++;
	snprintf(ctx->payload, sizeof(ctx->payload), "%s", payload);
}

static void
hook_lost(void *ud)
{
	((Ctx *) ud)->lost++;
}

/* ---- setup ---- */

static void
ctx_open_with(Ctx *ctx, const char *conninfo, int pool_size, int max_queued, int timeout_ms,
			  const char *channel, bool wait)
{
	PgPoolOptions opts = {.conninfo = conninfo,
						  .pool_size = pool_size,
						  .max_queued = max_queued,
						  .query_timeout_ms = timeout_ms,
						  .listen_channel = channel};
	int			  one = 1;

	memset(ctx, 0, sizeof(*ctx));
	assert_int_equal(uv_loop_init(&ctx->loop), 0);
	ctx->pool_size = pool_size;
	ctx->p = pg_pool_create(&ctx->loop, &opts);
	assert_non_null(ctx->p);
	ctx->hooks.ready = hook_ready;
	ctx->hooks.notify = hook_notify;
	ctx->hooks.lost = hook_lost;
	pg_pool_set_listen_hooks(ctx->p, &ctx->hooks, ctx);
	if (!wait)
		return;
	assert_true(run_until(ctx, cond_connected, NULL, SAFETY_MS));
	if (channel != NULL)
	{
		assert_true(run_until(ctx, cond_ready, &one, SAFETY_MS));
		assert_int_equal(ctx->ready, 1);
	}
}

static void
ctx_open(Ctx *ctx, int pool_size, int max_queued, int timeout_ms, const char *channel)
{
	ctx_open_with(ctx, test_conninfo, pool_size, max_queued, timeout_ms, channel, true);
}

/* Destroys the PgPool (if a callback did not already) and checks every handle got closed. */
static void
ctx_close(Ctx *ctx)
{
	pg_pool_destroy(ctx->p);
	ctx->p = NULL;
	assert_int_equal(uv_run(&ctx->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&ctx->loop), 0);
}

/* Does not return without a server: skip() ends the test as skipped. */
static bool
have_server(void)
{
	if (test_conninfo[0] != '\0')
		return true;
	print_message("skipped: no PostgreSQL (set PGHOST and PGPORT, or run under "
				  "tools/pg_harness)\n");
	skip();
	return false;
}

/* ---- tests that need no server ---- */

static void
test_bad_arguments(void **state)
{
	uv_loop_t	  loop;
	PgPoolOptions good = {.conninfo = "hostaddr=127.0.0.1 port=1",
						  .pool_size = 1,
						  .max_queued = 1,
						  .query_timeout_ms = 1000,
						  .listen_channel = NULL};
	PgPoolOptions o;
	char		  longname[80];
	PgPool		 *p;
	Ctx			  ctx;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_null(pg_pool_create(NULL, &good));
	assert_null(pg_pool_create(&loop, NULL));
	o = good;
	o.conninfo = NULL;
	assert_null(pg_pool_create(&loop, &o));
	o = good;
	o.conninfo = "host='unterminated";
	assert_null(pg_pool_create(&loop, &o));
	o = good;
	o.conninfo = "no_such_keyword=1";
	assert_null(pg_pool_create(&loop, &o));
	o = good;
	o.pool_size = 0;
	assert_null(pg_pool_create(&loop, &o));
	o = good;
	o.max_queued = -1;
	assert_null(pg_pool_create(&loop, &o));
	o = good;
	o.query_timeout_ms = 0;
	assert_null(pg_pool_create(&loop, &o));
	o = good;
	o.listen_channel = "";
	assert_null(pg_pool_create(&loop, &o));
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	o.listen_channel = longname;
	assert_null(pg_pool_create(&loop, &o));
	assert_int_equal(uv_loop_close(&loop), 0);

	pg_pool_destroy(NULL);
	assert_int_equal(pg_pool_connected_count(NULL), 0);
	assert_int_equal(pg_pool_listen_up(NULL), 0);

	ctx_open_with(&ctx, good.conninfo, 1, 1, 1000, NULL, false);
	p = ctx.p;
	assert_int_equal(pg_pool_query(p, NULL, 0, NULL, on_result, NULL), -1);
	assert_int_equal(pg_pool_query(p, "SELECT 1", -1, NULL, on_result, NULL), -1);
	assert_int_equal(pg_pool_query(p, "SELECT 1", 1, NULL, on_result, NULL), -1);
	assert_int_equal(pg_pool_query(p, "SELECT 1", 70000, NULL, on_result, NULL), -1);
	assert_int_equal(pg_pool_query(p, "SELECT 1", 0, NULL, NULL, NULL), -1);
	assert_int_equal(pg_pool_query(NULL, "SELECT 1", 0, NULL, on_result, NULL), -1);
	ctx_close(&ctx);
}

/* Nothing listens on port 1: calls must fail at once with 08001, never hang. */
static void
test_down_fails_promptly(void **state)
{
	Ctx		 ctx;
	Result	 r[2];
	uint64_t start;

	ctx_open_with(&ctx, "hostaddr=127.0.0.1 port=1", 2, 10, 30000, "pg_pool_down", false);
	start = uv_hrtime();
	submit(&ctx, &r[0], 0, "SELECT 1", 0, NULL);
	wait_done(&ctx, &r[0]);
	assert_string_equal(r[0].sqlstate, "08001");
	assert_false(r[0].had_res);
	/* Later calls too (the pool keeps retrying in the background). */
	submit(&ctx, &r[1], 1, "SELECT 1", 0, NULL);
	wait_done(&ctx, &r[1]);
	assert_string_equal(r[1].sqlstate, "08001");
	assert_true((uv_hrtime() - start) / 1000000 < 2000);
	assert_int_equal(pg_pool_connected_count(ctx.p), 0);
	assert_int_equal(pg_pool_listen_up(ctx.p), 0);
	assert_int_equal(ctx.ready, 0);
	ctx_close(&ctx);
}

/* ---- tests against the server ---- */

static void
test_simple_query(void **state)
{
	Ctx	   ctx;
	Result r;

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 5000, NULL);
	submit(&ctx, &r, 0, "SELECT 1 + 1, 'two'::text", 0, NULL);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_int_equal(r.ntuples, 1);
	assert_string_equal(r.value[0], "2");
	assert_string_equal(r.value[1], "two");
	/* A command without rows is a success too. */
	submit(&ctx, &r, 0, "SET application_name = 'sociald-pool'", 0, NULL);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_int_equal(r.ntuples, 0);
	ctx_close(&ctx);
}

static void
test_parameters(void **state)
{
	Ctx			ctx;
	Result		r;
	const char *values[3] = {"it's \"quoted\"; DROP TABLE x", NULL, "héllo"};

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 5000, NULL);
	submit(&ctx, &r, 0, "SELECT $1::text, $2::text IS NULL, length($3::text)", 3, values);
	/* The strings are copied: the caller's buffers may go at once. */
	values[0] = "changed";
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_string_equal(r.value[0], "it's \"quoted\"; DROP TABLE x");
	assert_string_equal(r.value[1], "t");
	assert_string_equal(r.value[2], "5");

	submit(&ctx, &r, 0, "SELECT $1::int", 1, (const char *const[]){NULL});
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_string_equal(r.value[0], "<null>");

	/* A bad parameter is the server's error, not the connection's. */
	submit(&ctx, &r, 0, "SELECT $1::int", 1, (const char *const[]){"twelve"});
	wait_done(&ctx, &r);
	assert_string_equal(r.sqlstate, "22P02");
	ctx_close(&ctx);
}

static void
test_server_errors(void **state)
{
	Ctx	   ctx;
	Result r;

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 5000, NULL);
	submit(&ctx, &r, 0, "SELECT 1/0", 0, NULL);
	wait_done(&ctx, &r);
	assert_false(r.ok);
	assert_true(r.had_res);
	assert_string_equal(r.sqlstate, "22012");
	assert_non_null(strstr(r.message, "division by zero"));

	submit(&ctx, &r, 0,
		   "DO $$ BEGIN RAISE EXCEPTION 'custom failure' USING ERRCODE = 'SC001'; END $$", 0, NULL);
	wait_done(&ctx, &r);
	assert_string_equal(r.sqlstate, "SC001");
	assert_string_equal(r.message, "custom failure");

	submit(&ctx, &r, 0, "SELEC 1", 0, NULL);
	wait_done(&ctx, &r);
	assert_string_equal(r.sqlstate, "42601");

	/* Two statements are refused by the extended protocol. */
	submit(&ctx, &r, 0, "SELECT 1; SELECT 2", 0, NULL);
	wait_done(&ctx, &r);
	assert_string_equal(r.sqlstate, "42601");

	/* The connection is still good. */
	submit(&ctx, &r, 0, "SELECT 7", 0, NULL);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_string_equal(r.value[0], "7");
	assert_int_equal(pg_pool_connected_count(ctx.p), 1);
	ctx_close(&ctx);
}

/* More queries than connections: all complete, in submission order per connection. */
static void
test_queue_order(void **state)
{
	enum
	{
		N = 40
	};
	Ctx			ctx;
	Result		r[N];
	char		num[N][16];
	const char *values[1];
	Many		all = {r, N};
	int			last_seq_a = 0, last_seq_b = 0;
	char		pid_a[64] = "", pid_b[64] = "";

	if (!have_server())
		return;
	ctx_open(&ctx, 2, N, 10000, NULL);
	for (int i = 0; i < N; i++)
	{
		snprintf(num[i], sizeof(num[i]), "%d", i);
		values[0] = num[i];
		submit(&ctx, &r[i], i, "SELECT $1::int, pg_backend_pid()", 1, values);
	}
	assert_true(run_until(&ctx, cond_all_done, &all, SAFETY_MS));
	for (int i = 0; i < N; i++)
	{
		int *last;

		assert_true(r[i].ok);
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(atoi(r[i].value[0]), i);
		if (pid_a[0] == '\0' || strcmp(pid_a, r[i].value[1]) == 0)
		{
			snprintf(pid_a, sizeof(pid_a), "%s", r[i].value[1]);
			last = &last_seq_a;
		}
		else
		{
			if (pid_b[0] == '\0')
				snprintf(pid_b, sizeof(pid_b), "%s", r[i].value[1]);
			assert_string_equal(pid_b, r[i].value[1]);
			last = &last_seq_b;
		}
		/* Later submissions on one connection complete later. */
		assert_true(r[i].seq > *last);
		*last = r[i].seq;
	}
	/* Both connections took work. */
	assert_true(pid_a[0] != '\0' && pid_b[0] != '\0');
	ctx_close(&ctx);
}

static void
test_queue_overflow(void **state)
{
	Ctx	   ctx;
	Result r[4];
	Many   all = {r, 4};

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 2, 10000, NULL);
	submit(&ctx, &r[0], 0, "SELECT pg_sleep(0.2), 'a'", 0, NULL); /* runs */
	submit(&ctx, &r[1], 1, "SELECT 'b'", 0, NULL);				  /* waits */
	submit(&ctx, &r[2], 2, "SELECT 'c'", 0, NULL);				  /* waits */
	submit(&ctx, &r[3], 3, "SELECT 'd'", 0, NULL);				  /* the queue is full */
	assert_true(run_until(&ctx, cond_all_done, &all, SAFETY_MS));
	assert_string_equal(r[3].sqlstate, "53300");
	assert_false(r[3].had_res);
	assert_int_equal(r[3].seq, 1); /* refused at once, answered first */
	assert_true(r[0].ok);
	assert_string_equal(r[0].value[1], "a");
	assert_true(r[1].ok);
	assert_string_equal(r[1].value[0], "b");
	assert_true(r[2].ok);
	assert_string_equal(r[2].value[0], "c");
	assert_true(r[0].seq < r[1].seq && r[1].seq < r[2].seq);
	ctx_close(&ctx);
}

static bool
probe_gone(Ctx *ctx, const void *arg)
{
	const Result *r = arg;

	return r->calls > 0 && r->ok && strcmp(r->value[0], "0") == 0;
}

static void
on_probe_again(uv_timer_t *t)
{
	*(bool *) t->data = true;
}

static void
test_timeout(void **state)
{
	Ctx		 ctx;
	Result	 r;
	uint64_t start;
	uint64_t elapsed_ms;
	int		 probes = 0;

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 200, NULL);
	start = uv_hrtime();
	submit(&ctx, &r, 0, "SELECT pg_sleep(2)", 0, NULL);
	wait_done(&ctx, &r);
	elapsed_ms = (uv_hrtime() - start) / 1000000;
	assert_string_equal(r.sqlstate, "57014");
	assert_true(elapsed_ms >= 150 && elapsed_ms < 1500);

	/* The pool recovers: the next query runs on a fresh connection. */
	submit(&ctx, &r, 0, "SELECT 42", 0, NULL);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_string_equal(r.value[0], "42");
	assert_true(run_until(&ctx, cond_connected, NULL, SAFETY_MS));

	/* The statement is really stopped on the server, not left running to its end. */
	submit(&ctx, &r, 0, "SELECT pg_sleep(60) /* pg_pool-timeout-probe */", 0, NULL);
	wait_done(&ctx, &r);
	assert_string_equal(r.sqlstate, "57014");
	for (;;)
	{
		uv_timer_t t;
		bool	   again = false;

		submit(&ctx, &r, 0,
			   "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_pool-timeout-probe%' "
			   "AND pid <> pg_backend_pid()",
			   0, NULL);
		wait_done(&ctx, &r);
		if (probe_gone(&ctx, &r))
			break;
		/* Only 57014 (the probe's own connection is being replaced) or a count > 0. */
		assert_true(r.ok || strcmp(r.sqlstate, "57014") == 0);
		assert_true(++probes < 60); /* ~6 s: a stopped backend goes within ~1 s */
		uv_timer_init(&ctx.loop, &t);
		t.data = &again;
		uv_timer_start(&t, on_probe_again, 100, 0);
		while (!again)
			uv_run(&ctx.loop, UV_RUN_ONCE);
		uv_close((uv_handle_t *) &t, NULL);
		uv_run(&ctx.loop, UV_RUN_NOWAIT);
	}
	ctx_close(&ctx);
}

static void
test_listen_notify(void **state)
{
	Ctx	   ctx;
	Result r;
	/* Needs quoting: spaces, capitals and a double quote. */
	const char *channel = "PgPool Test \"chan\"";
	const char *values[2] = {channel, "payload-1"};
	int			one = 1;

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 5000, channel);
	assert_int_equal(pg_pool_listen_up(ctx.p), 1);
	submit(&ctx, &r, 0, "SELECT pg_notify($1, $2)", 2, values);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_true(run_until(&ctx, cond_notifies, &one, SAFETY_MS));
	assert_string_equal(ctx.payload, "payload-1");
	assert_int_equal(ctx.lost, 0);
	ctx_close(&ctx);
}

static void
test_listener_reconnect(void **state)
{
	Ctx			ctx;
	Result		r;
	const char *channel = "pg_pool_test_reconnect";
	const char *values[2] = {channel, "after-reconnect"};
	int			one = 1, two = 2;

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 5000, channel);
	submit(&ctx, &r, 0,
		   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
		   "WHERE application_name = 'sociald-listen'",
		   0, NULL);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_true(atoi(r.value[0]) >= 1);
	assert_true(run_until(&ctx, cond_lost, &one, SAFETY_MS));
	assert_int_equal(ctx.lost, 1);
	assert_true(run_until(&ctx, cond_ready, &two, SAFETY_MS));
	assert_int_equal(ctx.ready, 2);
	assert_int_equal(pg_pool_listen_up(ctx.p), 1);

	submit(&ctx, &r, 0, "SELECT pg_notify($1, $2)", 2, values);
	wait_done(&ctx, &r);
	assert_true(r.ok);
	assert_true(run_until(&ctx, cond_notifies, &one, SAFETY_MS));
	assert_string_equal(ctx.payload, "after-reconnect");
	ctx_close(&ctx);
}

static void
test_pool_backend_killed(void **state)
{
	Ctx	   ctx;
	Result r[6];
	Many   rest = {&r[2], 4};

	if (!have_server())
		return;
	ctx_open(&ctx, 2, 10, 30000, NULL);
	submit(&ctx, &r[0], 0, "SELECT pg_sleep(20)", 0, NULL);
	submit(&ctx, &r[1], 1,
		   "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
		   "WHERE application_name = 'sociald-pool' AND pid <> pg_backend_pid()",
		   0, NULL);
	wait_done(&ctx, &r[0]);
	assert_string_equal(r[0].sqlstate, "08006");
	wait_done(&ctx, &r[1]);
	assert_true(r[1].ok);
	assert_true(atoi(r[1].value[0]) >= 1);

	/* Queries go on: on the surviving connection at once, on both after the reconnect. */
	for (int i = 2; i < 6; i++)
		submit(&ctx, &r[i], i, "SELECT 'fine'", 0, NULL);
	assert_true(run_until(&ctx, cond_all_done, &rest, SAFETY_MS));
	for (int i = 2; i < 6; i++)
	{
		assert_true(r[i].ok);
		assert_string_equal(r[i].value[0], "fine");
	}
	assert_true(run_until(&ctx, cond_connected, NULL, SAFETY_MS));
	ctx_close(&ctx);
}

/* The only query connection dies: its query fails with 08006, the queued ones at once with
 * 08001 (nothing left to wait for), and the pool serves again after the reconnect. */
static void
test_whole_pool_lost(void **state)
{
	Ctx			  ctx;
	Result		  r[4];
	PgPoolOptions o = {.conninfo = test_conninfo,
					   .pool_size = 1,
					   .max_queued = 10,
					   .query_timeout_ms = 30000,
					   .listen_channel = NULL};
	PgPool		 *killer;

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 30000, NULL);
	killer = pg_pool_create(&ctx.loop, &o);
	assert_non_null(killer);
	submit(&ctx, &r[0], 0, "SELECT pg_sleep(20)", 0, NULL);
	submit(&ctx, &r[1], 1, "SELECT 'queued'", 0, NULL);
	submit_on(&ctx, killer, &r[2], 2,
			  "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
			  "WHERE application_name = 'sociald-pool' AND pid <> pg_backend_pid()",
			  0, NULL);
	wait_done(&ctx, &r[2]);
	assert_true(r[2].ok);
	wait_done(&ctx, &r[0]);
	assert_string_equal(r[0].sqlstate, "08006");
	wait_done(&ctx, &r[1]);
	assert_string_equal(r[1].sqlstate, "08001");
	assert_true(r[0].seq < r[1].seq);

	assert_true(run_until(&ctx, cond_connected, NULL, SAFETY_MS));
	submit(&ctx, &r[3], 3, "SELECT 'back'", 0, NULL);
	wait_done(&ctx, &r[3]);
	assert_true(r[3].ok);
	assert_string_equal(r[3].value[0], "back");
	pg_pool_destroy(killer);
	ctx_close(&ctx);
}

/* pg_pool_destroy answers everything pending with 08006, before it returns. */
static void
test_destroy_fails_pending(void **state)
{
	Ctx	   ctx;
	Result r[3];

	if (!have_server())
		return;
	ctx_open(&ctx, 1, 10, 30000, NULL);
	submit(&ctx, &r[0], 0, "SELECT pg_sleep(20)", 0, NULL);
	submit(&ctx, &r[1], 1, "SELECT 1", 0, NULL);
	submit(&ctx, &r[2], 2, "SELECT 2", 0, NULL);
	pg_pool_destroy(ctx.p);
	ctx.p = NULL;
	for (int i = 0; i < 3; i++)
	{
		assert_int_equal(r[i].calls, 1);
		assert_string_equal(r[i].sqlstate, "08006");
	}
	assert_true(r[0].seq < r[1].seq && r[1].seq < r[2].seq);
	ctx_close(&ctx);
}

/* A callback may destroy the PgPool; every other callback still runs exactly once. */
static void
test_destroy_from_callback(void **state)
{
	Ctx	   ctx;
	Result r[3];
	Many   all = {r, 3};

	if (!have_server())
		return;
	ctx_open(&ctx, 2, 10, 30000, NULL);
	submit(&ctx, &r[0], 0, "SELECT 1", 0, NULL);
	submit(&ctx, &r[1], 1, "SELECT 2", 0, NULL);
	submit(&ctx, &r[2], 2, "SELECT pg_sleep(20)", 0, NULL);
	ctx.destroy_in_callback = true;
	assert_true(run_until(&ctx, cond_all_done, &all, SAFETY_MS));
	assert_null(ctx.p);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i].calls, 1);
	assert_string_equal(r[2].sqlstate, "08006");
	ctx_close(&ctx);
}

int
main(void)
{
	const char			   *host = getenv("PGHOST");
	const char			   *port = getenv("PGPORT");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),		  cmocka_unit_test(test_down_fails_promptly),
		cmocka_unit_test(test_simple_query),		  cmocka_unit_test(test_parameters),
		cmocka_unit_test(test_server_errors),		  cmocka_unit_test(test_queue_order),
		cmocka_unit_test(test_queue_overflow),		  cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_listen_notify),		  cmocka_unit_test(test_listener_reconnect),
		cmocka_unit_test(test_pool_backend_killed),	  cmocka_unit_test(test_whole_pool_lost),
		cmocka_unit_test(test_destroy_fails_pending), cmocka_unit_test(test_destroy_from_callback),
	};

	if (host != NULL && host[0] != '\0' && port != NULL && port[0] != '\0')
		/* hostaddr= for an address: a host name would be looked up, blocking the loop. */
		snprintf(test_conninfo, sizeof(test_conninfo), "%s=%s port=%s",
				 host[0] == '/' ? "host" : "hostaddr", host, port);
	else
		printf("no PostgreSQL (PGHOST/PGPORT not set): the tests that need one are skipped\n");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
