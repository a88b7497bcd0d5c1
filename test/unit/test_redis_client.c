/*
 * test_redis_client.c — black-box tests of redis against a real redis-server.
 *
 * Each test that needs a server gets a fresh redis-server of its own on a free loopback port
 * (started in the test's setup, stopped by its pid in the teardown, also when the test fails;
 * PR_SET_PDEATHSIG stops it if this process dies), so a test may kill, pause or reconfigure it.
 * Without redis-server on PATH the tests run against REDIS_URL when it is set, except those that
 * must kill or pause the server; with neither they call cmocka's skip(), so they are reported as
 * skipped, never as passed (make check fails on a skip).
 *
 * Every test drives its own uv loop and ends by destroying its RedisClient and checking that the
 * loop closes with no handle left. Waits are "run the loop until a condition holds"; their time
 * limits are safety nets, never the thing asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "store/redis_client.h"

#define SAFETY_MS 10000
#define MAX_RESULTS 64

/* ---- the server ---- */

static char	 server_bin[PATH_MAX]; /* redis-server; "" when not installed */
static char	 server_dir[64];	   /* private dir: --dir and the server logs */
static pid_t server_pid;		   /* the server of the running test; 0 when none */
static int	 server_port;
static pid_t extra_pid;		  /* a second server a test starts; stopped by the teardown too */
static char	 server_url[128]; /* what tests connect to */
static bool	 own_server;	  /* server_url is a server this process controls */

static bool
find_server(void)
{
	const char *path = getenv("PATH");
	const char *p = path != NULL ? path : "/usr/local/bin:/usr/bin:/bin";

	while (*p != '\0')
	{
		size_t n = strcspn(p, ":");

		if (n > 0 && n + sizeof("/redis-server") < sizeof(server_bin))
		{
			snprintf(server_bin, sizeof(server_bin), "%.*s/redis-server", (int) n, p);
			if (access(server_bin, X_OK) == 0)
				return true;
		}
		p += n;
		if (*p == ':')
			p++;
	}
	server_bin[0] = '\0';
	return false;
}

/* A port that was free a moment ago. */
static int
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t		   len = sizeof(sa);
	int				   fd = socket(AF_INET, SOCK_STREAM, 0);
	int				   port = 0;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
		getsockname(fd, (struct sockaddr *) &sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Blocking PING over a plain socket (test code, not on any loop). */
static bool
server_answers(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
	struct timeval	   tv = {.tv_sec = 1};
	char			   buf[16] = {0};
	int				   fd = socket(AF_INET, SOCK_STREAM, 0);
	bool			   ok = false;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 && write(fd, "PING\r\n", 6) == 6 &&
		read(fd, buf, sizeof(buf) - 1) > 0)
		ok = strncmp(buf, "+PONG", 5) == 0;
	close(fd);
	return ok;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Stops a server we started, by its pid: SIGCONT (it may be paused), SIGTERM, SIGKILL. */
static void
stop_pid(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGCONT);
	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++)
	{
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Starts redis-server on port; its pid once it answers PING, else 0. */
static pid_t
spawn_server(int port)
{
	char  port_str[16], log_path[128];
	pid_t pid;
	int	  status;

	snprintf(port_str, sizeof(port_str), "%d", port);
	snprintf(log_path, sizeof(log_path), "%s/redis-%d.log", server_dir, port);
	pid = fork();
	if (pid < 0)
		return 0;
	if (pid == 0)
	{
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		/* The server must not outlive a crashed test. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0)
		{
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		execl(server_bin, server_bin, "--port", port_str, "--bind", "127.0.0.1", "--save", "",
			  "--appendonly", "no", "--daemonize", "no", "--dir", server_dir, (char *) NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++)
	{
		if (server_answers(port))
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid)
			return 0; /* exited: port taken, or no such binary */
		sleep_ms(10);
	}
	stop_pid(pid);
	return 0;
}

static int
setup_server(void **state)
{
	if (!own_server)
		return 0;
	for (int attempt = 0; attempt < 5; attempt++)
	{
		server_port = free_port();
		if (server_port > 0 && (server_pid = spawn_server(server_port)) > 0)
		{
			snprintf(server_url, sizeof(server_url), "redis://127.0.0.1:%d", server_port);
			return 0;
		}
	}
	fprintf(stderr, "cannot start %s (log in %s)\n", server_bin, server_dir);
	return -1;
}

static int
teardown_server(void **state)
{
	stop_pid(extra_pid);
	extra_pid = 0;
	stop_pid(server_pid);
	server_pid = 0;
	return 0;
}

/* These do not return when the server is missing: skip() ends the test as skipped. */
static bool
have_server(void)
{
	if (server_url[0] != '\0')
		return true;
	print_message("skipped: no redis-server installed and no REDIS_URL\n");
	skip();
	return false;
}

static bool
have_own_server(void)
{
	if (own_server)
		return true;
	print_message("skipped: needs a redis-server of its own to kill or pause\n");
	skip();
	return false;
}

/* ---- loop driving ---- */

typedef struct Result
{
	int		  calls;
	bool	  sync; /* called from inside redis_client_command/redis_client_eval */
	bool	  had_reply;
	int		  type;
	long long integer;
	size_t	  len;
	char	  str[4096];
	char	  error[256];
	size_t	  elements;
	char	  elem[4][64];
	uint64_t  at; /* uv_now when called */
} Result;

typedef struct Ctx
{
	uv_loop_t	 loop;
	RedisClient *redis;
	int			 ups;
	int			 downs;
	bool		 in_call;
	/* messages */
	int	   messages;
	void  *msg_ud;
	char   channel[64];
	char   payload[128];
	size_t payload_len;
	/* destroy from inside a callback */
	bool destroy_on_reply;
	bool destroy_on_message;
	int	 calls_after_destroy;
	bool destroyed;
} Ctx;

typedef struct Call
{
	Ctx	   *ctx;
	Result *r;
} Call;

static Call calls[MAX_RESULTS];

static void
on_result(void *ud, const redisReply *reply, const char *error)
{
	Call   *call = ud;
	Result *r = call->r;
	Ctx	   *ctx = call->ctx;

	r->calls++;
	r->sync = ctx->in_call;
	r->at = uv_now(&ctx->loop);
	if (ctx->destroyed)
		ctx->calls_after_destroy++;
	r->had_reply = reply != NULL;
	if (error != NULL)
		snprintf(r->error, sizeof(r->error), "%s", error);
	if (reply != NULL)
	{
		r->type = reply->type;
		r->integer = reply->integer;
		if (reply->str != NULL)
		{
			r->len = reply->len < sizeof(r->str) ? reply->len : sizeof(r->str) - 1;
			memcpy(r->str, reply->str, r->len);
			r->str[r->len] = '\0';
		}
		r->elements = reply->elements;
		for (size_t i = 0; i < reply->elements && i < 4; i++)
		{
			const redisReply *e = reply->element[i];

			if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS)
				snprintf(r->elem[i], sizeof(r->elem[i]), "%s", e->str);
			else if (e->type == REDIS_REPLY_INTEGER)
				snprintf(r->elem[i], sizeof(r->elem[i]), "%lld", e->integer);
			else
				snprintf(r->elem[i], sizeof(r->elem[i]), "<type %d>", e->type);
		}
		/* An error reply is both. */
		if (reply->type == REDIS_REPLY_ERROR)
			assert_non_null(error);
		else
			assert_null(error);
	}
	else
		assert_non_null(error);
	if (ctx->destroy_on_reply && !ctx->destroyed)
	{
		ctx->destroyed = true;
		redis_client_destroy(ctx->redis);
	}
}

static void
on_up(void *ud)
{
	((Ctx *) ud)->ups++;
}

static void
on_down(void *ud)
{
	((Ctx *) ud)->downs++;
}

static void
on_message(void *ud, const char *channel, const char *payload, size_t len)
{
	Ctx **pctx = ud;
	Ctx	 *ctx = *pctx;

	ctx->messages++;
	ctx->msg_ud = ud;
	snprintf(ctx->channel, sizeof(ctx->channel), "%s", channel);
	ctx->payload_len = len;
	memset(ctx->payload, 0, sizeof(ctx->payload));
	memcpy(ctx->payload, payload, len < sizeof(ctx->payload) ? len : sizeof(ctx->payload) - 1);
	assert_int_equal(payload[len], '\0');
	if (ctx->destroy_on_message && !ctx->destroyed)
	{
		ctx->destroyed = true;
		redis_client_destroy(ctx->redis);
	}
}

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
cond_never(Ctx *ctx, const void *arg)
{
	return false;
}

/* Runs the loop for ms, whatever happens. */
static void
run_for(Ctx *ctx, unsigned ms)
{
	run_until(ctx, cond_never, NULL, ms);
}

static bool
cond_done(Ctx *ctx, const void *arg)
{
	return ((const Result *) arg)->calls > 0;
}

static bool
cond_ups(Ctx *ctx, const void *arg)
{
	return ctx->ups >= *(const int *) arg;
}

static bool
cond_downs(Ctx *ctx, const void *arg)
{
	return ctx->downs >= *(const int *) arg;
}

static bool
cond_messages(Ctx *ctx, const void *arg)
{
	return ctx->messages >= *(const int *) arg;
}

static bool
cond_kvs_up(Ctx *ctx, const void *arg)
{
	return redis_client_is_up((const RedisClient *) arg);
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
wait_ups(Ctx *ctx, int n)
{
	assert_true(run_until(ctx, cond_ups, &n, SAFETY_MS));
}

static void
wait_done(Ctx *ctx, Result *r)
{
	assert_true(run_until(ctx, cond_done, r, SAFETY_MS));
	assert_int_equal(r->calls, 1);
}

static RedisClient *
make_kvs(Ctx *ctx, const RedisClientOptions *base)
{
	RedisClientOptions o = {0};
	RedisClientHooks   hooks = {.up = on_up, .down = on_down};
	RedisClient		  *redis;

	if (base != NULL)
		o = *base;
	if (o.url == NULL)
		o.url = server_url;
	redis = redis_client_create(&ctx->loop, &o);
	assert_non_null(redis);
	redis_client_set_hooks(redis, &hooks, ctx);
	return redis;
}

static void
ctx_open(Ctx *ctx, const RedisClientOptions *o)
{
	memset(ctx, 0, sizeof(*ctx));
	assert_int_equal(uv_loop_init(&ctx->loop), 0);
	ctx->redis = make_kvs(ctx, o);
}

static void
ctx_close(Ctx *ctx)
{
	if (!ctx->destroyed)
		redis_client_destroy(ctx->redis);
	ctx->redis = NULL;
	assert_int_equal(uv_run(&ctx->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&ctx->loop), 0);
}

/* Sends argv (lens NULL: strings) on redis; asserts it was accepted and not answered inside. */
static void
send_on(Ctx *ctx, RedisClient *redis, Result *r, int slot, int argc, const char **argv,
		const size_t *lens)
{
	assert_true(slot < MAX_RESULTS);
	memset(r, 0, sizeof(*r));
	calls[slot].ctx = ctx;
	calls[slot].r = r;
	ctx->in_call = true;
	assert_int_equal(redis_client_command(redis, on_result, &calls[slot], argc, argv, lens), 0);
	ctx->in_call = false;
	assert_int_equal(r->calls, 0);
}

/* NULL-terminated string arguments. */
static void
send_cmd(Ctx *ctx, Result *r, int slot, ...)
{
	const char *argv[16];
	int			argc = 0;
	va_list		ap;

	va_start(ap, slot);
	while (argc < 16 && (argv[argc] = va_arg(ap, const char *)) != NULL)
		argc++;
	va_end(ap);
	send_on(ctx, ctx->redis, r, slot, argc, argv, NULL);
}

static void
send_eval(Ctx *ctx, const RedisClientScript *script, Result *r, int slot, int nkeys, int argc,
		  const char **argv)
{
	memset(r, 0, sizeof(*r));
	calls[slot].ctx = ctx;
	calls[slot].r = r;
	ctx->in_call = true;
	assert_int_equal(
		redis_client_eval(ctx->redis, script, on_result, &calls[slot], nkeys, argc, argv, NULL), 0);
	ctx->in_call = false;
	assert_int_equal(r->calls, 0);
}

/* ---- tests that need no server ---- */

typedef struct UrlCase
{
	const char *url;
	bool		ok;
	const char *host;
	int			port;
	int			db;
	const char *user;
	const char *password;
	const char *error; /* a substring of the error */
} UrlCase;

static const UrlCase url_cases[] = {
	{"redis://127.0.0.1", true, "127.0.0.1", 6379, 0, "", "", NULL},
	{"redis://127.0.0.1:6380", true, "127.0.0.1", 6380, 0, "", "", NULL},
	{"redis://127.0.0.1:6380/", true, "127.0.0.1", 6380, 0, "", "", NULL},
	{"redis://127.0.0.1:6380/15", true, "127.0.0.1", 6380, 15, "", "", NULL},
	{"REDIS://redis.internal_1.svc", true, "redis.internal_1.svc", 6379, 0, "", "", NULL},
	{"redis://:secret@host:1/2", true, "host", 1, 2, "", "secret", NULL},
	{"redis://alice:p%40ss%3Aw%2Fd@host", true, "host", 6379, 0, "alice", "p@ss:w/d", NULL},
	{"redis://alice:p@ss@host", true, "host", 6379, 0, "alice", "p@ss", NULL},
	{"redis://[::1]:7000/3", true, "::1", 7000, 3, "", "", NULL},
	{"redis://[::1]", true, "::1", 6379, 0, "", "", NULL},
	{"", false, NULL, 0, 0, NULL, NULL, "empty"},
	{"rediss://host", false, NULL, 0, 0, NULL, NULL, "TLS"},
	{"http://host", false, NULL, 0, 0, NULL, NULL, "redis://"},
	{"127.0.0.1:6379", false, NULL, 0, 0, NULL, NULL, "redis://"},
	{"redis://", false, NULL, 0, 0, NULL, NULL, "no host"},
	{"redis://:6379", false, NULL, 0, 0, NULL, NULL, "no host"},
	{"redis://host:0", false, NULL, 0, 0, NULL, NULL, "port"},
	{"redis://host:65536", false, NULL, 0, 0, NULL, NULL, "port"},
	{"redis://host:", false, NULL, 0, 0, NULL, NULL, "port"},
	{"redis://host:12x", false, NULL, 0, 0, NULL, NULL, "port"},
	{"redis://host/abc", false, NULL, 0, 0, NULL, NULL, "database"},
	{"redis://host/-1", false, NULL, 0, 0, NULL, NULL, "database"},
	{"redis://host/1/2", false, NULL, 0, 0, NULL, NULL, "database"},
	{"redis://host?db=1", false, NULL, 0, 0, NULL, NULL, "query"},
	{"redis://host#x", false, NULL, 0, 0, NULL, NULL, "query"},
	{"redis://ho st", false, NULL, 0, 0, NULL, NULL, "space"},
	{"redis://ho\tst", false, NULL, 0, 0, NULL, NULL, "control"},
	{"redis://h*st", false, NULL, 0, 0, NULL, NULL, "bad host"},
	{"redis://user@host", false, NULL, 0, 0, NULL, NULL, "needs a password"},
	{"redis://user:@host", false, NULL, 0, 0, NULL, NULL, "empty password"},
	{"redis://:p%4@host", false, NULL, 0, 0, NULL, NULL, "password"},
	{"redis://:p%00x@host", false, NULL, 0, 0, NULL, NULL, "password"},
	{"redis://[::1", false, NULL, 0, 0, NULL, NULL, "unclosed"},
	{"redis://[zz::1]", false, NULL, 0, 0, NULL, NULL, "IPv6"},
	{"redis://[::1]x", false, NULL, 0, 0, NULL, NULL, "after the IPv6"},
};

static void
test_url_parse(void **state)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++)
	{
		const UrlCase	  *c = &url_cases[i];
		RedisClientAddress a;
		char			   err[160];
		int				   rc = redis_client_url_parse(c->url, &a, err, sizeof(err));

		if (c->ok != (rc == 0))
			fail_msg("%s: expected %s, got rc %d (%s)", c->url, c->ok ? "ok" : "error", rc, err);
		if (c->ok)
		{
			assert_string_equal(a.host, c->host);
			assert_int_equal(a.port, c->port);
			assert_int_equal(a.db, c->db);
			assert_string_equal(a.user, c->user);
			assert_string_equal(a.password, c->password);
			assert_string_equal(err, "");
		}
		else if (strstr(err, c->error) == NULL)
			fail_msg("%s: error '%s' does not mention '%s'", c->url, err, c->error);
	}
	/* A tiny error buffer is still terminated. */
	{
		RedisClientAddress a;
		char			   err[4];

		assert_int_equal(redis_client_url_parse("nope", &a, err, sizeof(err)), -1);
		assert_int_equal(strlen(err), 3);
	}
}

static void
test_bad_options(void **state)
{
	uv_loop_t						loop;
	static const RedisClientOptions bad[] = {
		{.url = "http://x"},
		{.url = "redis://h:0"},
		{.host = "bad host"},
		{.host = "h", .port = 70000},
		{.host = "h", .port = -1},
		{.host = "h", .connect_timeout_ms = -5},
		{.host = "h", .command_timeout_ms = 700000},
		{.host = "h", .max_pending = -1},
	};
	RedisClient *redis;

	assert_int_equal(uv_loop_init(&loop), 0);
	assert_null(redis_client_create(&loop, NULL));
	assert_null(redis_client_create(NULL, &bad[0]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(redis_client_create(&loop, &bad[i]));

	/* Defaults: 127.0.0.1:6379; a bracketless IPv6 host works; both endpoints print. */
	redis = redis_client_create(&loop, &(RedisClientOptions){0});
	assert_non_null(redis);
	assert_string_equal(redis_client_endpoint(redis), "127.0.0.1:6379/0");
	redis_client_destroy(redis);
	redis = redis_client_create(&loop, &(RedisClientOptions){.host = "::1", .port = 7001});
	assert_non_null(redis);
	assert_string_equal(redis_client_endpoint(redis), "[::1]:7001/0");
	redis_client_destroy(redis);
	redis_client_destroy(NULL);
	assert_int_equal(redis_client_is_up(NULL), 0);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* Nothing listens: commands fail at once, through the callback, on a later loop turn. */
static void
test_down_fails_fast(void **state)
{
	Ctx			ctx;
	Result		r[2];
	char		url[64];
	const char *sub_argv[] = {"SUBSCRIBE", "x"};
	const char *bad_argv[] = {"GET", NULL};
	uint64_t	sent;

	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", free_port());
	ctx_open(&ctx, &(RedisClientOptions){.url = url});
	sent = uv_now(&ctx.loop);
	send_cmd(&ctx, &r[0], 0, "GET", "k", NULL);
	wait_done(&ctx, &r[0]);
	assert_false(r[0].had_reply);
	assert_false(r[0].sync);
	assert_string_equal(r[0].error, "redis is not connected");
	assert_true(r[0].at - sent < 100);

	/* Programming errors are refused outright and never called back. */
	assert_int_equal(redis_client_command(ctx.redis, on_result, &calls[1], 0, NULL, NULL), -1);
	assert_int_equal(redis_client_command(ctx.redis, NULL, NULL, 1, sub_argv, NULL), -1);
	assert_int_equal(redis_client_command(ctx.redis, on_result, &calls[1], 2, sub_argv, NULL), -1);
	assert_int_equal(redis_client_command(ctx.redis, on_result, &calls[1], 2, bad_argv, NULL), -1);
	assert_int_equal(redis_client_command(ctx.redis, on_result, &calls[1], 3,
										  (const char *[]){"client", "REPLY", "OFF"}, NULL),
					 -1);
	assert_int_equal(redis_client_command(ctx.redis, on_result, &calls[1], 2,
										  (const char *[]){"select", "1"}, NULL),
					 -1);
	assert_null(redis_client_script(ctx.redis, ""));
	assert_int_equal(redis_client_subscribe(ctx.redis, "", on_message, NULL), -1);
	memset(&r[1], 0, sizeof(r[1]));
	run_for(&ctx, 50);
	assert_int_equal(r[1].calls, 0);
	assert_int_equal(ctx.ups, 0);
	assert_int_equal(redis_client_is_up(ctx.redis), 0);
	ctx_close(&ctx);
}

/* ---- tests against a server ---- */

static void
test_round_trip(void **state)
{
	Ctx			 ctx;
	Result		 r[MAX_RESULTS];
	const char	 value[] = {'a', '\0', 'b', '\r', '\n'};
	const char	*argv[3] = {"SET", "kvs:bin", value};
	const size_t lens[3] = {3, 7, sizeof(value)};
	Many		 m = {r + 10, 40};
	char		 n[16];

	if (!have_server())
		return;
	ctx_open(&ctx, NULL);
	wait_ups(&ctx, 1);
	assert_int_equal(redis_client_is_up(ctx.redis), 1);

	send_on(&ctx, ctx.redis, &r[0], 0, 3, argv, lens);
	send_cmd(&ctx, &r[1], 1, "GET", "kvs:bin", NULL);
	send_cmd(&ctx, &r[2], 2, "GET", "kvs:missing", NULL);
	send_cmd(&ctx, &r[3], 3, "INCR", "kvs:bin", NULL);
	send_cmd(&ctx, &r[4], 4, "NOSUCHCOMMAND", NULL);
	send_cmd(&ctx, &r[5], 5, "HSET", "kvs:h", "a", "1", "b", "2", NULL);
	send_cmd(&ctx, &r[6], 6, "HMGET", "kvs:h", "a", "b", "c", NULL);
	assert_int_equal(redis_client_pending(ctx.redis), 7);
	wait_done(&ctx, &r[6]);
	for (int i = 0; i < 7; i++)
		assert_int_equal(r[i].calls, 1);
	assert_int_equal(r[0].type, REDIS_REPLY_STATUS);
	assert_string_equal(r[0].str, "OK");
	assert_int_equal(r[1].type, REDIS_REPLY_STRING);
	assert_int_equal(r[1].len, sizeof(value));
	assert_memory_equal(r[1].str, value, sizeof(value));
	assert_int_equal(r[2].type, REDIS_REPLY_NIL);
	assert_int_equal(r[3].type, REDIS_REPLY_ERROR);
	assert_non_null(strstr(r[3].error, "not an integer"));
	assert_int_equal(r[4].type, REDIS_REPLY_ERROR);
	assert_non_null(strstr(r[4].error, "unknown command"));
	assert_int_equal(r[5].integer, 2);
	assert_int_equal(r[6].type, REDIS_REPLY_ARRAY);
	assert_int_equal(r[6].elements, 3);
	assert_string_equal(r[6].elem[0], "1");
	assert_string_equal(r[6].elem[1], "2");
	assert_string_equal(r[6].elem[2], "<type 4>"); /* nil */

	/* Pipelined: callbacks come back in submission order. */
	for (int i = 0; i < m.n; i++)
		send_cmd(&ctx, &m.r[i], 10 + i, "INCR", "kvs:counter", NULL);
	assert_true(run_until(&ctx, cond_all_done, &m, SAFETY_MS));
	for (int i = 0; i < m.n; i++)
	{
		assert_int_equal(m.r[i].integer, i + 1);
		if (i > 0)
			assert_true(m.r[i].at >= m.r[i - 1].at);
	}
	snprintf(n, sizeof(n), "%d", m.n);
	send_cmd(&ctx, &r[0], 0, "GET", "kvs:counter", NULL);
	wait_done(&ctx, &r[0]);
	assert_string_equal(r[0].str, n);
	assert_int_equal(redis_client_pending(ctx.redis), 0);
	assert_int_equal(ctx.downs, 0);
	ctx_close(&ctx);
}

/* INFO commandstats "cmdstat_<name>:calls=N"; 0 when absent. */
static long
command_calls(Ctx *ctx, const char *name)
{
	Result		r;
	char		key[64];
	const char *p;

	send_cmd(ctx, &r, MAX_RESULTS - 1, "INFO", "commandstats", NULL);
	wait_done(ctx, &r);
	assert_null(r.error[0] ? r.error : NULL);
	snprintf(key, sizeof(key), "cmdstat_%s:calls=", name);
	p = strstr(r.str, key);
	return p != NULL ? strtol(p + strlen(key), NULL, 10) : 0;
}

static void
test_eval_noscript(void **state)
{
	Ctx						 ctx;
	Result					 r[4];
	const RedisClientScript *script, *again, *failing;
	const char				*args[] = {"kvs:key", "arg", "x"};

	if (!have_server())
		return;
	ctx_open(&ctx, NULL);
	script = redis_client_script(ctx.redis, "return {KEYS[1], ARGV[1], #KEYS, #ARGV}");
	assert_non_null(script);
	again = redis_client_script(ctx.redis, "return {KEYS[1], ARGV[1], #KEYS, #ARGV}");
	assert_ptr_equal(script, again);
	assert_int_equal(strlen(redis_client_script_sha(script)), 40);
	failing = redis_client_script(ctx.redis, "return redis.error_reply('NOPE from lua')");
	assert_non_null(failing);
	wait_ups(&ctx, 1);

	send_cmd(&ctx, &r[0], 0, "SCRIPT", "FLUSH", NULL);
	send_cmd(&ctx, &r[1], 1, "CONFIG", "RESETSTAT", NULL);
	wait_done(&ctx, &r[1]);

	/* Not loaded: EVALSHA -> NOSCRIPT -> SCRIPT LOAD + EVALSHA, one callback. */
	send_eval(&ctx, script, &r[0], 0, 1, 3, args);
	wait_done(&ctx, &r[0]);
	assert_null(r[0].error[0] ? r[0].error : NULL);
	assert_int_equal(r[0].type, REDIS_REPLY_ARRAY);
	assert_int_equal(r[0].elements, 4);
	assert_string_equal(r[0].elem[0], "kvs:key");
	assert_string_equal(r[0].elem[1], "arg");
	assert_string_equal(r[0].elem[2], "1");
	assert_string_equal(r[0].elem[3], "2");
	assert_int_equal(command_calls(&ctx, "script|load"), 1);
	assert_int_equal(command_calls(&ctx, "evalsha"), 2);

	/* Loaded: EVALSHA alone. */
	send_eval(&ctx, script, &r[0], 0, 1, 3, args);
	wait_done(&ctx, &r[0]);
	assert_int_equal(r[0].elements, 4);
	assert_int_equal(command_calls(&ctx, "script|load"), 1);
	assert_int_equal(command_calls(&ctx, "evalsha"), 3);

	/* Our SHA-1 is Redis' SHA-1. */
	send_cmd(&ctx, &r[1], 1, "SCRIPT", "EXISTS", redis_client_script_sha(script), NULL);
	wait_done(&ctx, &r[1]);
	assert_string_equal(r[1].elem[0], "1");

	/* Flushed (as after a restart): loaded again, still one callback. */
	send_cmd(&ctx, &r[1], 1, "SCRIPT", "FLUSH", NULL);
	send_eval(&ctx, script, &r[0], 0, 1, 1, args);
	wait_done(&ctx, &r[0]);
	assert_int_equal(r[0].elements, 1); /* ARGV[1] is nil: Redis ends the array there */
	assert_string_equal(r[0].elem[0], "kvs:key");
	assert_int_equal(command_calls(&ctx, "script|load"), 2);

	/* A script's own error reaches the caller as an error reply, without retries. */
	send_eval(&ctx, failing, &r[2], 2, 0, 0, NULL);
	wait_done(&ctx, &r[2]);
	assert_int_equal(r[2].type, REDIS_REPLY_ERROR);
	assert_non_null(strstr(r[2].error, "NOPE from lua"));
	send_eval(&ctx, failing, &r[2], 2, 0, 0, NULL);
	wait_done(&ctx, &r[2]);
	assert_non_null(strstr(r[2].error, "NOPE from lua"));
	assert_int_equal(command_calls(&ctx, "script|load"), 3);

	/* Bad arguments are refused outright. */
	assert_int_equal(redis_client_eval(ctx.redis, script, on_result, &calls[3], 2, 1, args, NULL),
					 -1);
	assert_int_equal(redis_client_eval(ctx.redis, NULL, on_result, &calls[3], 0, 0, NULL, NULL),
					 -1);
	ctx_close(&ctx);
}

static void
test_subscribe_publish(void **state)
{
	Ctx			 ctx;
	Ctx			*pctx = &ctx;
	Ctx			*pctx2 = &ctx; /* a second ud, to tell the channels apart */
	Result		 r[3];
	const char	 payload[] = {'h', 'i', '\0', 'x', '\n'};
	const char	*argv[3] = {"PUBLISH", "kvs:one", payload};
	const size_t lens[3] = {7, 7, sizeof(payload)};
	int			 want;

	if (!have_server())
		return;
	memset(r, 0, sizeof(r));
	ctx_open(&ctx, &(RedisClientOptions){.url = NULL});
	assert_int_equal(redis_client_subscribe(ctx.redis, "kvs:one", on_message, &pctx), 0);
	assert_int_equal(redis_client_subscribe(ctx.redis, "kvs:two", on_message, &pctx2), 0);
	assert_int_equal(redis_client_subscribe(ctx.redis, "kvs:one", on_message, &pctx),
					 -1); /* duplicate */
	wait_ups(&ctx, 1);

	send_on(&ctx, ctx.redis, &r[0], 0, 3, argv, lens);
	wait_done(&ctx, &r[0]);
	assert_int_equal(r[0].integer, 1); /* one subscriber: us */
	want = 1;
	assert_true(run_until(&ctx, cond_messages, &want, SAFETY_MS));
	assert_string_equal(ctx.channel, "kvs:one");
	assert_ptr_equal(ctx.msg_ud, &pctx);
	assert_int_equal(ctx.payload_len, sizeof(payload));
	assert_memory_equal(ctx.payload, payload, sizeof(payload));

	send_cmd(&ctx, &r[1], 1, "PUBLISH", "kvs:two", "second", NULL);
	want = 2;
	assert_true(run_until(&ctx, cond_messages, &want, SAFETY_MS));
	assert_string_equal(ctx.channel, "kvs:two");
	assert_ptr_equal(ctx.msg_ud, &pctx2);
	assert_string_equal(ctx.payload, "second");

	/* Subscribing while up: active without a down/up, once Redis confirmed it. */
	assert_int_equal(redis_client_subscribe(ctx.redis, "kvs:three", on_message, &pctx), 0);
	for (int i = 0; i < 100 && r[2].integer != 1; i++)
	{
		send_cmd(&ctx, &r[2], 2, "PUBSUB", "NUMSUB", "kvs:three", NULL);
		wait_done(&ctx, &r[2]);
		r[2].integer = strtol(r[2].elem[1], NULL, 10);
	}
	assert_int_equal(r[2].integer, 1);
	send_cmd(&ctx, &r[1], 1, "PUBLISH", "kvs:three", "third", NULL);
	want = 3;
	assert_true(run_until(&ctx, cond_messages, &want, SAFETY_MS));
	assert_string_equal(ctx.channel, "kvs:three");
	assert_int_equal(ctx.downs, 0);
	assert_int_equal(ctx.ups, 1);

	/* redis_client_destroy from inside a message callback. */
	ctx.destroy_on_message = true;
	send_cmd(&ctx, &r[1], 1, "PUBLISH", "kvs:one", "bye", NULL);
	want = 4;
	assert_true(run_until(&ctx, cond_messages, &want, SAFETY_MS));
	assert_true(ctx.destroyed);
	ctx_close(&ctx);
	assert_int_equal(ctx.messages, 4);
	assert_int_equal(r[1].calls, 1);
}

/* The server dies and comes back: down hook, fast failures, up hook, subscriptions again. */
static void
test_server_restart(void **state)
{
	Ctx		 ctx;
	Ctx		*pctx = &ctx;
	Result	 r[4];
	uint64_t sent;
	int		 want;

	if (!have_server() || !have_own_server())
		return;
	ctx_open(&ctx, &(RedisClientOptions){.command_timeout_ms = 20000});
	assert_int_equal(redis_client_subscribe(ctx.redis, "kvs:live", on_message, &pctx), 0);
	wait_ups(&ctx, 1);
	send_cmd(&ctx, &r[0], 0, "PUBLISH", "kvs:live", "before", NULL);
	want = 1;
	assert_true(run_until(&ctx, cond_messages, &want, SAFETY_MS));

	/* A command in flight when the server dies fails with "lost". */
	send_cmd(&ctx, &r[1], 1, "BLPOP", "kvs:never", "0", NULL);
	run_for(&ctx, 50);
	assert_int_equal(r[1].calls, 0);
	stop_pid(server_pid);
	server_pid = 0;
	want = 1;
	assert_true(run_until(&ctx, cond_downs, &want, SAFETY_MS));
	assert_int_equal(redis_client_is_up(ctx.redis), 0);
	wait_done(&ctx, &r[1]);
	assert_false(r[1].had_reply);
	assert_string_equal(r[1].error, "connection to redis lost");

	/* While down: every command fails at once. */
	sent = uv_now(&ctx.loop);
	send_cmd(&ctx, &r[2], 2, "GET", "k", NULL);
	wait_done(&ctx, &r[2]);
	assert_string_equal(r[2].error, "redis is not connected");
	assert_true(r[2].at - sent < 100);
	assert_int_equal(redis_client_pending(ctx.redis), 0);

	/* Back on the same port: up again, the subscription with it. */
	server_pid = spawn_server(server_port);
	assert_true(server_pid > 0);
	wait_ups(&ctx, 2);
	assert_int_equal(ctx.downs, 1);
	send_cmd(&ctx, &r[3], 3, "PUBLISH", "kvs:live", "after", NULL);
	wait_done(&ctx, &r[3]);
	assert_int_equal(r[3].integer, 1);
	want = 2;
	assert_true(run_until(&ctx, cond_messages, &want, SAFETY_MS));
	assert_string_equal(ctx.payload, "after");

	/* Killed and back before the loop looks: still one down and one up. */
	stop_pid(server_pid);
	server_pid = spawn_server(server_port);
	assert_true(server_pid > 0);
	wait_ups(&ctx, 3);
	assert_int_equal(ctx.downs, 2);
	ctx_close(&ctx);
}

/* A paused server: the idle PING notices; a command times out; resumed: up again. */
static void
test_server_paused(void **state)
{
	Ctx				   ctx;
	Result			   r[3];
	RedisClientOptions o = {
		.connect_timeout_ms = 300, .command_timeout_ms = 300, .ping_interval_ms = 200};
	uint64_t sent;
	int		 want;

	if (!have_server() || !have_own_server())
		return;
	ctx_open(&ctx, &o);
	wait_ups(&ctx, 1);

	/* Idle: the PING's deadline finds the pause. */
	kill(server_pid, SIGSTOP);
	want = 1;
	assert_true(run_until(&ctx, cond_downs, &want, SAFETY_MS));
	send_cmd(&ctx, &r[0], 0, "GET", "k", NULL);
	wait_done(&ctx, &r[0]);
	assert_string_equal(r[0].error, "redis is not connected");
	kill(server_pid, SIGCONT);
	wait_ups(&ctx, 2);

	/* Busy: the command's own deadline. */
	kill(server_pid, SIGSTOP);
	sent = uv_now(&ctx.loop);
	send_cmd(&ctx, &r[1], 1, "GET", "k", NULL);
	wait_done(&ctx, &r[1]);
	assert_false(r[1].had_reply);
	assert_string_equal(r[1].error, "redis command timed out");
	assert_true(r[1].at - sent >= 250);
	assert_true(r[1].at - sent < 2000);
	want = 2;
	assert_true(run_until(&ctx, cond_downs, &want, SAFETY_MS));
	kill(server_pid, SIGCONT);
	wait_ups(&ctx, 3);
	send_cmd(&ctx, &r[2], 2, "SET", "k", "v", NULL);
	wait_done(&ctx, &r[2]);
	assert_string_equal(r[2].str, "OK");
	ctx_close(&ctx);
}

/* Nothing listens at first; a server appears: redis finds it by itself. */
static void
test_server_appears(void **state)
{
	Ctx				   ctx;
	Result			   r;
	char			   url[64];
	int				   port = 0;
	RedisClientOptions o = {.url = url, .connect_timeout_ms = 500};

	if (!have_server() || !have_own_server())
		return;
	while (port == 0 || port == server_port)
		port = free_port();
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
	ctx_open(&ctx, &o);
	run_for(&ctx, 300);
	assert_int_equal(ctx.ups, 0);
	extra_pid = spawn_server(port);
	assert_true(extra_pid > 0);
	wait_ups(&ctx, 1);
	send_cmd(&ctx, &r, 0, "PING", NULL);
	wait_done(&ctx, &r);
	assert_string_equal(r.str, "PONG");
	assert_int_equal(ctx.downs, 0);
	ctx_close(&ctx);
}

/* Passwords (plain and ACL user, percent-encoded), refused logins, and the database. */
static void
test_auth_and_db(void **state)
{
	Ctx				   ctx;
	Result			   r[4];
	char			   url[160];
	RedisClient		  *good, *acl, *none, *wrong;
	RedisClientHooks   no_hooks = {0};
	RedisClientOptions o = {.url = url, .connect_timeout_ms = 500};

	if (!have_server() || !have_own_server())
		return;
	ctx_open(&ctx, NULL);
	wait_ups(&ctx, 1);
	send_cmd(&ctx, &r[0], 0, "CONFIG", "SET", "requirepass", "s3cr%t", NULL);
	send_cmd(&ctx, &r[1], 1, "ACL", "SETUSER", "alice", "on", ">pw:1", "~*", "+@all", NULL);
	wait_done(&ctx, &r[1]);
	assert_string_equal(r[0].str, "OK");
	assert_string_equal(r[1].str, "OK");

	snprintf(url, sizeof(url), "redis://:s3cr%%25t@127.0.0.1:%d/3", server_port);
	good = redis_client_create(&ctx.loop, &o);
	/* A host name: looked up on the thread pool. */
	snprintf(url, sizeof(url), "redis://alice:pw%%3A1@localhost:%d", server_port);
	acl = redis_client_create(&ctx.loop, &o);
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", server_port);
	none = redis_client_create(&ctx.loop, &o);
	snprintf(url, sizeof(url), "redis://:nope@127.0.0.1:%d", server_port);
	wrong = redis_client_create(&ctx.loop, &o);
	assert_true(good && acl && none && wrong);
	redis_client_set_hooks(good, &no_hooks, NULL);

	assert_true(run_until(&ctx, cond_kvs_up, good, SAFETY_MS));
	assert_true(run_until(&ctx, cond_kvs_up, acl, SAFETY_MS));
	send_on(&ctx, good, &r[0], 0, 3, (const char *[]){"SET", "kvs:db", "three"}, NULL);
	wait_done(&ctx, &r[0]);
	send_cmd(&ctx, &r[1], 1, "GET", "kvs:db", NULL); /* ctx.redis: db 0 */
	send_on(&ctx, good, &r[2], 2, 2, (const char *[]){"GET", "kvs:db"}, NULL);
	send_on(&ctx, acl, &r[3], 3, 2, (const char *[]){"ACL", "WHOAMI"}, NULL);
	wait_done(&ctx, &r[3]);
	wait_done(&ctx, &r[2]);
	wait_done(&ctx, &r[1]); /* another connection: its reply may come last */
	assert_int_equal(r[1].type, REDIS_REPLY_NIL);
	assert_string_equal(r[2].str, "three");
	assert_string_equal(r[3].str, "alice");

	/* No or a wrong password: never up, and commands say so. */
	run_for(&ctx, 300);
	assert_int_equal(redis_client_is_up(none), 0);
	assert_int_equal(redis_client_is_up(wrong), 0);
	send_on(&ctx, wrong, &r[0], 0, 1, (const char *[]){"PING"}, NULL);
	wait_done(&ctx, &r[0]);
	assert_string_equal(r[0].error, "redis is not connected");

	redis_client_destroy(good);
	redis_client_destroy(acl);
	redis_client_destroy(none);
	redis_client_destroy(wrong);
	ctx_close(&ctx);
}

static void
test_limits(void **state)
{
	Ctx				   ctx;
	Result			   r[8];
	RedisClientOptions o = {.max_pending = 3, .max_pending_bytes = 100, .ping_interval_ms = -1};
	char			  *big;
	size_t			   big_len = ((size_t) 16 << 20) + 1;
	const char		  *argv[3] = {"SET", "kvs:big", NULL};
	size_t			   lens[3] = {3, 7, 0};

	if (!have_server())
		return;
	ctx_open(&ctx, &o);
	wait_ups(&ctx, 1);
	for (int i = 0; i < 5; i++)
		send_cmd(&ctx, &r[i], i, "PING", NULL);
	wait_done(&ctx, &r[2]);
	for (int i = 0; i < 3; i++)
		assert_string_equal(r[i].str, "PONG");
	for (int i = 3; i < 5; i++)
	{
		wait_done(&ctx, &r[i]);
		assert_string_equal(r[i].error, "too many redis commands in flight");
		assert_false(r[i].sync);
	}

	/* Bytes in flight. */
	big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'x', big_len);
	argv[2] = big;
	lens[2] = 200;
	send_on(&ctx, ctx.redis, &r[5], 5, 3, argv, lens);
	wait_done(&ctx, &r[5]);
	assert_string_equal(r[5].error, "too many redis commands in flight");

	/* One command larger than any limit. */
	lens[2] = big_len;
	send_on(&ctx, ctx.redis, &r[6], 6, 3, argv, lens);
	wait_done(&ctx, &r[6]);
	assert_string_equal(r[6].error, "redis command too large");
	free(big);
	ctx_close(&ctx);
}

static void
test_destroy_answers_pending(void **state)
{
	Ctx	   ctx;
	Result r[20];

	if (!have_server())
		return;
	ctx_open(&ctx, NULL);
	wait_ups(&ctx, 1);
	for (int i = 0; i < 20; i++)
		send_cmd(&ctx, &r[i], i, "PING", NULL);
	ctx.destroyed = true;
	redis_client_destroy(ctx.redis);
	for (int i = 0; i < 20; i++)
	{
		assert_int_equal(r[i].calls, 1);
		assert_false(r[i].had_reply);
		assert_string_equal(r[i].error, "redis client is shutting down");
	}
	ctx.calls_after_destroy = 0;
	ctx_close(&ctx);
	for (int i = 0; i < 20; i++)
		assert_int_equal(r[i].calls, 1);
	assert_int_equal(ctx.calls_after_destroy, 0);
}

static void
test_destroy_from_reply(void **state)
{
	Ctx	   ctx;
	Result r[10];

	if (!have_server())
		return;
	ctx_open(&ctx, NULL);
	wait_ups(&ctx, 1);
	for (int i = 0; i < 10; i++)
		send_cmd(&ctx, &r[i], i, "PING", NULL);
	ctx.destroy_on_reply = true;
	assert_true(run_until(&ctx, cond_done, &r[0], SAFETY_MS));
	assert_true(ctx.destroyed);
	assert_string_equal(r[0].str, "PONG");
	/* The rest were answered inside redis_client_destroy, inside the first callback. */
	for (int i = 1; i < 10; i++)
	{
		assert_int_equal(r[i].calls, 1);
		assert_string_equal(r[i].error, "redis client is shutting down");
	}
	ctx_close(&ctx);
	for (int i = 0; i < 10; i++)
		assert_int_equal(r[i].calls, 1);
}

int
main(void)
{
	const char			   *url = getenv("REDIS_URL");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_parse),
		cmocka_unit_test(test_bad_options),
		cmocka_unit_test(test_down_fails_fast),
		cmocka_unit_test_setup_teardown(test_round_trip, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_eval_noscript, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_subscribe_publish, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_restart, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_paused, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_server_appears, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_auth_and_db, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_limits, setup_server, teardown_server),
		cmocka_unit_test_setup_teardown(test_destroy_answers_pending, setup_server,
										teardown_server),
		cmocka_unit_test_setup_teardown(test_destroy_from_reply, setup_server, teardown_server),
	};
	int rc;

	/* A server that dies under a test must not kill the test with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	if (find_server())
	{
		snprintf(server_dir, sizeof(server_dir), "/tmp/test_redis_client.XXXXXX");
		if (mkdtemp(server_dir) == NULL)
		{
			perror("mkdtemp");
			return 1;
		}
		own_server = true;
		printf("using %s on free loopback ports (logs in %s)\n", server_bin, server_dir);
	}
	else if (url != NULL && url[0] != '\0')
	{
		snprintf(server_url, sizeof(server_url), "%s", url);
		printf("no redis-server installed: using REDIS_URL; tests that kill or pause the server "
			   "are skipped\n");
	}
	else
		printf("no redis-server installed and no REDIS_URL: the tests that need one are skipped\n");
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (own_server)
	{
		/* Logs are kept only when something failed. */
		if (rc == 0)
		{
			char cmd[128];

			snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", server_dir);
			if (system(cmd) != 0)
				fprintf(stderr, "could not remove %s\n", server_dir);
		}
		else
			fprintf(stderr, "redis-server logs kept in %s\n", server_dir);
	}
	return rc;
}
