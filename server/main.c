/* main.c: command line -> configuration -> server_run(). */
#include "config.h"
#include "server.h"

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
		"Real-time messaging server: WebSocket (/ws) and HTTP (/api/v1/, /healthz, "
		"/metrics)\n"
		"on one port.\n"
		"Without a configuration it runs on the embedded defaults: memory engine, port\n"
		"8080, anonymous access.\n"
		"\n"
		"  -c, --config FILE        JSON configuration (docs/configuration.md);\n"
		"                           also SWITCHBOARD_CONFIG\n"
		"  -p, --port N             port to listen on (0: any free port); "
		"SWITCHBOARD_PORT\n"
		"  -H, --host ADDR          address or host name to listen on (default: every\n"
		"                           interface); SWITCHBOARD_HOST\n"
		"  -l, --log-level LEVEL    error | warn | info | debug (default info);\n"
		"                           SWITCHBOARD_LOG_LEVEL\n"
		"      --log-format FORMAT  text | json (one JSON object a line);\n"
		"                           SWITCHBOARD_LOG_FORMAT\n"
		"      --check-config FILE  validate FILE, print the effective configuration\n"
		"                           (secrets masked) and exit 0, or 2 if it is invalid\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               print this help and exit\n"
		"\n"
		"Options override the environment, which overrides the file.\n"
		"Signals: SIGTERM or SIGINT drains (drain_period seconds), a second one stops at\n"
		"once; SIGHUP reloads the configuration file.\n"
		"Exit status: 0 after a signal, 1 if the server could not start, 2 for a bad\n"
		"command line or configuration.\n");
}

/* The effective configuration of path (NULL: none) under ov, with the webhooks
 * entries checked too (the core keeps them unread), and the files it names (the JWT
 * public key, the TLS certificate and key) loaded once: a bad file is a configuration
 * error (exit 2) named by its key, not a failure to start. Errors are printed. */
static int
load(struct config *cfg, const char *path, const struct config_overrides *ov)
{
	char err[512];

	if (config_load_effective(cfg, path, ov, err, sizeof(err)) != 0) {
		fprintf(stderr, "switchboard: configuration error: %s\n", err);
		return -1;
	}
	if (server_config_check(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "switchboard: configuration error: %s%s%s\n",
			path != NULL ? path : "", path != NULL ? ": " : "", err);
		return -1;
	}
	return 0;
}

/* The listen host, as a start resolves it (a start exits 1 on failure): a host that
 * cannot be listened on is an error of the configuration being checked. */
static int
check_host(const struct config *cfg, const char *path)
{
	char addr[256], err[512];

	if (cfg->host == NULL ||
	    server_resolve_host(cfg->host, addr, sizeof(addr), err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "switchboard: configuration error: %s: %s\n", path, err);
	return -1;
}

/* --check-config: the effective configuration, secrets masked, on stdout. */
static int
check_config(const char *path, const struct config_overrides *ov)
{
	struct config cfg;
	json_t *o;
	int rc = 2;

	if (load(&cfg, path, ov) == 0 && check_host(&cfg, path) == 0) {
		o = config_to_json(&cfg, true);
		if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0) {
			printf("\n");
			fprintf(stderr, "switchboard: %s: configuration OK\n", path);
			rc = 0;
		}
		json_decref(o);
	}
	config_fini(&cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	enum { OPT_LOG_FORMAT = 256, OPT_CHECK_CONFIG };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "check-config", required_argument, NULL, OPT_CHECK_CONFIG },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config_overrides ov = { .port = -1 };
	const char *config_path = NULL, *check_path = NULL, *port = NULL;
	int opt, rc;
	struct config cfg;

	while ((opt = getopt_long(argc, argv, "c:p:H:l:Vh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'p':
			port = optarg;
			break;
		case 'H':
			ov.host = optarg;
			break;
		case 'l':
			ov.log_level = optarg;
			break;
		case OPT_LOG_FORMAT:
			ov.log_format = optarg;
			break;
		case OPT_CHECK_CONFIG:
			check_path = optarg;
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
	if (port != NULL) {
		char *end;
		long v = strtol(port, &end, 10);

		if (*port == '\0' || *end != '\0' || v < 0 || v > 65535) {
			fprintf(stderr,
				"switchboard: --port: \"%s\" is not a port number (0-65535)\n",
				port);
			return 2;
		}
		ov.port = (int)v;
	}
	if (check_path != NULL)
		return check_config(check_path, &ov);
	if (config_path == NULL && getenv("SWITCHBOARD_CONFIG") != NULL &&
	    getenv("SWITCHBOARD_CONFIG")[0] != '\0')
		config_path = getenv("SWITCHBOARD_CONFIG");
	if (load(&cfg, config_path, &ov) != 0) {
		config_fini(&cfg);
		return 2;
	}
	rc = server_run(&cfg, -1);
	config_fini(&cfg);
	return rc;
}
