/*
 * conn.c — a client connection's life, from the WebSocket upgrade to the one disconnect line.
 *
 * A connection moves through one state machine, changed only by conn_set_state():
 *
 *   AWAIT_AUTH --first message--> VERIFYING --auth ok--> READY
 *        \                             \                   \
 *         `------------------------------`-------------------`--> CLOSING --(lws CLOSED)--> freed
 *
 * Invariants:
 * - A connection is "listed" (in the id table, so conn_lookup finds it, and in the live list)
 *   exactly while it is admitted and not CLOSING. conn_close() unlists at once; the Conn itself
 *   lives until lws reports LWS_CALLBACK_CLOSED, and only then is the application told
 *   (DoorApp.closed) and the RPC session destroyed — never on a caller's stack (conn_close is
 *   called from inside rpc and application callbacks).
 * - Every close goes through conn_close() or conn_mark_closing() with a ConnCloseReason; the
 *   reason's row in close_reasons gives its name, its close code and its counter, so no close
 *   code is written anywhere else. The first reason wins.
 * - Connections waiting for auth sit in one FIFO ordered by deadline (every deadline is accept
 *   time + the same timeout), so one uv_timer serves them all.
 * - Output (STYLE rule 13): a frame is written at once when nothing is queued before it and lws
 *   allows another write (conn_write_now, measured to save four system calls per frame under
 *   presence fan-out); otherwise it is copied with LWS_PRE headroom onto a per-connection queue
 *   bounded in messages and bytes, and LWS_CALLBACK_SERVER_WRITEABLE writes queued frames for as
 *   long as lws_send_pipe_choked allows, then asks for another callback while frames remain. A
 *   client that does not read overflows its queue and is closed with 1011; nothing grows without
 *   bound. Closing drops the queue: the close frame is the next thing lws writes.
 * - Input: a message is reassembled up to the payload limit (1009 beyond), counted against a
 *   token bucket (1008 beyond), and then: the first is the auth frame, verified on libuv's thread
 *   pool; later ones wait, in order and bounded, until that finishes; after auth, binary frames
 *   go to the RPC session and text frames are a protocol error.
 * - Every disconnect logs exactly one line, in conn_finish(), with the reason chosen by whoever
 *   started the close.
 * - The auth job outlives its connection if need be: a closed connection detaches from its job,
 *   and the job frees itself when the thread pool hands it back.
 *
 * Everything here runs on the loop thread, except auth_work() (a thread-pool thread).
 */
#include "door/conn.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "door/auth.h"
#include "lib/hashmap.h"
#include "main/log.h"
#include "main/metrics.h"

/* Messages a client may pipeline behind its auth frame before verification ends. */
#define CONN_PENDING_MAX 64
/* Bytes a connection may hold before it is authenticated: the message being received plus
 * those pipelined behind the auth frame. A real auth frame is ~1.5 KB and what follows it is a
 * few small RPC frames; allowing WS_MAX_PAYLOAD_BYTES here would let anonymous connections pin
 * WS_MAX_UNAUTHENTICATED megabytes. */
#define CONN_PREAUTH_BYTES AUTH_FRAME_MAX
/* Frames up to this size are written at once when the socket takes them (conn_write_now);
 * stream elements (presence, live updates) are a few hundred bytes. */
#define CONN_DIRECT_MAX 4096

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
	uint64_t		id;
	struct lws	   *wsi;
	ConnState		state;
	bool			admitted; /* counted in the gauges; false for connections refused at once */
	bool			listed;	  /* in the id table and the live list */
	bool			in_auth_fifo;
	bool			authenticated; /* reached READY once */
	char			address[ADDRESS_LEN + 1];
	char			peer[64];
	RpcSession	   *rpc;	 /* owned; created at READY */
	AuthJob		   *job;	 /* in flight on the thread pool, or NULL */
	HashmapLink		id_link; /* in table.ids */
	Conn		   *live_prev, *live_next;
	Conn		   *auth_prev, *auth_next;
	uint64_t		auth_deadline; /* uv_now() ms */
	uint8_t		   *rx;			   /* reassembly of a message that arrived in pieces */
	size_t			rx_len, rx_cap;
	bool			rx_text;
	FrameQueue		pending; /* messages received while VERIFYING */
	FrameQueue		out;	 /* frames waiting for SERVER_WRITEABLE */
	int64_t			tokens;	 /* rate limit, in thousandths of a message */
	uint64_t		tokens_at;
	uint64_t		opened_at;
	uint64_t		last_rx_at; /* any message or pong: what the idle timeout measures */
	uint64_t		pinged_at;	/* the last keepalive ping queued (keepalive_cb) */
	bool			ping_due;	/* write a ping at the next SERVER_WRITEABLE */
	int				close_code;
	ConnCloseReason close_reason;
	char			close_detail[32];
};

struct AuthJob
{
	uv_work_t	req;
	Conn	   *conn; /* NULL once the connection is gone */
	AuthOptions opt;
	AuthStatus	status;
	char		address[ADDRESS_LEN + 1];
	size_t		len;
	char		frame[];
};

/* One row per ConnCloseReason: the stable name, the close code (0: the peer's own), the text of
 * the close frame (NULL: the name) and the counter it feeds (M_COUNTER_COUNT: none). */
static const struct
{
	const char	 *name;
	int			  code;
	const char	 *text;
	MetricCounter counter;
} close_reasons[CONN_CLOSE_REASON_COUNT] = {
	[CONN_CLOSE_SHUTDOWN] = {"shutdown", 1001, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_IDLE_TIMEOUT] = {"idle_timeout", 1001, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_AUTH_FAILED] = {"auth_failed", 3003, "Unauthorized", M_AUTH_FAILED},
	[CONN_CLOSE_AUTH_TIMEOUT] = {"auth_timeout", 3004, "Authorization timeout", M_AUTH_TIMEOUT},
	[CONN_CLOSE_RATE_LIMITED] = {"rate_limited", 1008, NULL, M_RATE_LIMITED},
	[CONN_CLOSE_FRAME_TOO_LARGE] = {"frame_too_large", 1009, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_TEXT_FRAME] = {"protocol_error", 1003, NULL, M_PROTOCOL_ERRORS},
	[CONN_CLOSE_MALFORMED_FRAME] = {"protocol_error", 1002, NULL, M_PROTOCOL_ERRORS},
	[CONN_CLOSE_QUEUE_OVERFLOW] = {"queue_overflow", 1011, NULL, M_QUEUE_DROPS},
	[CONN_CLOSE_STREAM_OVERFLOW] = {"stream_overflow", 1011, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_TOO_MANY] = {"too_many_connections", 1013, NULL, M_CONNECTIONS_REJECTED},
	[CONN_CLOSE_INTERNAL] = {"internal_error", 1011, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_WRITE_FAILED] = {"client_closed", 1011, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_PEER] = {"client_closed", 0, NULL, M_COUNTER_COUNT},
	[CONN_CLOSE_LOST] = {"client_closed", 1006, NULL, M_COUNTER_COUNT},
};


typedef struct ConnTable
{
	bool			   active;
	bool			   shutting_down; /* new connections are refused with shutdown_reason */
	ConnCloseReason	   shutdown_reason;
	uv_loop_t		  *loop;
	const ConnOptions *opts; /* borrowed, and the DoorApp it names */
	RpcHooks		   hooks;
	uv_timer_t		   auth_timer;
	uv_timer_t		   keepalive_timer;
	Hashmap			   ids; /* Conn by id: the listed connections */
	Conn			  *live_head;
	Conn			  *auth_head, *auth_tail;
	size_t			   open_count;		/* Conn objects alive */
	size_t			   admitted;		/* == G_CONNECTIONS */
	size_t			   unauthenticated; /* == G_CONNECTIONS_UNAUTHENTICATED */
	uint64_t		   next_id;
} ConnTable;

/* One table per process: conn_lookup() is global, and lws may call back after ws_destroy(). */
static ConnTable table;

static void conn_set_state(Conn *c, ConnState next);
static void conn_mark_closing(Conn *c, ConnCloseReason reason, int code, const char *detail);

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
conn_hash(const HashmapLink *l)
{
	return hashmap_hash_u64(HASHMAP_ENTRY(l, Conn, id_link)->id);
}

static void
conn_list(Conn *c)
{
	/* conn_table_create made a bucket per admitted connection (up to 2^20): no growth here. */
	(void) hashmap_reserve(&table.ids);
	hashmap_insert(&table.ids, &c->id_link);
	c->live_prev = NULL;
	c->live_next = table.live_head;
	if (table.live_head)
		table.live_head->live_prev = c;
	table.live_head = c;
	c->listed = true;
}

static void
conn_unlist(Conn *c)
{
	if (!c->listed)
		return;
	hashmap_remove(&table.ids, &c->id_link);
	if (c->live_prev)
		c->live_prev->live_next = c->live_next;
	else
		table.live_head = c->live_next;
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
	uint64_t now = uv_now(table.loop);

	if (!table.auth_head)
	{
		uv_timer_stop(&table.auth_timer);
		return;
	}
	uv_timer_start(&table.auth_timer, auth_timer_cb,
				   table.auth_head->auth_deadline > now ? table.auth_head->auth_deadline - now : 0,
				   0);
}

static void
auth_fifo_push(Conn *c)
{
	c->auth_deadline = uv_now(table.loop) + (uint64_t) table.opts->auth_timeout_ms;
	c->auth_prev = table.auth_tail;
	c->auth_next = NULL;
	if (table.auth_tail)
		table.auth_tail->auth_next = c;
	else
		table.auth_head = c;
	table.auth_tail = c;
	c->in_auth_fifo = true;
	/* Deadlines only grow, so the timer only needs arming when the FIFO was empty. */
	if (table.auth_head == c)
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
		table.auth_head = c->auth_next;
	if (c->auth_next)
		c->auth_next->auth_prev = c->auth_prev;
	else
		table.auth_tail = c->auth_prev;
	c->in_auth_fifo = false;
}

/* Loop thread. */
static void
auth_timer_cb(uv_timer_t *t)
{
	uint64_t now = uv_now(table.loop);

	/* conn_close() takes each one out of the FIFO, so the loop advances. */
	while (table.auth_head && table.auth_head->auth_deadline <= now)
		conn_close(table.auth_head, CONN_CLOSE_AUTH_TIMEOUT, NULL);
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
	uint64_t ms = (uint64_t) table.opts->idle_timeout_s * 1000 / 8;

	return ms < 100 ? 100 : ms > 1000 ? 1000 : ms;
}

/* Loop thread. */
static void
keepalive_cb(uv_timer_t *t)
{
	uint64_t now = uv_now(table.loop);
	uint64_t idle_ms = (uint64_t) table.opts->idle_timeout_s * 1000;
	Conn	*next;

	/* conn_close() unlists the connection: take the next one first. */
	for (Conn *c = table.live_head; c; c = next)
	{
		uint64_t silent = now - c->last_rx_at;

		next = c->live_next;
		if (silent >= idle_ms)
			conn_close(c, CONN_CLOSE_IDLE_TIMEOUT, NULL);
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
	if (!table.active)
		return NULL;
	for (HashmapLink *l = hashmap_chain(&table.ids, hashmap_hash_u64(id)); l; l = l->next)
		if (HASHMAP_ENTRY(l, Conn, id_link)->id == id)
			return HASHMAP_ENTRY(l, Conn, id_link);
	return NULL;
}

/* Records why the connection ends (code 0: the reason's own) and unlists it; the socket side is
 * up to the caller. */
static void
conn_mark_closing(Conn *c, ConnCloseReason reason, int code, const char *detail)
{
	if (c->state == CONN_CLOSING)
		return;
	c->close_reason = reason;
	c->close_code = code ? code : close_reasons[reason].code;
	snprintf(c->close_detail, sizeof(c->close_detail), "%s", detail ? detail : "");
	if (close_reasons[reason].counter != M_COUNTER_COUNT)
		metrics_count(close_reasons[reason].counter, 1);
	conn_set_state(c, CONN_CLOSING);
}

void
conn_close(Conn *c, ConnCloseReason reason, const char *detail)
{
	const char *text;

	if (!c || c->state == CONN_CLOSING)
		return;
	conn_mark_closing(c, reason, 0, detail);
	text = close_reasons[reason].text ? close_reasons[reason].text : close_reasons[reason].name;
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
	lws_close_reason(c->wsi, (enum lws_close_status) c->close_code, (unsigned char *) text,
					 strlen(text));
	lws_set_timer_usecs(c->wsi, 1);
	lws_callback_on_writable(c->wsi);
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
			table.unauthenticated--;
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
void
conn_finish(Conn *c)
{
	uint64_t now = uv_now(table.loop);

	if (c->state != CONN_CLOSING)
	{
		/* Nobody closed it on purpose: the peer vanished. */
		conn_mark_closing(c, CONN_CLOSE_LOST, 0, "connection_lost");
	}
	log_conn(LOG_LEVEL_INFO, c->id, c->address, "closed reason=%s%s%s code=%d peer=%s ms=%llu",
			 close_reasons[c->close_reason].name, c->close_detail[0] ? " detail=" : "",
			 c->close_detail, c->close_code, c->peer, (unsigned long long) (now - c->opened_at));

	if (c->admitted)
	{
		table.admitted--;
		metrics_gauge_add(G_CONNECTIONS, -1);
		if (!c->authenticated)
		{
			table.unauthenticated--;
			metrics_gauge_add(G_CONNECTIONS_UNAUTHENTICATED, -1);
		}
	}
	if (c->job)
		c->job->conn = NULL;
	if (c->rpc)
	{
		table.opts->app->closed(c);
		rpc_session_destroy(c->rpc);
	}
	free(c->rx);
	free(c);
	table.open_count--;
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
	static uint8_t buf[LWS_PRE + CONN_DIRECT_MAX];

	if (len > CONN_DIRECT_MAX || lws_send_pipe_choked(c->wsi))
		return false;
	memcpy(buf + LWS_PRE, frame, len);
	if (lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY) < (int) len)
	{
		/* lws kills the socket when the close it starts finds it unusable. */
		conn_close(c, CONN_CLOSE_WRITE_FAILED, "write_failed");
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
	if (c->out.count + 1 > (size_t) table.opts->outbound_queue_messages ||
		c->out.bytes + len > table.opts->outbound_queue_bytes)
	{
		conn_close(c, CONN_CLOSE_QUEUE_OVERFLOW, NULL);
		return -1;
	}
	if (!c->out.head && !c->ping_due && conn_write_now(c, frame, len))
		return c->state == CONN_READY ? 0 : -1;
	f = frame_new(LWS_PRE, frame, len, false);
	if (!f)
	{
		conn_close(c, CONN_CLOSE_INTERNAL, "out_of_memory");
		return -1;
	}
	queue_push(&c->out, f);
	if (c->out.count == 1)
		lws_callback_on_writable(c->wsi);
	return 0;
}

/* LWS_CALLBACK_SERVER_WRITEABLE: a due ping, or the queued frames the socket takes; then ask
 * again if more is queued. */
int
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
			conn_mark_closing(c, CONN_CLOSE_LOST, 0, "write_failed");
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
			conn_mark_closing(c, CONN_CLOSE_LOST, 0, "write_failed");
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
		table.opts->app->call(c, msg_no, proc, payload, len);
}

static void
hook_stream_open(void *ud, uint32_t msg_no, const RpcProcedure *proc)
{
	Conn *c = ud;

	if (c->state == CONN_READY)
		table.opts->app->stream_open(c, msg_no, proc);
}

static void
hook_stream_closed(void *ud, uint32_t msg_no, const RpcProcedure *proc)
{
	table.opts->app->stream_closed(ud, msg_no, proc);
}

/*
 * Input.
 */

/* One message in the token bucket; false when the client is over its rate. */
static bool
rate_take(Conn *c)
{
	uint64_t now = uv_now(table.loop);
	int64_t	 cap = (int64_t) table.opts->messages_burst * 1000;

	/* messages_per_second thousandths of a message per millisecond. */
	c->tokens += (int64_t) (now - c->tokens_at) * table.opts->messages_per_second;
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
		conn_close(c, CONN_CLOSE_TEXT_FRAME, "text_frame");
		return;
	}
	metrics_count(M_FRAMES_IN, 1);
	if (rpc_session_input(c->rpc, data, len) == RPC_INPUT_MALFORMED)
		conn_close(c, CONN_CLOSE_MALFORMED_FRAME, "malformed_frame");
}

static void
conn_authenticated(Conn *c, const char *address)
{
	Frame *f;

	memcpy(c->address, address, sizeof(c->address));
	c->address[ADDRESS_LEN] = '\0';
	c->rpc = rpc_session_create(table.opts->app->module, &table.hooks, c, &table.opts->rpc);
	if (!c->rpc)
	{
		conn_close(c, CONN_CLOSE_INTERNAL, "out_of_memory");
		return;
	}
	conn_set_state(c, CONN_READY);
	metrics_count(M_AUTH_OK, 1);
	log_conn(LOG_LEVEL_INFO, c->id, c->address, "authenticated peer=%s", c->peer);
	table.opts->app->ready(c);
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
			conn_close(c, CONN_CLOSE_INTERNAL, "auth_not_run");
		else if (job->status != AUTH_OK)
			conn_close(c, CONN_CLOSE_AUTH_FAILED, auth_status_name(job->status));
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
		conn_close(c, CONN_CLOSE_INTERNAL, "out_of_memory");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	job->conn = c;
	job->opt.now_ms = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
	job->opt.timestamp_window_ms = table.opts->auth_window_ms;
	job->status = AUTH_NOT_JSON;
	job->address[0] = '\0';
	job->len = len;
	if (len)
		memcpy(job->frame, data, len);
	job->frame[len] = '\0';
	job->req.data = job;
	if (uv_queue_work(table.loop, &job->req, auth_work, auth_done) != 0)
	{
		free(job);
		conn_close(c, CONN_CLOSE_INTERNAL, "auth_not_run");
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
		conn_close(c, CONN_CLOSE_RATE_LIMITED, NULL);
		return;
	}
	switch (c->state)
	{
		case CONN_AWAIT_AUTH:
			auth_start(c, data, len);
			break;
		case CONN_VERIFYING:
			if (c->pending.count >= CONN_PENDING_MAX || c->pending.bytes + len > CONN_PREAUTH_BYTES)
			{
				conn_close(c, CONN_CLOSE_RATE_LIMITED, "frames_before_auth");
				break;
			}
			f = frame_new(0, data, len, text);
			if (!f)
			{
				conn_close(c, CONN_CLOSE_INTERNAL, "out_of_memory");
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

/* LWS_CALLBACK_RECEIVE: a piece of a message; lws delivers at most its receive buffer (ws.c)
 * at a time. */
void
conn_receive(Conn *c, const uint8_t *in, size_t len)
{
	bool   first = lws_is_first_fragment(c->wsi);
	bool   final = lws_is_final_fragment(c->wsi);
	size_t need;

	/* Any message proves the peer alive, not only a pong: no pings to busy clients. */
	c->last_rx_at = uv_now(table.loop);
	if (c->state == CONN_CLOSING)
		return;
	if (first)
	{
		c->rx_len = 0;
		c->rx_text = !lws_frame_is_binary(c->wsi);
	}
	/* The frame header announces the rest of this frame: refuse before buffering it. */
	need = c->rx_len + len + lws_remaining_packet_payload(c->wsi);
	if (need > table.opts->max_payload_bytes)
	{
		conn_close(c, CONN_CLOSE_FRAME_TOO_LARGE, NULL);
		goto drop;
	}
	if (c->state == CONN_AWAIT_AUTH && need > CONN_PREAUTH_BYTES)
	{
		/* auth_verify would refuse it anyway: no need to hold it first */
		conn_close(c, CONN_CLOSE_AUTH_FAILED, "frame_too_large");
		goto drop;
	}
	if (c->state == CONN_VERIFYING && c->pending.bytes + need > CONN_PREAUTH_BYTES)
	{
		conn_close(c, CONN_CLOSE_RATE_LIMITED, "frames_before_auth");
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

		if (cap > table.opts->max_payload_bytes)
			cap = table.opts->max_payload_bytes;
		rx = realloc(c->rx, cap);
		if (!rx)
		{
			conn_close(c, CONN_CLOSE_INTERNAL, "out_of_memory");
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
Conn *
conn_open(struct lws *wsi)
{
	Conn	   *c = calloc(1, sizeof(Conn));
	uint64_t	now = uv_now(table.loop);
	const char *refusal = NULL;

	if (!c)
		return NULL;
	c->id = table.next_id++;
	c->wsi = wsi;
	c->state = CONN_AWAIT_AUTH;
	c->opened_at = c->last_rx_at = c->tokens_at = now;
	c->tokens = (int64_t) table.opts->messages_burst * 1000;
	if (!lws_get_peer_simple(wsi, c->peer, sizeof(c->peer)))
		snprintf(c->peer, sizeof(c->peer), "-");
	else if (strncmp(c->peer, "::ffff:", 7) == 0)
		memmove(c->peer, c->peer + 7, strlen(c->peer + 7) + 1); /* IPv4 on a dual-stack socket */
	table.open_count++;
	log_conn(LOG_LEVEL_DEBUG, c->id, NULL, "open peer=%s", c->peer);

	if (table.shutting_down)
	{
		conn_close(c, table.shutdown_reason, NULL);
		return c;
	}
	if (table.admitted >= (size_t) table.opts->max_connections)
		refusal = "max_connections";
	else if (table.unauthenticated >= (size_t) table.opts->max_unauthenticated)
		refusal = "max_unauthenticated";
	if (refusal)
	{
		conn_close(c, CONN_CLOSE_TOO_MANY, refusal);
		return c;
	}
	c->admitted = true;
	table.admitted++;
	table.unauthenticated++;
	metrics_count(M_CONNECTIONS_ACCEPTED, 1);
	metrics_gauge_add(G_CONNECTIONS, 1);
	metrics_gauge_add(G_CONNECTIONS_UNAUTHENTICATED, 1);
	conn_list(c);
	auth_fifo_push(c);
	return c;
}

void
conn_pong(Conn *c)
{
	c->last_rx_at = uv_now(table.loop);
}

/* Set by conn_close: lws now sends the close frame prepared there. */
int
conn_timer(Conn *c)
{
	return c->state == CONN_CLOSING ? -1 : 0;
}

void
conn_peer_closed(Conn *c, const uint8_t *in, size_t len)
{
	conn_mark_closing(c, CONN_CLOSE_PEER, len >= 2 ? (in[0] << 8) | in[1] : 1005, NULL);
}

/*
 * The table.
 */

int
conn_table_create(uv_loop_t *loop, const ConnOptions *opts)
{
	size_t buckets = 64;

	if (table.active)
		return -1;
	memset(&table, 0, sizeof(table));
	while (buckets < (size_t) opts->max_connections && buckets < ((size_t) 1 << 20))
		buckets <<= 1;
	/* One bucket per admitted connection from the start: no rehash under a connection storm. */
	hashmap_init(&table.ids, buckets, conn_hash);
	if (!hashmap_reserve(&table.ids))
		return -1;
	table.loop = loop;
	table.opts = opts;
	table.next_id = 1;
	table.hooks = (RpcHooks){.send = conn_send,
							 .call = hook_call,
							 .stream_open = hook_stream_open,
							 .stream_closed = hook_stream_closed};
	uv_timer_init(loop, &table.auth_timer);
	uv_timer_init(loop, &table.keepalive_timer);
	uv_timer_start(&table.keepalive_timer, keepalive_cb, keepalive_interval_ms(),
				   keepalive_interval_ms());
	table.active = true;
	return 0;
}

void
conn_table_destroy(void)
{
	if (!table.active)
		return;
	conn_close_all(CONN_CLOSE_SHUTDOWN);
	uv_close((uv_handle_t *) &table.auth_timer, NULL);
	uv_close((uv_handle_t *) &table.keepalive_timer, NULL);
	hashmap_free(&table.ids);
	table.active = false;
}

void
conn_close_all(ConnCloseReason reason)
{
	table.shutting_down = true;
	table.shutdown_reason = reason;
	while (table.live_head)
		conn_close(table.live_head, reason, NULL);
}

size_t
conn_open_count(void)
{
	return table.open_count;
}

size_t
conn_admitted_count(void)
{
	return table.admitted;
}

size_t
conn_unauthenticated_count(void)
{
	return table.unauthenticated;
}

uint32_t
conn_stream_count(void)
{
	uint32_t n = 0;

	for (Conn *c = table.live_head; c; c = c->live_next)
		if (c->rpc)
			n += rpc_session_stream_count(c->rpc);
	return n;
}
