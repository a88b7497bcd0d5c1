/*
 * instance_id -- host:pid:random, unique enough among instances sharing one Redis.
 */
#include "lib/instance_id.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
instance_id_format(char *out, size_t size, const char *host, int pid, const unsigned char random[8])
{
	const unsigned char *r = random;

	snprintf(out, size, "%s:%d:%02x%02x%02x%02x%02x%02x%02x%02x",
			 host != NULL && host[0] != '\0' ? host : "sociald", pid, r[0], r[1], r[2], r[3], r[4],
			 r[5], r[6], r[7]);
}

const char *
instance_id(void)
{
	static char	  id[INSTANCE_ID_MAX];
	char		  host[64] = "sociald";
	unsigned char r[8] = {0};

	if (id[0] != '\0')
		return id;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "sociald");
	host[sizeof(host) - 1] = '\0';
	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t) sizeof(r))
	{
		struct timespec ts;
		uint64_t		t;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		t = (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
		memcpy(r, &t, sizeof(r));
	}
	instance_id_format(id, sizeof(id), host, (int) getpid(), r);
	return id;
}
