/*
 * test_sigv4.c — daemon/lib/sigv4.c: AWS Signature Version 4.
 *
 * The vectors of test_suite are facts from AWS' published SigV4 test suite
 * ("aws-sig-v4-test-suite", here as kept in github.com/awslabs/aws-c-auth under
 * tests/aws-signing-test-suite/v4/<case>/: request.txt, header-canonical-request.txt,
 * header-string-to-sign.txt, header-signature.txt): credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region us-east-1, service "service", host
 * example.amazonaws.com, X-Amz-Date 20150830T123600Z. Each row is one case: its request
 * (query and headers decoded into lists, Host and X-Amz-Date left to the signer), the canonical
 * request, the SHA-256 of it (the string to sign's last line) and the signature. The
 * normalize-path cases are left out: the signer does not normalise paths (SNS' path is "/");
 * get-space-unnormalized, whose path needs encoding only, is in.
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

#include "lib/sigv4.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_SCOPE "20150830/us-east-1/service/aws4_request"
/* RFC 3986's unreserved characters, all of them. */
#define U "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
/* SHA-256 of "Param1=value1", the form cases' body. */
#define FORM_SHA "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"

static void
test_suite(void **state)
{
	const struct
	{
		const char		  *name;
		const char		  *method;
		const char		  *path;
		const Sigv4Param  *query;
		size_t			   n_query;
		const Sigv4Header *headers;
		size_t			   n_headers;
		const char		  *payload;
		const char		  *token;
		const char		  *creq;
		const char		  *creq_sha;
		const char		  *signature;
	} cases[] = {
		{"get-vanilla", "GET", "/", NULL, 0, NULL, 0, NULL, NULL,
		 "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
		 "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "GET", "/",
		 (const Sigv4Param[]){{"Param2", "value2"}, {"Param1", "value1"}}, 2, NULL, 0, NULL, NULL,
		 "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
		 "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"get-vanilla-query-order-encoded", "GET", "/",
		 (const Sigv4Param[]){
			 {"Param-3", "Value3"}, {"Param", "Value2"}, {"\xe1\x88\xb4", "Value1"}},
		 3, NULL, 0, NULL, NULL,
		 "GET\n/\n%E1%88%B4=Value1&Param=Value2&Param-3=Value3\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "868294f5c38bd141c4972a373a76654f1418a8e4fc18b2e7903ae45e8ae0ec71",
		 "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
		{"get-vanilla-query-unreserved", "GET", "/", (const Sigv4Param[]){{U, U}}, 1, NULL, 0, NULL,
		 NULL,
		 "GET\n/\n-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
		 "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
		{"get-vanilla-utf8-query", "GET", "/", (const Sigv4Param[]){{"\xe1\x88\xb4", "bar"}}, 1,
		 NULL, 0, NULL, NULL,
		 "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
		 "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
		{"get-unreserved", "GET", "/" U, NULL, 0, NULL, 0, NULL, NULL,
		 "GET\n/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
		 "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
		{"get-utf8", "GET", "/\xe1\x88\xb4", NULL, 0, NULL, 0, NULL, NULL,
		 "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
		 "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{"get-space-unnormalized", "GET", "/example space/", NULL, 0, NULL, 0, NULL, NULL,
		 "GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
		 "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
		{"get-header-key-duplicate", "GET", "/", NULL, 0,
		 (const Sigv4Header[]){
			 {"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
		 3, NULL, NULL,
		 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value2,value2,value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
		 "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
		{"get-header-value-order", "GET", "/", NULL, 0,
		 (const Sigv4Header[]){{"My-Header1", "value4"},
							   {"My-Header1", "value1"},
							   {"My-Header1", "value3"},
							   {"My-Header1", "value2"}},
		 4, NULL, NULL,
		 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value4,value1,value3,value2\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
		 "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
		{"get-header-value-trim", "GET", "/", NULL, 0,
		 (const Sigv4Header[]){{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}}, 2,
		 NULL, NULL,
		 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
		 "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{"get-header-value-multiline", "GET", "/", NULL, 0,
		 (const Sigv4Header[]){{"My-Header1", "value1\n  value2\n     value3"}}, 1, NULL, NULL,
		 "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1 value2 value3\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "e99419459a677bc11de234014be3c4e72c1ea5b454ceb58b613061f5d7a162e8",
		 "cfd34249e4b1c8d6b91ef74165d41a32e5fab3306300901bb65a51a73575eefd"},
		{"get-vanilla-with-session-token", "GET", "/", NULL, 0, NULL, 0, NULL,
		 "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
		 "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267\n\nhost;x-amz-date;x-amz-security-token\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "067b36aa60031588cea4a4cde1f21215227a047690c72247f1d70b32fbbfad2b",
		 "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"},
		{"post-vanilla", "POST", "/", NULL, 0, NULL, 0, NULL, NULL,
		 "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
		 "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"post-vanilla-query", "POST", "/", (const Sigv4Param[]){{"Param1", "value1"}}, 1, NULL, 0,
		 NULL, NULL,
		 "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
		 "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
		{"post-header-key-sort", "POST", "/", NULL, 0,
		 (const Sigv4Header[]){{"My-Header1", "value1"}}, 1, NULL, NULL,
		 "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
		 "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
		{"post-header-value-case", "POST", "/", NULL, 0,
		 (const Sigv4Header[]){{"My-Header1", "VALUE1"}}, 1, NULL, NULL,
		 "POST\n/\n\nhost:example.amazonaws.com\nmy-header1:VALUE1\nx-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		 "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
		 "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
		{"post-x-www-form-urlencoded", "POST", "/", NULL, 0,
		 (const Sigv4Header[]){{"Content-Type", "application/x-www-form-urlencoded"},
							   {"Content-Length", "13"},
							   {"x-amz-content-sha256", FORM_SHA}},
		 3, "Param1=value1", NULL,
		 "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e", "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb",
		 "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
		{"post-x-www-form-urlencoded-parameters", "POST", "/", NULL, 0,
		 (const Sigv4Header[]){{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
							   {"Content-Length", "13"},
							   {"x-amz-content-sha256", FORM_SHA}},
		 3, "Param1=value1", NULL,
		 "POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:example.amazonaws.com\nx-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e\nx-amz-date:20150830T123600Z\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
		 "a89f1a5b53e37702ee6363ce1da3ce8f54386f3c8f352ae652153c2982a0bc4d",
		 "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const Sigv4Request req = {
			.method = cases[i].method,
			.host = "example.amazonaws.com",
			.path = cases[i].path,
			.query = cases[i].query,
			.n_query = cases[i].n_query,
			.headers = cases[i].headers,
			.n_headers = cases[i].n_headers,
			.payload = cases[i].payload,
			.payload_len = cases[i].payload ? strlen(cases[i].payload) : 0,
		};
		const Sigv4Credentials cred = {AKID, SECRET, cases[i].token};
		Sigv4Signed			   s;
		char				   sts[256], auth[512];
		const char			  *names;

		print_message("case %s\n", cases[i].name);
		assert_int_equal(sigv4_sign(&req, &cred, "us-east-1", "service", SUITE_DATE, &s), 0);
		assert_string_equal(s.canonical_request, cases[i].creq);
		snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", SUITE_DATE, SUITE_SCOPE,
				 cases[i].creq_sha);
		assert_string_equal(s.string_to_sign, sts);
		assert_string_equal(s.signature, cases[i].signature);
		assert_string_equal(s.amz_date, SUITE_DATE);
		/* The signed headers' list is the canonical request's second-to-last line. */
		names = strrchr(cases[i].creq, '\n');
		while (names > cases[i].creq && names[-1] != '\n')
			names--;
		snprintf(auth, sizeof(auth),
				 "AWS4-HMAC-SHA256 Credential=" AKID "/" SUITE_SCOPE
				 ", SignedHeaders=%.*s, Signature=%s",
				 (int) (strrchr(cases[i].creq, '\n') - names), names, cases[i].signature);
		assert_string_equal(s.authorization, auth);
		sigv4_free(&s);
		assert_null(s.authorization);
	}
}

/*
 * One request shaped as the daemon will send it to SNS: Publish to a topic in eu-west-1, the
 * body built by sigv4_form_encode. The expected body, canonical request hash and signature were
 * computed apart from this code, with Python's urllib.parse.quote(safe="-._~"), hashlib and
 * hmac, in a one-off script (not part of the build):
 *
 *   body = "&".join(quote(k, safe="-._~") + "=" + quote(v, safe="-._~") for k, v in params)
 *   creq = "\n".join(["POST", "/", "", "content-type:" + ct, "host:" + host,
 *                     "x-amz-date:" + t, "", "content-type;host;x-amz-date",
 *                     sha256(body).hexdigest()])
 *   sts  = "\n".join(["AWS4-HMAC-SHA256", t, t[:8] + "/eu-west-1/sns/aws4_request",
 *                     sha256(creq).hexdigest()])
 *   key  = hmac(hmac(hmac(hmac("AWS4" + secret, t[:8]), "eu-west-1"), "sns"), "aws4_request")
 *   hmac(key, sts).hexdigest()
 */
static void
test_sns_publish(void **state)
{
	const Sigv4Param params[] = {
		{"Action", "Publish"},
		{"Message", "{\"from\":\"0xAbC\",\"kind\":\"friend request\"} \xc3\xbc/&=+"},
		{"TopicArn", "arn:aws:sns:eu-west-1:123456789012:friend-requests"},
		{"Version", "2010-03-31"},
	};
	const Sigv4Header headers[] = {
		{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
	};
	const Sigv4Credentials cred = {AKID, SECRET, NULL};
	char				  *body = sigv4_form_encode(params, 4);
	Sigv4Request		   req = {
				  .method = "POST",
				  .host = "sns.eu-west-1.amazonaws.com",
				  .path = "/",
				  .headers = headers,
				  .n_headers = 1,
	  };
	Sigv4Signed s;

	assert_non_null(body);
	assert_string_equal(body,
						"Action=Publish&Message=%7B%22from%22%3A%220xAbC%22%2C%22kind%22%3A%"
						"22friend%20request%22%7D%20%C3%BC%2F%26%3D%2B&TopicArn=arn%3Aaws%"
						"3Asns%3Aeu-west-1%3A123456789012%3Afriend-requests&Version=2010-03-31");
	req.payload = body;
	req.payload_len = strlen(body);
	assert_int_equal(sigv4_sign(&req, &cred, "eu-west-1", "sns", "20261208T013000Z", &s), 0);
	assert_string_equal(s.string_to_sign,
						"AWS4-HMAC-SHA256\n20261208T013000Z\n20261208/eu-west-1/sns/aws4_request\n"
						"3beb5a3a6c11cadd3975ca1ffebbabfec67aef7db3eed7339b55f1e39da18620");
	assert_string_equal(
		s.authorization,
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261208/eu-west-1/sns/"
		"aws4_request, SignedHeaders=content-type;host;x-amz-date, "
		"Signature=b1774ecf0f011e00a9ba5522a270a40195f28a8f6efbb5b19b6eaf51166a54c9");
	sigv4_free(&s);
	free(body);
}

static void
test_encode(void **state)
{
	const struct
	{
		const char *in;
		size_t		len;
		bool		keep_slash;
		const char *out;
	} cases[] = {
		{"", 0, false, ""},
		{U, sizeof(U) - 1, false, U},
		{"a b+c", 5, false, "a%20b%2Bc"},
		{"/a/b c/", 7, true, "/a/b%20c/"},
		{"/a/b", 4, false, "%2Fa%2Fb"},
		{"!*'();:@&=$,?#[]%", 17, false, "%21%2A%27%28%29%3B%3A%40%26%3D%24%2C%3F%23%5B%5D%25"},
		{"\x00\x7f\x80\xff", 4, false, "%00%7F%80%FF"},
		{"\xe1\x88\xb4", 3, true, "%E1%88%B4"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		char *out = sigv4_uri_encode(cases[i].in, cases[i].len, cases[i].keep_slash);

		assert_non_null(out);
		assert_string_equal(out, cases[i].out);
		free(out);
	}
}

static void
test_form(void **state)
{
	const Sigv4Param one[] = {{"a b", NULL}};
	const Sigv4Param two[] = {{"z", "1"}, {"a", "x=y&z"}};
	const Sigv4Param bad[] = {{"a", "1"}, {NULL, "2"}};
	char			*s;

	s = sigv4_form_encode(NULL, 0);
	assert_string_equal(s, "");
	free(s);
	s = sigv4_form_encode(one, 1);
	assert_string_equal(s, "a%20b=");
	free(s);
	s = sigv4_form_encode(two, 2); /* the given order, not sorted */
	assert_string_equal(s, "z=1&a=x%3Dy%26z");
	free(s);
	assert_null(sigv4_form_encode(bad, 2));
}

/* Malformed arguments: -1 and a zeroed result. */
static void
test_refusals(void **state)
{
	const Sigv4Header own_host[] = {{"Host", "example.amazonaws.com"}};
	const Sigv4Header own_date[] = {{"X-Amz-Date", SUITE_DATE}};
	const Sigv4Header own_token[] = {{"x-amz-security-token", "t"}};
	const Sigv4Header spaced[] = {{"My Header", "v"}};
	const Sigv4Header colon[] = {{"My:Header", "v"}};
	const Sigv4Header empty[] = {{"", "v"}};
	const Sigv4Header no_value[] = {{"a", NULL}};
	const Sigv4Param  no_name[] = {{NULL, "v"}};
	const struct
	{
		const char		  *method, *host, *path;
		const Sigv4Param  *query;
		const Sigv4Header *headers;
		const char		  *date, *akid, *secret, *region;
	} cases[] = {
		{"POST", "h", "/", NULL, NULL, "20150830T123600", AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, NULL, "20150830 123600Z", AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, NULL, "2015083xT123600Z", AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, NULL, "20150830T123600Z0", AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, NULL, NULL, AKID, SECRET, "r"},
		{"POST", "h", "", NULL, NULL, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "a/", NULL, NULL, SUITE_DATE, AKID, SECRET, "r"},
		{"", "h", "/", NULL, NULL, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "", "/", NULL, NULL, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", NULL, "/", NULL, NULL, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, NULL, SUITE_DATE, "", SECRET, "r"},
		{"POST", "h", "/", NULL, NULL, SUITE_DATE, AKID, NULL, "r"},
		{"POST", "h", "/", NULL, NULL, SUITE_DATE, AKID, SECRET, ""},
		{"POST", "h", "/", NULL, own_host, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, own_date, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, own_token, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, spaced, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, colon, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, empty, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", NULL, no_value, SUITE_DATE, AKID, SECRET, "r"},
		{"POST", "h", "/", no_name, NULL, SUITE_DATE, AKID, SECRET, "r"},
	};
	const Sigv4Signed zero = {{0}};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const Sigv4Request	   req = {.method = cases[i].method,
									  .host = cases[i].host,
									  .path = cases[i].path,
									  .query = cases[i].query,
									  .n_query = cases[i].query ? 1 : 0,
									  .headers = cases[i].headers,
									  .n_headers = cases[i].headers ? 1 : 0};
		const Sigv4Credentials cred = {cases[i].akid, cases[i].secret, NULL};
		Sigv4Signed			   s;

		print_message("refusal %zu\n", i);
		memset(&s, 0x55, sizeof(s));
		assert_int_equal(sigv4_sign(&req, &cred, cases[i].region, "sns", cases[i].date, &s), -1);
		assert_memory_equal(&s, &zero, sizeof(s));
	}
	assert_int_equal(sigv4_sign(NULL, NULL, "r", "s", SUITE_DATE, NULL), -1);
}

/* An empty session token is no token; the same request with and without one differs. */
static void
test_session_token(void **state)
{
	const Sigv4Request	   req = {.method = "POST", .host = "h", .path = "/"};
	const Sigv4Credentials none = {AKID, SECRET, NULL}, empty = {AKID, SECRET, ""},
						   token = {AKID, SECRET, "tok"};
	Sigv4Signed a, b, c;

	assert_int_equal(sigv4_sign(&req, &none, "r", "sns", SUITE_DATE, &a), 0);
	assert_int_equal(sigv4_sign(&req, &empty, "r", "sns", SUITE_DATE, &b), 0);
	assert_int_equal(sigv4_sign(&req, &token, "r", "sns", SUITE_DATE, &c), 0);
	assert_string_equal(a.authorization, b.authorization);
	assert_non_null(strstr(c.canonical_request, "\nx-amz-security-token:tok\n"));
	assert_non_null(strstr(c.authorization, "SignedHeaders=host;x-amz-date;x-amz-security-token,"));
	assert_string_not_equal(a.signature, c.signature);
	sigv4_free(&a);
	sigv4_free(&b);
	sigv4_free(&c);
	sigv4_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite),	 cmocka_unit_test(test_sns_publish),
		cmocka_unit_test(test_encode),	 cmocka_unit_test(test_form),
		cmocka_unit_test(test_refusals), cmocka_unit_test(test_session_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
