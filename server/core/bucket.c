/* bucket.c: see bucket.h. A new bucket starts full. */
#include "bucket.h"

#include <stddef.h>

bool
bucket_take(struct bucket *b, double per_second, unsigned burst, uint64_t now_ms,
	    uint64_t *retry_ms)
{
	if (!b->started) {
		b->tokens = burst;
		b->last_ms = now_ms;
		b->started = true;
	}
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * per_second / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
		b->last_ms = now_ms;
	}
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return true;
	}
	if (retry_ms != NULL)
		*retry_ms = (uint64_t)((1.0 - b->tokens) * 1000.0 / per_second) + 1;
	return false;
}
