/*
 * test_service.c — the SocialService table (daemon/social/service.c) against the generated
 * descriptor of social_service_v2.proto: every rpc in declaration order, its id its position,
 * its name byte for byte, server streams exactly the Subscribe... rpcs, and a handler for
 * exactly the procedures this server serves (1..16).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "social/service.h"
#include "decentraland/social_service/v2/social_service_v2.pb-c.h"

static void
test_rows_match_proto(void **state)
{
	const ProtobufCServiceDescriptor *sd =
		&decentraland__social_service__v2__social_service__descriptor;

	assert_string_equal(service_module.name, sd->short_name);
	assert_ptr_equal(service_module.procedures, service_procedures);
	assert_int_equal(service_module.count, PROC_LAST);
	assert_int_equal(sd->n_methods, PROC_LAST);
	for (uint32_t id = 1; id <= PROC_LAST; id++)
	{
		const RpcProcedure *p = rpc_module_find(&service_module, id);
		bool				stream = strncmp(sd->methods[id - 1].name, "Subscribe", 9) == 0;

		assert_non_null(p);
		assert_int_equal(p->id, id);
		assert_string_equal(p->name, sd->methods[id - 1].name);
		assert_int_equal(p->kind, stream ? RPC_SERVER_STREAM : RPC_UNARY);
		assert_int_equal(p->handler != NULL, id <= PROC_GET_PRIVATE_MESSAGES_SETTINGS);
	}
}

/* The ids the rest of the daemon names are the rows they mean. */
static void
test_named_ids(void **state)
{
	static const struct
	{
		uint32_t	id;
		const char *name;
	} named[] = {
		{PROC_GET_FRIENDS, "GetFriends"},
		{PROC_UPSERT_FRIENDSHIP, "UpsertFriendship"},
		{PROC_SUBSCRIBE_TO_FRIENDSHIP_UPDATES, "SubscribeToFriendshipUpdates"},
		{PROC_SUBSCRIBE_TO_FRIEND_CONNECTIVITY_UPDATES, "SubscribeToFriendConnectivityUpdates"},
		{PROC_BLOCK_USER, "BlockUser"},
		{PROC_SUBSCRIBE_TO_BLOCK_UPDATES, "SubscribeToBlockUpdates"},
		{PROC_GET_PRIVATE_MESSAGES_SETTINGS, "GetPrivateMessagesSettings"},
		{PROC_SUBSCRIBE_TO_COMMUNITY_MEMBER_CONNECTIVITY_UPDATES,
		 "SubscribeToCommunityMemberConnectivityUpdates"},
		{PROC_LAST, "MuteSpeakerFromCommunityVoiceChat"},
	};

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		assert_string_equal(rpc_module_find(&service_module, named[i].id)->name, named[i].name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows_match_proto),
		cmocka_unit_test(test_named_ids),
	};

	return cmocka_run_group_tests_name("service", tests, NULL, NULL);
}
