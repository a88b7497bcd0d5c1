/*
 * registry.c — the profile registry client: POST {REGISTRY_URL}/profiles on the loop.
 *
 * Known set. A hash table of the addresses this instance has asked about, each with when it
 * last did (or a time set back so that a failed lookup is retried after REGISTRY_RETRY_MS) and
 * whether it waits in the queue. registry_want looks the address up; a fresh or queued one costs
 * nothing more. When the table is full, stale entries are dropped; if none is stale, the lookup
 * is skipped and counted.
 *
 * Requests. A zero-delay timer (so a whole page of friends lands in one batch) takes up to
 * REGISTRY_BATCH queued addresses per request while fewer than REGISTRY_MAX_INFLIGHT are in
 * flight. Each request resolves the host on libuv's thread pool (this lws build resolves
 * synchronously), connects with lws' HTTP client on our own vhost of the daemon's context (as
 * archipelago.c does), sends the JSON body, and reads the answer into a buffer bounded by
 * REGISTRY_BODY_MAX. A deadline timer bounds it all. The body is parsed on the thread pool,
 * which also builds the seven array parameters of the one upsert statement; the statement goes
 * through the pool and its result is only counted.
 *
 * Lifetime. A request is freed when its timer has closed, lws has let go of its connection and
 * no lookup or parse of it is out; the Registry when its own timer has closed and no request is
 * left. lws callbacks find the request through the connection's opaque user data, and the
 * Registry through a static pointer, NULL after registry_destroy.
 */
#include "social/registry.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/hashmap.h"
#include "main/log.h"
#include "main/metrics.h"
#include "presence/archipelago.h"
#include "social/social_pb.h"

#define REGISTRY_PROTOCOL "sociald-registry"
#define REGISTRY_LOG_EVERY_MS 60000
#ifndef REGISTRY_CA_BUNDLE
#define REGISTRY_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#endif

typedef struct RegKnown
{
	HashmapLink		 link;
	struct RegKnown *next_queued;
	uint64_t		 due; /* uv_now from which a lookup is due again; 0 = now */
	bool			 queued;
	char			 address[ADDRESS_LEN + 1];
} RegKnown;

typedef struct RegRequest
{
	struct Registry	  *r;
	struct RegRequest *prev, *next;
	char (*ids)[ADDRESS_LEN + 1];
	size_t			 n;
	char			*out; /* the request body */
	size_t			 out_len;
	uv_timer_t		 deadline;
	bool			 timer_open;
	uv_getaddrinfo_t resolve;
	bool			 resolving;
	bool			 parsing;
	bool			 done; /* failed or answered: nothing more happens to it */
	struct lws		*wsi;
	bool			 conn_gone; /* lws reported the connection closed or failed */
	char			 ip[256];
	int				 status;
	char			*body;
	size_t			 body_len, body_cap;
} RegRequest;

typedef struct RegParse
{
	uv_work_t	req;
	RegRequest *rq;
	char	   *body;
	size_t		len;
	long		valid;
	size_t		unusable;
	char		err[200];
	/* the upsert's parameters: text[] literals of addresses, names, claimed, pictures, r, g, b */
	char  *arr[7];
	size_t arr_len[7], arr_cap[7];
} RegParse;

struct Registry
{
	uv_loop_t		   *loop;
	struct lws_context *lws;
	struct lws_vhost   *vhost;
	PgPool			   *pg;
	bool				tls, numeric;
	int					port;
	char				host[256];
	char				path[1024];
	char				host_header[272];
	int					timeout_ms;
	bool				closing;
	bool				timer_open;
	uv_timer_t			pump;
	Hashmap				known;
	RegKnown		   *queue_head, *queue_tail;
	size_t				queued;
	RegRequest		   *requests; /* every request not yet freed */
	size_t				inflight; /* of which not done */
	bool				failing;
	uint64_t			logged_at, since_log;
};

static Registry *registry_live;

static const char registry_upsert_sql[] =
	"SELECT count(social.upsert_profile(p.a, p.n, p.c, p.u,"
	" CASE WHEN p.r IS NULL THEN NULL ELSE ARRAY[p.r, p.g, p.b] END))"
	" FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::real[], $6::real[],"
	" $7::real[]) AS p(a, n, c, u, r, g, b)";

/* ---- Pure parts ---- */

int
registry_url_parse(const char *url, bool *tls, char *host, size_t hostlen, bool *numeric, int *port,
				   char *path, size_t pathlen, char *host_header, size_t host_header_len, char *err,
				   size_t errlen)
{
	ArchipelagoUrl u;
	size_t		   base;

	/* The same rules as ARCHIPELAGO_STATS_URL; its parser appends "/peers" to the base path. */
	if (archipelago_url_parse(url, &u, err, errlen) != 0)
		return -1;
	base = strlen(u.path) - strlen("/peers");
	if (base + sizeof("/profiles") > pathlen || strlen(u.host) >= hostlen ||
		strlen(u.host_header) >= host_header_len)
	{
		snprintf(err, errlen, "the URL is too long");
		return -1;
	}
	memcpy(path, u.path, base);
	memcpy(path + base, "/profiles", sizeof("/profiles"));
	snprintf(host, hostlen, "%s", u.host);
	snprintf(host_header, host_header_len, "%s", u.host_header);
	*tls = u.tls;
	*numeric = u.numeric;
	*port = u.port;
	return 0;
}

static const char *
registry_nonempty(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s ? s : NULL;
}

static bool
registry_color(json_t *c, double out[3])
{
	static const char *const keys[] = {"r", "g", "b"};

	if (!json_is_object(c))
		return false;
	for (int i = 0; i < 3; i++)
	{
		json_t *v = json_object_get(c, keys[i]);

		if (!json_is_number(v))
			return false;
		out[i] = json_number_value(v);
		if (!isfinite(out[i]) || out[i] < 0 || out[i] > 1)
			return false;
	}
	return true;
}

long
registry_parse_profiles(const char *body, size_t len, RegistryProfileFn fn, void *ud,
						size_t *unusable, char *err, size_t errlen)
{
	json_t		*root;
	json_error_t je;
	long		 valid = 0;
	size_t		 i;
	json_t		*entry;

	*unusable = 0;
	err[0] = '\0';
	if (len > REGISTRY_BODY_MAX)
	{
		snprintf(err, errlen, "the body is over %d bytes", REGISTRY_BODY_MAX);
		return -1;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
	{
		snprintf(err, errlen, "not JSON: %s (line %d)", je.text, je.line);
		return -1;
	}
	if (!json_is_array(root))
	{
		snprintf(err, errlen, "the body is not a JSON array");
		json_decref(root);
		return -1;
	}
	json_array_foreach(root, i, entry)
	{
		json_t		   *avatar = json_array_get(json_object_get(entry, "avatars"), 0);
		const char	   *id = registry_nonempty(avatar, "userId");
		RegistryProfile p;

		memset(&p, 0, sizeof(p));
		p.name = registry_nonempty(avatar, "name");
		if (!p.name)
			p.name = registry_nonempty(avatar, "unclaimedName");
		p.picture = registry_nonempty(
			json_object_get(json_object_get(avatar, "avatar"), "snapshots"), "face256");
		if (!id || !archipelago_address(id, p.address) || !p.name || !p.picture)
		{
			(*unusable)++;
			continue;
		}
		p.has_claimed_name = json_is_true(json_object_get(avatar, "hasClaimedName"));
		p.has_color = registry_color(json_object_get(avatar, "nameColor"), p.color);
		if (fn(ud, &p) != 0)
		{
			snprintf(err, errlen, "stopped at profile %zu", i);
			json_decref(root);
			return -1;
		}
		valid++;
	}
	json_decref(root);
	return valid;
}

/* ---- Building the upsert's array parameters (thread pool) ---- */

static bool
registry_arr_put(RegParse *job, int k, const char *s, size_t n)
{
	if (job->arr_len[k] + n + 1 > job->arr_cap[k])
	{
		size_t ncap = job->arr_cap[k] ? job->arr_cap[k] : 256;
		char  *m;

		while (ncap < job->arr_len[k] + n + 1)
			ncap *= 2;
		m = realloc(job->arr[k], ncap);
		if (!m)
			return false;
		job->arr[k] = m;
		job->arr_cap[k] = ncap;
	}
	memcpy(job->arr[k] + job->arr_len[k], s, n);
	job->arr_len[k] += n;
	job->arr[k][job->arr_len[k]] = '\0';
	return true;
}

/* Appends one element (NULL for SQL NULL) to array k, quoted and escaped. */
static bool
registry_arr_elem(RegParse *job, int k, const char *v)
{
	if (!registry_arr_put(job, k, job->arr_len[k] > 1 ? "," : "", job->arr_len[k] > 1 ? 1 : 0))
		return false;
	if (!v)
		return registry_arr_put(job, k, "NULL", 4);
	if (!registry_arr_put(job, k, "\"", 1))
		return false;
	for (; *v; v++)
	{
		if ((*v == '"' || *v == '\\') && !registry_arr_put(job, k, "\\", 1))
			return false;
		if (!registry_arr_put(job, k, v, 1))
			return false;
	}
	return registry_arr_put(job, k, "\"", 1);
}

static int
registry_collect(void *ud, const RegistryProfile *p)
{
	RegParse *job = ud;
	char	  c[3][32];

	for (int i = 0; i < 3; i++)
		snprintf(c[i], sizeof(c[i]), "%.6g", p->color[i]);
	if (!registry_arr_elem(job, 0, p->address) || !registry_arr_elem(job, 1, p->name) ||
		!registry_arr_elem(job, 2, p->has_claimed_name ? "t" : "f") ||
		!registry_arr_elem(job, 3, p->picture))
		return -1;
	for (int i = 0; i < 3; i++)
		if (!registry_arr_elem(job, 4 + i, p->has_color ? c[i] : NULL))
			return -1;
	return 0;
}

static void
registry_parse_work(uv_work_t *req)
{
	RegParse *job = req->data;

	for (int k = 0; k < 7; k++)
		if (!registry_arr_put(job, k, "{", 1))
		{
			job->valid = -1;
			snprintf(job->err, sizeof(job->err), "out of memory");
			return;
		}
	job->valid = registry_parse_profiles(job->body ? job->body : "", job->len, registry_collect,
										 job, &job->unusable, job->err, sizeof(job->err));
	for (int k = 0; k < 7 && job->valid >= 0; k++)
		if (!registry_arr_put(job, k, "}", 1))
		{
			job->valid = -1;
			snprintf(job->err, sizeof(job->err), "out of memory");
		}
	free(job->body);
	job->body = NULL;
}

static void
registry_parse_free(RegParse *job)
{
	free(job->body);
	for (int k = 0; k < 7; k++)
		free(job->arr[k]);
	free(job);
}

/* ---- The known set and the queue ---- */

static size_t
registry_known_hash(const HashmapLink *l)
{
	return hashmap_hash_str(HASHMAP_ENTRY(l, RegKnown, link)->address);
}

static RegKnown *
registry_known_find(Registry *r, const char *address)
{
	for (HashmapLink *l = hashmap_chain(&r->known, hashmap_hash_str(address)); l; l = l->next)
	{
		RegKnown *k = HASHMAP_ENTRY(l, RegKnown, link);

		if (strcmp(k->address, address) == 0)
			return k;
	}
	return NULL;
}

static bool
registry_fresh(const Registry *r, const RegKnown *k)
{
	return uv_now(r->loop) < k->due;
}

/* The known set is full: drops every entry that is neither queued nor fresh. */
static void
registry_known_prune(Registry *r)
{
	size_t		 b = 0;
	HashmapLink *l = hashmap_next(&r->known, &b, NULL);

	while (l)
	{
		HashmapLink *next = hashmap_next(&r->known, &b, l);
		RegKnown	*k = HASHMAP_ENTRY(l, RegKnown, link);

		if (!k->queued && !registry_fresh(r, k))
		{
			hashmap_remove(&r->known, l);
			free(k);
		}
		l = next;
	}
}

static void registry_on_pump(uv_timer_t *t);

void
registry_want(Registry *r, const char *address)
{
	char	  lower[ADDRESS_LEN + 1];
	RegKnown *k;

	if (!r || r->closing || !address || !archipelago_address(address, lower))
		return;
	k = registry_known_find(r, lower);
	if (k && (k->queued || registry_fresh(r, k)))
		return;
	if (r->queued >= REGISTRY_QUEUE_MAX)
	{
		metrics_count(M_REGISTRY_SKIPPED, 1);
		return;
	}
	if (!k)
	{
		if (r->known.count >= REGISTRY_KNOWN_MAX)
			registry_known_prune(r);
		if (r->known.count >= REGISTRY_KNOWN_MAX || !hashmap_reserve(&r->known) ||
			!(k = calloc(1, sizeof(*k))))
		{
			metrics_count(M_REGISTRY_SKIPPED, 1);
			return;
		}
		memcpy(k->address, lower, sizeof(lower));
		hashmap_insert(&r->known, &k->link);
	}
	k->queued = true;
	k->next_queued = NULL;
	if (r->queue_tail)
		r->queue_tail->next_queued = k;
	else
		r->queue_head = k;
	r->queue_tail = k;
	r->queued++;
	if (!uv_is_active((uv_handle_t *) &r->pump))
		uv_timer_start(&r->pump, registry_on_pump, 0, 0);
}

static void
registry_profile_seen(void *ud, const char *address)
{
	registry_want(ud, address);
}

/* ---- Requests ---- */

static void
registry_failed(Registry *r, const char *why)
{
	uint64_t now = uv_now(r->loop);

	if (!r->failing || now - r->logged_at >= REGISTRY_LOG_EVERY_MS)
	{
		if (r->failing && r->since_log > 0)
			log_warn("registry: POST %s failed: %s (and %llu more since the last report)", r->path,
					 why, (unsigned long long) r->since_log);
		else
			log_warn("registry: POST %s failed: %s; answers use social.profiles meanwhile", r->path,
					 why);
		r->failing = true;
		r->logged_at = now;
		r->since_log = 0;
	}
	else
	{
		r->since_log++;
		log_debug("registry: POST %s failed: %s", r->path, why);
	}
}

static void
registry_maybe_free(Registry *r)
{
	if (r->closing && !r->timer_open && !r->requests)
	{
		hashmap_free(&r->known);
		free(r);
	}
}

static void
registry_request_maybe_free(RegRequest *rq)
{
	Registry *r = rq->r;

	if (!rq->done || rq->timer_open || rq->wsi || rq->resolving || rq->parsing)
		return;
	if (rq->prev)
		rq->prev->next = rq->next;
	else
		r->requests = rq->next;
	if (rq->next)
		rq->next->prev = rq->prev;
	free(rq->ids);
	free(rq->out);
	free(rq->body);
	free(rq);
	registry_maybe_free(r);
}

static void
registry_request_timer_closed(uv_handle_t *h)
{
	RegRequest *rq = h->data;

	rq->timer_open = false;
	registry_request_maybe_free(rq);
}

/* The request is over (ok or not): frees its slot and closes its timer. */
static void
registry_request_end(RegRequest *rq)
{
	Registry *r = rq->r;

	if (rq->done)
		return;
	rq->done = true;
	r->inflight--;
	uv_close((uv_handle_t *) &rq->deadline, registry_request_timer_closed);
	if (!r->closing && r->queued > 0 && !uv_is_active((uv_handle_t *) &r->pump))
		uv_timer_start(&r->pump, registry_on_pump, 0, 0);
}

/* A failed request: its addresses may be asked again after REGISTRY_RETRY_MS. */
static void
registry_request_fail(RegRequest *rq, const char *why, bool timeout)
{
	Registry *r = rq->r;

	if (rq->done)
		return;
	metrics_count(timeout ? M_REGISTRY_TIMEOUTS : M_REGISTRY_REQUESTS_FAILED, 1);
	if (!r->closing)
	{
		uint64_t now = uv_now(r->loop);

		registry_failed(r, why);
		for (size_t i = 0; i < rq->n; i++)
		{
			RegKnown *k = registry_known_find(r, rq->ids[i]);

			if (k && !k->queued)
				k->due = now + REGISTRY_RETRY_MS;
		}
	}
	registry_request_end(rq);
}

/* Closes the request's connection now; only from outside its lws callbacks. */
static void
registry_request_kill(RegRequest *rq)
{
	struct lws *wsi = rq->wsi;

	if (wsi)
	{
		lws_set_opaque_user_data(wsi, NULL);
		rq->wsi = NULL;
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
	}
}

static void
registry_on_deadline(uv_timer_t *t)
{
	RegRequest *rq = t->data;
	char		why[64];

	snprintf(why, sizeof(why), "no answer within %d ms", rq->r->timeout_ms);
	registry_request_fail(rq, why, true);
	registry_request_kill(rq);
	registry_request_maybe_free(rq);
}

static void
registry_on_stored(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	long n = (long) (intptr_t) ud;

	if (sqlstate)
	{
		log_warn("registry: cannot store %ld profiles: %s %s", n, sqlstate, message ? message : "");
		return;
	}
	metrics_count(M_REGISTRY_PROFILES_STORED, (uint64_t) n);
}

static void
registry_parsed(uv_work_t *req, int status)
{
	RegParse   *job = req->data;
	RegRequest *rq = job->rq;
	Registry   *r = rq->r;

	rq->parsing = false;
	if (r->closing || status != 0)
	{
		registry_request_end(rq);
		registry_parse_free(job);
		registry_request_maybe_free(rq);
		return;
	}
	if (job->valid < 0)
	{
		registry_request_fail(rq, job->err, false);
		registry_parse_free(job);
		registry_request_maybe_free(rq);
		return;
	}
	metrics_count(M_REGISTRY_REQUESTS_OK, 1);
	metrics_count(M_REGISTRY_UNUSABLE, job->unusable);
	if (r->failing)
		log_info("registry: POST %s answers again", r->path);
	r->failing = false;
	r->since_log = 0;
	log_debug("registry: %ld profiles for %zu ids (%zu unusable)", job->valid, rq->n,
			  job->unusable);
	if (job->valid > 0)
	{
		const char *const params[7] = {job->arr[0], job->arr[1], job->arr[2], job->arr[3],
									   job->arr[4], job->arr[5], job->arr[6]};

		if (pg_pool_query(r->pg, registry_upsert_sql, 7, params, registry_on_stored,
						  (void *) (intptr_t) job->valid) != 0)
			log_warn("registry: cannot queue the store of %ld profiles", job->valid);
	}
	registry_parse_free(job);
	registry_request_end(rq);
	registry_request_maybe_free(rq);
}

/* The whole answer is in (from the COMPLETED callback): parse it off the loop. */
static void
registry_fetched(RegRequest *rq)
{
	RegParse *job;

	if (rq->done || rq->parsing)
		return;
	if (rq->status != HTTP_STATUS_OK)
	{
		char why[48];

		snprintf(why, sizeof(why), "HTTP status %d", rq->status);
		registry_request_fail(rq, why, false);
		return;
	}
	job = calloc(1, sizeof(*job));
	if (!job)
	{
		registry_request_fail(rq, "out of memory", false);
		return;
	}
	job->rq = rq;
	job->body = rq->body;
	job->len = rq->body_len;
	job->req.data = job;
	rq->body = NULL;
	rq->body_len = rq->body_cap = 0;
	uv_timer_stop(&rq->deadline);
	if (uv_queue_work(rq->r->loop, &job->req, registry_parse_work, registry_parsed) != 0)
	{
		registry_parse_free(job);
		registry_request_fail(rq, "cannot queue the parse", false);
		return;
	}
	rq->parsing = true;
}

static int
registry_append(RegRequest *rq, const void *data, size_t len)
{
	if (len > REGISTRY_BODY_MAX - rq->body_len)
	{
		registry_request_fail(rq, "the body is over 8 MiB", false);
		return -1;
	}
	if (rq->body_len + len > rq->body_cap)
	{
		size_t ncap = rq->body_cap ? rq->body_cap : 16384;
		char  *n;

		while (ncap < rq->body_len + len)
			ncap *= 2;
		if (ncap > REGISTRY_BODY_MAX)
			ncap = REGISTRY_BODY_MAX;
		n = realloc(rq->body, ncap);
		if (!n)
		{
			registry_request_fail(rq, "out of memory for the body", false);
			return -1;
		}
		rq->body = n;
		rq->body_cap = ncap;
	}
	memcpy(rq->body + rq->body_len, data, len);
	rq->body_len += len;
	return 0;
}

static int
registry_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
				  size_t len)
{
	RegRequest *rq = wsi ? lws_get_opaque_user_data(wsi) : NULL;

	switch (reason)
	{
		case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		{
			uint8_t **p = in;
			uint8_t	 *end = (*p) + len;
			char	  cl[24];

			if (!rq)
				return -1;
			snprintf(cl, sizeof(cl), "%zu", rq->out_len);
			if (lws_add_http_header_by_name(wsi, (const uint8_t *) "accept:",
											(const uint8_t *) "application/json", 16, p, end) ||
				lws_add_http_header_by_name(wsi, (const uint8_t *) "content-type:",
											(const uint8_t *) "application/json", 16, p, end) ||
				lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
											 (const uint8_t *) cl, (int) strlen(cl), p, end))
				return -1;
			lws_client_http_body_pending(wsi, 1);
			lws_callback_on_writable(wsi);
			return 0;
		}
		case LWS_CALLBACK_CLIENT_HTTP_WRITEABLE:
		{
			uint8_t *buf;
			int		 n;

			if (!rq || rq->done)
				return -1;
			buf = malloc(LWS_PRE + rq->out_len);
			if (!buf)
				return -1;
			memcpy(buf + LWS_PRE, rq->out, rq->out_len);
			n = lws_write(wsi, buf + LWS_PRE, rq->out_len, LWS_WRITE_HTTP_FINAL);
			free(buf);
			if (n < (int) rq->out_len)
				return -1;
			lws_client_http_body_pending(wsi, 0);
			return 0;
		}
		case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
			if (rq)
			{
				char why[160];

				snprintf(why, sizeof(why), "%s", in ? (const char *) in : "connection failed");
				rq->wsi = NULL; /* lws frees it without a CLOSED callback */
				rq->conn_gone = true;
				registry_request_fail(rq, why, false);
				registry_request_maybe_free(rq);
			}
			return 0;
		case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
		{
			char cl[32];

			if (!rq || rq->done)
				return -1;
			rq->status = (int) lws_http_client_http_response(wsi);
			if (rq->status != HTTP_STATUS_OK)
			{
				char why[48];

				snprintf(why, sizeof(why), "HTTP status %d", rq->status);
				registry_request_fail(rq, why, false);
				return -1;
			}
			if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
				strtoull(cl, NULL, 10) > REGISTRY_BODY_MAX)
			{
				registry_request_fail(rq, "the body is over 8 MiB", false);
				return -1;
			}
			return 0;
		}
		case LWS_CALLBACK_RECEIVE_CLIENT_HTTP:
		{
			char  buf[LWS_PRE + 4096];
			char *px = buf + LWS_PRE;
			int	  lenx = (int) sizeof(buf) - LWS_PRE;

			if (!rq || rq->done)
				return -1;
			return lws_http_client_read(wsi, &px, &lenx) < 0 ? -1 : 0;
		}
		case LWS_CALLBACK_RECEIVE_CLIENT_HTTP_READ:
			if (!rq || rq->done)
				return -1;
			return registry_append(rq, in, len);
		case LWS_CALLBACK_COMPLETED_CLIENT_HTTP:
			if (rq)
				registry_fetched(rq);
			return -1; /* one request per connection */
		case LWS_CALLBACK_CLOSED_CLIENT_HTTP:
			if (rq)
			{
				lws_set_opaque_user_data(wsi, NULL);
				rq->wsi = NULL;
				rq->conn_gone = true;
				if (!rq->parsing)
					registry_request_fail(rq, "the connection closed before the body was complete",
										  false);
				registry_request_maybe_free(rq);
			}
			return 0;
		case LWS_CALLBACK_PROTOCOL_DESTROY:
			if (registry_live && lws_get_vhost(wsi) == registry_live->vhost)
				registry_live->vhost = NULL;
			return 0;
		default:
			return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static const struct lws_protocols registry_protocols[] = {
	{REGISTRY_PROTOCOL, registry_callback, 0, 0, 0, NULL, 0}, {NULL, NULL, 0, 0, 0, NULL, 0}};

static void
registry_connect(RegRequest *rq)
{
	Registry					  *r = rq->r;
	struct lws_client_connect_info i;
	struct lws					  *w;

	if (!r->vhost)
	{
		registry_request_fail(rq, "the lws context is gone", false);
		return;
	}
	memset(&i, 0, sizeof(i));
	i.context = r->lws;
	i.vhost = r->vhost;
	i.address = rq->ip;
	i.port = r->port;
	i.path = r->path;
	i.host = r->host_header;
	i.origin = r->host_header;
	i.method = "POST";
	i.protocol = REGISTRY_PROTOCOL;
	i.local_protocol_name = REGISTRY_PROTOCOL;
	i.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT | (r->tls ? LCCSCF_USE_SSL : 0);
	i.alpn = "http/1.1";
	i.opaque_user_data = rq;
	/* No pwsi: lws would write through it when the connection goes, after rq may be freed. A
	 * connection that failed inside the call has already said so (conn_gone). */
	rq->conn_gone = false;
	w = lws_client_connect_via_info(&i);
	if (!w)
		registry_request_fail(rq, "lws could not start the request", false);
	else if (!rq->conn_gone)
		rq->wsi = w;
}

static void
registry_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	RegRequest *rq = req->data;
	char		why[320];

	rq->resolving = false;
	if (rq->done || rq->r->closing)
	{
		uv_freeaddrinfo(res);
		registry_request_end(rq);
		registry_request_maybe_free(rq);
		return;
	}
	if (status != 0 || !res || uv_ip_name(res->ai_addr, rq->ip, sizeof(rq->ip)) != 0)
	{
		snprintf(why, sizeof(why), "cannot resolve %s: %s", rq->r->host,
				 status ? uv_strerror(status) : "no usable address");
		uv_freeaddrinfo(res);
		registry_request_fail(rq, why, false);
		registry_request_maybe_free(rq);
		return;
	}
	uv_freeaddrinfo(res);
	registry_connect(rq);
	registry_request_maybe_free(rq);
}

/* Takes up to REGISTRY_BATCH queued addresses into one request and starts it. */
static void
registry_start_one(Registry *r)
{
	RegRequest *rq = calloc(1, sizeof(*rq));
	size_t		cap = r->queued < REGISTRY_BATCH ? r->queued : REGISTRY_BATCH;
	uint64_t	now = uv_now(r->loop);
	size_t		off;

	if (rq)
	{
		rq->ids = calloc(cap, sizeof(*rq->ids));
		/* {"ids":[ + "0x…", per id + ]} */
		rq->out = malloc(16 + cap * (ADDRESS_LEN + 3));
	}
	if (!rq || !rq->ids || !rq->out)
	{
		if (rq)
		{
			free(rq->ids);
			free(rq->out);
			free(rq);
		}
		log_warn("registry: out of memory for a request");
		return;
	}
	off = (size_t) sprintf(rq->out, "{\"ids\":[");
	while (rq->n < cap && r->queue_head)
	{
		RegKnown *k = r->queue_head;

		r->queue_head = k->next_queued;
		if (!r->queue_head)
			r->queue_tail = NULL;
		r->queued--;
		k->queued = false;
		k->due = now + REGISTRY_PROFILE_TTL_MS;
		memcpy(rq->ids[rq->n], k->address, ADDRESS_LEN + 1);
		off += (size_t) sprintf(rq->out + off, "%s\"%s\"", rq->n ? "," : "", k->address);
		rq->n++;
	}
	off += (size_t) sprintf(rq->out + off, "]}");
	rq->out_len = off;
	rq->r = r;
	rq->next = r->requests;
	if (r->requests)
		r->requests->prev = rq;
	r->requests = rq;
	r->inflight++;
	uv_timer_init(r->loop, &rq->deadline);
	rq->deadline.data = rq;
	rq->timer_open = true;
	uv_timer_start(&rq->deadline, registry_on_deadline, (uint64_t) r->timeout_ms, 0);
	if (r->numeric)
	{
		snprintf(rq->ip, sizeof(rq->ip), "%s", r->host);
		registry_connect(rq);
		registry_request_maybe_free(rq);
		return;
	}
	{
		struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
		char			port[8];

		snprintf(port, sizeof(port), "%d", r->port);
		rq->resolve.data = rq;
		if (uv_getaddrinfo(r->loop, &rq->resolve, registry_on_resolved, r->host, port, &hints) != 0)
		{
			registry_request_fail(rq, "cannot start resolving the host name", false);
			registry_request_maybe_free(rq);
			return;
		}
		rq->resolving = true;
	}
}

static void
registry_on_pump(uv_timer_t *t)
{
	Registry *r = t->data;

	while (!r->closing && r->queued > 0 && r->inflight < REGISTRY_MAX_INFLIGHT)
	{
		size_t before = r->queued;

		registry_start_one(r);
		if (r->queued == before)
			break; /* out of memory: try again with the next want */
	}
}

static void
registry_pump_closed(uv_handle_t *h)
{
	Registry *r = h->data;

	r->timer_open = false;
	registry_maybe_free(r);
}

Registry *
registry_create(uv_loop_t *loop, struct lws_context *lws, PgPool *pg, const RegistryOptions *opts)
{
	struct lws_context_creation_info info;
	Registry						*r;
	char							 err[160];

	if (registry_live)
	{
		log_error("registry: a registry client already exists");
		return NULL;
	}
	if (!lws || !pg || opts->timeout_ms <= 0)
	{
		log_error("registry: needs the lws context, the PostgreSQL pool and a timeout");
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
	{
		log_error("registry: out of memory");
		return NULL;
	}
	if (registry_url_parse(opts->url, &r->tls, r->host, sizeof(r->host), &r->numeric, &r->port,
						   r->path, sizeof(r->path), r->host_header, sizeof(r->host_header), err,
						   sizeof(err)) != 0)
	{
		log_error("registry: REGISTRY_URL: %s", err);
		free(r);
		return NULL;
	}
	r->loop = loop;
	r->lws = lws;
	r->pg = pg;
	r->timeout_ms = opts->timeout_ms;
	hashmap_init(&r->known, 1024, registry_known_hash);

	memset(&info, 0, sizeof(info));
	info.vhost_name = "sociald-registry";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = registry_protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	if (r->tls && access(REGISTRY_CA_BUNDLE, R_OK) == 0)
		info.client_ssl_ca_filepath = REGISTRY_CA_BUNDLE;
	registry_live = r;
	r->vhost = lws_create_vhost(lws, &info);
	if (!r->vhost)
	{
		registry_live = NULL;
		log_error("registry: cannot create the lws client vhost");
		free(r);
		return NULL;
	}
	uv_timer_init(loop, &r->pump);
	r->pump.data = r;
	r->timer_open = true;
	social_pb_set_profile_hook(registry_profile_seen, r);
	log_info("registry: profiles from POST %s://%s%s (TTL %d s, timeout %d ms)",
			 r->tls ? "https" : "http", r->host_header, r->path, REGISTRY_PROFILE_TTL_MS / 1000,
			 r->timeout_ms);
	return r;
}

void
registry_destroy(Registry *r)
{
	RegRequest *rq;
	RegRequest *next;

	if (!r || r->closing)
		return;
	social_pb_set_profile_hook(NULL, NULL);
	r->closing = true;
	registry_live = NULL;
	for (rq = r->requests; rq; rq = next)
	{
		next = rq->next;
		if (rq->resolving)
			uv_cancel((uv_req_t *) &rq->resolve);
		registry_request_kill(rq);
		if (!rq->resolving && !rq->parsing)
			registry_request_end(rq);
	}
	if (r->vhost)
		lws_vhost_destroy(r->vhost);
	r->vhost = NULL;
	while (r->known.count > 0)
		free(HASHMAP_ENTRY(hashmap_pop(&r->known), RegKnown, link));
	r->queue_head = r->queue_tail = NULL;
	r->queued = 0;
	uv_close((uv_handle_t *) &r->pump, registry_pump_closed);
	log_info("registry: stopped");
}
