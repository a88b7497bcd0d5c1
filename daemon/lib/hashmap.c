/*
 * hashmap -- intrusive chained hash table: bucket heads only, growth by doubling.
 */
#include "lib/hashmap.h"

#include <stdlib.h>

void
hashmap_init(Hashmap *t, size_t min_buckets, size_t (*hash)(const HashmapLink *link))
{
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
	t->min_buckets = min_buckets;
	t->hash = hash;
}

bool
hashmap_reserve(Hashmap *t)
{
	size_t		  n;
	HashmapLink **b;

	if (t->count < t->nbuckets)
		return true;
	n = t->nbuckets ? t->nbuckets * 2 : t->min_buckets;
	b = calloc(n, sizeof(*b));
	if (b == NULL)
		return t->nbuckets > 0;
	/* Rehashed bucket by bucket, each chain from its head, every link pushed on its new head. */
	for (size_t i = 0; i < t->nbuckets; i++)
	{
		for (HashmapLink *l = t->buckets[i], *next; l; l = next)
		{
			size_t j = t->hash(l) & (n - 1);

			next = l->next;
			l->next = b[j];
			b[j] = l;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = n;
	return true;
}

HashmapLink *
hashmap_chain(const Hashmap *t, size_t h)
{
	return t->nbuckets ? t->buckets[h & (t->nbuckets - 1)] : NULL;
}

void
hashmap_insert(Hashmap *t, HashmapLink *link)
{
	HashmapLink **head = &t->buckets[t->hash(link) & (t->nbuckets - 1)];

	link->next = *head;
	*head = link;
	t->count++;
}

void
hashmap_remove(Hashmap *t, HashmapLink *link)
{
	if (t->nbuckets == 0)
		return;
	for (HashmapLink **p = &t->buckets[t->hash(link) & (t->nbuckets - 1)]; *p; p = &(*p)->next)
	{
		if (*p == link)
		{
			*p = link->next;
			link->next = NULL;
			t->count--;
			return;
		}
	}
}

HashmapLink *
hashmap_next(const Hashmap *t, size_t *bucket, const HashmapLink *link)
{
	size_t i = *bucket;

	if (link != NULL)
	{
		if (link->next != NULL)
			return link->next;
		i++;
	}
	for (; i < t->nbuckets; i++)
	{
		if (t->buckets[i] != NULL)
		{
			*bucket = i;
			return t->buckets[i];
		}
	}
	*bucket = t->nbuckets;
	return NULL;
}

HashmapLink *
hashmap_pop(Hashmap *t)
{
	for (size_t i = 0; i < t->nbuckets; i++)
	{
		HashmapLink *l = t->buckets[i];

		if (l != NULL)
		{
			t->buckets[i] = l->next;
			l->next = NULL;
			t->count--;
			return l;
		}
	}
	return NULL;
}

void
hashmap_free(Hashmap *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = 0;
	t->count = 0;
}

size_t
hashmap_hash_u64(uint64_t v)
{
	v ^= v >> 30;
	v *= 0xbf58476d1ce4e5b9ULL;
	v ^= v >> 27;
	v *= 0x94d049bb133111ebULL;
	v ^= v >> 31;
	return (size_t) v;
}

size_t
hashmap_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
	{
		h ^= (unsigned char) *s;
		h *= 0x100000001b3ULL;
	}
	return (size_t) h;
}
