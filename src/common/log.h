/*
 * log.h: go-kit style structured logging (promlog): logfmt or JSON lines on stderr, filtered by --log.level.
 *   ts=2026-11-25T11:56:25.267Z caller=main.c:85 level=info msg="starting ferry" version=0.1.0
 */
#ifndef FY_LOG_H
#define FY_LOG_H

typedef enum en_fy_log_level_t { FY_LOG_DEBUG = 0, FY_LOG_INFO, FY_LOG_WARN, FY_LOG_ERROR } fy_log_level_t;

/** level: "debug", "info", "warn", "error"; format: "logfmt", "json". Returns -1 for an unknown value. */
int fy_log_setup(const char *level, const char *format);

int fy_log_enabled(fy_log_level_t level);

/** Key/value string pairs ending with NULL; one write(2) per line, so lines from threads never interleave. */
void fy__log(fy_log_level_t level, const char *file, int line, ...) __attribute__((sentinel));

#define fy_log(level, ...) fy__log(level, __FILE__, __LINE__, __VA_ARGS__, (const char *)NULL)
#define fy_log_debug(...) fy_log(FY_LOG_DEBUG, __VA_ARGS__)
#define fy_log_info(...) fy_log(FY_LOG_INFO, __VA_ARGS__)
#define fy_log_warn(...) fy_log(FY_LOG_WARN, __VA_ARGS__)
#define fy_log_error(...) fy_log(FY_LOG_ERROR, __VA_ARGS__)

#endif
