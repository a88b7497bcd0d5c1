/*
 * config.h — sociald's settings: one table {name, env var, type, default, help} that loads from
 * the environment and from --name=value flags (a flag overrides the environment), validates every
 * value, and prints --help. Redis' config.c habit: adding a setting is one table row plus one
 * struct field.
 *
 * Everything is copied into Config (strings into fixed buffers), so a loaded Config borrows
 * nothing from argv or the environment.
 */
#ifndef SOCIALD_CONFIG_H
#define SOCIALD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "main/log.h"

#define SOCIALD_VERSION "0.2.0"

#define CONFIG_HOST_MAX 256
#define CONFIG_CONNINFO_MAX 1024
#define CONFIG_URL_MAX 1024
#define CONFIG_NAME_MAX 128

#define CONFIG_NOTES_MAX 8

typedef struct ConfigNote
{
	LogLevel level;
	char	 text[256];
} ConfigNote;

typedef struct Config
{
	/* WebSocket and HTTP door */
	char host[CONFIG_HOST_MAX];
	int	 port;
	int	 auth_timeout_ms;		  /* first frame must arrive and verify within this */
	int	 auth_window_ms;		  /* accepted distance of x-identity-timestamp from now */
	int	 idle_timeout_s;		  /* no traffic (pongs included) for this long: hang up */
	int	 max_payload_bytes;		  /* one reassembled inbound message */
	int	 max_connections;		  /* open WebSockets; beyond: 1013 */
	int	 max_unauthenticated;	  /* of which not yet authenticated; beyond: 1013 */
	int	 outbound_queue_messages; /* frames waiting for the socket; beyond: 1011 */
	int	 outbound_queue_bytes;	  /* bytes waiting for the socket; beyond: 1011 */
	int	 messages_per_second;	  /* inbound token bucket rate; beyond: 1008 */
	int	 messages_burst;		  /* inbound token bucket depth */
	int	 shutdown_timeout_ms;	  /* SIGTERM: how long closing clients may take */
	/* RPC sessions */
	int stream_buffer;
	int rpc_max_ports;
	int rpc_max_streams;
	int rpc_max_pending_calls;
	/* PostgreSQL */
	char pg_conninfo[CONFIG_CONNINFO_MAX];
	int	 pg_pool_size;
	int	 pg_query_timeout_ms;
	int	 pg_max_queued;
	/* Process */
	LogLevel log_level;
	/* Presence (presence.h; nats_source.h and archipelago.h read their sources' settings here) */
	char presence_sources[CONFIG_NAME_MAX]; /* "auto", "none" or a list: config_presence_sources */
	int	 presence_ttl_ms;					/* a source's word lasts this long */
	bool presence_sessions;					/* record sessions into social.presence_sessions */
	char redis_url[CONFIG_URL_MAX];			/* redis://[[user]:password@]host[:port][/db] */
	char nats_url[CONFIG_URL_MAX];			/* "" = no NATS source */
	char nats_queue_group[CONFIG_NAME_MAX];
	char archipelago_stats_url[CONFIG_URL_MAX]; /* "" = no Archipelago source */
	int	 archipelago_poll_interval_ms;
	/* Profiles (social/registry.h) */
	char registry_url[CONFIG_URL_MAX]; /* "" = no registry: profiles as social.profiles has them */
	int	 registry_timeout_ms;
	/* HTTP routes only (no WebSocket) on a second port too; 0 = none */
	int http_port;
	/* What config_load noticed that is not an error: a reference variable overridden by ours,
	 * reference variables ignored. config_log logs them, one line each. */
	ConfigNote notes[CONFIG_NOTES_MAX];
	int		   note_count;
} Config;

typedef enum ConfigType
{
	CONFIG_INT = 0,	  /* decimal integer within [min, max] */
	CONFIG_MS,		  /* duration in ms: "1500", "1500ms", "30s", "5m", "1h"; within [min, max] */
	CONFIG_BYTES,	  /* size in bytes: "4096", "64k", "64KiB", "4M", "4MiB"; within [min, max] */
	CONFIG_BOOL,	  /* true/false, yes/no, on/off, 1/0 */
	CONFIG_STRING,	  /* non-empty, copied; at most size - 1 bytes */
	CONFIG_CONNINFO,  /* a CONFIG_STRING that libpq must parse; its password is masked in logs */
	CONFIG_LOG_LEVEL, /* error, warn, info, debug */
} ConfigType;

typedef struct ConfigEntry
{
	const char *name; /* flag: --name=value */
	const char *env;  /* environment variable */
	ConfigType	type;
	const char *def; /* default, parsed like any other value */
	long long	min; /* CONFIG_INT, CONFIG_MS, CONFIG_BYTES */
	long long	max;
	size_t		offset; /* of the field in Config */
	size_t		size;	/* of the field (strings: the buffer) */
	const char *help;
	/* CONFIG_STRING only, both optional: */
	bool allow_empty; /* "" is a value (it turns the feature off) */
	/* Checks a value beyond its type; -1 with a reason in why. */
	int (*check)(const char *value, char *why, size_t whylen);
} ConfigEntry;

extern const ConfigEntry config_entries[];
extern const size_t		 config_entry_count;

/*
 * The reference service's (social-service-ea) variables that mean one of ours. Environment only;
 * ours win where both are set (a differing pair is one warning note). An empty value is unset.
 * PG_COMPONENT_PSQL_{HOST,PORT,USER,PASSWORD,DATABASE} are composed into PG_CONNECTION_STRING
 * when neither connection string is set (config_pg_parts).
 */
typedef struct ConfigAlias
{
	const char *env;  /* the reference's variable */
	const char *ours; /* the variable of the entry it sets */
	/* The reference's value as ours; NULL: the same text. -1 with a reason in why. */
	int (*convert)(const char *value, char *out, size_t outlen, char *why, size_t whylen);
} ConfigAlias;

extern const ConfigAlias config_aliases[];
extern const size_t		 config_alias_count;
/* The reference's variables for features sociald does not have: set ones are named in one info
 * note. NULL-terminated. */
extern const char *const config_ignored[];

typedef enum ConfigStatus
{
	CONFIG_OK = 0,
	CONFIG_HELP,	/* --help or -h: print config_print_help and exit 0 */
	CONFIG_VERSION, /* --version: print SOCIALD_VERSION and exit 0 */
	CONFIG_ERROR,	/* err holds one line saying what is wrong and where */
} ConfigStatus;

/* Every entry's default. Cannot fail: the unit test proves every default parses. */
void config_defaults(Config *cfg);

/*
 * Defaults, then the environment (envp: "NAME=value" strings, NULL-terminated; NULL means none),
 * then argv[1..] flags --name=value. Stops at the first bad value with a message in err.
 */
ConfigStatus config_load(Config *cfg, int argc, char *const argv[], char *const envp[], char *err,
						 size_t errlen) __attribute__((warn_unused_result));

/* One entry's value from text into cfg; 0 ok, -1 with a message in err. */
int config_set(Config *cfg, const ConfigEntry *e, const char *value, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The entry with this flag name, or NULL. */
const ConfigEntry *config_find(const char *name);

/* Usage and every entry: flag, environment variable, default, help. */
void config_print_help(FILE *out, const char *prog);

/*
 * The PG_COMPONENT_PSQL_{HOST,PORT,USER,PASSWORD,DATABASE} values of envp as one libpq
 * connection string (host='...' port='...' ...: quoted, \\ and ' escaped), in the order above,
 * unset and empty ones left out. 1 with the string in out, 0 when none is set, -1 when it does
 * not fit (why says so).
 */
int config_pg_parts(char *const envp[], char *out, size_t outlen, char *why, size_t whylen);

/*
 * libpq resolves host= names with a blocking getaddrinfo() on every (re)connect, on the loop.
 * Called once at start-up, before the loop runs: when conninfo names a host (not an IP address,
 * not a socket directory) and gives no hostaddr=, every host name is resolved now and the
 * connection string rewritten with hostaddr= (each address of a name is tried in turn, as libpq
 * would; host= stays, for TLS and for the password file). 1 rewritten into out, 0 nothing to do
 * (out unchanged), -1 a name that does not resolve or a string that does not fit (err says which).
 */
int config_pg_resolve(const char *conninfo, char *out, size_t outlen, char *err, size_t errlen);

/* Logs every setting at info level (passwords in the connection string and URLs are masked). */
void config_log(const Config *cfg);

/* The presence sources this instance feeds, from PRESENCE_SOURCES: "auto" is socket, plus nats
 * when NATS_URL is set, plus archipelago when ARCHIPELAGO_STATS_URL is set; "none" is none;
 * otherwise the comma-separated list (config_load has validated it). */
typedef struct ConfigPresenceSources
{
	bool nats;
	bool archipelago;
	bool socket;
} ConfigPresenceSources;

ConfigPresenceSources config_presence_sources(const Config *cfg);

#endif /* SOCIALD_CONFIG_H */
