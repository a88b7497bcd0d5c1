/*
 * test_rpc.c — the @dcl/rpc session engine (daemon/rpc.c) against the golden frames of
 * test/vectors/rpc_vectors.json, made by @dcl/rpc's own encoders (test/vectors/generate.js).
 *
 * Scripts are tables of steps: actions on a session (a client frame in, an answer, a stream
 * element) and the events they must produce, in order: frames the engine sends and hook calls.
 * A script fails on any event it did not expect, so "nothing else happened" is checked too.
 * Expected frames are either vectors (byte for byte) or messages packed by protobuf-c from
 * proto/rpc/rpc.proto, an encoder independent of the engine's. Client frames not in the vectors
 * are packed by protobuf-c too, or written in hex when they are meant to be malformed.
 *
 * Vectors are read from $SOCIAL_VECTORS (default ../test/vectors, from daemon/); every vector
 * must be used by some script.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "lib/hex.h"
#include "rpc/rpc.h"
#include "social/protocol.h" /* PROC_* ids only: the engine is tested without the application */
#include "rpc/rpc.pb-c.h"
#include "decentraland/social_service/v2/social_service_v2.pb-c.h"

/* ---- the module under test: SocialService's rpcs from the generated descriptor, no handlers */

static RpcProcedure test_procs[PROC_LAST];
static RpcModule	test_module = {"SocialService", test_procs, PROC_LAST};

static void
test_module_init(void)
{
	const ProtobufCServiceDescriptor *sd =
		&decentraland__social_service__v2__social_service__descriptor;

	assert_int_equal(sd->n_methods, PROC_LAST);
	for (uint32_t i = 0; i < PROC_LAST; i++)
		test_procs[i] = (RpcProcedure){
			.id = i + 1,
			.name = sd->methods[i].name,
			.kind =
				strncmp(sd->methods[i].name, "Subscribe", 9) == 0 ? RPC_SERVER_STREAM : RPC_UNARY,
		};
}

/* ---- vectors */

typedef struct Vector
{
	const char *name;
	int			type;
	json_t	   *fields; /* borrowed from vectors_root */
	uint8_t	   *bytes;
	size_t		len;
	bool		used;
} Vector;

static json_t *vectors_root;
static Vector *vectors;
static size_t  vector_count;

/* Hex to bytes; spaces are allowed between byte pairs for readability. malloc'd. */
static uint8_t *
hex_decode(const char *hex, size_t *len)
{
	uint8_t *out = malloc(strlen(hex) / 2 + 1);
	size_t	 n = 0;

	assert_non_null(out);
	while (*hex)
	{
		if (*hex == ' ')
		{
			hex++;
			continue;
		}
		int hi = hex_value(hex[0]);
		int lo = hex[1] ? hex_value(hex[1]) : -1;

		if (hi < 0 || lo < 0)
			fail_msg("bad hex near \"%s\"", hex);
		out[n++] = (uint8_t) (hi << 4 | lo);
		hex += 2;
	}
	*len = n;
	return out;
}

/* malloc'd lower-case hex of data. */
static char *
hex_encode(const uint8_t *data, size_t len)
{
	char *out = malloc(len * 2 + 1);

	assert_non_null(out);
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", data[i]);
	out[len * 2] = '\0';
	return out;
}

static int
base64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 (the JSON form of proto bytes). malloc'd. */
static uint8_t *
base64_decode(const char *s, size_t *len)
{
	uint8_t *out = malloc(strlen(s) * 3 / 4 + 3);
	uint32_t acc = 0;
	int		 bits = 0;
	size_t	 n = 0;

	assert_non_null(out);
	for (; *s && *s != '='; s++)
	{
		int v = base64_value(*s);

		if (v < 0)
			fail_msg("bad base64 character '%c'", *s);
		acc = acc << 6 | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[n++] = (uint8_t) (acc >> bits);
		}
	}
	*len = n;
	return out;
}

static void
vectors_load(void)
{
	const char	*dir = getenv("SOCIAL_VECTORS");
	char		 path[4096];
	json_error_t err;
	size_t		 i;
	json_t		*v;

	if (dir == NULL || *dir == '\0')
		dir = "../test/vectors";
	snprintf(path, sizeof(path), "%s/rpc_vectors.json", dir);
	vectors_root = json_load_file(path, 0, &err);
	if (vectors_root == NULL || !json_is_array(vectors_root))
	{
		fprintf(stderr, "cannot read %s: %s (set SOCIAL_VECTORS)\n", path, err.text);
		exit(1);
	}
	vector_count = json_array_size(vectors_root);
	vectors = calloc(vector_count, sizeof(Vector));
	json_array_foreach(vectors_root, i, v)
	{
		const char *hex = json_string_value(json_object_get(v, "hex"));

		vectors[i].name = json_string_value(json_object_get(v, "name"));
		vectors[i].type = (int) json_integer_value(json_object_get(v, "messageType"));
		vectors[i].fields = json_object_get(v, "fields");
		if (vectors[i].name == NULL || hex == NULL || !json_is_object(vectors[i].fields))
		{
			fprintf(stderr, "%s: entry %zu lacks name, hex or fields\n", path, i);
			exit(1);
		}
		vectors[i].bytes = hex_decode(hex, &vectors[i].len);
	}
}

static void
vectors_free(void)
{
	for (size_t i = 0; i < vector_count; i++)
		free(vectors[i].bytes);
	free(vectors);
	json_decref(vectors_root);
}

/* The vector with exactly this name, else the only one whose name starts with it. */
static Vector *
vector_get(const char *name)
{
	Vector *found = NULL;

	for (size_t i = 0; i < vector_count; i++)
	{
		if (strcmp(vectors[i].name, name) == 0)
		{
			vectors[i].used = true;
			return &vectors[i];
		}
	}
	for (size_t i = 0; i < vector_count; i++)
	{
		if (strncmp(vectors[i].name, name, strlen(name)) == 0)
		{
			if (found)
				fail_msg("vector prefix \"%s\" is ambiguous", name);
			found = &vectors[i];
		}
	}
	if (found == NULL)
		fail_msg("no vector named \"%s\"", name);
	found->used = true;
	return found;
}

/* ---- the harness: a session whose hooks log every event */

typedef enum EventKind
{
	EV_FRAME,
	EV_CALL,
	EV_OPEN,
	EV_CLOSED
} EventKind;

typedef struct Event
{
	EventKind kind;
	uint32_t  msg_no;
	uint32_t  proc;
	char	 *hex; /* frame or payload */
} Event;

#define MAX_EVENTS 512

typedef struct Harness
{
	RpcSession *s;
	Event		ev[MAX_EVENTS];
	size_t		head;
	size_t		tail;
	bool		send_fails;
	bool		call_answers;	   /* the call hook answers at once with rpc_respond_error */
	const char *open_pushes;	   /* the stream_open hook pushes this element (hex) ... */
	bool		open_ends;		   /* ... and/or ends the stream at once */
	bool		closed_ends_other; /* the stream_closed hook ends stream closed_other */
	uint32_t	closed_other;
} Harness;

static Event *
harness_log(Harness *h, EventKind kind, uint32_t msg_no, uint32_t proc, const uint8_t *data,
			size_t len)
{
	Event *e;

	if (h->tail == MAX_EVENTS)
		fail_msg("event log full");
	e = &h->ev[h->tail++];
	e->kind = kind;
	e->msg_no = msg_no;
	e->proc = proc;
	e->hex = hex_encode(data, len);
	return e;
}

static int
hook_send(void *ud, const uint8_t *frame, size_t len)
{
	Harness *h = ud;

	if (h->send_fails)
		return -1;
	harness_log(h, EV_FRAME, 0, 0, frame, len);
	return 0;
}

static void
hook_call(void *ud, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload, size_t len)
{
	Harness *h = ud;

	assert_ptr_equal(proc, rpc_module_find(&test_module, proc->id));
	assert_int_equal(proc->kind, RPC_UNARY);
	harness_log(h, EV_CALL, msg_no, proc->id, payload, len);
	if (h->call_answers)
		assert_int_equal(rpc_respond_error(h->s, msg_no, "unsupported procedure"), 0);
}

static void
hook_stream_open(void *ud, uint32_t msg_no, const RpcProcedure *proc)
{
	Harness *h = ud;

	assert_ptr_equal(proc, rpc_module_find(&test_module, proc->id));
	assert_int_equal(proc->kind, RPC_SERVER_STREAM);
	harness_log(h, EV_OPEN, msg_no, proc->id, NULL, 0);
	if (h->open_pushes)
	{
		size_t	 len;
		uint8_t *p = hex_decode(h->open_pushes, &len);

		assert_int_equal(rpc_stream_push(h->s, msg_no, p, len), 0);
		free(p);
	}
	if (h->open_ends)
		assert_int_equal(rpc_stream_end(h->s, msg_no), 0);
}

static void
hook_stream_closed(void *ud, uint32_t msg_no, const RpcProcedure *proc)
{
	Harness *h = ud;

	assert_ptr_equal(proc, rpc_module_find(&test_module, proc->id));
	assert_int_equal(proc->kind, RPC_SERVER_STREAM);
	harness_log(h, EV_CLOSED, msg_no, 0, NULL, 0);
	if (h->closed_ends_other)
	{
		h->closed_ends_other = false;
		(void) rpc_stream_end(h->s, h->closed_other);
	}
}

static const RpcHooks harness_hooks = {
	.send = hook_send,
	.call = hook_call,
	.stream_open = hook_stream_open,
	.stream_closed = hook_stream_closed,
};

static void
harness_init(Harness *h, const RpcLimits *limits)
{
	memset(h, 0, sizeof(*h));
	h->s = rpc_session_create(&test_module, &harness_hooks, h, limits);
	assert_non_null(h->s);
}

static Event *
harness_next(Harness *h)
{
	if (h->head == h->tail)
		return NULL;
	return &h->ev[h->head++];
}

static void
harness_fini(Harness *h)
{
	rpc_session_destroy(h->s);
	for (size_t i = 0; i < h->tail; i++)
		free(h->ev[i].hex);
}

/* ---- frames packed by protobuf-c */

static char *
pack_hex(const ProtobufCMessage *m)
{
	size_t	 n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);
	char	*hex;

	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), n);
	hex = hex_encode(buf, n);
	free(buf);
	return hex;
}

static ProtobufCBinaryData
payload_of(const char *hex, uint8_t **owned)
{
	ProtobufCBinaryData b = {0, NULL};

	*owned = NULL;
	if (hex && *hex)
	{
		*owned = hex_decode(hex, &b.len);
		b.data = *owned;
	}
	return b;
}

/* ---- scripts */

typedef enum StepKind
{
	STEP_END = 0,
	/* actions */
	A_READY,	   /* rpc_session_ready() == rc */
	A_IN_VEC,	   /* vector s in, status OK */
	A_IN_HEX,	   /* hex s in, status rc */
	A_CREATE_PORT, /* CreatePort #a {port_name s} */
	A_MODULE,	   /* RequestModule #a {port_id b, module_name s} */
	A_REQUEST,	   /* Request #a {port_id b, procedure_id c, client_stream d, payload s} */
	A_ACK,		   /* STREAM_ACK #a {port_id b, sequence_id c, ack} */
	A_CANCEL,	   /* STREAM_MESSAGE #a {port_id b, sequence_id c, closed} */
	A_DESTROY,	   /* DestroyPort #0 {port_id b} */
	A_RESPOND,	   /* rpc_respond(a, payload s) == rc */
	A_RESPOND_ERR, /* rpc_respond_error(a, s) == rc */
	A_PUSH,		   /* rpc_stream_push(a, payload s) == rc */
	A_FINISH,	   /* rpc_stream_end(a) == rc */
	A_SEND_FAILS,  /* from now on hooks->send refuses frames */
	A_CALL_ANSWERS,
	A_OPEN_PUSHES, /* the stream_open hook pushes element s (and ends it when rc) */
	A_CLOSED_ENDS, /* the next stream_closed hook ends stream a */
	/* expected events, in order */
	E_VEC,		/* a frame equal to vector s */
	E_HEX,		/* a frame equal to hex s */
	E_PORT,		/* CreatePortResponse #a {port_id b} */
	E_MODULE,	/* RequestModuleResponse #a {port_id b, every procedure} */
	E_ERROR,	/* RemoteError #a {error_message s} */
	E_RESPONSE, /* Response #a {payload s} */
	E_STREAM,	/* StreamMessage #a {port_id b, sequence_id c, payload s, closed d} */
	E_CALL,		/* call hook: #a, procedure c, payload s */
	E_OPEN,		/* stream_open hook: #a, procedure c */
	E_CLOSED,	/* stream_closed hook: #a */
	E_STREAMS,	/* rpc_session_stream_count() == a */
} StepKind;

typedef struct Step
{
	StepKind	kind;
	uint32_t	a, b, c, d;
	const char *s;
	int			rc;
} Step;

#define READY() \
	{           \
		A_READY \
	}
#define IN_VEC(name)          \
	{                         \
		A_IN_VEC, .s = (name) \
	}
#define IN_HEX(hex, status)                  \
	{                                        \
		A_IN_HEX, .s = (hex), .rc = (status) \
	}
#define CREATE(n, name)                      \
	{                                        \
		A_CREATE_PORT, .a = (n), .s = (name) \
	}
#define MODULE(n, port, name)                        \
	{                                                \
		A_MODULE, .a = (n), .b = (port), .s = (name) \
	}
#define REQ(n, port, proc, payload)                                   \
	{                                                                 \
		A_REQUEST, .a = (n), .b = (port), .c = (proc), .s = (payload) \
	}
#define REQ_CS(n, port, proc, cs)                                \
	{                                                            \
		A_REQUEST, .a = (n), .b = (port), .c = (proc), .d = (cs) \
	}
#define ACK(n, port, seq)                        \
	{                                            \
		A_ACK, .a = (n), .b = (port), .c = (seq) \
	}
#define CANCEL(n, port, seq)                        \
	{                                               \
		A_CANCEL, .a = (n), .b = (port), .c = (seq) \
	}
#define DESTROY(port)          \
	{                          \
		A_DESTROY, .b = (port) \
	}
#define RESPOND(n, payload, r)                         \
	{                                                  \
		A_RESPOND, .a = (n), .s = (payload), .rc = (r) \
	}
#define RESPOND_ERR(n, text, r)                         \
	{                                                   \
		A_RESPOND_ERR, .a = (n), .s = (text), .rc = (r) \
	}
#define PUSH(n, payload, r)                         \
	{                                               \
		A_PUSH, .a = (n), .s = (payload), .rc = (r) \
	}
#define FINISH(n, r)                  \
	{                                 \
		A_FINISH, .a = (n), .rc = (r) \
	}
#define SEND_FAILS() \
	{                \
		A_SEND_FAILS \
	}
#define CALL_ANSWERS() \
	{                  \
		A_CALL_ANSWERS \
	}
#define OPEN_PUSHES(payload, ends)                  \
	{                                               \
		A_OPEN_PUSHES, .s = (payload), .rc = (ends) \
	}
#define CLOSED_ENDS(n)          \
	{                           \
		A_CLOSED_ENDS, .a = (n) \
	}
#define OUT_VEC(name)      \
	{                      \
		E_VEC, .s = (name) \
	}
#define OUT_HEX(hex)      \
	{                     \
		E_HEX, .s = (hex) \
	}
#define OUT_PORT(n, port)             \
	{                                 \
		E_PORT, .a = (n), .b = (port) \
	}
#define OUT_MODULE(n, port)             \
	{                                   \
		E_MODULE, .a = (n), .b = (port) \
	}
#define OUT_ERR(n, text)               \
	{                                  \
		E_ERROR, .a = (n), .s = (text) \
	}
#define OUT_RESP(n, payload)                 \
	{                                        \
		E_RESPONSE, .a = (n), .s = (payload) \
	}
#define OUT_OFFER(n, port)              \
	{                                   \
		E_STREAM, .a = (n), .b = (port) \
	}
#define OUT_ELEM(n, port, seq, payload)                             \
	{                                                               \
		E_STREAM, .a = (n), .b = (port), .c = (seq), .s = (payload) \
	}
#define OUT_CLOSE(n, port, seq)                             \
	{                                                       \
		E_STREAM, .a = (n), .b = (port), .c = (seq), .d = 1 \
	}
#define CALLED(n, proc, payload)                      \
	{                                                 \
		E_CALL, .a = (n), .c = (proc), .s = (payload) \
	}
#define OPENED(n, proc)               \
	{                                 \
		E_OPEN, .a = (n), .c = (proc) \
	}
#define CLOSED(n)          \
	{                      \
		E_CLOSED, .a = (n) \
	}
#define STREAMS(k)          \
	{                       \
		E_STREAMS, .a = (k) \
	}

/* Ready, port 1 "social_service", SocialService loaded on it. */
#define OPEN_SESSION()                                                                 \
	READY(), OUT_VEC("SERVER_READY"), CREATE(100, "social_service"), OUT_PORT(100, 1), \
		MODULE(101, 1, "SocialService"), OUT_MODULE(101, 1)

static void
feed(Harness *h, const uint8_t *frame, size_t len, RpcInputStatus want)
{
	assert_int_equal(rpc_session_input(h->s, frame, len), want);
}

static void
feed_message(Harness *h, const ProtobufCMessage *m)
{
	size_t	 n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);

	assert_non_null(buf);
	protobuf_c_message_pack(m, buf);
	feed(h, buf, n, RPC_INPUT_OK);
	free(buf);
}

static char *
expected_frame(const Step *st)
{
	uint8_t *owned = NULL;
	char	*hex = NULL;

	switch (st->kind)
	{
		case E_VEC:
		{
			Vector *v = vector_get(st->s);

			return hex_encode(v->bytes, v->len);
		}
		case E_HEX:
		{
			size_t	 len;
			uint8_t *b = hex_decode(st->s, &len);

			hex = hex_encode(b, len);
			free(b);
			return hex;
		}
		case E_PORT:
		{
			Rpc__CreatePortResponse m = RPC__CREATE_PORT_RESPONSE__INIT;

			m.message_identifier = RPC_ID(RPC_CREATE_PORT_RESPONSE, st->a);
			m.port_id = st->b;
			return pack_hex(&m.base);
		}
		case E_MODULE:
		{
			Rpc__RequestModuleResponse m = RPC__REQUEST_MODULE_RESPONSE__INIT;
			Rpc__ModuleProcedure	   procs[PROC_LAST];
			Rpc__ModuleProcedure	  *ptrs[PROC_LAST];

			for (size_t i = 0; i < test_module.count; i++)
			{
				rpc__module_procedure__init(&procs[i]);
				procs[i].procedure_id = test_procs[i].id;
				procs[i].procedure_name = (char *) test_procs[i].name;
				ptrs[i] = &procs[i];
			}
			m.message_identifier = RPC_ID(RPC_REQUEST_MODULE_RESPONSE, st->a);
			m.port_id = st->b;
			m.n_procedures = test_module.count;
			m.procedures = ptrs;
			return pack_hex(&m.base);
		}
		case E_ERROR:
		{
			Rpc__RemoteError m = RPC__REMOTE_ERROR__INIT;

			m.message_identifier = RPC_ID(RPC_REMOTE_ERROR_RESPONSE, st->a);
			m.error_message = (char *) st->s;
			return pack_hex(&m.base);
		}
		case E_RESPONSE:
		{
			Rpc__Response m = RPC__RESPONSE__INIT;

			m.message_identifier = RPC_ID(RPC_RESPONSE, st->a);
			m.payload = payload_of(st->s, &owned);
			hex = pack_hex(&m.base);
			free(owned);
			return hex;
		}
		case E_STREAM:
		{
			Rpc__StreamMessage m = RPC__STREAM_MESSAGE__INIT;

			m.message_identifier = RPC_ID(RPC_STREAM_MESSAGE, st->a);
			m.port_id = st->b;
			m.sequence_id = st->c;
			m.payload = payload_of(st->s, &owned);
			m.closed = st->d != 0;
			hex = pack_hex(&m.base);
			free(owned);
			return hex;
		}
		default:
			fail_msg("step %d is not a frame", st->kind);
	}
	return NULL;
}

static void
expect_event(Harness *h, const Step *st, size_t index)
{
	Event *e = harness_next(h);
	char  *want;

	if (e == NULL)
		fail_msg("step %zu: expected an event (kind %d, #%u), got none", index, st->kind, st->a);
	switch (st->kind)
	{
		case E_CALL:
			if (e->kind != EV_CALL)
				fail_msg("step %zu: expected call #%u, got event %d %s", index, st->a, e->kind,
						 e->hex);
			assert_int_equal(e->msg_no, st->a);
			assert_int_equal(e->proc, st->c);
			want = hex_encode(NULL, 0);
			if (st->s)
			{
				size_t	 len;
				uint8_t *b = hex_decode(st->s, &len);

				free(want);
				want = hex_encode(b, len);
				free(b);
			}
			assert_string_equal(e->hex, want);
			free(want);
			return;
		case E_OPEN:
			if (e->kind != EV_OPEN)
				fail_msg("step %zu: expected stream_open #%u, got event %d %s", index, st->a,
						 e->kind, e->hex);
			assert_int_equal(e->msg_no, st->a);
			assert_int_equal(e->proc, st->c);
			return;
		case E_CLOSED:
			if (e->kind != EV_CLOSED)
				fail_msg("step %zu: expected stream_closed #%u, got event %d %s", index, st->a,
						 e->kind, e->hex);
			assert_int_equal(e->msg_no, st->a);
			return;
		default:
			want = expected_frame(st);
			if (e->kind != EV_FRAME)
				fail_msg("step %zu: expected frame %s, got event %d #%u", index, want, e->kind,
						 e->msg_no);
			if (strcmp(e->hex, want) != 0)
				fail_msg("step %zu: frame\n  got  %s\n  want %s", index, e->hex, want);
			free(want);
			return;
	}
}

static void
run_script_on(Harness *h, const Step *steps)
{
	for (size_t i = 0; steps[i].kind != STEP_END; i++)
	{
		const Step *st = &steps[i];
		uint8_t	   *owned = NULL;

		/* every event of the previous action must have been expected before the next one */
		if (st->kind < E_VEC && h->head != h->tail)
		{
			Event *e = &h->ev[h->head];

			fail_msg("step %zu: unexpected event %d #%u %s", i, e->kind, e->msg_no, e->hex);
		}
		switch (st->kind)
		{
			case A_READY:
				assert_int_equal(rpc_session_ready(h->s), st->rc);
				break;
			case A_IN_VEC:
			{
				Vector *v = vector_get(st->s);

				feed(h, v->bytes, v->len, RPC_INPUT_OK);
				break;
			}
			case A_IN_HEX:
			{
				size_t	 len;
				uint8_t *b = hex_decode(st->s, &len);

				feed(h, b, len, (RpcInputStatus) st->rc);
				free(b);
				break;
			}
			case A_CREATE_PORT:
			{
				Rpc__CreatePort m = RPC__CREATE_PORT__INIT;

				m.message_identifier = RPC_ID(RPC_CREATE_PORT, st->a);
				m.port_name = (char *) st->s;
				feed_message(h, &m.base);
				break;
			}
			case A_MODULE:
			{
				Rpc__RequestModule m = RPC__REQUEST_MODULE__INIT;

				m.message_identifier = RPC_ID(RPC_REQUEST_MODULE, st->a);
				m.port_id = st->b;
				m.module_name = (char *) st->s;
				feed_message(h, &m.base);
				break;
			}
			case A_REQUEST:
			{
				Rpc__Request m = RPC__REQUEST__INIT;

				m.message_identifier = RPC_ID(RPC_REQUEST, st->a);
				m.port_id = st->b;
				m.procedure_id = st->c;
				m.client_stream = st->d;
				m.payload = payload_of(st->s, &owned);
				feed_message(h, &m.base);
				break;
			}
			case A_ACK:
			case A_CANCEL:
			{
				Rpc__StreamMessage m = RPC__STREAM_MESSAGE__INIT;
				bool			   ack = st->kind == A_ACK;

				m.message_identifier = RPC_ID(ack ? RPC_STREAM_ACK : RPC_STREAM_MESSAGE, st->a);
				m.port_id = st->b;
				m.sequence_id = st->c;
				m.ack = ack;
				m.closed = !ack;
				feed_message(h, &m.base);
				break;
			}
			case A_DESTROY:
			{
				Rpc__DestroyPort m = RPC__DESTROY_PORT__INIT;

				m.message_identifier = RPC_ID(RPC_DESTROY_PORT, 0);
				m.port_id = st->b;
				feed_message(h, &m.base);
				break;
			}
			case A_RESPOND:
			{
				ProtobufCBinaryData b = payload_of(st->s, &owned);

				assert_int_equal(rpc_respond(h->s, st->a, b.data, b.len), st->rc);
				break;
			}
			case A_RESPOND_ERR:
				assert_int_equal(rpc_respond_error(h->s, st->a, st->s), st->rc);
				break;
			case A_PUSH:
			{
				ProtobufCBinaryData b = payload_of(st->s, &owned);

				assert_int_equal(rpc_stream_push(h->s, st->a, b.data, b.len), st->rc);
				break;
			}
			case A_FINISH:
				assert_int_equal(rpc_stream_end(h->s, st->a), st->rc);
				break;
			case A_SEND_FAILS:
				h->send_fails = true;
				break;
			case A_CALL_ANSWERS:
				h->call_answers = true;
				break;
			case A_OPEN_PUSHES:
				h->open_pushes = st->s;
				h->open_ends = st->rc != 0;
				break;
			case A_CLOSED_ENDS:
				h->closed_ends_other = true;
				h->closed_other = st->a;
				break;
			case E_STREAMS:
				assert_int_equal(rpc_session_stream_count(h->s), st->a);
				break;
			default:
				expect_event(h, st, i);
				break;
		}
		free(owned);
	}
	if (h->head != h->tail)
	{
		Event *e = &h->ev[h->head];

		fail_msg("unexpected event %d #%u %s", e->kind, e->msg_no, e->hex);
	}
}

static void
run_script(const Step *steps, const RpcLimits *limits)
{
	Harness *h = malloc(sizeof(*h));

	assert_non_null(h);
	harness_init(h, limits);
	run_script_on(h, steps);
	harness_fini(h);
	free(h);
}

/* ---- the golden session: every vector */

#define ELEMENT_1 "12090a070a053078616263" /* FriendshipUpdate.accept{user{0xabc}} */

static void
test_vector_session(void **state)
{
	const Step steps[] = {
		READY(),
		OUT_VEC("SERVER_READY"),
		IN_VEC("CreatePort (client->server)"),
		OUT_VEC("CreatePortResponse"),
		IN_VEC("RequestModule"),
		OUT_MODULE(2, 1), /* the vector shows 2 of the list: test_vector_module_list */
		IN_VEC("Request unary GetFriends with empty payload"),
		CALLED(3, PROC_GET_FRIENDS, ""),
		IN_VEC("Request GetFriends {pagination"),
		CALLED(4, PROC_GET_FRIENDS, "0a02080a"),
		/* answers in any order */
		RESPOND(4, "0a070a053078616263120408011001", 0),
		OUT_VEC("Response (payload"),
		RESPOND(3, "", 0),
		OUT_RESP(3, ""),
		REQ(5, 1, PROC_GET_SOCIAL_SETTINGS, ""),
		CALLED(5, PROC_GET_SOCIAL_SETTINGS, ""),
		RESPOND(5, "", 0),
		OUT_VEC("Response with empty payload"),
		MODULE(6, 1, "X"),
		OUT_VEC("RemoteError"),
		/* the stream of doc/rpc-wire.md#server-streams; an element pushed before the ack waits */
		IN_VEC("Request SubscribeToFriendshipUpdates"),
		OUT_VEC("StreamMessage server OPEN"),
		OPENED(7, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		PUSH(7, ELEMENT_1, 0),
		IN_VEC("StreamMessage client ACK of offer"),
		OUT_VEC("StreamMessage server element seq 1"),
		IN_VEC("StreamMessage client ACK seq 1"),
		STREAMS(1),
		FINISH(7, 0),
		OUT_VEC("StreamMessage server CLOSE"),
		STREAMS(0),
		/* the client's cancel of a stream that is gone is ignored */
		IN_VEC("StreamMessage client CLOSE"),
		IN_VEC("DestroyPort"),
		REQ(8, 1, PROC_GET_FRIENDS, ""),
		OUT_ERR(8, "invalid portId"),
		{0}};

	run_script(steps, NULL);
}

static void
test_vector_cancel(void **state)
{
	const Step steps[] = {READY(),
						  OUT_VEC("SERVER_READY"),
						  IN_VEC("CreatePort (client->server)"),
						  OUT_VEC("CreatePortResponse"),
						  IN_VEC("RequestModule"),
						  OUT_MODULE(2, 1),
						  IN_VEC("Request SubscribeToFriendshipUpdates"),
						  OUT_VEC("StreamMessage server OPEN"),
						  OPENED(7, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
						  IN_VEC("StreamMessage client ACK of offer"),
						  PUSH(7, ELEMENT_1, 0),
						  OUT_VEC("StreamMessage server element seq 1"),
						  /* cancel in place of the ack of element 1 */
						  IN_VEC("StreamMessage client CLOSE"),
						  CLOSED(7),
						  STREAMS(0),
						  PUSH(7, ELEMENT_1, -1),
						  FINISH(7, -1),
						  {0}};

	run_script(steps, NULL);
}

/* Each vector decodes with protobuf-c as the message of its type into exactly its JSON
 * fields, and protobuf-c packs it back to the same bytes: proto/rpc/rpc.proto is the wire. */
static const ProtobufCMessageDescriptor *
descriptor_of_type(int type)
{
	switch (type)
	{
		case RPC_REQUEST:
			return &rpc__request__descriptor;
		case RPC_RESPONSE:
			return &rpc__response__descriptor;
		case RPC_STREAM_MESSAGE:
		case RPC_STREAM_ACK:
			return &rpc__stream_message__descriptor;
		case RPC_CREATE_PORT:
			return &rpc__create_port__descriptor;
		case RPC_CREATE_PORT_RESPONSE:
			return &rpc__create_port_response__descriptor;
		case RPC_REQUEST_MODULE:
			return &rpc__request_module__descriptor;
		case RPC_REQUEST_MODULE_RESPONSE:
			return &rpc__request_module_response__descriptor;
		case RPC_REMOTE_ERROR_RESPONSE:
			return &rpc__remote_error__descriptor;
		case RPC_DESTROY_PORT:
			return &rpc__destroy_port__descriptor;
		case RPC_SERVER_READY:
			return &rpc__rpc_message_header__descriptor;
		default:
			fail_msg("vector of unknown type %d", type);
	}
	return NULL;
}

/* "procedure_name" -> "procedureName" */
static void
camel_case(const char *snake, char *out, size_t cap)
{
	size_t n = 0;

	for (bool up = false; *snake && n + 1 < cap; snake++)
	{
		if (*snake == '_')
		{
			up = true;
			continue;
		}
		out[n++] = up ? (char) (*snake - 'a' + 'A') : *snake;
		up = false;
	}
	out[n] = '\0';
}

static void
check_fields(const ProtobufCMessage *m, json_t *fields, const char *where)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	for (unsigned i = 0; i < d->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char					   *member = (const char *) m + f->offset;
		char							key[64];
		json_t						   *j;

		camel_case(f->name, key, sizeof(key));
		j = json_object_get(fields, key);
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
		{
			size_t n = *(const size_t *) ((const char *) m + f->quantifier_offset);
			ProtobufCMessage *const *items = *(ProtobufCMessage *const *const *) member;

			assert_int_equal(f->type, PROTOBUF_C_TYPE_MESSAGE);
			assert_int_equal(n, j ? json_array_size(j) : 0);
			for (size_t k = 0; k < n; k++)
				check_fields(items[k], json_array_get(j, k), where);
			continue;
		}
		switch (f->type)
		{
			case PROTOBUF_C_TYPE_FIXED32:
				assert_int_equal(*(const uint32_t *) member, j ? json_integer_value(j) : 0);
				break;
			case PROTOBUF_C_TYPE_BOOL:
				assert_int_equal(*(const protobuf_c_boolean *) member != 0, j && json_is_true(j));
				break;
			case PROTOBUF_C_TYPE_STRING:
				assert_string_equal(*(char *const *) member, j ? json_string_value(j) : "");
				break;
			case PROTOBUF_C_TYPE_BYTES:
			{
				const ProtobufCBinaryData *b = (const ProtobufCBinaryData *) member;
				size_t					   len = 0;
				uint8_t *want = base64_decode(j ? json_string_value(j) : "", &len);

				assert_int_equal(b->len, len);
				if (len)
					assert_memory_equal(b->data, want, len);
				free(want);
				break;
			}
			default:
				fail_msg("%s: field %s of unexpected type", where, f->name);
		}
	}
	/* and no JSON field the message does not have */
	const char *key;
	json_t	   *value;
	json_object_foreach(fields, key, value)
	{
		bool found = false;

		for (unsigned i = 0; i < d->n_fields && !found; i++)
		{
			char name[64];

			camel_case(d->fields[i].name, name, sizeof(name));
			found = strcmp(name, key) == 0;
		}
		if (!found)
			fail_msg("%s: JSON field %s is not in %s", where, key, d->name);
	}
}

static void
test_vectors_match_proto(void **state)
{
	for (size_t i = 0; i < vector_count; i++)
	{
		const Vector					 *v = &vectors[i];
		const ProtobufCMessageDescriptor *d = descriptor_of_type(v->type);
		ProtobufCMessage				 *m = protobuf_c_message_unpack(d, NULL, v->len, v->bytes);
		char							 *repacked;
		char							 *want = hex_encode(v->bytes, v->len);

		if (m == NULL)
			fail_msg("%s: protobuf-c cannot unpack it as %s", v->name, d->name);
		check_fields(m, v->fields, v->name);
		assert_int_equal(RPC_TYPE(*(const uint32_t *) ((const char *) m + d->fields[0].offset)),
						 v->type);
		repacked = pack_hex(m);
		assert_string_equal(repacked, want);
		free(repacked);
		free(want);
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

/* The RequestModuleResponse vector lists 2 of the procedures: our answer has the same header and
 * those two entries byte for byte, at the positions of their ids. */
static void
test_vector_module_list(void **state)
{
	Vector					   *v = vector_get("RequestModuleResponse");
	Harness					   *h = malloc(sizeof(*h));
	Event					   *e;
	size_t						len;
	uint8_t					   *got;
	Rpc__RequestModuleResponse *m;

	harness_init(h, NULL);
	{
		const Step steps[] = {
			IN_VEC("CreatePort (client->server)"), OUT_VEC("CreatePortResponse"), {0}};
		Vector *request = vector_get("RequestModule");

		run_script_on(h, steps);
		feed(h, request->bytes, request->len, RPC_INPUT_OK);
	}
	/* the vector's header: identifier and port */
	e = harness_next(h);
	assert_non_null(e);
	got = hex_decode(e->hex, &len);
	assert_memory_equal(got, v->bytes, 10);
	/* each of the vector's entries appears in ours, for the same id */
	for (size_t off = 10; off < v->len;)
	{
		size_t entry = 2 + v->bytes[off + 1];
		bool   found = false;

		for (size_t k = 10; k + entry <= len && !found; k++)
			found = memcmp(got + k, v->bytes + off, entry) == 0;
		if (!found)
			fail_msg("entry at offset %zu of the vector is missing from %s", off, e->hex);
		off += entry;
	}
	/* and the whole list is service.h's, ids 1..33 in order */
	m = rpc__request_module_response__unpack(NULL, len, got);
	assert_non_null(m);
	assert_int_equal(m->port_id, 1);
	assert_int_equal(m->n_procedures, PROC_LAST);
	for (size_t i = 0; i < m->n_procedures; i++)
	{
		assert_int_equal(m->procedures[i]->procedure_id, i + 1);
		assert_string_equal(m->procedures[i]->procedure_name, test_procs[i].name);
	}
	rpc__request_module_response__free_unpacked(m, NULL);
	free(got);
	harness_fini(h);
	free(h);
}

/* Ids are positions: lookups past either end find nothing. */
static void
test_module_find(void **state)
{
	for (uint32_t id = 1; id <= PROC_LAST; id++)
		assert_ptr_equal(rpc_module_find(&test_module, id), &test_procs[id - 1]);
	assert_null(rpc_module_find(&test_module, 0));
	assert_null(rpc_module_find(&test_module, PROC_LAST + 1));
	assert_null(rpc_module_find(&test_module, UINT32_MAX));
}

/* ---- sessions */

static void
test_ports_and_modules(void **state)
{
	const Step steps[] = {
		READY(),
		OUT_VEC("SERVER_READY"),
		{A_READY, .rc = -1}, /* only once */
		/* ports are numbered per session from 1; names are free */
		CREATE(0x07FFFFFF, "a"),
		OUT_PORT(0x07FFFFFF, 1),
		CREATE(5, ""),
		OUT_PORT(5, 2),
		CREATE(0x01000001, "social_service"),
		OUT_PORT(0x01000001, 3),
		/* the same module twice on a port, and on another port: the same list */
		MODULE(9, 2, "SocialService"),
		OUT_MODULE(9, 2),
		MODULE(10, 2, "SocialService"),
		OUT_MODULE(10, 2),
		MODULE(11, 3, "SocialService"),
		OUT_MODULE(11, 3),
		/* the short name only, exact case */
		MODULE(12, 1, "decentraland.social_service.v2.SocialService"),
		OUT_ERR(12, "Module decentraland.social_service.v2.SocialService is not available for "
					"port a (1))"),
		MODULE(13, 1, "socialservice"),
		OUT_ERR(13, "Module socialservice is not available for port a (1))"),
		MODULE(14, 1, ""),
		OUT_ERR(14, "Module  is not available for port a (1))"),
		MODULE(15, 9, "SocialService"),
		OUT_ERR(15, "Cannot find port 9"),
		MODULE(16, 0, "SocialService"),
		OUT_ERR(16, "Cannot find port 0"),
		/* procedures exist on a port once its module is loaded */
		REQ(17, 1, PROC_GET_FRIENDS, ""),
		OUT_ERR(17, "procedureId 1 is missing in a (1))"),
		REQ(18, 2, 0, ""),
		OUT_ERR(18, "procedureId 0 is missing in  (2))"),
		REQ(19, 2, PROC_LAST + 1, ""),
		OUT_ERR(19, "procedureId 34 is missing in  (2))"),
		REQ(20, 7, PROC_GET_FRIENDS, ""),
		OUT_ERR(20, "invalid portId"),
		REQ(21, 0, PROC_GET_FRIENDS, ""),
		OUT_ERR(21, "invalid portId"),
		/* every procedure, supported or not, reaches the owner, who answers */
		REQ(22, 3, PROC_LAST, "0a0131"),
		CALLED(22, PROC_LAST, "0a0131"),
		REQ(23, 2, PROC_GET_BLOCKING_STATUS, ""),
		CALLED(23, PROC_GET_BLOCKING_STATUS, ""),
		RESPOND_ERR(22, "not supported", 0),
		OUT_ERR(22, "not supported"),
		RESPOND_ERR(23, NULL, 0),
		OUT_ERR(23, "Error processing the request"),
		/* client streams are not part of SocialService */
		REQ_CS(24, 2, PROC_GET_FRIENDS, 25),
		OUT_ERR(24, "GetFriends does not take a client stream"),
		/* a destroyed port is forgotten, its id is not handed out again while others live */
		DESTROY(1),
		DESTROY(1),
		DESTROY(77),
		MODULE(26, 1, "SocialService"),
		OUT_ERR(26, "Cannot find port 1"),
		CREATE(27, "b"),
		OUT_PORT(27, 4),
		{0}};

	run_script(steps, NULL);
}

static void
test_unary_answers(void **state)
{
	const Step steps[] = {OPEN_SESSION(),
						  /* answers only for pending calls, once */
						  RESPOND(1, "", -1),
						  RESPOND_ERR(1, "x", -1),
						  REQ(0, 1, PROC_GET_FRIENDS, ""), /* number 0 is a number like any */
						  CALLED(0, PROC_GET_FRIENDS, ""),
						  REQ(0x07FFFFFF, 1, PROC_UPSERT_FRIENDSHIP, "0a00"),
						  CALLED(0x07FFFFFF, PROC_UPSERT_FRIENDSHIP, "0a00"),
						  /* a number in flight cannot be reused; the first call goes on */
						  REQ(0x07FFFFFF, 1, PROC_GET_FRIENDS, ""),
						  OUT_ERR(0x07FFFFFF, "message number 134217727 is already in use"),
						  RESPOND(0x07FFFFFF, "0801", 0),
						  OUT_RESP(0x07FFFFFF, "0801"),
						  RESPOND(0x07FFFFFF, "0801", -1),
						  RESPOND_ERR(0x07FFFFFF, "late", -1),
						  RESPOND(0, "", 0),
						  OUT_RESP(0, ""),
						  /* once answered, the number is free again */
						  REQ(0x07FFFFFF, 1, PROC_GET_FRIENDS, ""),
						  CALLED(0x07FFFFFF, PROC_GET_FRIENDS, ""),
						  RESPOND_ERR(0x07FFFFFF, "boom", 0),
						  OUT_ERR(0x07FFFFFF, "boom"),
						  /* a stream is not a pending call */
						  REQ(40, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
						  OUT_OFFER(40, 1),
						  OPENED(40, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
						  RESPOND(40, "", -1),
						  RESPOND_ERR(40, "x", -1),
						  REQ(40, 1, PROC_GET_FRIENDS, ""),
						  OUT_ERR(40, "message number 40 is already in use"),
						  /* the owner may answer from inside the call hook */
						  CALL_ANSWERS(),
						  REQ(41, 1, 18, ""),
						  CALLED(41, 18, ""),
						  OUT_ERR(41, "unsupported procedure"),
						  RESPOND(41, "", -1),
						  {0}};

	run_script(steps, NULL);
}

static void
test_stream_flow(void **state)
{
	const RpcLimits limits = {.stream_buffer = 2};
	const Step		steps[] = {
			 OPEN_SESSION(),
			 REQ(50, 1, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, ""),
			 OUT_OFFER(50, 1),
			 OPENED(50, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES),
			 /* nothing is sent before the client asks; the buffer holds 2 */
			 PUSH(50, "0a01", 0),
			 PUSH(50, "0a02", 0),
			 PUSH(50, "0a03", -2),
			 /* an ack of another sequence id, or a frame with neither flag, is ignored */
			 ACK(50, 1, 1),
			 {A_IN_HEX, .s = "0d32000018 1501000000", .rc = RPC_INPUT_OK},
			 ACK(50, 1, 0),
			 OUT_ELEM(50, 1, 1, "0a01"),
			 ACK(50, 1, 0), /* a duplicate */
			 PUSH(50, "0a03", 0),
			 ACK(50, 1, 1),
			 OUT_ELEM(50, 1, 2, "0a02"),
			 /* an ack sent as type STREAM_MESSAGE with ack=true counts too */
			 {A_IN_HEX, .s = "0d32000018 1501000000 2502000000 4001", .rc = RPC_INPUT_OK},
			 OUT_ELEM(50, 1, 3, "0a03"),
			 ACK(50, 1, 3),
			 /* idle: the next element goes out at once; empty elements are elements */
			 PUSH(50, "", 0),
			 OUT_ELEM(50, 1, 4, ""),
			 PUSH(50, "0a05", 0),
			 ACK(50, 1, 4),
			 OUT_ELEM(50, 1, 5, "0a05"),
			 /* the server ends while the client holds element 5: close after its ack */
			 FINISH(50, 0),
			 FINISH(50, -1),
			 PUSH(50, "0a06", -1),
			 STREAMS(1),
			 ACK(50, 1, 5),
			 OUT_CLOSE(50, 1, 5),
			 STREAMS(0),
			 ACK(50, 1, 5),
			 PUSH(50, "0a06", -1),
			 /* unknown streams */
			 PUSH(51, "", -1),
			 FINISH(51, -1),
			 ACK(51, 1, 0),
			 CANCEL(51, 1, 0),
			 {0}};

	run_script(steps, &limits);
}

static void
test_stream_end_and_cancel(void **state)
{
	const Step steps[] = {
		OPEN_SESSION(),
		/* ended before the first ack: queued elements, then the close, one per ack */
		REQ(60, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
		OUT_OFFER(60, 1),
		OPENED(60, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
		PUSH(60, "0a01", 0),
		FINISH(60, 0),
		ACK(60, 1, 0),
		OUT_ELEM(60, 1, 1, "0a01"),
		ACK(60, 1, 1),
		OUT_CLOSE(60, 1, 1),
		/* ended with nothing sent: closes with sequence 0 after the offer's ack */
		REQ(61, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
		OUT_OFFER(61, 1),
		OPENED(61, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
		FINISH(61, 0),
		ACK(61, 1, 0),
		OUT_CLOSE(61, 1, 0),
		/* the client cancels an ended stream before its close: freed, owner not told */
		REQ(62, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
		OUT_OFFER(62, 1),
		OPENED(62, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
		PUSH(62, "0a01", 0),
		FINISH(62, 0),
		CANCEL(62, 1, 0),
		STREAMS(0),
		/* cancel in place of the offer's ack, with elements queued */
		REQ(63, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
		OUT_OFFER(63, 1),
		OPENED(63, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		PUSH(63, "0a01", 0),
		PUSH(63, "0a02", 0),
		CANCEL(63, 1, 0),
		CLOSED(63),
		/* a duplicate cancel, and an ack after it, are ignored */
		CANCEL(63, 1, 0),
		ACK(63, 1, 0),
		/* cancel while idle (after the ack, nothing to send), with the sequence id sent last */
		REQ(64, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
		OUT_OFFER(64, 1),
		OPENED(64, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		ACK(64, 1, 0),
		CANCEL(64, 1, 0),
		CLOSED(64),
		/* a cancel sent as STREAM_ACK with closed=true also cancels */
		REQ(65, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
		OUT_OFFER(65, 1),
		OPENED(65, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		{A_IN_HEX, .s = "0d41000020 1501000000 3801", .rc = RPC_INPUT_OK},
		CLOSED(65),
		/* the owner pushes and ends from inside stream_open (duplicate subscription) */
		OPEN_PUSHES("3a020801", 1),
		REQ(66, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
		OUT_OFFER(66, 1),
		OPENED(66, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		ACK(66, 1, 0),
		OUT_ELEM(66, 1, 1, "3a020801"),
		ACK(66, 1, 1),
		OUT_CLOSE(66, 1, 1),
		/* or ends it at once (an unsupported stream) */
		OPEN_PUSHES(NULL, 1),
		REQ(67, 1, 23, ""),
		OUT_OFFER(67, 1),
		OPENED(67, 23),
		ACK(67, 1, 0),
		OUT_CLOSE(67, 1, 0),
		STREAMS(0),
		{0}};

	run_script(steps, NULL);
}

static void
test_destroy_port(void **state)
{
	const Step steps[] = {
		OPEN_SESSION(),
		CREATE(102, "second"),
		OUT_PORT(102, 2),
		MODULE(103, 2, "SocialService"),
		OUT_MODULE(103, 2),
		REQ(70, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
		OUT_OFFER(70, 1),
		OPENED(70, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		REQ(71, 2, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
		OUT_OFFER(71, 2),
		OPENED(71, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
		REQ(72, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
		OUT_OFFER(72, 1),
		OPENED(72, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
		ACK(72, 1, 0),
		REQ(73, 1, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, ""),
		OUT_OFFER(73, 1),
		OPENED(73, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES),
		FINISH(73, 0), /* server-ended, waiting for the ack: freed without telling the owner */
		REQ(74, 1, PROC_GET_FRIENDS, ""),
		CALLED(74, PROC_GET_FRIENDS, ""),
		PUSH(70, "0a01", 0),
		STREAMS(4),
		{A_IN_VEC, .s = "DestroyPort"},
		CLOSED(70),
		CLOSED(72),
		STREAMS(1),
		PUSH(70, "0a01", -1),
		PUSH(72, "0a01", -1),
		ACK(73, 1, 0),
		/* the port's calls are still answered */
		RESPOND(74, "", 0),
		OUT_RESP(74, ""),
		/* port 2 lives on */
		PUSH(71, "0a01", 0),
		ACK(71, 2, 0),
		OUT_ELEM(71, 2, 1, "0a01"),
		REQ(75, 1, PROC_GET_FRIENDS, ""),
		OUT_ERR(75, "invalid portId"),
		/* the owner's stream_closed hook may end other streams of the same port */
		REQ(76, 2, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
		OUT_OFFER(76, 2),
		OPENED(76, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
		ACK(76, 2, 0),
		CLOSED_ENDS(76),
		DESTROY(2),
		CLOSED(71),
		OUT_CLOSE(76, 2, 0),
		STREAMS(0),
		{0}};

	run_script(steps, NULL);
}

static void
test_limits(void **state)
{
	const RpcLimits limits = {
		.max_ports = 2, .max_streams = 2, .max_pending_calls = 2, .stream_buffer = 1};
	const Step steps[] = {OPEN_SESSION(),
						  CREATE(1, "b"),
						  OUT_PORT(1, 2),
						  CREATE(2, "c"),
						  OUT_ERR(2, "Cannot create port: too many ports (limit 2)"),
						  DESTROY(2),
						  CREATE(3, "c"),
						  OUT_PORT(3, 3),
						  /* pending calls */
						  REQ(10, 1, PROC_GET_FRIENDS, ""),
						  CALLED(10, PROC_GET_FRIENDS, ""),
						  REQ(11, 1, PROC_GET_FRIENDS, ""),
						  CALLED(11, PROC_GET_FRIENDS, ""),
						  REQ(12, 1, PROC_BLOCK_USER, ""),
						  OUT_ERR(12, "Cannot call BlockUser: too many pending calls (limit 2)"),
						  RESPOND(11, "", 0),
						  OUT_RESP(11, ""),
						  REQ(12, 1, PROC_BLOCK_USER, ""),
						  CALLED(12, PROC_BLOCK_USER, ""),
						  /* streams, which do not count as calls */
						  REQ(20, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
						  OUT_OFFER(20, 1),
						  OPENED(20, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
						  REQ(21, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
						  OUT_OFFER(21, 1),
						  OPENED(21, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
						  REQ(22, 1, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, ""),
						  OUT_ERR(22, "Cannot open stream: too many open streams (limit 2)"),
						  /* stream buffer of 1 */
						  PUSH(20, "0a01", 0),
						  PUSH(20, "0a02", -2),
						  CANCEL(21, 1, 0),
						  CLOSED(21),
						  REQ(22, 1, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, ""),
						  OUT_OFFER(22, 1),
						  OPENED(22, PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES),
						  {0}};

	run_script(steps, &limits);
}

static void
test_send_failure(void **state)
{
	const Step steps[] = {
		OPEN_SESSION(),
		REQ(1, 1, PROC_GET_FRIENDS, ""),
		CALLED(1, PROC_GET_FRIENDS, ""),
		REQ(2, 1, PROC_SUBSCRIBE_TO_BLOCK_UPDATES, ""),
		OUT_OFFER(2, 1),
		OPENED(2, PROC_SUBSCRIBE_TO_BLOCK_UPDATES),
		ACK(2, 1, 0),
		SEND_FAILS(),
		RESPOND(1, "", -1),
		PUSH(2, "0a01", -1),
		/* the session is dead: input is ignored, no hook runs, garbage is still reported */
		REQ(3, 1, PROC_GET_FRIENDS, ""),
		CANCEL(2, 1, 0),
		IN_HEX("ff", RPC_INPUT_MALFORMED),
		FINISH(2, 0),
		STREAMS(0),
		{0}};

	run_script(steps, NULL);
}

/* ---- malformed and unusual frames */

typedef struct FrameCase
{
	const char	  *name;
	const char	  *hex;
	RpcInputStatus status;
	const char	  *reply; /* hex of the one frame it must produce, or NULL for none */
} FrameCase;

static const FrameCase frame_cases[] = {
	/* not protobuf */
	{"empty frame (no header)", "", RPC_INPUT_MALFORMED, NULL},
	{"truncated tag varint", "ff", RPC_INPUT_MALFORMED, NULL},
	{"truncated fixed32", "0d010000", RPC_INPUT_MALFORMED, NULL},
	{"truncated varint value", "0d01000028 3880", RPC_INPUT_MALFORMED, NULL},
	{"11-byte varint", "0d01000028 48ffffffffffffffffffff01", RPC_INPUT_MALFORMED, NULL},
	{"varint over 64 bits", "0d01000028 48ffffffffffffffffff02", RPC_INPUT_MALFORMED, NULL},
	{"tag over 32 bits", "0d01000028 8080808010", RPC_INPUT_MALFORMED, NULL},
	{"length past the end", "0d01000028 220e736f63", RPC_INPUT_MALFORMED, NULL},
	{"huge length", "0d01000028 22ffffffff0f", RPC_INPUT_MALFORMED, NULL},
	{"64-bit huge length", "0d01000028 22ffffffffffffffff7f", RPC_INPUT_MALFORMED, NULL},
	{"truncated fixed64", "0d01000028 4901020304", RPC_INPUT_MALFORMED, NULL},
	{"field number 0", "0d01000028 0500000000", RPC_INPUT_MALFORMED, NULL},
	{"wire type 6", "0d01000028 4e", RPC_INPUT_MALFORMED, NULL},
	{"wire type 7", "0d01000028 4f", RPC_INPUT_MALFORMED, NULL},
	{"end group without start", "0d01000028 4c", RPC_INPUT_MALFORMED, NULL},
	{"unterminated group", "0d01000028 4b 0801", RPC_INPUT_MALFORMED, NULL},
	{"mismatched end group", "0d01000028 4b 54", RPC_INPUT_MALFORMED, NULL},
	{"groups nested too deep",
	 "0d01000028 "
	 "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"
	 "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"
	 "4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c"
	 "4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c",
	 RPC_INPUT_MALFORMED, NULL},
	/* headers and types */
	{"header as varint", "0801", RPC_INPUT_MALFORMED, NULL},
	{"header as bytes", "0a0400000028", RPC_INPUT_MALFORMED, NULL},
	{"header missing", "1501000000 220e736f6369616c5f73657276696365", RPC_INPUT_MALFORMED, NULL},
	{"type EMPTY", "0d05000000", RPC_INPUT_MALFORMED, NULL},
	{"type RESPONSE from a client", "0d05000010", RPC_INPUT_MALFORMED, NULL},
	{"type CREATE_PORT_RESPONSE from a client", "0d05000030 1501000000", RPC_INPUT_MALFORMED, NULL},
	{"type REQUEST_MODULE_RESPONSE from a client", "0d05000040", RPC_INPUT_MALFORMED, NULL},
	{"type REMOTE_ERROR from a client", "0d05000048", RPC_INPUT_MALFORMED, NULL},
	{"type SERVER_READY from a client", "0d00000058", RPC_INPUT_MALFORMED, NULL},
	{"type 12", "0d05000060", RPC_INPUT_MALFORMED, NULL},
	{"type 15", "0d05000078", RPC_INPUT_MALFORMED, NULL},
	/* known fields with the wrong wire type */
	{"port_id as varint", "0d05000008 1001 2501000000", RPC_INPUT_MALFORMED, NULL},
	{"procedure_id as bytes", "0d05000008 1501000000 220101", RPC_INPUT_MALFORMED, NULL},
	{"payload as fixed32", "0d05000008 1501000000 2501000000 3501020304", RPC_INPUT_MALFORMED,
	 NULL},
	{"port_name as fixed32", "0d05000028 2501000000", RPC_INPUT_MALFORMED, NULL},
	{"closed as fixed32", "0d05000018 3d01000000", RPC_INPUT_MALFORMED, NULL},
	{"invalid UTF-8 port name", "0d05000028 2202c328", RPC_INPUT_MALFORMED, NULL},
	{"UTF-8 surrogate in module name", "0d05000038 1501000000 2203eda080", RPC_INPUT_MALFORMED,
	 NULL},
	{"overlong UTF-8", "0d05000028 2202c0af", RPC_INPUT_MALFORMED, NULL},
	{"truncated UTF-8", "0d05000028 2202e282", RPC_INPUT_MALFORMED, NULL},
	/* well-formed oddities that must work */
	{"unknown fields of every wire type are skipped",
	 "0d05000028 4801 510102030405060708 5a03616263 6504030201 6b 0801 73 1001 74 6c "
	 "220e736f6369616c5f73657276696365 c03e01",
	 RPC_INPUT_OK, "0d05000030 1502000000"},
	{"fields out of order", "220e736f6369616c5f73657276696365 0d05000028", RPC_INPUT_OK,
	 "0d05000030 1502000000"},
	{"repeated header: the last wins", "0d09000028 0d05000028", RPC_INPUT_OK,
	 "0d05000030 1502000000"},
	{"UTF-8 port name", "0d05000028 2205c3a9e282ac", RPC_INPUT_OK, "0d05000030 1502000000"},
	{"request with everything reversed", "3200 2501000000 1501000000 0d06000008", RPC_INPUT_OK,
	 NULL /* a call, checked by the hook log below */},
	{"request with fields of other messages skipped", "0d07000008 1501000000 2501000000 1a0161",
	 RPC_INPUT_OK, NULL},
	{"bit 31 of the identifier is ignored", "0d080000a8 2200", RPC_INPUT_OK,
	 "0d08000030 1502000000"},
	{"number above 0x01000000", "0dffffff2f", RPC_INPUT_OK, "0dffffff37 1502000000"},
	{"stream frame for no stream", "0d09000020 1501000000 4001", RPC_INPUT_OK, NULL},
	{"DestroyPort of no port", "0d00000050 1509000000", RPC_INPUT_OK, NULL},
	{"DestroyPort with a number", "0d0a000050", RPC_INPUT_OK, NULL},
};

static void
test_frames(void **state)
{
	for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++)
	{
		const FrameCase *fc = &frame_cases[i];
		Harness			*h = malloc(sizeof(*h));
		const Step		 open[] = {OPEN_SESSION(), {0}};
		size_t			 len;
		uint8_t			*frame = hex_decode(fc->hex, &len);
		Event			*e;

		harness_init(h, NULL);
		run_script_on(h, open);
		RpcInputStatus got = rpc_session_input(h->s, frame, len);

		if (got != fc->status)
			fail_msg("%s: status %d, want %d", fc->name, got, fc->status);
		e = harness_next(h);
		if (fc->reply)
		{
			size_t	 rlen;
			uint8_t *r = hex_decode(fc->reply, &rlen);
			char	*want = hex_encode(r, rlen);

			if (e == NULL || e->kind != EV_FRAME || strcmp(e->hex, want) != 0)
				fail_msg("%s: reply %s, want %s", fc->name, e ? e->hex : "(none)", want);
			free(want);
			free(r);
		}
		else if (e && e->kind == EV_CALL)
		{
			/* the two Request cases: GetFriends on port 1 */
			assert_int_equal(e->proc, PROC_GET_FRIENDS);
			assert_true(e->msg_no == 6 || e->msg_no == 7);
			assert_string_equal(e->hex, "");
		}
		else if (e)
			fail_msg("%s: unexpected event %d %s", fc->name, e->kind, e->hex);
		assert_null(harness_next(h));
		free(frame);
		harness_fini(h);
		free(h);
	}
}

/* rpc_utf8_valid: what procedures.c checks every string parameter with before PostgreSQL sees it
 * (protobuf-c does not validate strings). Hex of the bytes, and the verdict. */
static const struct
{
	const char *name;
	const char *hex;
	bool		valid;
} utf8_cases[] = {
	{"empty", "", true},
	{"ASCII address", "307861623132", true},
	{"two-byte", "c3a9", true},
	{"three-byte euro", "e282ac", true},
	{"four-byte, highest code point", "f48fbfbf", true},
	{"NUL is a character", "00", true},
	{"lone continuation byte", "80", false},
	{"overlong two-byte slash", "c0af", false},
	{"overlong three-byte", "e08080", false},
	{"overlong four-byte", "f08f8080", false},
	{"surrogate", "eda080", false},
	{"above U+10FFFF", "f4908080", false},
	{"0xff", "ff", false},
	{"truncated two-byte", "c3", false},
	{"truncated three-byte at the end", "61e282", false},
	{"bad continuation", "e228a1", false},
	{"latin-1 e-acute", "e9", false},
};

static void
test_utf8_valid(void **state)
{
	for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++)
	{
		size_t	 len = 0;
		uint8_t *b = hex_decode(utf8_cases[i].hex, &len);

		if (rpc_utf8_valid(b, len) != utf8_cases[i].valid)
			fail_msg("%s: expected %s", utf8_cases[i].name,
					 utf8_cases[i].valid ? "valid" : "invalid");
		free(b);
	}
}

/* Long names are echoed cut at a character boundary, so the session holds a bounded copy. */
static void
test_long_names(void **state)
{
	char			   name[1000];
	char			   message[512];
	Harness			  *h = malloc(sizeof(*h));
	Rpc__CreatePort	   cp = RPC__CREATE_PORT__INIT;
	Rpc__RequestModule rm = RPC__REQUEST_MODULE__INIT;
	Event			  *e;
	Rpc__RemoteError  *err;
	size_t			   len;
	uint8_t			  *b;

	/* 'a' then two-byte characters: byte 128 falls inside one */
	name[0] = 'a';
	for (size_t i = 1; i + 2 < sizeof(name); i += 2)
	{
		name[i] = (char) 0xc3;
		name[i + 1] = (char) 0xa9;
	}
	name[sizeof(name) - 1] = '\0';

	harness_init(h, NULL);
	cp.message_identifier = RPC_ID(RPC_CREATE_PORT, 1);
	cp.port_name = name;
	feed_message(h, &cp.base);
	assert_non_null(harness_next(h)); /* CreatePortResponse */
	rm.message_identifier = RPC_ID(RPC_REQUEST_MODULE, 2);
	rm.port_id = 1;
	rm.module_name = name;
	feed_message(h, &rm.base);
	e = harness_next(h);
	assert_non_null(e);
	b = hex_decode(e->hex, &len);
	err = rpc__remote_error__unpack(NULL, len, b);
	assert_non_null(err);
	snprintf(message, sizeof(message), "Module %.127s is not available for port %.127s (1))", name,
			 name);
	assert_string_equal(err->error_message, message);
	rpc__remote_error__free_unpacked(err, NULL);
	free(b);
	harness_fini(h);
	free(h);
}

/* Random bytes and mutated vectors never crash the engine, and every frame it sends back is a
 * well-formed message of a server type. Run under ASan/valgrind for the full guarantee. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t
rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t) rng_state;
}

static void
test_fuzz(void **state)
{
	const RpcLimits limits = {.max_ports = 4, .max_streams = 4, .max_pending_calls = 4};
	uint8_t			frame[96];

	for (int round = 0; round < 200; round++)
	{
		Harness	  *h = malloc(sizeof(*h));
		const Step open[] = {OPEN_SESSION(),
							 REQ(7, 1, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, ""),
							 OUT_OFFER(7, 1),
							 OPENED(7, PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES),
							 {0}};

		harness_init(h, &limits);
		run_script_on(h, open);
		for (int k = 0; k < 100 && h->tail + 8 < MAX_EVENTS; k++)
		{
			size_t len;

			if (rng() % 2)
			{
				len = rng() % sizeof(frame);
				for (size_t i = 0; i < len; i++)
					frame[i] = (uint8_t) rng();
			}
			else
			{
				const Vector *v = &vectors[rng() % vector_count];

				len = v->len < sizeof(frame) ? v->len : sizeof(frame);
				memcpy(frame, v->bytes, len);
				for (int flips = 1 + (int) (rng() % 3); flips > 0 && len; flips--)
					frame[rng() % len] = (uint8_t) rng();
				if (rng() % 4 == 0 && len)
					len = rng() % len;
			}
			(void) rpc_session_input(h->s, frame, len);
			if (rng() % 8 == 0)
				(void) rpc_stream_push(h->s, 7, frame, len);
			assert_true(rpc_session_stream_count(h->s) <= limits.max_streams);
		}
		for (Event *e; (e = harness_next(h)) != NULL;)
		{
			size_t				   len;
			uint8_t				  *b;
			Rpc__RpcMessageHeader *hdr;
			uint32_t			   type;

			if (e->kind != EV_FRAME)
				continue;
			b = hex_decode(e->hex, &len);
			hdr = rpc__rpc_message_header__unpack(NULL, len, b);
			assert_non_null(hdr);
			type = RPC_TYPE(hdr->message_identifier);
			assert_true(type == RPC_RESPONSE || type == RPC_STREAM_MESSAGE ||
						type == RPC_CREATE_PORT_RESPONSE || type == RPC_REQUEST_MODULE_RESPONSE ||
						type == RPC_REMOTE_ERROR_RESPONSE);
			rpc__rpc_message_header__free_unpacked(hdr, NULL);
			free(b);
		}
		harness_fini(h);
		free(h);
	}
}

static void
test_create_destroy(void **state)
{
	RpcHooks partial = harness_hooks;

	rpc_session_destroy(NULL);
	assert_null(rpc_session_create(NULL, NULL, NULL, NULL));
	assert_null(rpc_session_create(NULL, &harness_hooks, NULL, NULL));
	assert_null(rpc_session_create(&test_module, NULL, NULL, NULL));
	partial.stream_closed = NULL;
	assert_null(rpc_session_create(&test_module, &partial, NULL, NULL));
}

/* Last: every golden frame took part in some script. */
static void
test_all_vectors_used(void **state)
{
	for (size_t i = 0; i < vector_count; i++)
		if (!vectors[i].used)
			fail_msg("vector \"%s\" is not used by any test", vectors[i].name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_match_proto),
		cmocka_unit_test(test_module_find),
		cmocka_unit_test(test_vector_session),
		cmocka_unit_test(test_vector_cancel),
		cmocka_unit_test(test_vector_module_list),
		cmocka_unit_test(test_ports_and_modules),
		cmocka_unit_test(test_unary_answers),
		cmocka_unit_test(test_stream_flow),
		cmocka_unit_test(test_stream_end_and_cancel),
		cmocka_unit_test(test_destroy_port),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_send_failure),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_long_names),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_create_destroy),
		cmocka_unit_test(test_all_vectors_used),
	};
	int rc;

	test_module_init();
	vectors_load();
	rc = cmocka_run_group_tests_name("rpc", tests, NULL, NULL);
	vectors_free();
	return rc;
}
