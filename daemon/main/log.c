/*
 * log.c — one line per event on stderr: "2025-01-31T12:00:00.123Z info message".
 *
 * A line is formatted into one buffer and written with a single write(2), so lines from the
 * thread pool (if any module ever logs there) never interleave mid-line. Control characters in
 * the message (a newline inside a client-supplied string, say) become spaces: one event stays
 * one line, and nobody can forge a log line.
 */
#include "main/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

LogLevel log_level = LOG_LEVEL_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int
log_level_parse(const char *name, LogLevel *out)
{
	for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++)
	{
		if (strcmp(name, level_names[i]) == 0)
		{
			*out = (LogLevel) i;
			return 0;
		}
	}
	return -1;
}

/* Longer messages are cut; a log line is not a data channel. */
#define LOG_LINE_MAX 2048

static size_t
format_prefix(char *buf, size_t size, LogLevel level)
{
	struct timespec ts;
	struct tm		tm;
	size_t			n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t) snprintf(buf + n, size - n, ".%03ldZ %s ", ts.tv_nsec / 1000000L,
						   level_names[level]);
	return n;
}

static void
emit(char *buf, size_t used, size_t prefix, const char *fmt, va_list ap)
{
	int n = vsnprintf(buf + used, LOG_LINE_MAX - used - 1, fmt, ap);

	if (n < 0)
		n = 0;
	used += (size_t) n < LOG_LINE_MAX - used - 1 ? (size_t) n : LOG_LINE_MAX - used - 2;
	for (size_t i = prefix; i < used; i++)
		if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	buf[used++] = '\n';
	/* Nothing useful can be done when stderr is gone. */
	if (write(STDERR_FILENO, buf, used) < 0)
		return;
}

void
log_write(LogLevel level, const char *fmt, ...)
{
	char	buf[LOG_LINE_MAX];
	size_t	n = format_prefix(buf, sizeof(buf), level);
	va_list ap;

	va_start(ap, fmt);
	emit(buf, n, n, fmt, ap);
	va_end(ap);
}

void
log_write_conn(LogLevel level, uint64_t conn_id, const char *address, const char *fmt, ...)
{
	char	buf[LOG_LINE_MAX];
	size_t	n = format_prefix(buf, sizeof(buf), level);
	size_t	prefix = n;
	va_list ap;

	n += (size_t) snprintf(buf + n, sizeof(buf) - n, "conn=%llu addr=%s ",
						   (unsigned long long) conn_id, address && address[0] ? address : "-");
	va_start(ap, fmt);
	emit(buf, n, prefix, fmt, ap);
	va_end(ap);
}
