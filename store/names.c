/*
 * names.c: the store's fixed names: the timestamp families every group carries (names and HELP texts) and the
 * type names used in exposition and in client_golang's error messages.
 */
#include "store_int.h"

const char fy__help_push[] = "Last Unix time when changing this group in the Pushgateway succeeded.";

const char fy__help_fail[] = "Last Unix time when changing this group in the Pushgateway failed.";

const fy_str_t fy__ts_names[2] = {{"push_time_seconds", 17}, {"push_failure_time_seconds", 25}};

/* The timestamp families' HELP, counted in their fams as a gfam's would be (a group's timestamps have no gfam). */
const fy_str_t fy__ts_help[2] = {{fy__help_push, sizeof(fy__help_push) - 1}, {fy__help_fail, sizeof(fy__help_fail) - 1}};

const char *fy__type_upper(int t)
{
    static const char *n[] = {"COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"};
    return t >= 0 && t <= FY_TYPE_MAX ? n[t] : "UNKNOWN";
}

const char *fy__type_lower(int t)
{
    /* gauge histograms are exposed as histograms in text 0.0.4, as newer Pushgateways do (fixes B2) */
    static const char *n[] = {"counter", "gauge", "summary", "untyped", "histogram", "histogram"};
    return t >= 0 && t <= FY_TYPE_MAX ? n[t] : "untyped";
}
