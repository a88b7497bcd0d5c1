/*
 * presence.c — presence state in Redis: the sources' word, the flips, the sweeper, sessions.
 *
 * The state of an address is one Redis hash, presence:<address>:
 *   u:nats, u:archipelago, u:socket:<instance id>   until when each source vouches (ms)
 *   status ("1"/"0"), since (ms of the last flip), v (version of the last flip)
 *   last_seen (ms of the last word), parcel ("x,y"), room (desired room)
 * plus presence:expiry, a sorted set address -> the latest "until" of an online address, and
 * presence:version, a counter. Times are Redis' clock (TIME inside the scripts), so instances
 * with skewed clocks agree on what has lapsed.
 *
 * Every change runs one Lua script (EVALSHA through redis), and a script runs alone in Redis: it
 * writes the source's word, recomputes whether any source still vouches, and only when that
 * differs from status it flips: INCR presence:version, store status/since/v, PUBLISH on
 * social:presence. So each flip happens exactly once however many instances race, and the
 * instance whose script flipped is the only one that learns it from the reply (it records the
 * session). A heartbeat that changes nothing costs one EVALSHA and publishes nothing. The
 * sweeper script (every instance, every second or so, jittered) takes the addresses whose latest
 * "until" has passed from presence:expiry and settles them the same way.
 *
 * Messages on social:presence are versioned text: "1 <address> online|offline <v> <since_ms>
 * [<parcel_x> <parcel_y>]". v grows with every flip of any address (the counter), so an
 * instance keeps, per address it cares about, the last version it applied and ignores older
 * news: a snapshot read and a message may arrive in either order on the two Redis connections,
 * and the newer one wins. Fan-out from these is fanout.c.
 *
 * Sessions (PRESENCE_SESSIONS): the flips this instance's scripts returned are batched and
 * written with social.record_presence at most once a second from the tick, never from the path
 * that handles a heartbeat. A session is keyed by (address, start): the offline flip carries
 * the start (the hash's since) so the order in which instances flush does not matter, and a
 * batch retried after a lost connection writes nothing twice.
 *
 * Redis down (redis down hook): scripts fail at once and are dropped (the sources repeat
 * themselves: heartbeats, the socket refresh, Archipelago polls); what this instance knew about
 * statuses is marked stale. Redis up again: local sockets are vouched for at once, and after a
 * short grace (so that a Redis that lost its data has heard from every instance's sockets) every
 * address watched by a local stream is read afresh (fanout_resync).
 *
 * Everything runs on the loop thread.
 */
#include "presence/presence.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/log.h"
#include "main/metrics.h"
#include "presence/fanout.h"
#include "social/social_pb.h"

#define PRESENCE_CHANNEL "social:presence"
#define PRESENCE_EXPIRY_KEY "presence:expiry"
#define PRESENCE_VERSION_KEY "presence:version"
#define PRESENCE_KEY_PREFIX "presence:"
/* How long a hash outlives its last change: last_seen and the parcel stay readable a week. */
#define PRESENCE_KEY_RETENTION_MS "604800000"

/* Sweeper and retries. */
#define TICK_MS 1000
#define SWEEP_LIMIT "1000"
#define SWEEP_LIMIT_N 1000
/* Addresses per script call when the socket source refreshes or a snapshot is read. */
#define REFRESH_CHUNK 500
/* Longest desired room kept. */
#define ROOM_MAX 256
/* After an outage, statuses are read again this long after Redis is back (on_redis_up): the
 * longest reconnect delay of redis, or a third of the TTL when that is shorter. */
#define RESYNC_GRACE_MS(ttl) ((uint64_t) ((ttl) / 3 < 5000 ? (ttl) / 3 : 5000))
/* Warnings about failing scripts: at most one per this many ms. */
#define WARN_EVERY_MS 10000

/* Sessions: at most one write a second; at most this many flips wait (beyond: dropped). */
#define FLUSH_EVERY_MS 1000
#define SESSION_BATCH_MAX 100000

/*
 * The Lua scripts. SETTLE is shared by the touch and sweep scripts: it recomputes one address
 * at time now from its sources' "until" fields, drops lapsed fields, keeps presence:expiry in
 * step and, when the status flips, bumps the version, stores it and publishes. It returns the
 * flip as six strings (address, "1"/"0", version, now, the previous since, parcel) or nil.
 */
#define LUA_PRELUDE                                                                            \
	"if redis.replicate_commands then redis.replicate_commands() end\n"                        \
	"local t = redis.call('TIME')\n"                                                           \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                  \
	"local function ms(x) return string.format('%.0f', x) end\n"                               \
	"local function settle(key, addr, expiry, counter, channel, keep)\n"                       \
	"  local h = redis.call('HGETALL', key)\n"                                                 \
	"  if #h == 0 then redis.call('ZREM', expiry, addr) return nil end\n"                      \
	"  local til, status, since, parcel, lapsed = 0, '0', '', '', {}\n"                        \
	"  for j = 1, #h, 2 do\n"                                                                  \
	"    local f = h[j]\n"                                                                     \
	"    if string.sub(f, 1, 2) == 'u:' then\n"                                                \
	"      local u = tonumber(h[j + 1]) or 0\n"                                                \
	"      if u > now then\n"                                                                  \
	"        if u > til then til = u end\n"                                                    \
	"      else\n"                                                                             \
	"        lapsed[#lapsed + 1] = f\n"                                                        \
	"      end\n"                                                                              \
	"    elseif f == 'status' then status = h[j + 1]\n"                                        \
	"    elseif f == 'since' then since = h[j + 1]\n"                                          \
	"    elseif f == 'parcel' then parcel = h[j + 1] end\n"                                    \
	"  end\n"                                                                                  \
	"  if #lapsed > 0 then redis.call('HDEL', key, unpack(lapsed)) end\n"                      \
	"  local online = til > now\n"                                                             \
	"  if online then redis.call('ZADD', expiry, ms(til), addr)\n"                             \
	"  else redis.call('ZREM', expiry, addr) end\n"                                            \
	"  redis.call('PEXPIRE', key, keep)\n"                                                     \
	"  if online == (status == '1') then return nil end\n"                                     \
	"  local v = redis.call('INCR', counter)\n"                                                \
	"  local flag = online and '1' or '0'\n"                                                   \
	"  redis.call('HSET', key, 'status', flag, 'since', ms(now), 'v', v)\n"                    \
	"  local msg = '1 ' .. addr .. ' ' .. (online and 'online' or 'offline') .. ' ' .. v ..\n" \
	"    ' ' .. ms(now)\n"                                                                     \
	"  if parcel ~= '' then msg = msg .. ' ' .. (string.gsub(parcel, ',', ' ')) end\n"         \
	"  redis.call('PUBLISH', channel, msg)\n"                                                  \
	"  return {addr, flag, tostring(v), ms(now), since, parcel}\n"                             \
	"end\n"

/* KEYS: expiry, version, presence:<address>...; ARGV: op (seen/gone), source field, ttl ms,
 * channel, has parcel (1/0), parcel "x,y", room ("" = none), key retention ms. */
static const char lua_touch[] = LUA_PRELUDE
	"local op, field, ttl, channel = ARGV[1], 'u:' .. ARGV[2], tonumber(ARGV[3]), ARGV[4]\n"
	"local out = {}\n"
	"for i = 3, #KEYS do\n"
	"  local key = KEYS[i]\n"
	"  if op == 'seen' then\n"
	"    redis.call('HSET', key, field, ms(now + ttl), 'last_seen', ms(now))\n"
	"    if ARGV[5] == '1' then redis.call('HSET', key, 'parcel', ARGV[6]) end\n"
	"    if ARGV[7] ~= '' then redis.call('HSET', key, 'room', ARGV[7]) end\n"
	"  else\n"
	"    redis.call('HDEL', key, field)\n"
	"  end\n"
	"  local flip = settle(key, string.sub(key, 10), KEYS[1], KEYS[2], channel, ARGV[8])\n"
	"  if flip then for _, x in ipairs(flip) do out[#out + 1] = x end end\n"
	"end\n"
	"return out\n";

/* KEYS: expiry, version; ARGV: channel, limit, key retention ms. Returns the number of due
 * addresses looked at, then the flips. */
static const char lua_sweep[] = LUA_PRELUDE
	"local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ms(now), 'LIMIT', 0, ARGV[2])\n"
	"local out = {tostring(#due)}\n"
	"for _, addr in ipairs(due) do\n"
	"  local flip = settle('presence:' .. addr, addr, KEYS[1], KEYS[2], ARGV[1], ARGV[3])\n"
	"  if flip then for _, x in ipairs(flip) do out[#out + 1] = x end end\n"
	"end\n"
	"return out\n";

/* KEYS: presence:<address>...; returns status and version of each ("0" when unknown). */
static const char lua_read[] = "local out = {}\n"
							   "for i = 1, #KEYS do\n"
							   "  local r = redis.call('HMGET', KEYS[i], 'status', 'v')\n"
							   "  out[#out + 1] = r[1] or '0'\n"
							   "  out[#out + 1] = r[2] or '0'\n"
							   "end\n"
							   "return out\n";

static const char sql_record[] =
	"SELECT social.record_presence($1::text[], $2::bigint[], $3::bigint[], $4::integer[], "
	"$5::integer[], $6)";

/* One flip waiting to be recorded. */
typedef struct SessionFlip
{
	char	address[ADDRESS_LEN + 1];
	int64_t from_ms;
	int64_t until_ms; /* -1: the session is open */
	bool	has_parcel;
	int32_t parcel_x;
	int32_t parcel_y;
} SessionFlip;

static const char *const source_fields[PRESENCE_SOURCE_COUNT] = {"nats", "archipelago", NULL};

static struct
{
	bool					 active;
	uv_loop_t				*loop;
	PgPool					*pg;	/* borrowed */
	RedisClient				*redis; /* borrowed */
	int64_t					 ttl_ms;
	char					 ttl_text[24];
	bool					 sources[PRESENCE_SOURCE_COUNT];
	bool					 record_sessions;
	char					 instance_id[128];
	char					 socket_field[160]; /* "socket:<instance id>" */
	const RedisClientScript *touch;
	const RedisClientScript *sweep;
	const RedisClientScript *read;
	bool					 redis_up;
	uint64_t				 epoch;		  /* bumped on every Redis up and down */
	uint64_t				 grace_until; /* uv_now ms: no status reads before (see on_redis_up) */
	bool					 was_up;	  /* Redis has been up before */
	bool					 sweep_in_flight;
	uv_timer_t				 tick;
	uv_timer_t				 refresh;
	bool					 timers_ready;
	uint64_t				 last_warn_ms;
	SessionFlip				*batch; /* FIFO: the first 'flushing' ones are being written */
	size_t					 nbatch;
	size_t					 batch_cap;
	size_t					 flushing;
	uint64_t				 last_flush_ms;
	uint64_t				 last_refusal_ms;
} ps;

/* ---- Helpers */

/* A reply element as text (strings and integers); false for anything else. */
static bool
reply_text(const redisReply *r, char *buf, size_t size)
{
	if (r == NULL)
		return false;
	if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
	{
		if (r->len >= size)
			return false;
		memcpy(buf, r->str, r->len);
		buf[r->len] = '\0';
		return true;
	}
	if (r->type == REDIS_REPLY_INTEGER)
	{
		snprintf(buf, size, "%lld", r->integer);
		return true;
	}
	return false;
}

/* Strict decimal (optional '-'), no overflow. */
static bool
parse_i64(const char *s, int64_t *out)
{
	char	 *end;
	long long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool
parse_u64(const char *s, uint64_t *out)
{
	char			  *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* A failed script: counted, and logged at most every WARN_EVERY_MS while Redis is up (while it
 * is down the down hook has said so once). */
static void
script_failed(const char *what, const char *error)
{
	uint64_t now = uv_now(ps.loop);

	metrics_count(M_PRESENCE_REDIS_ERRORS, 1);
	if (ps.redis_up && now - ps.last_warn_ms >= WARN_EVERY_MS)
	{
		ps.last_warn_ms = now;
		log_warn("presence: %s failed: %s", what, error ? error : "unexpected reply");
	}
	else
		log_debug("presence: %s failed: %s", what, error ? error : "unexpected reply");
}

/* ---- Sessions */

static void
session_add(const char *address, bool online, int64_t now_ms, const char *prev_since,
			const char *parcel)
{
	SessionFlip *f;
	int64_t		 from;

	if (!ps.record_sessions)
		return;
	if (online)
		from = now_ms;
	else if (!parse_i64(prev_since, &from) || from > now_ms)
	{
		/* An offline flip with no start known (the hash was lost): not a session. */
		log_debug("presence: %s went offline with no known start; no session recorded", address);
		return;
	}
	if (ps.nbatch >= SESSION_BATCH_MAX)
	{
		/* PostgreSQL has been unreachable for a long while: bounded memory wins. */
		metrics_count(M_PRESENCE_SESSION_DROPS, 1);
		log_debug("presence: session batch full, a flip of %s is not recorded", address);
		return;
	}
	if (ps.nbatch == ps.batch_cap)
	{
		size_t		 cap = ps.batch_cap ? ps.batch_cap * 2 : 64;
		SessionFlip *b = realloc(ps.batch, cap * sizeof(*b));

		if (b == NULL)
		{
			metrics_count(M_PRESENCE_SESSION_DROPS, 1);
			log_error("presence: out of memory, a flip of %s is not recorded", address);
			return;
		}
		ps.batch = b;
		ps.batch_cap = cap;
	}
	f = &ps.batch[ps.nbatch++];
	memset(f, 0, sizeof(*f));
	memcpy(f->address, address, ADDRESS_LEN);
	f->from_ms = from;
	f->until_ms = online ? -1 : now_ms;
	if (parcel && parcel[0])
	{
		int x, y, n = 0;

		if (sscanf(parcel, "%d,%d%n", &x, &y, &n) == 2 && parcel[n] == '\0')
		{
			f->has_parcel = true;
			f->parcel_x = x;
			f->parcel_y = y;
		}
	}
}

/* The database took the batch, or refused it for good: forget what was sent. */
static void
session_forget_sent(void)
{
	memmove(ps.batch, ps.batch + ps.flushing, (ps.nbatch - ps.flushing) * sizeof(*ps.batch));
	ps.nbatch -= ps.flushing;
	ps.flushing = 0;
}

/* pg_pool callback, loop thread. */
static void
on_flush(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	if (!ps.active)
		return;
	if (sqlstate == NULL)
	{
		metrics_count(M_PRESENCE_SESSION_FLIPS, ps.flushing);
		session_forget_sent();
		return;
	}
	/* Connection trouble, timeouts, a full queue, conflicts: the same batch again next second
	 * (record_presence is idempotent). Anything else would fail the same way forever. */
	if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57014") == 0 ||
		strncmp(sqlstate, "53", 2) == 0 || strncmp(sqlstate, "40", 2) == 0)
	{
		log_debug("presence: recording sessions failed (%s), retrying", sqlstate);
		ps.flushing = 0;
		return;
	}
	/* Once a minute at most: a database still at 0.1.0 refuses every batch the same way. */
	if (ps.last_refusal_ms == 0 || uv_now(ps.loop) - ps.last_refusal_ms >= 60000)
	{
		ps.last_refusal_ms = uv_now(ps.loop);
		log_warn("presence: social.record_presence refused %zu flips: %s %s%s", ps.flushing,
				 sqlstate, message ? message : "",
				 strcmp(sqlstate, "42883") == 0
					 ? " (is the social extension at 0.2.0? ALTER EXTENSION social UPDATE)"
					 : "");
	}
	metrics_count(M_PRESENCE_SESSION_DROPS, ps.flushing);
	session_forget_sent();
}

/* "{1,2,NULL}": an integer array literal for a query parameter (digits only: nothing to
 * quote). NULL when out of memory. */
static char *
int_array(size_t n, const int64_t *values, const bool *present)
{
	char  *buf = malloc(n * 22 + 3);
	size_t used = 0;

	if (buf == NULL)
		return NULL;
	buf[used++] = '{';
	for (size_t i = 0; i < n; i++)
	{
		if (i > 0)
			buf[used++] = ',';
		if (present[i])
			used += (size_t) sprintf(buf + used, "%" PRId64, values[i]);
		else
		{
			memcpy(buf + used, "NULL", 4);
			used += 4;
		}
	}
	buf[used++] = '}';
	buf[used] = '\0';
	return buf;
}

static void
sessions_flush(void)
{
	size_t		n = ps.nbatch;
	char	  **addresses = NULL;
	int64_t	   *values = NULL;
	bool	   *present = NULL;
	char	   *params[5] = {NULL};
	const char *values_text[6];
	uint64_t	now = uv_now(ps.loop);
	bool		sent = false;

	if (!ps.record_sessions || ps.pg == NULL || ps.flushing > 0 || n == 0 ||
		now - ps.last_flush_ms < FLUSH_EVERY_MS)
		return;
	ps.last_flush_ms = now;
	addresses = malloc(n * sizeof(*addresses));
	values = malloc(n * sizeof(*values));
	present = malloc(n * sizeof(*present));
	if (addresses == NULL || values == NULL || present == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		addresses[i] = ps.batch[i].address;
	params[0] = social_pb_text_array(addresses, n);
	for (size_t i = 0; i < n; i++)
	{
		values[i] = ps.batch[i].from_ms;
		present[i] = true;
	}
	params[1] = int_array(n, values, present);
	for (size_t i = 0; i < n; i++)
	{
		values[i] = ps.batch[i].until_ms;
		present[i] = ps.batch[i].until_ms >= 0;
	}
	params[2] = int_array(n, values, present);
	for (size_t i = 0; i < n; i++)
	{
		values[i] = ps.batch[i].parcel_x;
		present[i] = ps.batch[i].has_parcel;
	}
	params[3] = int_array(n, values, present);
	for (size_t i = 0; i < n; i++)
		values[i] = ps.batch[i].parcel_y;
	params[4] = int_array(n, values, present);
	for (int i = 0; i < 5; i++)
	{
		if (params[i] == NULL)
			goto out;
		values_text[i] = params[i];
	}
	values_text[5] = ps.instance_id;
	if (pg_pool_query(ps.pg, sql_record, 6, values_text, on_flush, NULL) != 0)
		goto out;
	ps.flushing = n;
	sent = true;
out:
	if (!sent)
		log_warn("presence: cannot write %zu sessions now (out of memory or queue full); "
				 "next second",
				 n);
	for (int i = 0; i < 5; i++)
		free(params[i]);
	free(addresses);
	free(values);
	free(present);
}

/* ---- Flips returned by the touch and sweep scripts */

/* Reads six-string flips from elements [first, n) of an array reply. */
static void
flips_read(const redisReply *reply, size_t first)
{
	for (size_t i = first; i + 6 <= reply->elements; i += 6)
	{
		char	address[ADDRESS_LEN + 8];
		char	flag[4], version[32], now[32], since[32], parcel[40];
		int64_t now_ms;

		if (!reply_text(reply->element[i], address, sizeof(address)) ||
			!reply_text(reply->element[i + 1], flag, sizeof(flag)) ||
			!reply_text(reply->element[i + 2], version, sizeof(version)) ||
			!reply_text(reply->element[i + 3], now, sizeof(now)) ||
			!reply_text(reply->element[i + 4], since, sizeof(since)) ||
			!reply_text(reply->element[i + 5], parcel, sizeof(parcel)) || !address_valid(address) ||
			!parse_i64(now, &now_ms))
		{
			log_warn("presence: unexpected flip in a script reply; skipped");
			continue;
		}
		metrics_count(M_PRESENCE_PUBLISHED, 1);
		log_debug("presence: %s is %s (v%s), published", address,
				  strcmp(flag, "1") == 0 ? "online" : "offline", version);
		session_add(address, strcmp(flag, "1") == 0, now_ms, since, parcel);
	}
}

/* redis callback, loop thread. */
static void
on_touch(void *ud, const redisReply *reply, const char *error)
{
	if (!ps.active)
		return;
	if (error != NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY)
	{
		script_failed("updating a status", error);
		return;
	}
	flips_read(reply, 0);
}

/*
 * One touch script over n addresses: op "seen" or "gone" for source field. detail may be NULL.
 */
static void
touch(const char *op, const char *field, const char *const *addresses, size_t n,
	  const PresenceDetail *detail)
{
	const char **argv;
	char		*keys;
	char		 parcel[40] = "";
	const char	*room = "";
	size_t		 argc = 2 + n + 8, k = 0;

	if (!ps.active || !ps.redis_up || n == 0)
		return;
	argv = malloc(argc * sizeof(*argv));
	keys = malloc(n * (sizeof(PRESENCE_KEY_PREFIX) + ADDRESS_LEN));
	if (argv == NULL || keys == NULL)
	{
		log_error("presence: out of memory updating %zu statuses", n);
		goto out;
	}
	if (detail && detail->has_parcel)
		snprintf(parcel, sizeof(parcel), "%" PRId32 ",%" PRId32, detail->parcel_x,
				 detail->parcel_y);
	if (detail && detail->desired_room && strlen(detail->desired_room) <= ROOM_MAX)
	{
		bool printable = true;

		for (const char *p = detail->desired_room; *p; p++)
			if (*p < 0x20 || *p > 0x7e)
				printable = false;
		if (printable)
			room = detail->desired_room;
	}
	argv[k++] = PRESENCE_EXPIRY_KEY;
	argv[k++] = PRESENCE_VERSION_KEY;
	for (size_t i = 0; i < n; i++)
	{
		char *key = keys + i * (sizeof(PRESENCE_KEY_PREFIX) + ADDRESS_LEN);

		memcpy(key, PRESENCE_KEY_PREFIX, sizeof(PRESENCE_KEY_PREFIX) - 1);
		memcpy(key + sizeof(PRESENCE_KEY_PREFIX) - 1, addresses[i], ADDRESS_LEN + 1);
		argv[k++] = key;
	}
	argv[k++] = op;
	argv[k++] = field;
	argv[k++] = ps.ttl_text;
	argv[k++] = PRESENCE_CHANNEL;
	argv[k++] = parcel[0] ? "1" : "0";
	argv[k++] = parcel;
	argv[k++] = room;
	argv[k++] = PRESENCE_KEY_RETENTION_MS;
	if (redis_client_eval(ps.redis, ps.touch, on_touch, NULL, (int) (2 + n), (int) argc, argv,
						  NULL) != 0)
		script_failed("updating a status", "not sent");
out:
	free(argv);
	free(keys);
}

static const char *
source_field(PresenceSource source)
{
	return source == PRESENCE_SOURCE_SOCKET ? ps.socket_field : source_fields[source];
}

void
presence_seen(PresenceSource source, const char *address, const PresenceDetail *detail)
{
	if (!ps.active || (unsigned) source >= PRESENCE_SOURCE_COUNT || !ps.sources[source])
		return;
	if (!address_valid(address))
	{
		log_debug("presence: ignoring a malformed address from a source");
		return;
	}
	touch("seen", source_field(source), &address, 1, detail);
}

void
presence_gone(PresenceSource source, const char *address)
{
	if (!ps.active || (unsigned) source >= PRESENCE_SOURCE_COUNT || !ps.sources[source])
		return;
	if (!address_valid(address))
	{
		log_debug("presence: ignoring a malformed address from a source");
		return;
	}
	touch("gone", source_field(source), &address, 1, NULL);
}

/* ---- Socket source */

/* Vouches for every address with a local socket, REFRESH_CHUNK per script call, back to back
 * on the one command connection (pipelined). */
static void
socket_refresh_all(void)
{
	const char **chunk;
	size_t		 n = 0;

	if (!ps.active || !ps.sources[PRESENCE_SOURCE_SOCKET] || !ps.redis_up)
		return;
	chunk = malloc(REFRESH_CHUNK * sizeof(*chunk));
	if (chunk == NULL)
	{
		log_error("presence: out of memory refreshing local sockets");
		return;
	}
	for (FanoutIter it = fanout_socket_iter(); fanout_socket_next(&it);)
	{
		chunk[n++] = it.address;
		if (n == REFRESH_CHUNK)
		{
			touch("seen", ps.socket_field, chunk, n, NULL);
			n = 0;
		}
	}
	if (n > 0)
		touch("seen", ps.socket_field, chunk, n, NULL);
	free(chunk);
}

/* uv timer, loop thread: every ttl / 3, so a live socket is vouched for three times per TTL. */
static void
on_refresh(uv_timer_t *t)
{
	socket_refresh_all();
}

void
presence_conn_ready(Conn *c)
{
	const char *address = conn_address(c);

	if (!ps.active || !ps.sources[PRESENCE_SOURCE_SOCKET] || !address_valid(address))
		return;
	if (fanout_socket_open(address) == 1)
		touch("seen", ps.socket_field, &address, 1, NULL);
}

void
presence_conn_closed(Conn *c)
{
	const char *address = conn_address(c);

	if (!ps.active)
		return;
	fanout_conn_closed(conn_id(c));
	if (!ps.sources[PRESENCE_SOURCE_SOCKET] || !address_valid(address))
		return;
	if (fanout_socket_close(address) == 0)
		touch("gone", ps.socket_field, &address, 1, NULL);
}

/* ---- Reading statuses (for fanout.c) */

typedef struct ReadJob
{
	uint64_t	   epoch;
	FanoutReadDone done;
	void		  *ud;
	size_t		   n;
	char		   addresses[][ADDRESS_LEN + 1];
} ReadJob;

/* redis callback, loop thread. */
static void
on_read(void *ud, const redisReply *reply, const char *error)
{
	ReadJob *job = ud;
	bool	 ok = false;

	if (!ps.active)
	{
		/* shutting down: the reader still owns ud and must hear of it */
		job->done(job->ud, false);
		free(job);
		return;
	}
	if (job->epoch != ps.epoch)
		error = "Redis went down and up meanwhile";
	if (error == NULL && reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
		reply->elements == 2 * job->n)
	{
		ok = true;
		for (size_t i = 0; i < job->n; i++)
		{
			char	 status[8], version[32];
			uint64_t v;

			if (!reply_text(reply->element[2 * i], status, sizeof(status)) ||
				!reply_text(reply->element[2 * i + 1], version, sizeof(version)) ||
				!parse_u64(version, &v))
			{
				ok = false;
				break;
			}
			fanout_apply(job->addresses[i], strcmp(status, "1") == 0, v);
		}
	}
	if (!ok)
		script_failed("reading statuses", error);
	job->done(job->ud, ok);
	free(job);
}

/* fanout.c's FanoutReadFn: one script call reads n statuses and versions and applies them. */
static int
presence_read(const char *const *addresses, size_t n, FanoutReadDone done, void *ud)
{
	ReadJob		*job;
	const char **argv = NULL;
	char		*keys = NULL;
	int			 rc = -1;

	if (!ps.active || !ps.redis_up || n == 0 || uv_now(ps.loop) < ps.grace_until)
		return -1;
	job = malloc(sizeof(*job) + n * sizeof(job->addresses[0]));
	argv = malloc(n * sizeof(*argv));
	keys = malloc(n * (sizeof(PRESENCE_KEY_PREFIX) + ADDRESS_LEN));
	if (job == NULL || argv == NULL || keys == NULL)
	{
		log_error("presence: out of memory reading %zu statuses", n);
		free(job);
		goto out;
	}
	job->epoch = ps.epoch;
	job->done = done;
	job->ud = ud;
	job->n = n;
	for (size_t i = 0; i < n; i++)
	{
		char *key = keys + i * (sizeof(PRESENCE_KEY_PREFIX) + ADDRESS_LEN);

		memcpy(job->addresses[i], addresses[i], ADDRESS_LEN + 1);
		memcpy(key, PRESENCE_KEY_PREFIX, sizeof(PRESENCE_KEY_PREFIX) - 1);
		memcpy(key + sizeof(PRESENCE_KEY_PREFIX) - 1, addresses[i], ADDRESS_LEN + 1);
		argv[i] = key;
	}
	if (redis_client_eval(ps.redis, ps.read, on_read, job, (int) n, (int) n, argv, NULL) != 0)
	{
		script_failed("reading statuses", "not sent");
		free(job);
		goto out;
	}
	rc = 0;
out:
	free(argv);
	free(keys);
	return rc;
}

/* ---- The presence channel */

/* "1 <address> online|offline <v> <since_ms> [<x> <y>]"; redis callback, loop thread. */
static void
on_message(void *ud, const char *channel, const char *payload, size_t len)
{
	char	 address[ADDRESS_LEN + 8];
	char	 word[16];
	uint64_t v;
	int64_t	 since;
	int		 n = 0;

	if (!ps.active)
		return;
	if (len > 200 || strlen(payload) != len || strncmp(payload, "1 ", 2) != 0 ||
		sscanf(payload + 2, "%44s %15s %" SCNu64 " %" SCNd64 "%n", address, word, &v, &since, &n) !=
			4 ||
		!address_valid(address) || (strcmp(word, "online") != 0 && strcmp(word, "offline") != 0))
	{
		log_warn("presence: unknown message on %s ignored (%zu bytes)", channel, len);
		return;
	}
	metrics_count(M_PRESENCE_RECEIVED, 1);
	fanout_apply(address, strcmp(word, "online") == 0, v);
}

/* ---- Sweeper and tick */

static void sweep(void);

/* redis callback, loop thread. */
static void
on_sweep(void *ud, const redisReply *reply, const char *error)
{
	char	due_text[16];
	int64_t due = 0;

	if (!ps.active)
		return;
	ps.sweep_in_flight = false;
	if (error != NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
		!reply_text(reply->element[0], due_text, sizeof(due_text)) || !parse_i64(due_text, &due))
	{
		script_failed("sweeping lapsed statuses", error);
		return;
	}
	flips_read(reply, 1);
	/* More were due than one call takes: go on at once rather than fall behind. */
	if (due >= SWEEP_LIMIT_N)
		sweep();
}

static void
sweep(void)
{
	const char *argv[] = {PRESENCE_EXPIRY_KEY, PRESENCE_VERSION_KEY, PRESENCE_CHANNEL, SWEEP_LIMIT,
						  PRESENCE_KEY_RETENTION_MS};

	if (!ps.redis_up || ps.sweep_in_flight)
		return;
	if (redis_client_eval(ps.redis, ps.sweep, on_sweep, NULL, 2, 5, argv, NULL) != 0)
	{
		script_failed("sweeping lapsed statuses", "not sent");
		return;
	}
	ps.sweep_in_flight = true;
}

static void on_tick(uv_timer_t *t);

/* Every instance sweeps; the jitter keeps them from arriving in step. */
static void
tick_arm(uint64_t delay)
{
	if (delay == 0)
		delay = TICK_MS * 3 / 4 + uv_hrtime() % (TICK_MS / 2);
	uv_timer_start(&ps.tick, on_tick, delay, 0);
}

/* uv timer, loop thread. */
static void
on_tick(uv_timer_t *t)
{
	sweep();
	fanout_tick(ps.redis_up && uv_now(ps.loop) >= ps.grace_until);
	sessions_flush();
	tick_arm(0);
}

/* ---- Redis up and down (redis hooks, loop thread) */

static void
on_redis_up(void *ud)
{
	if (!ps.active)
		return;
	ps.redis_up = true;
	ps.epoch++;
	socket_refresh_all();
	sweep();
	if (!ps.was_up)
	{
		ps.was_up = true;
		log_info("presence: Redis %s up", redis_client_endpoint(ps.redis));
		fanout_resync();
		return;
	}
	/*
	 * Back after an outage. If Redis lost its data (a restart without persistence), everyone
	 * reads as offline until the sources vouch again: this instance's sockets just did, and
	 * the other instances do as they reconnect (within their backoff), heartbeats as they
	 * come. Reading at once would tell streams OFFLINE and then ONLINE for friends who never
	 * left; so statuses are read after a grace period, while flips arriving meanwhile apply
	 * as usual.
	 */
	ps.grace_until = uv_now(ps.loop) + RESYNC_GRACE_MS(ps.ttl_ms);
	log_info("presence: Redis %s up again; a fresh view for every stream in %" PRIu64 " ms",
			 redis_client_endpoint(ps.redis), (uint64_t) RESYNC_GRACE_MS(ps.ttl_ms));
}

static void
on_redis_down(void *ud)
{
	if (!ps.active)
		return;
	ps.redis_up = false;
	ps.epoch++;
	ps.sweep_in_flight = false;
	log_warn("presence: Redis %s down; presence paused, friendships unaffected",
			 redis_client_endpoint(ps.redis));
	fanout_stale();
}

/* ---- Entry points */

int
presence_init(uv_loop_t *loop, PgPool *pg, RedisClient *redis, const PresenceOptions *opts)
{
	static const RedisClientHooks hooks = {.up = on_redis_up, .down = on_redis_down};

	memset(&ps, 0, sizeof(ps));
	ps.loop = loop;
	ps.pg = pg;
	ps.redis = redis;
	ps.ttl_ms = opts->ttl_ms > 0 ? opts->ttl_ms : 90000;
	snprintf(ps.ttl_text, sizeof(ps.ttl_text), "%" PRId64, ps.ttl_ms);
	memcpy(ps.sources, opts->sources, sizeof(ps.sources));
	ps.record_sessions = opts->record_sessions;
	snprintf(ps.instance_id, sizeof(ps.instance_id), "%s",
			 opts->instance_id && opts->instance_id[0] ? opts->instance_id : "sociald");
	snprintf(ps.socket_field, sizeof(ps.socket_field), "socket:%s", ps.instance_id);
	if (redis == NULL || loop == NULL)
	{
		log_error("presence: no Redis client");
		return -1;
	}
	ps.touch = redis_client_script(redis, lua_touch);
	ps.sweep = redis_client_script(redis, lua_sweep);
	ps.read = redis_client_script(redis, lua_read);
	if (ps.touch == NULL || ps.sweep == NULL || ps.read == NULL ||
		redis_client_subscribe(redis, PRESENCE_CHANNEL, on_message, NULL) != 0)
	{
		log_error("presence: cannot register the presence scripts or channel");
		return -1;
	}
	if (fanout_init(pg, presence_read) != 0)
	{
		log_error("presence: out of memory");
		return -1;
	}
	redis_client_set_hooks(redis, &hooks, NULL);
	uv_timer_init(loop, &ps.tick);
	uv_timer_init(loop, &ps.refresh);
	ps.timers_ready = true;
	ps.active = true;
	tick_arm(0);
	if (ps.sources[PRESENCE_SOURCE_SOCKET])
		uv_timer_start(&ps.refresh, on_refresh, (uint64_t) ps.ttl_ms / 3, (uint64_t) ps.ttl_ms / 3);
	log_info("presence: instance %s, sources%s%s%s%s, ttl %" PRId64 " ms, sessions %s",
			 ps.instance_id, ps.sources[PRESENCE_SOURCE_NATS] ? " nats" : "",
			 ps.sources[PRESENCE_SOURCE_ARCHIPELAGO] ? " archipelago" : "",
			 ps.sources[PRESENCE_SOURCE_SOCKET] ? " socket" : "",
			 (ps.sources[0] || ps.sources[1] || ps.sources[2]) ? "" : " none", ps.ttl_ms,
			 ps.record_sessions ? "on" : "off");
	return 0;
}

void
presence_shutdown(void)
{
	if (ps.timers_ready)
	{
		/* static handles: nothing to free in the close callbacks */
		uv_close((uv_handle_t *) &ps.tick, NULL);
		uv_close((uv_handle_t *) &ps.refresh, NULL);
		ps.timers_ready = false;
	}
	if (ps.batch && ps.nbatch > 0)
		log_info("presence: %zu presence flips not recorded at shutdown", ps.nbatch);
	fanout_shutdown();
	free(ps.batch);
	ps.batch = NULL;
	ps.nbatch = ps.batch_cap = ps.flushing = 0;
	/* Callbacks of redis and pg_pool that are still due see active == false and only free their
	 * job. */
	ps.active = false;
}

bool
presence_redis_up(void)
{
	return ps.active && ps.redis_up;
}

uint64_t
presence_stream_count(void)
{
	return fanout_stream_count();
}
