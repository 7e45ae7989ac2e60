/* map.h: a string-keyed hash table of borrowed values (channels, sessions).
 * Keys are hashed with SipHash-1-3 under a caller-supplied random key, so that names
 * chosen by clients cannot be crafted to collide. The map never frees values; the key
 * bytes are copied into the entry. */
#ifndef SWITCHBOARD_MAP_H
#define SWITCHBOARD_MAP_H

#include <stddef.h>
#include <stdint.h>

struct map;

struct map *map_new(const uint8_t seed[16]);
void map_free(struct map *m); /* entries are dropped, values are not freed */

void *map_find(const struct map *m, const char *key, size_t len);     /* borrowed or NULL */
int map_add(struct map *m, const char *key, size_t len, void *value); /* 0 or -EEXIST */
void *map_remove(struct map *m, const char *key, size_t len);	      /* the value, or NULL */
size_t map_count(const struct map *m);

/* Calls fn for every entry; fn must not add or remove entries. */
typedef void (*map_visit_fn)(void *arg, const char *key, size_t len, void *value);
void map_foreach(const struct map *m, map_visit_fn fn, void *arg);

/* SipHash-1-3 of data under key (exposed for tests and other tables). */
uint64_t map_siphash(const uint8_t key[16], const void *data, size_t len);

#endif
