/*
 * sigv4 -- AWS Signature Version 4 (AWS4-HMAC-SHA256) for one request, with OpenSSL's libcrypto
 * (SHA-256, HMAC-SHA256) and no AWS SDK; first for SNS' query API (POST / with a form body
 * Action=Publish&...), but nothing in it is SNS-only.
 *
 * The caller supplies the time (X-Amz-Date, YYYYMMDD'T'HHMMSS'Z'), so a signature is a pure
 * function of its inputs. Paths are taken as they are (not yet URI-encoded) and encoded once per
 * byte, '/' kept; there is no path normalisation ("." and ".." segments, repeated slashes):
 * SNS' path is "/".
 */
#ifndef SOCIALD_SIGV4_H
#define SOCIALD_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

/* A query parameter or a form field, not encoded (value NULL: empty). */
typedef struct Sigv4Param
{
	const char *name;
	const char *value;
} Sigv4Param;

/* A header to sign, as it will be sent. Names repeat freely (their values are joined with ','
 * in the given order); host, x-amz-date and x-amz-security-token are the signer's own and
 * refused here. */
typedef struct Sigv4Header
{
	const char *name;
	const char *value;
} Sigv4Header;

typedef struct Sigv4Request
{
	const char		  *method; /* "POST" */
	const char		  *host;   /* the Host header's value: "sns.eu-west-1.amazonaws.com" */
	const char		  *path;   /* "/", not encoded */
	const Sigv4Param  *query;
	size_t			   n_query;
	const Sigv4Header *headers;
	size_t			   n_headers;
	const void		  *payload; /* the body as sent (NULL with payload_len 0: none) */
	size_t			   payload_len;
} Sigv4Request;

typedef struct Sigv4Credentials
{
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token; /* NULL or "": none; else signed and sent as X-Amz-Security-Token */
} Sigv4Credentials;

typedef struct Sigv4Signed
{
	char  amz_date[17];	 /* the X-Amz-Date header's value */
	char  signature[65]; /* lower-case hex */
	char *authorization; /* the Authorization header's value */
	char *canonical_request;
	char *string_to_sign;
} Sigv4Signed;

/* Signs req for region and service at amz_date. 0 and *out filled (free with sigv4_free); -1
 * when an argument is malformed (a NULL, an empty method/host/region/service/key, a path not
 * starting with '/', amz_date not YYYYMMDDTHHMMSSZ, a header name that is empty, holds a
 * character outside HTTP's token characters or is one of the signer's own) or memory ran out;
 * *out is then zeroed. The request must then be sent with Host, X-Amz-Date, every header of
 * req->headers, X-Amz-Security-Token when there is a session token, and Authorization. */
int sigv4_sign(const Sigv4Request *req, const Sigv4Credentials *cred, const char *region,
			   const char *service, const char *amz_date, Sigv4Signed *out);

void sigv4_free(Sigv4Signed *s);

/* RFC 3986 encoding as SigV4 and SNS want it: A-Z a-z 0-9 - . _ ~ kept (and '/' when
 * keep_slash), every other byte %XX in upper-case hex (a space is %20, never '+'). A
 * NUL-terminated malloc'd string, NULL when memory ran out. */
char *sigv4_uri_encode(const char *s, size_t len, bool keep_slash);

/* An application/x-www-form-urlencoded body as SNS reads it: name=value pairs, each side
 * encoded by sigv4_uri_encode, joined with '&', in the given order. malloc'd; NULL when memory
 * ran out or a name is NULL. */
char *sigv4_form_encode(const Sigv4Param *params, size_t n);

#endif /* SOCIALD_SIGV4_H */
