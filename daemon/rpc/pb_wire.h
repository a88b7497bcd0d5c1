/*
 * pb_wire.h — a protobuf wire reader over a byte buffer, without unpacking: the RPC engine reads
 * its frames with it, and the procedures count a repeated field before protobuf-c sees a
 * payload. Pure, no allocation.
 *
 * Strict where the encoding is: a varint is at most 10 bytes (the tenth holding only bit 63), a
 * tag fits 32 bits, field 0 and wire types 6 and 7 do not exist, a length stays inside the
 * buffer, groups nest properly (and at most 32 deep) and end with their own number.
 */
#ifndef SOCIALD_PB_WIRE_H
#define SOCIALD_PB_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* Protobuf wire types. */
enum
{
	PB_WIRE_VARINT = 0,
	PB_WIRE_I64 = 1,
	PB_WIRE_LEN = 2,
	PB_WIRE_SGROUP = 3,
	PB_WIRE_EGROUP = 4,
	PB_WIRE_I32 = 5
};

typedef struct PbWireReader
{
	const uint8_t *p;
	const uint8_t *end;
} PbWireReader;

typedef struct PbWireField
{
	uint32_t	   number;
	uint8_t		   wire_type;
	uint64_t	   varint;	/* PB_WIRE_VARINT */
	uint32_t	   fixed32; /* PB_WIRE_I32 */
	const uint8_t *data;	/* PB_WIRE_LEN, borrowed from the buffer */
	size_t		   len;
} PbWireField;

/* One varint: 0 ok, -1 truncated or longer than 10 bytes / 64 bits. */
int pb_wire_varint(PbWireReader *r, uint64_t *out);

/* The next field (a group is consumed whole): 1 a field was read, 0 end of buffer, -1
 * malformed. */
int pb_wire_next(PbWireReader *r, PbWireField *f);

/* Occurrences of field 'number' at the top level of a message; -1 when the bytes are malformed
 * or hold a group (protobuf-c refuses those: unpacking then says why). */
long pb_wire_count(const uint8_t *p, size_t len, uint32_t number);

#endif /* SOCIALD_PB_WIRE_H */
