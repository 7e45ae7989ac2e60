/* main.c: command line -> configuration -> server_run(). */
#include "config.h"
#include "server.h"
#include "webhook.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: switchboard [options]\n"
		"\n"
		"Real-time messaging server: WebSocket (/ws) and HTTP (/api/v1/, /healthz, /metrics)\n"
		"on one port.\n"
		"Without --config it runs on the embedded defaults: memory engine, port 8080,\n"
		"anonymous access. Options override the configuration file.\n"
		"\n"
		"  -c, --config FILE      JSON configuration (docs/configuration.md)\n"
		"  -p, --port N           port to listen on (0: any free port)\n"
		"  -H, --host ADDR        address to listen on (default: every interface)\n"
		"  -l, --log-level LEVEL  error | warn | info | debug (default info)\n"
		"  -V, --version          print the version and exit\n"
		"  -h, --help             print this help and exit\n"
		"\n"
		"Exit status: 0 after SIGINT/SIGTERM, 1 if the server could not start,\n"
		"2 for a bad command line or configuration.\n");
}

static int
parse_port(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
		return -1;
	*out = (int)v;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *host = NULL, *level = NULL;
	int port = -1, opt, rc;
	struct config cfg;
	char err[512];

	while ((opt = getopt_long(argc, argv, "c:p:H:l:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'p':
			if (parse_port(optarg, &port) != 0) {
				fprintf(stderr, "switchboard: --port: \"%s\" is not a port number (0-65535)\n", optarg);
				return 2;
			}
			break;
		case 'H':
			host = optarg;
			break;
		case 'l':
			level = optarg;
			break;
		case 'V':
			printf("switchboard %s\n", SWITCHBOARD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "switchboard: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	config_defaults(&cfg);
	if (config_path != NULL && config_load_file(&cfg, config_path, err, sizeof(err)) != 0) {
		fprintf(stderr, "switchboard: configuration error: %s\n", err);
		config_fini(&cfg);
		return 2;
	}
	/* The core configuration keeps the webhooks list unread; its entries (URLs, CA files)
	 * are checked here so that a bad one is a configuration error (2) too. */
	if (webhook_config_check(cfg.webhooks, err, sizeof(err)) != 0) {
		fprintf(stderr, "switchboard: configuration error: %s\n", err);
		config_fini(&cfg);
		return 2;
	}
	if (port >= 0)
		cfg.port = port;
	if (host != NULL) {
		free(cfg.host);
		cfg.host = strdup(host);
	}
	if (level != NULL && log_level_parse(level, &cfg.log_level) != 0) {
		fprintf(stderr, "switchboard: --log-level: \"%s\" is not error, warn, info or debug\n", level);
		config_fini(&cfg);
		return 2;
	}
	rc = server_run(&cfg, -1);
	config_fini(&cfg);
	return rc;
}
