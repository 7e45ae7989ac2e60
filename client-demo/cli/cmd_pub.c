/* cmd_pub.c: `switchboard-cli pub CHANNEL JSON` publishes the JSON text as written
 * (checked before connecting, args.c) once subscribed, prints the published reply line
 * and ends. Its own copy of the message is ignored.
 */
#include <errno.h>
#include <stdio.h>

#include "cli.h"

static void
pub_ready(struct cli *c)
{
	int rc = sbc_publish(c->sbc, c->o.channels[0], c->o.json, c->o.json_len, NULL);

	if (rc == -ENOMEM) {
		out_of_memory(c);
	} else if (rc != 0) {
		errmsg("internal error: cannot encode publish");
		cli_close(c, EXIT_SERVER);
	} else {
		c->inflight++;
		c->npublished++;
	}
}

static void
pub_reply(struct cli *c, const struct sbc_reply *r)
{
	if (r->cmd != SBC_CMD_PUBLISH)
		return;
	fwrite(r->raw, 1, r->raw_len, stdout);
	end_line(c);
	cli_close(c, EXIT_OK);
}

const struct cli_command cmd_pub = {
	.name = "pub",
	.mode = MODE_PUB,
	.ready = pub_ready,
	.reply = pub_reply,
};
