/*
 * main.c: process entry: flags, logging, the start-up log lines, then the server until shutdown.
 */
#include <stdio.h>
#include <string.h>

#include "flags.h"
#include "log.h"
#include "server.h"

#ifndef FY_VERSION
#define FY_VERSION "0.0.0"
#endif

static void print_version(void)
{
    /* 1.5.1 prints this on stderr */
    fprintf(stderr,
            "ferry, version %s (branch: HEAD, revision: unknown)\n"
            "  build user:       ferry\n"
            "  build date:       unknown\n"
            "  compiler:         %s\n"
            "  platform:         linux\n",
            FY_VERSION, __VERSION__);
}

int main(int argc, char **argv)
{
    static fy_flags_t flags;
    char err[512];

    if (fy_flags_parse(&flags, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry: error: %s, try --help\n", err);
        return 1;
    }
    if (flags.help) {
        fy_flags_usage(stderr, "ferry");
        return 0;
    }
    if (flags.version) {
        print_version();
        return 0;
    }
    fy_log_setup(flags.log_level, flags.log_format);
    fy_log_info("msg", "starting ferry", "version", "(version=" FY_VERSION ", branch=HEAD, revision=unknown)");
    if (flags.systemd_socket || flags.web_config_file[0] != '\0') {
        fy_log_error("msg", "HTTP server stopped", "err",
                     flags.systemd_socket ? "--web.systemd-socket is not supported by ferry"
                                          : "--web.config.file (TLS, basic auth) is not supported by ferry yet");
        return 1;
    }

    /* no persistence yet: ready at once */
    fy_server_set_ready(1);
    return fy_server_run(&flags, &fy_stub_handlers);
}
