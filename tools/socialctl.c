/*
 * socialctl — the operator's client for sociald, and the tool the black-box tests drive it with.
 *
 *   socialctl [OPTIONS] address
 *   socialctl [OPTIONS] call <Procedure> [key=value ...]
 *   socialctl [OPTIONS] watch <SubscribeProcedure> [--count N] [--timeout-ms T]
 *
 * It behaves exactly like a game client (doc/auth-chain.md, doc/rpc-wire.md), so whatever
 * it proves about the daemon holds for real clients:
 *   1. a WebSocket to the URL; the first frame is a TEXT frame with the signed auth chain, built
 *      for this run with a fresh random ephemeral key (expiring in one day) and the identity key;
 *   2. CreatePort("socialctl") pipelined right behind it, without waiting;
 *   3. the first server frame must be SERVER_READY, then the CreatePortResponse;
 *   4. RequestModule("SocialService"); the procedure id is looked up BY NAME in the answer;
 *   5. one Request; a unary answer is printed, a stream is acknowledged element by element and
 *      cancelled with a client cancel frame after --count elements or at the deadline.
 * The client is strict: a frame that a real client could not make sense of (a reply before
 * SERVER_READY, an element out of sequence, a stream answered like a unary call) is reported as a
 * protocol failure instead of being tolerated, because hiding it would hide a daemon bug.
 *
 * Arguments: `call X key=value ...` fills X's request message through its protobuf descriptor,
 * following a small per-procedure map (ctl_procs) from argument names to field paths, e.g.
 * limit -> pagination.limit, user -> user.address; values are checked against the field's type
 * and enum names. Every procedure of the module has a row, so the tool also drives the ones
 * sociald does not serve (they must answer a RemoteError).
 *
 * Output: every response or stream element is one line of JSON on stdout, flushed at once. Keys
 * are the proto field names in field-number order; proto3 scalars are always printed (also
 * defaults), messages and oneof/optional members only when present; enums by name; bytes in hex.
 * A RemoteError prints {"remote_error":{"code":N,"message":"..."}}. Diagnostics go to stderr.
 *
 * Exit codes: 0 ok; 1 typed error in the response (invalid_request, ...), a RemoteError, or a
 * stream the server ended before --count; 2 usage; 3 connection, authentication or protocol
 * failure (a close prints "closed: <code> <reason>"); 4 timed out (no answer, or fewer than
 * --count elements, within --timeout-ms).
 *
 * Single-threaded and blocking on purpose: lws' own poll loop, one connection, one call.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "door/auth.h"
#include "rpc/rpc.h"

#include "rpc/rpc.pb-c.h"
#include "decentraland/social_service/v2/social_service_v2.pb-c.h"

#define CTL_EXIT_OK 0
#define CTL_EXIT_ERROR 1
#define CTL_EXIT_USAGE 2
#define CTL_EXIT_CONNECTION 3
#define CTL_EXIT_TIMEOUT 4

#define CTL_DEFAULT_URL "ws://127.0.0.1:8085/"
#define CTL_PORT_NAME "socialctl"
#define CTL_CALL_TIMEOUT_MS 30000 /* a unary call's safety net when --timeout-ms is not given */
#define CTL_MAX_FRAME (1024 * 1024)
#define CTL_MAX_OUT 8	   /* frames queued for writing; the protocol never needs more than 3 */
#define CTL_MAX_ITEMS 1000 /* elements of one repeated field (GetPrivateMessagesSettings) */
#define CTL_KEY_FILE_MAX 256

/* Message numbers this client uses: fixed, so a protocol trace reads the same on every run. */
#define CTL_MSG_PORT 1
#define CTL_MSG_MODULE 2
#define CTL_MSG_CALL 3

typedef enum CtlAuthMode
{
	CTL_AUTH_VALID = 0,
	CTL_AUTH_STALE,	  /* timestamp 10 minutes old: outside the server's window */
	CTL_AUTH_EXPIRED, /* ephemeral link expired an hour ago */
	CTL_AUTH_GARBAGE, /* a first frame that is not JSON */
	CTL_AUTH_NONE	  /* send nothing: the server's auth timeout must close us */
} CtlAuthMode;

typedef enum CtlPhase
{
	CTL_PHASE_CONNECTING = 0,
	CTL_PHASE_READY_WAIT, /* auth and CreatePort sent, waiting for SERVER_READY */
	CTL_PHASE_PORT_WAIT,
	CTL_PHASE_MODULE_WAIT,
	CTL_PHASE_CALL_WAIT,  /* unary request sent */
	CTL_PHASE_OFFER_WAIT, /* stream request sent, waiting for the offer (seq 0) */
	CTL_PHASE_STREAMING,  /* offer acknowledged, elements flowing */
	CTL_PHASE_DONE		  /* outcome decided; closing */
} CtlPhase;

/*
 * What socialctl knows about a procedure: its request and response (stream element) types, and
 * where each key=value argument goes in the request: a list of "key:path" with path a dotted
 * list of proto field names. "name[]" appends one element of a repeated message per
 * comma-separated value; "@" makes the key a selector whose value names a oneof member (the
 * action of UpsertFriendship), and "@.x" is field x of the selected member.
 */
typedef struct CtlProc
{
	const char						 *name;
	const ProtobufCMessageDescriptor *request;
	const ProtobufCMessageDescriptor *response;
	const char						 *args;
} CtlProc;

typedef struct CtlFrame
{
	uint8_t *buf; /* LWS_PRE headroom + payload; owned */
	size_t	 len;
	bool	 text;
} CtlFrame;

typedef struct Ctl
{
	/* options */
	char		   host[256];
	char		   path[512];
	int			   port;
	bool		   tls;
	uint8_t		   key[32];
	CtlAuthMode	   auth_mode;
	bool		   verbose;
	const char	  *ready_file;
	bool		   watch;
	long		   count;	   /* watch: elements before cancelling; 0: until the deadline */
	long		   timeout_ms; /* 0: none (watch only) */
	const char	  *proc_name;
	const CtlProc *proc; /* NULL: a procedure socialctl has no codec for */
	uint8_t		  *payload;
	size_t		   payload_len;

	/* connection */
	struct lws_context	  *ctx;
	struct lws			  *wsi;
	lws_sorted_usec_list_t deadline;
	CtlFrame			   out[CTL_MAX_OUT];
	size_t				   out_head;
	size_t				   out_count;
	uint8_t				  *in;
	size_t				   in_len;
	size_t				   in_cap;

	/* session */
	CtlPhase phase;
	uint32_t port_id;
	uint32_t proc_id;
	uint32_t last_seq;
	long	 received;
	bool	 closing;		 /* close the socket once the queue is written */
	bool	 cancel_pending; /* a stream cancel must be sent before closing */
	bool	 finished;		 /* the loop may stop */
	int		 exit_code;
	int		 close_code; /* from the server's close frame; 0: none seen */
	char	 close_reason[128];
} Ctl;

static const char *ctl_error_cases[] = {
	"internal_server_error", "invalid_request", "invalid_friendship_action", "profile_not_found",
	"conflicting_error",	 "forbidden_error", "not_found_error",			 "not_found",
};


#define V2(type) (&decentraland__social_service__v2__##type##__descriptor)
/* The module a client requests by name. */
#define CTL_MODULE "SocialService"
#define CTL_PAGING "limit:pagination.limit offset:pagination.offset"
#define CTL_SPEAKER "community_id:community_id user_address:user_address"

/* Every procedure of the module, in proto order. */
static const CtlProc ctl_procs[] = {
	{"GetFriends", V2(get_friends_payload), V2(paginated_friends_profiles_response), CTL_PAGING},
	{"GetMutualFriends", V2(get_mutual_friends_payload), V2(paginated_friends_profiles_response),
	 "user:user.address " CTL_PAGING},
	{"GetPendingFriendshipRequests", V2(get_friendship_requests_payload),
	 V2(paginated_friendship_requests_response), CTL_PAGING},
	{"GetSentFriendshipRequests", V2(get_friendship_requests_payload),
	 V2(paginated_friendship_requests_response), CTL_PAGING},
	{"UpsertFriendship", V2(upsert_friendship_payload), V2(upsert_friendship_response),
	 "action:@ user:@.user.address message:@.message"},
	{"SubscribeToFriendshipUpdates", V2(empty), V2(friendship_update), ""},
	{"GetFriendshipStatus", V2(get_friendship_status_payload), V2(get_friendship_status_response),
	 "user:user.address"},
	{"SubscribeToFriendConnectivityUpdates", V2(empty), V2(friend_connectivity_update), ""},
	{"BlockUser", V2(block_user_payload), V2(block_user_response), "user:user.address"},
	{"UnblockUser", V2(unblock_user_payload), V2(unblock_user_response), "user:user.address"},
	{"GetBlockedUsers", V2(get_blocked_users_payload), V2(get_blocked_users_response), CTL_PAGING},
	{"GetBlockingStatus", V2(empty), V2(get_blocking_status_response), ""},
	{"SubscribeToBlockUpdates", V2(empty), V2(block_update), ""},
	{"GetSocialSettings", V2(empty), V2(get_social_settings_response), ""},
	{"UpsertSocialSettings", V2(upsert_social_settings_payload),
	 V2(upsert_social_settings_response),
	 "private_messages_privacy:private_messages_privacy "
	 "blocked_users_messages_visibility:blocked_users_messages_visibility "
	 "show_situation_reactions:show_situation_reactions"},
	{"GetPrivateMessagesSettings", V2(get_private_messages_settings_payload),
	 V2(get_private_messages_settings_response), "user:user[].address"},
	{"SubscribeToCommunityMemberConnectivityUpdates", V2(empty),
	 V2(community_member_connectivity_update), ""},
	{"StartPrivateVoiceChat", V2(start_private_voice_chat_payload),
	 V2(start_private_voice_chat_response), "callee:callee.address"},
	{"AcceptPrivateVoiceChat", V2(accept_private_voice_chat_payload),
	 V2(accept_private_voice_chat_response), "call_id:call_id"},
	{"RejectPrivateVoiceChat", V2(reject_private_voice_chat_payload),
	 V2(reject_private_voice_chat_response), "call_id:call_id"},
	{"EndPrivateVoiceChat", V2(end_private_voice_chat_payload), V2(end_private_voice_chat_response),
	 "call_id:call_id"},
	{"GetIncomingPrivateVoiceChatRequest", V2(empty),
	 V2(get_incoming_private_voice_chat_request_response), ""},
	{"SubscribeToPrivateVoiceChatUpdates", V2(empty), V2(private_voice_chat_update), ""},
	{"StartCommunityVoiceChat", V2(start_community_voice_chat_payload),
	 V2(start_community_voice_chat_response), "community_id:community_id"},
	{"JoinCommunityVoiceChat", V2(join_community_voice_chat_payload),
	 V2(join_community_voice_chat_response), "community_id:community_id"},
	{"RequestToSpeakInCommunityVoiceChat", V2(request_to_speak_in_community_voice_chat_payload),
	 V2(request_to_speak_in_community_voice_chat_response),
	 "community_id:community_id is_raising_hand:is_raising_hand"},
	{"PromoteSpeakerInCommunityVoiceChat", V2(promote_speaker_in_community_voice_chat_payload),
	 V2(promote_speaker_in_community_voice_chat_response), CTL_SPEAKER},
	{"DemoteSpeakerInCommunityVoiceChat", V2(demote_speaker_in_community_voice_chat_payload),
	 V2(demote_speaker_in_community_voice_chat_response), CTL_SPEAKER},
	{"KickPlayerFromCommunityVoiceChat", V2(kick_player_from_community_voice_chat_payload),
	 V2(kick_player_from_community_voice_chat_response), CTL_SPEAKER},
	{"RejectSpeakRequestInCommunityVoiceChat",
	 V2(reject_speak_request_in_community_voice_chat_payload),
	 V2(reject_speak_request_in_community_voice_chat_response), CTL_SPEAKER},
	{"EndCommunityVoiceChat", V2(end_community_voice_chat_payload),
	 V2(end_community_voice_chat_response), "community_id:community_id"},
	{"SubscribeToCommunityVoiceChatUpdates", V2(empty), V2(community_voice_chat_update), ""},
	{"MuteSpeakerFromCommunityVoiceChat", V2(mute_speaker_from_community_voice_chat_payload),
	 V2(mute_speaker_from_community_voice_chat_response), CTL_SPEAKER " muted:muted"},
};

/* SocialService names its server streams Subscribe...; protoc-c's service descriptors do not
 * record which methods stream, so this is the client's knowledge, as the generated TypeScript
 * definitions are the official client's. */
static bool
ctl_proc_stream(const CtlProc *p)
{
	return strncmp(p->name, "Subscribe", strlen("Subscribe")) == 0;
}

/* One "key:path" of a CtlProc's args, found by key; 0 found, -1 not. */
static int
ctl_spec_find(const char *args, const char *key, char *path, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = args; *p != '\0';)
	{
		size_t len = strcspn(p, " ");

		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == ':' && len - klen - 1 < size)
		{
			memcpy(path, p + klen + 1, len - klen - 1);
			path[len - klen - 1] = '\0';
			return 0;
		}
		p += len;
		p += strspn(p, " ");
	}
	return -1;
}

/* The oneof members a selector ("@") may name. */
static void
ctl_print_members(FILE *f, const ProtobufCMessageDescriptor *d, const char *sep)
{
	const char *s = "";

	for (unsigned i = 0; i < d->n_fields; i++)
	{
		if ((d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
			d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
		{
			fprintf(f, "%s%s", s, d->fields[i].name);
			s = sep;
		}
	}
}

static void
ctl_proc_usage(FILE *f, const CtlProc *proc)
{
	fprintf(f, "  %s", proc->name);
	for (const char *p = proc->args; *p != '\0';)
	{
		size_t len = strcspn(p, " ");
		size_t klen = strcspn(p, ":");

		if (strncmp(p + klen, ":@ ", 3) == 0 || strncmp(p + klen, ":@", len - klen + 1) == 0)
		{
			fprintf(f, " %.*s=", (int) klen, p);
			ctl_print_members(f, proc->request, "|");
		}
		else
			fprintf(f, " [%.*s=%s]", (int) klen, p, memchr(p, '[', len) ? "A,B,..." : "...");
		p += len;
		p += strspn(p, " ");
	}
	fprintf(f, "\n");
}

/* ------------------------------------------------------------------------------------------ */
/* Arguments */

static void
ctl_usage(FILE *f)
{
	fprintf(
		f,
		"usage: socialctl [OPTIONS] address\n"
		"       socialctl [OPTIONS] call <Procedure> [key=value ...]\n"
		"       socialctl [OPTIONS] watch <SubscribeProcedure> [--count N] [--timeout-ms T]\n"
		"\n"
		"options:\n"
		"  --url URL          sociald's WebSocket (default " CTL_DEFAULT_URL ")\n"
		"  --key-file FILE    identity private key, 0x + 64 hex digits (else env SOCIALCTL_KEY)\n"
		"  --count N          watch: cancel the stream after N elements\n"
		"  --timeout-ms T     give up after T ms (call default %d; watch default: never)\n"
		"  --ready-file FILE  watch: create FILE once the stream is open on the server\n"
		"  --auth MODE        valid (default); for tests: stale, expired, garbage, none\n"
		"  -v, --verbose      trace the protocol on stderr\n"
		"  -h, --help         this text\n"
		"\n"
		"exit: 0 ok, 1 typed error / remote error, 2 usage, 3 connection, auth or protocol\n"
		"failure, 4 timed out.\n"
		"\n"
		"procedures:\n",
		CTL_CALL_TIMEOUT_MS);
	for (size_t i = 0; i < sizeof(ctl_procs) / sizeof(ctl_procs[0]); i++)
		fprintf(f, "  %s %s\n", ctl_proc_stream(&ctl_procs[i]) ? "watch" : "call ",
				ctl_procs[i].name);
	fprintf(f, "\narguments of call (see the proto for their meaning):\n");
	for (size_t i = 0; i < sizeof(ctl_procs) / sizeof(ctl_procs[0]); i++)
		if (ctl_procs[i].args[0] != '\0')
			ctl_proc_usage(f, &ctl_procs[i]);
}

static int
ctl_parse_long(const char *opt, const char *s, long min, long *out)
{
	char *end;
	long  v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min)
	{
		fprintf(stderr, "socialctl: %s wants an integer >= %ld, got '%s'\n", opt, min, s);
		return -1;
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Requests: key=value arguments into the procedure's request message, through its descriptor */

/* A message allocated like protobuf-c's own, so protobuf_c_message_free_unpacked frees it. */
static ProtobufCMessage *
ctl_message_new(const ProtobufCMessageDescriptor *d)
{
	ProtobufCMessage *m = malloc(d->sizeof_message);

	if (m != NULL)
		d->message_init(m);
	return m;
}

static int
ctl_set_scalar(const ProtobufCFieldDescriptor *f, void *p, const char *key, const char *value)
{
	char  *end;
	double d;

	errno = 0;
	switch (f->type)
	{
		case PROTOBUF_C_TYPE_STRING:
			if ((*(char **) p = strdup(value)) == NULL)
				return -1;
			return 0;
		case PROTOBUF_C_TYPE_BOOL:
			if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
			{
				*(protobuf_c_boolean *) p = value[0] == 't';
				return 0;
			}
			break;
		case PROTOBUF_C_TYPE_ENUM:
		{
			const ProtobufCEnumDescriptor *ed = f->descriptor;

			for (unsigned i = 0; i < ed->n_values; i++)
			{
				if (strcasecmp(ed->values[i].name, value) == 0)
				{
					*(int *) p = ed->values[i].value;
					return 0;
				}
			}
			fprintf(stderr, "socialctl: %s=%s: expected one of", key, value);
			for (unsigned i = 0; i < ed->n_values; i++)
				fprintf(stderr, " %s", ed->values[i].name);
			fprintf(stderr, "\n");
			return -1;
		}
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
		{
			long v = strtol(value, &end, 10);

			if (errno == 0 && end != value && *end == '\0' && v >= INT32_MIN && v <= INT32_MAX)
			{
				*(int32_t *) p = (int32_t) v;
				return 0;
			}
			break;
		}
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		{
			long long v = strtoll(value, &end, 10);

			if (errno == 0 && end != value && *end == '\0')
			{
				*(int64_t *) p = v;
				return 0;
			}
			break;
		}
		case PROTOBUF_C_TYPE_FLOAT:
			d = strtod(value, &end);
			if (errno == 0 && end != value && *end == '\0')
			{
				*(float *) p = (float) d;
				return 0;
			}
			break;
		default:
			break; /* unsigned, double, bytes: no request of the service has one */
	}
	fprintf(stderr, "socialctl: %s=%s is not a valid %s\n", key, value, f->name);
	return -1;
}

/* Sets the field at path in m (see CtlProc) to value; value NULL only creates the message the
 * path names. Sub-messages are allocated on the way; 0 ok, -1 with a message on stderr. */
static int
ctl_set(ProtobufCMessage *m, const char *path, const char *key, const char *value)
{
	const ProtobufCFieldDescriptor *f;
	const char					   *dot = strchr(path, '.');
	size_t							n = dot != NULL ? (size_t) (dot - path) : strlen(path);
	bool							append = n > 2 && strncmp(path + n - 2, "[]", 2) == 0;
	char							name[64];
	char						   *base = (char *) m;
	ProtobufCMessage			  **slot;

	if (append)
		n -= 2;
	if (n >= sizeof(name))
		return -1;
	memcpy(name, path, n);
	name[n] = '\0';
	f = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
	if (f == NULL || (dot != NULL && f->type != PROTOBUF_C_TYPE_MESSAGE) ||
		(f->label == PROTOBUF_C_LABEL_REPEATED) != append)
	{
		fprintf(stderr, "socialctl: %s: %s has no field %s here\n", key, m->descriptor->short_name,
				name);
		return -1;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		*(uint32_t *) (base + f->quantifier_offset) = f->id;
	if (f->type != PROTOBUF_C_TYPE_MESSAGE)
		return ctl_set_scalar(f, base + f->offset, key, value);

	if (append)
	{
		size_t			   *count = (size_t *) (base + f->quantifier_offset);
		ProtobufCMessage ***items = (ProtobufCMessage ***) (base + f->offset);
		ProtobufCMessage  **grown;

		if (*count >= CTL_MAX_ITEMS)
		{
			fprintf(stderr, "socialctl: %s: more than %d values\n", key, CTL_MAX_ITEMS);
			return -1;
		}
		grown = realloc(*items, (*count + 1) * sizeof(*grown));
		if (grown == NULL)
			return -1;
		*items = grown;
		grown[*count] = NULL; /* free_unpacked skips NULL elements */
		slot = &grown[(*count)++];
	}
	else
		slot = (ProtobufCMessage **) (base + f->offset);
	if (*slot == NULL && (*slot = ctl_message_new(f->descriptor)) == NULL)
		return -1;
	return dot != NULL ? ctl_set(*slot, dot + 1, key, value) : 0;
}

/* The packed request for proc from key=value arguments; 0 ok, -1 usage error (reported). */
static int
ctl_build_request(const CtlProc *proc, char **argv, int argc, uint8_t **out, size_t *len)
{
	ProtobufCMessage *req = ctl_message_new(proc->request);
	const char		 *selector = NULL;
	char			  path[128];
	char			  full[192];
	int				  rc = -1;

	if (req == NULL)
		return -1;
	/* The selector first: the paths of the other keys depend on it. */
	for (int i = 0; i < argc; i++)
		if (ctl_spec_find(proc->args, argv[i], path, sizeof(path)) == 0 && strcmp(path, "@") == 0)
			selector = argv[i] + strlen(argv[i]) + 1;
	if (selector != NULL)
	{
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field_by_name(proc->request, selector);

		if (f == NULL || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
			f->type != PROTOBUF_C_TYPE_MESSAGE)
		{
			fprintf(stderr, "socialctl: %s: '%s' is not one of ", proc->name, selector);
			ctl_print_members(stderr, proc->request, ", ");
			fprintf(stderr, "\n");
			goto cleanup;
		}
		if (ctl_set(req, selector, "action", NULL) < 0)
			goto cleanup;
	}

	for (int i = 0; i < argc; i++)
	{
		const char *key = argv[i];
		const char *value = key + strlen(key) + 1;

		if (ctl_spec_find(proc->args, key, path, sizeof(path)) < 0)
		{
			fprintf(stderr, "socialctl: %s takes no argument '%s'; usage:\n", proc->name, key);
			ctl_proc_usage(stderr, proc);
			goto cleanup;
		}
		if (strcmp(path, "@") == 0)
			continue;
		if (path[0] == '@')
		{
			if (selector == NULL)
			{
				fprintf(stderr, "socialctl: %s: %s= needs action= first; usage:\n", proc->name,
						key);
				ctl_proc_usage(stderr, proc);
				goto cleanup;
			}
			snprintf(full, sizeof(full), "%s%s", selector, path + 1);
		}
		else
			snprintf(full, sizeof(full), "%s", path);

		if (strstr(full, "[]") != NULL)
		{
			/* a list: one element per comma-separated value */
			char *copy = strdup(value);
			char *save = NULL;
			int	  bad = copy == NULL;

			for (char *tok = copy != NULL ? strtok_r(copy, ",", &save) : NULL; tok != NULL && !bad;
				 tok = strtok_r(NULL, ",", &save))
				bad = ctl_set(req, full, key, tok) < 0;
			free(copy);
			if (bad)
				goto cleanup;
		}
		else if (ctl_set(req, full, key, value) < 0)
			goto cleanup;
	}
	*len = protobuf_c_message_get_packed_size(req);
	*out = malloc(*len > 0 ? *len : 1);
	if (*out != NULL)
	{
		protobuf_c_message_pack(req, *out);
		rc = 0;
	}
cleanup:
	protobuf_c_message_free_unpacked(req, NULL);
	return rc;
}

static const CtlProc *
ctl_proc_find(const char *name)
{
	for (size_t i = 0; i < sizeof(ctl_procs) / sizeof(ctl_procs[0]); i++)
		if (strcmp(ctl_procs[i].name, name) == 0)
			return &ctl_procs[i];
	return NULL;
}


/* ------------------------------------------------------------------------------------------ */
/* Protobuf to JSON, driven by the descriptors: field-number order, proto field names */

static json_t *ctl_json_message(const ProtobufCMessage *m);

static json_t *
ctl_json_hex(const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char			 *s = malloc(len * 2 + 1);
	json_t			 *j;

	if (s == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++)
	{
		s[2 * i] = hex[data[i] >> 4];
		s[2 * i + 1] = hex[data[i] & 0xF];
	}
	s[len * 2] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

/* One value of field f stored at p. */
static json_t *
ctl_json_value(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type)
	{
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
			return json_integer(*(const int32_t *) p);
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			return json_integer(*(const uint32_t *) p);
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
			return json_integer(*(const int64_t *) p);
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
		{
			uint64_t v = *(const uint64_t *) p;
			char	 buf[24];

			/* JSON numbers past 2^63 would wrap in json_int_t: such values go as strings. */
			if (v <= (uint64_t) INT64_MAX)
				return json_integer((json_int_t) v);
			snprintf(buf, sizeof(buf), "%" PRIu64, v);
			return json_string(buf);
		}
		case PROTOBUF_C_TYPE_FLOAT:
			return json_real(*(const float *) p);
		case PROTOBUF_C_TYPE_DOUBLE:
			return json_real(*(const double *) p);
		case PROTOBUF_C_TYPE_BOOL:
			return json_boolean(*(const protobuf_c_boolean *) p);
		case PROTOBUF_C_TYPE_ENUM:
		{
			int						  v = *(const int *) p;
			const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
				(const ProtobufCEnumDescriptor *) f->descriptor, v);

			return ev != NULL ? json_string(ev->name) : json_integer(v);
		}
		case PROTOBUF_C_TYPE_STRING:
		{
			const char *s = *(char *const *) p;
			json_t	   *j = json_string(s != NULL ? s : "");

			/* jansson refuses invalid UTF-8: show such a string from the server in hex. */
			return j != NULL ? j : ctl_json_hex((const uint8_t *) s, strlen(s));
		}
		case PROTOBUF_C_TYPE_BYTES:
		{
			const ProtobufCBinaryData *b = p;

			return ctl_json_hex(b->data, b->len);
		}
		case PROTOBUF_C_TYPE_MESSAGE:
		{
			const ProtobufCMessage *sub = *(ProtobufCMessage *const *) p;

			return sub != NULL ? ctl_json_message(sub) : json_null();
		}
	}
	return json_null();
}

static size_t
ctl_type_size(ProtobufCType t)
{
	switch (t)
	{
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			return 8;
		case PROTOBUF_C_TYPE_DOUBLE:
			return sizeof(double);
		case PROTOBUF_C_TYPE_BOOL:
			return sizeof(protobuf_c_boolean);
		case PROTOBUF_C_TYPE_ENUM:
			return sizeof(int);
		case PROTOBUF_C_TYPE_STRING:
		case PROTOBUF_C_TYPE_MESSAGE:
			return sizeof(void *);
		case PROTOBUF_C_TYPE_BYTES:
			return sizeof(ProtobufCBinaryData);
		default:
			return 4;
	}
}

static json_t *
ctl_json_message(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char						 *base = (const char *) m;
	json_t							 *obj = json_object();

	if (obj == NULL)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void					   *p = base + f->offset;
		json_t						   *v;

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		{
			/* oneof members and proto3 `optional` (one-field oneofs): only the one set */
			if (*(const uint32_t *) (base + f->quantifier_offset) != f->id)
				continue;
			v = ctl_json_value(f, p);
		}
		else if (f->label == PROTOBUF_C_LABEL_REPEATED)
		{
			size_t		n = *(const size_t *) (base + f->quantifier_offset);
			const char *arr = *(char *const *) p;
			size_t		sz = ctl_type_size(f->type);

			v = json_array();
			for (size_t k = 0; v != NULL && k < n; k++)
				json_array_append_new(v, ctl_json_value(f, arr + k * sz));
		}
		else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset != 0 &&
				 f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
		{
			/* proto2-style has_ flag (not produced by our proto3 files, kept for safety) */
			if (!*(const protobuf_c_boolean *) (base + f->quantifier_offset))
				continue;
			v = ctl_json_value(f, p);
		}
		else
		{
			if (f->type == PROTOBUF_C_TYPE_MESSAGE && *(void *const *) p == NULL)
				continue;
			v = ctl_json_value(f, p);
		}
		json_object_set_new(obj, f->name, v != NULL ? v : json_null());
	}
	return obj;
}

/* Prints one JSON line to stdout; true when the message is a typed error response. */
static bool
ctl_print_message(const ProtobufCMessage *m)
{
	json_t *j = ctl_json_message(m);
	char   *s;
	bool	error = false;

	s = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
	if (s == NULL)
		fprintf(stdout, "{\"error\":\"cannot render %s\"}\n", m->descriptor->name);
	else
		fprintf(stdout, "%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(j);

	for (unsigned i = 0; i < m->descriptor->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &m->descriptor->fields[i];

		if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
			*(const uint32_t *) ((const char *) m + f->quantifier_offset) != f->id)
			continue;
		for (size_t k = 0; k < sizeof(ctl_error_cases) / sizeof(ctl_error_cases[0]); k++)
			if (strcmp(f->name, ctl_error_cases[k]) == 0)
				error = true;
	}
	return error;
}

/* A payload from the server as the procedure's response type; -1 when it does not decode. */
static int
ctl_print_payload(Ctl *c, const ProtobufCBinaryData *payload, bool *typed_error)
{
	ProtobufCMessage *m;

	*typed_error = false;
	m = protobuf_c_message_unpack(c->proc->response, NULL, payload->len, payload->data);
	if (m == NULL)
	{
		fprintf(stderr, "socialctl: protocol: %s payload of %zu bytes does not decode as %s\n",
				c->proc_name, payload->len, c->proc->response->name);
		return -1;
	}
	*typed_error = ctl_print_message(m);
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Output queue and session steps */

static void
ctl_finish(Ctl *c, int exit_code)
{
	if (c->phase == CTL_PHASE_DONE)
		return;
	c->phase = CTL_PHASE_DONE;
	c->exit_code = exit_code;
	c->closing = true;
	if (c->wsi != NULL)
		lws_callback_on_writable(c->wsi);
	else
		c->finished = true;
}

static int
ctl_queue(Ctl *c, const uint8_t *data, size_t len, bool text)
{
	CtlFrame *f;

	if (c->out_count == CTL_MAX_OUT)
	{
		fprintf(stderr, "socialctl: internal: output queue full\n");
		return -1;
	}
	f = &c->out[(c->out_head + c->out_count) % CTL_MAX_OUT];
	f->buf = malloc(LWS_PRE + (len > 0 ? len : 1));
	if (f->buf == NULL)
		return -1;
	memcpy(f->buf + LWS_PRE, data, len);
	f->len = len;
	f->text = text;
	c->out_count++;
	if (c->wsi != NULL)
		lws_callback_on_writable(c->wsi);
	return 0;
}

static int
ctl_send(Ctl *c, const ProtobufCMessage *m)
{
	size_t	 len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	int		 rc;

	if (buf == NULL)
		return -1;
	protobuf_c_message_pack(m, buf);
	rc = ctl_queue(c, buf, len, false);
	free(buf);
	return rc;
}

static const char *
ctl_type_name(uint32_t type)
{
	static const char *names[] = {
		"EMPTY",
		"REQUEST",
		"RESPONSE",
		"STREAM_MESSAGE",
		"STREAM_ACK",
		"CREATE_PORT",
		"CREATE_PORT_RESPONSE",
		"REQUEST_MODULE",
		"REQUEST_MODULE_RESPONSE",
		"REMOTE_ERROR_RESPONSE",
		"DESTROY_PORT",
		"SERVER_READY",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "UNKNOWN";
}

static void
ctl_protocol_error(Ctl *c, const char *what, uint32_t type, uint32_t number)
{
	fprintf(stderr, "socialctl: protocol: %s (got %s #%" PRIu32 ")\n", what, ctl_type_name(type),
			number);
	ctl_finish(c, CTL_EXIT_CONNECTION);
}

static int
ctl_send_stream(Ctl *c, uint32_t type, bool ack, bool closed)
{
	Rpc__StreamMessage sm = RPC__STREAM_MESSAGE__INIT;

	sm.message_identifier = RPC_ID(type, CTL_MSG_CALL);
	sm.port_id = c->port_id;
	sm.sequence_id = c->last_seq;
	sm.ack = ack;
	sm.closed = closed;
	return ctl_send(c, &sm.base);
}

static int
ctl_iso_time(int64_t ms, char *out, size_t size)
{
	time_t	  secs = (time_t) (ms / 1000);
	struct tm tm;
	char	  date[32];

	if (gmtime_r(&secs, &tm) == NULL || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		return -1;
	snprintf(out, size, "%s.%03dZ", date, (int) (ms % 1000));
	return 0;
}

static int64_t
ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A fresh ephemeral key from /dev/urandom, retried in the (astronomically rare) case that the
 * 32 bytes are not a valid secp256k1 scalar. */
static int
ctl_random_key(uint8_t key[32])
{
	char addr[ADDRESS_LEN + 1];
	int	 fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	int	 rc = -1;

	if (fd < 0)
	{
		fprintf(stderr, "socialctl: /dev/urandom: %s\n", strerror(errno));
		return -1;
	}
	for (int attempt = 0; attempt < 16 && rc < 0; attempt++)
	{
		size_t got = 0;

		while (got < 32)
		{
			ssize_t n = read(fd, key + got, 32 - got);

			if (n <= 0)
			{
				if (n < 0 && errno == EINTR)
					continue;
				fprintf(stderr, "socialctl: /dev/urandom: short read\n");
				goto out;
			}
			got += (size_t) n;
		}
		if (auth_address_from_key(key, addr) == 0)
			rc = 0;
	}
out:
	close(fd);
	return rc;
}

/* The first frame and the pipelined CreatePort, as soon as the socket is up. */
static int
ctl_start_session(Ctl *c)
{
	Rpc__CreatePort cp = RPC__CREATE_PORT__INIT;
	uint8_t			ephemeral[32];
	char			expiration[40];
	int64_t			now = ctl_now_ms();
	int64_t			ts = now;
	int64_t			exp = now + 24LL * 3600 * 1000;
	char		   *frame;
	int				rc;

	if (c->auth_mode == CTL_AUTH_NONE)
	{
		/* Nothing at all: the server's auth timer must end this connection. */
		c->phase = CTL_PHASE_READY_WAIT;
		return 0;
	}
	if (c->auth_mode == CTL_AUTH_GARBAGE)
	{
		static const char garbage[] = "this is not an auth chain";

		if (ctl_queue(c, (const uint8_t *) garbage, sizeof(garbage) - 1, true) < 0)
			return -1;
	}
	else
	{
		if (c->auth_mode == CTL_AUTH_STALE)
			ts = now - 10 * 60 * 1000;
		if (c->auth_mode == CTL_AUTH_EXPIRED)
			exp = now - 3600 * 1000;
		if (ctl_random_key(ephemeral) < 0 || ctl_iso_time(exp, expiration, sizeof(expiration)) < 0)
			return -1;
		frame = auth_build_frame(c->key, ephemeral, ts, expiration);
		explicit_bzero(ephemeral, sizeof(ephemeral));
		if (frame == NULL)
		{
			fprintf(stderr, "socialctl: could not build the auth frame\n");
			return -1;
		}
		rc = ctl_queue(c, (const uint8_t *) frame, strlen(frame), true);
		free(frame);
		if (rc < 0)
			return -1;
	}

	cp.message_identifier = RPC_ID(RPC_CREATE_PORT, CTL_MSG_PORT);
	cp.port_name = CTL_PORT_NAME;
	if (ctl_send(c, &cp.base) < 0)
		return -1;
	c->phase = CTL_PHASE_READY_WAIT;
	return 0;
}

static int
ctl_on_port(Ctl *c, const uint8_t *frame, size_t len)
{
	Rpc__CreatePortResponse *r = rpc__create_port_response__unpack(NULL, len, frame);
	Rpc__RequestModule		 rm = RPC__REQUEST_MODULE__INIT;
	int						 rc;

	if (r == NULL || r->port_id == 0)
	{
		fprintf(stderr, "socialctl: protocol: bad CreatePortResponse\n");
		rpc__create_port_response__free_unpacked(r, NULL);
		return -1;
	}
	c->port_id = r->port_id;
	rpc__create_port_response__free_unpacked(r, NULL);
	rm.message_identifier = RPC_ID(RPC_REQUEST_MODULE, CTL_MSG_MODULE);
	rm.port_id = c->port_id;
	rm.module_name = CTL_MODULE;
	rc = ctl_send(c, &rm.base);
	c->phase = CTL_PHASE_MODULE_WAIT;
	return rc;
}

static int
ctl_on_module(Ctl *c, const uint8_t *frame, size_t len)
{
	Rpc__RequestModuleResponse *r = rpc__request_module_response__unpack(NULL, len, frame);
	Rpc__Request				rq = RPC__REQUEST__INIT;
	int							rc;

	if (r == NULL)
	{
		fprintf(stderr, "socialctl: protocol: RequestModuleResponse does not decode\n");
		return -1;
	}
	c->proc_id = 0;
	for (size_t i = 0; i < r->n_procedures; i++)
		if (r->procedures[i]->procedure_name != NULL &&
			strcmp(r->procedures[i]->procedure_name, c->proc_name) == 0)
			c->proc_id = r->procedures[i]->procedure_id;
	if (c->proc_id == 0)
		fprintf(stderr, "socialctl: protocol: module %s has no procedure %s (%zu listed)\n",
				CTL_MODULE, c->proc_name, r->n_procedures);
	else if (c->verbose)
		fprintf(stderr, "socialctl: %s is procedure %" PRIu32 " of %zu\n", c->proc_name, c->proc_id,
				r->n_procedures);
	rpc__request_module_response__free_unpacked(r, NULL);
	if (c->proc_id == 0)
		return -1;

	rq.message_identifier = RPC_ID(RPC_REQUEST, CTL_MSG_CALL);
	rq.port_id = c->port_id;
	rq.procedure_id = c->proc_id;
	rq.payload.data = c->payload;
	rq.payload.len = c->payload_len;
	rc = ctl_send(c, &rq.base);
	c->phase = c->watch ? CTL_PHASE_OFFER_WAIT : CTL_PHASE_CALL_WAIT;
	return rc;
}

static void
ctl_on_remote_error(Ctl *c, const uint8_t *frame, size_t len)
{
	Rpc__RemoteError *r = rpc__remote_error__unpack(NULL, len, frame);
	json_t			 *j;
	char			 *s;

	if (r == NULL)
	{
		fprintf(stderr, "socialctl: protocol: RemoteError does not decode\n");
		ctl_finish(c, CTL_EXIT_CONNECTION);
		return;
	}
	j = json_pack("{s:{s:I,s:s}}", "remote_error", "code", (json_int_t) r->error_code, "message",
				  r->error_message != NULL ? r->error_message : "");
	s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	fprintf(stdout, "%s\n", s != NULL ? s : "{\"remote_error\":{}}");
	fflush(stdout);
	free(s);
	json_decref(j);
	rpc__remote_error__free_unpacked(r, NULL);
	ctl_finish(c, CTL_EXIT_ERROR);
}

static void
ctl_on_response(Ctl *c, const uint8_t *frame, size_t len)
{
	Rpc__Response *r = rpc__response__unpack(NULL, len, frame);
	bool		   typed_error;

	if (r == NULL || ctl_print_payload(c, &r->payload, &typed_error) < 0)
	{
		if (r == NULL)
			fprintf(stderr, "socialctl: protocol: Response does not decode\n");
		rpc__response__free_unpacked(r, NULL);
		ctl_finish(c, CTL_EXIT_CONNECTION);
		return;
	}
	rpc__response__free_unpacked(r, NULL);
	ctl_finish(c, typed_error ? CTL_EXIT_ERROR : CTL_EXIT_OK);
}

static void
ctl_mark_ready(Ctl *c)
{
	FILE *f;

	if (c->ready_file == NULL)
		return;
	f = fopen(c->ready_file, "w");
	if (f == NULL || fputs("ready\n", f) == EOF || fclose(f) != 0)
		fprintf(stderr, "socialctl: --ready-file %s: %s\n", c->ready_file, strerror(errno));
}

static void
ctl_on_stream(Ctl *c, uint32_t type, const uint8_t *frame, size_t len)
{
	Rpc__StreamMessage *sm = rpc__stream_message__unpack(NULL, len, frame);
	bool				typed_error;

	if (sm == NULL)
	{
		ctl_protocol_error(c, "StreamMessage does not decode", type, CTL_MSG_CALL);
		return;
	}
	if (c->phase == CTL_PHASE_OFFER_WAIT)
	{
		/* The offer opens the stream; a real client discards its payload, so it must have none. */
		if (sm->sequence_id != 0 || sm->closed || sm->payload.len != 0)
			ctl_protocol_error(c, "the first stream frame is not a plain offer (seq 0, no payload)",
							   type, CTL_MSG_CALL);
		else
		{
			c->phase = CTL_PHASE_STREAMING;
			c->last_seq = 0;
			ctl_mark_ready(c);
			if (ctl_send_stream(c, RPC_STREAM_ACK, true, false) < 0)
				ctl_finish(c, CTL_EXIT_CONNECTION);
		}
	}
	else if (sm->closed)
	{
		bool enough = c->count == 0 || c->received >= c->count;

		fprintf(stderr, "socialctl: the server ended the stream after %ld element(s)\n",
				c->received);
		ctl_finish(c, enough ? CTL_EXIT_OK : CTL_EXIT_ERROR);
	}
	else if (sm->sequence_id != c->last_seq + 1)
	{
		fprintf(stderr, "socialctl: protocol: element seq %" PRIu32 " after %" PRIu32 "\n",
				sm->sequence_id, c->last_seq);
		ctl_finish(c, CTL_EXIT_CONNECTION);
	}
	else if (ctl_print_payload(c, &sm->payload, &typed_error) < 0)
		ctl_finish(c, CTL_EXIT_CONNECTION);
	else
	{
		c->last_seq = sm->sequence_id;
		c->received++;
		if (c->count > 0 && c->received >= c->count)
		{
			/* Enough: cancel the way a client does when its consumer stops (doc/rpc-wire.md#server-streams),
			 * in place of the ack the server waits for. */
			c->cancel_pending = true;
			ctl_finish(c, CTL_EXIT_OK);
		}
		else if (ctl_send_stream(c, RPC_STREAM_ACK, true, false) < 0)
			ctl_finish(c, CTL_EXIT_CONNECTION);
	}
	rpc__stream_message__free_unpacked(sm, NULL);
}

/* One complete binary frame from the server. */
static void
ctl_on_frame(Ctl *c, const uint8_t *frame, size_t len)
{
	Rpc__RpcMessageHeader *h = rpc__rpc_message_header__unpack(NULL, len, frame);
	uint32_t			   type;
	uint32_t			   number;

	if (h == NULL)
	{
		fprintf(stderr, "socialctl: protocol: a %zu-byte frame with no RPC header\n", len);
		ctl_finish(c, CTL_EXIT_CONNECTION);
		return;
	}
	type = RPC_TYPE(h->message_identifier);
	number = RPC_NUMBER(h->message_identifier);
	rpc__rpc_message_header__free_unpacked(h, NULL);
	if (c->verbose)
		fprintf(stderr, "socialctl: <- %s #%" PRIu32 " (%zu bytes)\n", ctl_type_name(type), number,
				len);
	if (c->phase == CTL_PHASE_DONE)
		return;

	if (c->phase == CTL_PHASE_READY_WAIT)
	{
		if (type != RPC_SERVER_READY || number != 0)
			ctl_protocol_error(c, "the first server frame must be SERVER_READY #0", type, number);
		else
			c->phase = CTL_PHASE_PORT_WAIT;
		return;
	}

	switch (type)
	{
		case RPC_CREATE_PORT_RESPONSE:
			if (c->phase != CTL_PHASE_PORT_WAIT || number != CTL_MSG_PORT)
				ctl_protocol_error(c, "unexpected CreatePortResponse", type, number);
			else if (ctl_on_port(c, frame, len) < 0)
				ctl_finish(c, CTL_EXIT_CONNECTION);
			break;
		case RPC_REQUEST_MODULE_RESPONSE:
			if (c->phase != CTL_PHASE_MODULE_WAIT || number != CTL_MSG_MODULE)
				ctl_protocol_error(c, "unexpected RequestModuleResponse", type, number);
			else if (ctl_on_module(c, frame, len) < 0)
				ctl_finish(c, CTL_EXIT_CONNECTION);
			break;
		case RPC_REMOTE_ERROR_RESPONSE:
			if ((c->phase == CTL_PHASE_PORT_WAIT && number == CTL_MSG_PORT) ||
				(c->phase == CTL_PHASE_MODULE_WAIT && number == CTL_MSG_MODULE) ||
				((c->phase == CTL_PHASE_CALL_WAIT || c->phase == CTL_PHASE_OFFER_WAIT ||
				  c->phase == CTL_PHASE_STREAMING) &&
				 number == CTL_MSG_CALL))
				ctl_on_remote_error(c, frame, len);
			else
				ctl_protocol_error(c, "RemoteError for no request of ours", type, number);
			break;
		case RPC_RESPONSE:
			if (c->phase == CTL_PHASE_CALL_WAIT && number == CTL_MSG_CALL)
				ctl_on_response(c, frame, len);
			else if (c->phase == CTL_PHASE_OFFER_WAIT && number == CTL_MSG_CALL)
				ctl_protocol_error(c, "a stream procedure answered like a unary call", type,
								   number);
			else
				ctl_protocol_error(c, "unexpected Response", type, number);
			break;
		case RPC_STREAM_MESSAGE:
			if ((c->phase == CTL_PHASE_OFFER_WAIT || c->phase == CTL_PHASE_STREAMING) &&
				number == CTL_MSG_CALL)
				ctl_on_stream(c, type, frame, len);
			else if (c->phase == CTL_PHASE_CALL_WAIT && number == CTL_MSG_CALL)
				ctl_protocol_error(c, "a unary procedure answered with a stream", type, number);
			else
				ctl_protocol_error(c, "unexpected StreamMessage", type, number);
			break;
		case RPC_SERVER_READY:
			ctl_protocol_error(c, "a second SERVER_READY", type, number);
			break;
		default:
			ctl_protocol_error(c, "a frame a server never sends", type, number);
			break;
	}
}

/* ------------------------------------------------------------------------------------------ */
/* libwebsockets */

static void
ctl_deadline(lws_sorted_usec_list_t *sul)
{
	Ctl *c = lws_container_of(sul, Ctl, deadline);

	if (c->phase == CTL_PHASE_DONE)
		return;
	if (c->watch && c->phase == CTL_PHASE_STREAMING && c->count == 0)
	{
		/* watch with no --count: the deadline is the normal end */
		c->cancel_pending = true;
		ctl_finish(c, CTL_EXIT_OK);
		return;
	}
	fprintf(stderr, "socialctl: timed out after %ld ms", c->timeout_ms);
	if (c->watch && c->phase == CTL_PHASE_STREAMING)
	{
		fprintf(stderr, " with %ld of %ld element(s)", c->received, c->count);
		c->cancel_pending = true;
	}
	fprintf(stderr, "\n");
	ctl_finish(c, CTL_EXIT_TIMEOUT);
}

/* Writes the oldest queued frame: one lws_write per WRITEABLE callback. */
static int
ctl_write_one(Ctl *c, struct lws *wsi)
{
	CtlFrame *f = &c->out[c->out_head];
	size_t	  len = f->len;
	int		  n;

	if (c->verbose)
	{
		uint32_t id = 0;

		/* Logged before lws_write, which masks the payload in place. The header is field 1,
		 * fixed32, first: tag 0x0d and 4 bytes little-endian. */
		if (!f->text && len >= 5 && f->buf[LWS_PRE] == 0x0d)
			memcpy(&id, f->buf + LWS_PRE + 1, 4);
		if (f->text)
			fprintf(stderr, "socialctl: -> text frame (%zu bytes)\n", len);
		else
			fprintf(stderr, "socialctl: -> %s #%" PRIu32 " (%zu bytes)\n",
					ctl_type_name(RPC_TYPE(id)), RPC_NUMBER(id), len);
	}
	n = lws_write(wsi, f->buf + LWS_PRE, len, f->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
	free(f->buf);
	f->buf = NULL;
	c->out_head = (c->out_head + 1) % CTL_MAX_OUT;
	c->out_count--;
	if (n < 0 || (size_t) n < len)
	{
		fprintf(stderr, "socialctl: write failed\n");
		if (c->phase != CTL_PHASE_DONE)
			c->exit_code = CTL_EXIT_CONNECTION;
		c->phase = CTL_PHASE_DONE;
		return -1;
	}
	if (c->out_count > 0 || c->closing)
		lws_callback_on_writable(wsi);
	return 0;
}

static int
ctl_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	Ctl *c = lws_context_user(lws_get_context(wsi));

	switch (reason)
	{
		case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
			fprintf(stderr, "socialctl: connection failed: %s\n",
					in != NULL ? (const char *) in : "unknown error");
			c->wsi = NULL;
			if (c->phase != CTL_PHASE_DONE)
				c->exit_code = CTL_EXIT_CONNECTION;
			c->phase = CTL_PHASE_DONE;
			c->finished = true;
			break;

		case LWS_CALLBACK_CLIENT_ESTABLISHED:
			if (c->verbose)
				fprintf(stderr, "socialctl: connected\n");
			if (ctl_start_session(c) < 0)
				ctl_finish(c, CTL_EXIT_CONNECTION);
			break;

		case LWS_CALLBACK_CLIENT_RECEIVE:
			if (lws_frame_is_binary(wsi) == 0 && c->in_len == 0 && lws_is_first_fragment(wsi))
			{
				/* @dcl/rpc's WebSocketTransport throws on text frames: so do we. */
				fprintf(stderr, "socialctl: protocol: the server sent a TEXT frame\n");
				ctl_finish(c, CTL_EXIT_CONNECTION);
				break;
			}
			if (c->in_len + len > CTL_MAX_FRAME)
			{
				fprintf(stderr, "socialctl: protocol: a frame larger than %d bytes\n",
						CTL_MAX_FRAME);
				ctl_finish(c, CTL_EXIT_CONNECTION);
				break;
			}
			if (c->in_len + len > c->in_cap)
			{
				size_t	 cap = c->in_cap > 0 ? c->in_cap : 4096;
				uint8_t *grown;

				while (cap < c->in_len + len)
					cap *= 2;
				grown = realloc(c->in, cap);
				if (grown == NULL)
				{
					ctl_finish(c, CTL_EXIT_CONNECTION);
					break;
				}
				c->in = grown;
				c->in_cap = cap;
			}
			memcpy(c->in + c->in_len, in, len);
			c->in_len += len;
			if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0)
			{
				size_t n = c->in_len;

				c->in_len = 0;
				ctl_on_frame(c, c->in, n);
			}
			break;

		case LWS_CALLBACK_CLIENT_WRITEABLE:
			if (c->out_count > 0)
			{
				if (ctl_write_one(c, wsi) < 0)
					return -1;
				break;
			}
			if (c->cancel_pending)
			{
				c->cancel_pending = false;
				if (ctl_send_stream(c, RPC_STREAM_MESSAGE, false, true) < 0)
					return -1;
				break;
			}
			if (c->closing)
			{
				lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *) "done", 4);
				return -1;
			}
			break;

		case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
			if (len >= 2)
			{
				const uint8_t *p = in;
				size_t		   rlen =
					len - 2 < sizeof(c->close_reason) - 1 ? len - 2 : sizeof(c->close_reason) - 1;

				c->close_code = (p[0] << 8) | p[1];
				memcpy(c->close_reason, p + 2, rlen);
				c->close_reason[rlen] = '\0';
			}
			break;

		case LWS_CALLBACK_CLIENT_CLOSED:
			c->wsi = NULL;
			if (c->phase != CTL_PHASE_DONE)
			{
				/* The server ended the connection before we were done. */
				if (c->close_code != 0)
					fprintf(stderr, "closed: %d %s\n", c->close_code, c->close_reason);
				else
					fprintf(stderr, "closed: 1006 connection lost without a close frame\n");
				c->exit_code = CTL_EXIT_CONNECTION;
				c->phase = CTL_PHASE_DONE;
			}
			c->finished = true;
			break;

		default:
			break;
	}
	return 0;
}

static const struct lws_protocols ctl_protocols[] = {
	{"socialctl", ctl_callback, 0, 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static int
ctl_parse_url(Ctl *c, const char *url)
{
	char		buf[1024];
	const char *scheme;
	const char *host;
	const char *path;
	int			port;

	if (strlen(url) >= sizeof(buf))
		goto bad;
	strcpy(buf, url);
	if (lws_parse_uri(buf, &scheme, &host, &port, &path) != 0)
		goto bad;
	if (strcmp(scheme, "ws") == 0)
		c->tls = false;
	else if (strcmp(scheme, "wss") == 0)
		c->tls = true;
	else
		goto bad;
	if (*host == '\0' || strlen(host) >= sizeof(c->host) || port <= 0 || port > 65535)
		goto bad;
	strcpy(c->host, host);
	c->port = port;
	/* lws_parse_uri drops the leading slash of the path */
	if (snprintf(c->path, sizeof(c->path), "/%s", path) >= (int) sizeof(c->path))
		goto bad;
	return 0;
bad:
	fprintf(stderr, "socialctl: bad --url '%s' (want ws://HOST:PORT/PATH or wss://...)\n", url);
	return -1;
}

static int
ctl_read_key(const char *key_file, uint8_t key[32])
{
	char		text[CTL_KEY_FILE_MAX + 1];
	const char *src = key_file != NULL ? key_file : "SOCIALCTL_KEY";
	const char *p;
	char		addr[ADDRESS_LEN + 1];
	size_t		n;
	int			rc;

	if (key_file != NULL)
	{
		FILE *f = fopen(key_file, "r");

		if (f == NULL)
		{
			fprintf(stderr, "socialctl: --key-file %s: %s\n", key_file, strerror(errno));
			return -1;
		}
		n = fread(text, 1, CTL_KEY_FILE_MAX, f);
		fclose(f);
		text[n] = '\0';
	}
	else
	{
		const char *env = getenv("SOCIALCTL_KEY");

		if (env == NULL || strlen(env) > CTL_KEY_FILE_MAX)
		{
			fprintf(stderr, "socialctl: no key: give --key-file FILE or set SOCIALCTL_KEY=0x...\n");
			return -1;
		}
		strcpy(text, env);
	}
	/* White space around the key (a key file's trailing newline) is not part of it. */
	n = strlen(text);
	while (n > 0 && strchr(" \t\r\n", text[n - 1]) != NULL)
		text[--n] = '\0';
	for (p = text; *p != '\0' && strchr(" \t\r\n", *p) != NULL; p++)
		;
	rc = auth_parse_key(p, key) == 0 && auth_address_from_key(key, addr) == 0 ? 0 : -1;
	explicit_bzero(text, sizeof(text));
	if (rc < 0)
		fprintf(stderr, "socialctl: %s: not a private key (0x + 64 hex digits)\n", src);
	return rc;
}

/* Connects, runs the session to its end, returns the exit code. */
static int
ctl_run(Ctl *c)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info	 ci;

	lws_set_log_level(c->verbose ? LLL_ERR | LLL_WARN : 0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = ctl_protocols;
	info.user = c;
	info.fd_limit_per_thread = 16;
	info.gid = -1;
	info.uid = -1;
	if (c->tls)
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	c->ctx = lws_create_context(&info);
	if (c->ctx == NULL)
	{
		fprintf(stderr, "socialctl: could not create the lws context\n");
		return CTL_EXIT_CONNECTION;
	}

	memset(&ci, 0, sizeof(ci));
	ci.context = c->ctx;
	ci.address = c->host;
	ci.port = c->port;
	ci.path = c->path;
	ci.host = c->host;
	ci.origin = c->host;
	ci.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
	ci.local_protocol_name = ctl_protocols[0].name;
	ci.pwsi = &c->wsi;
	c->phase = CTL_PHASE_CONNECTING;
	c->exit_code = CTL_EXIT_CONNECTION;
	if (c->timeout_ms > 0)
		lws_sul_schedule(c->ctx, 0, &c->deadline, ctl_deadline, (lws_usec_t) c->timeout_ms * 1000);
	if (lws_client_connect_via_info(&ci) == NULL && !c->finished)
	{
		fprintf(stderr, "socialctl: could not connect to %s:%d\n", c->host, c->port);
		c->finished = true;
	}

	while (!c->finished)
		if (lws_service(c->ctx, 0) < 0)
			break;

	lws_sul_cancel(&c->deadline);
	lws_context_destroy(c->ctx);
	c->ctx = NULL;
	for (; c->out_count > 0; c->out_count--)
	{
		free(c->out[c->out_head].buf);
		c->out_head = (c->out_head + 1) % CTL_MAX_OUT;
	}
	free(c->in);
	c->in = NULL;
	return c->exit_code;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"key-file", required_argument, NULL, 'k'},
		{"count", required_argument, NULL, 'n'},
		{"timeout-ms", required_argument, NULL, 't'},
		{"ready-file", required_argument, NULL, 'r'},
		{"auth", required_argument, NULL, 'a'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static Ctl	c;
	const char *url = CTL_DEFAULT_URL;
	const char *key_file = NULL;
	const char *command;
	bool		count_given = false;
	bool		timeout_given = false;
	int			opt;
	int			rc;

	signal(SIGPIPE, SIG_IGN);
	/* GNU getopt permutes: options may follow the procedure (watch X --count 2); key=value
	 * arguments never start with '-'. */
	while ((opt = getopt_long(argc, argv, "hv", longopts, NULL)) != -1)
	{
		switch (opt)
		{
			case 'u':
				url = optarg;
				break;
			case 'k':
				key_file = optarg;
				break;
			case 'n':
				if (ctl_parse_long("--count", optarg, 1, &c.count) < 0)
					return CTL_EXIT_USAGE;
				count_given = true;
				break;
			case 't':
				if (ctl_parse_long("--timeout-ms", optarg, 1, &c.timeout_ms) < 0)
					return CTL_EXIT_USAGE;
				timeout_given = true;
				break;
			case 'r':
				c.ready_file = optarg;
				break;
			case 'a':
				if (strcmp(optarg, "valid") == 0)
					c.auth_mode = CTL_AUTH_VALID;
				else if (strcmp(optarg, "stale") == 0)
					c.auth_mode = CTL_AUTH_STALE;
				else if (strcmp(optarg, "expired") == 0)
					c.auth_mode = CTL_AUTH_EXPIRED;
				else if (strcmp(optarg, "garbage") == 0)
					c.auth_mode = CTL_AUTH_GARBAGE;
				else if (strcmp(optarg, "none") == 0)
					c.auth_mode = CTL_AUTH_NONE;
				else
				{
					fprintf(
						stderr,
						"socialctl: --auth %s: expected valid, stale, expired, garbage or none\n",
						optarg);
					return CTL_EXIT_USAGE;
				}
				break;
			case 'v':
				c.verbose = true;
				break;
			case 'h':
				ctl_usage(stdout);
				return CTL_EXIT_OK;
			default:
				fprintf(stderr, "socialctl: see --help\n");
				return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc)
	{
		ctl_usage(stderr);
		return CTL_EXIT_USAGE;
	}
	command = argv[optind++];
	if (ctl_parse_url(&c, url) < 0 || ctl_read_key(key_file, c.key) < 0)
		return CTL_EXIT_USAGE;

	if (strcmp(command, "address") == 0)
	{
		char addr[ADDRESS_LEN + 1];

		if (optind != argc)
		{
			fprintf(stderr, "socialctl: address takes no arguments\n");
			return CTL_EXIT_USAGE;
		}
		if (auth_address_from_key(c.key, addr) < 0)
			return CTL_EXIT_USAGE;
		printf("%s\n", addr);
		return CTL_EXIT_OK;
	}
	if (strcmp(command, "call") != 0 && strcmp(command, "watch") != 0)
	{
		fprintf(stderr, "socialctl: unknown command '%s' (address, call, watch)\n", command);
		return CTL_EXIT_USAGE;
	}
	c.watch = strcmp(command, "watch") == 0;
	if (optind >= argc)
	{
		fprintf(stderr, "socialctl: %s needs a procedure name (see --help)\n", command);
		return CTL_EXIT_USAGE;
	}
	c.proc_name = argv[optind++];
	c.proc = ctl_proc_find(c.proc_name);
	if (c.proc == NULL)
	{
		fprintf(stderr, "socialctl: %s is not a procedure of %s (see --help)\n", c.proc_name,
				CTL_MODULE);
		return CTL_EXIT_USAGE;
	}
	if (ctl_proc_stream(c.proc) != c.watch)
	{
		bool stream = ctl_proc_stream(c.proc);

		fprintf(stderr, "socialctl: %s is %s: use '%s'\n", c.proc_name,
				stream ? "a stream" : "unary", stream ? "watch" : "call");
		return CTL_EXIT_USAGE;
	}
	if (!c.watch && count_given)
	{
		fprintf(stderr, "socialctl: --count goes with watch\n");
		return CTL_EXIT_USAGE;
	}
	if (!c.watch && !timeout_given)
		c.timeout_ms = CTL_CALL_TIMEOUT_MS;

	/* key=value arguments, split in place: the key ends at the first '=' */
	for (int i = optind; i < argc; i++)
	{
		char *eq = strchr(argv[i], '=');

		if (eq == NULL || eq == argv[i] || c.watch)
		{
			fprintf(stderr, "socialctl: bad argument '%s' (want key=value; see --help)\n", argv[i]);
			return CTL_EXIT_USAGE;
		}
		*eq = '\0';
	}
	if (ctl_build_request(c.proc, argv + optind, argc - optind, &c.payload, &c.payload_len) < 0)
		return CTL_EXIT_USAGE;

	rc = ctl_run(&c);
	free(c.payload);
	explicit_bzero(c.key, sizeof(c.key));
	return rc;
}
