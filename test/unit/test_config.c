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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
