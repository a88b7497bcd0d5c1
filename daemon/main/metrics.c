/*
 * metrics.c — counters, gauges and per-procedure RPC latency histograms, rendered as Prometheus
 * text exposition (version 0.0.4).
 *
 * Everything runs on the loop thread. Memory is fixed: the (procedure, outcome) table has a set
 * number of rows, and label pairs beyond it are folded into one overflow row, so a module that
 * passes unexpected outcome strings cannot grow the process.
 */
#include "main/metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct MetricInfo
{
	const char *name; /* without the sociald_ prefix */
	const char *help;
} MetricInfo;

static const MetricInfo counter_info[M_COUNTER_COUNT] = {
	[M_CONNECTIONS_ACCEPTED] = {"connections_accepted_total", "WebSocket connections admitted."},
	[M_CONNECTIONS_REJECTED] = {"connections_rejected_total",
								"WebSocket connections closed with 1013 at admission."},
	[M_AUTH_OK] = {"auth_ok_total", "Auth chains accepted."},
	[M_AUTH_FAILED] = {"auth_failed_total", "Auth chains refused (closed with 3003)."},
	[M_AUTH_TIMEOUT] = {"auth_timeout_total",
						"Connections that did not authenticate in time (3004)."},
	[M_FRAMES_IN] = {"frames_in_total", "RPC frames received from clients."},
	[M_FRAMES_OUT] = {"frames_out_total", "Frames written to clients."},
	[M_RATE_LIMITED] = {"rate_limited_total", "Connections closed for exceeding the message rate."},
	[M_QUEUE_DROPS] = {"queue_drops_total",
					   "Connections closed because their outbound queue overflowed."},
	[M_PROTOCOL_ERRORS] = {"protocol_errors_total",
						   "Connections closed for malformed or unexpected frames."},
	[M_STREAM_EVENTS] = {"stream_events_total", "Stream elements delivered to clients."},
	[M_EVENTS_RECEIVED] = {"events_received_total", "Events read from the action log."},
	[M_PG_RECONNECTS] = {"pg_reconnects_total", "PostgreSQL connections re-established."},
	[M_PG_QUERY_ERRORS] = {"pg_query_errors_total", "Queries that failed for a non-user reason."},
	[M_REDIS_RECONNECTS] = {"redis_reconnects_total", "Redis connections re-established."},
	[M_REDIS_COMMAND_ERRORS] = {"redis_command_errors_total",
								"Redis commands that got no reply (down, lost, timed out, busy)."},
	[M_REDIS_MESSAGES] = {"redis_messages_total", "Pub/sub messages received from Redis."},
	[M_NATS_MESSAGES] = {"nats_messages_total", "Messages received on peer.> from NATS."},
	[M_NATS_JUNK_SUBJECTS] = {"nats_junk_subjects_total",
							  "NATS messages ignored: not peer.<address>.<known event>."},
	[M_NATS_BAD_HEARTBEATS] = {"nats_bad_heartbeats_total",
							   "Heartbeat bodies that did not decode (the peer counts as seen)."},
	[M_NATS_DROPPED] = {"nats_dropped_total",
						"NATS messages dropped by the client because the loop fell behind."},
	[M_NATS_RECONNECTS] = {"nats_reconnects_total", "NATS connections re-established."},
	[M_ARCHIPELAGO_POLLS] = {"archipelago_polls_total", "Archipelago /peers polls that succeeded."},
	[M_ARCHIPELAGO_ERRORS] = {"archipelago_errors_total",
							  "Archipelago /peers polls that failed (connect, timeout, status, "
							  "size or body)."},
	[M_ARCHIPELAGO_PEERS] = {"archipelago_peers_total", "Valid peer ids read from Archipelago."},
	[M_ARCHIPELAGO_INVALID_IDS] = {"archipelago_invalid_ids_total",
								   "Archipelago peer entries skipped for a missing or invalid id."},
	[M_REGISTRY_REQUESTS_OK] = {"registry_requests_ok_total",
								"Profile registry requests answered with a JSON array."},
	[M_REGISTRY_REQUESTS_FAILED] = {"registry_requests_failed_total",
									"Profile registry requests that failed (resolve, connect, "
									"status, size, garbage); answers used the cache."},
	[M_REGISTRY_TIMEOUTS] = {"registry_timeouts_total",
							 "Profile registry requests abandoned at their deadline."},
	[M_REGISTRY_PROFILES_STORED] = {"registry_profiles_stored_total",
									"Registry profiles written to social.profiles."},
	[M_REGISTRY_UNUSABLE] = {"registry_unusable_profiles_total",
							 "Registry profiles skipped for a missing user id, name or picture."},
	[M_REGISTRY_SKIPPED] = {"registry_lookups_skipped_total",
							"Profile lookups not queued because the queue was full."},
	[M_PRESENCE_PUBLISHED] = {"presence_changes_published_total",
							  "Status changes this instance detected and published."},
	[M_PRESENCE_RECEIVED] = {"presence_changes_received_total",
							 "Status changes received on the presence channel."},
	[M_PRESENCE_DELIVERED] = {"presence_updates_delivered_total",
							  "Friend connectivity updates queued to streams."},
	[M_PRESENCE_SQL_QUERIES] = {"presence_sql_queries_total",
								"Friend lists loaded from PostgreSQL when a connectivity stream "
								"opens (status changes cost none)."},
	[M_PRESENCE_REDIS_ERRORS] = {"presence_redis_errors_total",
								 "Presence scripts that failed (Redis down or an error reply)."},
	[M_PRESENCE_SESSION_FLIPS] = {"presence_session_flips_total",
								  "Status changes written to social.presence_sessions."},
	[M_PRESENCE_SESSION_DROPS] = {"presence_session_drops_total",
								  "Status changes not recorded (batch full or refused)."},
};

static const MetricInfo gauge_info[G_GAUGE_COUNT] = {
	[G_CONNECTIONS] = {"connections", "Open WebSocket connections."},
	[G_CONNECTIONS_UNAUTHENTICATED] = {"connections_unauthenticated",
									   "Open WebSocket connections not yet authenticated."},
	[G_STREAMS] = {"streams", "Open server streams."},
	[G_PG_UP] = {"pg_up", "1 when the query pool has a live PostgreSQL connection."},
	[G_PG_LISTEN_UP] = {"pg_listen_up", "1 when LISTEN social_events is active."},
	[G_REDIS_UP] = {"redis_up", "1 when Redis is up: commands and every subscription."},
	[G_NATS_UP] = {"nats_up", "1 while the NATS connection is established."},
	[G_ARCHIPELAGO_LEASE] = {"archipelago_lease",
							 "1 while this instance holds the Archipelago poll lease."},
};

/* Prometheus' default buckets, in seconds. */
static const double rpc_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
									 0.1,	0.25,	0.5,   1.0,	 2.5,	5.0};
#define RPC_BUCKETS (sizeof(rpc_buckets) / sizeof(rpc_buckets[0]))

/* 33 procedures times a handful of outcomes fit; the last row is the overflow row. */
#define RPC_ROWS 256
#define RPC_LABEL_MAX 64

typedef struct RpcRow
{
	char	 procedure[RPC_LABEL_MAX];
	char	 outcome[RPC_LABEL_MAX];
	uint64_t buckets[RPC_BUCKETS]; /* non-cumulative; summed when rendered */
	uint64_t count;
	double	 sum;
} RpcRow;

static uint64_t counters[M_COUNTER_COUNT];
static int64_t	gauges[G_GAUGE_COUNT];
static RpcRow	rpc_rows[RPC_ROWS];
static size_t	rpc_row_count;

void
metrics_count(MetricCounter counter, uint64_t n)
{
	if ((unsigned) counter < M_COUNTER_COUNT)
		counters[counter] += n;
}

void
metrics_gauge_set(MetricGauge gauge, int64_t value)
{
	if ((unsigned) gauge < G_GAUGE_COUNT)
		gauges[gauge] = value;
}

void
metrics_gauge_add(MetricGauge gauge, int64_t delta)
{
	if ((unsigned) gauge < G_GAUGE_COUNT)
		gauges[gauge] += delta;
}

static RpcRow *
rpc_row(const char *procedure, const char *outcome)
{
	RpcRow *row;

	for (size_t i = 0; i < rpc_row_count; i++)
		if (strcmp(rpc_rows[i].procedure, procedure) == 0 &&
			strcmp(rpc_rows[i].outcome, outcome) == 0)
			return &rpc_rows[i];
	if (rpc_row_count == RPC_ROWS - 1)
	{
		row = &rpc_rows[RPC_ROWS - 1];
		if (row->procedure[0] == '\0')
		{
			snprintf(row->procedure, sizeof(row->procedure), "other");
			snprintf(row->outcome, sizeof(row->outcome), "other");
		}
		return row;
	}
	row = &rpc_rows[rpc_row_count++];
	snprintf(row->procedure, sizeof(row->procedure), "%s", procedure);
	snprintf(row->outcome, sizeof(row->outcome), "%s", outcome);
	return row;
}

void
metrics_rpc(const char *procedure, const char *outcome, double seconds)
{
	RpcRow *row = rpc_row(procedure ? procedure : "unknown", outcome ? outcome : "unknown");

	if (!(seconds >= 0))
		seconds = 0; /* also NaN */
	for (size_t i = 0; i < RPC_BUCKETS; i++)
	{
		if (seconds <= rpc_buckets[i])
		{
			row->buckets[i]++;
			break;
		}
	}
	row->count++;
	row->sum += seconds;
}

/* Growable output; on allocation failure 'failed' sticks and render returns NULL. */
typedef struct Out
{
	char  *buf;
	size_t len;
	size_t cap;
	bool   failed;
} Out;

static void __attribute__((format(printf, 2, 3))) out_printf(Out *o, const char *fmt, ...)
{
	va_list ap;
	int		n;

	if (o->failed)
		return;
	for (;;)
	{
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
		{
			o->failed = true;
			return;
		}
		if ((size_t) n < o->cap - o->len)
		{
			o->len += (size_t) n;
			return;
		}
		size_t ncap = o->cap * 2 + (size_t) n;
		char  *nbuf = realloc(o->buf, ncap);

		if (!nbuf)
		{
			o->failed = true;
			return;
		}
		o->buf = nbuf;
		o->cap = ncap;
	}
}

/* Label values are escaped as the exposition format requires: backslash, quote, newline. */
static void
out_label(Out *o, const char *value)
{
	char   esc[RPC_LABEL_MAX * 2];
	size_t n = 0;

	for (const char *p = value; *p && n + 2 < sizeof(esc); p++)
	{
		if (*p == '\\' || *p == '"')
		{
			esc[n++] = '\\';
			esc[n++] = *p;
		}
		else if (*p == '\n')
		{
			esc[n++] = '\\';
			esc[n++] = 'n';
		}
		else
			esc[n++] = *p;
	}
	esc[n] = '\0';
	out_printf(o, "%s", esc);
}

static void
out_header(Out *o, const char *name, const char *help, const char *type)
{
	out_printf(o, "# HELP sociald_%s %s\n# TYPE sociald_%s %s\n", name, help, name, type);
}

static void
out_rpc_labels(Out *o, const RpcRow *row)
{
	out_printf(o, "procedure=\"");
	out_label(o, row->procedure);
	out_printf(o, "\",outcome=\"");
	out_label(o, row->outcome);
	out_printf(o, "\"");
}

char *
metrics_render(size_t *len)
{
	Out		 o = {.cap = 8192};
	size_t	 rows = rpc_row_count + (rpc_rows[RPC_ROWS - 1].procedure[0] ? 1 : 0);
	uint64_t cumulative;

	o.buf = malloc(o.cap);
	if (!o.buf)
		return NULL;
	o.buf[0] = '\0';

	for (int i = 0; i < M_COUNTER_COUNT; i++)
	{
		out_header(&o, counter_info[i].name, counter_info[i].help, "counter");
		out_printf(&o, "sociald_%s %llu\n", counter_info[i].name, (unsigned long long) counters[i]);
	}
	for (int i = 0; i < G_GAUGE_COUNT; i++)
	{
		out_header(&o, gauge_info[i].name, gauge_info[i].help, "gauge");
		out_printf(&o, "sociald_%s %lld\n", gauge_info[i].name, (long long) gauges[i]);
	}
	out_header(&o, "rpc_requests_total", "Finished RPC calls by procedure and outcome.", "counter");
	for (size_t r = 0; r < rows; r++)
	{
		const RpcRow *row = r < rpc_row_count ? &rpc_rows[r] : &rpc_rows[RPC_ROWS - 1];

		out_printf(&o, "sociald_rpc_requests_total{");
		out_rpc_labels(&o, row);
		out_printf(&o, "} %llu\n", (unsigned long long) row->count);
	}
	out_header(&o, "rpc_duration_seconds", "Latency of finished RPC calls.", "histogram");
	for (size_t r = 0; r < rows; r++)
	{
		const RpcRow *row = r < rpc_row_count ? &rpc_rows[r] : &rpc_rows[RPC_ROWS - 1];

		cumulative = 0;
		for (size_t b = 0; b < RPC_BUCKETS; b++)
		{
			cumulative += row->buckets[b];
			out_printf(&o, "sociald_rpc_duration_seconds_bucket{");
			out_rpc_labels(&o, row);
			out_printf(&o, ",le=\"%g\"} %llu\n", rpc_buckets[b], (unsigned long long) cumulative);
		}
		out_printf(&o, "sociald_rpc_duration_seconds_bucket{");
		out_rpc_labels(&o, row);
		out_printf(&o, ",le=\"+Inf\"} %llu\n", (unsigned long long) row->count);
		out_printf(&o, "sociald_rpc_duration_seconds_sum{");
		out_rpc_labels(&o, row);
		out_printf(&o, "} %.9g\n", row->sum);
		out_printf(&o, "sociald_rpc_duration_seconds_count{");
		out_rpc_labels(&o, row);
		out_printf(&o, "} %llu\n", (unsigned long long) row->count);
	}

	if (o.failed)
	{
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
