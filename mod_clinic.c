/*
 * mod_clinic: a hospital's patient API inside Apache httpd.
 *
 * This file is the module record and the hooks only: the configuration
 * (directives, create/merge, the start-up check) is src/config.c's, the
 * logic lives in src/, one file per concern, and src/core/ is the part that
 * needs no httpd.
 */
#define CLINIC_MAIN_FILE
#include "src/clinic.h"
#include "src/core/objectid.h"
#include "src/metrics.h"
#include "src/dbwait.h"
#include "http_protocol.h"
#include "http_request.h"

#include <errno.h>

/* ---- hooks ---- */

static int clinic_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    int found = 0, rc;

    (void)plog;
    (void)ptemp;
    if ((rc = clinic_config_check(pconf, s, &found)) != OK)
        return rc;
    if ((rc = clinic_db_init(s, found)) != OK)
        return rc;
    return clinic_wait_check_config(pconf, s);
}

static int clinic_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s)
{
    (void)plog;
    (void)ptemp;
    return clinic_remote_post_config(pconf, s);
}

/* ObjectIds need randomness of their own in every child process. */
static void clinic_child_init(apr_pool_t *p, server_rec *s)
{
    (void)p;
    if (clinic_objectid_init() != 0)
        clinic_slog(s, APLOG_CRIT, errno, "no randomness for ObjectIds");
    clinic_remote_child_init(p, s);
    clinic_wait_child_init(p, s);
}

static int clinic_handler(request_rec *r)
{
    if (!r->handler)
        return DECLINED;
    if (!strcmp(r->handler, CLINIC_HANDLER_VISITS)) {
        clinic_metric_begin(r);
        return clinic_metric_end(r, 0, clinic_visits_handle(r));
    }
    if (!strcmp(r->handler, CLINIC_HANDLER_LINK)) {
        clinic_metric_begin(r);
        return clinic_metric_end(r, 1, clinic_link_handle(r));
    }
    return DECLINED;
}

static void clinic_register_hooks(apr_pool_t *p)
{
    ap_hook_check_config(clinic_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(clinic_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(clinic_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(clinic_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_header_parser(clinic_cors_early, NULL, NULL, APR_HOOK_MIDDLE);
    clinic_metrics_register_hooks(p);
    clinic_wait_register_hooks(p);
    clinic_health_register(p);
    clinic_authz_register(p);
    clinic_audit_register(p);
    /* after mod_log_config, so that purging is not counted in %D */
    ap_hook_log_transaction(clinic_idem_purge, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_translate_name(clinic_storage_note, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_map_to_storage(clinic_map_to_storage, NULL, NULL, APR_HOOK_FIRST);
}

AP_DECLARE_MODULE(clinic) = {
    STANDARD20_MODULE_STUFF,
    clinic_create_dir_conf,
    clinic_merge_dir_conf,
    NULL,
    NULL,
    clinic_cmds,
    clinic_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
