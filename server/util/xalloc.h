/* xalloc.h: allocation that aborts on exhaustion (as Redis and h2o do), so server code
 * needs no NULL checks. protocol/ does not use these: it reports failure instead. */
#ifndef SWITCHBOARD_XALLOC_H
#define SWITCHBOARD_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* Aborts with a message if p is NULL (for library calls that may fail on OOM); returns p. */
void *xcheck(void *p);

#endif
