/*
 * redis_client.h — Redis on the loop: one connection for commands, one for SUBSCRIBE.
 *
 * hiredis 0.14.1 async, attached to the daemon's libuv loop (doc/event-loop.md). Nothing here
 * blocks: host names are resolved on libuv's thread pool, connects are non-blocking, every
 * command has a deadline. hiredis 0.14 does not reconnect by itself; redis does, per connection,
 * with backoff and jitter, re-authenticates, re-selects the database and re-subscribes every
 * channel. While the command connection is not ready, commands fail at once through their
 * callback instead of waiting.
 *
 * "Up" means: the command connection is ready and, once there is at least one subscription,
 * the subscriber connection is ready with every channel subscribed. The up hook runs after each
 * transition to up, the down hook after each transition away from it; a down hook always
 * separates two up hooks, even when a connection was lost and regained within one loop
 * iteration. After an up hook nothing published on a subscribed channel is missed until the
 * next down hook, so a user of the subscription rebuilds its view from Redis in the up hook.
 *
 * Everything, callbacks and hooks included, runs on the loop thread.
 */
#ifndef SOCIALD_REDIS_CLIENT_H
#define SOCIALD_REDIS_CLIENT_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <uv.h>

typedef struct RedisClient		 RedisClient;
typedef struct RedisClientScript RedisClientScript;

#define REDIS_CLIENT_DEFAULT_HOST "127.0.0.1"
#define REDIS_CLIENT_DEFAULT_PORT 6379

/* Where Redis is, as parsed from a URL. */
typedef struct RedisClientAddress
{
	char host[256];		/* host name or IP literal (IPv6 without brackets) */
	int	 port;			/* 1..65535 */
	int	 db;			/* SELECTed on the command connection; 0 = default */
	char user[128];		/* Redis 6 ACL user; "" = AUTH with the password alone */
	char password[256]; /* "" = no AUTH */
} RedisClientAddress;

/*
 * Parses redis://[[user]:password@]host[:port][/db] (user and password percent-decoded, IPv6
 * hosts in brackets, port default 6379, db default 0). Anything else, rediss:// (TLS) and query
 * strings included, is refused with a one-line reason in err (always NUL-terminated).
 */
int redis_client_url_parse(const char *url, RedisClientAddress *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

typedef struct RedisClientOptions
{
	const char *url;				/* as redis_client_url_parse; NULL or "": host and port below */
	const char *host;				/* without url; NULL or "": REDIS_CLIENT_DEFAULT_HOST */
	int			port;				/* without url; 0: REDIS_CLIENT_DEFAULT_PORT */
	int			connect_timeout_ms; /* resolve + connect + AUTH/SELECT/PING; 0: 2000 */
	int			command_timeout_ms; /* a reply later than this resets both connections; 0: 2000 */
	int			ping_interval_ms;	/* an idle command connection is PINGed this often so a dead
									 * server is noticed; 0: 5000, negative: never */
	int			max_pending;		/* commands in flight; beyond, they fail at once; 0: 10000 */
	size_t		max_pending_bytes;	/* their argument bytes; beyond, fail at once; 0: 64 MiB */
} RedisClientOptions;

/*
 * Outcome of one command. error is NULL exactly when the command succeeded; then reply is the
 * reply. A Redis error reply comes with reply (type REDIS_REPLY_ERROR) and error = its text.
 * A command that got no reply (Redis down, connection lost, timed out, too many in flight,
 * shutting down) comes with reply NULL and error saying why. Both are valid only during the
 * call: copy what you keep.
 */
typedef void (*RedisClientReplyFn)(void *ud, const redisReply *reply, const char *error);

/* One message on a subscribed channel; channel and payload (len bytes, may hold NULs, also
 * NUL-terminated) are valid during the call only. */
typedef void (*RedisClientMessageFn)(void *ud, const char *channel, const char *payload,
									 size_t len);

typedef struct RedisClientHooks
{
	void (*up)(void *ud);	/* may be NULL */
	void (*down)(void *ud); /* may be NULL */
} RedisClientHooks;

/*
 * Starts connecting (asynchronously). opts and its strings are copied. NULL, after logging why,
 * on a bad URL or option or when out of memory.
 */
RedisClient *redis_client_create(uv_loop_t *loop, const RedisClientOptions *opts)
	__attribute__((warn_unused_result));

/*
 * Closes both connections. Every command still waiting is answered first, from inside this
 * call, with error "redis client is shutting down"; no callback, message or hook runs after it
 * returns. Handles are freed in their close callbacks, so keep running the loop until it ends.
 * May be called from any redis callback or hook. NULL is a no-op.
 */
void redis_client_destroy(RedisClient *redis);

/* Sets the up/down hooks; hooks is copied. Hooks run from their own loop turn, never from inside
 * a redis_client_* call, so they may call anything here, redis_client_destroy included. */
void redis_client_set_hooks(RedisClient *redis, const RedisClientHooks *hooks, void *ud);

/*
 * Sends one command: argc arguments (argv[0] is the command name), argvlen[i] bytes each, or
 * strlen(argv[i]) when argvlen is NULL; the bytes are copied. cb is called exactly once: with the
 * reply (from the loop turn that reads it), or with a failure, which is never delivered from inside
 * redis_client_command. Returns -1 (and never calls cb) only for a programming error: NULL or empty
 * arguments, after redis_client_destroy, or a command that would break the connection (SUBSCRIBE,
 * MONITOR, SELECT, AUTH, HELLO, QUIT, RESET... use the URL and redis_client_subscribe instead).
 */
int redis_client_command(RedisClient *redis, RedisClientReplyFn cb, void *ud, int argc,
						 const char **argv, const size_t *argvlen)
	__attribute__((warn_unused_result));

/*
 * Registers a Lua script; the source is copied and its SHA-1 computed here. The returned
 * script is owned by redis and valid until redis_client_destroy. NULL (logged) for an empty or
 * oversized source or beyond the script limit.
 */
const RedisClientScript *redis_client_script(RedisClient *redis, const char *source)
	__attribute__((warn_unused_result));

/* The script's SHA-1, 40 lower-case hex digits. */
const char *redis_client_script_sha(const RedisClientScript *script);

/*
 * Runs a registered script with EVALSHA: argv holds the nkeys keys, then the other arguments (argc
 * in all, argvlen as for redis_client_command). When Redis answers NOSCRIPT (restarted, flushed,
 * failed over), the script is sent with SCRIPT LOAD and the EVALSHA repeated once, on the same
 * connection back to back; cb sees only the final outcome, and the deadline restarts for the retry.
 * Same contract as redis_client_command otherwise.
 */
int redis_client_eval(RedisClient *redis, const RedisClientScript *script, RedisClientReplyFn cb,
					  void *ud, int nkeys, int argc, const char **argv, const size_t *argvlen)
	__attribute__((warn_unused_result));

/*
 * Subscribes to channel (copied) for the life of redis; fn runs for every message, on this and
 * every later connection. The first subscription opens the subscriber connection (until then
 * up needs the command connection only): subscribe before the loop runs to avoid an extra
 * down/up. -1 (logged) for an empty or overlong channel, a duplicate, or beyond the limit.
 */
int redis_client_subscribe(RedisClient *redis, const char *channel, RedisClientMessageFn fn,
						   void *ud) __attribute__((warn_unused_result));

/* 1 when up (see the top of this file), else 0. */
int redis_client_is_up(const RedisClient *redis);

/* "host:port/db" for logs and /status; valid until redis_client_destroy. */
const char *redis_client_endpoint(const RedisClient *redis);

/* Commands sent and not yet answered (for /status and tests). */
size_t redis_client_pending(const RedisClient *redis);

#endif /* SOCIALD_REDIS_CLIENT_H */
