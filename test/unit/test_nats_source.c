/*
 * test_nats_source.c — the pure parts of the NATS presence source (daemon/presence/nats_source.c):
 * the subject table (every event, address validation and lower-casing, junk of every shape),
 * heartbeat bodies (golden bytes, parcels with floor semantics for negative coordinates,
 * desired_room, junk and oversized bodies) and the parcel function at its edges.
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
#include <math.h>

#include "decentraland/kernel/comms/v3/comms.pb-c.h"
#include "presence/nats_source.h"

#define ADDR_LOWER "0xabcdef0123456789abcdef0123456789abcdef01"
#define ADDR_MIXED "0xAbCdEf0123456789aBcDeF0123456789ABCDEF01"

typedef struct SubjectCase
{
	const char	   *subject;
	NatsSourceEvent event;
	const char	   *address; /* expected for anything but NATS_SOURCE_JUNK */
} SubjectCase;

static const SubjectCase subject_cases[] = {
	{"peer." ADDR_LOWER ".heartbeat", NATS_SOURCE_HEARTBEAT, ADDR_LOWER},
	{"peer." ADDR_LOWER ".world.join", NATS_SOURCE_WORLD_JOIN, ADDR_LOWER},
	{"peer." ADDR_LOWER ".disconnect", NATS_SOURCE_DISCONNECT, ADDR_LOWER},
	{"peer." ADDR_LOWER ".connect", NATS_SOURCE_CONNECT, ADDR_LOWER},
	{"peer." ADDR_LOWER ".world.leave", NATS_SOURCE_WORLD_LEAVE, ADDR_LOWER},
	/* A checksummed (mixed-case) address is lower-cased. */
	{"peer." ADDR_MIXED ".heartbeat", NATS_SOURCE_HEARTBEAT, ADDR_LOWER},
	{"peer." ADDR_MIXED ".world.leave", NATS_SOURCE_WORLD_LEAVE, ADDR_LOWER},
	/* Junk: prefix, address shape, event names. */
	{"", NATS_SOURCE_JUNK, NULL},
	{"peer", NATS_SOURCE_JUNK, NULL},
	{"peer.", NATS_SOURCE_JUNK, NULL},
	{"peer.>", NATS_SOURCE_JUNK, NULL},
	{"peers." ADDR_LOWER ".heartbeat", NATS_SOURCE_JUNK, NULL},
	{"Peer." ADDR_LOWER ".heartbeat", NATS_SOURCE_JUNK, NULL},
	{"xpeer." ADDR_LOWER ".heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER, NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".heartbeats", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".heartbeat.x", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".Heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".world", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".world.", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".world.joined", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER ".status", NATS_SOURCE_JUNK, NULL},
	{"peer." ADDR_LOWER "..heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.0Xabcdef0123456789abcdef0123456789abcdef01.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.abcdef0123456789abcdef0123456789abcdef01.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.0x.heartbeat", NATS_SOURCE_JUNK, NULL},
	/* 39 and 41 hex digits. */
	{"peer.0xabcdef0123456789abcdef0123456789abcdef0.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.0xabcdef0123456789abcdef0123456789abcdef012.heartbeat", NATS_SOURCE_JUNK, NULL},
	/* A non-hex digit at each end of the address. */
	{"peer.0xgbcdef0123456789abcdef0123456789abcdef01.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.0xabcdef0123456789abcdef0123456789abcdef0g.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.0x bcdef0123456789abcdef0123456789abcdef01.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.\x01\x02.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"peer.0x\xff\xfe"
	 "cdef0123456789abcdef0123456789abcdef01.heartbeat",
	 NATS_SOURCE_JUNK, NULL},
	{"peer.*.heartbeat", NATS_SOURCE_JUNK, NULL},
	{"other." ADDR_LOWER ".heartbeat", NATS_SOURCE_JUNK, NULL},
};

static void
test_subjects(void **state)
{
	for (size_t i = 0; i < sizeof(subject_cases) / sizeof(subject_cases[0]); i++)
	{
		const SubjectCase *c = &subject_cases[i];
		char			   address[ADDRESS_LEN + 1] = "untouched";
		NatsSourceEvent	   ev = nats_source_parse_subject(c->subject, address);

		if (ev != c->event)
			fail_msg("subject %zu \"%s\": event %d, want %d", i, c->subject, ev, c->event);
		if (c->event == NATS_SOURCE_JUNK)
			assert_string_equal(address, "untouched");
		else
			assert_string_equal(address, c->address);
	}
	assert_int_equal(nats_source_parse_subject(NULL, (char[ADDRESS_LEN + 1]){0}), NATS_SOURCE_JUNK);
}

/* A subject much longer than the buffer is junk and reads nothing past its terminator. */
static void
test_subject_long(void **state)
{
	char  address[ADDRESS_LEN + 1] = "untouched";
	char *s = malloc(70000);

	assert_non_null(s);
	snprintf(s, 70000, "peer.%s.", ADDR_LOWER);
	memset(s + strlen(s), 'a', 60000);
	s[69999] = '\0';
	assert_int_equal(nats_source_parse_subject(s, address), NATS_SOURCE_JUNK);
	assert_string_equal(address, "untouched");
	free(s);
}

static void
test_event_online(void **state)
{
	assert_true(nats_source_event_online(NATS_SOURCE_HEARTBEAT));
	assert_true(nats_source_event_online(NATS_SOURCE_WORLD_JOIN));
	assert_false(nats_source_event_online(NATS_SOURCE_DISCONNECT));
	assert_false(nats_source_event_online(NATS_SOURCE_CONNECT));
	assert_false(nats_source_event_online(NATS_SOURCE_WORLD_LEAVE));
	assert_false(nats_source_event_online(NATS_SOURCE_JUNK));
}

typedef struct ParcelCase
{
	float	metres;
	int		rc;
	int32_t parcel;
} ParcelCase;

static void
test_parcel(void **state)
{
	static const ParcelCase cases[] = {
		{0.0f, 0, 0},
		{-0.0f, 0, 0},
		{0.5f, 0, 0},
		{15.999f, 0, 0},
		{16.0f, 0, 1},
		{31.99f, 0, 1},
		{32.0f, 0, 2},
		/* floor, not truncation: anything below zero is parcel -1 or less. */
		{-0.001f, 0, -1},
		{-0.5f, 0, -1},
		{-15.999f, 0, -1},
		{-16.0f, 0, -1},
		{-16.001f, 0, -2},
		{-32.0f, 0, -2},
		{-2400.0f, 0, -150},
		{2400.0f, 0, 150},
		{-2400.5f, 0, -151},
		/* int32 edges: 16 * 2^31 m is the first parcel that does not fit. */
		{34359738368.0f, -1, 0},
		{-34359738368.0f, 0, INT32_MIN},
		{-34359746560.0f, -1, 0},
		{1e30f, -1, 0},
		{-1e30f, -1, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		int32_t parcel = 12345;
		int		rc = nats_source_parcel(cases[i].metres, &parcel);

		if (rc != cases[i].rc)
			fail_msg("parcel of %g: rc %d, want %d", (double) cases[i].metres, rc, cases[i].rc);
		if (rc == 0 && parcel != cases[i].parcel)
			fail_msg("parcel of %g: %d, want %d", (double) cases[i].metres, parcel,
					 cases[i].parcel);
		if (rc != 0)
			assert_int_equal(parcel, 12345);
	}
	assert_int_equal(nats_source_parcel(NAN, &(int32_t){0}), -1);
	assert_int_equal(nats_source_parcel(INFINITY, &(int32_t){0}), -1);
	assert_int_equal(nats_source_parcel(-INFINITY, &(int32_t){0}), -1);
}

/* Golden bytes, written by hand from the field numbers (position = 1, desired_room = 2). */
static void
test_heartbeat_golden(void **state)
{
	/* position {x: -0.5, y: 0, z: 33}, desired_room "island-1" */
	static const uint8_t full[] = {0x0a, 0x0f, 0x0d, 0x00, 0x00, 0x00, 0xbf, 0x15, 0x00,
								   0x00, 0x00, 0x00, 0x1d, 0x00, 0x00, 0x04, 0x42, 0x12,
								   0x08, 'i',  's',	 'l',  'a',	 'n',  'd',	 '-',  '1'};
	/* position {x: 16, z: -16} (y omitted, as proto3 does for 0) */
	static const uint8_t pos[] = {0x0a, 0x0a, 0x0d, 0x00, 0x00, 0x80,
								  0x41, 0x1d, 0x00, 0x00, 0x80, 0xc1};
	/* desired_room "r" only */
	static const uint8_t room_only[] = {0x12, 0x01, 'r'};
	/* an empty position message: x = z = 0 */
	static const uint8_t empty_pos[] = {0x0a, 0x00};
	PresenceDetail		 d;
	char				 room[NATS_SOURCE_ROOM_MAX + 1];

	assert_int_equal(nats_source_decode_heartbeat(full, sizeof(full), &d, room, sizeof(room)), 1);
	assert_true(d.has_parcel);
	assert_int_equal(d.parcel_x, -1);
	assert_int_equal(d.parcel_y, 2);
	assert_non_null(d.desired_room);
	assert_string_equal(d.desired_room, "island-1");
	assert_ptr_equal(d.desired_room, room);

	assert_int_equal(nats_source_decode_heartbeat(pos, sizeof(pos), &d, room, sizeof(room)), 1);
	assert_true(d.has_parcel);
	assert_int_equal(d.parcel_x, 1);
	assert_int_equal(d.parcel_y, -1);
	assert_null(d.desired_room);

	assert_int_equal(
		nats_source_decode_heartbeat(room_only, sizeof(room_only), &d, room, sizeof(room)), 1);
	assert_false(d.has_parcel);
	assert_string_equal(d.desired_room, "r");

	assert_int_equal(
		nats_source_decode_heartbeat(empty_pos, sizeof(empty_pos), &d, room, sizeof(room)), 1);
	assert_true(d.has_parcel);
	assert_int_equal(d.parcel_x, 0);
	assert_int_equal(d.parcel_y, 0);

	/* The empty body is a valid Heartbeat with nothing in it (disconnect sends one, too). */
	assert_int_equal(nats_source_decode_heartbeat(NULL, 0, &d, room, sizeof(room)), 0);
	assert_false(d.has_parcel);
	assert_null(d.desired_room);
	assert_int_equal(nats_source_decode_heartbeat((const uint8_t *) "", 0, &d, room, sizeof(room)),
					 0);
}

static size_t
pack(float x, float y, float z, bool with_pos, const char *room, uint8_t *out)
{
	Decentraland__Kernel__Comms__V3__Heartbeat hb =
		DECENTRALAND__KERNEL__COMMS__V3__HEARTBEAT__INIT;
	Decentraland__Common__Position pos = DECENTRALAND__COMMON__POSITION__INIT;

	pos.x = x;
	pos.y = y;
	pos.z = z;
	if (with_pos)
		hb.position = &pos;
	if (room)
	{
		hb._desired_room_case =
			DECENTRALAND__KERNEL__COMMS__V3__HEARTBEAT___DESIRED_ROOM_DESIRED_ROOM;
		hb.desired_room = (char *) room;
	}
	assert_true(decentraland__kernel__comms__v3__heartbeat__get_packed_size(&hb) < 1024);
	return decentraland__kernel__comms__v3__heartbeat__pack(&hb, out);
}

typedef struct BeatCase
{
	float		x, z;
	const char *room;
	int			rc;
	bool		has_parcel;
	int32_t		px, py;
	const char *want_room; /* NULL: none kept */
} BeatCase;

/* Encoded by protobuf-c itself: parcels of negative and edge coordinates, and which rooms stay. */
static void
test_heartbeat_table(void **state)
{
	static char	   long_room[NATS_SOURCE_ROOM_MAX + 2];
	static char	   max_room[NATS_SOURCE_ROOM_MAX + 1];
	const BeatCase cases[] = {
		{0, 0, NULL, 1, true, 0, 0, NULL},
		{-0.5f, -0.5f, NULL, 1, true, -1, -1, NULL},
		{-16, -16.01f, NULL, 1, true, -1, -2, NULL},
		{100.0f, -2400.0f, "scene-room", 1, true, 6, -150, "scene-room"},
		{NAN, 0, "r", 1, false, 0, 0, "r"},
		{0, INFINITY, NULL, 0, false, 0, 0, NULL},
		{1e30f, 0, NULL, 0, false, 0, 0, NULL},
		/* Rooms: empty, too long, control characters and non-ASCII are dropped; the parcel
		 * stays. */
		{1, 1, "", 1, true, 0, 0, NULL},
		{1, 1, long_room, 1, true, 0, 0, NULL},
		{1, 1, max_room, 1, true, 0, 0, max_room},
		{1, 1, "a\nb", 1, true, 0, 0, NULL},
		{1, 1, "tab\there", 1, true, 0, 0, NULL},
		{1, 1, "caf\xc3\xa9", 1, true, 0, 0, NULL},
		{1, 1, "island-2 with spaces ~!", 1, true, 0, 0, "island-2 with spaces ~!"},
	};
	uint8_t buf[1024];

	memset(long_room, 'x', NATS_SOURCE_ROOM_MAX + 1);
	long_room[NATS_SOURCE_ROOM_MAX + 1] = '\0';
	memset(max_room, 'm', NATS_SOURCE_ROOM_MAX);
	max_room[NATS_SOURCE_ROOM_MAX] = '\0';
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		const BeatCase *c = &cases[i];
		PresenceDetail	d;
		char			room[NATS_SOURCE_ROOM_MAX + 1];
		size_t			len = pack(c->x, 7.0f, c->z, true, c->room, buf);
		int				rc = nats_source_decode_heartbeat(buf, len, &d, room, sizeof(room));

		if (rc != c->rc)
			fail_msg("case %zu: rc %d, want %d", i, rc, c->rc);
		assert_int_equal(d.has_parcel, c->has_parcel);
		if (c->has_parcel)
		{
			assert_int_equal(d.parcel_x, c->px);
			assert_int_equal(d.parcel_y, c->py);
		}
		if (c->want_room)
		{
			assert_non_null(d.desired_room);
			assert_string_equal(d.desired_room, c->want_room);
		}
		else
			assert_null(d.desired_room);
	}
	/* No position at all, a room only. */
	{
		PresenceDetail d;
		char		   room[NATS_SOURCE_ROOM_MAX + 1];
		size_t		   len = pack(0, 0, 0, false, "only-room", buf);

		assert_int_equal(nats_source_decode_heartbeat(buf, len, &d, room, sizeof(room)), 1);
		assert_false(d.has_parcel);
		assert_string_equal(d.desired_room, "only-room");
	}
	/* A room buffer too small for the longest room keeps no room at all. */
	{
		PresenceDetail d;
		char		   small[8];
		size_t		   len = pack(1, 0, 1, true, "abc", buf);

		assert_int_equal(nats_source_decode_heartbeat(buf, len, &d, small, sizeof(small)), 1);
		assert_true(d.has_parcel);
		assert_null(d.desired_room);
	}
}

/* Not a Heartbeat: the caller sees -1 and a cleared detail (the user is still seen). */
static void
test_heartbeat_junk(void **state)
{
	static const struct
	{
		const char *bytes;
		size_t		len;
	} junk[] = {
		{"\xff\xff\xff", 3},			 /* truncated varint tag */
		{"\x0a\x05\x0d\x00", 4},		 /* position longer than the body */
		{"\x0a\xff\xff\xff\xff\x0f", 6}, /* absurd length */
		{"\x12\x05"
		 "ab",
		 4},					 /* room longer than the body */
		{"\x0b", 1},			 /* start-group wire type */
		{"\x0a\x02\x0d\x00", 4}, /* fixed32 cut short inside the position */
		{"\x08", 1},			 /* varint field without its value */
		{"{\"x\":1}", 7},		 /* JSON is not protobuf */
	};
	PresenceDetail d;
	char		   room[NATS_SOURCE_ROOM_MAX + 1];

	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
	{
		memset(&d, 0x5a, sizeof(d));
		if (nats_source_decode_heartbeat((const uint8_t *) junk[i].bytes, junk[i].len, &d, room,
										 sizeof(room)) != -1)
			fail_msg("junk %zu decoded", i);
		assert_false(d.has_parcel);
		assert_null(d.desired_room);
		assert_int_equal(d.parcel_x, 0);
		assert_int_equal(d.parcel_y, 0);
	}
	/* Unknown fields are skipped, as protobuf requires: a newer sender is not junk. */
	{
		static const uint8_t unknown[] = {0x18, 0x05, 0x12, 0x01, 'r'};

		assert_int_equal(
			nats_source_decode_heartbeat(unknown, sizeof(unknown), &d, room, sizeof(room)), 1);
		assert_string_equal(d.desired_room, "r");
	}
	/* Over 4 KiB is refused unread, even when it would decode. */
	{
		size_t	 n = 5000;
		uint8_t *big = calloc(1, n);

		assert_non_null(big);
		/* field 15, length-delimited, filling the rest: a valid unknown field */
		big[0] = 0x7a;
		big[1] = (uint8_t) (0x80 | ((n - 3) & 0x7f));
		big[2] = (uint8_t) ((n - 3) >> 7);
		assert_int_equal(nats_source_decode_heartbeat(big, 4096, &d, room, sizeof(room)), -1);
		assert_int_equal(nats_source_decode_heartbeat(big, n, &d, room, sizeof(room)), -1);
		free(big);
	}
	/* Random bytes never crash; whatever they decode to is bounded. */
	{
		uint8_t	 buf[64];
		uint32_t s = 12345;

		for (int round = 0; round < 20000; round++)
		{
			size_t len = (size_t) (round % 64);

			for (size_t i = 0; i < len; i++)
			{
				s = s * 1103515245u + 12345u;
				buf[i] = (uint8_t) (s >> 16);
			}
			(void) nats_source_decode_heartbeat(buf, len, &d, room, sizeof(room));
			if (d.desired_room)
				assert_true(strlen(d.desired_room) <= NATS_SOURCE_ROOM_MAX);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subjects),		 cmocka_unit_test(test_subject_long),
		cmocka_unit_test(test_event_online),	 cmocka_unit_test(test_parcel),
		cmocka_unit_test(test_heartbeat_golden), cmocka_unit_test(test_heartbeat_table),
		cmocka_unit_test(test_heartbeat_junk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
