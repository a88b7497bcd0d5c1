/*
 * http.c — the door's HTTP endpoints on the WebSocket port: GET /health/live, /status (the door's
 * connection counts plus what the application adds, DoorApp.status) and /metrics (Prometheus
 * text). Every answer is built whole when the request arrives; the writable callbacks only copy
 * it out, headers first, then the body in HTTP_CHUNK pieces, one lws_write per callback. Any
 * other method than GET or HEAD is answered 405 and the connection closed. Loop thread.
 */
#include "door/http.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "door/app.h"
#include "door/conn.h"
#include "main/metrics.h"

/* Bodies are written in pieces of this size, one per writable callback. */
#define HTTP_CHUNK 4096

struct HttpReply
{
	unsigned int status;
	const char	*type;
	char		*body; /* malloc'd */
	size_t		 len;
	size_t		 sent;
	bool		 headers_sent;
	bool		 head_only; /* HEAD: headers only */
	bool		 close;		/* not GET/HEAD: close after the answer */
};

static struct
{
	uv_loop_t	  *loop;
	const DoorApp *app;
	uint64_t	   started_at;
} http;

/* Shared by every writable callback: filled and handed to lws_write at once. */
static uint8_t http_buf[LWS_PRE + HTTP_CHUNK];

void
http_init(uv_loop_t *loop, const DoorApp *app)
{
	http.loop = loop;
	http.app = app;
	http.started_at = uv_now(loop);
}

static char *
status_json(size_t *len)
{
	json_t *o;
	char   *body = NULL;

	o = json_pack("{s:I, s:I, s:I, s:I, s:I}", "uptime_seconds",
				  (json_int_t) ((uv_now(http.loop) - http.started_at) / 1000), "connections",
				  (json_int_t) conn_admitted_count(), "authenticated",
				  (json_int_t) (conn_admitted_count() - conn_unauthenticated_count()),
				  "unauthenticated", (json_int_t) conn_unauthenticated_count(), "streams",
				  (json_int_t) conn_stream_count());
	if (o && http.app->status(o) == 0)
		body = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	if (body)
		*len = strlen(body);
	return body;
}

static char *
text_body(const char *text, size_t *len)
{
	*len = strlen(text);
	return strdup(text);
}

/* Builds the whole answer up front; the writable callbacks only copy it out. */
HttpReply *
http_route(struct lws *wsi, const char *path)
{
	HttpReply *r = calloc(1, sizeof(HttpReply));
	bool	   get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool	   head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;

	if (!r)
		return NULL;
	r->head_only = head;
	r->status = HTTP_STATUS_OK;
	r->type = "text/plain; charset=utf-8";
	if (!get && !head)
	{
		r->status = HTTP_STATUS_METHOD_NOT_ALLOWED;
		r->close = true;
		r->body = text_body("method not allowed\n", &r->len);
	}
	else if (strcmp(path, "/health/live") == 0)
		r->body = text_body("ok", &r->len);
	else if (strcmp(path, "/status") == 0)
	{
		r->type = "application/json";
		r->body = status_json(&r->len);
	}
	else if (strcmp(path, "/metrics") == 0)
	{
		r->type = "text/plain; version=0.0.4; charset=utf-8";
		metrics_gauge_set(G_STREAMS, (int64_t) conn_stream_count());
		r->body = metrics_render(&r->len);
	}
	else
	{
		r->status = HTTP_STATUS_NOT_FOUND;
		r->body = text_body("not found\n", &r->len);
	}
	if (!r->body)
	{
		free(r);
		return NULL;
	}
	return r;
}

void
http_free(HttpReply **reply)
{
	if (!*reply)
		return;
	free((*reply)->body);
	free(*reply);
	*reply = NULL;
}

static int
http_done(struct lws *wsi, HttpReply **reply)
{
	bool close = (*reply)->close;

	http_free(reply);
	if (close)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* LWS_CALLBACK_HTTP_WRITEABLE: headers first, then the body in chunks, one write each. */
int
http_writable(struct lws *wsi, HttpReply **reply)
{
	HttpReply *r = *reply;
	uint8_t	  *start = http_buf + LWS_PRE;
	uint8_t	  *p = start;
	uint8_t	  *end = http_buf + sizeof(http_buf) - 1;
	size_t	   chunk;
	bool	   final;

	if (!r)
		return 0;
	if (!r->headers_sent)
	{
		if (lws_add_http_common_headers(wsi, r->status, r->type, (lws_filepos_t) r->len, &p, end) ||
			lws_add_http_header_by_name(wsi, (const unsigned char *) "cache-control:",
										(const unsigned char *) "no-store", 8, &p, end) ||
			lws_finalize_write_http_header(wsi, start, &p, end))
			return -1;
		r->headers_sent = true;
		if (r->head_only || r->len == 0)
			return http_done(wsi, reply);
		lws_callback_on_writable(wsi);
		return 0;
	}
	chunk = r->len - r->sent < HTTP_CHUNK ? r->len - r->sent : HTTP_CHUNK;
	final = r->sent + chunk == r->len;
	memcpy(start, r->body + r->sent, chunk);
	if (lws_write(wsi, start, chunk, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int) chunk)
		return -1;
	r->sent += chunk;
	if (final)
		return http_done(wsi, reply);
	lws_callback_on_writable(wsi);
	return 0;
}
