/*
 * url -- scheme, host[:port] and IP literals of a URL, ASCII only (no locale).
 */
#include "lib/url.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

static bool
url_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		   c == '-' || c == '_';
}

size_t
url_host_span(const char *p, const char *limit)
{
	size_t n = 0;

	while (p + n < limit && url_host_char(p[n]))
		n++;
	return n;
}

int
url_authority(const char *p, const char *limit, UrlAuthority *a)
{
	memset(a, 0, sizeof(*a));
	if (p < limit && *p == '[')
	{
		const char *close = memchr(p, ']', (size_t) (limit - p));

		if (close == NULL)
			return -1;
		a->bracketed = true;
		a->host = p + 1;
		a->host_len = (size_t) (close - a->host);
		a->after_host = close + 1;
	}
	else
	{
		a->host = p;
		a->host_len = url_host_span(p, limit);
		a->after_host = p + a->host_len;
	}
	a->end = a->after_host;
	if (a->after_host < limit && *a->after_host == ':')
	{
		const char *d = a->after_host + 1;
		long		v = 0;

		a->has_port = true;
		while (d < limit && *d >= '0' && *d <= '9')
		{
			if (v <= 65535)
				v = v * 10 + (*d - '0');
			d++;
		}
		a->port_digits = (size_t) (d - (a->after_host + 1));
		a->port = a->port_digits > 0 && v >= 1 && v <= 65535 ? v : -1;
		a->end = d;
	}
	return 0;
}

int
url_scheme(const char *url, const char *const *schemes, size_t n, const char **rest)
{
	for (size_t i = 0; i < n; i++)
	{
		size_t len = strlen(schemes[i]);

		if (strncasecmp(url, schemes[i], len) == 0 && strncmp(url + len, "://", 3) == 0)
		{
			*rest = url + len + 3;
			return (int) i;
		}
	}
	return -1;
}

bool
url_ipv4(const char *s)
{
	struct in_addr a;

	return inet_pton(AF_INET, s, &a) == 1;
}

bool
url_ipv6(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET6, s, &a) == 1;
}
