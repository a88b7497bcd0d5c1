/*
 * sociald.c — the daemon's process: configuration, one libuv loop, and an orderly stop.
 *
 * Start: config (exit 2 on a bad value), the PostgreSQL pool with LISTEN social_events, the
 * friends and events modules, the Redis client and presence with its sources (NATS, Archipelago;
 * the socket source is ws.c's connections), then the WebSocket door. Everything runs on
 * uv_default_loop() on this thread (doc/event-loop.md).
 *
 * Stop (SIGTERM or SIGINT): the door stops accepting and closes every client with 1001; once
 * they are gone, or WS_SHUTDOWN_TIMEOUT_IN_MS has passed, the Archipelago source, the lws
 * context, the NATS source, presence, the Redis client, the pool and the events module are
 * destroyed and the loop runs until every handle has closed (twice: lws frees its context in
 * two steps on a foreign loop, see ws.h). The exit status is 0 only when uv_loop_close()
 * confirms nothing was left open. A second signal skips the wait.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "door/ws.h"
#include "lib/instance_id.h"
#include "main/config.h"
#include "main/log.h"
#include "presence/archipelago.h"
#include "social/registry.h"
#include "presence/fanout.h"
#include "presence/nats_source.h"
#include "presence/presence.h"
#include "social/privacy.h"
#include "social/procedures.h"
#include "social/service.h"
#include "social/updates.h"
#include "store/pg_pool.h"
#include "store/redis_client.h"

extern char **environ;

/* How often the drain checks whether every client has gone. */
#define DRAIN_POLL_MS 20

typedef struct Daemon
{
	uv_loop_t	*loop;
	Config		 cfg;
	PgPool		*pg;
	RedisClient *redis;
	NatsSource	*nats;			   /* NULL without the NATS source */
	Archipelago *archipelago;	   /* NULL without the Archipelago source */
	Registry	*registry;		   /* NULL without REGISTRY_URL */
	char		 instance_id[128]; /* host:pid:random, names this process in Redis */
	Ws			*ws;
	uv_signal_t	 sigterm;
	uv_signal_t	 sigint;
	uv_timer_t	 drain;
	uint64_t	 drain_deadline;
	bool		 stopping;
	bool		 finished;
} Daemon;

/* The one pool, for the application's /status; set once in main. */
static PgPool *status_pg;

/*
 * The application as the door sees it (ws.h): the SocialService table dispatches calls and
 * streams (service.c); a connection's readiness and end feed the socket presence source and drop
 * its subscriptions. Loop thread.
 */
static void
app_ready(Conn *c)
{
	/* The socket source: this user is online while a connection of theirs is. */
	presence_conn_ready(c);
}

static void
app_closed(Conn *c)
{
	updates_conn_closed(c);
	presence_conn_closed(c);
}

static int
app_status(json_t *o)
{
	json_t *pg = json_pack("{s:I, s:b}", "connected",
						   (json_int_t) (status_pg ? pg_pool_connected_count(status_pg) : 0),
						   "listen", status_pg ? pg_pool_listen_up(status_pg) != 0 : 0);
	json_t *presence = json_pack("{s:I, s:b}", "streams", (json_int_t) presence_stream_count(),
								 "redis", presence_redis_up());

	if (json_object_set_new(o, "version", json_string(SOCIALD_VERSION)) != 0 ||
		json_object_set_new(o, "pg", pg) != 0 ||
		json_object_set_new(o, "subscriptions",
							json_integer((json_int_t) updates_subscription_count())) != 0 ||
		json_object_set_new(o, "presence", presence) != 0)
		return -1;
	return 0;
}

static const DoorApp app = {
	.module = &service_module,
	.ready = app_ready,
	.call = service_call,
	.stream_open = service_stream_open,
	.stream_closed = service_stream_closed,
	.closed = app_closed,
	.status = app_status,
	.http = privacy_http,
};

/* Tears down what is left; the loop then ends by itself. Loop thread. */
static void
daemon_finish(Daemon *d)
{
	if (d->finished)
		return;
	d->finished = true;
	if (ws_open_count(d->ws) > 0)
		log_warn("shutdown: %zu connections did not close in time, cutting them",
				 ws_open_count(d->ws));
	uv_close((uv_handle_t *) &d->drain, NULL);
	uv_close((uv_handle_t *) &d->sigterm, NULL);
	uv_close((uv_handle_t *) &d->sigint, NULL);
	/* Archipelago polls over the lws context: before it goes. */
	archipelago_destroy(d->archipelago);
	d->archipelago = NULL;
	/* The registry client fetches over the lws context and stores through the pool. */
	registry_destroy(d->registry);
	d->registry = NULL;
	ws_destroy(d->ws);
	d->ws = NULL;
	/* Sources first, then presence, then the Redis client they all use. */
	nats_source_destroy(d->nats);
	d->nats = NULL;
	presence_shutdown();
	redis_client_destroy(d->redis);
	d->redis = NULL;
	pg_pool_destroy(d->pg);
	d->pg = NULL;
	updates_shutdown();
	procedures_shutdown();
	privacy_shutdown();
	log_info("shutdown: closing remaining handles");
}

/* Loop thread, every DRAIN_POLL_MS while stopping. */
static void
on_drain_tick(uv_timer_t *t)
{
	Daemon *d = t->data;

	if (ws_open_count(d->ws) == 0 || uv_now(d->loop) >= d->drain_deadline)
		daemon_finish(d);
}

/* Loop thread (libuv delivers signals through the loop). */
static void
on_signal(uv_signal_t *h, int signum)
{
	Daemon *d = h->data;

	if (d->stopping)
	{
		log_info("signal %d again: stopping now", signum);
		daemon_finish(d);
		return;
	}
	d->stopping = true;
	log_info("signal %d: draining %zu connections (at most %d ms)", signum, ws_open_count(d->ws),
			 d->cfg.shutdown_timeout_ms);
	ws_shutdown(d->ws);
	d->drain_deadline = uv_now(d->loop) + (uint64_t) d->cfg.shutdown_timeout_ms;
	uv_timer_start(&d->drain, on_drain_tick, 0, DRAIN_POLL_MS);
}

/*
 * The Redis client, presence and its sources. Redis being down is not an error (presence waits
 * for it); only a client that cannot be created at all is.
 */
static int
start_presence(Daemon *d)
{
	ConfigPresenceSources src = config_presence_sources(&d->cfg);
	PresenceOptions		  opts = {0};

	d->redis = redis_client_create(d->loop, &(RedisClientOptions){.url = d->cfg.redis_url});
	if (!d->redis)
	{
		log_error("cannot create the Redis client for %s", d->cfg.redis_url);
		return -1;
	}
	/* Unique per process and readable in Redis: the socket source's field is named by it, and
	 * the Archipelago lease by the same name. */
	snprintf(d->instance_id, sizeof(d->instance_id), "%s", instance_id());
	opts.ttl_ms = d->cfg.presence_ttl_ms;
	opts.sources[PRESENCE_SOURCE_NATS] = src.nats;
	opts.sources[PRESENCE_SOURCE_ARCHIPELAGO] = src.archipelago;
	opts.sources[PRESENCE_SOURCE_SOCKET] = src.socket;
	opts.record_sessions = d->cfg.presence_sessions;
	opts.instance_id = d->instance_id;
	if (presence_init(d->loop, d->pg, d->redis, &opts) != 0)
		return -1;

	if (src.nats)
	{
		d->nats = nats_source_create(
			d->loop,
			&(NatsSourceOptions){.url = d->cfg.nats_url, .queue_group = d->cfg.nats_queue_group});
		if (!d->nats)
		{
			log_error("cannot start the NATS presence source");
			return -1;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static Daemon d;
	char		  err[512];
	char		  pg_conninfo[CONFIG_CONNINFO_MAX];
	int			  rc;
	bool		  presence_ok;

	switch (config_load(&d.cfg, argc, argv, environ, err, sizeof(err)))
	{
		case CONFIG_OK:
			break;
		case CONFIG_HELP:
			config_print_help(stdout, "sociald");
			return 0;
		case CONFIG_VERSION:
			printf("sociald %s\n", SOCIALD_VERSION);
			return 0;
		case CONFIG_ERROR:
			fprintf(stderr, "sociald: %s\n", err);
			return 2;
	}
	log_level = d.cfg.log_level;
	/* A peer that vanished mid-write must cost an EPIPE, not the process. */
	signal(SIGPIPE, SIG_IGN);

	d.loop = uv_default_loop();
	log_info("sociald %s starting", SOCIALD_VERSION);
	config_log(&d.cfg);
	/* libpq would look host names up on every (re)connect, blocking the loop: once, now. */
	switch (
		config_pg_resolve(d.cfg.pg_conninfo, pg_conninfo, sizeof(pg_conninfo), err, sizeof(err)))
	{
		case 0:
			break;
		case 1:
			log_info("PostgreSQL host names resolved at start-up (hostaddr= added); an address "
					 "that changes later needs a restart");
			memcpy(d.cfg.pg_conninfo, pg_conninfo, sizeof(d.cfg.pg_conninfo));
			break;
		default:
			log_error("%s", err);
			return 1;
	}

	d.pg = pg_pool_create(d.loop, &(PgPoolOptions){.conninfo = d.cfg.pg_conninfo,
												   .pool_size = d.cfg.pg_pool_size,
												   .max_queued = d.cfg.pg_max_queued,
												   .query_timeout_ms = d.cfg.pg_query_timeout_ms,
												   .listen_channel = "social_events"});
	if (!d.pg)
	{
		log_error("cannot create the PostgreSQL pool");
		return 1;
	}
	status_pg = d.pg;
	privacy_init(d.pg);
	/* On failure (logged) no door is opened, and the exit below closes what was started. */
	presence_ok = procedures_init(d.pg) == 0 && updates_init(d.pg, fanout_friendship_event) == 0 &&
				  start_presence(&d) == 0;

	d.ws =
		!presence_ok
			? NULL
			: ws_create(
				  d.loop,
				  &(WsOptions){
					  .host = d.cfg.host,
					  .port = d.cfg.port,
					  .http_port = d.cfg.http_port,
					  .conn =
						  {
							  .auth_timeout_ms = d.cfg.auth_timeout_ms,
							  .auth_window_ms = d.cfg.auth_window_ms,
							  .idle_timeout_s = d.cfg.idle_timeout_s,
							  .max_payload_bytes = (size_t) d.cfg.max_payload_bytes,
							  .max_connections = d.cfg.max_connections,
							  .max_unauthenticated = d.cfg.max_unauthenticated,
							  .outbound_queue_messages = d.cfg.outbound_queue_messages,
							  .outbound_queue_bytes = (size_t) d.cfg.outbound_queue_bytes,
							  .messages_per_second = d.cfg.messages_per_second,
							  .messages_burst = d.cfg.messages_burst,
							  .rpc = {.max_ports = (uint32_t) d.cfg.rpc_max_ports,
									  .max_streams = (uint32_t) d.cfg.rpc_max_streams,
									  .max_pending_calls = (uint32_t) d.cfg.rpc_max_pending_calls,
									  .stream_buffer = (uint32_t) d.cfg.stream_buffer},
							  .app = &app,
						  },
				  });
	/* The Archipelago source polls with lws' HTTP client, so it needs the door's context. */
	if (d.ws && config_presence_sources(&d.cfg).archipelago)
	{
		d.archipelago = archipelago_create(
			d.loop, ws_context(), d.redis,
			&(ArchipelagoOptions){.stats_url = d.cfg.archipelago_stats_url,
								  .poll_interval_ms = d.cfg.archipelago_poll_interval_ms});
		if (!d.archipelago)
			log_error("cannot start the Archipelago presence source");
	}
	/* Profiles from the registry, in the background; answers never wait for it. */
	if (d.ws && d.cfg.registry_url[0] != '\0')
	{
		d.registry = registry_create(
			d.loop, ws_context(), d.pg,
			&(RegistryOptions){.url = d.cfg.registry_url, .timeout_ms = d.cfg.registry_timeout_ms});
		if (!d.registry)
			log_error("cannot start the profile registry client");
	}

	uv_timer_init(d.loop, &d.drain);
	d.drain.data = &d;
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	d.sigterm.data = d.sigint.data = &d;
	if (!d.ws || (config_presence_sources(&d.cfg).archipelago && !d.archipelago) ||
		(d.cfg.registry_url[0] != '\0' && !d.registry))
	{
		/* Logged by ws_create, start_presence or archipelago_create; still close the pool and
		 * handles properly before exiting. */
		daemon_finish(&d);
		uv_run(d.loop, UV_RUN_DEFAULT);
		/* A context ws_create destroyed half-way is freed like after ws_destroy (ws.h). */
		ws_release();
		uv_run(d.loop, UV_RUN_DEFAULT);
		uv_loop_close(d.loop);
		return 1;
	}
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);

	uv_run(d.loop, UV_RUN_DEFAULT);
	/* lws frees the rest of its context only after the loop closed its handles (ws.h). */
	ws_release();
	uv_run(d.loop, UV_RUN_DEFAULT);

	rc = uv_loop_close(d.loop);
	if (rc != 0)
	{
		log_error("shutdown: the loop still has open handles (%s)", uv_strerror(rc));
		return 1;
	}
	log_info("shutdown complete");
	return 0;
}
