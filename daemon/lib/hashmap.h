/*
 * hashmap -- an intrusive chained hash table, and the hash functions its users key it by.
 *
 * The entries are the caller's structs, each with one HashmapLink per table it is in; the table
 * holds only bucket heads. It never allocates an entry and never compares keys: the caller
 * walks the chain of a hash (hashmap_chain) and compares what it keeps. The bucket count is a
 * power of two; a table doubles when it holds as many entries as buckets, and an allocation
 * failure while growing leaves it as it was (only longer chains). Loop thread only.
 */
#ifndef SOCIALD_HASHMAP_H
#define SOCIALD_HASHMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct HashmapLink
{
	struct HashmapLink *next;
} HashmapLink;

typedef struct Hashmap
{
	HashmapLink **buckets;
	size_t		  nbuckets; /* 0 or a power of two */
	size_t		  count;
	size_t		  min_buckets;				 /* the first allocation */
	size_t (*hash)(const HashmapLink *link); /* the hash of an entry's key */
} Hashmap;

/* The entry of type that holds link as member. */
#define HASHMAP_ENTRY(link, type, member) ((type *) ((char *) (link) -offsetof(type, member)))

/* An empty table (no buckets yet) whose first allocation has min_buckets (a power of two); as a
 * static initializer, or hashmap_init at run time. */
#define HASHMAP_INIT(min_buckets, hash)   \
	{                                     \
		NULL, 0, 0, (min_buckets), (hash) \
	}
void hashmap_init(Hashmap *t, size_t min_buckets, size_t (*hash)(const HashmapLink *link));

/* Makes room for one more entry: allocates the first buckets, or doubles them when the table
 * holds as many entries as buckets. false only when the table has no buckets at all. */
bool hashmap_reserve(Hashmap *t);

/* The first link of the chain entries of hash h are on; NULL when there are none. */
HashmapLink *hashmap_chain(const Hashmap *t, size_t h);

/* Puts link at the head of its chain; the table must have buckets (hashmap_reserve). */
void hashmap_insert(Hashmap *t, HashmapLink *link);

/* Takes link out of its chain; a link that is not in the table is left alone. */
void hashmap_remove(Hashmap *t, HashmapLink *link);

/* Walks the table bucket by bucket, each chain in order: the link after link (the first link
 * from bucket *bucket on when link is NULL; start with *bucket = 0), *bucket kept in step; NULL
 * at the end. The caller may free the entry it holds before asking for the next one only if it
 * asked first: next = hashmap_next(t, &b, l); ... free l ...; l = next. */
HashmapLink *hashmap_next(const Hashmap *t, size_t *bucket, const HashmapLink *link);

/* Takes some entry out of the table and returns it; NULL when it is empty. For tearing down. */
HashmapLink *hashmap_pop(Hashmap *t);

/* Frees the buckets (not the entries) and empties the table; it can be used again. */
void hashmap_free(Hashmap *t);

/* splitmix64's finalizer: sequential ids land in unrelated buckets. */
size_t hashmap_hash_u64(uint64_t v);

/* FNV-1a over a NUL-terminated string (an address). */
size_t hashmap_hash_str(const char *s);

#endif /* SOCIALD_HASHMAP_H */
