/*
 * sigv4 -- AWS Signature Version 4: the canonical request, the string to sign, the signing key
 * derived from the secret, the date, the region and the service, and the Authorization header.
 * See sigv4.h for what is and is not done (no path normalisation).
 */
#include "lib/sigv4.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"

/* A growing string; a failed append marks it failed and later appends do nothing. */
typedef struct Sigv4Buf
{
	char  *data;
	size_t len;
	size_t cap;
	bool   failed;
} Sigv4Buf;

static void
sigv4_buf_add(Sigv4Buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap)
	{
		size_t cap = b->cap ? b->cap : 256;
		char  *data;

		while (cap < b->len + n + 1)
			cap *= 2;
		data = realloc(b->data, cap);
		if (data == NULL)
		{
			b->failed = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void
sigv4_buf_str(Sigv4Buf *b, const char *s)
{
	sigv4_buf_add(b, s, strlen(s));
}

/* The string, or NULL (and nothing to free) when an append failed. */
static char *
sigv4_buf_take(Sigv4Buf *b)
{
	if (b->failed || b->data == NULL)
	{
		free(b->data);
		b->data = NULL;
		return b->failed ? NULL : strdup("");
	}
	return b->data;
}

static bool
sigv4_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		   c == '.' || c == '_' || c == '~';
}

static void
sigv4_buf_encoded(Sigv4Buf *b, const char *s, size_t len, bool keep_slash)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (sigv4_unreserved(c) || (keep_slash && c == '/'))
			sigv4_buf_add(b, (const char *) &s[i], 1);
		else
		{
			char pct[3] = {'%', digits[c >> 4], digits[c & 15]};

			sigv4_buf_add(b, pct, 3);
		}
	}
}

char *
sigv4_uri_encode(const char *s, size_t len, bool keep_slash)
{
	Sigv4Buf b = {0};

	sigv4_buf_encoded(&b, s, len, keep_slash);
	return sigv4_buf_take(&b);
}

char *
sigv4_form_encode(const Sigv4Param *params, size_t n)
{
	Sigv4Buf b = {0};

	for (size_t i = 0; i < n; i++)
	{
		const char *value = params[i].value ? params[i].value : "";

		if (params[i].name == NULL)
		{
			free(b.data);
			return NULL;
		}
		if (i > 0)
			sigv4_buf_add(&b, "&", 1);
		sigv4_buf_encoded(&b, params[i].name, strlen(params[i].name), false);
		sigv4_buf_add(&b, "=", 1);
		sigv4_buf_encoded(&b, value, strlen(value), false);
	}
	return sigv4_buf_take(&b);
}

static void
sigv4_hex(const unsigned char *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool
sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int  md_len = 0;

	if (!EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
		return false;
	sigv4_hex(md, 32, out);
	return true;
}

static bool
sigv4_hmac(const void *key, size_t key_len, const char *data, unsigned char out[32])
{
	unsigned int out_len = 0;

	return HMAC(EVP_sha256(), key, (int) key_len, (const unsigned char *) data, strlen(data), out,
				&out_len) != NULL &&
		   out_len == 32;
}

/* YYYYMMDDTHHMMSSZ, digits where digits go (the calendar is the caller's business). */
static bool
sigv4_date_ok(const char *d)
{
	if (strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return false;
	return true;
}

/* RFC 9110's token characters: what a header name may hold. */
static bool
sigv4_token_char(unsigned char c)
{
	return sigv4_unreserved(c) || (c != '\0' && strchr("!#$%&'*+^`|", c) != NULL);
}

/* One header of the canonical list: lower-case name, its values in order. */
typedef struct Sigv4Canon
{
	char			  *name;
	const Sigv4Header *first; /* its first occurrence among the caller's, or NULL */
	const char		  *value; /* the signer's own header's value */
	size_t			   order; /* position in the input, for a stable sort */
} Sigv4Canon;

static int
sigv4_canon_cmp(const void *a, const void *b)
{
	const Sigv4Canon *x = a, *y = b;
	int				  c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* A value trimmed, runs of whitespace (folded lines included) made one space. */
static void
sigv4_buf_trimmed(Sigv4Buf *b, const char *v)
{
	bool pending_space = false, any = false;

	for (; *v; v++)
	{
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		{
			pending_space = any;
			continue;
		}
		if (pending_space)
			sigv4_buf_add(b, " ", 1);
		pending_space = false;
		any = true;
		sigv4_buf_add(b, v, 1);
	}
}

typedef struct Sigv4Query
{
	char *name;
	char *value;
} Sigv4Query;

static int
sigv4_query_cmp(const void *a, const void *b)
{
	const Sigv4Query *x = a, *y = b;
	int				  c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* The canonical query string: every name and value encoded, sorted by name then value. */
static bool
sigv4_buf_query(Sigv4Buf *b, const Sigv4Param *query, size_t n)
{
	Sigv4Query *q = n ? calloc(n, sizeof(*q)) : NULL;
	bool		ok = n == 0 || q != NULL;

	for (size_t i = 0; ok && i < n; i++)
	{
		const char *v = query[i].value ? query[i].value : "";

		if (query[i].name == NULL)
		{
			ok = false;
			break;
		}
		q[i].name = sigv4_uri_encode(query[i].name, strlen(query[i].name), false);
		q[i].value = sigv4_uri_encode(v, strlen(v), false);
		ok = q[i].name != NULL && q[i].value != NULL;
	}
	if (ok)
	{
		qsort(q, n, sizeof(*q), sigv4_query_cmp);
		for (size_t i = 0; i < n; i++)
		{
			if (i > 0)
				sigv4_buf_add(b, "&", 1);
			sigv4_buf_str(b, q[i].name);
			sigv4_buf_add(b, "=", 1);
			sigv4_buf_str(b, q[i].value);
		}
	}
	for (size_t i = 0; q != NULL && i < n; i++)
	{
		free(q[i].name);
		free(q[i].value);
	}
	free(q);
	return ok;
}

/* The canonical headers (each "name:value\n") into b, the signed headers' list into names. */
static bool
sigv4_buf_headers(Sigv4Buf *b, Sigv4Buf *names, const Sigv4Request *req, const char *amz_date,
				  const char *token)
{
	size_t		n = req->n_headers + 3;
	Sigv4Canon *h = calloc(n, sizeof(*h));
	size_t		count = 0;
	bool		ok = h != NULL;

	for (size_t i = 0; ok && i < req->n_headers; i++)
	{
		const char *name = req->headers[i].name;

		if (name == NULL || *name == '\0' || req->headers[i].value == NULL)
		{
			ok = false;
			break;
		}
		h[count].name = strdup(name);
		if (h[count].name == NULL)
		{
			ok = false;
			break;
		}
		for (char *p = h[count].name; *p; p++)
		{
			if (!sigv4_token_char((unsigned char) *p))
				ok = false;
			if (*p >= 'A' && *p <= 'Z')
				*p = (char) (*p - 'A' + 'a');
		}
		if (strcmp(h[count].name, "host") == 0 || strcmp(h[count].name, "x-amz-date") == 0 ||
			strcmp(h[count].name, "x-amz-security-token") == 0)
			ok = false;
		h[count].first = &req->headers[i];
		h[count].order = count;
		count++;
	}
	if (ok)
	{
		const char *own[3][2] = {
			{"host", req->host}, {"x-amz-date", amz_date}, {"x-amz-security-token", token}};

		for (int i = 0; ok && i < 3; i++)
		{
			if (own[i][1] == NULL)
				continue;
			h[count].name = strdup(own[i][0]);
			h[count].value = own[i][1];
			h[count].order = count;
			ok = h[count++].name != NULL;
		}
	}
	if (ok)
	{
		qsort(h, count, sizeof(*h), sigv4_canon_cmp);
		for (size_t i = 0; i < count; i++)
		{
			bool same = i > 0 && strcmp(h[i].name, h[i - 1].name) == 0;

			if (same)
				sigv4_buf_add(b, ",", 1);
			else
			{
				if (i > 0)
				{
					sigv4_buf_add(b, "\n", 1);
					sigv4_buf_add(names, ";", 1);
				}
				sigv4_buf_str(b, h[i].name);
				sigv4_buf_add(b, ":", 1);
				sigv4_buf_str(names, h[i].name);
			}
			sigv4_buf_trimmed(b, h[i].first ? h[i].first->value : h[i].value);
		}
		sigv4_buf_add(b, "\n", 1);
	}
	for (size_t i = 0; h != NULL && i < count; i++)
		free(h[i].name);
	free(h);
	return ok;
}

int
sigv4_sign(const Sigv4Request *req, const Sigv4Credentials *cred, const char *region,
		   const char *service, const char *amz_date, Sigv4Signed *out)
{
	Sigv4Buf	  creq = {0}, names = {0}, sts = {0}, scope = {0}, auth = {0}, key = {0};
	const char	 *token;
	char		  hash[65];
	unsigned char k[32], k2[32];
	bool		  ok;

	if (out == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	if (req == NULL || cred == NULL || region == NULL || service == NULL || amz_date == NULL ||
		req->method == NULL || req->host == NULL || req->path == NULL ||
		cred->access_key_id == NULL || cred->secret_access_key == NULL || *req->method == '\0' ||
		*req->host == '\0' || req->path[0] != '/' || *region == '\0' || *service == '\0' ||
		*cred->access_key_id == '\0' || *cred->secret_access_key == '\0' ||
		!sigv4_date_ok(amz_date) || (req->payload == NULL && req->payload_len > 0) ||
		(req->n_query > 0 && req->query == NULL) || (req->n_headers > 0 && req->headers == NULL))
		return -1;
	token = cred->session_token && *cred->session_token ? cred->session_token : NULL;

	/* 1. The canonical request. */
	sigv4_buf_str(&creq, req->method);
	sigv4_buf_add(&creq, "\n", 1);
	sigv4_buf_encoded(&creq, req->path, strlen(req->path), true);
	sigv4_buf_add(&creq, "\n", 1);
	ok = sigv4_buf_query(&creq, req->query, req->n_query);
	sigv4_buf_add(&creq, "\n", 1);
	ok = ok && sigv4_buf_headers(&creq, &names, req, amz_date, token);
	sigv4_buf_add(&creq, "\n", 1);
	if (names.data != NULL)
		sigv4_buf_add(&creq, names.data, names.len);
	sigv4_buf_add(&creq, "\n", 1);
	ok = ok && sigv4_sha256_hex(req->payload ? req->payload : "", req->payload_len, hash);
	sigv4_buf_str(&creq, hash);
	ok = ok && !creq.failed && !names.failed;

	/* 2. The string to sign, over the credential scope date/region/service/aws4_request. */
	sigv4_buf_add(&scope, amz_date, 8);
	sigv4_buf_add(&scope, "/", 1);
	sigv4_buf_str(&scope, region);
	sigv4_buf_add(&scope, "/", 1);
	sigv4_buf_str(&scope, service);
	sigv4_buf_str(&scope, "/aws4_request");
	ok = ok && !scope.failed && sigv4_sha256_hex(creq.data, creq.len, hash);
	sigv4_buf_str(&sts, SIGV4_ALGORITHM "\n");
	sigv4_buf_add(&sts, amz_date, 16);
	sigv4_buf_add(&sts, "\n", 1);
	sigv4_buf_str(&sts, scope.data ? scope.data : "");
	sigv4_buf_add(&sts, "\n", 1);
	sigv4_buf_str(&sts, hash);
	ok = ok && !sts.failed;

	/* 3. The signing key: HMAC chain from "AWS4" + secret over date, region, service,
	 * "aws4_request"; then the signature over the string to sign. */
	if (ok)
	{
		char date[9];

		memcpy(date, amz_date, 8);
		date[8] = '\0';
		sigv4_buf_str(&key, "AWS4");
		sigv4_buf_str(&key, cred->secret_access_key);
		/* Each step into the other buffer: HMAC's key and output never alias. */
		ok = !key.failed && sigv4_hmac(key.data, key.len, date, k) &&
			 sigv4_hmac(k, 32, region, k2) && sigv4_hmac(k2, 32, service, k) &&
			 sigv4_hmac(k, 32, "aws4_request", k2) && sigv4_hmac(k2, 32, sts.data, k);
		if (key.data != NULL)
			memset(key.data, 0, key.len);
		free(key.data);
	}
	if (ok)
	{
		sigv4_hex(k, 32, out->signature);
		sigv4_buf_str(&auth, SIGV4_ALGORITHM " Credential=");
		sigv4_buf_str(&auth, cred->access_key_id);
		sigv4_buf_add(&auth, "/", 1);
		sigv4_buf_str(&auth, scope.data);
		sigv4_buf_str(&auth, ", SignedHeaders=");
		sigv4_buf_str(&auth, names.data);
		sigv4_buf_str(&auth, ", Signature=");
		sigv4_buf_str(&auth, out->signature);
		ok = !auth.failed;
	}
	memset(k, 0, sizeof(k));
	memset(k2, 0, sizeof(k2));
	free(names.data);
	free(scope.data);
	if (!ok)
	{
		free(creq.data);
		free(sts.data);
		free(auth.data);
		memset(out, 0, sizeof(*out));
		return -1;
	}
	memcpy(out->amz_date, amz_date, 17);
	out->canonical_request = creq.data;
	out->string_to_sign = sts.data;
	out->authorization = auth.data;
	return 0;
}

void
sigv4_free(Sigv4Signed *s)
{
	if (s == NULL)
		return;
	free(s->authorization);
	free(s->canonical_request);
	free(s->string_to_sign);
	memset(s, 0, sizeof(*s));
}
