/*
 * fanout.c — the local half of presence: who here watches whom, and what each stream
 * was told.
 *
 * Three kinds of nodes, all owned here:
 *   IxUser    one per address this instance cares about: the friend of a local stream, the
 *             owner of one, or a user with local sockets. It holds the latest status known
 *             (online, version, and whether that is current), the cached profile, and two
 *             lists: the edges watching it and the streams it owns. Freed as soon as it is
 *             none of the three.
 *   IxStream  one open SubscribeToFriendConnectivityUpdates stream (one per connection: a
 *             second is refused like the other streams). Found by connection id.
 *   IxEdge    "stream S watches friend F", in F's watchers and in S's edges, with what S was
 *             last told about F (told_online; nothing told reads as offline).
 * A status change is one hash lookup of the address and a walk over its watchers: no SQL.
 *
 * A stream moves LOADING -> READING -> LIVE:
 *   LOADING  one query loads the friends with their profiles (friend_addresses already hides
 *            blocked pairs). Friendship events that arrive meanwhile are queued on the stream
 *            and replayed on the result in log order, so the result's snapshot time does not
 *            matter: an accept or delete committed before it is a no-op on replay, one
 *            committed after it is applied. Too many queued events: the load runs again.
 *   READING  the friends whose status is not known to be current are read from Redis (one
 *            script per 1,000). Meanwhile news from the channel is applied to the users, so
 *            nothing is missed, but not pushed to this stream.
 *   LIVE     once every friend's status is current: ONLINE for each online friend, and from
 *            then on every change is pushed as it is applied.
 * No gap: a flip published after a read ran has a higher version and arrives on the channel;
 * one published before is in the read. No duplicate: a user's news is applied only when its
 * version is newer than what is known, and an edge is pushed only what it was not told.
 *
 * Redis down (fanout_stale): every status stops being current and streams keep what
 * they were told. Redis up (fanout_resync): every watched address whose status is not
 * current is read again; each read applies only what changed, so a live stream gets OFFLINE
 * for friends who left meanwhile, ONLINE for those who came, and nothing for the others. A
 * failed read leaves the flag for the tick to retry.
 *
 * Pushing can end a stream (its connection went away, or its buffer is full: 1011) and that
 * frees its edges, so pushes happen after a walk, from a list of (connection id, serial).
 *
 * Everything runs on the loop thread.
 */
#include "presence/fanout.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "door/conn.h"
#include "lib/address.h"
#include "lib/backoff.h"
#include "lib/hashmap.h"
#include "main/log.h"
#include "main/metrics.h"
#include "social/social_pb.h"

typedef Decentraland__SocialService__V2__FriendConnectivityUpdate PbConnectivityUpdate;

/* Friends loaded per stream; beyond, the first ones by address. */
#define MAX_FRIENDS 50000
#define MAX_FRIENDS_TEXT "50000"
/* Friendship events queued on a stream whose friends are loading; beyond, it loads again. */
#define MAX_PENDING_OPS 256
/* Addresses per status read. */
#define READ_CHUNK 1000
#define TABLE_MIN_BUCKETS 64

/* Retry delays for a failed friend load, ms; the last one repeats; a quarter of jitter. */
static const uint32_t	  load_retry_ms[] = {250, 500, 1000, 2000, 5000, 10000};
static const BackoffTable load_retry = BACKOFF_TABLE(load_retry_ms, BACKOFF_JITTER_ADD_QUARTER);

/* One statement: every friend with the profile columns of social_pb.h. */
static const char sql_friends[] =
	"SELECT p.address, p.name, p.has_claimed_name, p.profile_picture_url, "
	"p.name_color[1], p.name_color[2], p.name_color[3] "
	"FROM social.get_profiles(ARRAY(SELECT f FROM social.friend_addresses($1) AS f "
	"LIMIT $2::integer)) AS p";

typedef struct IxUser	IxUser;
typedef struct IxStream IxStream;
typedef struct IxEdge	IxEdge;

struct IxUser
{
	char		address[ADDRESS_LEN + 1];
	HashmapLink link;	  /* in ix.users, by address */
	IxEdge	   *watchers; /* edges whose friend is this user */
	IxStream   *owned;	  /* this user's local streams */
	uint32_t	sockets;  /* authenticated local connections */
	bool		known;	  /* online and version are current */
	bool		online;
	uint64_t	version;
	bool		has_profile;
	bool		has_claimed_name;
	bool		has_color;
	float		color[3];
	char	   *name;	 /* owned; NULL without a profile */
	char	   *picture; /* owned; NULL without a profile */
};

struct IxEdge
{
	IxStream *stream;
	IxUser	 *friend_;
	IxEdge	 *w_prev, *w_next; /* friend_->watchers */
	IxEdge	 *s_prev, *s_next; /* stream->edges */
	bool	  told_online;
};

typedef enum IxState
{
	IX_LOADING = 0,
	IX_READING,
	IX_LIVE
} IxState;

typedef struct IxOp
{
	bool add;
	char friend_[ADDRESS_LEN + 1];
} IxOp;

struct IxStream
{
	uint64_t	serial; /* process-unique: tells a reused slot from the stream a job was for */
	uint64_t	conn_id;
	uint32_t	msg_no;
	IxUser	   *owner;
	HashmapLink id_link;			 /* in ix.streams, by conn_id */
	IxStream   *own_prev, *own_next; /* owner->owned */
	IxEdge	   *edges;
	size_t		nedges;
	IxState		state;
	bool		loading; /* the friends query is in flight */
	bool		reload;	 /* queued events overflowed: load again */
	unsigned	attempts;
	uint64_t	retry_at; /* uv_now ms before which a failed load is not retried */
	uint32_t	reads;	  /* status reads in flight */
	IxOp	   *ops;	  /* queued while loading */
	size_t		nops;
};

/* A stream to push to, collected before pushing; also the ud of a stream's queries. */
typedef struct IxTarget
{
	uint64_t conn_id;
	uint64_t serial;
} IxTarget;

static struct
{
	FanoutReadFn read; /* presence's status reader */
	bool		 active;
	PgPool		*pg;	  /* borrowed */
	Hashmap		 users;	  /* IxUser by address */
	Hashmap		 streams; /* IxStream by conn_id */
	uint64_t	 next_serial;
	bool		 resync_needed;	  /* some watched user's status may not be current */
	uint32_t	 resync_reads;	  /* resync reads in flight */
	uint64_t	 failures;		  /* reads that failed, ever */
	uint64_t	 resync_failures; /* ... when the running resync began */
	IxTarget	*targets;		  /* scratch for one delivery */
	size_t		 targets_cap;
} ix;

static void stream_read(IxStream *s);
static void ix_stream_free(IxStream *s);

/* ---- Hash tables: lib/hashmap asks each table for the hash of its own entry type's key, so
 * every table has a two-line callback like these (updates.c has its own). */

static size_t
user_hash(const HashmapLink *l)
{
	return hashmap_hash_str(HASHMAP_ENTRY(l, IxUser, link)->address);
}

static size_t
stream_hash(const HashmapLink *l)
{
	return hashmap_hash_u64(HASHMAP_ENTRY(l, IxStream, id_link)->conn_id);
}

/* ---- Users */

static IxUser *
user_find(const char *address)
{
	if (!ix.active)
		return NULL;
	for (HashmapLink *l = hashmap_chain(&ix.users, hashmap_hash_str(address)); l; l = l->next)
		if (strcmp(HASHMAP_ENTRY(l, IxUser, link)->address, address) == 0)
			return HASHMAP_ENTRY(l, IxUser, link);
	return NULL;
}

/* The user, created when missing; NULL when out of memory. address must be valid. */
static IxUser *
user_get(const char *address)
{
	IxUser *u = user_find(address);

	if (u != NULL || !ix.active)
		return u;
	(void) hashmap_reserve(&ix.users); /* has buckets since fanout_init */
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	memcpy(u->address, address, ADDRESS_LEN);
	hashmap_insert(&ix.users, &u->link);
	return u;
}

static void
user_free_profile(IxUser *u)
{
	free(u->name);
	free(u->picture);
	u->name = u->picture = NULL;
	u->has_profile = false;
}

/* Frees the user when nothing refers to it any more. */
static void
user_release(IxUser *u)
{
	if (u == NULL || u->watchers != NULL || u->owned != NULL || u->sockets > 0)
		return;
	hashmap_remove(&ix.users, &u->link);
	user_free_profile(u);
	free(u);
}

/* Keeps the profile columns of row (social_pb.h) for the user's updates. */
static void
user_set_profile(IxUser *u, const PGresult *res, int row)
{
	SocialProfile p;
	char		 *name;
	char		 *picture;

	social_pb_profile(&p, res, row, 0);
	name = strdup(p.msg.name);
	picture = strdup(p.msg.profile_picture_url);
	if (name == NULL || picture == NULL)
	{
		/* the address alone is still a valid profile */
		free(name);
		free(picture);
		return;
	}
	user_free_profile(u);
	u->name = name;
	u->picture = picture;
	u->has_claimed_name = p.msg.has_claimed_name;
	u->has_color = p.msg._name_color_case ==
				   DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE___NAME_COLOR_NAME_COLOR;
	if (u->has_color)
	{
		u->color[0] = p.color.r;
		u->color[1] = p.color.g;
		u->color[2] = p.color.b;
	}
	u->has_profile = true;
}

/* FriendConnectivityUpdate{friend: the cached profile (the address alone when none), status},
 * packed into a malloc'd buffer; NULL when out of memory. */
static uint8_t *
pack_update(const IxUser *u, bool online, size_t *len)
{
	PbConnectivityUpdate m = DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_CONNECTIVITY_UPDATE__INIT;
	PbFriendProfile		 p = DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE__INIT;
	PbColor3			 color = DECENTRALAND__COMMON__COLOR3__INIT;

	p.address = (char *) u->address;
	if (u->has_profile)
	{
		p.name = u->name;
		p.has_claimed_name = u->has_claimed_name;
		p.profile_picture_url = u->picture;
		if (u->has_color)
		{
			color.r = u->color[0];
			color.g = u->color[1];
			color.b = u->color[2];
			p._name_color_case =
				DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE___NAME_COLOR_NAME_COLOR;
			p.name_color = &color;
		}
	}
	m.friend_ = &p;
	m.status = online ? DECENTRALAND__SOCIAL_SERVICE__V2__CONNECTIVITY_STATUS__ONLINE
					  : DECENTRALAND__SOCIAL_SERVICE__V2__CONNECTIVITY_STATUS__OFFLINE;
	return social_pb_pack(&m.base, len);
}

/* ---- Streams and edges */

static IxStream *
ix_stream_find(uint64_t conn_id)
{
	if (!ix.active)
		return NULL;
	for (HashmapLink *l = hashmap_chain(&ix.streams, hashmap_hash_u64(conn_id)); l; l = l->next)
		if (HASHMAP_ENTRY(l, IxStream, id_link)->conn_id == conn_id)
			return HASHMAP_ENTRY(l, IxStream, id_link);
	return NULL;
}

/* The stream a job or target was for, or NULL when it has ended since. */
static IxStream *
stream_lookup(const IxTarget *t)
{
	IxStream *s = ix_stream_find(t->conn_id);

	return s != NULL && s->serial == t->serial ? s : NULL;
}

/* Adds "s watches u"; with check, an existing edge is returned instead of a second one. NULL
 * for oneself, beyond MAX_FRIENDS or out of memory. */
static IxEdge *
edge_add(IxStream *s, IxUser *u, bool check)
{
	IxEdge *e;

	if (u == s->owner)
		return NULL;
	if (check)
		for (e = u->watchers; e; e = e->w_next)
			if (e->stream == s)
				return e;
	if (s->nedges >= MAX_FRIENDS || (e = calloc(1, sizeof(*e))) == NULL)
	{
		log_conn(LOG_LEVEL_WARN, s->conn_id, s->owner->address,
				 "connectivity: %s not watched (%zu friends watched, or out of memory)", u->address,
				 s->nedges);
		return NULL;
	}
	e->stream = s;
	e->friend_ = u;
	e->w_next = u->watchers;
	if (u->watchers)
		u->watchers->w_prev = e;
	u->watchers = e;
	e->s_next = s->edges;
	if (s->edges)
		s->edges->s_prev = e;
	s->edges = e;
	s->nedges++;
	return e;
}

/* Unlinks and frees the edge; its friend is released when nothing else needs it. */
static void
edge_remove(IxEdge *e)
{
	IxStream *s = e->stream;
	IxUser	 *u = e->friend_;

	if (e->w_prev)
		e->w_prev->w_next = e->w_next;
	else
		u->watchers = e->w_next;
	if (e->w_next)
		e->w_next->w_prev = e->w_prev;
	if (e->s_prev)
		e->s_prev->s_next = e->s_next;
	else
		s->edges = e->s_next;
	if (e->s_next)
		e->s_next->s_prev = e->s_prev;
	s->nedges--;
	free(e);
	user_release(u);
}

/* Removes "s watches address", if it exists. */
static void
edge_remove_pair(IxStream *s, const char *address)
{
	IxUser *u = user_find(address);

	if (u == NULL)
		return;
	for (IxEdge *e = u->watchers; e; e = e->w_next)
	{
		if (e->stream == s)
		{
			edge_remove(e);
			return;
		}
	}
}

static void
ix_stream_free(IxStream *s)
{
	IxUser *owner = s->owner;

	while (s->edges)
		edge_remove(s->edges);
	if (s->own_prev)
		s->own_prev->own_next = s->own_next;
	else
		owner->owned = s->own_next;
	if (s->own_next)
		s->own_next->own_prev = s->own_prev;
	hashmap_remove(&ix.streams, &s->id_link);
	free(s->ops);
	free(s);
	user_release(owner);
}

/* ---- Delivery */

/* Queues one element on the stream. -1 when the stream is gone or its client fell behind (its
 * connection is then closing with 1011): the caller frees the stream. */
static int
push(IxStream *s, const uint8_t *buf, size_t len)
{
	Conn	   *c = conn_lookup(s->conn_id);
	RpcSession *rpc = c ? conn_rpc(c) : NULL;
	int			rc;

	if (rpc == NULL)
		return -1;
	rc = rpc_stream_push(rpc, s->msg_no, buf, len);
	if (rc == 0)
	{
		metrics_count(M_STREAM_EVENTS, 1);
		metrics_count(M_PRESENCE_DELIVERED, 1);
		return 0;
	}
	if (rc == -2)
	{
		log_conn(LOG_LEVEL_WARN, s->conn_id, conn_address(c),
				 "connectivity stream %u does not read its updates: closing", s->msg_no);
		conn_close(c, CONN_CLOSE_STREAM_OVERFLOW, NULL);
	}
	return -1;
}

/* Tells every live stream watching u what it was not told yet about u's current status. */
static void
ix_deliver(IxUser *u)
{
	uint8_t *buf;
	size_t	 len = 0;
	size_t	 n = 0;

	for (IxEdge *e = u->watchers; e; e = e->w_next)
	{
		if (e->stream->state != IX_LIVE || e->told_online == u->online)
			continue;
		if (n == ix.targets_cap)
		{
			size_t	  cap = ix.targets_cap ? ix.targets_cap * 2 : 64;
			IxTarget *t = realloc(ix.targets, cap * sizeof(*t));

			if (t == NULL)
			{
				log_error("presence: out of memory delivering a change of %s", u->address);
				break;
			}
			ix.targets = t;
			ix.targets_cap = cap;
		}
		e->told_online = u->online;
		ix.targets[n].conn_id = e->stream->conn_id;
		ix.targets[n].serial = e->stream->serial;
		n++;
	}
	if (n == 0)
		return;
	buf = pack_update(u, u->online, &len);
	if (buf == NULL)
	{
		log_error("presence: out of memory packing a change of %s", u->address);
		return;
	}
	/* From here on u may be freed (a failed push frees a stream and its edges). */
	for (size_t i = 0; i < n; i++)
	{
		IxStream *s = stream_lookup(&ix.targets[i]);

		if (s != NULL && push(s, buf, len) != 0)
			ix_stream_free(s);
	}
	free(buf);
}

/* READING -> LIVE once every friend's status is current: the stream's snapshot, ONLINE for
 * each online friend. May free s. */
static void
stream_try_live(IxStream *s)
{
	if (s->state != IX_READING || s->reads > 0)
		return;
	for (IxEdge *e = s->edges; e; e = e->s_next)
		if (!e->friend_->known)
			return; /* a read failed: the tick reads again */
	s->state = IX_LIVE;
	for (IxEdge *e = s->edges, *next; e; e = next)
	{
		IxUser	*u = e->friend_;
		uint8_t *buf;
		size_t	 len = 0;

		next = e->s_next;
		if (e->told_online == u->online)
			continue;
		e->told_online = u->online;
		buf = pack_update(u, u->online, &len);
		if (buf == NULL)
		{
			log_error("presence: out of memory packing the snapshot of a stream");
			return;
		}
		if (push(s, buf, len) != 0)
		{
			free(buf);
			ix_stream_free(s);
			return;
		}
		free(buf);
	}
	log_conn(LOG_LEVEL_DEBUG, s->conn_id, s->owner->address, "connectivity: live, %zu friends",
			 s->nedges);
}

/* ---- Reading statuses */

static void
on_stream_read(void *ud, bool ok)
{
	IxTarget *t = ud;
	IxStream *s = ix.active ? stream_lookup(t) : NULL;

	free(t);
	if (s == NULL)
		return;
	s->reads--;
	if (!ok)
	{
		ix.failures++;
		ix.resync_needed = true;
	}
	stream_try_live(s);
}

/* Reads the friends whose status is not current, READ_CHUNK per call; goes live when there are
 * none. Unsent chunks are left to the tick. May free s. */
static void
stream_read(IxStream *s)
{
	const char *chunk[READ_CHUNK];
	size_t		n = 0;

	if (s->state != IX_READING || s->reads > 0)
		return;
	for (IxEdge *e = s->edges;; e = e->s_next)
	{
		if (e != NULL && e->friend_->known)
			continue;
		if (e != NULL)
			chunk[n++] = e->friend_->address;
		if (n > 0 && (n == READ_CHUNK || e == NULL))
		{
			IxTarget *t = malloc(sizeof(*t));

			if (t == NULL)
				return;
			t->conn_id = s->conn_id;
			t->serial = s->serial;
			if (ix.read(chunk, n, on_stream_read, t) != 0)
			{
				free(t);
				return;
			}
			s->reads++;
			n = 0;
		}
		if (e == NULL)
			break;
	}
	stream_try_live(s);
}

static void
on_resync_read(void *ud, bool ok)
{
	size_t b = 0;

	if (!ix.active)
		return;
	ix.resync_reads--;
	if (!ok)
		ix.failures++;
	if (ix.resync_reads > 0)
		return;
	/* Done, unless some read (this one or any other) failed since the resync began. */
	if (ix.failures == ix.resync_failures)
		ix.resync_needed = false;
	/* Streams that were waiting for Redis can go live now (the tick would, a second later). */
	for (HashmapLink *l = hashmap_next(&ix.streams, &b, NULL), *next; l; l = next)
	{
		IxStream *s = HASHMAP_ENTRY(l, IxStream, id_link);

		next = hashmap_next(&ix.streams, &b, l); /* stream_read may free s, never another */
		if (s->state == IX_READING && s->reads == 0)
			stream_read(s);
	}
}

/* A read of users newly watched after an accept; the reply was applied (and delivered). */
static void
on_user_read(void *ud, bool ok)
{
	if (ix.active && !ok)
	{
		ix.failures++;
		ix.resync_needed = true;
	}
}

static int
resync_send(const char **chunk, size_t *n)
{
	if (ix.read(chunk, *n, on_resync_read, NULL) != 0)
	{
		ix.failures++;
		ix.resync_needed = true;
		return -1;
	}
	ix.resync_reads++;
	*n = 0;
	return 0;
}

void
fanout_resync(void)
{
	const char *chunk[READ_CHUNK];
	size_t		n = 0;
	size_t		b = 0;

	if (!ix.active || ix.resync_reads > 0)
		return;
	ix.resync_failures = ix.failures;
	for (HashmapLink *l = hashmap_next(&ix.users, &b, NULL); l; l = hashmap_next(&ix.users, &b, l))
	{
		IxUser *u = HASHMAP_ENTRY(l, IxUser, link);

		if (u->watchers == NULL || u->known)
			continue;
		chunk[n++] = u->address;
		if (n == READ_CHUNK && resync_send(chunk, &n) != 0)
			return;
	}
	if (n > 0 && resync_send(chunk, &n) != 0)
		return;
	if (ix.resync_reads == 0)
		ix.resync_needed = false;
}

void
fanout_stale(void)
{
	size_t b = 0;

	if (!ix.active)
		return;
	for (HashmapLink *l = hashmap_next(&ix.users, &b, NULL); l; l = hashmap_next(&ix.users, &b, l))
		HASHMAP_ENTRY(l, IxUser, link)->known = false;
	ix.resync_needed = true;
}

void
fanout_apply(const char *address, bool online, uint64_t version)
{
	IxUser *u = user_find(address);

	if (u == NULL)
		return; /* nobody here watches it */
	if (u->known && version <= u->version)
		return; /* old news: a read and a message crossed */
	u->known = true;
	u->version = version;
	u->online = online;
	ix_deliver(u);
}

/* ---- Loading a stream's friends */

static void stream_load(IxStream *s);

static void
load_failed(IxStream *s)
{
	uint64_t delay = backoff_delay_ms(&load_retry, s->attempts, uv_hrtime());

	s->attempts++;
	s->retry_at = uv_now(uv_default_loop()) + delay;
}

/* pg_pool callback, loop thread. */
static void
on_load(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	IxTarget *t = ud;
	IxStream *s = ix.active ? stream_lookup(t) : NULL;
	int		  n;

	free(t);
	if (s == NULL)
		return;
	s->loading = false;
	if (sqlstate != NULL || res == NULL || PQnfields(res) < SOCIAL_PB_PROFILE_COLUMNS)
	{
		log_conn(LOG_LEVEL_WARN, s->conn_id, s->owner->address,
				 "connectivity: loading friends failed: %s %s; retrying", sqlstate ? sqlstate : "",
				 message ? message : "unexpected result");
		load_failed(s);
		return;
	}
	if (s->reload)
	{
		s->reload = false;
		s->nops = 0;
		stream_load(s);
		return;
	}
	n = PQntuples(res);
	if (n >= MAX_FRIENDS)
		log_conn(LOG_LEVEL_WARN, s->conn_id, s->owner->address,
				 "connectivity: only the first %d friends are watched", MAX_FRIENDS);
	for (int i = 0; i < n; i++)
	{
		const char *address = PQgetvalue(res, i, 0);
		IxUser	   *u;

		if (!address_valid(address) || strcmp(address, s->owner->address) == 0)
			continue;
		u = user_get(address);
		if (u == NULL)
		{
			log_error("presence: out of memory loading friends");
			break;
		}
		user_set_profile(u, res, i);
		/* the rows are distinct and the stream had no edges: no duplicate check */
		if (edge_add(s, u, false) == NULL)
			user_release(u);
	}
	/* Events read while the query ran, in log order (see the top of the file). */
	for (size_t i = 0; i < s->nops; i++)
	{
		if (s->ops[i].add)
		{
			IxUser *u = user_get(s->ops[i].friend_);

			if (u != NULL && edge_add(s, u, true) == NULL)
				user_release(u);
		}
		else
			edge_remove_pair(s, s->ops[i].friend_);
	}
	free(s->ops);
	s->ops = NULL;
	s->nops = 0;
	s->attempts = 0;
	s->state = IX_READING;
	log_conn(LOG_LEVEL_DEBUG, s->conn_id, s->owner->address,
			 "connectivity: %zu friends loaded, reading their status", s->nedges);
	stream_read(s);
}

static void
stream_load(IxStream *s)
{
	const char *params[2] = {s->owner->address, MAX_FRIENDS_TEXT};
	IxTarget   *t = malloc(sizeof(*t));

	if (t == NULL)
	{
		load_failed(s);
		return;
	}
	t->conn_id = s->conn_id;
	t->serial = s->serial;
	if (pg_pool_query(ix.pg, sql_friends, 2, params, on_load, t) != 0)
	{
		free(t);
		log_conn(LOG_LEVEL_WARN, s->conn_id, s->owner->address,
				 "connectivity: cannot queue the friends query; retrying");
		load_failed(s);
		return;
	}
	s->loading = true;
	metrics_count(M_PRESENCE_SQL_QUERIES, 1);
}

void
fanout_tick(bool can_read)
{
	uint64_t now = uv_now(uv_default_loop());
	size_t	 b = 0;

	if (!ix.active)
		return;
	if (can_read && ix.resync_needed && ix.resync_reads == 0)
		fanout_resync();
	for (HashmapLink *l = hashmap_next(&ix.streams, &b, NULL), *next; l; l = next)
	{
		IxStream *s = HASHMAP_ENTRY(l, IxStream, id_link);

		next = hashmap_next(&ix.streams, &b, l); /* stream_read may free s, never another */
		if (s->state == IX_LOADING && !s->loading && now >= s->retry_at)
			stream_load(s);
		else if (s->state == IX_READING && s->reads == 0 && can_read)
			stream_read(s);
	}
}

/* ---- Friendship events */

/* One direction of a pair: owner's local streams start or stop watching friend. */
static void
pair_change(const char *owner_address, const char *friend_address, bool add)
{
	IxUser *owner = user_find(owner_address);
	IxUser *u;
	bool	added = false;

	if (owner == NULL || owner->owned == NULL)
		return;
	for (IxStream *s = owner->owned; s; s = s->own_next)
	{
		if (s->state == IX_LOADING)
		{
			if (s->nops == MAX_PENDING_OPS)
			{
				s->reload = true; /* the next load sees everything */
				continue;
			}
			if (s->ops == NULL && (s->ops = malloc(MAX_PENDING_OPS * sizeof(*s->ops))) == NULL)
			{
				s->reload = true;
				continue;
			}
			s->ops[s->nops].add = add;
			memcpy(s->ops[s->nops].friend_, friend_address, ADDRESS_LEN + 1);
			s->nops++;
		}
		else if (add)
		{
			u = user_get(friend_address);
			if (u != NULL && edge_add(s, u, true) != NULL)
				added = true;
		}
		else
			edge_remove_pair(s, friend_address);
	}
	u = user_find(friend_address);
	if (u == NULL)
		return;
	if (added)
	{
		/* Tell the new watchers now when the status is current, else once it is read. */
		if (u->known)
			ix_deliver(u);
		else
		{
			const char *one[1] = {u->address};

			if (ix.read(one, 1, on_user_read, NULL) != 0)
			{
				ix.failures++;
				ix.resync_needed = true;
			}
		}
		return;
	}
	user_release(u);
}

void
fanout_friendship_event(const char *kind, const char *action, const char *actor, const char *target)
{
	bool add, remove;

	if (!ix.active || kind == NULL || action == NULL || !address_valid(actor) ||
		!address_valid(target) || strcmp(actor, target) == 0)
		return;
	add = strcmp(kind, "friendship") == 0 && strcmp(action, "accept") == 0;
	/* A block, recorded in either log, hides presence both ways; unblock restores nothing. */
	remove = (strcmp(kind, "friendship") == 0 &&
			  (strcmp(action, "delete") == 0 || strcmp(action, "block") == 0)) ||
			 (strcmp(kind, "block") == 0 && strcmp(action, "block") == 0);
	if (!add && !remove)
		return;
	pair_change(actor, target, add);
	pair_change(target, actor, add);
}

/* ---- Streams from the RPC layer */

static void
connectivity_open(Conn *c, uint32_t msg_no, const RpcProcedure *proc)
{
	RpcSession *rpc = conn_rpc(c);
	const char *address = conn_address(c);
	IxStream   *s;
	IxUser	   *owner;

	if (rpc == NULL)
		return;
	if (!ix.active || !address_valid(address))
	{
		log_conn(LOG_LEVEL_DEBUG, conn_id(c), address, "connectivity: presence is off, ended");
		if (rpc_stream_end(rpc, msg_no) != 0)
			log_debug("presence: stream %u already ended", msg_no);
		return;
	}
	if (ix_stream_find(conn_id(c)) != NULL)
	{
		log_conn(LOG_LEVEL_DEBUG, conn_id(c), address, "connectivity: duplicate subscription");
		social_pb_refuse_duplicate(
			rpc, msg_no, &decentraland__social_service__v2__friend_connectivity_update__descriptor,
			"presence");
		return;
	}
	(void) hashmap_reserve(&ix.streams); /* has buckets since fanout_init */
	owner = user_get(address);
	s = owner ? calloc(1, sizeof(*s)) : NULL;
	if (s == NULL)
	{
		log_conn(LOG_LEVEL_ERROR, conn_id(c), address, "connectivity: out of memory, ended");
		user_release(owner);
		if (rpc_stream_end(rpc, msg_no) != 0)
			log_debug("presence: stream %u already ended", msg_no);
		return;
	}
	s->serial = ++ix.next_serial;
	s->conn_id = conn_id(c);
	s->msg_no = msg_no;
	s->owner = owner;
	s->state = IX_LOADING;
	hashmap_insert(&ix.streams, &s->id_link);
	s->own_next = owner->owned;
	if (owner->owned)
		owner->owned->own_prev = s;
	owner->owned = s;
	stream_load(s);
}

static void
connectivity_closed(Conn *c, uint32_t msg_no)
{
	IxStream *s = ix_stream_find(conn_id(c));

	if (s != NULL && s->msg_no == msg_no)
		ix_stream_free(s);
}

const ServiceStream fanout_connectivity_stream = {.open = connectivity_open,
												  .closed = connectivity_closed};

void
fanout_conn_closed(uint64_t conn_id)
{
	IxStream *s = ix_stream_find(conn_id);

	if (s != NULL)
		ix_stream_free(s);
}

/* ---- Local sockets */

int
fanout_socket_open(const char *address)
{
	IxUser *u = user_get(address);

	if (u == NULL)
		return -1;
	return (int) ++u->sockets;
}

int
fanout_socket_close(const char *address)
{
	IxUser *u = user_find(address);
	int		left;

	if (u == NULL || u->sockets == 0)
		return -1;
	left = (int) --u->sockets;
	user_release(u);
	return left;
}

FanoutIter
fanout_socket_iter(void)
{
	FanoutIter it = {0, NULL, NULL};

	return it;
}

bool
fanout_socket_next(FanoutIter *it)
{
	const HashmapLink *l;

	if (!ix.active)
		return false;
	l = it->node ? &((const IxUser *) it->node)->link : NULL;
	while ((l = hashmap_next(&ix.users, &it->bucket, l)) != NULL)
	{
		const IxUser *u = HASHMAP_ENTRY(l, const IxUser, link);

		if (u->sockets > 0)
		{
			it->node = u;
			it->address = u->address;
			return true;
		}
	}
	return false;
}

/* ---- Life cycle */

int
fanout_init(PgPool *pg, FanoutReadFn read)
{
	memset(&ix, 0, sizeof(ix));
	ix.pg = pg;
	ix.read = read;
	hashmap_init(&ix.users, TABLE_MIN_BUCKETS, user_hash);
	hashmap_init(&ix.streams, TABLE_MIN_BUCKETS, stream_hash);
	if (!hashmap_reserve(&ix.users) || !hashmap_reserve(&ix.streams))
	{
		hashmap_free(&ix.users);
		hashmap_free(&ix.streams);
		return -1;
	}
	ix.active = true;
	return 0;
}

void
fanout_shutdown(void)
{
	HashmapLink *l;

	if (!ix.active)
		return;
	for (size_t b = 0; (l = hashmap_next(&ix.streams, &b, NULL)) != NULL;)
		ix_stream_free(HASHMAP_ENTRY(l, IxStream, id_link)); /* takes it out of the table */
	while ((l = hashmap_pop(&ix.users)) != NULL)
	{
		user_free_profile(HASHMAP_ENTRY(l, IxUser, link));
		free(HASHMAP_ENTRY(l, IxUser, link));
	}
	hashmap_free(&ix.users);
	hashmap_free(&ix.streams);
	free(ix.targets);
	memset(&ix, 0, sizeof(ix));
}

uint64_t
fanout_stream_count(void)
{
	return ix.streams.count;
}
