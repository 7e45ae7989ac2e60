/* cmd_history.c: `switchboard-cli history CHANNEL [--limit N]` prints each retained
 * message of the history reply ({"offset","data","from"}, data byte for byte) as one
 * JSON line, oldest first.
 */
#include "cli.h"

static void
history_ready(struct cli *c)
{
	if (sbc_history(c->sbc, c->o.channels[0], c->o.limit, 0, NULL, NULL) != 0)
		out_of_memory(c);
}

static void
history_reply(struct cli *c, const struct sbc_reply *r)
{
	if (r->cmd != SBC_CMD_HISTORY)
		return;
	print_elements(c, r, "messages");
	cli_close(c, EXIT_OK);
}

const struct cli_command cmd_history = {
	.name = "history",
	.mode = MODE_HISTORY,
	.ready = history_ready,
	.reply = history_reply,
};
