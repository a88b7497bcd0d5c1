/*
 * metrics.h — process counters and latencies, rendered as Prometheus text on GET /metrics.
 *
 * Everything runs on the loop thread, so plain integers suffice. Counters only go up; gauges are
 * set by their owner.
 */
#ifndef SOCIALD_METRICS_H
#define SOCIALD_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef enum MetricCounter
{
	M_CONNECTIONS_ACCEPTED = 0, /* WebSocket upgrades accepted */
	M_CONNECTIONS_REJECTED,		/* refused at admission (max connections / unauthenticated) */
	M_AUTH_OK,					/* auth chains accepted */
	M_AUTH_FAILED,				/* auth chains refused (3003) */
	M_AUTH_TIMEOUT,				/* no auth in time (3004) */
	M_FRAMES_IN,				/* RPC frames received */
	M_FRAMES_OUT,				/* frames written */
	M_RATE_LIMITED,				/* connections closed for exceeding the message rate */
	M_QUEUE_DROPS,				/* connections closed because the outbound queue overflowed */
	M_PROTOCOL_ERRORS,			/* connections closed for malformed RPC frames */
	M_STREAM_EVENTS,			/* stream elements delivered to clients */
	M_EVENTS_RECEIVED,			/* events read from the log (catch-up or notification) */
	M_PG_RECONNECTS,			/* PostgreSQL connections re-established */
	M_PG_QUERY_ERRORS,			/* queries that failed for a non-user reason */
	M_REDIS_RECONNECTS,			/* Redis connections re-established (redis_client.c) */
	M_REDIS_COMMAND_ERRORS,		/* Redis commands that got no reply: down, lost, timed out, busy */
	M_REDIS_MESSAGES,			/* pub/sub messages received from Redis */
	M_NATS_MESSAGES,			/* messages received on peer.> (nats_source.c) */
	M_NATS_JUNK_SUBJECTS,		/* of which ignored: not peer.<address>.<known event> */
	M_NATS_BAD_HEARTBEATS,		/* heartbeat bodies that were not a Heartbeat */
	M_NATS_DROPPED,				/* dropped by nats.c because the loop fell behind */
	M_NATS_RECONNECTS,			/* NATS connections re-established by nats.c */
	M_ARCHIPELAGO_POLLS,		/* GET /peers answered and parsed (archipelago.c) */
	M_ARCHIPELAGO_ERRORS,		/* polls that failed: connect, timeout, status, size, junk */
	M_ARCHIPELAGO_PEERS,		/* valid peer ids reported */
	M_ARCHIPELAGO_INVALID_IDS,	/* peer entries skipped for a missing or invalid id */
	M_PRESENCE_PUBLISHED,		/* status flips this instance detected and published (presence.c) */
	M_PRESENCE_RECEIVED,		/* status flips read from the presence channel */
	M_PRESENCE_DELIVERED,		/* FriendConnectivityUpdate elements queued to streams */
	M_PRESENCE_SQL_QUERIES,		/* friend lists loaded for connectivity streams (never per flip) */
	M_PRESENCE_REDIS_ERRORS,	/* presence scripts that failed (Redis down, error reply) */
	M_PRESENCE_SESSION_FLIPS,	/* flips written to social.presence_sessions */
	M_PRESENCE_SESSION_DROPS,	/* flips not recorded: batch full or refused by the database */
	M_REGISTRY_REQUESTS_OK,		/* POST /profiles answered 200 with a JSON array (registry.c) */
	M_REGISTRY_REQUESTS_FAILED, /* requests that failed: resolve, connect, status, size, garbage */
	M_REGISTRY_TIMEOUTS,		/* requests abandoned at their deadline */
	M_REGISTRY_PROFILES_STORED, /* profiles written to social.profiles */
	M_REGISTRY_UNUSABLE,		/* profiles skipped: no user id, name or picture */
	M_REGISTRY_SKIPPED,			/* lookups not queued: the queue or the known set was full */
	M_COUNTER_COUNT
} MetricCounter;

typedef enum MetricGauge
{
	G_CONNECTIONS = 0,			   /* open WebSocket connections */
	G_CONNECTIONS_UNAUTHENTICATED, /* of which not yet authenticated */
	G_STREAMS,					   /* open server streams */
	G_PG_UP,					   /* 1 when the query pool has a live connection */
	G_PG_LISTEN_UP,				   /* 1 when LISTEN social_events is active */
	G_REDIS_UP,			 /* 1 when Redis is up (redis_client.h: commands and subscriptions) */
	G_NATS_UP,			 /* 1 while the NATS connection is established */
	G_ARCHIPELAGO_LEASE, /* 1 while this instance holds the Archipelago poll lease */
	G_GAUGE_COUNT
} MetricGauge;

void metrics_count(MetricCounter counter, uint64_t n);
void metrics_gauge_set(MetricGauge gauge, int64_t value);
void metrics_gauge_add(MetricGauge gauge, int64_t delta);

/* One finished RPC: procedure name (static string), outcome ("ok", "error", "invalid", ...),
 * latency in seconds. */
void metrics_rpc(const char *procedure, const char *outcome, double seconds);

/* Renders everything in Prometheus text format into a malloc'd buffer; *len set. */
char *metrics_render(size_t *len);

#endif /* SOCIALD_METRICS_H */
