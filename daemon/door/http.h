/*
 * http.h — the door's HTTP endpoints (/health/live, /status, /metrics), answered on the
 * WebSocket port by ws.c's one lws protocol. Loop thread.
 */
#ifndef SOCIALD_HTTP_H
#define SOCIALD_HTTP_H

#include <uv.h>

typedef struct HttpReply HttpReply;

struct lws;
struct DoorApp;

/* app (for /status) is borrowed and must outlive every request; uptime counts from now. */
void http_init(uv_loop_t *loop, const struct DoorApp *app);

/* LWS_CALLBACK_HTTP: the whole answer for path, to hand to http_writable; NULL out of memory. */
HttpReply *http_route(struct lws *wsi, const char *path);
/* LWS_CALLBACK_HTTP_WRITEABLE: writes the next piece; frees *reply once all is out. Returns what
 * the lws callback returns. */
int http_writable(struct lws *wsi, HttpReply **reply);
/* Frees *reply and clears it; a cleared reply is a no-op. */
void http_free(HttpReply **reply);

#endif /* SOCIALD_HTTP_H */
