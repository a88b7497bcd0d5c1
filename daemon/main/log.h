/*
 * log.h — leveled logging to stderr.
 *
 * The macros test the level before any argument is evaluated or formatted (Redis' serverLog
 * habit), so a debug line costs one comparison when debug is off. Per-connection lines carry
 * the connection id and address: use log_conn().
 */
#ifndef SOCIALD_LOG_H
#define SOCIALD_LOG_H

#include <stdint.h>

typedef enum LogLevel
{
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG
} LogLevel;

extern LogLevel log_level;

/* Parses "error", "warn", "info", "debug"; -1 on anything else. */
int log_level_parse(const char *name, LogLevel *out);

void log_write(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_write_conn(LogLevel level, uint64_t conn_id, const char *address, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define LOG_AT(level, ...)                   \
	do                                       \
	{                                        \
		if ((level) <= log_level)            \
			log_write((level), __VA_ARGS__); \
	} while (0)

#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* address may be NULL or "" before authentication. */
#define log_conn(level, conn_id, address, ...)                          \
	do                                                                  \
	{                                                                   \
		if ((level) <= log_level)                                       \
			log_write_conn((level), (conn_id), (address), __VA_ARGS__); \
	} while (0)

#endif /* SOCIALD_LOG_H */
