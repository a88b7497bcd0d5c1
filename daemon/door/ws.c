/*
 * ws.c — the WebSocket and HTTP door (libwebsockets 4.1.6 on the daemon's libuv loop).
 *
 * A client connection moves through one state machine, changed only by conn_set_state():
 *
 *   AWAIT_AUTH --first message--> VERIFYING --auth ok--> READY
 *        \                             \                   \
 *         `------------------------------`-------------------`--> CLOSING --(lws CLOSED)--> freed
 *
 * Invariants:
 * - A connection is "listed" (in the id table, so conn_lookup finds it, and in the live list)
 *   exactly while it is admitted and not CLOSING. conn_close() unlists at once; the Conn itself
 *   lives until lws reports LWS_CALLBACK_CLOSED, and only then is the application told
 *   (WsApp.closed) and the RPC session destroyed — never on a caller's stack (conn_close is
 *   called from inside rpc and application callbacks).
 * - Connections waiting for auth sit in one FIFO ordered by deadline (every deadline is accept
 *   time + the same timeout), so one uv_timer serves them all.
 * - Output (STYLE rule 13): frames are copied with LWS_PRE headroom onto a per-connection queue
 *   bounded in messages and bytes; only LWS_CALLBACK_SERVER_WRITEABLE writes, one lws_write per
 *   callback, and asks for another callback while frames remain. A client that does not read
 *   overflows its queue and is closed with 1011; nothing grows without bound. Closing drops the
 *   queue: the close frame is the next thing lws writes.
 * - Input: a message is reassembled up to the payload limit (1009 beyond), counted against a
 *   token bucket (1008 beyond), and then: the first is the auth frame, verified on libuv's thread
 *   pool; later ones wait, in order and bounded, until that finishes; after auth, binary frames
 *   go to the RPC session and text frames are a protocol error.
 * - Every disconnect logs exactly one line, in conn_finish(), with the reason chosen by whoever
 *   started the close (first one wins).
 * - The auth job outlives its connection if need be: a closed connection detaches from its job,
 *   and the job frees itself when the thread pool hands it back.
 *
 * Everything here runs on the loop thread, except auth_work() (a thread-pool thread).
 */
#include "door/ws.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "door/auth.h"
#include "door/conn.h"
#include "main/log.h"
#include "main/metrics.h"

/* Per-connection receive buffer: 512 bytes costs ~1.9 KB per idle connection (EVENT_LOOP.md). */
#define WS_RX_BUFFER 512
/* Largest single send(); frames above it are sent by lws in several writes. */
#define WS_TX_PACKET 65536
/* Messages a client may pipeline behind its auth frame before verification ends. */
#define WS_PENDING_MAX 64
/* Bytes a connection may hold before it is authenticated: the message being received plus
 * those pipelined behind the auth frame. A real auth frame is ~1.5 KB and what follows it is a
 * few small RPC frames; allowing WS_MAX_PAYLOAD_BYTES here would let anonymous connections pin
 * WS_MAX_UNAUTHENTICATED megabytes. */
#define WS_PREAUTH_BYTES AUTH_FRAME_MAX
/* File descriptors beyond max_connections: HTTP scrapes, refused upgrades, libpq, stdio. */
#define WS_FD_HEADROOM 1024
/* Descriptors the process holds besides lws' sockets: stdio, the loop's own, PostgreSQL, Redis,
 * NATS. lws stops accepting when its own table is full, but not when the process runs out:
 * then accept() fails with EMFILE on every turn of the loop, a busy loop that also floods the
 * log. So sockets are refused this much below the descriptor limit (ws_fd_limit). */
#define WS_FD_RESERVE 256
/* The same lws log line at most once a second; repeats are counted. */
#define WS_LWS_LOG_REPEAT_MS 1000
/* Frames up to this size are written at once when the socket takes them (conn_write_now);
 * stream elements (presence, live updates) are a few hundred bytes. */
#define WS_DIRECT_MAX 4096
/* HTTP bodies are written in pieces of this size, one per writable callback. */
#define WS_HTTP_CHUNK 4096
/* Longest listen address kept. */
#define WS_HOST_MAX 256

typedef enum ConnState
{
	CONN_AWAIT_AUTH = 0,
	CONN_VERIFYING,
	CONN_READY,
	CONN_CLOSING
} ConnState;

/* One queued message: outbound ones carry LWS_PRE bytes of headroom before the payload. */
typedef struct Frame
{
	struct Frame *next;
	size_t		  len;
	bool		  text;
	uint8_t		  data[];
} Frame;

typedef struct FrameQueue
{
	Frame *head;
	Frame *tail;
	size_t count;
	size_t bytes;
} FrameQueue;

typedef struct AuthJob AuthJob;

struct Conn
{
	uint64_t	id;
	struct lws *wsi;
	ConnState	state;
	bool		admitted; /* counted in the gauges; false for connections refused at once */
	bool		listed;	  /* in the id table and the live list */
	bool		in_auth_fifo;
	bool		authenticated; /* reached READY once */
	char		address[AUTH_ADDRESS_LEN + 1];
	char		peer[64];
	RpcSession *rpc; /* owned; created at READY */
	AuthJob	   *job; /* in flight on the thread pool, or NULL */
	Conn	   *hash_next;
	Conn	   *live_prev, *live_next;
	Conn	   *auth_prev, *auth_next;
	uint64_t	auth_deadline; /* uv_now() ms */
	uint8_t	   *rx;			   /* reassembly of a message that arrived in pieces */
	size_t		rx_len, rx_cap;
	bool		rx_text;
	FrameQueue	pending; /* messages received while VERIFYING */
	FrameQueue	out;	 /* frames waiting for SERVER_WRITEABLE */
	int64_t		tokens;	 /* rate limit, in thousandths of a message */
	uint64_t	tokens_at;
	uint64_t	opened_at;
	uint64_t	last_rx_at; /* any message or pong: what the idle timeout measures */
	uint64_t	pinged_at;	/* the last keepalive ping queued (keepalive_cb) */
	bool		ping_due;	/* write a ping at the next SERVER_WRITEABLE */
	int			close_code;
	char		close_reason[32];
	char		close_detail[32];
};

struct AuthJob
{
	uv_work_t	req;
	Conn	   *conn; /* NULL once the connection is gone */
	AuthOptions opt;
	AuthStatus	status;
	char		address[AUTH_ADDRESS_LEN + 1];
	size_t		len;
	char		frame[];
};

typedef struct HttpReply
{
	unsigned int status;
	const char	*type;
	char		*body; /* malloc'd */
	size_t		 len;
	size_t		 sent;
	bool		 headers_sent;
	bool		 head_only; /* HEAD: headers only */
	bool		 close;		/* not GET/HEAD: close after the answer */
} HttpReply;

/* lws' per-connection user space; zeroed by lws. One protocol serves both HTTP and WebSocket. */
typedef struct WsSession
{
	Conn	  *conn;
	HttpReply *http;
} WsSession;

struct Ws
{
	bool				active;
	bool				abandoned; /* ws_create failed half-way: the context is never destroyed */
	bool				shutting_down;
	uv_loop_t		   *loop;
	void			   *foreign_loops[1];
	struct lws_context *context;
	WsOptions			opts;
	char				host[WS_HOST_MAX];
	lws_retry_bo_t		idle_policy;
	RpcHooks			hooks;
	uv_timer_t			auth_timer;
	uv_timer_t			keepalive_timer;
	Conn			  **buckets; /* id table, chained */
	size_t				bucket_mask;
	Conn			   *live_head;
	Conn			   *auth_head, *auth_tail;
	size_t				open_count;		 /* Conn objects alive */
	size_t				admitted;		 /* == G_CONNECTIONS */
	size_t				unauthenticated; /* == G_CONNECTIONS_UNAUTHENTICATED */
	uint64_t			next_id;
	uint64_t			started_at;
	unsigned int		fd_accept_limit; /* accepted sockets numbered from here are refused */
};

/* One server per process: conn_lookup() is global, and lws may call back after ws_destroy(). */
static Ws server;

/* Shared by every HTTP writable callback: filled and handed to lws_write at once. */
static uint8_t http_buf[LWS_PRE + WS_HTTP_CHUNK];

static void conn_set_state(Conn *c, ConnState next);

/*
 * Small containers.
 */

static Frame *
frame_new(size_t headroom, const uint8_t *data, size_t len, bool text)
{
	Frame *f = malloc(sizeof(Frame) + headroom + len);

	if (!f)
		return NULL;
	f->next = NULL;
	f->len = len;
	f->text = text;
	if (len)
		memcpy(f->data + headroom, data, len);
	return f;
}

static void
queue_push(FrameQueue *q, Frame *f)
{
	if (q->tail)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	q->count++;
	q->bytes += f->len;
}

/* Caller owns the returned frame. */
static Frame *
queue_pop(FrameQueue *q)
{
	Frame *f = q->head;

	if (!f)
		return NULL;
	q->head = f->next;
	if (!q->head)
		q->tail = NULL;
	q->count--;
	q->bytes -= f->len;
	return f;
}

static void
queue_clear(FrameQueue *q)
{
	Frame *f;

	while ((f = queue_pop(q)))
		free(f);
}

static size_t
id_bucket(uint64_t id)
{
	/* Ids are sequential: a multiplicative hash spreads them over the buckets. */
	return (size_t) ((id * 0x9E3779B97F4A7C15ull) >> 20) & server.bucket_mask;
}

static void
conn_list(Conn *c)
{
	size_t b = id_bucket(c->id);

	c->hash_next = server.buckets[b];
	server.buckets[b] = c;
	c->live_prev = NULL;
	c->live_next = server.live_head;
	if (server.live_head)
		server.live_head->live_prev = c;
	server.live_head = c;
	c->listed = true;
}

static void
conn_unlist(Conn *c)
{
	Conn **pp;

	if (!c->listed)
		return;
	for (pp = &server.buckets[id_bucket(c->id)]; *pp; pp = &(*pp)->hash_next)
	{
		if (*pp == c)
		{
			*pp = c->hash_next;
			break;
		}
	}
	if (c->live_prev)
		c->live_prev->live_next = c->live_next;
	else
		server.live_head = c->live_next;
	if (c->live_next)
		c->live_next->live_prev = c->live_prev;
	c->listed = false;
}

/*
 * Auth deadlines.
 */

static void auth_timer_cb(uv_timer_t *t);

static void
auth_timer_arm(void)
{
	uint64_t now = uv_now(server.loop);

	if (!server.auth_head)
	{
		uv_timer_stop(&server.auth_timer);
		return;
	}
	uv_timer_start(
		&server.auth_timer, auth_timer_cb,
		server.auth_head->auth_deadline > now ? server.auth_head->auth_deadline - now : 0, 0);
}

static void
auth_fifo_push(Conn *c)
{
	c->auth_deadline = uv_now(server.loop) + (uint64_t) server.opts.auth_timeout_ms;
	c->auth_prev = server.auth_tail;
	c->auth_next = NULL;
	if (server.auth_tail)
		server.auth_tail->auth_next = c;
	else
		server.auth_head = c;
	server.auth_tail = c;
	c->in_auth_fifo = true;
	/* Deadlines only grow, so the timer only needs arming when the FIFO was empty. */
	if (server.auth_head == c)
		auth_timer_arm();
}

/* The timer is not re-armed here: it fires at the old head's deadline, finds nothing due, and
 * re-arms for the new head — one cheap wake-up instead of a timer operation per connection. */
static void
auth_fifo_remove(Conn *c)
{
	if (!c->in_auth_fifo)
		return;
	if (c->auth_prev)
		c->auth_prev->auth_next = c->auth_next;
	else
		server.auth_head = c->auth_next;
	if (c->auth_next)
		c->auth_next->auth_prev = c->auth_prev;
	else
		server.auth_tail = c->auth_prev;
	c->in_auth_fifo = false;
}

/* Loop thread. */
static void
auth_timer_cb(uv_timer_t *t)
{
	uint64_t now = uv_now(server.loop);

	/* conn_close() takes each one out of the FIFO, so the loop advances. */
	while (server.auth_head && server.auth_head->auth_deadline <= now)
		conn_close(server.auth_head, CONN_CLOSE_AUTH_TIMEOUT, "auth_timeout");
	auth_timer_arm();
}

/*
 * Keepalive, ours rather than lws': a connection silent for half the idle timeout gets one
 * ping, and one silent for all of it (no pong either) is closed with "idle_timeout".
 *
 * lws keeps its keepalive timers in one list sorted by due time, and every sign of life moves
 * the connection's timer with a walk of that list: with 10,000 connections under fan-out (each
 * stream element is acknowledged) that walk was most of the daemon's CPU. Here a sign of life
 * is one store (last_rx_at), and this timer walks the live connections a few times per idle
 * timeout instead.
 */
static uint64_t
keepalive_interval_ms(void)
{
	uint64_t ms = (uint64_t) server.opts.idle_timeout_s * 1000 / 8;

	return ms < 100 ? 100 : ms > 1000 ? 1000 : ms;
}

/* Loop thread. */
static void
keepalive_cb(uv_timer_t *t)
{
	uint64_t now = uv_now(server.loop);
	uint64_t idle_ms = (uint64_t) server.opts.idle_timeout_s * 1000;
	Conn	*next;

	/* conn_close() unlists the connection: take the next one first. */
	for (Conn *c = server.live_head; c; c = next)
	{
		uint64_t silent = now - c->last_rx_at;

		next = c->live_next;
		if (silent >= idle_ms)
			conn_close(c, CONN_CLOSE_GOING_AWAY, "idle_timeout");
		else if (silent >= idle_ms / 2 && c->pinged_at <= c->last_rx_at)
		{
			c->pinged_at = now;
			c->ping_due = true;
			lws_callback_on_writable(c->wsi);
		}
	}
}

/*
 * The connection API (conn.h).
 */

uint64_t
conn_id(const Conn *c)
{
	return c->id;
}

const char *
conn_address(const Conn *c)
{
	return c->address;
}

RpcSession *
conn_rpc(Conn *c)
{
	return c->rpc;
}

Conn *
conn_lookup(uint64_t id)
{
	if (!server.active)
		return NULL;
	for (Conn *c = server.buckets[id_bucket(id)]; c; c = c->hash_next)
		if (c->id == id)
			return c;
	return NULL;
}

/* The counter each stable reason feeds; reasons not listed are only logged. */
static const struct
{
	const char	 *reason;
	MetricCounter counter;
} reason_counters[] = {
	{"auth_failed", M_AUTH_FAILED},		   {"auth_timeout", M_AUTH_TIMEOUT},
	{"rate_limited", M_RATE_LIMITED},	   {"queue_overflow", M_QUEUE_DROPS},
	{"protocol_error", M_PROTOCOL_ERRORS}, {"too_many_connections", M_CONNECTIONS_REJECTED},
};

/* Records why the connection ends and unlists it; the socket side is up to the caller. */
static void
conn_mark_closing(Conn *c, int code, const char *reason, const char *detail)
{
	if (c->state == CONN_CLOSING)
		return;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "unknown");
	snprintf(c->close_detail, sizeof(c->close_detail), "%s", detail ? detail : "");
	for (size_t i = 0; i < sizeof(reason_counters) / sizeof(reason_counters[0]); i++)
		if (strcmp(c->close_reason, reason_counters[i].reason) == 0)
			metrics_count(reason_counters[i].counter, 1);
	conn_set_state(c, CONN_CLOSING);
}

/* The text a client sees in the close frame. */
static const char *
close_text(const Conn *c)
{
	switch (c->close_code)
	{
		case CONN_CLOSE_UNAUTHORIZED:
			return "Unauthorized";
		case CONN_CLOSE_AUTH_TIMEOUT:
			return "Authorization timeout";
		default:
			return c->close_reason;
	}
}

static void
conn_close_detail(Conn *c, int code, const char *reason, const char *detail)
{
	const char *text;

	if (!c || c->state == CONN_CLOSING)
		return;
	conn_mark_closing(c, code, reason, detail);
	text = close_text(c);
	/*
	 * lws writes the close frame itself once the socket is writable, and cuts a client that does
	 * not take it within PENDING_TIMEOUT_CLOSE_SEND. The close starts from LWS_CALLBACK_TIMER
	 * returning -1, not from SERVER_WRITEABLE or RECEIVE: Debian's lws 4.1.6 is a _DEBUG build,
	 * and on libuv its "close_and_handled uv repeat test" closes such a connection a second time,
	 * killing the socket before the close frame is out; and a timeout close (lws_set_timeout)
	 * is treated as a violent death with no close frame at all. On a foreign loop lws looks at
	 * its timers only after socket activity: the writable request (answered by conn_writable
	 * with nothing) makes it notice this one now.
	 *
	 * lws' own keepalive pings are off (ws_create): they would share the buffer that holds
	 * this close payload, and write their timestamp over it.
	 */
	lws_close_reason(c->wsi, (enum lws_close_status) code, (unsigned char *) text, strlen(text));
	lws_set_timer_usecs(c->wsi, 1);
	lws_callback_on_writable(c->wsi);
}

void
conn_close(Conn *c, int code, const char *reason)
{
	conn_close_detail(c, code, reason, NULL);
}

/*
 * The state machine's one choke point: gauges, the auth FIFO and the id table follow the state.
 */
static void
conn_set_state(Conn *c, ConnState next)
{
	ConnState prev = c->state;

	if (prev == next)
		return;
	/* The auth deadline covers the verification too: a client that keeps the thread pool busy
	 * is still timed out. */
	if (next == CONN_READY || next == CONN_CLOSING)
		auth_fifo_remove(c);
	if (next == CONN_READY)
	{
		c->authenticated = true;
		if (c->admitted)
		{
			server.unauthenticated--;
			metrics_gauge_add(G_CONNECTIONS_UNAUTHENTICATED, -1);
		}
	}
	if (next == CONN_CLOSING)
	{
		conn_unlist(c);
		/* Nothing more is delivered or processed. */
		queue_clear(&c->out);
		queue_clear(&c->pending);
	}
	c->state = next;
}

/* LWS_CALLBACK_CLOSED: the one disconnect line, then everything the connection owned. */
static void
conn_finish(Conn *c)
{
	uint64_t now = uv_now(server.loop);

	if (c->state != CONN_CLOSING)
	{
		/* Nobody closed it on purpose: the peer vanished. */
		conn_mark_closing(c, 1006, "client_closed", "connection_lost");
	}
	log_conn(LOG_LEVEL_INFO, c->id, c->address, "closed reason=%s%s%s code=%d peer=%s ms=%llu",
			 c->close_reason, c->close_detail[0] ? " detail=" : "", c->close_detail, c->close_code,
			 c->peer, (unsigned long long) (now - c->opened_at));

	if (c->admitted)
	{
		server.admitted--;
		metrics_gauge_add(G_CONNECTIONS, -1);
		if (!c->authenticated)
		{
			server.unauthenticated--;
			metrics_gauge_add(G_CONNECTIONS_UNAUTHENTICATED, -1);
		}
	}
	if (c->job)
		c->job->conn = NULL;
	if (c->rpc)
	{
		server.opts.app->closed(c);
		rpc_session_destroy(c->rpc);
	}
	free(c->rx);
	free(c);
	server.open_count--;
}

/*
 * Output.
 */

/*
 * Writes a frame at once when nothing is queued before it and the socket takes it: true when it
 * was written (or the connection failed writing it and is closing). false: queue it.
 *
 * The usual way, a writable request and one write per SERVER_WRITEABLE, turns the socket's
 * write interest on and off around every frame, and libuv's uv_poll re-registers the socket
 * with epoll on each change: four epoll_ctl calls per frame, more than half of the daemon's
 * system calls under presence fan-out (a stream element waits for the client's ack of the one
 * before, so elements never batch). lws_send_pipe_choked is lws' own test for another write:
 * nothing of an earlier write still buffered, and the socket writable. A frame the kernel takes
 * only in part is then kept by lws and finished before anything else, as after any write.
 */
static bool
conn_write_now(Conn *c, const uint8_t *frame, size_t len)
{
	static uint8_t buf[LWS_PRE + WS_DIRECT_MAX];

	if (len > WS_DIRECT_MAX || lws_send_pipe_choked(c->wsi))
		return false;
	memcpy(buf + LWS_PRE, frame, len);
	if (lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY) < (int) len)
	{
		/* lws kills the socket when the close it starts finds it unusable. */
		conn_close_detail(c, CONN_CLOSE_INTERNAL, "client_closed", "write_failed");
		return true;
	}
	metrics_count(M_FRAMES_OUT, 1);
	return true;
}

/* RpcHooks.send: loop thread, possibly inside rpc_session_input or an application callback. */
static int
conn_send(void *ud, const uint8_t *frame, size_t len)
{
	Conn  *c = ud;
	Frame *f;

	if (c->state != CONN_READY)
		return -1;
	if (c->out.count + 1 > (size_t) server.opts.outbound_queue_messages ||
		c->out.bytes + len > server.opts.outbound_queue_bytes)
	{
		conn_close(c, CONN_CLOSE_INTERNAL, "queue_overflow");
		return -1;
	}
	if (!c->out.head && !c->ping_due && conn_write_now(c, frame, len))
		return c->state == CONN_READY ? 0 : -1;
	f = frame_new(LWS_PRE, frame, len, false);
	if (!f)
	{
		conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "out_of_memory");
		return -1;
	}
	queue_push(&c->out, f);
	if (c->out.count == 1)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* LWS_CALLBACK_SERVER_WRITEABLE: a due ping, or the queued frames the socket takes; then ask
 * again if more is queued. */
static int
conn_writable(Conn *c)
{
	Frame *f;

	/* One write per callback: a due ping goes first, the frames at the next one. */
	if (c->ping_due && c->state != CONN_CLOSING)
	{
		static uint8_t ping[LWS_PRE];

		c->ping_due = false;
		if (lws_write(c->wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
		{
			conn_mark_closing(c, 1006, "client_closed", "write_failed");
			return -1;
		}
		if (c->out.head)
			lws_callback_on_writable(c->wsi);
		return 0;
	}
	/* A closing connection's queue is empty; lws writes its close frame. Queued frames go out
	 * while the socket takes them (lws_send_pipe_choked allows the next write), so a backlog
	 * does not cost a writable round trip per frame. */
	do
	{
		f = queue_pop(&c->out);
		if (!f)
			return 0;
		if (lws_write(c->wsi, f->data + LWS_PRE, f->len, LWS_WRITE_BINARY) < (int) f->len)
		{
			free(f);
			conn_mark_closing(c, 1006, "client_closed", "write_failed");
			return -1;
		}
		free(f);
		metrics_count(M_FRAMES_OUT, 1);
	} while (c->out.head && !lws_send_pipe_choked(c->wsi));
	if (c->out.head)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/*
 * RPC hooks: ud is the Conn; they hand over to the application. A closing connection starts no
 * new work.
 */

static void
hook_call(void *ud, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload, size_t len)
{
	Conn *c = ud;

	if (c->state == CONN_READY)
		server.opts.app->call(c, msg_no, proc, payload, len);
}

static void
hook_stream_open(void *ud, uint32_t msg_no, const RpcProcedure *proc)
{
	Conn *c = ud;

	if (c->state == CONN_READY)
		server.opts.app->stream_open(c, msg_no, proc);
}

static void
hook_stream_closed(void *ud, uint32_t msg_no, const RpcProcedure *proc)
{
	server.opts.app->stream_closed(ud, msg_no, proc);
}

/*
 * Input.
 */

/* One message in the token bucket; false when the client is over its rate. */
static bool
rate_take(Conn *c)
{
	uint64_t now = uv_now(server.loop);
	int64_t	 cap = (int64_t) server.opts.messages_burst * 1000;

	/* messages_per_second thousandths of a message per millisecond. */
	c->tokens += (int64_t) (now - c->tokens_at) * server.opts.messages_per_second;
	if (c->tokens > cap)
		c->tokens = cap;
	c->tokens_at = now;
	if (c->tokens < 1000)
		return false;
	c->tokens -= 1000;
	return true;
}

/* An authenticated connection's message. */
static void
conn_input(Conn *c, const uint8_t *data, size_t len, bool text)
{
	if (text)
	{
		/* The RPC transport is binary only; a text frame after auth is a confused client. */
		conn_close_detail(c, 1003, "protocol_error", "text_frame");
		return;
	}
	metrics_count(M_FRAMES_IN, 1);
	if (rpc_session_input(c->rpc, data, len) == RPC_INPUT_MALFORMED)
		conn_close_detail(c, 1002, "protocol_error", "malformed_frame");
}

static void
conn_authenticated(Conn *c, const char *address)
{
	Frame *f;

	memcpy(c->address, address, sizeof(c->address));
	c->address[AUTH_ADDRESS_LEN] = '\0';
	c->rpc = rpc_session_create(server.opts.app->module, &server.hooks, c, &server.opts.rpc);
	if (!c->rpc)
	{
		conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "out_of_memory");
		return;
	}
	conn_set_state(c, CONN_READY);
	metrics_count(M_AUTH_OK, 1);
	log_conn(LOG_LEVEL_INFO, c->id, c->address, "authenticated peer=%s", c->peer);
	server.opts.app->ready(c);
	/* -1 only when the connection is already closing. */
	if (rpc_session_ready(c->rpc) != 0)
		return;
	/* Clients pipeline CreatePort behind the auth frame: replay what waited, in order. */
	while (c->state == CONN_READY && (f = queue_pop(&c->pending)))
	{
		conn_input(c, f->data, f->len, f->text);
		free(f);
	}
}

/* Thread pool: the only code in this file that runs off the loop thread. It touches the job
 * alone; the loop does not read the job until auth_done. */
static void
auth_work(uv_work_t *req)
{
	AuthJob *job = req->data;

	job->status = auth_verify(job->frame, job->len, &job->opt, job->address);
}

/* Loop thread, once auth_work is done. */
static void
auth_done(uv_work_t *req, int status)
{
	AuthJob *job = req->data;
	Conn	*c = job->conn;

	if (!c)
	{
		free(job);
		return;
	}
	c->job = NULL;
	if (c->state == CONN_VERIFYING)
	{
		if (status != 0)
			conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "auth_not_run");
		else if (job->status != AUTH_OK)
			conn_close_detail(c, CONN_CLOSE_UNAUTHORIZED, "auth_failed",
							  auth_status_name(job->status));
		else
			conn_authenticated(c, job->address);
	}
	free(job);
}

static void
auth_start(Conn *c, const uint8_t *data, size_t len)
{
	AuthJob		   *job = malloc(sizeof(AuthJob) + len + 1);
	struct timespec now;

	if (!job)
	{
		conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "out_of_memory");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	job->conn = c;
	job->opt.now_ms = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
	job->opt.timestamp_window_ms = server.opts.auth_window_ms;
	job->status = AUTH_NOT_JSON;
	job->address[0] = '\0';
	job->len = len;
	if (len)
		memcpy(job->frame, data, len);
	job->frame[len] = '\0';
	job->req.data = job;
	if (uv_queue_work(server.loop, &job->req, auth_work, auth_done) != 0)
	{
		free(job);
		conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "auth_not_run");
		return;
	}
	c->job = job;
	conn_set_state(c, CONN_VERIFYING);
}

/* One complete message, whatever the state. */
static void
conn_message(Conn *c, const uint8_t *data, size_t len, bool text)
{
	Frame *f;

	if (c->state == CONN_CLOSING)
		return;
	if (!rate_take(c))
	{
		conn_close(c, 1008, "rate_limited");
		return;
	}
	switch (c->state)
	{
		case CONN_AWAIT_AUTH:
			auth_start(c, data, len);
			break;
		case CONN_VERIFYING:
			if (c->pending.count >= WS_PENDING_MAX || c->pending.bytes + len > WS_PREAUTH_BYTES)
			{
				conn_close_detail(c, 1008, "rate_limited", "frames_before_auth");
				break;
			}
			f = frame_new(0, data, len, text);
			if (!f)
			{
				conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "out_of_memory");
				break;
			}
			queue_push(&c->pending, f);
			break;
		case CONN_READY:
			conn_input(c, data, len, text);
			break;
		case CONN_CLOSING:
			break;
	}
}

/* LWS_CALLBACK_RECEIVE: a piece of a message; lws delivers at most WS_RX_BUFFER at a time. */
static void
conn_receive(Conn *c, const uint8_t *in, size_t len)
{
	bool   first = lws_is_first_fragment(c->wsi);
	bool   final = lws_is_final_fragment(c->wsi);
	size_t need;

	/* Any message proves the peer alive, not only a pong: no pings to busy clients. */
	c->last_rx_at = uv_now(server.loop);
	if (c->state == CONN_CLOSING)
		return;
	if (first)
	{
		c->rx_len = 0;
		c->rx_text = !lws_frame_is_binary(c->wsi);
	}
	/* The frame header announces the rest of this frame: refuse before buffering it. */
	need = c->rx_len + len + lws_remaining_packet_payload(c->wsi);
	if (need > server.opts.max_payload_bytes)
	{
		conn_close(c, 1009, "frame_too_large");
		goto drop;
	}
	if (c->state == CONN_AWAIT_AUTH && need > WS_PREAUTH_BYTES)
	{
		/* auth_verify would refuse it anyway: no need to hold it first */
		conn_close_detail(c, CONN_CLOSE_UNAUTHORIZED, "auth_failed", "frame_too_large");
		goto drop;
	}
	if (c->state == CONN_VERIFYING && c->pending.bytes + need > WS_PREAUTH_BYTES)
	{
		conn_close_detail(c, 1008, "rate_limited", "frames_before_auth");
		goto drop;
	}
	if (first && final)
	{
		/* The common case: the whole message in one piece, no copy. */
		conn_message(c, in, len, c->rx_text);
		return;
	}
	if (need > c->rx_cap)
	{
		size_t	 cap = c->rx_cap * 2 > need ? c->rx_cap * 2 : need;
		uint8_t *rx;

		if (cap > server.opts.max_payload_bytes)
			cap = server.opts.max_payload_bytes;
		rx = realloc(c->rx, cap);
		if (!rx)
		{
			conn_close_detail(c, CONN_CLOSE_INTERNAL, "internal_error", "out_of_memory");
			goto drop;
		}
		c->rx = rx;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!final)
		return;
	conn_message(c, c->rx, c->rx_len, c->rx_text);
drop:
	/* Idle connections keep no receive buffer. */
	free(c->rx);
	c->rx = NULL;
	c->rx_len = c->rx_cap = 0;
}

/* LWS_CALLBACK_ESTABLISHED: a WebSocket upgrade completed. Admission happens here rather than in
 * the filter callback so a refused client sees a clean 1013 close, not a failed handshake. */
static int
conn_open(struct lws *wsi, WsSession *pss)
{
	Conn	   *c = calloc(1, sizeof(Conn));
	uint64_t	now = uv_now(server.loop);
	const char *refusal = NULL;

	if (!c)
		return -1;
	c->id = server.next_id++;
	c->wsi = wsi;
	c->state = CONN_AWAIT_AUTH;
	c->opened_at = c->last_rx_at = c->tokens_at = now;
	c->tokens = (int64_t) server.opts.messages_burst * 1000;
	if (!lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)))
		snprintf(c->peer, sizeof(c->peer), "-");
	else if (strncmp(c->peer, "::ffff:", 7) == 0)
		memmove(c->peer, c->peer + 7, strlen(c->peer + 7) + 1); /* IPv4 on a dual-stack socket */
	pss->conn = c;
	server.open_count++;
	log_conn(LOG_LEVEL_DEBUG, c->id, NULL, "open peer=%s", c->peer);

	if (server.shutting_down)
	{
		conn_close(c, CONN_CLOSE_GOING_AWAY, "shutdown");
		return 0;
	}
	if (server.admitted >= (size_t) server.opts.max_connections)
		refusal = "max_connections";
	else if (server.unauthenticated >= (size_t) server.opts.max_unauthenticated)
		refusal = "max_unauthenticated";
	if (refusal)
	{
		conn_close_detail(c, CONN_CLOSE_TRY_AGAIN, "too_many_connections", refusal);
		return 0;
	}
	c->admitted = true;
	server.admitted++;
	server.unauthenticated++;
	metrics_count(M_CONNECTIONS_ACCEPTED, 1);
	metrics_gauge_add(G_CONNECTIONS, 1);
	metrics_gauge_add(G_CONNECTIONS_UNAUTHENTICATED, 1);
	conn_list(c);
	auth_fifo_push(c);
	return 0;
}

/*
 * HTTP: /health/live, /status, /metrics.
 */

static uint32_t
stream_total(void)
{
	uint32_t n = 0;

	for (Conn *c = server.live_head; c; c = c->live_next)
		if (c->rpc)
			n += rpc_session_stream_count(c->rpc);
	return n;
}

static char *
status_json(size_t *len)
{
	json_t *o;
	char   *body = NULL;

	o = json_pack("{s:I, s:I, s:I, s:I, s:I}", "uptime_seconds",
				  (json_int_t) ((uv_now(server.loop) - server.started_at) / 1000), "connections",
				  (json_int_t) server.admitted, "authenticated",
				  (json_int_t) (server.admitted - server.unauthenticated), "unauthenticated",
				  (json_int_t) server.unauthenticated, "streams", (json_int_t) stream_total());
	if (o && server.opts.app->status(o) == 0)
		body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (body)
		*len = strlen(body);
	return body;
}

static char *
text_body(const char *text, size_t *len)
{
	*len = strlen(text);
	return strdup(text);
}

/* Builds the whole answer up front; the writable callbacks only copy it out. */
static HttpReply *
http_route(struct lws *wsi, const char *path)
{
	HttpReply *r = calloc(1, sizeof(HttpReply));
	bool	   get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool	   head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;

	if (!r)
		return NULL;
	r->head_only = head;
	r->status = HTTP_STATUS_OK;
	r->type = "text/plain; charset=utf-8";
	if (!get && !head)
	{
		r->status = HTTP_STATUS_METHOD_NOT_ALLOWED;
		r->close = true;
		r->body = text_body("method not allowed\n", &r->len);
	}
	else if (strcmp(path, "/health/live") == 0)
		r->body = text_body("ok", &r->len);
	else if (strcmp(path, "/status") == 0)
	{
		r->type = "application/json";
		r->body = status_json(&r->len);
	}
	else if (strcmp(path, "/metrics") == 0)
	{
		r->type = "text/plain; version=0.0.4; charset=utf-8";
		metrics_gauge_set(G_STREAMS, (int64_t) stream_total());
		r->body = metrics_render(&r->len);
	}
	else
	{
		r->status = HTTP_STATUS_NOT_FOUND;
		r->body = text_body("not found\n", &r->len);
	}
	if (!r->body)
	{
		free(r);
		return NULL;
	}
	return r;
}

static void
http_free(WsSession *pss)
{
	if (!pss->http)
		return;
	free(pss->http->body);
	free(pss->http);
	pss->http = NULL;
}

static int
http_done(struct lws *wsi, WsSession *pss)
{
	bool close = pss->http->close;

	http_free(pss);
	if (close)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* LWS_CALLBACK_HTTP_WRITEABLE: headers first, then the body in chunks, one write each. */
static int
http_writable(struct lws *wsi, WsSession *pss)
{
	HttpReply *r = pss->http;
	uint8_t	  *start = http_buf + LWS_PRE;
	uint8_t	  *p = start;
	uint8_t	  *end = http_buf + sizeof(http_buf) - 1;
	size_t	   chunk;
	bool	   final;

	if (!r)
		return 0;
	if (!r->headers_sent)
	{
		if (lws_add_http_common_headers(wsi, r->status, r->type, (lws_filepos_t) r->len, &p, end) ||
			lws_add_http_header_by_name(wsi, (const unsigned char *) "cache-control:",
										(const unsigned char *) "no-store", 8, &p, end) ||
			lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		r->headers_sent = true;
		if (r->head_only || r->len == 0)
			return http_done(wsi, pss);
		lws_callback_on_writable(wsi);
		return 0;
	}
	chunk = r->len - r->sent < WS_HTTP_CHUNK ? r->len - r->sent : WS_HTTP_CHUNK;
	final = r->sent + chunk == r->len;
	memcpy(start, r->body + r->sent, chunk);
	if (lws_write(wsi, start, chunk, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int) chunk)
		return -1;
	r->sent += chunk;
	if (final)
		return http_done(wsi, pss);
	lws_callback_on_writable(wsi);
	return 0;
}

/* Only path "/" upgrades to WebSocket; anything else fails the handshake. */
static int
ws_filter_upgrade(struct lws *wsi)
{
	char uri[64] = "";

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/") != 0)
	{
		log_debug("refused WebSocket upgrade on path %s", uri);
		return -1;
	}
	return 0;
}

/* The one protocol callback, for HTTP and WebSocket alike. Loop thread. */
static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	WsSession *pss = user;

	/* lws reports some requests it answers by itself (an OPTIONS, say) on a connection that
	 * never got its user space: nothing of ours to look at then. */
	if (!pss && reason != LWS_CALLBACK_FILTER_NETWORK_CONNECTION &&
		reason != LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason)
	{
		case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
			/* Draining: refuse new TCP connections outright. And keep WS_FD_RESERVE descriptors
			 * for the process: descriptors are handed out lowest first, so a socket numbered
			 * at or above the limit means the limit is in use (see ws_fd_limit). */
			if (server.shutting_down)
				return -1;
			return (intptr_t) in >= (intptr_t) server.fd_accept_limit ? -1 : 0;
		case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
			return ws_filter_upgrade(wsi);
		case LWS_CALLBACK_ESTABLISHED:
			http_free(pss);
			return conn_open(wsi, pss);
		case LWS_CALLBACK_RECEIVE:
			if (pss->conn)
				conn_receive(pss->conn, in, len);
			return 0;
		case LWS_CALLBACK_RECEIVE_PONG:
			if (pss->conn)
				pss->conn->last_rx_at = uv_now(server.loop);
			return 0;
		case LWS_CALLBACK_SERVER_WRITEABLE:
			return pss->conn ? conn_writable(pss->conn) : 0;
		case LWS_CALLBACK_TIMER:
			/* Set by conn_close_detail: lws now sends the close frame prepared there. */
			return pss->conn && pss->conn->state == CONN_CLOSING ? -1 : 0;
		case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
			if (pss->conn)
			{
				const uint8_t *b = in;

				conn_mark_closing(pss->conn, len >= 2 ? (b[0] << 8) | b[1] : 1005, "client_closed",
								  NULL);
			}
			return 0;
		case LWS_CALLBACK_CLOSED:
			if (pss->conn)
			{
				conn_finish(pss->conn);
				pss->conn = NULL;
			}
			return 0;
		case LWS_CALLBACK_HTTP:
			pss->http = http_route(wsi, in ? (const char *) in : "");
			if (!pss->http)
				return -1;
			lws_callback_on_writable(wsi);
			return 0;
		case LWS_CALLBACK_HTTP_BODY:
			/* A request body (POST, PUT, ...) is read and dropped: the answer is 405 anyway,
			 * and it can only go out once lws has taken the whole body. */
			return 0;
		case LWS_CALLBACK_HTTP_BODY_COMPLETION:
			if (pss->http)
				lws_callback_on_writable(wsi);
			return 0;
		case LWS_CALLBACK_HTTP_WRITEABLE:
			return http_writable(wsi, pss);
		case LWS_CALLBACK_CLOSED_HTTP:
		case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
			/* lws skips CLOSED_HTTP for a connection that goes away in some states (while
			 * a request body arrives, say); the protocol is always dropped. */
			http_free(pss);
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols ws_protocols[] = {
	{"sociald", ws_callback, sizeof(WsSession), WS_RX_BUFFER, 0, NULL, WS_TX_PACKET},
	{NULL, NULL, 0, 0, 0, NULL, 0}};

/* lws' own log lines, through ours, one level down: what lws calls an error or a warning is
 * mostly a client misbehaving (a refused upgrade, a bad handshake), which must not be able to
 * flood the daemon's warnings. Our own failures are logged where they happen. */
static void
ws_lws_log(int level, const char *line)
{
	/* lws repeats some lines in a tight loop (a failing accept(), say): one a second, counted */
	static char		last[160];
	static uint64_t last_at;
	static unsigned repeats;
	uint64_t		now = server.loop ? uv_now(server.loop) : 0;
	int				n = (int) strlen(line);
	LogLevel		l = (level & LLL_ERR)	 ? LOG_LEVEL_WARN
						: (level & LLL_WARN) ? LOG_LEVEL_INFO
											 : LOG_LEVEL_DEBUG;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n < (int) sizeof(last) && strncmp(last, line, (size_t) n) == 0 && last[n] == '\0' &&
		now - last_at < WS_LWS_LOG_REPEAT_MS)
	{
		repeats++;
		return;
	}
	if (repeats)
		LOG_AT(l, "lws: the last line was repeated %u more times", repeats);
	repeats = 0;
	last_at = now;
	snprintf(last, sizeof(last), "%.*s", n, line);
	LOG_AT(l, "lws: %.*s", n, line);
}

/*
 * Sets the soft descriptor limit to what max_connections needs (raising it when allowed, and
 * lowering a huge one, since lws sizes its tables by it); returns the limit, for lws'
 * fd_limit_per_thread, and sets server.fd_accept_limit.
 *
 * lws must get the whole table: with fd_limit_per_thread below the process limit, lws 4.1 finds
 * the connection of every socket event by walking its whole table, which under fan-out to
 * 10,000 connections cost a tenth of the daemon's CPU. So the reserve the process keeps for
 * itself (WS_FD_RESERVE) is enforced in the accept filter instead, by the new socket's number.
 */
static unsigned int
ws_fd_limit(int max_connections)
{
	struct rlimit rl;
	rlim_t		  want = (rlim_t) max_connections + WS_FD_HEADROOM; /* for lws */
	rlim_t		  need = want + WS_FD_RESERVE;						/* for the process */
	rlim_t		  old;

	server.fd_accept_limit = (unsigned int) want;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (unsigned int) need;
	old = rl.rlim_cur;
	if (rl.rlim_cur != need)
	{
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return (unsigned int) need;
	if (rl.rlim_cur < need)
	{
		server.fd_accept_limit =
			(unsigned int) (rl.rlim_cur > 2 * WS_FD_RESERVE ? rl.rlim_cur - WS_FD_RESERVE
															: rl.rlim_cur / 2);
		log_warn("open file limit %llu is below WS_MAX_CONNECTIONS + %d: at most %u sockets "
				 "are served at once, connections beyond them are refused",
				 (unsigned long long) rl.rlim_cur, WS_FD_HEADROOM + WS_FD_RESERVE,
				 server.fd_accept_limit);
	}
	return (unsigned int) rl.rlim_cur;
}

Ws *
ws_create(uv_loop_t *loop, const WsOptions *opts)
{
	struct lws_context_creation_info info;
	struct lws_vhost				*vhost;
	size_t							 buckets = 64;

	if (server.active)
	{
		log_error("ws: a server already exists");
		return NULL;
	}
	if (!opts->app || !opts->app->module || !opts->app->ready || !opts->app->call ||
		!opts->app->stream_open || !opts->app->stream_closed || !opts->app->closed ||
		!opts->app->status)
	{
		log_error("ws: the application's callbacks are missing");
		return NULL;
	}
	memset(&server, 0, sizeof(server));
	server.loop = loop;
	server.opts = *opts;
	snprintf(server.host, sizeof(server.host), "%s", opts->host ? opts->host : "0.0.0.0");
	server.opts.host = server.host;
	server.next_id = 1;
	server.started_at = uv_now(loop);
	server.hooks = (RpcHooks){.send = conn_send,
							  .call = hook_call,
							  .stream_open = hook_stream_open,
							  .stream_closed = hook_stream_closed};
	/* lws' keepalive off (no hangup time): keepalive_cb does it, without lws' sorted timer
	 * list on every message. lws would apply its own defaults without a policy. */
	server.idle_policy.secs_since_valid_ping = 0;
	server.idle_policy.secs_since_valid_hangup = 0;

	while (buckets < (size_t) opts->max_connections && buckets < ((size_t) 1 << 20))
		buckets <<= 1;
	server.buckets = calloc(buckets, sizeof(Conn *));
	if (!server.buckets)
	{
		log_error("ws: out of memory");
		return NULL;
	}
	server.bucket_mask = buckets - 1;
	uv_timer_init(loop, &server.auth_timer);
	uv_timer_init(loop, &server.keepalive_timer);

	lws_set_log_level(LLL_ERR | LLL_WARN |
						  (log_level >= LOG_LEVEL_DEBUG ? LLL_NOTICE | LLL_INFO | LLL_DEBUG : 0),
					  ws_lws_log);
	memset(&info, 0, sizeof(info));
	/* RFC 6455 8.1: a TEXT frame that is not UTF-8 fails the connection (lws closes with 1007) */
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
	server.foreign_loops[0] = loop;
	info.foreign_loops = server.foreign_loops;
	info.port = opts->port;
	/* lws binds every interface for a NULL iface; an IPv4 wildcard also means "no IPv6". */
	if (strcmp(server.host, "0.0.0.0") == 0)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	else if (strcmp(server.host, "::") != 0)
		info.iface = server.host;
	info.protocols = ws_protocols;
	info.gid = -1;
	info.uid = -1;
	info.fd_limit_per_thread = ws_fd_limit(opts->max_connections);
	info.retry_and_idle_policy = &server.idle_policy;
	info.server_string = "sociald";
	info.pcontext = &server.context;

	server.context = lws_create_context(&info);
	if (!server.context)
	{
		log_error("ws: cannot listen on %s port %d (lws_create_context failed)", server.host,
				  opts->port);
		uv_close((uv_handle_t *) &server.auth_timer, NULL);
		uv_close((uv_handle_t *) &server.keepalive_timer, NULL);
		free(server.buckets);
		server.buckets = NULL;
		return NULL;
	}
	/* On a foreign loop lws 4.1.6 hands back a context even when it could not make the default
	 * vhost ("ERROR on binding", the port is taken): the daemon would run listening on nothing. */
	vhost = lws_get_vhost_by_name(server.context, "default");
	if (!vhost || lws_get_vhost_listen_port(vhost) <= 0)
	{
		log_error("ws: cannot listen on %s port %d: could not bind (is the port in use?)",
				  server.host, opts->port);
		/* Left to the process exit: destroying a context without its vhost on a foreign loop
		 * unloads lws' event plugin under handles still closing (a crash). It owns no socket
		 * and no handle that keeps the loop alive. */
		server.abandoned = true;
		uv_close((uv_handle_t *) &server.auth_timer, NULL);
		uv_close((uv_handle_t *) &server.keepalive_timer, NULL);
		free(server.buckets);
		server.buckets = NULL;
		return NULL;
	}
	server.active = true;
	uv_timer_start(&server.keepalive_timer, keepalive_cb, keepalive_interval_ms(),
				   keepalive_interval_ms());
	log_info("listening on %s port %d (WebSocket at /, HTTP /health/live /status /metrics)",
			 server.host, opts->port);
	return &server;
}

void
ws_shutdown(Ws *ws)
{
	if (!ws || !ws->active || ws->shutting_down)
		return;
	ws->shutting_down = true;
	log_info("ws: closing %zu connections", ws->admitted);
	while (ws->live_head)
		conn_close(ws->live_head, CONN_CLOSE_GOING_AWAY, "shutdown");
}

size_t
ws_open_count(const Ws *ws)
{
	return ws && ws->active ? ws->open_count : 0;
}

void
ws_destroy(Ws *ws)
{
	if (!ws || !ws->active)
		return;
	/* Unlist everything first: lws reports the closes of what remains during destruction. */
	ws_shutdown(ws);
	if (ws->context)
		lws_context_destroy(ws->context);
	uv_close((uv_handle_t *) &ws->auth_timer, NULL);
	uv_close((uv_handle_t *) &ws->keepalive_timer, NULL);
	ws->active = false;
	free(ws->buckets);
	ws->buckets = NULL;
}

struct lws_context *
ws_context(void)
{
	return server.active ? server.context : NULL;
}

void
ws_release(void)
{
	/* lws clears server.context (info.pcontext) once the context is completely freed. */
	if (!server.active && server.context && !server.abandoned)
		lws_context_destroy(server.context);
}
