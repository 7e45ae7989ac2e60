/* itest.c: see itest.h. */
#include "itest.h"

struct server_fixture itest_server;

void
itest_start(const char *json)
{
	cr_assert_eq(server_fixture_start(&itest_server, json, NULL, NULL), 0, "%s",
		     itest_server.error);
}

void
itest_server_up(void)
{
	itest_start(NULL);
}

void
itest_server_down(void)
{
	server_fixture_kill(&itest_server);
}
