/*
 * test_pb_wire.c — daemon/rpc/pb_wire.c: varints at their limits, every wire type, groups, and
 * counting a field without unpacking (what procedures.c does before protobuf-c sees a payload).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rpc/pb_wire.h"

#define B(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

static void
test_varint(void **state)
{
	const struct
	{
		const uint8_t *p;
		size_t		   len;
		int			   rc;
		uint64_t	   value;
		size_t		   used;
	} cases[] = {
		{B(0x00), 0, 0, 1},
		{B(0x7f), 0, 127, 1},
		{B(0x80, 0x01), 0, 128, 2},
		{B(0xac, 0x02, 0xff), 0, 300, 2},
		{B(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), 0, UINT64_MAX, 10},
		{B(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), -1, 0, 0}, /* > 64 bits */
		{B(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00), -1, 0, 0},
		{B(0x80), -1, 0, 0}, /* truncated */
		{NULL, 0, -1, 0, 0},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		PbWireReader r = {cases[i].p, cases[i].p + cases[i].len};
		uint64_t	 v = 0;

		assert_int_equal(pb_wire_varint(&r, &v), cases[i].rc);
		if (cases[i].rc == 0)
		{
			assert_int_equal(v, cases[i].value);
			assert_int_equal(r.p - cases[i].p, cases[i].used);
		}
	}
}

static void
test_fields(void **state)
{
	/* 1: varint 150; 2: "hi"; 3: fixed64; 4: group {5: varint}; 6: fixed32 0x04030201 */
	const uint8_t msg[] = {0x08, 0x96, 0x01, 0x12, 0x02, 'h',  'i',	 0x19, 1, 2, 3, 4, 5,
						   6,	 7,	   8,	 0x23, 0x28, 0x01, 0x24, 0x35, 1, 2, 3, 4};
	PbWireReader  r = {msg, msg + sizeof(msg)};
	PbWireField	  f;

	assert_int_equal(pb_wire_next(&r, &f), 1);
	assert_int_equal(f.number, 1);
	assert_int_equal(f.wire_type, PB_WIRE_VARINT);
	assert_int_equal(f.varint, 150);
	assert_int_equal(pb_wire_next(&r, &f), 1);
	assert_int_equal(f.number, 2);
	assert_int_equal(f.wire_type, PB_WIRE_LEN);
	assert_int_equal(f.len, 2);
	assert_memory_equal(f.data, "hi", 2);
	assert_int_equal(pb_wire_next(&r, &f), 1);
	assert_int_equal(f.wire_type, PB_WIRE_I64);
	assert_int_equal(pb_wire_next(&r, &f), 1);
	assert_int_equal(f.number, 4);
	assert_int_equal(f.wire_type, PB_WIRE_SGROUP);
	assert_int_equal(pb_wire_next(&r, &f), 1);
	assert_int_equal(f.number, 6);
	assert_int_equal(f.wire_type, PB_WIRE_I32);
	assert_int_equal(f.fixed32, 0x04030201);
	assert_int_equal(pb_wire_next(&r, &f), 0);
}

static void
test_count(void **state)
{
	const struct
	{
		const uint8_t *p;
		size_t		   len;
		uint32_t	   number;
		long		   count;
	} cases[] = {
		{B(0), 1, -1},	 /* a lone 0 byte: field 0 */
		{NULL, 0, 1, 0}, /* the empty message */
		{B(0x0a, 0x00, 0x0a, 0x01, 'a', 0x0a, 0x00), 1, 3},
		{B(0x0a, 0x00, 0x12, 0x00, 0x0a, 0x00), 1, 2},
		{B(0x0a, 0x00, 0x12, 0x00, 0x0a, 0x00), 2, 1},
		{B(0x0a, 0x00, 0x12, 0x00, 0x0a, 0x00), 3, 0},
		{B(0x08, 0x01, 0x0a, 0x00, 0x0d, 1, 2, 3, 4, 0x09, 1, 2, 3, 4, 5, 6, 7, 8), 1, 4},
		{B(0x0a, 0x05, 'a'), 1, -1},			  /* length past the end */
		{B(0x0a, 0x00, 0x0d, 1, 2), 1, -1},		  /* fixed32 cut short */
		{B(0x0a, 0x00, 0x0b, 0x0c), 1, -1},		  /* a group: protobuf-c refuses it */
		{B(0x0a, 0x00, 0x0c), 1, -1},			  /* an end-group alone */
		{B(0x0e), 1, -1},						  /* wire type 6 */
		{B(0x0f), 1, -1},						  /* wire type 7 */
		{B(0x0a, 0x00, 0x80), 1, -1},			  /* a truncated tag */
		{B(0x80, 0x80, 0x80, 0x80, 0x10), 2, -1}, /* a tag past 32 bits */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(pb_wire_count(cases[i].p, cases[i].len, cases[i].number), cases[i].count);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_varint),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
