/*
 * No file system work for the clinic routes (issue 13, point 3).
 *
 * For every request httpd maps the URL to a file under DocumentRoot in the
 * map_to_storage phase (core_map_to_storage): the directory walk stats each
 * directory of the path, merges the <Directory> sections that match, reads
 * .htaccess files where AllowOverride lets it, and the file walk merges
 * <Files>. The clinic handlers never touch a file, so for a request whose
 * <Location> gives it a clinic handler that phase is answered here with OK,
 * as mod_proxy does for proxied requests: httpd then re-runs the location
 * walk (its cached result) and the <If> walk over the server defaults, so
 * server-level and <Location>/<LocationMatch>/<If> settings apply, while
 * <Directory>, <Files> and .htaccess never do (docs/operations.md: "No file system
 * work").
 *
 * The per_dir_config is reset to the server defaults before map_to_storage,
 * so the choice is made at translate_name time, where it still holds the
 * location walk's result: the hook notes the URI it saw, and map_to_storage
 * skips only when the URI is still that one (a rewrite to another URL gets
 * the ordinary walk). TRACE keeps httpd's own answer.
 */
#include "clinic.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"

#define NOTE "clinic-no-storage"

/* translate_name, before every translator: note the URI of a request the
 * location walk gave a clinic handler. Always DECLINED. */
int clinic_storage_note(request_rec *r)
{
    if (!r->proxyreq && r->method_number != M_TRACE && clinic_route_of(r) != CLINIC_ROUTE_NONE)
        apr_table_setn(r->notes, NOTE, r->uri);
    return DECLINED;
}

/* map_to_storage: nothing to map for the noted request. */
int clinic_map_to_storage(request_rec *r)
{
    const char *uri = apr_table_get(r->notes, NOTE);

    if (!uri || r->proxyreq || strcmp(uri, r->uri) != 0)
        return DECLINED;
    return OK;
}
