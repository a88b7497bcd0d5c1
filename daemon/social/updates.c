/*
 * updates.c — friendship and block updates, from the action log to the streams of this instance.
 *
 * The log is the truth, NOTIFY only rings the bell (extension/notify.c). The listener keeps one
 * cursor, a pg_snapshot in text form: social.events_since(cursor) returns exactly the events that
 * committed after the cursor was taken, in seq order, each row carrying next_cursor, the snapshot
 * the query ran with. Keeping next_cursor when rows came back (and the old cursor when none did)
 * delivers every committed event once: a late commit is in the old cursor's in-progress list, so
 * it comes with the first read after it commits, and nothing is read twice. So the catch-up after
 * a reconnect is the same query as the one after a notification.
 *
 * Doorbells coalesce. At most one query (the first cursor, or events_since) is in flight; a
 * notification or LISTEN (re)start arriving meanwhile only marks "again", and one more read runs
 * when the current one ends. A burst of N notifications costs at most two reads, and reads never
 * overlap, so two results can never race to move the cursor. A failed read keeps the cursor and
 * is retried by the next doorbell or by a backoff timer, whichever comes first, so a pool
 * connection that drops while the listener stays up does not hold events back until the next
 * change. The first cursor is taken when LISTEN first becomes active: what committed before that
 * belongs to no subscriber of this process.
 *
 * Routing (doc/social-service.md#streams). An event goes to its target only —
 * the actor never gets an echo (the log forbids actor = target): kind friendship to the target's
 * SubscribeToFriendshipUpdates streams (request with the requester's profile, created_at, message
 * and the friendship id; the other actions as their case with the actor's address), kind block to
 * the target's SubscribeToBlockUpdates streams (BlockUpdate{blocker, is_blocked}). Each element is
 * packed once per event and pushed to every matching stream: a user with several connections gets
 * it on each. A stream whose buffer is full closes its connection (1011 stream_overflow): a client
 * that does not read its updates is not buffered without bound.
 *
 * Subscriptions. One EventsConn per connection with at least one subscription, holding the
 * stream number of each kind (a second subscription of a kind on one connection is refused with
 * stream_closed{DUPLICATE_SUBSCRIPTION}, as the reference does). Every node sits in two chained
 * hash tables, by connection id (cancel, close) and by address (routing); it is freed as soon as
 * its last subscription ends or its connection closes, so memory follows the open streams. A
 * connection is never kept by pointer: routing looks it up by id and forgets what is gone.
 *
 * Everything runs on the loop thread.
 */
#include "social/updates.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/address.h"
#include "lib/backoff.h"
#include "lib/hashmap.h"
#include "main/log.h"
#include "main/metrics.h"
#include "social/social_pb.h"

typedef Decentraland__SocialService__V2__FriendshipUpdate PbFriendshipUpdate;
typedef Decentraland__SocialService__V2__BlockUpdate	  PbBlockUpdate;
typedef Decentraland__SocialService__V2__User			  PbUser;

typedef enum SubKind
{
	SUB_FRIENDSHIP = 0, /* SubscribeToFriendshipUpdates */
	SUB_BLOCK,			/* SubscribeToBlockUpdates */
	SUB_KIND_COUNT
} SubKind;

typedef struct EventsConn
{
	uint64_t	conn_id;
	char		address[ADDRESS_LEN + 1];
	bool		active[SUB_KIND_COUNT];
	uint32_t	msg_no[SUB_KIND_COUNT];
	HashmapLink id_link;   /* in ev.by_id */
	HashmapLink addr_link; /* in ev.by_addr */
} EventsConn;

/* One stream to push an event to, collected before pushing (a push can close a connection). */
typedef struct Target
{
	uint64_t conn_id;
	uint32_t msg_no;
} Target;

#define TABLE_MIN_BUCKETS 64

/* Retry delays for a failed read, ms; the last one repeats. A quarter of jitter is added. */
static const uint32_t	  retry_delays_ms[] = {250, 500, 1000, 2000, 5000, 10000};
static const BackoffTable retry_backoff =
	BACKOFF_TABLE(retry_delays_ms, BACKOFF_JITTER_ADD_QUARTER);

/* Columns of sql_events_since; the actor's profile (social_pb.h) starts at COL_ACTOR. */
enum
{
	COL_SEQ = 0,
	COL_KIND,
	COL_ACTION,
	COL_TARGET,
	COL_FRIENDSHIP_ID,
	COL_MESSAGE,
	COL_TIMESTAMP,
	COL_NEXT_CURSOR,
	COL_ACTOR,
	COL_COUNT = COL_ACTOR + SOCIAL_PB_PROFILE_COLUMNS
};

static const char sql_events_cursor[] = "SELECT social.events_cursor()::text";

/* Profiles only for requests, the one update that carries a profile; one statement. */
static const char sql_events_since[] =
	"WITH e AS (SELECT * FROM social.events_since($1::pg_snapshot)) "
	"SELECT e.seq, e.kind, e.action, e.target, e.friendship_id::text, e.message, "
	"floor(extract(epoch FROM e.\"timestamp\") * 1000)::bigint, e.next_cursor::text, "
	"e.actor, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3] "
	"FROM e LEFT JOIN social.get_profiles(ARRAY(SELECT DISTINCT q.actor FROM e q "
	"WHERE q.kind = 'friendship' AND q.action = 'request')) p "
	"ON e.kind = 'friendship' AND e.action = 'request' AND p.address = e.actor "
	"ORDER BY e.seq";

/* ---- Subscription tables: one node per connection with a subscription, by id and by address */

/* lib/hashmap's callbacks for the two tables (fanout.c has the same two-liners for its own
 * entry types). */
static size_t
node_id_hash(const HashmapLink *l)
{
	return hashmap_hash_u64(HASHMAP_ENTRY(l, EventsConn, id_link)->conn_id);
}

static size_t
node_addr_hash(const HashmapLink *l)
{
	return hashmap_hash_str(HASHMAP_ENTRY(l, EventsConn, addr_link)->address);
}

static struct
{
	PgPool		  *pg;		 /* borrowed */
	UpdatesEventFn on_event; /* may be NULL */
	bool		   shutdown;
	char		  *cursor;	  /* malloc'd pg_snapshot text; NULL until the first is read */
	bool		   in_flight; /* a cursor or events query is running */
	bool		   again;	  /* a doorbell rang while it ran */
	uint64_t	   last_seq;  /* of the last event read */
	uv_timer_t	   retry;
	bool		   retry_ready; /* retry initialized */
	unsigned	   retry_attempt;
	Hashmap		   by_id;	/* EventsConn by conn_id */
	Hashmap		   by_addr; /* EventsConn by address */
	uint64_t	   subscriptions;
	Target		  *targets; /* scratch for one delivery */
	size_t		   targets_cap;
} ev = {
	.by_id = HASHMAP_INIT(TABLE_MIN_BUCKETS, node_id_hash),
	.by_addr = HASHMAP_INIT(TABLE_MIN_BUCKETS, node_addr_hash),
};

static void catch_up(void);

static EventsConn *
node_find(uint64_t conn_id)
{
	for (HashmapLink *l = hashmap_chain(&ev.by_id, hashmap_hash_u64(conn_id)); l; l = l->next)
		if (HASHMAP_ENTRY(l, EventsConn, id_link)->conn_id == conn_id)
			return HASHMAP_ENTRY(l, EventsConn, id_link);
	return NULL;
}

/* A new node for a connection; NULL when out of memory. */
static EventsConn *
node_add(uint64_t conn_id, const char *address)
{
	EventsConn *e;

	if (!hashmap_reserve(&ev.by_id) || !hashmap_reserve(&ev.by_addr))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->conn_id = conn_id;
	strncpy(e->address, address, sizeof(e->address) - 1);
	hashmap_insert(&ev.by_id, &e->id_link);
	hashmap_insert(&ev.by_addr, &e->addr_link);
	return e;
}

static void
node_remove(EventsConn *e)
{
	hashmap_remove(&ev.by_id, &e->id_link);
	hashmap_remove(&ev.by_addr, &e->addr_link);
	for (int k = 0; k < SUB_KIND_COUNT; k++)
		if (e->active[k])
			ev.subscriptions--;
	free(e);
}

/* Ends one subscription's bookkeeping; frees the node when it was the last. */
static void
sub_drop(EventsConn *e, SubKind kind)
{
	if (!e->active[kind])
		return;
	e->active[kind] = false;
	ev.subscriptions--;
	for (int k = 0; k < SUB_KIND_COUNT; k++)
		if (e->active[k])
			return;
	node_remove(e);
}

/* The streams of kind held by address, into ev.targets; the count, or -1 out of memory. */
static int
collect_targets(const char *address, SubKind kind, size_t *n)
{
	*n = 0;
	for (HashmapLink *l = hashmap_chain(&ev.by_addr, hashmap_hash_str(address)); l; l = l->next)
	{
		const EventsConn *e = HASHMAP_ENTRY(l, EventsConn, addr_link);

		if (!e->active[kind] || strcmp(e->address, address) != 0)
			continue;
		if (*n == ev.targets_cap)
		{
			size_t	cap = ev.targets_cap ? ev.targets_cap * 2 : 8;
			Target *t = realloc(ev.targets, cap * sizeof(*t));

			if (t == NULL)
				return -1;
			ev.targets = t;
			ev.targets_cap = cap;
		}
		ev.targets[*n].conn_id = e->conn_id;
		ev.targets[*n].msg_no = e->msg_no[kind];
		(*n)++;
	}
	return 0;
}

/* ---- Delivery */

/* Pushes one packed element to the stream; handles a gone connection, an ended stream and a
 * full buffer. */
static void
push_element(uint64_t conn_id, uint32_t msg_no, SubKind kind, const uint8_t *buf, size_t len)
{
	Conn	   *c = conn_lookup(conn_id);
	RpcSession *rpc = c ? conn_rpc(c) : NULL;
	EventsConn *e;
	int			rc;

	if (rpc == NULL)
	{
		/* closing: updates_conn_closed will follow, but nothing more goes to it */
		e = node_find(conn_id);
		if (e)
			node_remove(e);
		return;
	}
	rc = rpc_stream_push(rpc, msg_no, buf, len);
	if (rc == 0)
	{
		metrics_count(M_STREAM_EVENTS, 1);
		return;
	}
	e = node_find(conn_id);
	if (rc == -2)
	{
		log_conn(LOG_LEVEL_WARN, conn_id, conn_address(c),
				 "stream %u does not read its updates: closing", msg_no);
		if (e)
			node_remove(e);
		conn_close(c, CONN_CLOSE_STREAM_OVERFLOW, NULL);
		return;
	}
	/* -1: the stream ended without us hearing of it; forget it */
	if (e && e->active[kind] && e->msg_no[kind] == msg_no)
		sub_drop(e, kind);
}

static void
deliver(const char *target, SubKind kind, const ProtobufCMessage *m)
{
	uint8_t *buf;
	size_t	 len = 0;
	size_t	 n;

	if (collect_targets(target, kind, &n) != 0)
	{
		log_error("events: out of memory routing an update to %s", target);
		return;
	}
	if (n == 0)
		return;
	buf = social_pb_pack(m, &len);
	if (buf == NULL)
	{
		log_error("events: out of memory packing an update to %s", target);
		return;
	}
	for (size_t i = 0; i < n; i++)
		push_element(ev.targets[i].conn_id, ev.targets[i].msg_no, kind, buf, len);
	free(buf);
}

/* True when someone here listens for kind on address: most events are for users elsewhere. */
static bool
has_subscribers(const char *address, SubKind kind)
{
	for (HashmapLink *l = hashmap_chain(&ev.by_addr, hashmap_hash_str(address)); l; l = l->next)
	{
		const EventsConn *e = HASHMAP_ENTRY(l, EventsConn, addr_link);

		if (e->active[kind] && strcmp(e->address, address) == 0)
			return true;
	}
	return false;
}

/* The friendship actions whose update carries the other user alone ({User user = 1}): the
 * action is the name of its FriendshipUpdate field. */
static const char *const user_only_actions[] = {"accept", "reject", "delete", "cancel", "block"};

static void
route_friendship(const PGresult *res, int row, const char *action, const char *target)
{
	PbFriendshipUpdate u = DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__INIT;
	Decentraland__SocialService__V2__FriendshipUpdate__RequestResponse request =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__REQUEST_RESPONSE__INIT;
	union
	{
		ProtobufCMessage												  base;
		Decentraland__SocialService__V2__FriendshipUpdate__AcceptResponse accept;
		Decentraland__SocialService__V2__FriendshipUpdate__RejectResponse reject;
		Decentraland__SocialService__V2__FriendshipUpdate__DeleteResponse delete_;
		Decentraland__SocialService__V2__FriendshipUpdate__CancelResponse cancel;
		Decentraland__SocialService__V2__FriendshipUpdate__BlockResponse  block;
	} only_user;
	PbUser		  user = DECENTRALAND__SOCIAL_SERVICE__V2__USER__INIT;
	SocialProfile profile;
	bool		  known = false;

	if (!has_subscribers(target, SUB_FRIENDSHIP))
		return;
	user.address = social_pb_text(res, row, COL_ACTOR);
	if (strcmp(action, "request") == 0)
	{
		social_pb_profile(&profile, res, row, COL_ACTOR);
		request.friend_ = &profile.msg;
		request.created_at = social_pb_int64(res, row, COL_TIMESTAMP);
		request.id = social_pb_text(res, row, COL_FRIENDSHIP_ID);
		/* Like the reference: the message only when the request had one. */
		if (!PQgetisnull(res, row, COL_MESSAGE))
		{
			request._message_case =
				DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__REQUEST_RESPONSE___MESSAGE_MESSAGE;
			request.message = PQgetvalue(res, row, COL_MESSAGE);
		}
		u.update_case = DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__UPDATE_REQUEST;
		u.request = &request;
		known = true;
	}
	for (size_t i = 0; !known && i < sizeof(user_only_actions) / sizeof(user_only_actions[0]); i++)
	{
		const ProtobufCFieldDescriptor	 *f;
		const ProtobufCMessageDescriptor *d;

		if (strcmp(action, user_only_actions[i]) != 0)
			continue;
		f = protobuf_c_message_descriptor_get_field_by_name(u.base.descriptor, action);
		d = f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
		if (d == NULL || d->sizeof_message > sizeof(only_user))
			break;
		d->message_init(&only_user.base);
		known = social_pb_set_message(&only_user.base, "user", &user.base) == 0 &&
				social_pb_set_message(&u.base, action, &only_user.base) == 0;
	}
	if (!known)
	{
		log_warn("events: unknown friendship action \"%s\" skipped", action);
		return;
	}
	deliver(target, SUB_FRIENDSHIP, &u.base);
}

static void
route_block(const PGresult *res, int row, const char *action, const char *target)
{
	PbBlockUpdate u = DECENTRALAND__SOCIAL_SERVICE__V2__BLOCK_UPDATE__INIT;

	if (strcmp(action, "block") != 0 && strcmp(action, "unblock") != 0)
	{
		log_warn("events: unknown block action \"%s\" skipped", action);
		return;
	}
	if (!has_subscribers(target, SUB_BLOCK))
		return;
	u.address = social_pb_text(res, row, COL_ACTOR);
	u.is_blocked = strcmp(action, "block") == 0;
	deliver(target, SUB_BLOCK, &u.base);
}

/* ---- Reading the log */

static void
retry_fire(uv_timer_t *t)
{
	/* loop thread */
	catch_up();
}

/* A read failed: the next doorbell or this timer, whichever comes first, runs it again. */
static void
retry_schedule(void)
{
	uint64_t delay = backoff_delay_ms(&retry_backoff, ev.retry_attempt, uv_hrtime());

	if (ev.shutdown)
		return;
	if (!ev.retry_ready)
	{
		/* pg_pool_create was given the default loop (sociald.c, doc/event-loop.md) */
		if (uv_timer_init(uv_default_loop(), &ev.retry) != 0)
			return;
		ev.retry_ready = true;
	}
	ev.retry_attempt++;
	if (uv_timer_start(&ev.retry, retry_fire, delay, 0) != 0)
		log_warn("events: cannot schedule a retry");
}

/* A read ended. After a failure the retry timer runs the next one (a doorbell may come first):
 * an immediate retry would most likely fail the same way. */
static void
read_done(bool ok)
{
	ev.in_flight = false;
	if (!ok)
	{
		retry_schedule();
		return;
	}
	ev.retry_attempt = 0;
	if (ev.retry_ready)
		uv_timer_stop(&ev.retry);
	if (ev.again && !ev.shutdown)
		catch_up();
}

/* pg_pool callback, loop thread. */
static void
on_cursor(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	char *cursor;

	if (ev.shutdown)
		return;
	if (sqlstate != NULL || res == NULL || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
	{
		log_warn("events: cannot read the first cursor: %s %s", sqlstate ? sqlstate : "",
				 message ? message : "unexpected result");
		read_done(false);
		return;
	}
	cursor = strdup(PQgetvalue(res, 0, 0));
	if (cursor == NULL)
	{
		log_error("events: out of memory keeping the cursor");
		read_done(false);
		return;
	}
	free(ev.cursor);
	ev.cursor = cursor;
	log_info("events: listening from cursor %s", ev.cursor);
	read_done(true);
}

/* pg_pool callback, loop thread. */
static void
on_events(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	int	  n;
	char *cursor;

	if (ev.shutdown)
		return;
	if (sqlstate != NULL || res == NULL || PQnfields(res) < COL_COUNT)
	{
		log_warn("events: catch-up failed: %s %s", sqlstate ? sqlstate : "",
				 message ? message : "unexpected result");
		read_done(false);
		return;
	}
	n = PQntuples(res);
	if (n == 0)
	{
		read_done(true);
		return;
	}
	/* Move the cursor first: a row that cannot be delivered is not read again. */
	cursor = strdup(social_pb_text(res, n - 1, COL_NEXT_CURSOR));
	if (cursor == NULL)
	{
		log_error("events: out of memory keeping the cursor");
		read_done(false);
		return;
	}
	free(ev.cursor);
	ev.cursor = cursor;
	metrics_count(M_EVENTS_RECEIVED, (uint64_t) n);
	for (int i = 0; i < n; i++)
	{
		const char *kind = social_pb_text(res, i, COL_KIND);
		const char *action = social_pb_text(res, i, COL_ACTION);
		const char *target = social_pb_text(res, i, COL_TARGET);

		ev.last_seq = (uint64_t) social_pb_int64(res, i, COL_SEQ);
		log_debug("events: seq %llu %s %s %s -> %s", (unsigned long long) ev.last_seq, kind, action,
				  social_pb_text(res, i, COL_ACTOR), target);
		if (strcmp(kind, "friendship") == 0)
			route_friendship(res, i, action, target);
		else if (strcmp(kind, "block") == 0)
			route_block(res, i, action, target);
		else
			log_warn("events: unknown event kind \"%s\" skipped", kind);
		/* Accepts, deletes and blocks change who watches whom (presence's fan-out index). */
		if (ev.on_event != NULL)
			ev.on_event(kind, action, social_pb_text(res, i, COL_ACTOR), target);
	}
	read_done(true);
}

/* The doorbell: one read in flight at a time, one more if it rang meanwhile. */
static void
catch_up(void)
{
	int rc;

	if (ev.shutdown || ev.pg == NULL)
		return;
	if (ev.in_flight)
	{
		ev.again = true;
		return;
	}
	ev.again = false;
	ev.in_flight = true;
	if (ev.cursor == NULL)
		rc = pg_pool_query(ev.pg, sql_events_cursor, 0, NULL, on_cursor, NULL);
	else
	{
		const char *params[1] = {ev.cursor};

		rc = pg_pool_query(ev.pg, sql_events_since, 1, params, on_events, NULL);
	}
	if (rc != 0)
	{
		log_warn("events: cannot queue the catch-up query");
		ev.in_flight = false;
		retry_schedule();
	}
}

/* pg_pool listen hooks, loop thread. */
static void
on_listen_ready(void *ud)
{
	log_info("events: LISTEN active, catching up");
	catch_up();
}

static void
on_listen_notify(void *ud, const char *payload)
{
	/* The payload names the event, but the log is read for it: a doorbell, nothing more. */
	catch_up();
}

static void
on_listen_lost(void *ud)
{
	log_warn("events: LISTEN lost; catching up from the log once it is back");
}

static const PgPoolListenHooks listen_hooks = {
	.ready = on_listen_ready,
	.notify = on_listen_notify,
	.lost = on_listen_lost,
};

/* ---- Entry points */

int
updates_init(PgPool *pg, UpdatesEventFn on_event)
{
	if (pg == NULL)
	{
		log_error("updates: no PostgreSQL pool");
		return -1;
	}
	ev.pg = pg;
	ev.on_event = on_event;
	ev.shutdown = false;
	pg_pool_set_listen_hooks(pg, &listen_hooks, NULL);
	return 0;
}

static void
stream_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc, SubKind kind)
{
	RpcSession *rpc = conn_rpc(c);
	const char *address = conn_address(c);
	EventsConn *e;

	if (rpc == NULL)
		return;
	if (!address_valid(address))
	{
		/* Streams exist only after authentication; refuse anything else plainly. */
		if (rpc_stream_end(rpc, msg_no) != 0)
			log_conn(LOG_LEVEL_DEBUG, conn_id(c), address, "%s: stream %u already ended",
					 proc->name, msg_no);
		return;
	}
	e = node_find(conn_id(c));
	if (e != NULL && e->active[kind])
	{
		log_conn(LOG_LEVEL_DEBUG, conn_id(c), address, "%s: duplicate subscription refused",
				 proc->name);
		/* One stream_closed{DUPLICATE_SUBSCRIPTION} element, then the end: the client learns
		 * why its stream ended. */
		social_pb_refuse_duplicate(
			rpc, msg_no,
			kind == SUB_FRIENDSHIP
				? &decentraland__social_service__v2__friendship_update__descriptor
				: &decentraland__social_service__v2__block_update__descriptor,
			"events");
		return;
	}
	if (e == NULL)
		e = node_add(conn_id(c), address);
	if (e == NULL)
	{
		log_conn(LOG_LEVEL_ERROR, conn_id(c), address, "%s: out of memory, stream ended",
				 proc->name);
		if (rpc_stream_end(rpc, msg_no) != 0)
			log_conn(LOG_LEVEL_DEBUG, conn_id(c), address, "%s: stream %u already ended",
					 proc->name, msg_no);
		return;
	}
	e->active[kind] = true;
	e->msg_no[kind] = msg_no;
	ev.subscriptions++;
}

static void
stream_closed(Conn *c, uint32_t msg_no, SubKind kind)
{
	EventsConn *e = node_find(conn_id(c));

	if (e != NULL && e->active[kind] && e->msg_no[kind] == msg_no)
		sub_drop(e, kind);
}

/* The door's stream callbacks carry no argument: each kind has its own four one-line entries. */
static void
friendship_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	stream_open(c, msg_no, proc, SUB_FRIENDSHIP);
}

static void
friendship_closed(Conn *c, uint32_t msg_no)
{
	stream_closed(c, msg_no, SUB_FRIENDSHIP);
}

static void
block_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	stream_open(c, msg_no, proc, SUB_BLOCK);
}

static void
block_closed(Conn *c, uint32_t msg_no)
{
	stream_closed(c, msg_no, SUB_BLOCK);
}

const ServiceStream updates_friendship_stream = {.open = friendship_open,
												 .closed = friendship_closed};
const ServiceStream updates_block_stream = {.open = block_open, .closed = block_closed};

void
updates_conn_closed(Conn *c)
{
	EventsConn *e = node_find(conn_id(c));

	if (e != NULL)
		node_remove(e);
}

uint64_t
updates_subscription_count(void)
{
	return ev.subscriptions;
}

void
updates_shutdown(void)
{
	ev.shutdown = true;
	for (HashmapLink *l; (l = hashmap_pop(&ev.by_id)) != NULL;)
		free(HASHMAP_ENTRY(l, EventsConn, id_link));
	hashmap_free(&ev.by_id);
	hashmap_free(&ev.by_addr);
	ev.subscriptions = 0;
	free(ev.targets);
	ev.targets = NULL;
	ev.targets_cap = 0;
	free(ev.cursor);
	ev.cursor = NULL;
	if (ev.retry_ready)
	{
		/* a static handle: nothing to free in the close callback */
		uv_timer_stop(&ev.retry);
		uv_close((uv_handle_t *) &ev.retry, NULL);
		ev.retry_ready = false;
	}
}
