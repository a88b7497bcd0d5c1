/*
 * instance_id -- this process' one name among the instances that share a Redis: the socket
 * source's field in presence and the Archipelago poll lease are both held under it.
 */
#ifndef SOCIALD_INSTANCE_ID_H
#define SOCIALD_INSTANCE_ID_H

#include <stddef.h>

/* Room for an instance id and its NUL: a host name of up to 63 bytes, ':', a pid, ':', 16 hex. */
#define INSTANCE_ID_MAX 96

/* "host:pid:random" (random: 16 hex digits), made on the first call; every later call in the
 * process returns the same string. Loop thread only (not thread-safe on the first call). */
const char *instance_id(void);

/* The format alone: host (a NULL or empty one reads "sociald"), pid and 8 random bytes, into
 * out (size bytes, truncated with a NUL). */
void instance_id_format(char *out, size_t size, const char *host, int pid,
						const unsigned char random[8]);

#endif /* SOCIALD_INSTANCE_ID_H */
