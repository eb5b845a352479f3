/*
 * What mod_clinic knows of one request across Apache's phases: the module's
 * one r->request_config slot (clinic_rstate_t, clinic.h), made on first use
 * by whichever phase asks first. The bottom of the request layer: every
 * other file may use it, it uses none of them.
 */
#include "clinic.h"
#include "ap_expr.h"
#include "http_core.h"

/* The clinic handler the Location sets (SetHandler is applied only at
 * fixups, after authorization, so its expression is read here). */
int clinic_route_of(request_rec *r)
{
    core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    const char *h = r->handler, *err = NULL;

    if (core->expr_handler) {
        h = ap_expr_str_exec(r, core->expr_handler, &err);
        if (err)
            h = NULL;
    }
    if (h && !strcasecmp(h, CLINIC_HANDLER_VISITS))
        return CLINIC_ROUTE_VISITS;
    if (h && !strcasecmp(h, CLINIC_HANDLER_LINK))
        return CLINIC_ROUTE_LINK;
    return CLINIC_ROUTE_NONE;
}

clinic_rstate_t *clinic_rstate(request_rec *r)
{
    clinic_rstate_t *st = ap_get_module_config(r->request_config, &clinic_module);

    if (!st) {
        st = apr_pcalloc(r->pool, sizeof *st);
        st->route = clinic_route_of(r);
        ap_set_module_config(r->request_config, &clinic_module, st);
    }
    return st;
}
