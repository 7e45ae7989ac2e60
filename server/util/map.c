/* map.c: chained hash table; buckets double when the load passes 1. */
#include "map.h"
#include "xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	struct entry *next;
	uint64_t hash;
	void *value;
	size_t len;
	char key[];
};

struct map {
	struct entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	uint8_t seed[16];
};

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                          \
		v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                             \
		v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                             \
		v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                          \
	} while (0)

static uint64_t
load64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t
map_siphash(const uint8_t key[16], const void *data, size_t len)
{
	const uint8_t *in = data;
	uint64_t k0 = load64(key), k1 = load64(key + 8);
	uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = load64(in + i);
		v3 ^= m;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t j = 0; j < left; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

struct map *
map_new(const uint8_t seed[16])
{
	struct map *m = xcalloc(1, sizeof(*m));

	m->nbuckets = 16;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	memcpy(m->seed, seed, sizeof(m->seed));
	return m;
}

void
map_free(struct map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct entry *e = m->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(m->buckets);
	free(m);
}

static struct entry **
slot(const struct map *m, const char *key, size_t len, uint64_t h)
{
	struct entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0)
			break;
	return pp;
}

void *
map_find(const struct map *m, const char *key, size_t len)
{
	struct entry *e = *slot(m, key, len, map_siphash(m->seed, key, len));

	return e != NULL ? e->value : NULL;
}

static void
grow(struct map *m)
{
	size_t n = m->nbuckets * 2;
	struct entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct entry *e = m->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

int
map_add(struct map *m, const char *key, size_t len, void *value)
{
	uint64_t h = map_siphash(m->seed, key, len);
	struct entry **pp = slot(m, key, len, h), *e;

	if (*pp != NULL)
		return -EEXIST;
	e = xmalloc(sizeof(*e) + len + 1);
	e->next = NULL;
	e->hash = h;
	e->value = value;
	e->len = len;
	memcpy(e->key, key, len);
	e->key[len] = '\0';
	*pp = e;
	if (++m->count > m->nbuckets)
		grow(m);
	return 0;
}

void *
map_remove(struct map *m, const char *key, size_t len)
{
	struct entry **pp = slot(m, key, len, map_siphash(m->seed, key, len)), *e = *pp;
	void *v;

	if (e == NULL)
		return NULL;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

size_t
map_count(const struct map *m)
{
	return m->count;
}

void
map_foreach(const struct map *m, map_visit_fn fn, void *arg)
{
	for (size_t i = 0; i < m->nbuckets; i++)
		for (struct entry *e = m->buckets[i]; e != NULL; e = e->next)
			fn(arg, e->key, e->len, e->value);
}
