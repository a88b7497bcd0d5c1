/*
 * loadclient.c — thousands of game clients in one process, for the presence fan-out benchmark
 * (bench/presence/run.sh).
 *
 *   loadclient keys --seed S --from I --count N
 *       prints the address of users I .. I+N-1, one per line (the benchmark builds its friend
 *       graph from them);
 *   loadclient run --url ws://127.0.0.1:PORT/ --seed S --from I --count N --stats FILE
 *                  [--concurrency C] [--rate R]
 *       opens N connections as users I .. I+N-1, each exactly like a game client (the signed
 *       auth chain of doc/auth-chain.md with a fresh ephemeral key, then
 *       @dcl/rpc: CreatePort, RequestModule, SubscribeToFriendConnectivityUpdates), acknowledges
 *       every stream element at once and counts what arrives, until SIGTERM or SIGINT.
 *
 * User i's identity key is keccak256("social presence bench:<seed>:<i>[:<k>]"), with the
 * smallest k >= 0 that makes a valid secp256k1 key (k is absent for k = 0, which is all but
 * never exceeded), so both modes agree without storing keys.
 *
 * Connections open at most C at a time (default 200) until their stream is open, and at most R
 * a second (default: no limit): the daemon verifies auth chains on its thread pool and loads
 * each stream's friend list with one query after the stream's offer, so a stampede would only
 * measure its queue limits. A connection that fails or is closed is
 * counted, never retried: the benchmark must see it.
 *
 * Stats: every 100 ms (and at exit) FILE is rewritten (a temp file renamed over it) with
 * "name value" lines: wanted, connecting, streaming, failed, closed, elements, online, offline,
 * stream_closed, bad_frames, ended_by_server (a stream the server closed), remote_errors,
 * protocol_errors, and close_<code> per close code the server sent. run.sh polls it.
 *
 * Frames are encoded and decoded by hand (doc/rpc-wire.md): the client must cost as little CPU as
 * possible, since it shares the machine with the daemon it measures. One thread, lws' own
 * poll loop; every write goes through the WRITEABLE callback, one lws_write each.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "door/auth.h"
#include "door/keccak.h"

#define LC_MAX_USERS 200000
#define LC_MAX_FRAME (256 * 1024) /* the daemon's elements are tiny; this is a safety net */
#define LC_OUT_SLOTS 4			  /* frames waiting to be written per connection */
#define LC_OUT_FRAME 64			  /* every RPC frame this client sends fits */
#define LC_STATS_EVERY_US (100 * LWS_US_PER_MS)
#define LC_MAX_CLOSE_CODES 16

/* @dcl/rpc message types and this client's fixed message numbers. */
#define RPC_REQUEST 1
#define RPC_STREAM_MESSAGE 3
#define RPC_STREAM_ACK 4
#define RPC_CREATE_PORT 5
#define RPC_CREATE_PORT_RESPONSE 6
#define RPC_REQUEST_MODULE 7
#define RPC_REQUEST_MODULE_RESPONSE 8
#define RPC_REMOTE_ERROR 9
#define RPC_SERVER_READY 11
#define RPC_ID(type, n) ((((uint32_t) (type) &0xF) << 27) | ((uint32_t) (n) &0x07FFFFFF))

#define MSG_PORT 1
#define MSG_MODULE 2
#define MSG_STREAM 3

static const char STREAM_PROC[] = "SubscribeToFriendConnectivityUpdates";

typedef enum LcPhase
{
	LC_IDLE = 0,	/* not opened yet */
	LC_CONNECTING,	/* TCP + upgrade */
	LC_READY_WAIT,	/* auth and CreatePort sent */
	LC_PORT_WAIT,	/* SERVER_READY seen */
	LC_MODULE_WAIT, /* RequestModule sent */
	LC_OFFER_WAIT,	/* stream requested */
	LC_STREAMING,	/* offer acknowledged */
	LC_DONE			/* failed or closed */
} LcPhase;

typedef struct LcFrame
{
	uint8_t buf[LWS_PRE + LC_OUT_FRAME];
	size_t	len;
} LcFrame;

typedef struct LcConn
{
	struct lws *wsi;
	uint32_t	index; /* user number */
	LcPhase		phase;
	uint32_t	port_id;
	char	   *auth; /* the auth frame until written; owned */
	uint8_t	   *in;	  /* reassembly of a fragmented frame; owned */
	size_t		in_len, in_cap;
	LcFrame		out[LC_OUT_SLOTS];
	int			out_head, out_count;
} LcConn;

typedef struct LcStats
{
	uint64_t connecting, streaming, failed, closed;
	uint64_t ended_by_server, remote_errors, protocol_errors; /* why this client hung up */
	uint64_t elements, online, offline, stream_closed, bad_frames;
	int		 close_codes[LC_MAX_CLOSE_CODES];
	uint64_t close_counts[LC_MAX_CLOSE_CODES];
	int		 close_kinds;
} LcStats;

typedef struct Lc
{
	/* options */
	char		host[256];
	char		path[256];
	int			port;
	const char *seed;
	uint32_t	from, count, concurrency;
	const char *stats_path;
	uint32_t	rate; /* connections opened per second at most; 0: no limit */
	/* state */
	struct lws_context	  *ctx;
	LcConn				  *conns;
	uint32_t			   next_open; /* next connection to open */
	uint32_t			   in_setup;  /* opened and not yet streaming or done */
	double				   tokens;	  /* connections that may open now (rate) */
	lws_usec_t			   tokens_at; /* when tokens was last topped up */
	lws_sorted_usec_list_t open_timer;
	LcStats				   st;
	lws_sorted_usec_list_t stats_timer;
} Lc;

static volatile sig_atomic_t lc_stop;

static void
lc_on_signal(int sig)
{
	(void) sig;
	lc_stop = 1;
}

/* ---- Keys */

/* User i's identity key (see the top of the file); 0 ok, -1 none found (never in practice). */
static int
lc_user_key(const char *seed, uint32_t i, uint8_t key[32])
{
	char text[512];
	char addr[ADDRESS_LEN + 1];

	for (int k = 0; k < 64; k++)
	{
		int n = k == 0 ? snprintf(text, sizeof(text), "social presence bench:%s:%" PRIu32, seed, i)
					   : snprintf(text, sizeof(text), "social presence bench:%s:%" PRIu32 ":%d",
								  seed, i, k);

		if (n < 0 || (size_t) n >= sizeof(text))
			return -1;
		keccak256((const uint8_t *) text, (size_t) n, key);
		if (auth_address_from_key(key, addr) == 0)
			return 0;
	}
	return -1;
}

static int
lc_random_key(uint8_t key[32])
{
	char addr[ADDRESS_LEN + 1];

	for (int attempt = 0; attempt < 16; attempt++)
	{
		if (getrandom(key, 32, 0) != 32)
			return -1;
		if (auth_address_from_key(key, addr) == 0)
			return 0;
	}
	return -1;
}

static int64_t
lc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The signed first frame of user i: malloc'd JSON, NULL on failure. */
static char *
lc_auth_frame(const Lc *lc, uint32_t i)
{
	uint8_t	  key[32], ephemeral[32];
	char	  expiration[40], date[32];
	int64_t	  now = lc_now_ms();
	time_t	  exp = (time_t) (now / 1000 + 24 * 3600);
	struct tm tm;
	char	 *frame = NULL;

	if (lc_user_key(lc->seed, i, key) < 0 || lc_random_key(ephemeral) < 0)
		return NULL;
	if (gmtime_r(&exp, &tm) != NULL && strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) > 0)
	{
		snprintf(expiration, sizeof(expiration), "%s.000Z", date);
		frame = auth_build_frame(key, ephemeral, now, expiration);
	}
	explicit_bzero(key, sizeof(key));
	explicit_bzero(ephemeral, sizeof(ephemeral));
	return frame;
}

/* ---- Protobuf by hand */

typedef struct PbReader
{
	const uint8_t *p, *end;
} PbReader;

static bool
pb_varint(PbReader *r, uint64_t *v)
{
	uint64_t x = 0;

	for (int shift = 0; shift < 64; shift += 7)
	{
		if (r->p >= r->end)
			return false;
		x |= (uint64_t) (*r->p & 0x7F) << shift;
		if ((*r->p++ & 0x80) == 0)
		{
			*v = x;
			return true;
		}
	}
	return false;
}

/* One field: its number and wire type; value in *v (varint, fixed32) or *data and *len (bytes).
 * false at the end or on malformed input (r->p == r->end distinguishes them). */
static bool
pb_field(PbReader *r, uint32_t *field, int *wt, uint64_t *v, const uint8_t **data, size_t *len)
{
	uint64_t tag;

	if (r->p >= r->end || !pb_varint(r, &tag))
		return false;
	*field = (uint32_t) (tag >> 3);
	*wt = (int) (tag & 7);
	switch (*wt)
	{
		case 0:
			return pb_varint(r, v);
		case 1:
			if (r->end - r->p < 8)
				return false;
			memcpy(v, r->p, 8);
			r->p += 8;
			return true;
		case 2:
			if (!pb_varint(r, v) || *v > (uint64_t) (r->end - r->p))
				return false;
			*data = r->p;
			*len = (size_t) *v;
			r->p += *len;
			return true;
		case 5:
		{
			uint32_t x;

			if (r->end - r->p < 4)
				return false;
			memcpy(&x, r->p, 4);
			r->p += 4;
			*v = le32toh(x);
			return true;
		}
		default:
			return false;
	}
}

static size_t
pb_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	while (v >= 0x80)
	{
		p[n++] = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t) v;
	return n;
}

static size_t
pb_put_fixed32(uint8_t *p, uint32_t field, uint32_t v)
{
	uint32_t le = htole32(v);

	p[0] = (uint8_t) ((field << 3) | 5);
	memcpy(p + 1, &le, 4);
	return 5;
}

static size_t
pb_put_string(uint8_t *p, uint32_t field, const char *s)
{
	size_t len = strlen(s), n;

	p[0] = (uint8_t) ((field << 3) | 2);
	n = 1 + pb_put_varint(p + 1, len);
	memcpy(p + n, s, len);
	return n + len;
}

/* ---- Connections */

static void lc_open_more(Lc *lc);

/* Queues one binary frame; -1 when the connection's small queue is full (a protocol bug here,
 * since the protocol never has more than two frames outstanding). */
static int
lc_queue(LcConn *c, const uint8_t *data, size_t len)
{
	LcFrame *f;

	if (c->out_count == LC_OUT_SLOTS || len > LC_OUT_FRAME)
		return -1;
	f = &c->out[(c->out_head + c->out_count) % LC_OUT_SLOTS];
	memcpy(f->buf + LWS_PRE, data, len);
	f->len = len;
	c->out_count++;
	lws_callback_on_writable(c->wsi);
	return 0;
}

static int
lc_send_create_port(LcConn *c)
{
	uint8_t b[LC_OUT_FRAME];
	size_t	n = pb_put_fixed32(b, 1, RPC_ID(RPC_CREATE_PORT, MSG_PORT));

	n += pb_put_string(b + n, 4, "bench");
	return lc_queue(c, b, n);
}

static int
lc_send_request_module(LcConn *c)
{
	uint8_t b[LC_OUT_FRAME];
	size_t	n = pb_put_fixed32(b, 1, RPC_ID(RPC_REQUEST_MODULE, MSG_MODULE));

	n += pb_put_fixed32(b + n, 2, c->port_id);
	n += pb_put_string(b + n, 4, "SocialService");
	return lc_queue(c, b, n);
}

static int
lc_send_request(LcConn *c, uint32_t procedure)
{
	uint8_t b[LC_OUT_FRAME];
	size_t	n = pb_put_fixed32(b, 1, RPC_ID(RPC_REQUEST, MSG_STREAM));

	n += pb_put_fixed32(b + n, 2, c->port_id);
	n += pb_put_fixed32(b + n, 4, procedure);
	return lc_queue(c, b, n);
}

static int
lc_send_ack(LcConn *c, uint32_t seq)
{
	uint8_t b[LC_OUT_FRAME];
	size_t	n = pb_put_fixed32(b, 1, RPC_ID(RPC_STREAM_ACK, MSG_STREAM));

	n += pb_put_fixed32(b + n, 2, c->port_id);
	if (seq != 0)
		n += pb_put_fixed32(b + n, 4, seq);
	b[n++] = (8 << 3) | 0; /* ack = true */
	b[n++] = 1;
	return lc_queue(c, b, n);
}

static void
lc_count_close(Lc *lc, int code)
{
	for (int i = 0; i < lc->st.close_kinds; i++)
		if (lc->st.close_codes[i] == code)
		{
			lc->st.close_counts[i]++;
			return;
		}
	if (lc->st.close_kinds < LC_MAX_CLOSE_CODES)
	{
		lc->st.close_codes[lc->st.close_kinds] = code;
		lc->st.close_counts[lc->st.close_kinds++] = 1;
	}
}

/* The connection is over: counted once, its slot freed for the next one to open. */
static void
lc_done(Lc *lc, LcConn *c, bool failed)
{
	if (c->phase == LC_DONE || c->phase == LC_IDLE)
		return;
	if (c->phase != LC_STREAMING)
		lc->in_setup--;
	if (c->phase == LC_STREAMING)
		lc->st.streaming--;
	else
		lc->st.connecting--;
	if (failed || c->phase != LC_STREAMING)
		lc->st.failed++;
	else
		lc->st.closed++;
	c->phase = LC_DONE;
	free(c->auth);
	c->auth = NULL;
	free(c->in);
	c->in = NULL;
	c->in_len = c->in_cap = 0;
	c->out_count = 0;
	lc_open_more(lc);
}

/* A FriendConnectivityUpdate: counts its status (absent = ONLINE = 0) or its stream_closed. */
static void
lc_on_element(Lc *lc, const uint8_t *data, size_t len)
{
	PbReader	   r = {data, data + len};
	uint32_t	   field;
	int			   wt;
	uint64_t	   v = 0, status = 0;
	const uint8_t *d;
	size_t		   l;
	bool		   closed = false;

	while (pb_field(&r, &field, &wt, &v, &d, &l))
	{
		if (field == 2 && wt == 0)
			status = v;
		else if (field == 3 && wt == 2)
			closed = true;
	}
	if (r.p != r.end)
	{
		lc->st.bad_frames++;
		return;
	}
	lc->st.elements++;
	if (closed)
		lc->st.stream_closed++;
	else if (status == 0)
		lc->st.online++;
	else
		lc->st.offline++;
}

/* One whole server frame; -1 closes the connection. */
static int
lc_on_frame(Lc *lc, LcConn *c, const uint8_t *frame, size_t len)
{
	PbReader	   r = {frame, frame + len};
	uint32_t	   field, id = 0, port = 0, seq = 0;
	int			   wt;
	uint64_t	   v = 0;
	const uint8_t *d, *payload = NULL;
	size_t		   l, payload_len = 0;
	bool		   closed = false, has_id = false;
	uint32_t	   procedure = 0;

	while (pb_field(&r, &field, &wt, &v, &d, &l))
	{
		if (field == 1 && wt == 5)
		{
			id = (uint32_t) v;
			has_id = true;
		}
		else if (field == 2 && wt == 5)
			port = (uint32_t) v;
		else if (field == 4 && wt == 5)
			seq = (uint32_t) v;
		else if (field == 6 && wt == 2)
		{
			payload = d;
			payload_len = l;
		}
		else if (field == 7 && wt == 0)
			closed = v != 0;
		else if (field == 5 && wt == 2)
		{
			/* RequestModuleResponse.procedures: {1: id, 2: name} */
			PbReader	   pr = {d, d + l};
			uint32_t	   pf, pid = 0;
			int			   pwt;
			uint64_t	   pv = 0;
			const uint8_t *pd = NULL;
			size_t		   pl = 0;
			bool		   match = false;

			while (pb_field(&pr, &pf, &pwt, &pv, &pd, &pl))
			{
				if (pf == 1 && pwt == 5)
					pid = (uint32_t) pv;
				else if (pf == 2 && pwt == 2)
					match = pl == sizeof(STREAM_PROC) - 1 && memcmp(pd, STREAM_PROC, pl) == 0;
			}
			if (match)
				procedure = pid;
		}
	}
	if (r.p != r.end || !has_id)
	{
		lc->st.bad_frames++;
		lc->st.protocol_errors++;
		return -1;
	}

	switch ((id >> 27) & 0xF)
	{
		case RPC_SERVER_READY:
			if (c->phase != LC_READY_WAIT)
				return -1;
			c->phase = LC_PORT_WAIT;
			return 0;
		case RPC_CREATE_PORT_RESPONSE:
			if (c->phase != LC_PORT_WAIT || port == 0)
				return -1;
			c->port_id = port;
			c->phase = LC_MODULE_WAIT;
			return lc_send_request_module(c);
		case RPC_REQUEST_MODULE_RESPONSE:
			if (c->phase != LC_MODULE_WAIT || procedure == 0)
				return -1;
			c->phase = LC_OFFER_WAIT;
			return lc_send_request(c, procedure);
		case RPC_STREAM_MESSAGE:
			if ((id & 0x07FFFFFF) != MSG_STREAM)
			{
				lc->st.protocol_errors++;
				return -1;
			}
			if (closed)
			{
				/* the server ended the stream: the connection is useless now */
				lc->st.ended_by_server++;
				return -1;
			}
			if (c->phase == LC_OFFER_WAIT && seq == 0)
			{
				c->phase = LC_STREAMING;
				lc->in_setup--;
				lc->st.connecting--;
				lc->st.streaming++;
				lc_open_more(lc);
				return lc_send_ack(c, 0);
			}
			if (c->phase != LC_STREAMING || payload == NULL)
			{
				lc->st.protocol_errors++;
				return -1;
			}
			lc_on_element(lc, payload, payload_len);
			return lc_send_ack(c, seq);
		case RPC_REMOTE_ERROR:
			lc->st.remote_errors++;
			return -1;
		default:
			lc->st.protocol_errors++;
			return -1;
	}
}

static int
lc_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	Lc	   *lc = lws_context_user(lws_get_context(wsi));
	LcConn *c = user;

	switch (reason)
	{
		case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
			if (c != NULL)
			{
				c->wsi = NULL;
				lc_count_close(lc, 0);
				lc_done(lc, c, true);
			}
			break;

		case LWS_CALLBACK_CLIENT_ESTABLISHED:
			c->auth = lc_auth_frame(lc, c->index);
			if (c->auth == NULL || lc_send_create_port(c) < 0)
				return -1;
			c->phase = LC_READY_WAIT;
			lws_callback_on_writable(wsi);
			break;

		case LWS_CALLBACK_CLIENT_RECEIVE:
			if (lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi) &&
				lws_remaining_packet_payload(wsi) == 0 && c->in_len == 0)
				return lc_on_frame(lc, c, in, len) < 0 ? -1 : 0;
			if (c->in_len + len > LC_MAX_FRAME)
				return -1;
			if (c->in_len + len > c->in_cap)
			{
				size_t	 cap = c->in_cap ? c->in_cap : 4096;
				uint8_t *grown;

				while (cap < c->in_len + len)
					cap *= 2;
				grown = realloc(c->in, cap);
				if (grown == NULL)
					return -1;
				c->in = grown;
				c->in_cap = cap;
			}
			memcpy(c->in + c->in_len, in, len);
			c->in_len += len;
			if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
			{
				size_t n = c->in_len;

				c->in_len = 0;
				return lc_on_frame(lc, c, c->in, n) < 0 ? -1 : 0;
			}
			break;

		case LWS_CALLBACK_CLIENT_WRITEABLE:
			if (c->auth != NULL)
			{
				/* The auth chain goes first, as a TEXT frame (as unity-explorer sends it). */
				size_t	 n = strlen(c->auth);
				uint8_t *buf = malloc(LWS_PRE + n);
				int		 w;

				if (buf == NULL)
					return -1;
				memcpy(buf + LWS_PRE, c->auth, n);
				w = lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
				free(buf);
				free(c->auth);
				c->auth = NULL;
				if (w < (int) n)
					return -1;
			}
			else if (c->out_count > 0)
			{
				LcFrame *f = &c->out[c->out_head];

				if (lws_write(wsi, f->buf + LWS_PRE, f->len, LWS_WRITE_BINARY) < (int) f->len)
					return -1;
				c->out_head = (c->out_head + 1) % LC_OUT_SLOTS;
				c->out_count--;
			}
			if (c->out_count > 0 || c->auth != NULL)
				lws_callback_on_writable(wsi);
			break;

		case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
			if (c != NULL && len >= 2)
				lc_count_close(lc, (((const uint8_t *) in)[0] << 8) | ((const uint8_t *) in)[1]);
			break;

		case LWS_CALLBACK_CLIENT_CLOSED:
			if (c != NULL)
			{
				c->wsi = NULL;
				lc_done(lc, c, false);
			}
			break;

		default:
			break;
	}
	return 0;
}

static const struct lws_protocols lc_protocols[] = {
	{"loadclient", lc_callback, 0, LC_MAX_FRAME, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Tops the rate's token bucket up (at most one second's worth); true when one may open. */
static bool
lc_may_open(Lc *lc)
{
	lws_usec_t now;

	if (lc->rate == 0)
		return true;
	now = lws_now_usecs();
	lc->tokens += (double) (now - lc->tokens_at) * lc->rate / LWS_US_PER_SEC;
	if (lc->tokens > lc->rate)
		lc->tokens = lc->rate;
	lc->tokens_at = now;
	return lc->tokens >= 1.0;
}

static void
lc_open_tick(lws_sorted_usec_list_t *sul)
{
	Lc *lc = lws_container_of(sul, Lc, open_timer);

	lc_open_more(lc);
	if (lc->next_open < lc->count)
		lws_sul_schedule(lc->ctx, 0, &lc->open_timer, lc_open_tick, 10 * LWS_US_PER_MS);
}

/* Opens connections while fewer than concurrency are still setting up (and the rate allows). */
static void
lc_open_more(Lc *lc)
{
	static bool opening;

	/* A connect that fails at once ends up here again through lc_done: the outer loop goes on. */
	if (opening)
		return;
	opening = true;
	while (!lc_stop && lc->next_open < lc->count && lc->in_setup < lc->concurrency &&
		   lc_may_open(lc))
	{
		LcConn						  *c = &lc->conns[lc->next_open++];
		struct lws_client_connect_info ci;

		memset(&ci, 0, sizeof(ci));
		ci.context = lc->ctx;
		ci.address = lc->host;
		ci.port = lc->port;
		ci.path = lc->path;
		ci.host = lc->host;
		ci.origin = lc->host;
		ci.local_protocol_name = lc_protocols[0].name;
		ci.userdata = c;
		ci.pwsi = &c->wsi;
		c->phase = LC_CONNECTING;
		if (lc->rate > 0)
			lc->tokens -= 1.0;
		lc->in_setup++;
		lc->st.connecting++;
		if (lws_client_connect_via_info(&ci) == NULL && c->phase == LC_CONNECTING)
		{
			/* failed synchronously, without a CONNECTION_ERROR callback */
			c->wsi = NULL;
			lc_count_close(lc, 0);
			lc_done(lc, c, true);
		}
	}
	opening = false;
}

/* ---- Stats */

static void
lc_write_stats(Lc *lc)
{
	char  tmp[1100];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", lc->stats_path);
	f = fopen(tmp, "w");
	if (f == NULL)
	{
		fprintf(stderr, "loadclient: %s: %s\n", tmp, strerror(errno));
		return;
	}
	fprintf(f,
			"wanted %" PRIu32 "\nconnecting %" PRIu64 "\nstreaming %" PRIu64 "\nfailed %" PRIu64
			"\nclosed %" PRIu64 "\nelements %" PRIu64 "\nonline %" PRIu64 "\noffline %" PRIu64
			"\nstream_closed %" PRIu64 "\nbad_frames %" PRIu64 "\nended_by_server %" PRIu64
			"\nremote_errors %" PRIu64 "\nprotocol_errors %" PRIu64 "\n",
			lc->count, lc->st.connecting, lc->st.streaming, lc->st.failed, lc->st.closed,
			lc->st.elements, lc->st.online, lc->st.offline, lc->st.stream_closed, lc->st.bad_frames,
			lc->st.ended_by_server, lc->st.remote_errors, lc->st.protocol_errors);
	for (int i = 0; i < lc->st.close_kinds; i++)
		fprintf(f, "close_%d %" PRIu64 "\n", lc->st.close_codes[i], lc->st.close_counts[i]);
	if (fclose(f) != 0 || rename(tmp, lc->stats_path) != 0)
		fprintf(stderr, "loadclient: %s: %s\n", lc->stats_path, strerror(errno));
}

static void
lc_stats_tick(lws_sorted_usec_list_t *sul)
{
	Lc *lc = lws_container_of(sul, Lc, stats_timer);

	lc_write_stats(lc);
	lws_sul_schedule(lc->ctx, 0, &lc->stats_timer, lc_stats_tick, LC_STATS_EVERY_US);
}

/* ---- Options and main */

static void
lc_usage(FILE *out)
{
	fprintf(out, "usage: loadclient keys --seed S --from I --count N\n"
				 "       loadclient run --url ws://HOST:PORT/ --seed S --from I --count N "
				 "--stats FILE [--concurrency C] [--rate R]\n");
}

static int
lc_parse_u32(const char *name, const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	char	 *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < (long long) min || v > (long long) max)
	{
		fprintf(stderr, "loadclient: %s must be an integer in %" PRIu32 "..%" PRIu32 "\n", name,
				min, max);
		return -1;
	}
	*out = (uint32_t) v;
	return 0;
}

static int
lc_parse_url(Lc *lc, const char *url)
{
	const char *p, *colon, *slash;
	uint32_t	port;
	char		portbuf[8];

	if (strncmp(url, "ws://", 5) != 0)
	{
		fprintf(stderr, "loadclient: --url must be ws://host:port/path\n");
		return -1;
	}
	p = url + 5;
	slash = strchr(p, '/');
	colon = memchr(p, ':', slash ? (size_t) (slash - p) : strlen(p));
	if (colon == NULL || (size_t) (colon - p) >= sizeof(lc->host) || colon == p)
	{
		fprintf(stderr, "loadclient: --url needs a host and a port\n");
		return -1;
	}
	memcpy(lc->host, p, (size_t) (colon - p));
	lc->host[colon - p] = '\0';
	snprintf(portbuf, sizeof(portbuf), "%.*s",
			 (int) (slash ? slash - colon - 1 : (long) strlen(colon + 1)), colon + 1);
	if (lc_parse_u32("the port", portbuf, 1, 65535, &port) < 0)
		return -1;
	lc->port = (int) port;
	snprintf(lc->path, sizeof(lc->path), "%s", slash ? slash : "/");
	return 0;
}

static int
lc_keys(const Lc *lc)
{
	uint8_t key[32];
	char	addr[ADDRESS_LEN + 1];

	for (uint32_t i = lc->from; i < lc->from + lc->count; i++)
	{
		if (lc_user_key(lc->seed, i, key) < 0 || auth_address_from_key(key, addr) < 0)
		{
			fprintf(stderr, "loadclient: no key for user %" PRIu32 "\n", i);
			return 1;
		}
		printf("%s\n", addr);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

static int
lc_run(Lc *lc)
{
	struct lws_context_creation_info info;
	struct sigaction				 sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = lc_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	lc->conns = calloc(lc->count, sizeof(LcConn));
	if (lc->conns == NULL)
	{
		fprintf(stderr, "loadclient: out of memory for %" PRIu32 " connections\n", lc->count);
		return 1;
	}
	for (uint32_t i = 0; i < lc->count; i++)
		lc->conns[i].index = lc->from + i;

	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = lc_protocols;
	info.user = lc;
	info.fd_limit_per_thread = lc->count + 64;
	info.gid = -1;
	info.uid = -1;
	/* lws' own deadline for a connection's handshake steps; a busy daemon may be slow to accept */
	info.timeout_secs = 60;
	lc->ctx = lws_create_context(&info);
	if (lc->ctx == NULL)
	{
		fprintf(stderr, "loadclient: could not create the lws context (ulimit -n?)\n");
		free(lc->conns);
		return 1;
	}
	lws_sul_schedule(lc->ctx, 0, &lc->stats_timer, lc_stats_tick, LC_STATS_EVERY_US);
	lc->tokens = 1.0;
	lc->tokens_at = lws_now_usecs();
	lc_open_tick(&lc->open_timer);
	while (!lc_stop)
		if (lws_service(lc->ctx, 0) < 0)
			break;
	lws_sul_cancel(&lc->stats_timer);
	lws_sul_cancel(&lc->open_timer);
	lc_write_stats(lc);
	lws_context_destroy(lc->ctx);
	for (uint32_t i = 0; i < lc->count; i++)
	{
		free(lc->conns[i].auth);
		free(lc->conns[i].in);
	}
	free(lc->conns);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"url", required_argument, NULL, 'u'},
		{"seed", required_argument, NULL, 's'},
		{"from", required_argument, NULL, 'f'},
		{"count", required_argument, NULL, 'n'},
		{"stats", required_argument, NULL, 'o'},
		{"concurrency", required_argument, NULL, 'c'},
		{"rate", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	Lc			lc;
	const char *mode, *url = NULL;
	int			ch;
	bool		have_count = false;

	memset(&lc, 0, sizeof(lc));
	lc.concurrency = 200;
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)
	{
		lc_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	mode = argv[1];
	optind = 2;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1)
	{
		switch (ch)
		{
			case 'u':
				url = optarg;
				break;
			case 's':
				lc.seed = optarg;
				break;
			case 'f':
				if (lc_parse_u32("--from", optarg, 0, UINT32_MAX / 2, &lc.from) < 0)
					return 2;
				break;
			case 'n':
				if (lc_parse_u32("--count", optarg, 1, LC_MAX_USERS, &lc.count) < 0)
					return 2;
				have_count = true;
				break;
			case 'o':
				lc.stats_path = optarg;
				break;
			case 'c':
				if (lc_parse_u32("--concurrency", optarg, 1, 10000, &lc.concurrency) < 0)
					return 2;
				break;
			case 'r':
				if (lc_parse_u32("--rate", optarg, 0, 1000000, &lc.rate) < 0)
					return 2;
				break;
			case 'h':
				lc_usage(stdout);
				return 0;
			default:
				lc_usage(stderr);
				return 2;
		}
	}
	if (optind != argc || lc.seed == NULL || lc.seed[0] == '\0' || strlen(lc.seed) > 200 ||
		!have_count)
	{
		lc_usage(stderr);
		return 2;
	}
	if (strcmp(mode, "keys") == 0)
		return lc_keys(&lc);
	if (strcmp(mode, "run") != 0 || url == NULL || lc.stats_path == NULL ||
		strlen(lc.stats_path) > 1000)
	{
		lc_usage(stderr);
		return 2;
	}
	if (lc_parse_url(&lc, url) < 0)
		return 2;
	return lc_run(&lc);
}
