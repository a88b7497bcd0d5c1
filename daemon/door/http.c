/*
 * http.c — the door's HTTP endpoints on the WebSocket port: GET /health/live, /status (the door's
 * connection counts plus what the application adds, DoorApp.status) and /metrics (Prometheus
 * text). Every answer is built whole when the request arrives (or, for a route the application
 * took, when it calls http_answer_send); the writable callbacks only copy it out, headers first, then the body in HTTP_CHUNK pieces, one lws_write per callback. Any
 * other method than GET or HEAD is answered 405 and the connection closed. Loop thread.
 */
#include "door/http.h"

#include <libwebsockets.h>
#include <stdbool.h>
#include <stdio.h>
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
	bool		 head_only;	   /* HEAD: headers only */
	bool		 close;		   /* not GET/HEAD: close after the answer */
	HttpAnswer	*answer;	   /* the application still owes the answer: nothing to write yet */
	char		 type_buf[64]; /* the application's content type */
};

/*
 * What the application holds while it owes an answer. The door never frees it: the connection
 * may close first (http_free then clears wsi and reply), and http_answer_send frees it either
 * way, so the application's pointer stays valid until it has answered.
 */
struct HttpAnswer
{
	struct lws *wsi;   /* NULL once the client has gone */
	HttpReply  *reply; /* filled by http_answer_send */
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

/* Offers the request to the application; true when it took it (r then waits for its answer, or
 * has it already). */
static bool
http_offer(struct lws *wsi, HttpReply *r, const char *method, const char *path)
{
	HttpAnswer *a = calloc(1, sizeof(HttpAnswer));

	if (!a)
		return false;
	a->wsi = wsi;
	a->reply = r;
	r->answer = a;
	if (http.app->http(method, path, a))
		return true;
	r->answer = NULL;
	free(a);
	return false;
}

void
http_answer_send(HttpAnswer *answer, unsigned int status, const char *content_type,
				 const char *body)
{
	HttpReply *r = answer->reply;

	if (answer->wsi && r)
	{
		r->answer = NULL;
		r->status = status;
		snprintf(r->type_buf, sizeof(r->type_buf), "%s", content_type);
		r->type = r->type_buf;
		r->body = text_body(body, &r->len);
		if (!r->body)
		{
			r->status = HTTP_STATUS_INTERNAL_SERVER_ERROR;
			r->close = true;
			r->len = 0;
		}
		lws_callback_on_writable(answer->wsi);
	}
	free(answer);
}

/* Builds the whole answer up front (a route the application took: when it answers); the writable
 * callbacks only copy it out. */
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
	else if (http.app->http && http_offer(wsi, r, head ? "HEAD" : "GET", path))
		return r;
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
	if ((*reply)->answer)
	{
		(*reply)->answer->wsi = NULL;
		(*reply)->answer->reply = NULL;
	}
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

	if (!r || r->answer)
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
