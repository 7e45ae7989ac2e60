/* cmd_presence.c: `switchboard-cli presence CHANNEL` prints each member of the
 * presence reply as one JSON line, then the presence_stats reply line.
 */
#include "cli.h"

static void
presence_ready(struct cli *c)
{
	if (sbc_presence(c->sbc, c->o.channels[0], NULL) != 0)
		out_of_memory(c);
}

static void
presence_reply(struct cli *c, const struct sbc_reply *r)
{
	if (r->cmd == SBC_CMD_PRESENCE) {
		print_elements(c, r, "members");
		if (cli_running(c) && sbc_presence_stats(c->sbc, c->o.channels[0], NULL) != 0)
			out_of_memory(c);
	} else if (r->cmd == SBC_CMD_PRESENCE_STATS) {
		print_json_line(c, r->raw, r->raw_len);
		cli_close(c, EXIT_OK);
	}
}

const struct cli_command cmd_presence = {
	.name = "presence",
	.mode = MODE_PRESENCE,
	.ready = presence_ready,
	.reply = presence_reply,
};
