/* cmd_sub.c: `switchboard-cli sub CHANNEL...` prints every message, join, leave and
 * reset frame of its channels as one JSON line, as received. The library reconnects
 * after a drop and recovers each channel from its last position (main.c says so on
 * stderr); a second copy of an offset is dropped with a notice.
 */
#include <inttypes.h>

#include "cli.h"

static void
sub_message(struct cli *c, const struct sbc_message *m)
{
	if (m->duplicate) {
		errmsg("ignoring a second copy of %s offset %" PRIu64
		       " (already printed up to %" PRIu64 ")",
		       m->channel, m->offset, m->last_offset);
		return;
	}
	print_json_line(c, m->raw, m->raw_len);
}

static void
sub_presence(struct cli *c, const struct sbc_presence *p)
{
	print_json_line(c, p->raw, p->raw_len);
}

static void
sub_reset(struct cli *c, const struct sbc_reset *r)
{
	print_json_line(c, r->raw, r->raw_len);
}

const struct cli_command cmd_sub = {
	.name = "sub",
	.mode = MODE_SUB,
	.endless = true,
	.message = sub_message,
	.presence = sub_presence,
	.reset = sub_reset,
};
