/*
 * test_door.c — the door (daemon/door/) with a made-up application and no database, Redis or
 * NATS: a real sociald WebSocket server on a loopback port of its own, and a plain-socket client
 * on a thread that speaks WebSocket and @dcl/rpc byte by byte.
 *
 * What the door promises its application (ws.h DoorApp): ready once a chain is verified, with the
 * signer's address; every call and stream of the module it was handed, with the row; stream
 * closed when the client cancels; closed exactly once for a connection that was ready; /status
 * carries the application's members; conn_close with a reason sends that reason's close code.
 * And what it promises a client that fails: a bad chain is closed with 3003 "Unauthorized" and
 * the application never hears of it.
 *
 * The client thread only records what it saw; every assertion runs on the main thread after the
 * loop stopped. Socket reads have a generous timeout so a broken door fails the test instead of
 * hanging it; nothing is timed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "door/auth.h"
#include "door/conn.h"
#include "door/http.h"
#include "door/ws.h"
#include "main/log.h"
#include "rpc/rpc.h"
#include "rpc/rpc.pb-c.h"

#define PROC_ECHO 1	  /* unary: answers "pong" */
#define PROC_WATCH 2  /* stream: pushes "e1" */
#define PROC_KILL 3	  /* unary: the application closes the connection */
#define PROC_UNUSED 4 /* listed, never called */

static const RpcProcedure procs[] = {
	{PROC_ECHO, "Echo", RPC_UNARY, NULL},
	{PROC_WATCH, "Watch", RPC_SERVER_STREAM, NULL},
	{PROC_KILL, "Kill", RPC_UNARY, NULL},
	{PROC_UNUSED, "Unused", RPC_UNARY, NULL},
};
static const RpcModule module = {"TestService", procs, sizeof(procs) / sizeof(procs[0])};

static const char owner_hex[] =
	"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
static const char ephemeral_hex[] =
	"0x0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* What the application was told, on the loop thread. */
static struct
{
	int		 ready;
	char	 ready_address[ADDRESS_LEN + 1];
	int		 calls[8];
	int		 opened, cancelled, closed;
	uint32_t cancelled_proc;
	int		 status;
	int		 http_offered; /* paths offered to DoorApp.http */
	int		 http_gone;	   /* /gone arrived; answered after its client left */
} app_seen;

/* What the client saw, on its thread. */
typedef struct ClientSeen
{
	bool	 upgraded;
	uint32_t first_type; /* type of the first binary frame (SERVER_READY) */
	uint32_t port_id;
	size_t	 n_procedures;
	char	 second_name[32];
	char	 echo_payload[16];
	bool	 offer;
	char	 element[16];
	int		 close_code;
	char	 close_text[64];
	int		 bad_close_code;
	char	 bad_close_text[64];
	char	 status_body[1024];
	char	 now_body[512];		/* GET /now: answered inside the hook */
	char	 later_body[512];	/* GET /later: answered on a later loop turn */
	char	 unknown_body[512]; /* GET /unknown: not the application's either */
} ClientSeen;

static ClientSeen client_seen;
static int		  server_port;
static uv_async_t done_async;

/* ---- The application (loop thread) */

static void
app_ready(Conn *c)
{
	app_seen.ready++;
	snprintf(app_seen.ready_address, sizeof(app_seen.ready_address), "%s", conn_address(c));
}

static void
app_call(Conn *c, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload, size_t len)
{
	app_seen.calls[proc->id]++;
	if (proc->id == PROC_ECHO)
		(void) rpc_respond(conn_rpc(c), msg_no, (const uint8_t *) "pong", 4);
	else if (proc->id == PROC_KILL)
		conn_close(c, CONN_CLOSE_STREAM_OVERFLOW, "test");
}

static void
app_stream_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	app_seen.opened++;
	(void) rpc_stream_push(conn_rpc(c), msg_no, (const uint8_t *) "e1", 2);
}

static void
app_stream_closed(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	app_seen.cancelled++;
	app_seen.cancelled_proc = proc->id;
}

static void
app_closed(Conn *c)
{
	app_seen.closed++;
}

static int
app_status(json_t *o)
{
	app_seen.status++;
	return json_object_set_new(o, "test_app", json_true());
}

/* DoorApp.http: /now answered in the hook, /later on the next loop turn, /gone only after the
 * server is destroyed (its client is long gone: the answer must be dropped, not written). */
static HttpAnswer *later_answer, *gone_answer;
static uv_timer_t  later_timer;

static void
on_later(uv_timer_t *t)
{
	http_answer_send(later_answer, 202, "text/plain", "later");
	later_answer = NULL;
}

static bool
app_http(const char *method, const char *path, HttpAnswer *answer)
{
	app_seen.http_offered++;
	if (strcmp(path, "/now") == 0)
		http_answer_send(answer, 200, "application/json", "{\"now\":true}");
	else if (strcmp(path, "/later") == 0)
	{
		later_answer = answer;
		uv_timer_start(&later_timer, on_later, 0, 0);
	}
	else if (strcmp(path, "/gone") == 0)
	{
		gone_answer = answer;
		app_seen.http_gone++;
	}
	else
		return false;
	return true;
}

static const DoorApp app = {
	.module = &module,
	.ready = app_ready,
	.call = app_call,
	.stream_open = app_stream_open,
	.stream_closed = app_stream_closed,
	.closed = app_closed,
	.status = app_status,
	.http = app_http,
};

/* ---- A WebSocket client on blocking sockets (client thread) */

static int
client_connect(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) server_port)};
	struct timeval	   tv = {.tv_sec = 20};
	int				   fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0)
	{
		close(fd);
		return -1;
	}
	return fd;
}

static bool
read_full(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len > 0)
	{
		ssize_t n = recv(fd, p, len, 0);

		if (n <= 0)
			return false;
		p += n;
		len -= (size_t) n;
	}
	return true;
}

/* Reads an HTTP head (up to the blank line) into buf. */
static bool
read_head(int fd, char *buf, size_t cap)
{
	size_t n = 0;

	while (n + 1 < cap)
	{
		if (recv(fd, buf + n, 1, 0) != 1)
			return false;
		n++;
		buf[n] = '\0';
		if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
			return true;
	}
	return false;
}

static bool
ws_upgrade(int fd)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n";
	char head[2048];

	return send(fd, req, sizeof(req) - 1, 0) == (ssize_t) sizeof(req) - 1 &&
		   read_head(fd, head, sizeof(head)) && strncmp(head, "HTTP/1.1 101", 12) == 0;
}

/* One masked frame (the mask is zero, which a server must accept like any other). */
static bool
ws_send(int fd, int opcode, const void *data, size_t len)
{
	uint8_t hdr[14];
	size_t	n = 0;

	hdr[n++] = (uint8_t) (0x80 | opcode);
	if (len < 126)
		hdr[n++] = (uint8_t) (0x80 | len);
	else
	{
		hdr[n++] = 0x80 | 126;
		hdr[n++] = (uint8_t) (len >> 8);
		hdr[n++] = (uint8_t) len;
	}
	memset(hdr + n, 0, 4);
	n += 4;
	return send(fd, hdr, n, 0) == (ssize_t) n && send(fd, data, len, 0) == (ssize_t) len;
}

static bool
ws_send_pb(int fd, const ProtobufCMessage *m)
{
	uint8_t buf[512];
	size_t	len = protobuf_c_message_pack(m, buf);

	return ws_send(fd, 2, buf, len);
}

/* Next data or close frame (pings are answered); *len bytes into buf. -1 on a broken socket. */
static int
ws_recv(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	for (;;)
	{
		uint8_t	 h[2];
		uint64_t n;

		if (!read_full(fd, h, 2))
			return -1;
		n = h[1] & 0x7f;
		if (n == 126)
		{
			uint8_t e[2];

			if (!read_full(fd, e, 2))
				return -1;
			n = (uint64_t) e[0] << 8 | e[1];
		}
		else if (n == 127)
			return -1; /* nothing this test receives is that large */
		if (n > cap || !read_full(fd, buf, (size_t) n))
			return -1;
		*len = (size_t) n;
		if ((h[0] & 0x0f) == 9)
		{
			if (!ws_send(fd, 10, buf, *len))
				return -1;
			continue;
		}
		return h[0] & 0x0f;
	}
}

/* The close frame's code and text, or 0 when the frame was something else. */
static int
ws_expect_close(int fd, char *text, size_t cap)
{
	uint8_t buf[256];
	size_t	len;

	if (ws_recv(fd, buf, sizeof(buf), &len) != 8 || len < 2)
		return 0;
	snprintf(text, cap, "%.*s", (int) (len - 2), (const char *) buf + 2);
	return buf[0] << 8 | buf[1];
}

static Rpc__RpcMessageHeader *
recv_rpc(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	if (ws_recv(fd, buf, cap, len) != 2)
		return NULL;
	return rpc__rpc_message_header__unpack(NULL, *len, buf);
}

static void
client_session(ClientSeen *seen)
{
	uint8_t owner[32], ephemeral[32], buf[2048];
	size_t	len;
	char   *frame;
	int		fd = client_connect();

	if (fd < 0 || !(seen->upgraded = ws_upgrade(fd)))
		goto out;
	auth_parse_key(owner_hex, owner);
	auth_parse_key(ephemeral_hex, ephemeral);
	frame =
		auth_build_frame(owner, ephemeral, (int64_t) time(NULL) * 1000, "2099-01-01T00:00:00.000Z");
	if (!frame || !ws_send(fd, 1, frame, strlen(frame)))
	{
		free(frame);
		goto out;
	}
	free(frame);

	{
		Rpc__RpcMessageHeader *h = recv_rpc(fd, buf, sizeof(buf), &len);

		if (!h)
			goto out;
		seen->first_type = RPC_TYPE(h->message_identifier);
		rpc__rpc_message_header__free_unpacked(h, NULL);
	}
	{
		Rpc__CreatePort			 cp = RPC__CREATE_PORT__INIT;
		Rpc__CreatePortResponse *r;

		cp.message_identifier = RPC_ID(RPC_CREATE_PORT, 1);
		cp.port_name = "test";
		if (!ws_send_pb(fd, &cp.base) || ws_recv(fd, buf, sizeof(buf), &len) != 2 ||
			!(r = rpc__create_port_response__unpack(NULL, len, buf)))
			goto out;
		seen->port_id = r->port_id;
		rpc__create_port_response__free_unpacked(r, NULL);
	}
	{
		Rpc__RequestModule			rm = RPC__REQUEST_MODULE__INIT;
		Rpc__RequestModuleResponse *r;

		rm.message_identifier = RPC_ID(RPC_REQUEST_MODULE, 2);
		rm.port_id = seen->port_id;
		rm.module_name = "TestService";
		if (!ws_send_pb(fd, &rm.base) || ws_recv(fd, buf, sizeof(buf), &len) != 2 ||
			!(r = rpc__request_module_response__unpack(NULL, len, buf)))
			goto out;
		seen->n_procedures = r->n_procedures;
		if (r->n_procedures > 1)
			snprintf(seen->second_name, sizeof(seen->second_name), "%s",
					 r->procedures[1]->procedure_name);
		rpc__request_module_response__free_unpacked(r, NULL);
	}
	{
		Rpc__Request   rq = RPC__REQUEST__INIT;
		Rpc__Response *r;

		rq.message_identifier = RPC_ID(RPC_REQUEST, 3);
		rq.port_id = seen->port_id;
		rq.procedure_id = PROC_ECHO;
		rq.payload = (ProtobufCBinaryData){4, (uint8_t *) "ping"};
		if (!ws_send_pb(fd, &rq.base) || ws_recv(fd, buf, sizeof(buf), &len) != 2 ||
			!(r = rpc__response__unpack(NULL, len, buf)))
			goto out;
		snprintf(seen->echo_payload, sizeof(seen->echo_payload), "%.*s", (int) r->payload.len,
				 (const char *) r->payload.data);
		rpc__response__free_unpacked(r, NULL);
	}
	{
		Rpc__Request		rq = RPC__REQUEST__INIT;
		Rpc__StreamMessage	ack = RPC__STREAM_MESSAGE__INIT;
		Rpc__StreamMessage *m;

		rq.message_identifier = RPC_ID(RPC_REQUEST, 4);
		rq.port_id = seen->port_id;
		rq.procedure_id = PROC_WATCH;
		if (!ws_send_pb(fd, &rq.base) || ws_recv(fd, buf, sizeof(buf), &len) != 2 ||
			!(m = rpc__stream_message__unpack(NULL, len, buf)))
			goto out;
		seen->offer = RPC_TYPE(m->message_identifier) == RPC_STREAM_MESSAGE && m->sequence_id == 0;
		rpc__stream_message__free_unpacked(m, NULL);
		/* ack the offer: the element pushed meanwhile comes next */
		ack.message_identifier = RPC_ID(RPC_STREAM_ACK, 4);
		ack.port_id = seen->port_id;
		ack.sequence_id = 0;
		ack.ack = true;
		if (!ws_send_pb(fd, &ack.base) || ws_recv(fd, buf, sizeof(buf), &len) != 2 ||
			!(m = rpc__stream_message__unpack(NULL, len, buf)))
			goto out;
		snprintf(seen->element, sizeof(seen->element), "%.*s", (int) m->payload.len,
				 (const char *) m->payload.data);
		rpc__stream_message__free_unpacked(m, NULL);
		/* the client cancels */
		ack.message_identifier = RPC_ID(RPC_STREAM_MESSAGE, 4);
		ack.sequence_id = 1;
		ack.ack = false;
		ack.closed = true;
		if (!ws_send_pb(fd, &ack.base))
			goto out;
	}
	{
		Rpc__Request rq = RPC__REQUEST__INIT;

		rq.message_identifier = RPC_ID(RPC_REQUEST, 5);
		rq.port_id = seen->port_id;
		rq.procedure_id = PROC_KILL;
		if (!ws_send_pb(fd, &rq.base))
			goto out;
		seen->close_code = ws_expect_close(fd, seen->close_text, sizeof(seen->close_text));
	}
out:
	if (fd >= 0)
		close(fd);
}

static void
client_bad_auth(ClientSeen *seen)
{
	int fd = client_connect();

	if (fd >= 0 && ws_upgrade(fd) && ws_send(fd, 1, "{}", 2))
		seen->bad_close_code =
			ws_expect_close(fd, seen->bad_close_text, sizeof(seen->bad_close_text));
	if (fd >= 0)
		close(fd);
}

/* GET path with Connection: close; the whole answer into body. */
static void
client_get(const char *path, char *body, size_t size)
{
	char	req[256];
	int		fd = client_connect();
	size_t	n = 0;
	ssize_t got;
	int		len =
		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);

	body[0] = '\0';
	if (fd < 0)
		return;
	if (send(fd, req, (size_t) len, 0) == (ssize_t) len)
		while (n + 1 < size && (got = recv(fd, body + n, size - 1 - n, 0)) > 0)
			n += (size_t) got;
	body[n] = '\0';
	close(fd);
}

static void
client_status(ClientSeen *seen)
{
	client_get("/status", seen->status_body, sizeof(seen->status_body));
}

/* The application's routes; /gone is asked and left before any answer. */
static void
client_http(ClientSeen *seen)
{
	static const char gone[] = "GET /gone HTTP/1.1\r\nHost: x\r\n\r\n";
	int				  fd = client_connect();

	if (fd >= 0)
	{
		if (send(fd, gone, sizeof(gone) - 1, 0) != (ssize_t) sizeof(gone) - 1)
			fprintf(stderr, "client: sending /gone failed\n");
		client_get("/now", seen->now_body, sizeof(seen->now_body));
		client_get("/later", seen->later_body, sizeof(seen->later_body));
		client_get("/unknown", seen->unknown_body, sizeof(seen->unknown_body));
		close(fd);
	}
}

static void *
client_main(void *arg)
{
	client_session(&client_seen);
	client_bad_auth(&client_seen);
	client_status(&client_seen);
	client_http(&client_seen);
	uv_async_send(&done_async);
	return NULL;
}

/* ---- The server (main thread) */

static int
free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t		   sl = sizeof(sa);
	int				   fd = socket(AF_INET, SOCK_STREAM, 0);
	int				   port = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0 &&
		getsockname(fd, (struct sockaddr *) &sa, &sl) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static Ws *server;

static void
on_done(uv_async_t *a)
{
	uv_close((uv_handle_t *) a, NULL);
	uv_close((uv_handle_t *) &later_timer, NULL);
	ws_destroy(server);
	/* Every connection is closed now: this answer has nobody to go to and is only freed. */
	if (gone_answer)
		http_answer_send(gone_answer, 200, "text/plain", "too late");
	gone_answer = NULL;
}

static void
test_door_with_an_application(void **state)
{
	uv_loop_t loop;
	pthread_t client;
	WsOptions opts = {
		.host = "127.0.0.1",
		.conn =
			{
				.auth_timeout_ms = 10000,
				.auth_window_ms = 300000,
				.idle_timeout_s = 60,
				.max_payload_bytes = 65536,
				.max_connections = 16,
				.max_unauthenticated = 16,
				.outbound_queue_messages = 64,
				.outbound_queue_bytes = 65536,
				.messages_per_second = 1000,
				.messages_burst = 1000,
				.app = &app,
			},
	};
	char	address[ADDRESS_LEN + 1];
	uint8_t owner[32];

	log_level = LOG_LEVEL_WARN;
	assert_int_equal(uv_loop_init(&loop), 0);
	server_port = opts.port = free_port();
	assert_true(server_port > 0);
	server = ws_create(&loop, &opts);
	assert_non_null(server);
	assert_int_equal(uv_async_init(&loop, &done_async, on_done), 0);
	assert_int_equal(uv_timer_init(&loop, &later_timer), 0);
	assert_int_equal(pthread_create(&client, NULL, client_main, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	ws_release();
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(pthread_join(client, NULL), 0);
	assert_int_equal(uv_loop_close(&loop), 0);

	/* the session, as the client saw it */
	assert_true(client_seen.upgraded);
	assert_int_equal(client_seen.first_type, RPC_SERVER_READY);
	assert_int_equal(client_seen.port_id, 1);
	assert_int_equal(client_seen.n_procedures, module.count);
	assert_string_equal(client_seen.second_name, "Watch");
	assert_string_equal(client_seen.echo_payload, "pong");
	assert_true(client_seen.offer);
	assert_string_equal(client_seen.element, "e1");
	assert_int_equal(client_seen.close_code, 1011);
	assert_string_equal(client_seen.close_text, "stream_overflow");

	/* ... and as the application was told */
	assert_int_equal(auth_parse_key(owner_hex, owner), 0);
	assert_int_equal(auth_address_from_key(owner, address), 0);
	assert_int_equal(app_seen.ready, 1);
	assert_string_equal(app_seen.ready_address, address);
	assert_int_equal(app_seen.calls[PROC_ECHO], 1);
	assert_int_equal(app_seen.calls[PROC_KILL], 1);
	assert_int_equal(app_seen.calls[PROC_UNUSED], 0);
	assert_int_equal(app_seen.opened, 1);
	assert_int_equal(app_seen.cancelled, 1);
	assert_int_equal(app_seen.cancelled_proc, PROC_WATCH);
	assert_int_equal(app_seen.closed, 1); /* the bad chain never became ready */

	/* a bad chain */
	assert_int_equal(client_seen.bad_close_code, 3003);
	assert_string_equal(client_seen.bad_close_text, "Unauthorized");

	/* /status: the door's counts and the application's members */
	assert_non_null(strstr(client_seen.status_body, "HTTP/1.1 200"));
	assert_non_null(strstr(client_seen.status_body, "\"connections\":"));
	assert_non_null(strstr(client_seen.status_body, "\"test_app\":true"));
	assert_int_equal(app_seen.status, 1);

	/* the application's routes, answered at once, later, and too late */
	assert_non_null(strstr(client_seen.now_body, "HTTP/1.1 200"));
	assert_non_null(strstr(client_seen.now_body, "application/json"));
	assert_non_null(strstr(client_seen.now_body, "{\"now\":true}"));
	assert_non_null(strstr(client_seen.later_body, "HTTP/1.1 202"));
	assert_non_null(strstr(client_seen.later_body, "\r\n\r\nlater"));
	assert_non_null(strstr(client_seen.unknown_body, "HTTP/1.1 404"));
	assert_int_equal(app_seen.http_gone, 1);
	assert_int_equal(app_seen.http_offered, 4);
	assert_null(later_answer);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_door_with_an_application),
	};

	return cmocka_run_group_tests_name("door", tests, NULL, NULL);
}
