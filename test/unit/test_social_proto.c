/*
 * test_social_proto.c — proto/decentraland/... against the public facts.
 *
 * 1. Every entry of test/vectors/social_vectors.json (made by the official ts-proto
 *    encoders) is built from its JSON with the protobuf-c types generated from our
 *    .proto files, must pack to its hex byte for byte, and the hex must unpack to exactly its
 *    JSON. JSON is mapped onto messages generically through the descriptors (camelCase keys,
 *    enums by name, int64 as numbers), so the test is the table, not code per message.
 * 2. test/vectors/social_v2_fields.txt (printed from @dcl/protocol's own .proto files) is
 *    parsed and every message, field (number, name, type, label, oneof grouping), enum value
 *    and procedure it lists must be in the generated descriptors, and nothing else: our .proto
 *    files are checked against the official definitions, not against our reading of them.
 * 3. The C names other modules use compile and encode as expected.
 *
 * Vectors and the fields table are read from $SOCIAL_VECTORS (default ../test/vectors, from
 * daemon/); test/vectors/generate.js makes both.
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
#include <jansson.h>

#include "lib/hex.h"
#include "decentraland/common/colors.pb-c.h"
#include "decentraland/social_service/errors.pb-c.h"
#include "decentraland/social_service/v2/social_service_v2.pb-c.h"

#define V2_PACKAGE "decentraland.social_service.v2"

static const char *vectors_dir;

/* ---- hex */

static uint8_t *
hex_decode(const char *hex, size_t *len)
{
	size_t	 n = strlen(hex) / 2;
	uint8_t *out = malloc(n + 1);

	assert_non_null(out);
	assert_int_equal(strlen(hex) % 2, 0);
	for (size_t i = 0; i < n; i++)
	{
		int hi = hex_value(hex[2 * i]);
		int lo = hex_value(hex[2 * i + 1]);

		assert_true(hi >= 0 && lo >= 0);
		out[i] = (uint8_t) (hi << 4 | lo);
	}
	*len = n;
	return out;
}

static char *
hex_encode(const uint8_t *data, size_t len)
{
	char *out = malloc(len * 2 + 1);

	assert_non_null(out);
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", data[i]);
	out[len * 2] = '\0';
	return out;
}

static char *
pack_hex(const ProtobufCMessage *m)
{
	size_t	 n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n + 1);
	char	*hex;

	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(m, buf), n);
	hex = hex_encode(buf, n);
	free(buf);
	return hex;
}

/* ---- descriptors: everything reachable from the service, plus the colour types */

#define MAX_DESCRIPTORS 256

static const ProtobufCMessageDescriptor *messages[MAX_DESCRIPTORS];
static size_t							 message_count;
static const ProtobufCEnumDescriptor	*enums[MAX_DESCRIPTORS];
static size_t							 enum_count;

static void
collect_message(const ProtobufCMessageDescriptor *d)
{
	for (size_t i = 0; i < message_count; i++)
		if (messages[i] == d)
			return;
	assert_true(message_count < MAX_DESCRIPTORS);
	messages[message_count++] = d;
	for (unsigned i = 0; i < d->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type == PROTOBUF_C_TYPE_MESSAGE)
			collect_message(f->descriptor);
		else if (f->type == PROTOBUF_C_TYPE_ENUM)
		{
			bool seen = false;

			for (size_t k = 0; k < enum_count && !seen; k++)
				seen = enums[k] == f->descriptor;
			if (!seen)
			{
				assert_true(enum_count < MAX_DESCRIPTORS);
				enums[enum_count++] = f->descriptor;
			}
		}
	}
}

static void
collect_all(void)
{
	const ProtobufCServiceDescriptor *sd =
		&decentraland__social_service__v2__social_service__descriptor;

	if (message_count)
		return;
	for (unsigned i = 0; i < sd->n_methods; i++)
	{
		collect_message(sd->methods[i].input);
		collect_message(sd->methods[i].output);
	}
	collect_message(&decentraland__common__color_range__descriptor);
	collect_message(&decentraland__common__color3__descriptor);
}

static const ProtobufCMessageDescriptor *
message_named(const char *full_name)
{
	collect_all();
	for (size_t i = 0; i < message_count; i++)
		if (strcmp(messages[i]->name, full_name) == 0)
			return messages[i];
	return NULL;
}

static const ProtobufCEnumDescriptor *
enum_named(const char *full_name)
{
	collect_all();
	for (size_t i = 0; i < enum_count; i++)
		if (strcmp(enums[i]->name, full_name) == 0)
			return enums[i];
	return NULL;
}

/* "has_claimed_name" -> "hasClaimedName" (ts-proto's JSON names) */
static void
camel_case(const char *snake, char *out, size_t cap)
{
	size_t n = 0;

	for (bool up = false; *snake && n + 1 < cap; snake++)
	{
		if (*snake == '_')
		{
			up = true;
			continue;
		}
		out[n++] = up && *snake >= 'a' && *snake <= 'z' ? (char) (*snake - 'a' + 'A') : *snake;
		up = false;
	}
	out[n] = '\0';
}

static const ProtobufCFieldDescriptor *
field_by_json_name(const ProtobufCMessageDescriptor *d, const char *key)
{
	for (unsigned i = 0; i < d->n_fields; i++)
	{
		char name[128];

		camel_case(d->fields[i].name, name, sizeof(name));
		if (strcmp(name, key) == 0)
			return &d->fields[i];
	}
	return NULL;
}

/* ---- JSON -> message */

static size_t
field_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type)
	{
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			return sizeof(int64_t);
		case PROTOBUF_C_TYPE_DOUBLE:
			return sizeof(double);
		case PROTOBUF_C_TYPE_FLOAT:
			return sizeof(float);
		case PROTOBUF_C_TYPE_BOOL:
			return sizeof(protobuf_c_boolean);
		case PROTOBUF_C_TYPE_STRING:
			return sizeof(char *);
		case PROTOBUF_C_TYPE_BYTES:
			return sizeof(ProtobufCBinaryData);
		case PROTOBUF_C_TYPE_MESSAGE:
			return sizeof(ProtobufCMessage *);
		default:
			return sizeof(int32_t);
	}
}

/* int64 values come as JSON numbers or, from some encoders, as decimal strings. */
static long long
json_int(json_t *j, const char *where)
{
	if (json_is_integer(j))
		return json_integer_value(j);
	if (json_is_string(j))
		return strtoll(json_string_value(j), NULL, 10);
	fail_msg("%s: not an integer", where);
	return 0;
}

static int
enum_value(const ProtobufCFieldDescriptor *f, json_t *j, const char *where)
{
	const ProtobufCEnumValue *v;

	if (json_is_integer(j))
		return (int) json_integer_value(j);
	v = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_string_value(j));
	if (v == NULL)
		fail_msg("%s: %s is not a value of %s", where, json_string_value(j),
				 ((const ProtobufCEnumDescriptor *) f->descriptor)->name);
	return v->value;
}

static ProtobufCMessage *message_from_json(const ProtobufCMessageDescriptor *d, json_t *obj,
										   const char *where);

static void
value_from_json(const ProtobufCFieldDescriptor *f, void *member, json_t *j, const char *where)
{
	switch (f->type)
	{
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
			*(int32_t *) member = (int32_t) json_int(j, where);
			break;
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			*(uint32_t *) member = (uint32_t) json_int(j, where);
			break;
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			*(int64_t *) member = (int64_t) json_int(j, where);
			break;
		case PROTOBUF_C_TYPE_FLOAT:
			*(float *) member = (float) json_number_value(j);
			break;
		case PROTOBUF_C_TYPE_DOUBLE:
			*(double *) member = json_number_value(j);
			break;
		case PROTOBUF_C_TYPE_BOOL:
			*(protobuf_c_boolean *) member = json_is_true(j);
			break;
		case PROTOBUF_C_TYPE_ENUM:
			*(int *) member = enum_value(f, j, where);
			break;
		case PROTOBUF_C_TYPE_STRING:
			assert_true(json_is_string(j));
			*(char **) member = strdup(json_string_value(j));
			break;
		case PROTOBUF_C_TYPE_MESSAGE:
			*(ProtobufCMessage **) member = message_from_json(f->descriptor, j, where);
			break;
		default:
			fail_msg("%s: field %s: type %d has no JSON mapping here", where, f->name, f->type);
	}
}

/* A message owned by the caller, freed with protobuf_c_message_free_unpacked(m, NULL): every
 * part is malloc'd, as protobuf-c's default allocator would. */
static ProtobufCMessage *
message_from_json(const ProtobufCMessageDescriptor *d, json_t *obj, const char *where)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	const char		 *key;
	json_t			 *j;

	assert_non_null(m);
	assert_true(json_is_object(obj));
	d->message_init(m);
	json_object_foreach(obj, key, j)
	{
		const ProtobufCFieldDescriptor *f = field_by_json_name(d, key);
		char						   *member;

		if (f == NULL)
			fail_msg("%s: %s has no field \"%s\"", where, d->name, key);
		member = (char *) m + f->offset;
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
		{
			size_t n = json_array_size(j);
			char  *items = NULL;

			if (n)
			{
				items = calloc(n, field_size(f));
				assert_non_null(items);
				for (size_t k = 0; k < n; k++)
					value_from_json(f, items + k * field_size(f), json_array_get(j, k), where);
			}
			*(size_t *) ((char *) m + f->quantifier_offset) = n;
			*(void **) member = items;
			continue;
		}
		value_from_json(f, member, j, where);
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			*(uint32_t *) ((char *) m + f->quantifier_offset) = f->id;
	}
	return m;
}

/* ---- message == JSON: every field either matches its JSON value or is absent/default */

static void check_message(const ProtobufCMessage *m, json_t *obj, const char *where);

static void
check_value(const ProtobufCFieldDescriptor *f, const void *member, json_t *j, const char *where)
{
	switch (f->type)
	{
		case PROTOBUF_C_TYPE_INT32:
		case PROTOBUF_C_TYPE_SINT32:
		case PROTOBUF_C_TYPE_SFIXED32:
			assert_int_equal(*(const int32_t *) member, j ? json_int(j, where) : 0);
			break;
		case PROTOBUF_C_TYPE_UINT32:
		case PROTOBUF_C_TYPE_FIXED32:
			assert_int_equal(*(const uint32_t *) member, j ? json_int(j, where) : 0);
			break;
		case PROTOBUF_C_TYPE_INT64:
		case PROTOBUF_C_TYPE_SINT64:
		case PROTOBUF_C_TYPE_SFIXED64:
		case PROTOBUF_C_TYPE_UINT64:
		case PROTOBUF_C_TYPE_FIXED64:
			assert_int_equal(*(const int64_t *) member, j ? json_int(j, where) : 0);
			break;
		case PROTOBUF_C_TYPE_FLOAT:
			assert_true(*(const float *) member == (j ? (float) json_number_value(j) : 0.0f));
			break;
		case PROTOBUF_C_TYPE_DOUBLE:
			assert_true(*(const double *) member == (j ? json_number_value(j) : 0.0));
			break;
		case PROTOBUF_C_TYPE_BOOL:
			assert_int_equal(*(const protobuf_c_boolean *) member != 0, j && json_is_true(j));
			break;
		case PROTOBUF_C_TYPE_ENUM:
			assert_int_equal(*(const int *) member, j ? enum_value(f, j, where) : 0);
			break;
		case PROTOBUF_C_TYPE_STRING:
			assert_string_equal(*(char *const *) member, j ? json_string_value(j) : "");
			break;
		case PROTOBUF_C_TYPE_MESSAGE:
		{
			const ProtobufCMessage *sub = *(ProtobufCMessage *const *) member;

			if (j == NULL)
				assert_null(sub);
			else
			{
				assert_non_null(sub);
				check_message(sub, j, where);
			}
			break;
		}
		default:
			fail_msg("%s: field %s: unexpected type %d", where, f->name, f->type);
	}
}

static void
check_message(const ProtobufCMessage *m, json_t *obj, const char *where)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char						 *key;
	json_t							 *j;

	for (unsigned i = 0; i < d->n_fields; i++)
	{
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char					   *member = (const char *) m + f->offset;
		char							name[128];

		camel_case(f->name, name, sizeof(name));
		j = json_object_get(obj, name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
		{
			size_t		n = *(const size_t *) ((const char *) m + f->quantifier_offset);
			const char *items = *(char *const *) member;

			assert_int_equal(n, j ? json_array_size(j) : 0);
			for (size_t k = 0; k < n; k++)
				check_value(f, items + k * field_size(f), json_array_get(j, k), where);
		}
		else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		{
			uint32_t which = *(const uint32_t *) ((const char *) m + f->quantifier_offset);

			if (j)
			{
				if (which != f->id)
					fail_msg("%s: %s.%s is not the set case (%u)", where, d->name, f->name, which);
				check_value(f, member, j, where);
			}
			else if (which == f->id)
				fail_msg("%s: %s.%s is set but not in the JSON", where, d->name, f->name);
		}
		else
			check_value(f, member, j, where);
	}
	json_object_foreach(obj, key, j)
	{
		if (field_by_json_name(d, key) == NULL)
			fail_msg("%s: %s has no field \"%s\"", where, d->name, key);
	}
}

/* ---- 1. the vectors */

typedef struct SocialVector
{
	char   *name;
	char   *type;
	json_t *json;
	char   *hex;
} SocialVector;

static void
test_vector(void **state)
{
	const SocialVector				 *v = *state;
	char							  full[256];
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage				 *built;
	ProtobufCMessage				 *decoded;
	uint8_t							 *bytes;
	size_t							  len;
	char							 *hex;

	snprintf(full, sizeof(full), V2_PACKAGE ".%s", v->type);
	d = message_named(full);
	if (d == NULL)
		fail_msg("%s: no message %s", v->name, full);

	built = message_from_json(d, v->json, v->name);
	hex = pack_hex(built);
	if (strcmp(hex, v->hex) != 0)
		fail_msg("%s: packed\n  got  %s\n  want %s", v->name, hex, v->hex);
	free(hex);
	protobuf_c_message_free_unpacked(built, NULL);

	bytes = hex_decode(v->hex, &len);
	decoded = protobuf_c_message_unpack(d, NULL, len, bytes);
	if (decoded == NULL)
		fail_msg("%s: protobuf-c cannot unpack the vector", v->name);
	check_message(decoded, v->json, v->name);
	hex = pack_hex(decoded);
	assert_string_equal(hex, v->hex);
	free(hex);
	protobuf_c_message_free_unpacked(decoded, NULL);
	free(bytes);
}

/* ---- 2. the fields document */

typedef struct DocField
{
	uint32_t number;
	char	 name[64];
	char	 type[128];
	char	 label[64]; /* "", "optional", "repeated", "oneof <name>" */
} DocField;

static const char *
doc_package(const char *file_heading)
{
	if (strstr(file_heading, "colors"))
		return "decentraland.common";
	if (strstr(file_heading, "errors"))
		return "decentraland.social_service";
	return V2_PACKAGE;
}

static ProtobufCType
scalar_type(const char *name)
{
	static const struct
	{
		const char	 *name;
		ProtobufCType type;
	} scalars[] = {
		{"string", PROTOBUF_C_TYPE_STRING}, {"bool", PROTOBUF_C_TYPE_BOOL},
		{"int32", PROTOBUF_C_TYPE_INT32},	{"int64", PROTOBUF_C_TYPE_INT64},
		{"uint32", PROTOBUF_C_TYPE_UINT32}, {"uint64", PROTOBUF_C_TYPE_UINT64},
		{"float", PROTOBUF_C_TYPE_FLOAT},	{"double", PROTOBUF_C_TYPE_DOUBLE},
		{"bytes", PROTOBUF_C_TYPE_BYTES},
	};

	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
		if (strcmp(scalars[i].name, name) == 0)
			return scalars[i].type;
	return (ProtobufCType) -1;
}

static const char *
last_component(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot ? dot + 1 : name;
}

/* Checks one message of the document against its descriptor. */
static void
check_doc_message(const char *full, const DocField *fields, size_t n)
{
	const ProtobufCMessageDescriptor *d = message_named(full);

	if (d == NULL)
		fail_msg("message %s of the fields document is not in the protos", full);
	if (d->n_fields != n)
		fail_msg("%s has %u fields, the document %zu", full, d->n_fields, n);
	for (size_t i = 0; i < n; i++)
	{
		const DocField				   *df = &fields[i];
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, df->number);
		ProtobufCType					want = scalar_type(df->type);

		if (f == NULL)
			fail_msg("%s: no field %u", full, df->number);
		if (strcmp(f->name, df->name) != 0)
			fail_msg("%s: field %u is %s, the document says %s", full, df->number, f->name,
					 df->name);
		if ((int) want >= 0)
		{
			if (f->type != want)
				fail_msg("%s.%s: type %d, the document says %s", full, df->name, f->type, df->type);
		}
		else if (f->type == PROTOBUF_C_TYPE_MESSAGE)
		{
			const ProtobufCMessageDescriptor *sub = f->descriptor;

			if (strcmp(sub->short_name, last_component(df->type)) != 0)
				fail_msg("%s.%s: message %s, the document says %s", full, df->name, sub->name,
						 df->type);
			if (strchr(df->type, '.') && strcmp(sub->name, df->type) != 0)
				fail_msg("%s.%s: message %s, the document says %s", full, df->name, sub->name,
						 df->type);
		}
		else if (f->type == PROTOBUF_C_TYPE_ENUM)
		{
			const ProtobufCEnumDescriptor *e = f->descriptor;

			if (strcmp(e->short_name, df->type) != 0)
				fail_msg("%s.%s: enum %s, the document says %s", full, df->name, e->name, df->type);
		}
		else
			fail_msg("%s.%s: type %d, the document says %s", full, df->name, f->type, df->type);

		/* labels: optional is a oneof of its own; oneof X groups fields sharing a case */
		if (strcmp(df->label, "repeated") == 0)
			assert_int_equal(f->label, PROTOBUF_C_LABEL_REPEATED);
		else if (df->label[0] == '\0')
		{
			if (f->label != PROTOBUF_C_LABEL_NONE || (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				fail_msg("%s.%s must be a plain proto3 field", full, df->name);
		}
		else
		{
			if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				fail_msg("%s.%s must be in a oneof (%s)", full, df->name, df->label);
			for (size_t k = 0; k < n; k++)
			{
				const ProtobufCFieldDescriptor *g;
				bool							same_group;

				if (k == i)
					continue;
				g = protobuf_c_message_descriptor_get_field(d, fields[k].number);
				if (g == NULL)
					fail_msg("%s: no field %u", full, fields[k].number);
				same_group =
					strncmp(df->label, "oneof ", 6) == 0 && strcmp(df->label, fields[k].label) == 0;
				if ((g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
					(g->quantifier_offset == f->quantifier_offset) != same_group)
					fail_msg("%s.%s and %s: oneof grouping differs from the document", full,
							 df->name, g->name);
			}
		}
	}
}

static void
check_doc_enum(const char *full, char names[][64], const int *values, size_t n)
{
	const ProtobufCEnumDescriptor *e = enum_named(full);

	if (e == NULL)
		fail_msg("enum %s of the fields document is not in the protos", full);
	if (e->n_values != n)
		fail_msg("enum %s has %u values, the document %zu", full, e->n_values, n);
	for (size_t i = 0; i < n; i++)
	{
		const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(e, names[i]);

		if (v == NULL || v->value != values[i])
			fail_msg("%s.%s must be %d", full, names[i], values[i]);
	}
}

static void
check_doc_procedure(const char *line)
{
	const ProtobufCServiceDescriptor *sd =
		&decentraland__social_service__v2__social_service__descriptor;
	unsigned						 id;
	char							 name[128], input[128], output[128];
	const ProtobufCMethodDescriptor *m;
	const char						*out;

	/* e.g. | 6 | `SubscribeToFriendshipUpdates` | `google.protobuf.Empty` | stream ... | */
	if (sscanf(line, "| %u | `%127[^`]` | `%127[^`]` | %127[^|]|", &id, name, input, output) != 4)
		return;
	assert_true(id >= 1 && id <= sd->n_methods);
	m = &sd->methods[id - 1];
	if (strcmp(m->name, name) != 0)
		fail_msg("procedure %u is %s, the document says %s", id, m->name, name);
	if (strcmp(input, "google.protobuf.Empty") == 0)
		assert_string_equal(m->input->short_name, "Empty");
	else
		assert_string_equal(m->input->short_name, input);
	out = strchr(output, '`');
	assert_non_null(out);
	if (strncmp(m->output->short_name, out + 1, strlen(m->output->short_name)) != 0 ||
		out[1 + strlen(m->output->short_name)] != '`')
		fail_msg("procedure %s returns %s, the document says %s", name, m->output->name, output);
}

static void
test_fields_document(void **state)
{
	char		path[4096];
	FILE	   *fp;
	char		line[512];
	const char *package = V2_PACKAGE;
	char		current[256] = "";
	bool		is_enum = false;
	DocField	fields[32];
	size_t		nfields = 0;
	char		enum_names[32][64];
	int			enum_values[32];
	size_t		messages_seen = 0, enums_seen = 0;

	snprintf(path, sizeof(path), "%s/social_v2_fields.txt", vectors_dir);
	fp = fopen(path, "r");
	if (fp == NULL)
		fail_msg("cannot read %s", path);

#define FLUSH()                                                        \
	do                                                                 \
	{                                                                  \
		if (current[0] && is_enum)                                     \
			check_doc_enum(current, enum_names, enum_values, nfields); \
		else if (current[0])                                           \
			check_doc_message(current, fields, nfields);               \
		current[0] = '\0';                                             \
		nfields = 0;                                                   \
	} while (0)

	while (fgets(line, sizeof(line), fp))
	{
		char	 word[128];
		unsigned number;
		int		 value;

		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '|')
		{
			check_doc_procedure(line);
			continue;
		}
		if (strncmp(line, "### ", 4) == 0)
		{
			FLUSH();
			package = doc_package(line + 4);
			continue;
		}
		if (sscanf(line, "message %127s", word) == 1)
		{
			FLUSH();
			snprintf(current, sizeof(current), "%s.%s", package, word);
			is_enum = false;
			messages_seen++;
			continue;
		}
		if (sscanf(line, "enum %127s", word) == 1)
		{
			FLUSH();
			snprintf(current, sizeof(current), "%s.%s", package, word);
			is_enum = true;
			enums_seen++;
			continue;
		}
		if (current[0] == '\0')
			continue;
		if (!is_enum)
		{
			DocField *f = &fields[nfields];
			char	  label[64] = "";

			if (sscanf(line, " %u %63s : %127s [%63[^]]]", &number, f->name, f->type, label) >= 3)
			{
				assert_true(nfields < 32);
				f->number = number;
				snprintf(f->label, sizeof(f->label), "%s", label);
				nfields++;
			}
			else if (line[0] == '\0' || strncmp(line, "```", 3) == 0)
				FLUSH();
		}
		else
		{
			if (sscanf(line, " %63s = %d", enum_names[nfields], &value) == 2)
			{
				assert_true(nfields < 32);
				enum_values[nfields++] = value;
			}
			else if (line[0] == '\0' || strncmp(line, "```", 3) == 0)
				FLUSH();
		}
	}
	FLUSH();
#undef FLUSH
	fclose(fp);
	/* the parser found the document's content, not an empty file */
	assert_true(messages_seen > 100);
	assert_true(enums_seen >= 8);
}

/* ---- 3. the C names other modules rely on */

static void
test_c_names(void **state)
{
	Decentraland__SocialService__V2__User user = DECENTRALAND__SOCIAL_SERVICE__V2__USER__INIT;
	Decentraland__SocialService__V2__UpsertFriendshipPayload__RequestPayload req =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__REQUEST_PAYLOAD__INIT;
	Decentraland__SocialService__V2__UpsertFriendshipPayload payload =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__INIT;
	Decentraland__SocialService__InvalidRequest invalid =
		DECENTRALAND__SOCIAL_SERVICE__INVALID_REQUEST__INIT;
	Decentraland__SocialService__V2__UpsertFriendshipResponse resp =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_RESPONSE__INIT;
	Decentraland__SocialService__V2__Empty empty = DECENTRALAND__SOCIAL_SERVICE__V2__EMPTY__INIT;
	Decentraland__Common__Color3		   color = DECENTRALAND__COMMON__COLOR3__INIT;
	Decentraland__SocialService__V2__FriendProfile profile =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE__INIT;
	char *hex;

	user.address = "0x8e93837c7b28af66a70b13c03a36e4333e371073";
	req.user = &user;
	req._message_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__REQUEST_PAYLOAD___MESSAGE_MESSAGE;
	req.message = "hi";
	payload.action_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_PAYLOAD__ACTION_REQUEST;
	payload.request = &req;
	hex = pack_hex(&payload.base);
	assert_string_equal(hex,
						"0a320a2c0a2a3078386539333833376337623238616636366137306231336330336133"
						"366534333333653337313037331a026869");
	free(hex);

	/* an optional string set to "" is still sent: presence is what the oneof encodes */
	invalid._message_case = DECENTRALAND__SOCIAL_SERVICE__INVALID_REQUEST___MESSAGE_MESSAGE;
	invalid.message = "";
	resp.response_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__UPSERT_FRIENDSHIP_RESPONSE__RESPONSE_INVALID_REQUEST;
	resp.invalid_request = &invalid;
	hex = pack_hex(&resp.base);
	assert_string_equal(hex, "22020a00");
	free(hex);

	hex = pack_hex(&empty.base);
	assert_string_equal(hex, "");
	free(hex);

	color.r = 1.0f;
	profile.address = "0xabc";
	profile._name_color_case =
		DECENTRALAND__SOCIAL_SERVICE__V2__FRIEND_PROFILE___NAME_COLOR_NAME_COLOR;
	profile.name_color = &color;
	hex = pack_hex(&profile.base);
	assert_string_equal(hex, "0a053078616263"
							 "2a05"
							 "0d0000803f");
	free(hex);
}

/* A payload that is not the message it claims fails to unpack (friends answers invalid_request
 * on that). */
static void
test_garbage_payloads(void **state)
{
	static const char *garbage[] = {
		"0a",			/* length missing */
		"0a05307861",	/* length past the end */
		"0a2c0a2a3078", /* nested length past the end */
		"0f",			/* wire type 7 */
		"0a0208",		/* truncated varint inside */
		"12020a",		/* accept: truncated */
	};

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++)
	{
		size_t	 len;
		uint8_t *b = hex_decode(garbage[i], &len);

		assert_null(
			decentraland__social_service__v2__upsert_friendship_payload__unpack(NULL, len, b));
		free(b);
	}
}

int
main(void)
{
	char			   path[4096];
	json_error_t	   err;
	json_t			  *root;
	json_t			  *entry;
	size_t			   n, i;
	SocialVector	  *vectors;
	struct CMUnitTest *tests;
	int				   rc;

	vectors_dir = getenv("SOCIAL_VECTORS");
	if (vectors_dir == NULL || *vectors_dir == '\0')
		vectors_dir = "../test/vectors";
	snprintf(path, sizeof(path), "%s/social_vectors.json", vectors_dir);
	root = json_load_file(path, 0, &err);
	if (root == NULL || !json_is_array(root) || json_array_size(root) == 0)
	{
		fprintf(stderr, "cannot read %s: %s (set SOCIAL_VECTORS)\n", path, err.text);
		return 1;
	}

	/* one test per vector, named after it, plus the fixed ones */
	n = json_array_size(root);
	vectors = calloc(n, sizeof(*vectors));
	tests = calloc(n + 3, sizeof(*tests));
	if (vectors == NULL || tests == NULL)
		return 1;
	json_array_foreach(root, i, entry)
	{
		const char *name = json_string_value(json_object_get(entry, "name"));
		const char *type = json_string_value(json_object_get(entry, "type"));
		const char *hex = json_string_value(json_object_get(entry, "hex"));
		json_t	   *json = json_object_get(entry, "json");

		if (name == NULL || type == NULL || hex == NULL || !json_is_object(json))
		{
			fprintf(stderr, "%s: entry %zu lacks name, type, json or hex\n", path, i);
			return 1;
		}
		vectors[i] = (SocialVector){(char *) name, (char *) type, json, (char *) hex};
		tests[i] = (struct CMUnitTest){name, test_vector, NULL, NULL, &vectors[i]};
	}
	tests[n] = (struct CMUnitTest) cmocka_unit_test(test_fields_document);
	tests[n + 1] = (struct CMUnitTest) cmocka_unit_test(test_c_names);
	tests[n + 2] = (struct CMUnitTest) cmocka_unit_test(test_garbage_payloads);

	rc = _cmocka_run_group_tests("social_proto", tests, n + 3, NULL, NULL);
	free(tests);
	free(vectors);
	json_decref(root);
	return rc;
}
