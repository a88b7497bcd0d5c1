/*
 * ws.c — the door's server: one libwebsockets 4.1.6 context on the daemon's libuv loop, one
 * protocol that serves WebSocket clients at "/" (conn.c) and HTTP on the same port (http.c).
 *
 * This file owns what is lws' business: creating and freeing the context on a foreign loop,
 * routing each lws callback to the connection or the HTTP answer it belongs to, refusing
 * upgrades on other paths, lws' own log lines, and the descriptor budget. The connections
 * themselves, their state machine, queues and close reasons, are conn.c's.
 *
 * Descriptors: lws gets the whole table (fd_limit_per_thread = the process limit), because a
 * smaller one makes lws 4.1 find the connection of every socket event by walking its table,
 * which under fan-out to 10,000 connections cost a tenth of the daemon's CPU. The process keeps
 * WS_FD_RESERVE descriptors for itself (PostgreSQL, Redis, NATS) by refusing, in the accept
 * filter, sockets numbered beyond its share: descriptors are handed out lowest first.
 *
 * Everything here runs on the loop thread.
 */
#include "door/ws.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "door/conn.h"
#include "door/http.h"
#include "main/log.h"

/* Per-connection receive buffer: 512 bytes costs ~1.9 KB per idle connection
 * (doc/event-loop.md). */
#define WS_RX_BUFFER 512
/* Largest single send(); frames above it are sent by lws in several writes. */
#define WS_TX_PACKET 65536
/* File descriptors beyond max_connections: HTTP scrapes, refused upgrades, libpq, stdio. */
#define WS_FD_HEADROOM 1024
/* Descriptors the process holds besides lws' sockets: stdio, the loop's own, PostgreSQL, Redis,
 * NATS. lws stops accepting when its own table is full, but not when the process runs out:
 * then accept() fails with EMFILE on every turn of the loop, a busy loop that also floods the
 * log. So sockets are refused this much below the descriptor limit (ws_fd_limit). */
#define WS_FD_RESERVE 256
/* The same lws log line at most once a second; repeats are counted. */
#define WS_LWS_LOG_REPEAT_MS 1000
/* Longest listen address kept. */
#define WS_HOST_MAX 256

/* lws' per-connection user space; zeroed by lws. One protocol serves both HTTP and WebSocket. */
typedef struct WsSession
{
	Conn	  *conn;
	HttpReply *http;
} WsSession;

struct Ws
{
	bool				active;
	bool				abandoned; /* ws_create failed half-way: the context is never destroyed */
	bool				shutting_down;
	uv_loop_t		   *loop;
	void			   *foreign_loops[1];
	struct lws_context *context;
	WsOptions			opts;
	char				host[WS_HOST_MAX];
	lws_retry_bo_t		idle_policy;
	unsigned int		fd_accept_limit; /* accepted sockets numbered from here are refused */
	struct lws_vhost   *http_vhost;		 /* HTTP_PORT's, NULL without one */
};

/* The name of the HTTP-only vhost (archipelago.c adds a client vhost of its own). */
#define WS_HTTP_VHOST "sociald-http"


/* One server per process: lws may call back after ws_destroy(). */
static Ws server;

/* Only path "/" upgrades to WebSocket, and only on the WebSocket port; anything else fails the
 * handshake. */
static int
ws_filter_upgrade(struct lws *wsi)
{
	char uri[64] = "";

	if (server.http_vhost && lws_get_vhost(wsi) == server.http_vhost)
	{
		log_debug("refused WebSocket upgrade on the HTTP port");
		return -1;
	}

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0 || strcmp(uri, "/") != 0)
	{
		log_debug("refused WebSocket upgrade on path %s", uri);
		return -1;
	}
	return 0;
}

/* The one protocol callback, for HTTP and WebSocket alike. Loop thread. */
static int
ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	WsSession *pss = user;

	/* lws reports some requests it answers by itself (an OPTIONS, say) on a connection that
	 * never got its user space: nothing of ours to look at then. */
	if (!pss && reason != LWS_CALLBACK_FILTER_NETWORK_CONNECTION &&
		reason != LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason)
	{
		case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
			/* Draining: refuse new TCP connections outright. And keep WS_FD_RESERVE descriptors
			 * for the process: descriptors are handed out lowest first, so a socket numbered
			 * at or above the limit means the limit is in use (see ws_fd_limit). */
			if (server.shutting_down)
				return -1;
			return (intptr_t) in >= (intptr_t) server.fd_accept_limit ? -1 : 0;
		case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
			return ws_filter_upgrade(wsi);
		case LWS_CALLBACK_ESTABLISHED:
			http_free(&pss->http);
			pss->conn = conn_open(wsi);
			return pss->conn ? 0 : -1;
		case LWS_CALLBACK_RECEIVE:
			if (pss->conn)
				conn_receive(pss->conn, in, len);
			return 0;
		case LWS_CALLBACK_RECEIVE_PONG:
			if (pss->conn)
				conn_pong(pss->conn);
			return 0;
		case LWS_CALLBACK_SERVER_WRITEABLE:
			return pss->conn ? conn_writable(pss->conn) : 0;
		case LWS_CALLBACK_TIMER:
			return pss->conn ? conn_timer(pss->conn) : 0;
		case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
			if (pss->conn)
				conn_peer_closed(pss->conn, in, len);
			return 0;
		case LWS_CALLBACK_CLOSED:
			if (pss->conn)
			{
				conn_finish(pss->conn);
				pss->conn = NULL;
			}
			return 0;
		case LWS_CALLBACK_HTTP:
			pss->http = http_route(wsi, in ? (const char *) in : "");
			if (!pss->http)
				return -1;
			lws_callback_on_writable(wsi);
			return 0;
		case LWS_CALLBACK_HTTP_BODY:
			/* A request body (POST, PUT, ...) is read and dropped: the answer is 405 anyway,
			 * and it can only go out once lws has taken the whole body. */
			return 0;
		case LWS_CALLBACK_HTTP_BODY_COMPLETION:
			if (pss->http)
				lws_callback_on_writable(wsi);
			return 0;
		case LWS_CALLBACK_HTTP_WRITEABLE:
			return http_writable(wsi, &pss->http);
		case LWS_CALLBACK_CLOSED_HTTP:
		case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
			/* lws skips CLOSED_HTTP for a connection that goes away in some states (while
			 * a request body arrives, say); the protocol is always dropped. */
			http_free(&pss->http);
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols ws_protocols[] = {
	{"sociald", ws_callback, sizeof(WsSession), WS_RX_BUFFER, 0, NULL, WS_TX_PACKET},
	{NULL, NULL, 0, 0, 0, NULL, 0}};

/* lws' own log lines, through ours, one level down: what lws calls an error or a warning is
 * mostly a client misbehaving (a refused upgrade, a bad handshake), which must not be able to
 * flood the daemon's warnings. Our own failures are logged where they happen. */
static void
ws_lws_log(int level, const char *line)
{
	/* lws repeats some lines in a tight loop (a failing accept(), say): one a second, counted */
	static char		last[160];
	static uint64_t last_at;
	static unsigned repeats;
	uint64_t		now = server.loop ? uv_now(server.loop) : 0;
	int				n = (int) strlen(line);
	LogLevel		l = (level & LLL_ERR)	 ? LOG_LEVEL_WARN
						: (level & LLL_WARN) ? LOG_LEVEL_INFO
											 : LOG_LEVEL_DEBUG;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n < (int) sizeof(last) && strncmp(last, line, (size_t) n) == 0 && last[n] == '\0' &&
		now - last_at < WS_LWS_LOG_REPEAT_MS)
	{
		repeats++;
		return;
	}
	if (repeats)
		LOG_AT(l, "lws: the last line was repeated %u more times", repeats);
	repeats = 0;
	last_at = now;
	snprintf(last, sizeof(last), "%.*s", n, line);
	LOG_AT(l, "lws: %.*s", n, line);
}

/*
 * Sets the soft descriptor limit to what max_connections needs (raising it when allowed, and
 * lowering a huge one, since lws sizes its tables by it); returns the limit, for lws'
 * fd_limit_per_thread, and sets server.fd_accept_limit.
 *
 * lws must get the whole table: with fd_limit_per_thread below the process limit, lws 4.1 finds
 * the connection of every socket event by walking its whole table, which under fan-out to
 * 10,000 connections cost a tenth of the daemon's CPU. So the reserve the process keeps for
 * itself (WS_FD_RESERVE) is enforced in the accept filter instead, by the new socket's number.
 */
static unsigned int
ws_fd_limit(int max_connections)
{
	struct rlimit rl;
	rlim_t		  want = (rlim_t) max_connections + WS_FD_HEADROOM; /* for lws */
	rlim_t		  need = want + WS_FD_RESERVE;						/* for the process */
	rlim_t		  old;

	server.fd_accept_limit = (unsigned int) want;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return (unsigned int) need;
	old = rl.rlim_cur;
	if (rl.rlim_cur != need)
	{
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur == RLIM_INFINITY)
		return (unsigned int) need;
	if (rl.rlim_cur < need)
	{
		server.fd_accept_limit =
			(unsigned int) (rl.rlim_cur > 2 * WS_FD_RESERVE ? rl.rlim_cur - WS_FD_RESERVE
															: rl.rlim_cur / 2);
		log_warn("open file limit %llu is below WS_MAX_CONNECTIONS + %d: at most %u sockets "
				 "are served at once, connections beyond them are refused",
				 (unsigned long long) rl.rlim_cur, WS_FD_HEADROOM + WS_FD_RESERVE,
				 server.fd_accept_limit);
	}
	return (unsigned int) rl.rlim_cur;
}

/*
 * HTTP_PORT: a second vhost on the same context and loop, with the same protocol (so the same
 * HTTP routes) and the listen address of the first; ws_filter_upgrade refuses WebSocket on it.
 * -1 when it cannot listen (logged).
 */
static int
ws_create_http_vhost(const struct lws_context_creation_info *ctx_info)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.vhost_name = WS_HTTP_VHOST;
	info.port = server.opts.http_port;
	info.iface = ctx_info->iface;
	info.options = ctx_info->options & LWS_SERVER_OPTION_DISABLE_IPV6;
	info.protocols = ws_protocols;
	info.retry_and_idle_policy = &server.idle_policy;
	info.server_string = "sociald";
	server.http_vhost = lws_create_vhost(server.context, &info);
	if (!server.http_vhost || lws_get_vhost_listen_port(server.http_vhost) <= 0)
	{
		log_error("ws: cannot listen on %s port %d (HTTP_PORT): could not bind (is the port in "
				  "use?)",
				  server.host, server.opts.http_port);
		server.http_vhost = NULL;
		return -1;
	}
	return 0;
}

Ws *
ws_create(uv_loop_t *loop, const WsOptions *opts)
{
	struct lws_context_creation_info info;
	struct lws_vhost				*vhost;

	if (server.active)
	{
		log_error("ws: a server already exists");
		return NULL;
	}
	if (!opts->conn.app || !opts->conn.app->module || !opts->conn.app->ready ||
		!opts->conn.app->call || !opts->conn.app->stream_open || !opts->conn.app->stream_closed ||
		!opts->conn.app->closed || !opts->conn.app->status)
	{
		log_error("ws: the application's callbacks are missing");
		return NULL;
	}
	memset(&server, 0, sizeof(server));
	server.loop = loop;
	server.opts = *opts;
	snprintf(server.host, sizeof(server.host), "%s", opts->host ? opts->host : "0.0.0.0");
	server.opts.host = server.host;
	/* lws' keepalive off (no hangup time): conn.c pings and times out idle connections itself,
	 * without lws' sorted timer list on every message. lws would apply its own defaults without
	 * a policy. */
	server.idle_policy.secs_since_valid_ping = 0;
	server.idle_policy.secs_since_valid_hangup = 0;
	if (conn_table_create(loop, &server.opts.conn) != 0)
	{
		log_error("ws: out of memory");
		return NULL;
	}
	http_init(loop, server.opts.conn.app);

	lws_set_log_level(LLL_ERR | LLL_WARN |
						  (log_level >= LOG_LEVEL_DEBUG ? LLL_NOTICE | LLL_INFO | LLL_DEBUG : 0),
					  ws_lws_log);
	memset(&info, 0, sizeof(info));
	/* RFC 6455 8.1: a TEXT frame that is not UTF-8 fails the connection (lws closes with 1007) */
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
	server.foreign_loops[0] = loop;
	info.foreign_loops = server.foreign_loops;
	info.port = opts->port;
	/* lws binds every interface for a NULL iface; an IPv4 wildcard also means "no IPv6". */
	if (strcmp(server.host, "0.0.0.0") == 0)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	else if (strcmp(server.host, "::") != 0)
		info.iface = server.host;
	info.protocols = ws_protocols;
	info.gid = -1;
	info.uid = -1;
	info.fd_limit_per_thread = ws_fd_limit(opts->conn.max_connections);
	info.retry_and_idle_policy = &server.idle_policy;
	info.server_string = "sociald";
	info.pcontext = &server.context;

	server.context = lws_create_context(&info);
	if (!server.context)
	{
		log_error("ws: cannot listen on %s port %d (lws_create_context failed)", server.host,
				  opts->port);
		conn_table_destroy();
		return NULL;
	}
	/* On a foreign loop lws 4.1.6 hands back a context even when it could not make the default
	 * vhost ("ERROR on binding", the port is taken): the daemon would run listening on nothing. */
	vhost = lws_get_vhost_by_name(server.context, "default");
	if (!vhost || lws_get_vhost_listen_port(vhost) <= 0)
	{
		log_error("ws: cannot listen on %s port %d: could not bind (is the port in use?)",
				  server.host, opts->port);
		/* Left to the process exit: destroying a context without its vhost on a foreign loop
		 * unloads lws' event plugin under handles still closing (a crash). It owns no socket
		 * and no handle that keeps the loop alive. */
		server.abandoned = true;
		conn_table_destroy();
		return NULL;
	}
	if (opts->http_port > 0 && opts->http_port != opts->port && ws_create_http_vhost(&info) != 0)
	{
		/* The context and its WebSocket listener are up: destroy them as ws_destroy does (the
		 * caller runs the loop and ws_release). */
		lws_context_destroy(server.context);
		conn_table_destroy();
		return NULL;
	}
	server.active = true;
	log_info("listening on %s port %d (WebSocket at /, HTTP /health/live /status /metrics)",
			 server.host, opts->port);
	if (server.http_vhost)
		log_info("listening on %s port %d (HTTP only: /health/live /status /metrics and the "
				 "application's routes)",
				 server.host, opts->http_port);
	return &server;
}

void
ws_shutdown(Ws *ws)
{
	if (!ws || !ws->active || ws->shutting_down)
		return;
	ws->shutting_down = true;
	log_info("ws: closing %zu connections", conn_admitted_count());
	conn_close_all(CONN_CLOSE_SHUTDOWN);
}

size_t
ws_open_count(const Ws *ws)
{
	return ws && ws->active ? conn_open_count() : 0;
}

void
ws_destroy(Ws *ws)
{
	if (!ws || !ws->active)
		return;
	/* Unlist everything first: lws reports the closes of what remains during destruction. */
	ws_shutdown(ws);
	if (ws->context)
		lws_context_destroy(ws->context);
	conn_table_destroy();
	ws->active = false;
}

struct lws_context *
ws_context(void)
{
	return server.active ? server.context : NULL;
}

void
ws_release(void)
{
	/* lws clears server.context (info.pcontext) once the context is completely freed. */
	if (!server.active && server.context && !server.abandoned)
		lws_context_destroy(server.context);
}
