/*
 * pb_wire.c — the protobuf wire reader: varints, tags, values, groups skipped whole.
 */
#include "rpc/pb_wire.h"

#include <string.h>

/* Groups are obsolete but a decoder must skip them; nesting is bounded. */
#define PB_WIRE_MAX_GROUP_DEPTH 32

int
pb_wire_varint(PbWireReader *r, uint64_t *out)
{
	uint64_t v = 0;

	for (int i = 0; i < 10; i++)
	{
		if (r->p >= r->end)
			return -1;
		uint8_t b = *r->p++;

		/* the tenth byte holds only bit 63 */
		if (i == 9 && b > 1)
			return -1;
		v |= (uint64_t) (b & 0x7f) << (7 * i);
		if (!(b & 0x80))
		{
			*out = v;
			return 0;
		}
	}
	return -1;
}

static int
pb_wire_tag(PbWireReader *r, uint32_t *number, uint8_t *wire_type)
{
	uint64_t tag;

	if (pb_wire_varint(r, &tag) < 0 || tag > UINT32_MAX)
		return -1;
	*number = (uint32_t) (tag >> 3);
	*wire_type = (uint8_t) (tag & 7);
	/* field 0 does not exist; 6 and 7 are not wire types */
	if (*number == 0 || *wire_type > PB_WIRE_I32)
		return -1;
	return 0;
}

/* Reads the value of a field whose tag was read; groups are consumed whole. */
static int
pb_wire_value(PbWireReader *r, PbWireField *f)
{
	uint64_t len;

	switch (f->wire_type)
	{
		case PB_WIRE_VARINT:
			return pb_wire_varint(r, &f->varint);
		case PB_WIRE_I64:
			if (r->end - r->p < 8)
				return -1;
			r->p += 8;
			return 0;
		case PB_WIRE_I32:
			if (r->end - r->p < 4)
				return -1;
			f->fixed32 = (uint32_t) r->p[0] | (uint32_t) r->p[1] << 8 | (uint32_t) r->p[2] << 16 |
						 (uint32_t) r->p[3] << 24;
			r->p += 4;
			return 0;
		case PB_WIRE_LEN:
			if (pb_wire_varint(r, &len) < 0 || len > (uint64_t) (r->end - r->p))
				return -1;
			f->data = r->p;
			f->len = (size_t) len;
			r->p += len;
			return 0;
		case PB_WIRE_SGROUP:
		{
			uint32_t open[PB_WIRE_MAX_GROUP_DEPTH];
			int		 depth = 0;

			open[depth++] = f->number;
			while (depth > 0)
			{
				PbWireField inner = {0};

				if (pb_wire_tag(r, &inner.number, &inner.wire_type) < 0)
					return -1;
				if (inner.wire_type == PB_WIRE_EGROUP)
				{
					if (inner.number != open[--depth])
						return -1;
				}
				else if (inner.wire_type == PB_WIRE_SGROUP)
				{
					if (depth == PB_WIRE_MAX_GROUP_DEPTH)
						return -1;
					open[depth++] = inner.number;
				}
				else if (pb_wire_value(r, &inner) < 0)
					return -1;
			}
			return 0;
		}
		default:
			/* an end-group with no open group */
			return -1;
	}
}

int
pb_wire_next(PbWireReader *r, PbWireField *f)
{
	if (r->p == r->end)
		return 0;
	memset(f, 0, sizeof(*f));
	if (pb_wire_tag(r, &f->number, &f->wire_type) < 0 || pb_wire_value(r, f) < 0)
		return -1;
	return 1;
}

long
pb_wire_count(const uint8_t *p, size_t len, uint32_t number)
{
	PbWireReader r = {p, p + len};
	PbWireField	 f;
	long		 n = 0;
	int			 rc;

	while ((rc = pb_wire_next(&r, &f)) > 0)
	{
		if (f.wire_type == PB_WIRE_SGROUP)
			return -1; /* protobuf-c refuses groups anyway */
		if (f.number == number)
			n++;
	}
	return rc < 0 ? -1 : n;
}
