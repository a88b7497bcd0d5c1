/*
 * config.c — the settings table and its parsers.
 *
 * The table is the single source: defaults are strings parsed by the same code as user input (so
 * a default can never be out of range without the unit test noticing), --help is printed from
 * it, and config_log walks it. Names reuse the reference service's environment variables where
 * they mean the same thing (RPC_SERVER_PORT, WS_AUTH_TIMEOUT_IN_MS, ...).
 */
#include "main/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <libpq-fe.h>
#include <netdb.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "presence/archipelago.h"
#include "social/registry.h"
#include "store/redis_client.h"

#define FIELD(f) offsetof(Config, f), sizeof(((Config *) 0)->f)

#define KIB 1024LL
#define MIB (1024LL * 1024LL)

static int check_presence_sources(const char *value, char *why, size_t whylen);
static int check_redis_url(const char *value, char *why, size_t whylen);
static int check_nats_url(const char *value, char *why, size_t whylen);
static int check_nats_token(const char *value, char *why, size_t whylen);
static int check_http_url(const char *value, char *why, size_t whylen);
static int check_registry_url(const char *value, char *why, size_t whylen);
static int redis_host_url(const char *value, char *out, size_t outlen, char *why, size_t whylen);

/* One row per setting, {name, env var, type, default, range, field, help}: the rows look alike
 * on purpose, the table is the configuration, its parser and --help. */
const ConfigEntry config_entries[] = {
	{"host", "WS_HOST", CONFIG_STRING, "0.0.0.0", 0, 0, FIELD(host),
	 "Address to listen on for WebSocket and HTTP (0.0.0.0 or :: for every interface)."},
	{"port", "RPC_SERVER_PORT", CONFIG_INT, "8085", 1, 65535, FIELD(port),
	 "TCP port for WebSocket (path /) and HTTP (/health/live, /status, /metrics)."},
	{"auth-timeout", "WS_AUTH_TIMEOUT_IN_MS", CONFIG_MS, "30000", 100, 3600000,
	 FIELD(auth_timeout_ms),
	 "A connection must send and pass its auth frame within this, else it is closed with 3004."},
	{"auth-window", "WS_AUTH_SIGNATURE_EXPIRATION_IN_MS", CONFIG_MS, "300000", 1000, 86400000,
	 FIELD(auth_window_ms),
	 "Accepted distance between the signed x-identity-timestamp and the server clock."},
	{"idle-timeout", "WS_IDLE_TIMEOUT_IN_SECONDS", CONFIG_INT, "300", 2, 65535,
	 FIELD(idle_timeout_s),
	 "Seconds without any traffic before hanging up; a ping is sent after half of it."},
	{"max-payload", "WS_MAX_PAYLOAD_BYTES", CONFIG_BYTES, "1MiB", 1024, 64 * MIB,
	 FIELD(max_payload_bytes),
	 "Largest inbound message (after reassembly); larger closes with 1009."},
	{"max-connections", "WS_MAX_CONNECTIONS", CONFIG_INT, "10000", 1, 1000000,
	 FIELD(max_connections),
	 "Open WebSocket connections; beyond this a new one is closed with 1013."},
	{"max-unauthenticated", "WS_MAX_UNAUTHENTICATED", CONFIG_INT, "1000", 1, 1000000,
	 FIELD(max_unauthenticated),
	 "Connections still authenticating; beyond this a new one is closed with 1013."},
	{"outbound-queue-messages", "WS_OUTBOUND_QUEUE_MESSAGES", CONFIG_INT, "128", 1, 1000000,
	 FIELD(outbound_queue_messages),
	 "Frames queued for a client that is not reading; beyond this it is closed with 1011."},
	{"outbound-queue-bytes", "WS_OUTBOUND_QUEUE_BYTES", CONFIG_BYTES, "4MiB", 4 * KIB, 1024 * MIB,
	 FIELD(outbound_queue_bytes),
	 "Bytes queued for a client that is not reading; beyond this it is closed with 1011."},
	{"messages-per-second", "WS_MESSAGES_PER_SECOND", CONFIG_INT, "50", 1, 1000000,
	 FIELD(messages_per_second),
	 "Sustained inbound messages per second per connection; faster closes with 1008."},
	{"messages-burst", "WS_MESSAGES_BURST", CONFIG_INT, "100", 1, 1000000, FIELD(messages_burst),
	 "Inbound messages a connection may send at once before the rate applies."},
	{"shutdown-timeout", "WS_SHUTDOWN_TIMEOUT_IN_MS", CONFIG_MS, "5000", 0, 600000,
	 FIELD(shutdown_timeout_ms),
	 "On SIGTERM, how long clients get to receive their 1001 close before the rest is cut."},
	{"stream-buffer", "STREAM_BUFFER", CONFIG_INT, "1000", 1, 1000000, FIELD(stream_buffer),
	 "Unacknowledged elements buffered per server stream; beyond this the connection is closed."},
	{"rpc-max-ports", "RPC_MAX_PORTS", CONFIG_INT, "16", 1, 1024, FIELD(rpc_max_ports),
	 "RPC ports per connection; beyond this CreatePort is answered with an error."},
	{"rpc-max-streams", "RPC_MAX_STREAMS", CONFIG_INT, "32", 1, 4096, FIELD(rpc_max_streams),
	 "Open server streams per connection; beyond this a subscription is answered with an error."},
	{"rpc-max-pending-calls", "RPC_MAX_PENDING_CALLS", CONFIG_INT, "64", 1, 4096,
	 FIELD(rpc_max_pending_calls),
	 "Unanswered unary calls per connection; beyond this a call is answered with an error."},
	{"pg", "PG_CONNECTION_STRING", CONFIG_CONNINFO, "hostaddr=127.0.0.1 port=5432 dbname=social", 0,
	 0, FIELD(pg_conninfo),
	 "libpq connection string (key=value or URI). Host names are resolved once at start-up "
	 "(hostaddr= is added; libpq's own lookups would block the loop)."},
	{"pg-pool-size", "PG_POOL_SIZE", CONFIG_INT, "4", 1, 64, FIELD(pg_pool_size),
	 "PostgreSQL connections for calls (plus one for LISTEN)."},
	{"pg-query-timeout", "PG_QUERY_TIMEOUT_MS", CONFIG_MS, "5000", 10, 600000,
	 FIELD(pg_query_timeout_ms),
	 "A query running longer is cancelled and the call answers internal_server_error."},
	{"pg-max-queued", "PG_MAX_QUEUED", CONFIG_INT, "1000", 1, 1000000, FIELD(pg_max_queued),
	 "Queries waiting for a free PostgreSQL connection; beyond this they fail at once."},
	{"log-level", "LOG_LEVEL", CONFIG_LOG_LEVEL, "info", 0, 0, FIELD(log_level),
	 "error, warn, info or debug."},
	{"presence-sources", "PRESENCE_SOURCES", CONFIG_STRING, "auto", 0, 0, FIELD(presence_sources),
	 "What this instance feeds into presence: a comma list of nats, archipelago, socket; auto = "
	 "socket, plus nats when NATS_URL is set, plus archipelago when ARCHIPELAGO_STATS_URL is set; "
	 "none = nothing (friends' presence from other instances is still served).",
	 false, check_presence_sources},
	{"presence-ttl", "PRESENCE_TTL_IN_MS", CONFIG_MS, "90000", 3000, 86400000,
	 FIELD(presence_ttl_ms),
	 "A source's word that a user is online lasts this long; silence beyond it is offline."},
	{"presence-sessions", "PRESENCE_SESSIONS", CONFIG_BOOL, "on", 0, 0, FIELD(presence_sessions),
	 "Record presence sessions in social.presence_sessions (batched, at most one write a second)."},
	{"redis-url", "REDIS_URL", CONFIG_STRING, "redis://127.0.0.1:6379", 0, 0, FIELD(redis_url),
	 "Redis for presence: redis://[[user]:password@]host[:port][/db].", false, check_redis_url},
	{"nats-url", "NATS_URL", CONFIG_STRING, "", 0, 0, FIELD(nats_url),
	 "NATS servers for peer events (nats://host:port, comma-separated); empty: no NATS source.",
	 true, check_nats_url},
	{"nats-queue-group", "NATS_QUEUE_GROUP", CONFIG_STRING, "sociald-presence", 0, 0,
	 FIELD(nats_queue_group),
	 "NATS queue group of every instance: each peer event is handled by one of them.", false,
	 check_nats_token},
	{"archipelago-stats-url", "ARCHIPELAGO_STATS_URL", CONFIG_STRING, "", 0, 0,
	 FIELD(archipelago_stats_url),
	 "Archipelago stats base URL (GET <url>/peers is polled); empty: no Archipelago source.", true,
	 check_http_url},
	{"archipelago-poll-interval", "ARCHIPELAGO_POLL_INTERVAL_IN_MS", CONFIG_MS, "5000", 500,
	 3600000, FIELD(archipelago_poll_interval_ms),
	 "How often one instance polls Archipelago's /peers."},
	{"registry-url", "REGISTRY_URL", CONFIG_STRING, "", 0, 0, FIELD(registry_url),
	 "Decentraland profile registry base URL (POST <url>/profiles); names and pictures are "
	 "fetched in the background into social.profiles. Empty: profiles as social.profiles has "
	 "them.",
	 true, check_registry_url},
	{"registry-timeout", "REGISTRY_TIMEOUT_MS", CONFIG_MS, "5000", 100, 60000,
	 FIELD(registry_timeout_ms),
	 "One profile registry request, name lookup to last byte; a slower one is abandoned."},
	{"http-port", "HTTP_PORT", CONFIG_INT, "0", 0, 65535, FIELD(http_port),
	 "A second TCP port serving the HTTP routes only (no WebSocket), for probes and Prometheus; "
	 "0 = none (the routes are on RPC_SERVER_PORT either way)."},
};

const size_t config_entry_count = sizeof(config_entries) / sizeof(config_entries[0]);

/* The reference service's names for our settings (config.h). RPC_SERVER_PORT, NATS_URL and
 * ARCHIPELAGO_STATS_URL and REGISTRY_URL need no row: they are our names too. */
const ConfigAlias config_aliases[] = {
	{"PG_COMPONENT_PSQL_CONNECTION_STRING", "PG_CONNECTION_STRING", NULL},
	{"REDIS_HOST", "REDIS_URL", redis_host_url},
	{"UWS_SERVER_PORT", "HTTP_PORT", NULL},
};

const size_t config_alias_count = sizeof(config_aliases) / sizeof(config_aliases[0]);

const char *const config_ignored[] = {"AWS_SNS_ARN", "AWS_SNS_ENDPOINT", "AWS_REGION", NULL};

/* The parts the reference composes when it has no connection string, with their libpq names. */
static const struct
{
	const char *env;
	const char *keyword;
} pg_parts[] = {
	{"PG_COMPONENT_PSQL_HOST", "host"},		  {"PG_COMPONENT_PSQL_PORT", "port"},
	{"PG_COMPONENT_PSQL_USER", "user"},		  {"PG_COMPONENT_PSQL_PASSWORD", "password"},
	{"PG_COMPONENT_PSQL_DATABASE", "dbname"},
};

static const char *
type_name(ConfigType type)
{
	switch (type)
	{
		case CONFIG_INT:
			return "INT";
		case CONFIG_MS:
			return "DURATION";
		case CONFIG_BYTES:
			return "SIZE";
		case CONFIG_BOOL:
			return "BOOL";
		case CONFIG_STRING:
			return "STRING";
		case CONFIG_CONNINFO:
			return "CONNINFO";
		case CONFIG_LOG_LEVEL:
			return "LEVEL";
	}
	return "?";
}

/*
 * Strict decimal with an optional unit suffix looked up in 'units' (name, multiplier; NULL name
 * ends the list; an empty name means "no suffix"). No sign, no spaces, no overflow.
 */
typedef struct Unit
{
	const char *name;
	long long	mult;
} Unit;

static const Unit ms_units[] = {{"", 1},	  {"ms", 1},	  {"s", 1000},
								{"m", 60000}, {"h", 3600000}, {NULL, 0}};
static const Unit byte_units[] = {
	{"", 1},		   {"b", 1},		   {"k", KIB},			{"kb", KIB},
	{"kib", KIB},	   {"m", MIB},		   {"mb", MIB},			{"mib", MIB},
	{"g", 1024 * MIB}, {"gb", 1024 * MIB}, {"gib", 1024 * MIB}, {NULL, 0}};
static const Unit no_units[] = {{"", 1}, {NULL, 0}};

static int
parse_number(const char *s, const Unit *units, long long *out)
{
	const char *p = s;
	long long	v = 0;

	if (!isdigit((unsigned char) *p))
		return -1;
	for (; isdigit((unsigned char) *p); p++)
	{
		int d = *p - '0';

		if (v > (LLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	for (const Unit *u = units; u->name; u++)
	{
		if (strcasecmp(p, u->name) == 0)
		{
			if (v > LLONG_MAX / u->mult)
				return -1;
			*out = v * u->mult;
			return 0;
		}
	}
	return -1;
}

static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
	{
		if (strcasecmp(s, yes[i]) == 0)
		{
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0)
		{
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* The connection string is checked here, once, so a typo is a startup error with libpq's own
 * words instead of an endless reconnect loop. */
static int
check_conninfo(const char *value, char *err, size_t errlen)
{
	char			 *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(value, &perr);

	if (!opts)
	{
		size_t n;

		snprintf(err, errlen, "%s", perr ? perr : "out of memory");
		n = strlen(err);
		while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
			err[--n] = '\0';
		PQfreemem(perr);
		return -1;
	}
	PQconninfoFree(opts);
	return 0;
}

int
config_set(Config *cfg, const ConfigEntry *e, const char *value, char *err, size_t errlen)
{
	char	   *field = (char *) cfg + e->offset;
	long long	n;
	const Unit *units = e->type == CONFIG_MS	  ? ms_units
						: e->type == CONFIG_BYTES ? byte_units
												  : no_units;
	char		why[256];

	switch (e->type)
	{
		case CONFIG_INT:
		case CONFIG_MS:
		case CONFIG_BYTES:
			if (parse_number(value, units, &n) != 0)
			{
				snprintf(err, errlen, "%s (--%s): \"%s\" is not a valid %s%s", e->env, e->name,
						 value, e->type == CONFIG_MS ? "duration" : "number",
						 e->type == CONFIG_MS	   ? " (ms, or with a unit: 500ms, 30s, 5m, 1h)"
						 : e->type == CONFIG_BYTES ? " (bytes, or with a unit: 64k, 4MiB)"
												   : "");
				return -1;
			}
			if (n < e->min || n > e->max)
			{
				snprintf(err, errlen, "%s (--%s): %s is out of range %lld..%lld%s", e->env, e->name,
						 value, e->min, e->max,
						 e->type == CONFIG_MS	   ? " ms"
						 : e->type == CONFIG_BYTES ? " bytes"
												   : "");
				return -1;
			}
			/* Ranges in the table fit an int; the field is an int. */
			*(int *) field = (int) n;
			return 0;
		case CONFIG_BOOL:
			if (parse_bool(value, (bool *) field) != 0)
			{
				snprintf(err, errlen, "%s (--%s): \"%s\" is not a boolean (true/false)", e->env,
						 e->name, value);
				return -1;
			}
			return 0;
		case CONFIG_STRING:
		case CONFIG_CONNINFO:
			if (value[0] == '\0' && !e->allow_empty)
			{
				snprintf(err, errlen, "%s (--%s): must not be empty", e->env, e->name);
				return -1;
			}
			if (strlen(value) >= e->size)
			{
				snprintf(err, errlen, "%s (--%s): value is longer than %zu bytes", e->env, e->name,
						 e->size - 1);
				return -1;
			}
			if (e->type == CONFIG_CONNINFO && check_conninfo(value, why, sizeof(why)) != 0)
			{
				snprintf(err, errlen, "%s (--%s): %s", e->env, e->name, why);
				return -1;
			}
			if (e->check && value[0] != '\0' && e->check(value, why, sizeof(why)) != 0)
			{
				snprintf(err, errlen, "%s (--%s): %s", e->env, e->name, why);
				return -1;
			}
			memcpy(field, value, strlen(value) + 1);
			return 0;
		case CONFIG_LOG_LEVEL:
			if (log_level_parse(value, (LogLevel *) field) != 0)
			{
				snprintf(err, errlen, "%s (--%s): \"%s\" is not one of error, warn, info, debug",
						 e->env, e->name, value);
				return -1;
			}
			return 0;
	}
	snprintf(err, errlen, "%s: unknown setting type", e->env);
	return -1;
}

const ConfigEntry *
config_find(const char *name)
{
	for (size_t i = 0; i < config_entry_count; i++)
		if (strcmp(config_entries[i].name, name) == 0)
			return &config_entries[i];
	return NULL;
}

void
config_defaults(Config *cfg)
{
	char err[256];

	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < config_entry_count; i++)
	{
		/* test_config proves every default parses; a failure here is a broken table. */
		if (config_set(cfg, &config_entries[i], config_entries[i].def, err, sizeof(err)) != 0)
		{
			fprintf(stderr, "sociald: bad default: %s\n", err);
			abort();
		}
	}
}

static const char *
env_lookup(char *const envp[], const char *name)
{
	size_t len = strlen(name);

	if (!envp)
		return NULL;
	for (char *const *p = envp; *p; p++)
		if (strncmp(*p, name, len) == 0 && (*p)[len] == '=')
			return *p + len + 1;
	return NULL;
}

static void config_note(Config *cfg, LogLevel level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
config_note(Config *cfg, LogLevel level, const char *fmt, ...)
{
	va_list ap;

	if (cfg->note_count >= CONFIG_NOTES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(cfg->notes[cfg->note_count].text, sizeof(cfg->notes[0].text), fmt, ap);
	va_end(ap);
	cfg->notes[cfg->note_count++].level = level;
}

static const ConfigEntry *
config_find_env(const char *env)
{
	for (size_t i = 0; i < config_entry_count; i++)
		if (strcmp(config_entries[i].env, env) == 0)
			return &config_entries[i];
	return NULL;
}

/* An environment value, "" counted as unset (the reference reads an empty variable as unset). */
static const char *
env_value(char *const envp[], const char *name)
{
	const char *v = env_lookup(envp, name);

	return v && v[0] != '\0' ? v : NULL;
}

/* Do the two values of a setting mean the same? Redis URLs by what they address. */
static bool
same_value(const ConfigEntry *e, const char *a, const char *b)
{
	if (strcmp(e->env, "REDIS_URL") == 0)
	{
		RedisClientAddress ra, rb;

		if (redis_client_url_parse(a, &ra, NULL, 0) == 0 &&
			redis_client_url_parse(b, &rb, NULL, 0) == 0)
			return memcmp(&ra, &rb, sizeof(ra)) == 0;
	}
	return strcmp(a, b) == 0;
}

/* The value for e under another variable's name, so an error names what the operator set. */
static int
config_set_as(Config *cfg, const ConfigEntry *e, const char *env, const char *value, char *err,
			  size_t errlen)
{
	ConfigEntry as = *e;

	as.env = env;
	return config_set(cfg, &as, value, err, errlen);
}

/*
 * The reference's variables (config.h), before ours: where ours is set too it is applied after
 * and wins, and a pair that differs is noted. Then one note naming the ignored ones.
 */
static int
config_load_reference(Config *cfg, char *const envp[], char *err, size_t errlen)
{
	char		names[256] = "";
	size_t		used = 0;
	char		parts[CONFIG_CONNINFO_MAX];
	char		why[256];
	const char *pg_ours = env_value(envp, "PG_CONNECTION_STRING");
	const char *pg_ref = env_value(envp, "PG_COMPONENT_PSQL_CONNECTION_STRING");
	int			n;

	for (size_t i = 0; i < config_alias_count; i++)
	{
		const ConfigAlias *a = &config_aliases[i];
		const ConfigEntry *e = config_find_env(a->ours);
		const char		  *v = env_value(envp, a->env);
		const char		  *ours = env_value(envp, a->ours);
		char			   converted[CONFIG_URL_MAX];

		if (!v || !e)
			continue;
		if (a->convert)
		{
			if (a->convert(v, converted, sizeof(converted), why, sizeof(why)) != 0)
			{
				snprintf(err, errlen, "%s (reference name of %s): %s", a->env, a->ours, why);
				return -1;
			}
			v = converted;
		}
		if (ours)
		{
			if (!same_value(e, ours, v))
				config_note(cfg, LOG_LEVEL_WARN, "%s and %s are both set and differ: %s is used",
							a->ours, a->env, a->ours);
			continue;
		}
		if (config_set_as(cfg, e, a->env, v, err, errlen) != 0)
			return -1;
	}

	n = config_pg_parts(envp, parts, sizeof(parts), why, sizeof(why));
	if (n < 0)
	{
		snprintf(err, errlen, "PG_COMPONENT_PSQL_*: %s", why);
		return -1;
	}
	if (n > 0 && (pg_ours || pg_ref))
		config_note(cfg, LOG_LEVEL_WARN,
					"PG_COMPONENT_PSQL_{HOST,PORT,USER,PASSWORD,DATABASE} are ignored: %s is set",
					pg_ours ? "PG_CONNECTION_STRING" : "PG_COMPONENT_PSQL_CONNECTION_STRING");
	else if (n > 0 && config_set_as(cfg, config_find_env("PG_CONNECTION_STRING"),
									"PG_COMPONENT_PSQL_{HOST,PORT,USER,PASSWORD,DATABASE}", parts,
									err, errlen) != 0)
		return -1;

	for (const char *const *p = config_ignored; *p; p++)
	{
		if (!env_value(envp, *p))
			continue;
		n = snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", *p);
		if (n > 0 && (size_t) n < sizeof(names) - used)
			used += (size_t) n;
	}
	if (used)
		config_note(cfg, LOG_LEVEL_INFO,
					"reference service variables for features sociald does not have are "
					"ignored: %s",
					names);
	return 0;
}

ConfigStatus
config_load(Config *cfg, int argc, char *const argv[], char *const envp[], char *err, size_t errlen)
{
	config_defaults(cfg);
	if (config_load_reference(cfg, envp, err, errlen) != 0)
		return CONFIG_ERROR;
	for (size_t i = 0; i < config_entry_count; i++)
	{
		const char *v = env_lookup(envp, config_entries[i].env);

		if (v && config_set(cfg, &config_entries[i], v, err, errlen) != 0)
			return CONFIG_ERROR;
	}
	for (int i = 1; i < argc; i++)
	{
		const char		  *arg = argv[i];
		const char		  *eq;
		char			   name[64];
		const ConfigEntry *e;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return CONFIG_HELP;
		if (strcmp(arg, "--version") == 0)
			return CONFIG_VERSION;
		if (strncmp(arg, "--", 2) != 0)
		{
			snprintf(err, errlen,
					 "unexpected argument \"%s\" (options are --name=value; see --help)", arg);
			return CONFIG_ERROR;
		}
		eq = strchr(arg + 2, '=');
		if (!eq || (size_t) (eq - (arg + 2)) >= sizeof(name))
		{
			snprintf(err, errlen, "option \"%s\" needs a value: --name=value (see --help)", arg);
			return CONFIG_ERROR;
		}
		memcpy(name, arg + 2, (size_t) (eq - (arg + 2)));
		name[eq - (arg + 2)] = '\0';
		e = config_find(name);
		if (!e)
		{
			snprintf(err, errlen, "unknown option --%s (see --help)", name);
			return CONFIG_ERROR;
		}
		if (config_set(cfg, e, eq + 1, err, errlen) != 0)
			return CONFIG_ERROR;
	}
	/* Settings that only make sense together. */
	if (strcmp(cfg->presence_sources, "auto") != 0 && strcmp(cfg->presence_sources, "none") != 0)
	{
		ConfigPresenceSources src = config_presence_sources(cfg);

		if (src.nats && cfg->nats_url[0] == '\0')
		{
			snprintf(err, errlen, "PRESENCE_SOURCES (--presence-sources): nats needs NATS_URL");
			return CONFIG_ERROR;
		}
		if (src.archipelago && cfg->archipelago_stats_url[0] == '\0')
		{
			snprintf(err, errlen,
					 "PRESENCE_SOURCES (--presence-sources): archipelago needs "
					 "ARCHIPELAGO_STATS_URL");
			return CONFIG_ERROR;
		}
	}
	return CONFIG_OK;
}

void
config_print_help(FILE *out, const char *prog)
{
	fprintf(out,
			"Usage: %s [--name=value ...]\n"
			"\n"
			"sociald %s: the WebSocket door of the social service.\n"
			"Every option can also be set with its environment variable; a flag overrides the\n"
			"environment. Durations take ms or a unit (500ms, 30s, 5m, 1h); sizes take bytes or\n"
			"a unit (64k, 4MiB).\n"
			"\n"
			"Options:\n",
			prog, SOCIALD_VERSION);
	for (size_t i = 0; i < config_entry_count; i++)
	{
		const ConfigEntry *e = &config_entries[i];
		char			   flag[96];

		snprintf(flag, sizeof(flag), "--%s=%s", e->name, type_name(e->type));
		fprintf(out, "  %-36s %s (default: %s)\n", flag, e->env, e->def);
		if (e->type == CONFIG_INT || e->type == CONFIG_MS || e->type == CONFIG_BYTES)
			fprintf(out, "      %s Range %lld..%lld%s.\n", e->help, e->min, e->max,
					e->type == CONFIG_MS	  ? " ms"
					: e->type == CONFIG_BYTES ? " bytes"
											  : "");
		else
			fprintf(out, "      %s\n", e->help);
	}
	fprintf(out, "  %-36s %s\n", "--help, -h", "print this and exit");
	fprintf(out, "  %-36s %s\n", "--version", "print the version and exit");
	fprintf(out, "\n"
				 "The reference service's variables are read too (ours win where both are set):\n");
	for (size_t i = 0; i < config_alias_count; i++)
		fprintf(out, "  %-36s %s\n", config_aliases[i].env, config_aliases[i].ours);
	fprintf(out, "  %-36s %s\n", "PG_COMPONENT_PSQL_{HOST,PORT,USER,",
			"PG_CONNECTION_STRING, when");
	fprintf(out, "  %-36s %s\n", "  PASSWORD,DATABASE}", "no connection string is set");
	fprintf(out, "  %-36s", "ignored (logged):");
	for (const char *const *p = config_ignored; *p; p++)
		fprintf(out, " %s", *p);
	fprintf(out, "\n");
}

/* Rebuilds the connection string with any password replaced, for the startup log line. */
static void
mask_conninfo(const char *conninfo, char *out, size_t outlen)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	size_t			  used = 0;

	out[0] = '\0';
	if (!opts)
	{
		snprintf(out, outlen, "(unparsable)");
		return;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		int n;

		if (!o->val)
			continue;
		n = snprintf(out + used, outlen - used, "%s%s=%s", used ? " " : "", o->keyword,
					 strcmp(o->keyword, "password") == 0 ? "***" : o->val);
		if (n < 0 || (size_t) n >= outlen - used)
			break;
		used += (size_t) n;
	}
	PQconninfoFree(opts);
}

/* Every scheme://user:password@host... of a comma-separated list with the password replaced;
 * anything else unchanged (truncated to outlen). */
static void
mask_url(const char *value, char *out, size_t outlen)
{
	size_t used = 0;

	out[0] = '\0';
	while (used + 1 < outlen)
	{
		const char *end = strchr(value, ',');
		size_t		len = end ? (size_t) (end - value) : strlen(value);
		const char *scheme = memmem(value, len, "://", 3);
		const char *host = scheme ? scheme + 3 : value;
		const char *at = memchr(host, '@', len - (size_t) (host - value));
		const char *colon = memchr(host, ':', len - (size_t) (host - value));
		const char *slash = memchr(host, '/', len - (size_t) (host - value));
		int			n;

		if (scheme && at && colon && colon < at && !(slash && slash < at))
			n = snprintf(out + used, outlen - used, "%.*s:***%.*s", (int) (colon - value), value,
						 (int) (len - (size_t) (at - value)), at);
		else
			n = snprintf(out + used, outlen - used, "%.*s", (int) len, value);
		if (n < 0 || (size_t) n >= outlen - used)
			return;
		used += (size_t) n;
		if (!end)
			return;
		n = snprintf(out + used, outlen - used, ",");
		if (n < 0 || (size_t) n >= outlen - used)
			return;
		used += (size_t) n;
		value = end + 1;
	}
}

void
config_log(const Config *cfg)
{
	static const char *const level_names[] = {"error", "warn", "info", "debug"};

	for (size_t i = 0; i < config_entry_count; i++)
	{
		const ConfigEntry *e = &config_entries[i];
		const char		  *field = (const char *) cfg + e->offset;
		char			   masked[CONFIG_CONNINFO_MAX + 64];

		switch (e->type)
		{
			case CONFIG_INT:
			case CONFIG_MS:
			case CONFIG_BYTES:
				log_info("config %s=%d", e->env, *(const int *) field);
				break;
			case CONFIG_BOOL:
				log_info("config %s=%s", e->env, *(const bool *) field ? "true" : "false");
				break;
			case CONFIG_STRING:
				mask_url(field, masked, sizeof(masked));
				log_info("config %s=%s", e->env, masked);
				break;
			case CONFIG_CONNINFO:
				mask_conninfo(field, masked, sizeof(masked));
				log_info("config %s=%s", e->env, masked);
				break;
			case CONFIG_LOG_LEVEL:
				log_info("config %s=%s", e->env, level_names[*(const LogLevel *) field]);
				break;
		}
	}
	for (int i = 0; i < cfg->note_count; i++)
		LOG_AT(cfg->notes[i].level, "config: %s", cfg->notes[i].text);
}

/* ---- Presence settings */

static const char *const presence_source_names[] = {"nats", "archipelago", "socket"};

/* Splits value at commas into at most three known source names, each once; -1 with a reason.
 * "auto" and "none" stand alone. */
static int
parse_presence_sources(const char *value, bool picked[3], char *why, size_t whylen)
{
	const char *p = value;

	picked[0] = picked[1] = picked[2] = false;
	if (strcmp(value, "auto") == 0 || strcmp(value, "none") == 0)
		return 0;
	for (;;)
	{
		const char *end = strchr(p, ',');
		size_t		len = end ? (size_t) (end - p) : strlen(p);
		size_t		i;

		for (i = 0; i < 3; i++)
			if (strlen(presence_source_names[i]) == len &&
				strncmp(p, presence_source_names[i], len) == 0)
				break;
		if (i == 3)
		{
			snprintf(why, whylen,
					 "\"%.*s\" is not a presence source (nats, archipelago, socket; or auto, none)",
					 (int) len, p);
			return -1;
		}
		if (picked[i])
		{
			snprintf(why, whylen, "%s is listed twice", presence_source_names[i]);
			return -1;
		}
		picked[i] = true;
		if (!end)
			return 0;
		p = end + 1;
	}
}

static int
check_presence_sources(const char *value, char *why, size_t whylen)
{
	bool picked[3];

	return parse_presence_sources(value, picked, why, whylen);
}

ConfigPresenceSources
config_presence_sources(const Config *cfg)
{
	ConfigPresenceSources s = {false, false, false};
	bool				  picked[3];
	char				  why[128];

	if (strcmp(cfg->presence_sources, "auto") == 0)
	{
		s.socket = true;
		s.nats = cfg->nats_url[0] != '\0';
		s.archipelago = cfg->archipelago_stats_url[0] != '\0';
		return s;
	}
	/* "none", or a list config_set has validated */
	if (parse_presence_sources(cfg->presence_sources, picked, why, sizeof(why)) == 0)
	{
		s.nats = picked[0];
		s.archipelago = picked[1];
		s.socket = picked[2];
	}
	return s;
}

static int
check_redis_url(const char *value, char *why, size_t whylen)
{
	RedisClientAddress a;

	return redis_client_url_parse(value, &a, why, whylen);
}

/* Characters with no meaning to a NATS URL list or subject: no spaces, no control characters. */
static bool
plain_text(const char *value)
{
	for (const char *p = value; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static int
check_nats_url(const char *value, char *why, size_t whylen)
{
	if (!plain_text(value) || strstr(value, ",,") || value[0] == ',' ||
		value[strlen(value) - 1] == ',')
	{
		snprintf(why, whylen, "expected nats://host:port[,nats://host:port...] without spaces");
		return -1;
	}
	return 0;
}

/* A queue group name is one subject token: no spaces, dots or wildcards. */
static int
check_nats_token(const char *value, char *why, size_t whylen)
{
	if (!plain_text(value) || strpbrk(value, ".*>"))
	{
		snprintf(why, whylen, "\"%s\" is not a NATS queue group name (no spaces, '.', '*', '>')",
				 value);
		return -1;
	}
	return 0;
}

/* The parser the Archipelago source uses, so a URL it would refuse fails at startup. */
static int
check_http_url(const char *value, char *why, size_t whylen)
{
	ArchipelagoUrl u;

	return archipelago_url_parse(value, &u, why, whylen);
}

/* The registry client's parser, so a URL it would refuse fails at startup. */
static int
check_registry_url(const char *value, char *why, size_t whylen)
{
	char host[256], path[1024], host_header[272];
	bool tls, numeric;
	int	 port;

	return registry_url_parse(value, &tls, host, sizeof(host), &numeric, &port, path, sizeof(path),
							  host_header, sizeof(host_header), why, whylen);
}

/* ---- The reference's names, and PostgreSQL host names */

/* REDIS_HOST is host or host:port ([v6]:port); REDIS_URL's parser checks the rest. */
static int
redis_host_url(const char *value, char *out, size_t outlen, char *why, size_t whylen)
{
	int n;

	if (strstr(value, "://") || strpbrk(value, "/@"))
	{
		snprintf(why, whylen, "expected host or host:port (a URL goes in REDIS_URL)");
		return -1;
	}
	n = snprintf(out, outlen, "redis://%s", value);
	if (n < 0 || (size_t) n >= outlen)
	{
		snprintf(why, whylen, "value is too long");
		return -1;
	}
	return 0;
}

/* Appends keyword='value' to a connection string: quoted, backslash and quote escaped, so any
 * value (spaces, quotes, '=') reads back as itself. -1 when it does not fit. */
static int
conninfo_append(char *out, size_t outlen, size_t *used, const char *keyword, const char *value)
{
	size_t u = *used;
	int	   n = snprintf(out + u, outlen - u, "%s%s='", u ? " " : "", keyword);

	if (n < 0 || (size_t) n >= outlen - u)
		return -1;
	u += (size_t) n;
	for (const char *p = value; *p; p++)
	{
		if (u + 3 >= outlen)
			return -1;
		if (*p == '\'' || *p == '\\')
			out[u++] = '\\';
		out[u++] = *p;
	}
	if (u + 2 > outlen)
		return -1;
	out[u++] = '\'';
	out[u] = '\0';
	*used = u;
	return 0;
}

int
config_pg_parts(char *const envp[], char *out, size_t outlen, char *why, size_t whylen)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof(pg_parts) / sizeof(pg_parts[0]); i++)
	{
		const char *v = env_value(envp, pg_parts[i].env);

		if (v && conninfo_append(out, outlen, &used, pg_parts[i].keyword, v) != 0)
		{
			snprintf(why, whylen, "the connection string is longer than %zu bytes", outlen - 1);
			return -1;
		}
	}
	return used ? 1 : 0;
}

/* One element of a comma-separated libpq list: [start, end). */
static const char *
list_next(const char *p, size_t *len)
{
	const char *comma = strchr(p, ',');

	*len = comma ? (size_t) (comma - p) : strlen(p);
	return comma ? comma + 1 : NULL;
}

static size_t
list_count(const char *s)
{
	size_t n = 1;

	for (; *s; s++)
		n += *s == ',';
	return n;
}

/* A host list element that needs no lookup: an IP address, a socket directory, or empty. */
static bool
host_is_literal(const char *h, size_t len)
{
	char			buf[CONFIG_HOST_MAX];
	struct in6_addr a;

	if (len == 0 || h[0] == '/' || h[0] == '@')
		return true;
	if (len >= sizeof(buf))
		return false;
	memcpy(buf, h, len);
	buf[len] = '\0';
	return inet_pton(AF_INET, buf, &a) == 1 || inet_pton(AF_INET6, buf, &a) == 1;
}

/* Appends ",text" (or "text" first) to a list buffer. */
static int
list_append(char *buf, size_t buflen, size_t *used, const char *text, size_t len)
{
	if (*used + (*used ? 1 : 0) + len + 1 > buflen)
		return -1;
	if (*used)
		buf[(*used)++] = ',';
	memcpy(buf + *used, text, len);
	*used += len;
	buf[*used] = '\0';
	return 0;
}

int
config_pg_resolve(const char *conninfo, char *out, size_t outlen, char *err, size_t errlen)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	const char		 *host = NULL, *hostaddr = NULL, *port = NULL;
	char   hosts[CONFIG_CONNINFO_MAX], addrs[CONFIG_CONNINFO_MAX], ports[CONFIG_CONNINFO_MAX];
	size_t hu = 0, au = 0, pu = 0, used = 0;
	bool   lookup = false, port_list;
	int	   rc = -1;

	if (!opts)
	{
		snprintf(err, errlen, "PG_CONNECTION_STRING does not parse");
		return -1;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (!o->val)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0 && o->val[0])
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
	}
	if (host && !hostaddr)
		for (const char *p = host; p;)
		{
			size_t		len;
			const char *h = p;

			p = list_next(p, &len);
			lookup |= !host_is_literal(h, len);
		}
	if (!lookup)
	{
		PQconninfoFree(opts);
		return 0;
	}
	port_list = port && strchr(port, ',');
	if (port_list && list_count(port) != list_count(host))
	{
		snprintf(err, errlen, "PG_CONNECTION_STRING: %zu hosts but %zu ports", list_count(host),
				 list_count(port));
		goto done;
	}
	hosts[0] = addrs[0] = ports[0] = '\0';
	{
		const char *pp = port_list ? port : NULL;

		for (const char *p = host; p;)
		{
			size_t			len, plen = 0;
			const char	   *h = p, *pe = pp;
			char			name[CONFIG_HOST_MAX];
			struct addrinfo hints, *res = NULL;
			int				gai;

			p = list_next(p, &len);
			if (pp)
				pp = list_next(pp, &plen);
			if (host_is_literal(h, len))
			{
				/* An empty hostaddr element: libpq uses this host element as it is. */
				if (list_append(hosts, sizeof(hosts), &hu, h, len) != 0 ||
					list_append(addrs, sizeof(addrs), &au, "", 0) != 0 ||
					(port_list && list_append(ports, sizeof(ports), &pu, pe, plen) != 0))
					goto too_long;
				continue;
			}
			if (len >= sizeof(name))
				goto too_long;
			memcpy(name, h, len);
			name[len] = '\0';
			memset(&hints, 0, sizeof(hints));
			hints.ai_family = AF_UNSPEC;
			hints.ai_socktype = SOCK_STREAM;
			hints.ai_flags = AI_ADDRCONFIG;
			gai = getaddrinfo(name, NULL, &hints, &res);
			if (gai != 0)
			{
				snprintf(err, errlen,
						 "PostgreSQL host %s does not resolve (%s); it is looked up once at "
						 "start-up",
						 name, gai_strerror(gai));
				goto done;
			}
			for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
			{
				char		ip[INET6_ADDRSTRLEN];
				const void *src =
					ai->ai_family == AF_INET
						? (const void *) &((struct sockaddr_in *) ai->ai_addr)->sin_addr
						: (const void *) &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;

				if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
					!inet_ntop(ai->ai_family, src, ip, sizeof(ip)))
					continue;
				if (list_append(hosts, sizeof(hosts), &hu, h, len) != 0 ||
					list_append(addrs, sizeof(addrs), &au, ip, strlen(ip)) != 0 ||
					(port_list && list_append(ports, sizeof(ports), &pu, pe, plen) != 0))
				{
					freeaddrinfo(res);
					goto too_long;
				}
			}
			freeaddrinfo(res);
		}
	}
	out[0] = '\0';
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		const char *v = o->val;

		if (!v || strcmp(o->keyword, "hostaddr") == 0)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			v = hosts;
		else if (strcmp(o->keyword, "port") == 0 && port_list)
			v = ports;
		if (conninfo_append(out, outlen, &used, o->keyword, v) != 0)
			goto too_long;
	}
	if (conninfo_append(out, outlen, &used, "hostaddr", addrs) != 0)
		goto too_long;
	rc = 1;
	goto done;
too_long:
	snprintf(err, errlen, "PG_CONNECTION_STRING with its resolved addresses is too long");
done:
	PQconninfoFree(opts);
	return rc;
}
