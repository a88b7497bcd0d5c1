/*
 * privacy.c — GET /v1/users/<address>/privacy-settings (privacy.h): the address from the path,
 * one social.get_settings query through the pool, the answer as the reference shapes it.
 *
 * The query cannot hang the request: the pool fails it at once while no connection is up (08001)
 * and cancels one that runs past PG_QUERY_TIMEOUT_MS (57014); both, like a lost connection or a
 * full queue, answer 503. A client that leaves meanwhile costs nothing: the door drops the answer.
 */
#include "social/privacy.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "lib/address.h"
#include "main/log.h"

#define PRIVACY_PREFIX "/v1/users/"
#define PRIVACY_SUFFIX "/privacy-settings"

static const char privacy_sql[] =
	"SELECT s.private_messages_privacy FROM social.get_settings($1) s";

/* Borrowed at privacy_init; NULL after privacy_shutdown. */
static PgPool *privacy_pg;

void
privacy_init(PgPool *pg)
{
	privacy_pg = pg;
}

void
privacy_shutdown(void)
{
	privacy_pg = NULL;
}

/* {"error": error, "message": message} with status. */
static void
privacy_error(HttpAnswer *answer, unsigned int status, const char *error, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "error", error, "message", message);
	char   *body = o ? json_dumps(o, JSON_COMPACT) : NULL;

	http_answer_send(answer, status, "application/json", body ? body : "{}");
	free(body);
	json_decref(o);
}

/* Connection trouble, a timeout, a full queue: the database is not there for us now. */
static bool
privacy_unavailable(const char *sqlstate)
{
	return strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57014") == 0 ||
		   strcmp(sqlstate, "53300") == 0;
}

static void
privacy_on_result(void *ud, const PGresult *res, const char *sqlstate, const char *message)
{
	HttpAnswer *answer = ud;
	json_t	   *o;
	char	   *body;

	if (sqlstate)
	{
		/* The pool logs and counts connection trouble already: one line per request would
		 * flood the log while the database is down. */
		if (privacy_unavailable(sqlstate))
		{
			log_debug("privacy-settings: %s %s", sqlstate, message ? message : "");
			privacy_error(answer, 503, "Service Unavailable", "the database is unavailable");
			return;
		}
		log_warn("privacy-settings: query failed: %s %s", sqlstate, message ? message : "");
		privacy_error(answer, 500, "Internal Server Error", "the query failed");
		return;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
	{
		privacy_error(answer, 500, "Internal Server Error", "unexpected query result");
		return;
	}
	o = json_pack("{s:s}", "private_messages_privacy", PQgetvalue(res, 0, 0));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (body)
		http_answer_send(answer, 200, "application/json", body);
	else
		privacy_error(answer, 500, "Internal Server Error", "out of memory");
	free(body);
	json_decref(o);
}

bool
privacy_http(const char *method, const char *path, HttpAnswer *answer)
{
	size_t		plen = strlen(PRIVACY_PREFIX), slen = strlen(PRIVACY_SUFFIX), len = strlen(path);
	const char *addr = path + plen;
	char		lower[ADDRESS_LEN + 1];
	const char *params[1];

	if (len < plen + slen || strncmp(path, PRIVACY_PREFIX, plen) != 0 ||
		strcmp(path + len - slen, PRIVACY_SUFFIX) != 0)
		return false;
	if (len - plen - slen != ADDRESS_LEN || !address_hex(addr, true))
	{
		privacy_error(answer, 400, "Bad request",
					  "the address must be 0x followed by 40 hexadecimal digits");
		return true;
	}
	if (!privacy_pg)
	{
		privacy_error(answer, 503, "Service Unavailable", "shutting down");
		return true;
	}
	address_lower(addr, lower);
	params[0] = lower;
	if (pg_pool_query(privacy_pg, privacy_sql, 1, params, privacy_on_result, answer) != 0)
		privacy_error(answer, 503, "Service Unavailable", "the database is unavailable");
	return true;
}
