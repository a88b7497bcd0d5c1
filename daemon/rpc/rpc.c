/*
 * rpc.c — the @dcl/rpc session engine (doc/rpc-wire.md), pure: bytes in,
 * bytes out through hooks->send, no I/O, no clock, no allocation that is not bounded by the
 * session's limits.
 *
 * Wire. Frames are proto3 messages of proto/rpc/rpc.proto. They are read by a small wire reader (pb_wire.c)
 * instead of protobuf-c's unpacker: it allocates nothing (payloads are borrowed from the frame),
 * skips unknown fields of every wire type including groups, and gives one clear verdict on
 * garbage. A frame is read twice: the first pass validates the whole frame and finds field 1
 * (message_identifier, wherever it is), the second reads the fields of that type's message. A
 * known field with another wire type, bytes that are not protobuf, invalid UTF-8 in a string, a
 * missing header (type 0) or a type a client never sends is RPC_INPUT_MALFORMED: the caller
 * closes the connection, as the JS reference does. Frames are written the way @dcl/rpc's
 * encoders write them, byte for byte: ascending field numbers, proto3 defaults omitted.
 *
 * Message numbers. The client picks them; every answer echoes the number of the frame it
 * answers, and the only number the server originates is SERVER_READY's 0. Numbers are neither
 * contiguous nor small, so pending calls and streams are looked up by number. A number can be
 * in flight once: a Request reusing the number of a pending call or open stream is refused
 * with a RemoteError and the first one carries on.
 *
 * Ports. Per session, ids from 1, never 0, never two live ports with one id. A port knows the
 * session's module (RpcModule, the application's table) once the client requested it by name;
 * procedures are callable on a port only after that, by their ids, as in the reference.
 * DestroyPort forgets the port and closes its streams; unary calls already made on it are still
 * answered (the client ignores it).
 *
 * Streams, one state per open server stream:
 *   awaiting_ack — a frame (the offer, seq 0, or element last_seq) is out and the client has not
 *                  acknowledged it; elements pushed meanwhile wait in the queue, in order.
 *   idle         — acknowledged, nothing queued; the next push is sent at once.
 * So at most one element is ever unacknowledged, and "!awaiting_ack implies an empty queue"
 * holds after every function. rpc_stream_end marks the stream ended: the closing frame
 * (closed=true, the last sequence id) goes out once the queue has drained and the last frame was
 * acknowledged, like the reference, which only learns its generator ended after the ack. A
 * closed=true from the client (instead of an ack, or while idle) cancels: the stream is freed at
 * once and stream_closed tells the owner, unless the server had ended it already. Stream frames
 * for numbers that are not an open stream, and acks of any other sequence id, are ignored.
 *
 * Re-entrancy. Hooks run synchronously from rpc_session_input, and their owners call back in
 * (an unsupported procedure is answered from inside call; a duplicate subscription is pushed
 * its notice and ended from inside stream_open). So the pending call or stream is registered, and
 * the offer sent, before the hook runs, and nothing is touched after a hook that the hook may have
 * freed. A hook must not destroy the session (the daemon closes connections deferred).
 *
 * Once hooks->send refuses a frame the connection is going away: the session sends nothing more
 * and ignores further input, but keeps its bookkeeping until it is destroyed.
 */
#include "rpc/rpc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/pb_wire.h"

/* A zero field of RpcLimits takes these. stream_buffer matches the reference's per-stream
 * buffer of 1000 updates. */
#define RPC_DEFAULT_MAX_PORTS 16
#define RPC_DEFAULT_MAX_STREAMS 32
#define RPC_DEFAULT_MAX_PENDING_CALLS 64
#define RPC_DEFAULT_STREAM_BUFFER 1000

/* Port and module names are echoed in error messages and kept per port: longer ones are cut
 * (at a UTF-8 character boundary) so a client cannot make the session hold its megabyte. */
#define RPC_NAME_MAX 128

/* Frames up to this size are built on the stack. */
#define RPC_STACK_FRAME 256

/* Field numbers of proto/rpc/rpc.proto. One number means different fields in different
 * messages (4 is port_name, module_name, procedure_id or sequence_id). */
enum
{
	F_MESSAGE_IDENTIFIER = 1,
	F_PORT_ID = 2, /* also RemoteError.error_code */
	F_ERROR_MESSAGE = 3,
	F_FOUR = 4, /* port_name / module_name / procedure_id / sequence_id */
	F_FIVE = 5, /* Request.client_stream / RequestModuleResponse.procedures */
	F_PAYLOAD = 6,
	F_CLOSED = 7,
	F_ACK = 8,
	F_MAX = 8,
	/* ModuleProcedure */
	F_PROCEDURE_ID = 1,
	F_PROCEDURE_NAME = 2
};

/* Which fields each message a client sends has, as FIELD(wire type); 0 where the message has no
 * such field (it is skipped as unknown). Types a client never sends have no row: refused. */
#define FIELD(wire_type) ((uint8_t) ((wire_type) + 1))

static const uint8_t client_fields[RPC_SERVER_READY + 1][F_MAX + 1] = {
	[RPC_REQUEST] = {[F_MESSAGE_IDENTIFIER] = FIELD(PB_WIRE_I32),
					 [F_PORT_ID] = FIELD(PB_WIRE_I32),
					 [F_FOUR] = FIELD(PB_WIRE_I32), /* procedure_id */
					 [F_FIVE] = FIELD(PB_WIRE_I32), /* client_stream */
					 [F_PAYLOAD] = FIELD(PB_WIRE_LEN)},
	[RPC_STREAM_MESSAGE] = {[F_MESSAGE_IDENTIFIER] = FIELD(PB_WIRE_I32),
							[F_PORT_ID] = FIELD(PB_WIRE_I32),
							[F_FOUR] = FIELD(PB_WIRE_I32), /* sequence_id */
							[F_PAYLOAD] = FIELD(PB_WIRE_LEN),
							[F_CLOSED] = FIELD(PB_WIRE_VARINT),
							[F_ACK] = FIELD(PB_WIRE_VARINT)},
	[RPC_STREAM_ACK] = {[F_MESSAGE_IDENTIFIER] = FIELD(PB_WIRE_I32),
						[F_PORT_ID] = FIELD(PB_WIRE_I32),
						[F_FOUR] = FIELD(PB_WIRE_I32), /* sequence_id */
						[F_PAYLOAD] = FIELD(PB_WIRE_LEN),
						[F_CLOSED] = FIELD(PB_WIRE_VARINT),
						[F_ACK] = FIELD(PB_WIRE_VARINT)},
	[RPC_CREATE_PORT] = {[F_MESSAGE_IDENTIFIER] = FIELD(PB_WIRE_I32),
						 [F_FOUR] = FIELD(PB_WIRE_LEN)}, /* port_name */
	[RPC_REQUEST_MODULE] = {[F_MESSAGE_IDENTIFIER] = FIELD(PB_WIRE_I32),
							[F_PORT_ID] = FIELD(PB_WIRE_I32),
							[F_FOUR] = FIELD(PB_WIRE_LEN)}, /* module_name */
	[RPC_DESTROY_PORT] =
		{[F_MESSAGE_IDENTIFIER] = FIELD(PB_WIRE_I32), [F_PORT_ID] = FIELD(PB_WIRE_I32)},
};

/* Every field a client frame can carry; absent fields read as proto3 defaults. */
typedef struct RpcFrame
{
	uint32_t	   id;
	uint32_t	   port_id;
	uint32_t	   four; /* procedure_id / sequence_id */
	const uint8_t *name; /* port_name / module_name, borrowed from the frame */
	size_t		   name_len;
	uint32_t	   client_stream;
	const uint8_t *payload; /* borrowed from the frame */
	size_t		   payload_len;
	bool		   closed;
	bool		   ack;
} RpcFrame;

typedef struct RpcPort
{
	uint32_t id;
	bool	 module_loaded; /* SocialService was requested on this port */
	size_t	 name_len;
	char	 name[RPC_NAME_MAX];
} RpcPort;

/* One queued stream element; payload copied. */
typedef struct RpcElement
{
	struct RpcElement *next;
	size_t			   len;
	uint8_t			   data[];
} RpcElement;

typedef struct RpcStream
{
	uint32_t			msg_no;
	uint32_t			port_id;
	const RpcProcedure *proc;
	uint32_t			last_seq;	  /* sequence id of the last frame sent; 0 = the offer */
	bool				awaiting_ack; /* see the states above */
	bool				ended;		  /* the server ended it; close after the queue drains */
	uint32_t			queued;
	RpcElement		   *head;
	RpcElement		   *tail;
} RpcStream;

struct RpcSession
{
	const RpcModule *module; /* borrowed */
	const RpcHooks	*hooks;	 /* borrowed */
	void			*ud;	 /* borrowed */
	RpcLimits		 limits;
	bool			 ready_sent;
	bool			 dead; /* hooks->send refused a frame: the connection is closing */
	uint32_t		 next_port_id;

	RpcPort *ports; /* owned, nports used of cap_ports */
	uint32_t nports;
	uint32_t cap_ports;

	RpcStream **streams; /* owned, each owned */
	uint32_t	nstreams;
	uint32_t	cap_streams;

	uint32_t *pending; /* message numbers of unanswered unary calls */
	uint32_t  npending;
	uint32_t  cap_pending;
};

/* A server message to encode; unset fields are proto3 defaults and are omitted. */
typedef struct RpcOut
{
	uint32_t	   id;
	uint32_t	   two; /* port_id / error_code */
	const char	  *error_message;
	size_t		   error_len;
	uint32_t	   sequence_id;
	bool		   procedures; /* RequestModuleResponse: the module's procedure list */
	const uint8_t *payload;
	size_t		   payload_len;
	bool		   closed;
} RpcOut;

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF): proto3 strings. */
static bool
utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len)
	{
		uint8_t c = s[i];
		size_t	n;
		uint8_t lo = 0x80, hi = 0xbf;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef)
		{
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;
			else if (c == 0xed)
				hi = 0x9f;
		}
		else if (c >= 0xf0 && c <= 0xf4)
		{
			n = 3;
			if (c == 0xf0)
				lo = 0x90;
			else if (c == 0xf4)
				hi = 0x8f;
		}
		else
			return false;
		if (len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++)
		{
			uint8_t b = s[i + k];

			if (k == 1 ? (b < lo || b > hi) : (b & 0xc0) != 0x80)
				return false;
		}
		i += n + 1;
	}
	return true;
}

bool
rpc_utf8_valid(const void *s, size_t len)
{
	return utf8_valid(s, len);
}

/* Length of the longest prefix of at most max bytes that ends on a character boundary. */
static size_t
utf8_cut(const uint8_t *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && (s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* Decodes a client frame into *fr. Returns the message type, or -1 when the frame is malformed
 * or of a type a client does not send. */
static int
frame_decode(const uint8_t *buf, size_t len, RpcFrame *fr)
{
	PbWireReader r = {buf, buf + len};
	PbWireField	 f;
	int			 rc;
	uint32_t	 type;

	memset(fr, 0, sizeof(*fr));

	/* pass 1: the whole frame is well-formed, and where the header is */
	while ((rc = pb_wire_next(&r, &f)) > 0)
	{
		if (f.number != F_MESSAGE_IDENTIFIER)
			continue;
		if (f.wire_type != PB_WIRE_I32)
			return -1;
		fr->id = f.fixed32;
	}
	if (rc < 0)
		return -1;

	type = RPC_TYPE(fr->id);
	if (type > RPC_SERVER_READY || client_fields[type][F_MESSAGE_IDENTIFIER] != FIELD(PB_WIRE_I32))
		return -1;

	/* pass 2: the fields of that message; the last occurrence of a field wins */
	r.p = buf;
	while ((rc = pb_wire_next(&r, &f)) > 0)
	{
		uint8_t want = f.number <= F_MAX ? client_fields[type][f.number] : 0;

		if (want == 0)
			continue;
		if (FIELD(f.wire_type) != want)
			return -1;
		switch (f.number)
		{
			case F_PORT_ID:
				fr->port_id = f.fixed32;
				break;
			case F_FOUR:
				if (want == FIELD(PB_WIRE_LEN))
				{
					if (!utf8_valid(f.data, f.len))
						return -1;
					fr->name = f.data;
					fr->name_len = f.len;
				}
				else
					fr->four = f.fixed32;
				break;
			case F_FIVE:
				fr->client_stream = f.fixed32;
				break;
			case F_PAYLOAD:
				fr->payload = f.data;
				fr->payload_len = f.len;
				break;
			case F_CLOSED:
				fr->closed = f.varint != 0;
				break;
			case F_ACK:
				fr->ack = f.varint != 0;
				break;
			default:
				break;
		}
	}
	if (rc < 0)
		return -1;
	return (int) type;
}

/* ---- wire writer */

static size_t
varint_size(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80)
	{
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *
put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80)
	{
		*p++ = (uint8_t) (v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t) v;
	return p;
}

/* All our field numbers are below 16: every tag is one byte. */
static uint8_t *
put_fixed32(uint8_t *p, uint32_t field, uint32_t v)
{
	if (v == 0)
		return p;
	*p++ = (uint8_t) (field << 3 | PB_WIRE_I32);
	p[0] = (uint8_t) v;
	p[1] = (uint8_t) (v >> 8);
	p[2] = (uint8_t) (v >> 16);
	p[3] = (uint8_t) (v >> 24);
	return p + 4;
}

static uint8_t *
put_bytes(uint8_t *p, uint32_t field, const void *data, size_t len)
{
	if (len == 0)
		return p;
	*p++ = (uint8_t) (field << 3 | PB_WIRE_LEN);
	p = put_varint(p, len);
	memcpy(p, data, len);
	return p + len;
}

static size_t
procedure_size(const RpcProcedure *proc)
{
	size_t name_len = strlen(proc->name);

	return 5 + 1 + varint_size(name_len) + name_len;
}

/* Upper bound of the encoded size of m; 0 on overflow. */
static size_t
out_size(const RpcModule *module, const RpcOut *m)
{
	size_t n = 5 + 5 + 5 + 2; /* identifier, field 2, sequence id, closed */

	if (m->procedures)
	{
		for (size_t i = 0; i < module->count; i++)
		{
			size_t one = procedure_size(&module->procedures[i]);

			n += 1 + varint_size(one) + one;
		}
	}
	if (m->error_len > SIZE_MAX / 4 || m->payload_len > SIZE_MAX / 4)
		return 0;
	return n + 1 + varint_size(m->error_len) + m->error_len + 1 + varint_size(m->payload_len) +
		   m->payload_len;
}

static uint8_t *
out_encode(uint8_t *p, const RpcModule *module, const RpcOut *m)
{
	p = put_fixed32(p, F_MESSAGE_IDENTIFIER, m->id);
	p = put_fixed32(p, F_PORT_ID, m->two);
	p = put_bytes(p, F_ERROR_MESSAGE, m->error_message, m->error_len);
	p = put_fixed32(p, F_FOUR, m->sequence_id);
	if (m->procedures)
	{
		for (size_t i = 0; i < module->count; i++)
		{
			const RpcProcedure *proc = &module->procedures[i];

			*p++ = (uint8_t) (F_FIVE << 3 | PB_WIRE_LEN);
			p = put_varint(p, procedure_size(proc));
			p = put_fixed32(p, F_PROCEDURE_ID, proc->id);
			p = put_bytes(p, F_PROCEDURE_NAME, proc->name, strlen(proc->name));
		}
	}
	p = put_bytes(p, F_PAYLOAD, m->payload, m->payload_len);
	if (m->closed)
	{
		*p++ = (uint8_t) (F_CLOSED << 3 | PB_WIRE_VARINT);
		*p++ = 1;
	}
	return p;
}

/* Encodes and sends one frame. -1 when it could not be sent; the session is then dead. */
static int
session_send(RpcSession *s, const RpcOut *m)
{
	uint8_t	 stack[RPC_STACK_FRAME];
	uint8_t *buf = stack;
	size_t	 cap = out_size(s->module, m);
	size_t	 len;
	int		 rc;

	if (s->dead)
		return -1;
	if (cap == 0)
		return -1;
	if (cap > sizeof(stack))
	{
		buf = malloc(cap);
		if (buf == NULL)
			return -1;
	}
	len = (size_t) (out_encode(buf, s->module, m) - buf);
	rc = s->hooks->send(s->ud, buf, len);
	if (buf != stack)
		free(buf);
	if (rc != 0)
	{
		s->dead = true;
		return -1;
	}
	return 0;
}

static int
send_remote_error(RpcSession *s, uint32_t msg_no, const char *message)
{
	RpcOut m = {.id = RPC_ID(RPC_REMOTE_ERROR_RESPONSE, msg_no),
				.error_message = message,
				.error_len = strlen(message)};

	return session_send(s, &m);
}

static int
send_stream_frame(RpcSession *s, const RpcStream *st, const uint8_t *payload, size_t len,
				  bool closed)
{
	RpcOut m = {.id = RPC_ID(RPC_STREAM_MESSAGE, st->msg_no),
				.two = st->port_id,
				.sequence_id = st->last_seq,
				.payload = payload,
				.payload_len = len,
				.closed = closed};

	return session_send(s, &m);
}

/* ---- bookkeeping */

/* Arrays grow lazily, doubling, never beyond their limit. Returns arr with room for one more
 * entry (possibly moved), or NULL at the limit or out of memory, arr then unchanged. */
static void *
array_reserve(void *arr, uint32_t *cap, uint32_t used, uint32_t max, size_t elem)
{
	uint32_t want;
	void	*grown;

	if (used < *cap)
		return arr;
	if (used >= max)
		return NULL;
	want = *cap ? *cap * 2 : 4;
	if (want > max || want < *cap)
		want = max;
	grown = realloc(arr, (size_t) want * elem);
	if (grown == NULL)
		return NULL;
	*cap = want;
	return grown;
}

static RpcPort *
port_find(RpcSession *s, uint32_t id)
{
	for (uint32_t i = 0; i < s->nports; i++)
		if (s->ports[i].id == id)
			return &s->ports[i];
	return NULL;
}

static RpcStream *
stream_find(const RpcSession *s, uint32_t msg_no, uint32_t *index)
{
	for (uint32_t i = 0; i < s->nstreams; i++)
	{
		if (s->streams[i]->msg_no == msg_no)
		{
			if (index)
				*index = i;
			return s->streams[i];
		}
	}
	return NULL;
}

static bool
pending_find(const RpcSession *s, uint32_t msg_no, uint32_t *index)
{
	for (uint32_t i = 0; i < s->npending; i++)
	{
		if (s->pending[i] == msg_no)
		{
			*index = i;
			return true;
		}
	}
	return false;
}

static void
stream_free(RpcStream *st)
{
	RpcElement *e = st->head;

	while (e)
	{
		RpcElement *next = e->next;

		free(e);
		e = next;
	}
	free(st);
}

/* Unlinks the stream at index and frees it. */
static void
stream_remove(RpcSession *s, uint32_t index)
{
	RpcStream *st = s->streams[index];

	s->streams[index] = s->streams[--s->nstreams];
	stream_free(st);
}

/* Sends what the stream may send now: the next queued element, or the closing frame of an
 * ended stream (which is then freed). Only when the client has acknowledged the last frame. */
static void
stream_pump(RpcSession *s, uint32_t index)
{
	RpcStream  *st = s->streams[index];
	RpcElement *e = st->head;

	if (st->awaiting_ack)
		return;
	if (e)
	{
		st->head = e->next;
		if (st->head == NULL)
			st->tail = NULL;
		st->queued--;
		st->last_seq++;
		st->awaiting_ack = true;
		(void) send_stream_frame(s, st, e->data, e->len, false);
		free(e);
	}
	else if (st->ended)
	{
		(void) send_stream_frame(s, st, NULL, 0, true);
		stream_remove(s, index);
	}
}

/* ---- client messages */

static void
on_create_port(RpcSession *s, uint32_t msg_no, const RpcFrame *fr)
{
	RpcPort *ports =
		array_reserve(s->ports, &s->cap_ports, s->nports, s->limits.max_ports, sizeof(RpcPort));
	RpcPort *port;
	uint32_t id;
	char	 message[96];

	if (ports == NULL)
	{
		snprintf(message, sizeof(message), "Cannot create port: too many ports (limit %u)",
				 s->limits.max_ports);
		(void) send_remote_error(s, msg_no, message);
		return;
	}
	s->ports = ports;

	/* ids are never 0 and never shared by two live ports, also once the counter wraps */
	do
	{
		id = s->next_port_id++;
	} while (id == 0 || port_find(s, id) != NULL);

	port = &s->ports[s->nports++];
	port->id = id;
	port->module_loaded = false;
	port->name_len = utf8_cut(fr->name, fr->name_len, sizeof(port->name));
	if (port->name_len)
		memcpy(port->name, fr->name, port->name_len);

	RpcOut m = {.id = RPC_ID(RPC_CREATE_PORT_RESPONSE, msg_no), .two = id};
	(void) session_send(s, &m);
}

static void
on_request_module(RpcSession *s, uint32_t msg_no, const RpcFrame *fr)
{
	RpcPort	   *port = port_find(s, fr->port_id);
	const char *module = fr->name ? (const char *) fr->name : "";
	char		message[RPC_NAME_MAX * 2 + 96];

	if (port == NULL)
	{
		snprintf(message, sizeof(message), "Cannot find port %u", fr->port_id);
		(void) send_remote_error(s, msg_no, message);
		return;
	}
	if (fr->name_len != strlen(s->module->name) ||
		memcmp(fr->name, s->module->name, fr->name_len) != 0)
	{
		/* the reference's text, doubled parenthesis included */
		snprintf(message, sizeof(message), "Module %.*s is not available for port %.*s (%u))",
				 (int) utf8_cut(fr->name, fr->name_len, RPC_NAME_MAX), module, (int) port->name_len,
				 port->name, port->id);
		(void) send_remote_error(s, msg_no, message);
		return;
	}

	/* loading it again answers the same list: it is the static module table */
	port->module_loaded = true;
	RpcOut m = {
		.id = RPC_ID(RPC_REQUEST_MODULE_RESPONSE, msg_no), .two = port->id, .procedures = true};
	(void) session_send(s, &m);
}

static void
open_stream(RpcSession *s, uint32_t msg_no, const RpcPort *port, const RpcProcedure *proc)
{
	RpcStream **streams = array_reserve(s->streams, &s->cap_streams, s->nstreams,
										s->limits.max_streams, sizeof(RpcStream *));
	RpcStream  *st = NULL;
	char		message[96];

	if (streams)
	{
		s->streams = streams;
		st = calloc(1, sizeof(*st));
	}
	if (st == NULL)
	{
		snprintf(message, sizeof(message), "Cannot open stream: too many open streams (limit %u)",
				 s->limits.max_streams);
		(void) send_remote_error(s, msg_no, message);
		return;
	}
	st->msg_no = msg_no;
	st->port_id = port->id;
	st->proc = proc;
	st->last_seq = 0;
	st->awaiting_ack = true;
	s->streams[s->nstreams++] = st;

	/* the offer must be the first frame answering msg_no; it carries no payload */
	if (send_stream_frame(s, st, NULL, 0, false) < 0)
	{
		stream_remove(s, s->nstreams - 1);
		return;
	}
	s->hooks->stream_open(s->ud, msg_no, proc);
}

static void
on_request(RpcSession *s, uint32_t msg_no, const RpcFrame *fr)
{
	RpcPort			   *port = port_find(s, fr->port_id);
	const RpcProcedure *proc;
	uint32_t			index;
	uint32_t		   *pending;
	char				message[RPC_NAME_MAX + 96];

	if (port == NULL)
	{
		(void) send_remote_error(s, msg_no, "invalid portId");
		return;
	}
	proc = port->module_loaded ? rpc_module_find(s->module, fr->four) : NULL;
	if (proc == NULL)
	{
		snprintf(message, sizeof(message), "procedureId %u is missing in %.*s (%u))", fr->four,
				 (int) port->name_len, port->name, port->id);
		(void) send_remote_error(s, msg_no, message);
		return;
	}
	if (fr->client_stream != 0)
	{
		snprintf(message, sizeof(message), "%s does not take a client stream", proc->name);
		(void) send_remote_error(s, msg_no, message);
		return;
	}
	if (pending_find(s, msg_no, &index) || stream_find(s, msg_no, NULL))
	{
		snprintf(message, sizeof(message), "message number %u is already in use", msg_no);
		(void) send_remote_error(s, msg_no, message);
		return;
	}

	if (proc->kind == RPC_SERVER_STREAM)
	{
		open_stream(s, msg_no, port, proc);
		return;
	}

	pending = array_reserve(s->pending, &s->cap_pending, s->npending, s->limits.max_pending_calls,
							sizeof(uint32_t));
	if (pending == NULL)
	{
		snprintf(message, sizeof(message), "Cannot call %s: too many pending calls (limit %u)",
				 proc->name, s->limits.max_pending_calls);
		(void) send_remote_error(s, msg_no, message);
		return;
	}
	/* registered first: the owner may answer from inside the hook */
	s->pending = pending;
	s->pending[s->npending++] = msg_no;
	s->hooks->call(s->ud, msg_no, proc, fr->payload, fr->payload_len);
}

static void
on_stream_frame(RpcSession *s, uint32_t msg_no, const RpcFrame *fr)
{
	uint32_t   index;
	RpcStream *st = stream_find(s, msg_no, &index);

	if (st == NULL)
		return;
	if (fr->closed)
	{
		/* client cancel, in place of the awaited ack or while idle */
		bool				notify = !st->ended;
		const RpcProcedure *proc = st->proc;

		stream_remove(s, index);
		if (notify)
			s->hooks->stream_closed(s->ud, msg_no, proc);
		return;
	}
	if (fr->ack && st->awaiting_ack && fr->four == st->last_seq)
	{
		st->awaiting_ack = false;
		stream_pump(s, index);
	}
}

static void
on_destroy_port(RpcSession *s, const RpcFrame *fr)
{
	RpcPort *port = port_find(s, fr->port_id);
	bool	 found;

	if (port == NULL)
		return;
	*port = s->ports[--s->nports];

	/* The hook may end or push to other streams, so the list is searched afresh each time. */
	do
	{
		found = false;
		for (uint32_t i = 0; i < s->nstreams; i++)
		{
			RpcStream *st = s->streams[i];

			if (st->port_id == fr->port_id)
			{
				uint32_t			msg_no = st->msg_no;
				bool				notify = !st->ended;
				const RpcProcedure *proc = st->proc;

				stream_remove(s, i);
				if (notify)
					s->hooks->stream_closed(s->ud, msg_no, proc);
				found = true;
				break;
			}
		}
	} while (found);
}

/* ---- public API */

const RpcProcedure *
rpc_module_find(const RpcModule *module, uint32_t id)
{
	if (id == 0 || id > module->count || module->procedures[id - 1].id != id)
		return NULL;
	return &module->procedures[id - 1];
}

RpcSession *
rpc_session_create(const RpcModule *module, const RpcHooks *hooks, void *ud,
				   const RpcLimits *limits)
{
	RpcSession *s;

	if (module == NULL || module->name == NULL || hooks == NULL || hooks->send == NULL ||
		hooks->call == NULL || hooks->stream_open == NULL || hooks->stream_closed == NULL)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->module = module;
	s->hooks = hooks;
	s->ud = ud;
	if (limits)
		s->limits = *limits;
	if (s->limits.max_ports == 0)
		s->limits.max_ports = RPC_DEFAULT_MAX_PORTS;
	if (s->limits.max_streams == 0)
		s->limits.max_streams = RPC_DEFAULT_MAX_STREAMS;
	if (s->limits.max_pending_calls == 0)
		s->limits.max_pending_calls = RPC_DEFAULT_MAX_PENDING_CALLS;
	if (s->limits.stream_buffer == 0)
		s->limits.stream_buffer = RPC_DEFAULT_STREAM_BUFFER;
	s->next_port_id = 1;
	return s;
}

void
rpc_session_destroy(RpcSession *s)
{
	if (s == NULL)
		return;
	for (uint32_t i = 0; i < s->nstreams; i++)
		stream_free(s->streams[i]);
	free(s->streams);
	free(s->ports);
	free(s->pending);
	free(s);
}

int
rpc_session_ready(RpcSession *s)
{
	RpcOut m = {.id = RPC_ID(RPC_SERVER_READY, 0)};

	if (s->ready_sent)
		return -1;
	s->ready_sent = true;
	return session_send(s, &m);
}

RpcInputStatus
rpc_session_input(RpcSession *s, const uint8_t *frame, size_t len)
{
	RpcFrame fr;
	int		 type = frame_decode(frame, len, &fr);
	uint32_t msg_no = RPC_NUMBER(fr.id);

	if (type < 0)
		return RPC_INPUT_MALFORMED;
	if (s->dead)
		return RPC_INPUT_OK;

	switch ((RpcMessageType) type)
	{
		case RPC_CREATE_PORT:
			on_create_port(s, msg_no, &fr);
			break;
		case RPC_REQUEST_MODULE:
			on_request_module(s, msg_no, &fr);
			break;
		case RPC_REQUEST:
			on_request(s, msg_no, &fr);
			break;
		case RPC_STREAM_MESSAGE:
		case RPC_STREAM_ACK:
			on_stream_frame(s, msg_no, &fr);
			break;
		case RPC_DESTROY_PORT:
			on_destroy_port(s, &fr);
			break;
		default:
			/* frame_decode admits client message types only */
			return RPC_INPUT_MALFORMED;
	}
	return RPC_INPUT_OK;
}

int
rpc_respond(RpcSession *s, uint32_t msg_no, const uint8_t *payload, size_t len)
{
	uint32_t index;
	RpcOut	 m = {.id = RPC_ID(RPC_RESPONSE, msg_no), .payload = payload, .payload_len = len};

	if (!pending_find(s, msg_no, &index))
		return -1;
	s->pending[index] = s->pending[--s->npending];
	return session_send(s, &m);
}

int
rpc_respond_error(RpcSession *s, uint32_t msg_no, const char *message)
{
	uint32_t index;

	if (!pending_find(s, msg_no, &index))
		return -1;
	s->pending[index] = s->pending[--s->npending];
	/* the reference's fallback text for an error without a message */
	return send_remote_error(s, msg_no,
							 message && *message ? message : "Error processing the request");
}

int
rpc_stream_push(RpcSession *s, uint32_t msg_no, const uint8_t *payload, size_t len)
{
	uint32_t	index;
	RpcStream  *st = stream_find(s, msg_no, &index);
	RpcElement *e;

	if (st == NULL || st->ended || s->dead)
		return -1;
	if (!st->awaiting_ack)
	{
		/* idle: the client asked for this element already */
		st->last_seq++;
		st->awaiting_ack = true;
		return send_stream_frame(s, st, payload, len, false);
	}
	if (st->queued >= s->limits.stream_buffer || len > SIZE_MAX - sizeof(*e))
		return -2;
	e = malloc(sizeof(*e) + len);
	if (e == NULL)
		return -2;
	e->next = NULL;
	e->len = len;
	if (len)
		memcpy(e->data, payload, len);
	if (st->tail)
		st->tail->next = e;
	else
		st->head = e;
	st->tail = e;
	st->queued++;
	return 0;
}

int
rpc_stream_end(RpcSession *s, uint32_t msg_no)
{
	uint32_t   index;
	RpcStream *st = stream_find(s, msg_no, &index);

	if (st == NULL || st->ended)
		return -1;
	st->ended = true;
	stream_pump(s, index);
	return 0;
}

uint32_t
rpc_session_stream_count(const RpcSession *s)
{
	return s->nstreams;
}
