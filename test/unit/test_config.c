/*
 * test_config.c — the settings table (daemon/config.c): defaults, the environment, flags over
 * the environment, units, every kind of bad value with the message an operator sees, and --help
 * printed from the same table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "main/config.h"

#define ARGC(a) ((int) (sizeof(a) / sizeof((a)[0])))

static char err[512];

static ConfigStatus
load(char *const *argv, int argc, char *const *envp, Config *cfg)
{
	err[0] = '\0';
	return config_load(cfg, argc, argv, envp, err, sizeof(err));
}

static void
test_defaults(void **state)
{
	Config cfg;

	config_defaults(&cfg);
	assert_string_equal(cfg.host, "0.0.0.0");
	assert_int_equal(cfg.port, 8085);
	assert_int_equal(cfg.auth_timeout_ms, 30000);
	assert_int_equal(cfg.auth_window_ms, 300000);
	assert_int_equal(cfg.idle_timeout_s, 300);
	assert_int_equal(cfg.max_payload_bytes, 1024 * 1024);
	assert_int_equal(cfg.max_connections, 10000);
	assert_int_equal(cfg.max_unauthenticated, 1000);
	assert_int_equal(cfg.outbound_queue_messages, 128);
	assert_int_equal(cfg.outbound_queue_bytes, 4 * 1024 * 1024);
	assert_int_equal(cfg.messages_per_second, 50);
	assert_int_equal(cfg.messages_burst, 100);
	assert_int_equal(cfg.shutdown_timeout_ms, 5000);
	assert_int_equal(cfg.stream_buffer, 1000);
	assert_int_equal(cfg.rpc_max_ports, 16);
	assert_int_equal(cfg.rpc_max_streams, 32);
	assert_int_equal(cfg.rpc_max_pending_calls, 64);
	assert_string_equal(cfg.pg_conninfo, "hostaddr=127.0.0.1 port=5432 dbname=social");
	assert_int_equal(cfg.pg_pool_size, 4);
	assert_int_equal(cfg.pg_query_timeout_ms, 5000);
	assert_int_equal(cfg.pg_max_queued, 1000);
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	assert_int_equal(cfg.http_port, 0);
	assert_int_equal(cfg.note_count, 0);
}

/* Loading with nothing set is the defaults. */
static void
test_load_empty(void **state)
{
	char  *argv[] = {"sociald"};
	Config cfg, def;

	assert_int_equal(load(argv, ARGC(argv), NULL, &cfg), CONFIG_OK);
	config_defaults(&def);
	assert_memory_equal(&cfg, &def, sizeof(cfg));
}

/* The table itself: unique names, every default valid, field sizes matching the types. */
static void
test_table(void **state)
{
	for (size_t i = 0; i < config_entry_count; i++)
	{
		const ConfigEntry *e = &config_entries[i];
		Config			   cfg;

		memset(&cfg, 0, sizeof(cfg));
		if (config_set(&cfg, e, e->def, err, sizeof(err)) != 0)
			fail_msg("default of %s does not parse: %s", e->env, err);
		assert_ptr_equal(config_find(e->name), e);
		assert_non_null(e->help);
		assert_true(strlen(e->help) > 10);
		for (size_t j = 0; j < i; j++)
		{
			assert_string_not_equal(config_entries[j].name, e->name);
			assert_string_not_equal(config_entries[j].env, e->env);
		}
		switch (e->type)
		{
			case CONFIG_INT:
			case CONFIG_MS:
			case CONFIG_BYTES:
				assert_int_equal(e->size, sizeof(int));
				assert_true(e->min <= e->max);
				assert_true(e->max <= 2147483647LL);
				break;
			case CONFIG_BOOL:
				assert_int_equal(e->size, sizeof(bool));
				break;
			case CONFIG_LOG_LEVEL:
				assert_int_equal(e->size, sizeof(LogLevel));
				break;
			case CONFIG_STRING:
			case CONFIG_CONNINFO:
				assert_true(e->size > 1);
				break;
		}
	}
	assert_null(config_find("no-such-option"));
}

static void
test_env(void **state)
{
	char  *argv[] = {"sociald"};
	char  *envp[] = {"RPC_SERVER_PORT=9000",
					 "WS_HOST=127.0.0.1",
					 "WS_AUTH_TIMEOUT_IN_MS=2s",
					 "WS_MAX_PAYLOAD_BYTES=64k",
					 "WS_OUTBOUND_QUEUE_BYTES=2MiB",
					 "PG_CONNECTION_STRING=postgresql://sociald:secret@127.0.0.1:5433/social",
					 "LOG_LEVEL=debug",
					 "RPC_SERVER_PORTX=1", /* a longer name is another variable */
					 "UNRELATED=whatever",
					 NULL};
	Config cfg;

	assert_int_equal(load(argv, ARGC(argv), envp, &cfg), CONFIG_OK);
	assert_int_equal(cfg.port, 9000);
	assert_string_equal(cfg.host, "127.0.0.1");
	assert_int_equal(cfg.auth_timeout_ms, 2000);
	assert_int_equal(cfg.max_payload_bytes, 64 * 1024);
	assert_int_equal(cfg.outbound_queue_bytes, 2 * 1024 * 1024);
	assert_string_equal(cfg.pg_conninfo, "postgresql://sociald:secret@127.0.0.1:5433/social");
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(cfg.max_connections, 10000); /* untouched */
}

static void
test_flags_override_env(void **state)
{
	char  *argv[] = {"sociald", "--port=9100", "--max-connections=5", "--log-level=warn"};
	char  *envp[] = {"RPC_SERVER_PORT=9000", "WS_MAX_CONNECTIONS=7", "LOG_LEVEL=debug",
					 "WS_MAX_UNAUTHENTICATED=3", NULL};
	Config cfg;

	assert_int_equal(load(argv, ARGC(argv), envp, &cfg), CONFIG_OK);
	assert_int_equal(cfg.port, 9100);
	assert_int_equal(cfg.max_connections, 5);
	assert_int_equal(cfg.log_level, LOG_LEVEL_WARN);
	assert_int_equal(cfg.max_unauthenticated, 3); /* from the environment */
}

/* A later flag wins over an earlier one, as on any command line. */
static void
test_last_flag_wins(void **state)
{
	char  *argv[] = {"sociald", "--port=1", "--port=2"};
	Config cfg;

	assert_int_equal(load(argv, ARGC(argv), NULL, &cfg), CONFIG_OK);
	assert_int_equal(cfg.port, 2);
}

typedef struct UnitCase
{
	const char *flag;
	size_t		offset;
	long long	expected;
} UnitCase;

static void
test_units(void **state)
{
	static const UnitCase cases[] = {
		{"--auth-timeout=1500", offsetof(Config, auth_timeout_ms), 1500},
		{"--auth-timeout=1500ms", offsetof(Config, auth_timeout_ms), 1500},
		{"--auth-timeout=30s", offsetof(Config, auth_timeout_ms), 30000},
		{"--auth-timeout=5m", offsetof(Config, auth_timeout_ms), 300000},
		{"--auth-timeout=1h", offsetof(Config, auth_timeout_ms), 3600000},
		{"--auth-timeout=2S", offsetof(Config, auth_timeout_ms), 2000},
		{"--shutdown-timeout=0", offsetof(Config, shutdown_timeout_ms), 0},
		{"--max-payload=4096", offsetof(Config, max_payload_bytes), 4096},
		{"--max-payload=64k", offsetof(Config, max_payload_bytes), 65536},
		{"--max-payload=64KiB", offsetof(Config, max_payload_bytes), 65536},
		{"--max-payload=2M", offsetof(Config, max_payload_bytes), 2097152},
		{"--max-payload=2mb", offsetof(Config, max_payload_bytes), 2097152},
		{"--outbound-queue-bytes=1GiB", offsetof(Config, outbound_queue_bytes), 1073741824},
		{"--port=0065535", offsetof(Config, port), 65535},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char  *argv[] = {"sociald", (char *) cases[i].flag};
		Config cfg;

		if (load(argv, ARGC(argv), NULL, &cfg) != CONFIG_OK)
			fail_msg("%s: %s", cases[i].flag, err);
		assert_int_equal(*(int *) ((char *) &cfg + cases[i].offset), cases[i].expected);
	}
}

typedef struct BadCase
{
	const char *flag; /* NULL: use env */
	const char *env;
	const char *message; /* what the operator reads */
} BadCase;

static void
test_bad_values(void **state)
{
	static const BadCase cases[] = {
		{"--port=0", NULL, "RPC_SERVER_PORT (--port): 0 is out of range 1..65535"},
		{"--port=65536", NULL, "RPC_SERVER_PORT (--port): 65536 is out of range 1..65535"},
		{"--port=abc", NULL, "RPC_SERVER_PORT (--port): \"abc\" is not a valid number"},
		{"--port=-1", NULL, "\"-1\" is not a valid number"},
		{"--port=+1", NULL, "\"+1\" is not a valid number"},
		{"--port= 80", NULL, "\" 80\" is not a valid number"},
		{"--port=80 ", NULL, "\"80 \" is not a valid number"},
		{"--port=", NULL, "\"\" is not a valid number"},
		{"--port=8k", NULL, "\"8k\" is not a valid number"},
		{"--port=99999999999999999999", NULL, "is not a valid number"},
		{"--max-connections=0", NULL, "WS_MAX_CONNECTIONS (--max-connections): 0 is out of range"},
		{"--auth-timeout=10", NULL,
		 "WS_AUTH_TIMEOUT_IN_MS (--auth-timeout): 10 is out of range 100..3600000 ms"},
		{"--auth-timeout=5x", NULL, "\"5x\" is not a valid duration"},
		{"--auth-timeout=2d", NULL, "is not a valid duration"},
		{"--auth-timeout=9999999999999999h", NULL, "is not a valid duration"},
		{"--max-payload=1", NULL, "WS_MAX_PAYLOAD_BYTES (--max-payload): 1 is out of range"},
		{"--max-payload=1T", NULL, "is not a valid number (bytes, or with a unit"},
		{"--idle-timeout=1", NULL,
		 "WS_IDLE_TIMEOUT_IN_SECONDS (--idle-timeout): 1 is out of range"},
		{"--log-level=loud", NULL,
		 "LOG_LEVEL (--log-level): \"loud\" is not one of error, warn, info, debug"},
		{"--host=", NULL, "WS_HOST (--host): must not be empty"},
		{"--pg=host='unterminated", NULL, "PG_CONNECTION_STRING (--pg): unterminated quoted"},
		{"--pg=nosuchkey=1", NULL, "PG_CONNECTION_STRING (--pg): invalid connection option"},
		{"--nope=1", NULL, "unknown option --nope (see --help)"},
		{"--port", NULL, "option \"--port\" needs a value: --name=value"},
		{"stray", NULL, "unexpected argument \"stray\""},
		{"-p", NULL, "unexpected argument \"-p\""},
		{NULL, "RPC_SERVER_PORT=70000", "RPC_SERVER_PORT (--port): 70000 is out of range"},
		{NULL, "WS_MESSAGES_PER_SECOND=fast", "WS_MESSAGES_PER_SECOND (--messages-per-second)"},
		{NULL, "PG_POOL_SIZE=65", "PG_POOL_SIZE (--pg-pool-size): 65 is out of range 1..64"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char		*argv[] = {"sociald", (char *) cases[i].flag};
		char		*envp[] = {(char *) cases[i].env, NULL};
		Config		 cfg;
		ConfigStatus st = load(argv, cases[i].flag ? 2 : 1, cases[i].env ? envp : NULL, &cfg);

		if (st != CONFIG_ERROR)
			fail_msg("%s%s was accepted", cases[i].flag ? cases[i].flag : "",
					 cases[i].env ? cases[i].env : "");
		if (!strstr(err, cases[i].message))
			fail_msg("%s%s: message \"%s\" does not contain \"%s\"",
					 cases[i].flag ? cases[i].flag : "", cases[i].env ? cases[i].env : "", err,
					 cases[i].message);
		assert_null(strchr(err, '\n'));
	}
}

/* A string longer than its buffer is refused, not cut. */
static void
test_too_long(void **state)
{
	char   flag[CONFIG_HOST_MAX + 16];
	char  *argv[] = {"sociald", flag};
	Config cfg;

	snprintf(flag, sizeof(flag), "--host=");
	memset(flag + 7, 'a', CONFIG_HOST_MAX);
	flag[7 + CONFIG_HOST_MAX] = '\0';
	assert_int_equal(load(argv, ARGC(argv), NULL, &cfg), CONFIG_ERROR);
	assert_non_null(strstr(err, "longer than 255 bytes"));
	flag[7 + CONFIG_HOST_MAX - 1] = '\0';
	assert_int_equal(load(argv, ARGC(argv), NULL, &cfg), CONFIG_OK);
	assert_int_equal(strlen(cfg.host), CONFIG_HOST_MAX - 1);
}

/* No table row is a boolean today; the parser is there for the rows that will be. */
static void
test_bool(void **state)
{
	struct
	{
		Config cfg;
		bool   flag;
	} holder;
	const ConfigEntry entry = {
		"flag",		  "FLAG",	CONFIG_BOOL, "false", 0, 0, offsetof(__typeof__(holder), flag),
		sizeof(bool), "A flag."};
	static const char *const yes[] = {"true", "TRUE", "yes", "on", "1"};
	static const char *const no[] = {"false", "No", "off", "0"};
	static const char *const bad[] = {"", "2", "y", "truthy", "enable"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
	{
		holder.flag = false;
		assert_int_equal(config_set(&holder.cfg, &entry, yes[i], err, sizeof(err)), 0);
		assert_true(holder.flag);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
	{
		holder.flag = true;
		assert_int_equal(config_set(&holder.cfg, &entry, no[i], err, sizeof(err)), 0);
		assert_false(holder.flag);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		assert_int_equal(config_set(&holder.cfg, &entry, bad[i], err, sizeof(err)), -1);
		assert_non_null(strstr(err, "FLAG (--flag): "));
		assert_non_null(strstr(err, "is not a boolean"));
	}
}

static void
test_help_and_version(void **state)
{
	char  *h1[] = {"sociald", "--port=1", "--help"};
	char  *h2[] = {"sociald", "-h"};
	char  *v[] = {"sociald", "--version"};
	Config cfg;

	assert_int_equal(load(h1, ARGC(h1), NULL, &cfg), CONFIG_HELP);
	assert_int_equal(load(h2, ARGC(h2), NULL, &cfg), CONFIG_HELP);
	assert_int_equal(load(v, ARGC(v), NULL, &cfg), CONFIG_VERSION);
}

/* --help shows every entry: its flag, its variable, its default. */
static void
test_help_lists_everything(void **state)
{
	char  *text = NULL;
	size_t len = 0;
	FILE  *out = open_memstream(&text, &len);

	assert_non_null(out);
	config_print_help(out, "sociald");
	fclose(out);
	assert_non_null(strstr(text, "Usage: sociald"));
	for (size_t i = 0; i < config_entry_count; i++)
	{
		const ConfigEntry *e = &config_entries[i];
		char			   flag[96];
		char			   env[160];

		snprintf(flag, sizeof(flag), "--%s=", e->name);
		snprintf(env, sizeof(env), "%s (default: %s)", e->env, e->def);
		if (!strstr(text, flag) || !strstr(text, env) || !strstr(text, e->help))
			fail_msg("--help does not show %s / %s", flag, env);
	}
	free(text);
}

/* ---- The reference service's variables */

typedef struct AliasCase
{
	const char *env[4];	 /* NULL-terminated */
	const char *setting; /* our variable */
	const char *expected;
	const char *note; /* a note containing this, or NULL for none */
} AliasCase;

/* The value of our variable 'env' in cfg, as text. */
static void
value_text(const Config *cfg, const char *env, char *out, size_t outlen)
{
	for (size_t i = 0; i < config_entry_count; i++)
	{
		const ConfigEntry *e = &config_entries[i];
		const char		  *field = (const char *) cfg + e->offset;

		if (strcmp(e->env, env) != 0)
			continue;
		if (e->type == CONFIG_STRING || e->type == CONFIG_CONNINFO)
			snprintf(out, outlen, "%s", field);
		else
			snprintf(out, outlen, "%d", *(const int *) field);
		return;
	}
	fail_msg("no setting %s", env);
}

static void
test_reference_aliases(void **state)
{
	static const AliasCase cases[] = {
		{{"PG_COMPONENT_PSQL_CONNECTION_STRING=postgresql://u:p@127.0.0.1:5432/social_service_ea"},
		 "PG_CONNECTION_STRING",
		 "postgresql://u:p@127.0.0.1:5432/social_service_ea",
		 NULL},
		{{"PG_CONNECTION_STRING=hostaddr=10.0.0.1", "PG_COMPONENT_PSQL_CONNECTION_STRING=dbname=x"},
		 "PG_CONNECTION_STRING",
		 "hostaddr=10.0.0.1",
		 "PG_CONNECTION_STRING and PG_COMPONENT_PSQL_CONNECTION_STRING are both set and differ: "
		 "PG_CONNECTION_STRING is used"},
		{{"PG_CONNECTION_STRING=dbname=x", "PG_COMPONENT_PSQL_CONNECTION_STRING=dbname=x"},
		 "PG_CONNECTION_STRING",
		 "dbname=x",
		 NULL},
		{{"PG_COMPONENT_PSQL_HOST=postgres", "PG_COMPONENT_PSQL_PORT=5433",
		  "PG_COMPONENT_PSQL_DATABASE=social_service_ea"},
		 "PG_CONNECTION_STRING",
		 "host='postgres' port='5433' dbname='social_service_ea'",
		 NULL},
		{{"PG_COMPONENT_PSQL_USER=o'brien", "PG_COMPONENT_PSQL_PASSWORD=a b\\'c",
		  "PG_COMPONENT_PSQL_HOST="},
		 "PG_CONNECTION_STRING",
		 "user='o\\'brien' password='a b\\\\\\'c'",
		 NULL},
		{{"PG_COMPONENT_PSQL_HOST=db", "PG_COMPONENT_PSQL_CONNECTION_STRING=dbname=y"},
		 "PG_CONNECTION_STRING",
		 "dbname=y",
		 "PG_COMPONENT_PSQL_{HOST,PORT,USER,PASSWORD,DATABASE} are ignored: "
		 "PG_COMPONENT_PSQL_CONNECTION_STRING is set"},
		{{"PG_COMPONENT_PSQL_HOST=db", "PG_CONNECTION_STRING=dbname=z"},
		 "PG_CONNECTION_STRING",
		 "dbname=z",
		 "are ignored: PG_CONNECTION_STRING is set"},
		{{"REDIS_HOST=redis"}, "REDIS_URL", "redis://redis", NULL},
		{{"REDIS_HOST=redis:6380"}, "REDIS_URL", "redis://redis:6380", NULL},
		{{"REDIS_HOST=[::1]:6380"}, "REDIS_URL", "redis://[::1]:6380", NULL},
		{{"REDIS_HOST="}, "REDIS_URL", "redis://127.0.0.1:6379", NULL},
		{{"REDIS_HOST=redis", "REDIS_URL=redis://redis:6379"},
		 "REDIS_URL",
		 "redis://redis:6379",
		 NULL},
		{{"REDIS_HOST=other", "REDIS_URL=redis://redis:6379"},
		 "REDIS_URL",
		 "redis://redis:6379",
		 "REDIS_URL and REDIS_HOST are both set and differ: REDIS_URL is used"},
		{{"UWS_SERVER_PORT=3000"}, "HTTP_PORT", "3000", NULL},
		{{"UWS_SERVER_PORT=3000", "HTTP_PORT=3001"},
		 "HTTP_PORT",
		 "3001",
		 "HTTP_PORT and UWS_SERVER_PORT are both set and differ"},
		{{"RPC_SERVER_PORT=8085", "NATS_URL=nats://nats:4222"},
		 "NATS_URL",
		 "nats://nats:4222",
		 NULL},
		{{"REGISTRY_URL=https://peer.decentraland.org", "AWS_REGION=us-east-1",
		  "AWS_SNS_ENDPOINT=http://localstack:4566"},
		 "REGISTRY_URL",
		 "https://peer.decentraland.org",
		 "reference service variables for features sociald does not have are ignored: "
		 "AWS_SNS_ENDPOINT, AWS_REGION"},
		{{"AWS_SNS_ARN="}, "RPC_SERVER_PORT", "8085", NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const AliasCase *c = &cases[i];
		char			*argv[] = {"sociald"};
		char			*envp[5] = {0};
		char			 got[CONFIG_CONNINFO_MAX];
		Config			 cfg;

		for (int j = 0; j < 4 && c->env[j]; j++)
			envp[j] = (char *) c->env[j];
		if (load(argv, ARGC(argv), envp, &cfg) != CONFIG_OK)
			fail_msg("case %zu (%s): %s", i, c->env[0], err);
		value_text(&cfg, c->setting, got, sizeof(got));
		if (strcmp(got, c->expected) != 0)
			fail_msg("case %zu (%s): %s is \"%s\", expected \"%s\"", i, c->env[0], c->setting, got,
					 c->expected);
		if (!c->note)
		{
			if (cfg.note_count != 0)
				fail_msg("case %zu (%s): unexpected note \"%s\"", i, c->env[0], cfg.notes[0].text);
			continue;
		}
		assert_int_equal(cfg.note_count, 1);
		if (!strstr(cfg.notes[0].text, c->note))
			fail_msg("case %zu: note \"%s\" does not contain \"%s\"", i, cfg.notes[0].text,
					 c->note);
		/* Values may hold passwords: a note names variables only. */
		assert_null(strstr(cfg.notes[0].text, "="));
	}
}

/* A composed connection string reads back, through libpq, as the values that went in. */
static void
test_pg_parts_quoting(void **state)
{
	char  *envp[] = {"PG_COMPONENT_PSQL_USER=a b", "PG_COMPONENT_PSQL_PASSWORD=it's \\ 'x'=y",
					 "PG_COMPONENT_PSQL_DATABASE=d", NULL};
	char   out[CONFIG_CONNINFO_MAX], why[128];
	char  *argv[] = {"sociald"};
	Config cfg;

	assert_int_equal(config_pg_parts(envp, out, sizeof(out), why, sizeof(why)), 1);
	assert_int_equal(load(argv, ARGC(argv), envp, &cfg), CONFIG_OK);
	assert_string_equal(cfg.pg_conninfo, out);
	assert_string_equal(out, "user='a b' password='it\\'s \\\\ \\'x\\'=y' dbname='d'");
	assert_int_equal(config_pg_parts((char *[]){"X=1", NULL}, out, sizeof(out), why, sizeof(why)),
					 0);
	assert_int_equal(config_pg_parts(NULL, out, 8, why, sizeof(why)), 0);
	assert_int_equal(config_pg_parts(envp, out, 16, why, sizeof(why)), -1);
}

static void
test_reference_bad_values(void **state)
{
	static const BadCase cases[] = {
		{NULL, "UWS_SERVER_PORT=70000", "UWS_SERVER_PORT (--http-port): 70000 is out of range"},
		{NULL, "UWS_SERVER_PORT=x", "UWS_SERVER_PORT (--http-port): \"x\" is not a valid number"},
		{NULL, "REDIS_HOST=redis://r", "REDIS_HOST (reference name of REDIS_URL): expected host"},
		{NULL, "REDIS_HOST=u:p@r", "REDIS_HOST (reference name of REDIS_URL): expected host"},
		{NULL, "REDIS_HOST=r:port", "REDIS_HOST (--redis-url)"},
		{NULL, "PG_COMPONENT_PSQL_CONNECTION_STRING=nosuchkey=1",
		 "PG_COMPONENT_PSQL_CONNECTION_STRING (--pg): invalid connection option"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char  *argv[] = {"sociald"};
		char  *envp[] = {(char *) cases[i].env, NULL};
		Config cfg;

		if (load(argv, 1, envp, &cfg) != CONFIG_ERROR)
			fail_msg("%s was accepted", cases[i].env);
		if (!strstr(err, cases[i].message))
			fail_msg("%s: message \"%s\" does not contain \"%s\"", cases[i].env, err,
					 cases[i].message);
	}
}

typedef struct ResolveCase
{
	const char *conninfo;
	int			rc;
	const char *expected; /* rc 1: out contains this */
} ResolveCase;

/* Host names become hostaddr= once; IP addresses, socket directories and an explicit hostaddr
 * are left alone. localhost resolves without a network. */
static void
test_pg_resolve(void **state)
{
	static const ResolveCase cases[] = {
		{"hostaddr=127.0.0.1 port=5432 dbname=social", 0, NULL},
		{"host=127.0.0.1 dbname=social", 0, NULL},
		{"host=::1 dbname=social", 0, NULL},
		{"host=/var/run/postgresql dbname=social", 0, NULL},
		{"dbname=social", 0, NULL},
		{"host=localhost hostaddr=127.0.0.1", 0, NULL},
		{"host=localhost port=5433 dbname='a b'", 1, "hostaddr='"},
		{"postgresql://u:p%20w@localhost:5433/social", 1, "password='p w'"},
		{"host=localhost,127.0.0.1 port=1,2", 1, "hostaddr='"},
		{"host=localhost,127.0.0.1 port=1,2,3", -1, NULL},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char out[CONFIG_CONNINFO_MAX] = "unchanged";
		int	 rc = config_pg_resolve(cases[i].conninfo, out, sizeof(out), err, sizeof(err));

		if (rc != cases[i].rc)
			fail_msg("%s: %d, expected %d (%s)", cases[i].conninfo, rc, cases[i].rc, err);
		if (rc == 0)
			assert_string_equal(out, "unchanged");
		if (rc != 1)
			continue;
		assert_non_null(strstr(out, cases[i].expected));
		assert_non_null(strstr(out, "host='localhost"));
		/* What libpq reads back: as many hosts as addresses, and hosts as many as ports. */
		{
			PQconninfoOption *o = PQconninfoParse(out, NULL);
			const char		 *h = NULL, *a = NULL, *p = NULL;
			size_t			  nh = 1, na = 1, np = 1;

			assert_non_null(o);
			for (PQconninfoOption *x = o; x->keyword; x++)
			{
				if (strcmp(x->keyword, "host") == 0)
					h = x->val;
				else if (strcmp(x->keyword, "hostaddr") == 0)
					a = x->val;
				else if (strcmp(x->keyword, "port") == 0)
					p = x->val;
			}
			assert_non_null(h);
			assert_non_null(a);
			for (const char *c = h; *c; c++)
				nh += *c == ',';
			for (const char *c = a; *c; c++)
				na += *c == ',';
			assert_int_equal(nh, na);
			if (p && strchr(p, ','))
			{
				for (const char *c = p; *c; c++)
					np += *c == ',';
				assert_int_equal(np, nh);
			}
			PQconninfoFree(o);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_load_empty),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_flags_override_env),
		cmocka_unit_test(test_last_flag_wins),
		cmocka_unit_test(test_units),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_bool),
		cmocka_unit_test(test_help_and_version),
		cmocka_unit_test(test_help_lists_everything),
		cmocka_unit_test(test_reference_aliases),
		cmocka_unit_test(test_pg_parts_quoting),
		cmocka_unit_test(test_reference_bad_values),
		cmocka_unit_test(test_pg_resolve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
