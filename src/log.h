/*
 * mod_clinic's logging layer: every line the module writes goes through
 * these macros (in the manner of mod_auth_openidc's oidc_error/oidc_debug).
 *
 *   clinic_error(r, fmt, ...)       a request's line at APLOG_ERR (likewise
 *   clinic_warn, clinic_info, clinic_debug, clinic_crit)
 *   clinic_serror(s, fmt, ...)      a server's line, outside a request: start-up,
 *   clinic_scrit, clinic_swarn,     child init, the scoreboard (s may be NULL)
 *   clinic_snotice, clinic_sinfo, clinic_sdebug
 *   clinic_rlog(r, APLOG_INFO, rv, fmt, ...)   with an apr_status_t that httpd
 *   clinic_slog(s, APLOG_ERR, rv, fmt, ...)    appends as text (errno, APR)
 *
 * The module's name comes once, from Apache's own `[clinic:LEVEL]` tag
 * (APLOG_USE_MODULE below), so that `LogLevel warn clinic:info` selects the
 * lines; messages carry no "clinic:" prefix of their own and no APLOGNO
 * number (those belong to httpd's registry). Start-up errors are logged
 * without APLOG_STARTUP so that `apachectl configtest` prints the tag too.
 *
 * Never log a token, a request body or a patient's name (docs/API.md §7);
 * a database error is logged with the driver's first line only.
 */
#ifndef CLINIC_LOG_H
#define CLINIC_LOG_H

#include "httpd.h"
#include "http_log.h"

/* mod_clinic.c's AP_DECLARE_MODULE declares it there. */
#if defined(APLOG_USE_MODULE) && !defined(CLINIC_MAIN_FILE)
APLOG_USE_MODULE(clinic);
#endif

#define clinic_rlog(r, level, rv, ...) ap_log_rerror(APLOG_MARK, (level), (rv), (r), __VA_ARGS__)
#define clinic_slog(s, level, rv, ...) ap_log_error(APLOG_MARK, (level), (rv), (s), __VA_ARGS__)

#define clinic_crit(r, ...)   clinic_rlog((r), APLOG_CRIT, 0, __VA_ARGS__)
#define clinic_error(r, ...)  clinic_rlog((r), APLOG_ERR, 0, __VA_ARGS__)
#define clinic_warn(r, ...)   clinic_rlog((r), APLOG_WARNING, 0, __VA_ARGS__)
#define clinic_info(r, ...)   clinic_rlog((r), APLOG_INFO, 0, __VA_ARGS__)
#define clinic_debug(r, ...)  clinic_rlog((r), APLOG_DEBUG, 0, __VA_ARGS__)

#define clinic_scrit(s, ...)   clinic_slog((s), APLOG_CRIT, 0, __VA_ARGS__)
#define clinic_serror(s, ...)  clinic_slog((s), APLOG_ERR, 0, __VA_ARGS__)
#define clinic_swarn(s, ...)   clinic_slog((s), APLOG_WARNING, 0, __VA_ARGS__)
#define clinic_snotice(s, ...) clinic_slog((s), APLOG_NOTICE, 0, __VA_ARGS__)
#define clinic_sinfo(s, ...)   clinic_slog((s), APLOG_INFO, 0, __VA_ARGS__)
#define clinic_sdebug(s, ...)  clinic_slog((s), APLOG_DEBUG, 0, __VA_ARGS__)

#endif
