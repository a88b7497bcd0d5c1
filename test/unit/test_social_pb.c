/*
 * test_social_pb.c — daemon/social/social_pb.c's descriptor-driven packing: every procedure's
 * typed error response (social_pb_pack_error, the case it falls back to and the bytes), and the
 * stream_closed element of every update stream (social_pb_pack_field).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "social/protocol.h"
#include "social/social_pb.h"

typedef enum
{
	REMOTE = 0, /* no error case at all: a RemoteError */
	ACTION,
	REQUEST,
	INTERNAL
} Want;

static const char *const want_field[] = {NULL, "invalid_friendship_action", "invalid_request",
										 "internal_server_error"};

static void
test_pack_error_table(void **state)
{
	static const struct
	{
		uint32_t proc;
		Want	 action, request, internal; /* what each kind becomes */
	} cases[] = {
		{PROC_GET_FRIENDS, REMOTE, REMOTE, REMOTE},
		{PROC_GET_MUTUAL_FRIENDS, REMOTE, REMOTE, REMOTE},
		{PROC_GET_PENDING_FRIENDSHIP_REQUESTS, INTERNAL, INTERNAL, INTERNAL},
		{PROC_GET_SENT_FRIENDSHIP_REQUESTS, INTERNAL, INTERNAL, INTERNAL},
		{PROC_UPSERT_FRIENDSHIP, ACTION, REQUEST, INTERNAL},
		{PROC_GET_FRIENDSHIP_STATUS, REQUEST, REQUEST, INTERNAL},
		{PROC_BLOCK_USER, REQUEST, REQUEST, INTERNAL},
		{PROC_UNBLOCK_USER, REQUEST, REQUEST, INTERNAL},
		{PROC_GET_BLOCKED_USERS, REMOTE, REMOTE, REMOTE},
		{PROC_GET_BLOCKING_STATUS, REMOTE, REMOTE, REMOTE},
		{PROC_GET_SOCIAL_SETTINGS, INTERNAL, INTERNAL, INTERNAL},
		{PROC_UPSERT_SOCIAL_SETTINGS, REQUEST, REQUEST, INTERNAL},
		{PROC_GET_PRIVATE_MESSAGES_SETTINGS, REQUEST, REQUEST, INTERNAL},
	};
	const ProtobufCServiceDescriptor *sd =
		&decentraland__social_service__v2__social_service__descriptor;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const ProtobufCMessageDescriptor *out = sd->methods[cases[i].proc - 1].output;
		const Want			  want[] = {cases[i].action, cases[i].request, cases[i].internal};
		const SocialErrorKind kinds[] = {SOCIAL_ERROR_INVALID_ACTION, SOCIAL_ERROR_INVALID_REQUEST,
										 SOCIAL_ERROR_INTERNAL};

		for (size_t k = 0; k < 3; k++)
		{
			size_t	 len = 12345;
			bool	 remote = false;
			uint8_t *buf = social_pb_pack_error(cases[i].proc, kinds[k], "why not", &len, &remote);
			ProtobufCMessage			   *m;
			const ProtobufCFieldDescriptor *f;
			const ProtobufCMessage		   *e;

			if (want[k] == REMOTE)
			{
				assert_null(buf);
				assert_true(remote);
				continue;
			}
			assert_non_null(buf);
			assert_false(remote);
			m = protobuf_c_message_unpack(out, NULL, len, buf);
			assert_non_null(m);
			f = protobuf_c_message_descriptor_get_field_by_name(out, want_field[want[k]]);
			assert_non_null(f);
			assert_true(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
			assert_int_equal(*(const uint32_t *) ((const char *) m + f->quantifier_offset), f->id);
			e = *(const ProtobufCMessage *const *) ((const char *) m + f->offset);
			assert_non_null(e);
			/* every typed error: { optional string message = 1; } */
			assert_int_equal(e->descriptor->fields[0].id, 1);
			assert_string_equal(
				*(char *const *) ((const char *) e + e->descriptor->fields[0].offset), "why not");
			protobuf_c_message_free_unpacked(m, NULL);
			free(buf);
		}
	}
}

/* The bytes are those of the message built by hand, as updates.c did before. */
static void
test_pack_error_bytes(void **state)
{
	Decentraland__SocialService__V2__UpsertFriendshipResponse r =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_RESPONSE__INIT;
	Decentraland__SocialService__InvalidFriendshipAction a =
		DECENTRALAND__SOCIAL_SERVICE__INVALID_FRIENDSHIP_ACTION__INIT;
	uint8_t *want, *got;
	size_t	 want_len = 0, got_len = 0;
	bool	 remote = true;

	a._message_case = DECENTRALAND__SOCIAL_SERVICE__INVALID_FRIENDSHIP_ACTION___MESSAGE_MESSAGE;
	a.message = "no";
	r.response_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_RESPONSE__RESPONSE_INVALID_FRIENDSHIP_ACTION;
	r.invalid_friendship_action = &a;
	want = social_pb_pack(&r.base, &want_len);
	got = social_pb_pack_error(PROC_UPSERT_FRIENDSHIP, SOCIAL_ERROR_INVALID_ACTION, "no", &got_len,
							   &remote);
	assert_false(remote);
	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
	free(want);
	free(got);
}

static void
test_stream_closed(void **state)
{
	static const ProtobufCMessageDescriptor *const updates[] = {
		&decentraland__social_service__v2__friendship_update__descriptor,
		&decentraland__social_service__v2__block_update__descriptor,
		&decentraland__social_service__v2__friend_connectivity_update__descriptor,
	};
	Decentraland__SocialService__V2__SubscriptionStreamClosed closed =
		DECENTRALAND__SOCIAL_SERVICE__V2__SUBSCRIPTION_STREAM_CLOSED__INIT;
	Decentraland__SocialService__V2__FriendshipUpdate u =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__INIT;
	uint8_t *want;
	size_t	 want_len = 0;

	closed.reason =
		DECENTRALAND__SOCIAL_SERVICE__V2__SUBSCRIPTION_STREAM_CLOSED_REASON__STREAM_CLOSED_DUPLICATE_SUBSCRIPTION;
	u._stream_closed_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE___STREAM_CLOSED_STREAM_CLOSED;
	u.stream_closed = &closed;
	want = social_pb_pack(&u.base, &want_len);
	assert_true(want_len > 0);

	for (size_t i = 0; i < sizeof(updates) / sizeof(updates[0]); i++)
	{
		size_t	 len = 0;
		uint8_t *buf = social_pb_pack_field(updates[i], "stream_closed", &closed.base, &len);
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field_by_name(updates[i], "stream_closed");
		ProtobufCMessage *m;

		assert_non_null(buf);
		assert_non_null(f);
		m = protobuf_c_message_unpack(updates[i], NULL, len, buf);
		assert_non_null(m);
		assert_int_equal(*(const uint32_t *) ((const char *) m + f->quantifier_offset), f->id);
		assert_int_equal((*(Decentraland__SocialService__V2__SubscriptionStreamClosed *const
								*) ((const char *) m + f->offset))
							 ->reason,
						 closed.reason);
		if (updates[i] == &decentraland__social_service__v2__friendship_update__descriptor)
		{
			assert_int_equal(len, want_len);
			assert_memory_equal(buf, want, len);
		}
		protobuf_c_message_free_unpacked(m, NULL);
		free(buf);
	}
	free(want);
}

static void
test_pack_field_refuses(void **state)
{
	Decentraland__SocialService__V2__SubscriptionStreamClosed closed =
		DECENTRALAND__SOCIAL_SERVICE__V2__SUBSCRIPTION_STREAM_CLOSED__INIT;
	size_t len = 0;

	/* no such field; a field that is not a message */
	assert_null(social_pb_pack_field(&decentraland__social_service__v2__block_update__descriptor,
									 "no_such_field", &closed.base, &len));
	assert_null(social_pb_pack_field(
		&decentraland__social_service__v2__subscription_stream_closed__descriptor, "reason",
		&closed.base, &len));
}

/* A result with the seven profile columns at col 0 (and one more column before for col 1). */
static PGresult *
profile_result(int col, const char *const values[7])
{
	PGresAttDesc attrs[8];
	PGresult	*res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);

	assert_non_null(res);
	memset(attrs, 0, sizeof(attrs));
	for (int i = 0; i < col + 7; i++)
	{
		attrs[i].name = (char *) "c";
		attrs[i].format = 0;
	}
	assert_true(PQsetResultAttrs(res, col + 7, attrs));
	for (int i = 0; i < 7; i++)
		assert_true(PQsetvalue(res, 0, col + i, (char *) values[i],
							   values[i] ? (int) strlen(values[i]) : -1)); /* -1: NULL */
	return res;
}

static void
test_profiles(void **state)
{
	static const struct
	{
		const char *values[7];
		bool		color;
	} cases[] = {
		{{"0xabc", "Ann", "t", "https://p/a.png", "0.5", "0.25", "1"}, true},
		{{"0xdef", "Bob", "f", "", NULL, NULL, NULL}, false},
		{{"0x123", NULL, NULL, NULL, NULL, NULL, NULL}, false}, /* no profile row */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (int col = 0; col < 2; col++)
		{
			PGresult			*res = profile_result(col, cases[i].values);
			SocialProfile		 p;
			SocialBlockedProfile b;
			const char *const	*v = cases[i].values;

			social_pb_profile(&p, res, 0, col);
			social_pb_blocked_profile(&b, res, 0, col);
			assert_string_equal(p.msg.address, v[0]);
			assert_string_equal(b.msg.address, v[0]);
			assert_string_equal(p.msg.name, v[1] ? v[1] : "");
			assert_string_equal(b.msg.name, v[1] ? v[1] : "");
			assert_int_equal(p.msg.has_claimed_name, v[2] && v[2][0] == 't');
			assert_int_equal(b.msg.has_claimed_name, v[2] && v[2][0] == 't');
			assert_string_equal(p.msg.profile_picture_url, v[3] ? v[3] : "");
			assert_string_equal(b.msg.profile_picture_url, v[3] ? v[3] : "");
			assert_int_equal(
				b.msg._blocked_at_case,
				DECENTRALAND__SOCIAL_SERVICE__V2__BLOCKED_USER_PROFILE___BLOCKED_AT__NOT_SET);
			if (cases[i].color)
			{
				assert_int_equal(
					p.msg._name_color_case,
					DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE___NAME_COLOR_NAME_COLOR);
				assert_int_equal(
					b.msg._name_color_case,
					DECENTRALAND__SOCIAL_SERVICE__V2__BLOCKED_USER_PROFILE___NAME_COLOR_NAME_COLOR);
				assert_ptr_equal(p.msg.name_color, &p.color);
				assert_ptr_equal(b.msg.name_color, &b.color);
				assert_true(p.color.r == 0.5f && p.color.g == 0.25f && p.color.b == 1.0f);
				assert_true(b.color.r == 0.5f && b.color.g == 0.25f && b.color.b == 1.0f);
			}
			else
			{
				assert_int_equal(
					p.msg._name_color_case,
					DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE___NAME_COLOR__NOT_SET);
				assert_int_equal(
					b.msg._name_color_case,
					DECENTRALAND__SOCIAL_SERVICE__V2__BLOCKED_USER_PROFILE___NAME_COLOR__NOT_SET);
			}
			PQclear(res);
		}
}

/* Every user-only friendship update set by name packs like the one built by hand. */
static void
test_set_message(void **state)
{
	Decentraland__SocialService__V2__User user = DECENTRALAND__SOCIAL_SERVICE__V2__USER__INIT;
	Decentraland__SocialService__V2__FriendshipUpdate__AcceptResponse by_hand_sub =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__ACCEPT_RESPONSE__INIT;
	Decentraland__SocialService__V2__FriendshipUpdate by_hand =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__INIT;
	Decentraland__SocialService__V2__FriendshipUpdate u =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__INIT;
	Decentraland__SocialService__V2__FriendshipUpdate__AcceptResponse sub =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__ACCEPT_RESPONSE__INIT;
	uint8_t *a, *b;
	size_t	 alen = 0, blen = 0;

	user.address = "0xabc";
	by_hand_sub.user = &user;
	by_hand.update_case = DECENTRALAND__SOCIAL_SERVICE__V2__FRIENDSHIP_UPDATE__UPDATE_ACCEPT;
	by_hand.accept = &by_hand_sub;
	assert_int_equal(social_pb_set_message(&sub.base, "user", &user.base), 0);
	assert_int_equal(social_pb_set_message(&u.base, "accept", &sub.base), 0);
	a = social_pb_pack(&by_hand.base, &alen);
	b = social_pb_pack(&u.base, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	/* not a message field, not a field */
	assert_int_equal(social_pb_set_message(&user.base, "address", &sub.base), -1);
	assert_int_equal(social_pb_set_message(&u.base, "nope", &sub.base), -1);
}

/* Reading an optional message field by name, and setting a repeated one. */
static void
test_get_and_repeated(void **state)
{
	Decentraland__SocialService__V2__GetFriendsPayload m =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_FRIENDS_PAYLOAD__INIT;
	Decentraland__SocialService__V2__Pagination p =
		DECENTRALAND__SOCIAL_SERVICE__V2__PAGINATION__INIT;
	Decentraland__SocialService__V2__GetBlockingStatusResponse r =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_BLOCKING_STATUS_RESPONSE__INIT;
	char *list[] = {"0xa", "0xb"};

	assert_null(social_pb_get_message(&m.base, "pagination")); /* unset */
	m.pagination = &p; /* a pointer without its case is still unset */
	assert_null(social_pb_get_message(&m.base, "pagination"));
	m._pagination_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__GET_FRIENDS_PAYLOAD___PAGINATION_PAGINATION;
	assert_ptr_equal(social_pb_get_message(&m.base, "pagination"), &p.base);
	assert_null(social_pb_get_message(&m.base, "nope"));

	assert_int_equal(social_pb_set_repeated(&r.base, "blocked_users", 2, list), 0);
	assert_int_equal(r.n_blocked_users, 2);
	assert_ptr_equal(r.blocked_users, list);
	assert_int_equal(social_pb_set_repeated(&r.base, "nope", 2, list), -1);
	assert_int_equal(social_pb_set_repeated(&p.base, "limit", 2, list), -1); /* not repeated */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_error_table), cmocka_unit_test(test_pack_error_bytes),
		cmocka_unit_test(test_stream_closed),	 cmocka_unit_test(test_pack_field_refuses),
		cmocka_unit_test(test_profiles),		 cmocka_unit_test(test_set_message),
		cmocka_unit_test(test_get_and_repeated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
