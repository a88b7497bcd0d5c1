/*
 * rpc.h — one connection's @dcl/rpc session: a pure protocol engine, no I/O.
 *
 * Frames in (rpc_session_input), frames out (hooks->send), calls and streams surfaced through
 * hooks. Implements doc/rpc-wire.md: message numbers echoed, ports per session, one module
 * (RpcModule, handed in by the application) by name, RemoteError for unknown port / module /
 * procedure, server streams with the offer (seq 0) first and one element per client ACK, client
 * cancel in both positions, DestroyPort closing the port's streams. All functions run on the loop
 * thread.
 */
#ifndef SOCIALD_RPC_H
#define SOCIALD_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


typedef struct RpcSession RpcSession;

typedef enum RpcKind
{
	RPC_UNARY = 0,	   /* one Request, one Response */
	RPC_SERVER_STREAM, /* one Request, then stream elements the client acknowledges */
} RpcKind;

/* One procedure of a module. The engine reads id, name and kind; handler belongs to the
 * application (what it is depends on the application and the kind; NULL is allowed). */
typedef struct RpcProcedure
{
	uint32_t	id;	  /* 1.., the row's position in the module + 1 */
	const char *name; /* what clients look the procedure up by, byte for byte */
	RpcKind		kind;
	const void *handler;
} RpcProcedure;

/* The one module a session serves: procedures[i].id == i + 1. Borrowed by every session. */
typedef struct RpcModule
{
	const char		   *name; /* what RequestModule asks for */
	const RpcProcedure *procedures;
	size_t				count;
} RpcModule;

/* The procedure with this id, or NULL. */
const RpcProcedure *rpc_module_find(const RpcModule *module, uint32_t id);

typedef struct RpcHooks
{
	/* Write one binary frame (copied by the callee). Returns -1 when the connection cannot take
	 * it (it is being closed); the session then stops sending. */
	int (*send)(void *ud, const uint8_t *frame, size_t len);
	/* A unary Request for a known procedure. The owner answers later, exactly once, with
	 * rpc_respond() or rpc_respond_error() for msg_no. payload is valid during the call only. */
	void (*call)(void *ud, uint32_t msg_no, const RpcProcedure *proc, const uint8_t *payload,
				 size_t len);
	/* A server stream was opened (its offer is already sent). The owner pushes elements with
	 * rpc_stream_push() and may end it with rpc_stream_end(). */
	void (*stream_open)(void *ud, uint32_t msg_no, const RpcProcedure *proc);
	/* The client cancelled the stream, or destroyed its port. Not called for streams the server
	 * ended, nor from rpc_session_destroy(). */
	void (*stream_closed)(void *ud, uint32_t msg_no, const RpcProcedure *proc);
} RpcHooks;

typedef struct RpcLimits
{
	uint32_t max_ports;			/* CreatePort beyond this: RemoteError */
	uint32_t max_streams;		/* open streams per session; beyond: RemoteError */
	uint32_t max_pending_calls; /* unanswered unary calls; beyond: RemoteError */
	uint32_t stream_buffer;		/* queued, unacknowledged elements per stream */
} RpcLimits;

typedef enum RpcInputStatus
{
	RPC_INPUT_OK = 0,
	RPC_INPUT_MALFORMED, /* not a protobuf message / unknown type: close the socket */
} RpcInputStatus;

/* module, hooks and ud are borrowed and must outlive the session. NULL on bad arguments or
 * out of memory. */
RpcSession *rpc_session_create(const RpcModule *module, const RpcHooks *hooks, void *ud,
							   const RpcLimits *limits);
/* Frees everything; calls no hook. NULL is a no-op. */
void rpc_session_destroy(RpcSession *s);

/* Sends SERVER_READY (#0). Call once, right after authentication, before any input. */
int rpc_session_ready(RpcSession *s) __attribute__((warn_unused_result));

/* Processes one complete client frame. */
RpcInputStatus rpc_session_input(RpcSession *s, const uint8_t *frame, size_t len);

/* Unary answers. -1 when msg_no is not a pending call (e.g. answered already). */
int rpc_respond(RpcSession *s, uint32_t msg_no, const uint8_t *payload, size_t len);
int rpc_respond_error(RpcSession *s, uint32_t msg_no, const char *message);

/* Queues one stream element; it is sent as soon as the client has acknowledged the previous one.
 * 0 ok, -1 unknown or ended stream, -2 the stream's buffer is full (the caller decides: the
 * daemon closes the connection with 1011, a client that falls behind). */
int rpc_stream_push(RpcSession *s, uint32_t msg_no, const uint8_t *payload, size_t len);
/* Ends a stream from the server side (closed=true after any queued elements). */
int rpc_stream_end(RpcSession *s, uint32_t msg_no);

/* Counters for /status and tests. */
uint32_t rpc_session_stream_count(const RpcSession *s);

/* True when s[0..len) is strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF),
 * what proto3 requires of a string field. protobuf-c does not check it on unpack. */
bool rpc_utf8_valid(const void *s, size_t len);

/* Wire helpers shared with socialctl and the tests. */
#define RPC_TYPE(id) (((id) >> 27) & 0xFu)
#define RPC_NUMBER(id) ((id) &0x07FFFFFFu)
#define RPC_ID(type, number) \
	((((uint32_t) (type) &0xFu) << 27) | ((uint32_t) (number) &0x07FFFFFFu))

typedef enum RpcMessageType
{
	RPC_EMPTY = 0,
	RPC_REQUEST = 1,
	RPC_RESPONSE = 2,
	RPC_STREAM_MESSAGE = 3,
	RPC_STREAM_ACK = 4,
	RPC_CREATE_PORT = 5,
	RPC_CREATE_PORT_RESPONSE = 6,
	RPC_REQUEST_MODULE = 7,
	RPC_REQUEST_MODULE_RESPONSE = 8,
	RPC_REMOTE_ERROR_RESPONSE = 9,
	RPC_DESTROY_PORT = 10,
	RPC_SERVER_READY = 11
} RpcMessageType;

#endif /* SOCIALD_RPC_H */
