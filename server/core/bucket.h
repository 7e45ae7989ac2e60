/* bucket.h: a token bucket (quotas, rate limits). Pure arithmetic: time is passed in. */
#ifndef SWITCHBOARD_BUCKET_H
#define SWITCHBOARD_BUCKET_H

#include <stdbool.h>
#include <stdint.h>

struct bucket {
	double tokens;	  /* available now (up to burst) */
	uint64_t last_ms; /* when tokens was computed */
	bool started;
};

/* Takes one token from b, which holds at most burst and gains per_second tokens each
 * second. Returns true if one was available; otherwise false with *retry_ms set to the
 * wait until the next token. */
bool bucket_take(struct bucket *b, double per_second, unsigned burst, uint64_t now_ms,
		 uint64_t *retry_ms);

#endif
