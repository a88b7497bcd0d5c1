/*
 * http.h — the door's HTTP endpoints (/health/live, /status, /metrics), answered on the
 * WebSocket port (and on HTTP_PORT) by ws.c's one lws protocol; any other GET is offered to the
 * application (DoorApp.http), which answers it later with http_answer_send. Loop thread.
 */
#ifndef SOCIALD_HTTP_H
#define SOCIALD_HTTP_H

#include <uv.h>

typedef struct HttpReply  HttpReply;
typedef struct HttpAnswer HttpAnswer;

struct lws;
struct DoorApp;

/* app (for /status) is borrowed and must outlive every request; uptime counts from now. */
void http_init(uv_loop_t *loop, const struct DoorApp *app);

/* LWS_CALLBACK_HTTP: the whole answer for path, to hand to http_writable; NULL out of memory. */
HttpReply *http_route(struct lws *wsi, const char *path);
/* LWS_CALLBACK_HTTP_WRITEABLE: writes the next piece; frees *reply once all is out. Returns what
 * the lws callback returns. */
int http_writable(struct lws *wsi, HttpReply **reply);
/* Frees *reply and clears it; a cleared reply is a no-op. An answer the application still owes
 * is detached: its http_answer_send will only free it. */
void http_free(HttpReply **reply);

/* The application's answer to a request it took (DoorApp.http): status, content type and body
 * (copied). Exactly once per answer; the answer is freed here, also when the client has gone
 * (then nothing is sent). */
void http_answer_send(HttpAnswer *answer, unsigned int status, const char *content_type,
					  const char *body);

#endif /* SOCIALD_HTTP_H */
