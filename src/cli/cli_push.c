/*
 * cli_push.c: `ferry push`, the cron job's curl line made safe: one exposition file or stdin to a grouping key, PUT,
 * POST (--add) or DELETE (--delete), with retries and an exit code that says which way it failed.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define MAX_BODY (256u << 20) /* far above any gateway's body limit; stops a runaway pipe from eating memory */

int fy_cli_slurp(FILE *f, size_t max, char **out, size_t *len)
{
    size_t cap = 64 << 10, n = 0; /* cap - 2 bytes are read into: the rest is the room the caller may use */
    char *buf = malloc(cap);
    if (buf == NULL)
        return -1;
    for (;;) {
        if (n == cap - 2) {
            char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                errno = ENOMEM;
                return -1;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 2 - n, f);
        n += got;
        if (n > max) {
            free(buf);
            errno = EFBIG;
            return -1;
        }
        if (got == 0) {
            if (ferror(f)) {
                int e = errno;
                free(buf);
                errno = e;
                return -1;
            }
            break;
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

int fy_cli_push_main(int argc, char **argv)
{
    static fy_cli_push_opts_t o;
    char err[FY_CLI_ERR_MAX];
    char *body = NULL, *url = NULL;
    size_t len = 0;
    int code = FY_CLI_USAGE;

    if (fy_cli_push_parse(&o, argc, argv, environ, err, sizeof(err)) != 0) {
        fprintf(stderr, "ferry push: %s (see ferry push --help)\n", err);
        return FY_CLI_USAGE;
    }
    if (o.help) {
        fy_cli_push_usage(stdout);
        return FY_CLI_OK;
    }
    size_t ulen = fy_cli_url(&o.t, NULL, 0);
    if ((url = malloc(ulen + 1)) == NULL)
        goto Exit;
    fy_cli_url(&o.t, url, ulen + 1);

    if (o.method != FY_CLI_DELETE) {
        int is_stdin = strcmp(o.file, "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(o.file, "rb");
        if (f == NULL || fy_cli_slurp(f, MAX_BODY, &body, &len) != 0) {
            fprintf(stderr, "ferry push: cannot read %s: %s\n", is_stdin ? "stdin" : o.file, strerror(errno));
            if (f != NULL && !is_stdin)
                fclose(f);
            goto Exit;
        }
        if (!is_stdin)
            fclose(f);
    }
    long status;
    code = fy_cli_send(&o.t, o.method, url, body, len, "ferry push", &status);
Exit:
    free(body);
    free(url);
    return code;
}
