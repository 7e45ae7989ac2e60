/* tlsfile.h: the check that tls.cert and tls.key load with OpenSSL and belong together,
 * made before lws is given them (at start and on SIGHUP), so that a bad file is reported
 * by its configuration key and path instead of by lws's own lines. */
#ifndef SWITCHBOARD_TLSFILE_H
#define SWITCHBOARD_TLSFILE_H

#include <stddef.h>

/* Loads the PEM certificate chain at cert and the PEM private key at key (both borrowed)
 * into a scratch TLS context, as lws will. Returns 0, or -1 with a sentence that starts
 * with the configuration key in err: `tls.cert: cannot load "<path>": <reason>`, the same
 * for tls.key, or `tls.key: "<path>" does not match tls.cert "<path>": <reason>`. */
int tlsfile_check(const char *cert, const char *key, char *err, size_t len);

#endif
