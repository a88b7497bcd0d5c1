/*
 * url -- the parts of a URL's authority that every URL the daemon reads shares: a
 * case-insensitive "scheme://", host[:port] or [IPv6][:port], IP literals.
 *
 * url_authority only finds where things are; what each URL accepts (user information, host
 * lengths, what may follow the port, the path) and how it words a refusal stay with its parser
 * (store/redis_client.c redis://, presence/archipelago.c http(s)://).
 */
#ifndef SOCIALD_URL_H
#define SOCIALD_URL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct UrlAuthority
{
	const char *host; /* without brackets */
	size_t		host_len;
	bool		bracketed;	/* written [host] */
	const char *after_host; /* the byte after the host (after its ']') */
	bool		has_port;	/* a ':' follows the host */
	long		port;		/* with has_port: 1..65535, or -1 when the digits are not that */
	size_t		port_digits;
	const char *end; /* the byte after the port's digits, or after_host without a port */
} UrlAuthority;

/* Reads host[:port] at p, no further than limit. A host in brackets runs to the first ']' (-1
 * when there is none before limit; it may be empty); any other host is the longest run of
 * letters, digits, '.', '-' and '_' (it may be empty too). */
int url_authority(const char *p, const char *limit, UrlAuthority *a);

/* Letters, digits, '.', '-', '_' from p on, no further than limit: how many. */
size_t url_host_span(const char *p, const char *limit);

/* The index of the first of n schemes url starts with as "scheme://", in any case, with *rest
 * pointing after the "://"; -1 when it starts with none. */
int url_scheme(const char *url, const char *const *schemes, size_t n, const char **rest);

/* An IPv4 / IPv6 literal (IPv6 without brackets). */
bool url_ipv4(const char *s);
bool url_ipv6(const char *s);

#endif /* SOCIALD_URL_H */
