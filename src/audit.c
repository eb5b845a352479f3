/*
 * The audit trail: a request id that travels with every clinic request, and
 * request notes that mod_log_config writes with `%{clinic-...}n` (see the
 * clinic_audit LogFormat in conf/clinic.conf). Notes hold ids and short
 * words only: never a name, a body or a token.
 *
 * The request id is the server's own: mod_unique_id's UNIQUE_ID when that
 * module is loaded, else an ObjectId made here, never a value the client
 * chose (a client could give all its requests one id, or reuse another's).
 * It becomes the request's log id (r->log_id, `%L` in ErrorLogFormat, as
 * mod_unique_id's would) and the audit line's id. The client's X-Request-Id,
 * when it is sane (1-128 characters 0x21-0x7E), is a note of its own (the
 * audit line's client_request_id) and is echoed in the X-Request-Id header
 * of every answer; without one the answer carries the server's id
 * (err_headers_out, so Apache's own error answers carry it too).
 */
#include "clinic.h"
#include "objectid.h"
#include "http_request.h"

#define REQUEST_ID_MAX 128

static int request_id_sane(const char *s)
{
    size_t n;

    if (!s)
        return 0;
    for (n = 0; s[n]; n++)
        if (n == REQUEST_ID_MAX || (unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7E)
            return 0;
    return n > 0;
}

static const char *make_request_id(request_rec *r)
{
    char *id = apr_palloc(r->pool, CLINIC_OBJECTID_LEN + 1);

    if (clinic_objectid_new((uint32_t)apr_time_sec(r->request_time), id) == 0)
        return id;
    /* no randomness in this process (child_init said so): unique per server */
    return apr_psprintf(r->pool, "%" APR_TIME_T_FMT "-%ld", r->request_time,
                        r->connection->id);
}

/* header_parser, after the Location is known and mod_setenvif has run. */
static int audit_begin(request_rec *r)
{
    clinic_rstate_t *st = clinic_rstate(r);
    const char *id, *client;

    if (!st->route)
        return DECLINED;
    id = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    if (!request_id_sane(id))
        id = make_request_id(r);
    client = apr_table_get(r->headers_in, "X-Request-Id");
    if (!request_id_sane(client))
        client = NULL;
    r->log_id = id;
    apr_table_setn(r->notes, CLINIC_NOTE_REQUEST_ID, id);
    if (client)
        apr_table_setn(r->notes, CLINIC_NOTE_CLIENT_REQUEST_ID, client);
    apr_table_setn(r->notes, CLINIC_NOTE_ROUTE,
                   st->route == CLINIC_ROUTE_LINK ? "add_and_link" : "visits");
    apr_table_setn(r->err_headers_out, "X-Request-Id", client ? client : id);
    return DECLINED;
}

void clinic_audit_record(request_rec *r, const char *note, const char *id)
{
    if (id)
        apr_table_set(r->notes, note, id);
}

void clinic_audit_replayed(clinic_req_t *c, const char *text)
{
    request_rec *r = c->r;
    json_t *v = clinic_json_pool(r->pool, json_loads(text, 0, NULL)), *id;
    char buf[32];

    if (c->shape == CLINIC_SHAPE_DRF) {
        json_t *visit = json_array_get(v, 0);
        json_t *pk = json_object_get(json_object_get(visit, "patient"), "pk");
        if (json_is_integer(id = json_object_get(visit, "id"))) {
            apr_snprintf(buf, sizeof buf, "%" APR_INT64_T_FMT, (apr_int64_t)json_integer_value(id));
            clinic_audit_record(r, CLINIC_NOTE_VISIT, buf);
        }
        if (json_is_integer(pk)) {
            apr_snprintf(buf, sizeof buf, "%" APR_INT64_T_FMT, (apr_int64_t)json_integer_value(pk));
            clinic_audit_record(r, CLINIC_NOTE_PATIENT, buf);
        }
    }
    else if (json_is_string(id = json_object_get(json_object_get(v, "data"), "_id")))
        clinic_audit_record(r, CLINIC_NOTE_PATIENT, json_string_value(id));
}

void clinic_audit_register(apr_pool_t *p)
{
    (void)p;
    ap_hook_header_parser(audit_begin, NULL, NULL, APR_HOOK_LAST);
}
