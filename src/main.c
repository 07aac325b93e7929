/*
 * main.c: process entry: `ferry push` and `ferry run` go to the client (cli.h); otherwise flags, logging, the
 * start-up log lines, then the server until shutdown.
 */
#include <stdio.h>
#include <string.h>

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "buildinfo.h"
#include "cli.h"
#include "flags.h"
#include "groupkey.h"
#include "app.h"
#include "endpoints.h"
#include "log.h"
#include "server.h"
#include "webconfig.h"

#ifndef FY_BUILD_DATE
#define FY_BUILD_DATE "unknown" /* src/CMakeLists.txt sets it: UTC, SOURCE_DATE_EPOCH if set */
#endif
#ifndef FY_TAGS
#define FY_TAGS "none"
#endif

/* Go's time.Time.String() without the monotonic part, as the reference's status page shows it. */
static void started_at(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, cap - n, ".%09ld", ts.tv_nsec);
    strftime(buf + n, cap - n, " %z %Z", &tm);
}

/* The lines of prometheus/common's version.Print, on stderr as 1.5.1 prints them; the C compiler where Go's version
 * would be (docs/compatibility.md). */
static void print_version(void)
{
    fprintf(stderr,
            "ferry, version %s (branch: %s, revision: %s)\n"
            "  build user:       %s\n"
            "  build date:       %s\n"
            "  compiler:         %s\n"
            "  platform:         %s\n"
            "  tags:             %s\n",
            FY_VERSION, FY_BRANCH, FY_REVISION, FY_BUILD_USER, FY_BUILD_DATE, FY_COMPILER, FY_PLATFORM, FY_TAGS);
}

/* The client side (docs/cli.md), for --help and the man page. */
static const fy_command_t commands[] = {
    {"push", "--gateway=URL --job=NAME [--label=NAME=VALUE]... [--add|--delete] [FILE|-]",
     "Push an exposition file to a Pushgateway or Ferry, with retries."},
    {"run", "--gateway=URL --job=NAME [--label=NAME=VALUE]... -- CMD [ARGS...]",
     "Run a batch job and push its outcome and last-success time."},
};

int main(int argc, char **argv)
{
    static fy_flags_t flags;
    char err[512];

    if (argc >= 2 && strcmp(argv[1], "push") == 0)
        return fy_cli_push_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return fy_cli_run_main(argc - 1, argv + 1);
    if (fy_flags_parse(&flags, argc, argv, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry: error: %s, try --help\n", err);
        return 1;
    }
    if (flags.help_man) { /* kingpin's --help-man writes to stdout, its other help to stderr */
        fy_man_t man = {"ferry", FY_VERSION, FY_BUILD_DATE, commands, sizeof(commands) / sizeof(commands[0])};
        fy_flags_man(stdout, &man);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (flags.help) {
        fy_flags_usage(stderr, "ferry");
        fprintf(stderr, "Commands (the client side, see docs/cli.md):\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            fprintf(stderr, "  ferry %s %s\n            %s\n", commands[i].name, commands[i].args, commands[i].help);
        fprintf(stderr, "  ferry push --help, ferry run --help  Their flags and exit codes.\n");
        return 0;
    }
    if (flags.version) {
        print_version();
        return 0;
    }
    /* SIGHUP asks for a reload (server.c's signal thread takes it): blocked before any thread exists, so that every
     * thread inherits the mask and the default action (terminate) can no longer hit one; one sent during start-up
     * waits until the signal thread runs. */
    sigset_t hup;
    sigemptyset(&hup);
    sigaddset(&hup, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &hup, NULL);
    fy_groupkey_set_limits((size_t)flags.max_grouping_labels, (size_t)flags.max_grouping_key_bytes);
    fy_groupkey_set_utf8_names(flags.enable_utf8_names);
    fy_log_setup(flags.log_level, flags.log_format);
    fy_log_info("msg", "starting ferry", "version", "(version=" FY_VERSION ", branch=" FY_BRANCH ", revision=" FY_REVISION ")");
    {
        char n[16];
        snprintf(n, sizeof(n), "%d", flags.threads);
        fy_log_info("msg", "HTTP worker threads", "threads", n, "from", flags.threads_how);
    }
    fy_webcfg_t *webcfg = NULL;
    if (flags.web_config_file[0] != '\0') {
        static fy_webcfg_err_t werr;
        if ((webcfg = fy_webcfg_load(flags.web_config_file, &werr)) == NULL) {
            fy_log_error("msg", "HTTP server stopped", "err", werr.msg);
            return 1;
        }
    }

    /* --cluster.tls-config: the peer links' two contexts, handed to replication before it starts (docs/ha.md) */
    fy_webcfg_t *clustertls = NULL;
    if (flags.cluster_tls_config != NULL && flags.cluster_tls_config[0] != '\0') {
        static fy_webcfg_err_t cerr;
        if ((clustertls = fy_webcfg_load_cluster(flags.cluster_tls_config, &cerr)) == NULL) {
            char line[16];
            snprintf(line, sizeof(line), "%u", cerr.line);
            if (cerr.line)
                fy_log_error("msg", "invalid --cluster.tls-config", "file", flags.cluster_tls_config, "key", cerr.key, "line", line,
                             "err", cerr.msg);
            else
                fy_log_error("msg", "invalid --cluster.tls-config", "file", flags.cluster_tls_config, "key", cerr.key, "err",
                             cerr.msg);
            return 1;
        }
    }

    static fy_app_t app;
    static fy_http_t http;
    static char started[96];
    started_at(started, sizeof(started));
    int init = fy_app_init(&app, &flags, FY_VERSION, FY_REVISION);
    if (init != 0 || fy_http_init(&http, &app, FY_VERSION, FY_REVISION, started) != 0) {
        if (init != -2) /* -2: the cluster configuration's error, logged */
            fy_log_error("msg", "could not set up the store", "err", "out of memory");
        return 1;
    }
    if (clustertls != NULL && app.cluster != NULL)
        fy_cluster_set_tls(app.cluster, clustertls->ssl_ctx, clustertls->client_ssl_ctx, clustertls->client_server_name);
    app.set_ready = fy_server_set_ready;
    app.durable = fy_server_release;
    app.time_out = fy_server_time_out;
    fy_handlers_t handlers = fy_http_handlers(&http);
    /* The loader and snapshot threads must not take SIGINT/SIGTERM: the server's sigwait thread does. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    if (fy_app_start(&app) != 0) {
        fy_log_error("msg", "could not start loading the persistence file");
        return 1;
    }
    int rc = fy_server_run(&flags, &handlers, webcfg); /* takes webcfg over: reloads replace it */
    fy_http_dispose(&http);
    fy_app_dispose(&app);
    if (clustertls != NULL)
        fy_webcfg_free(clustertls);
    return rc;
}
