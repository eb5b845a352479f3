/*
 * Idempotent retries (docs/API.md §9). A request with
 * `Idempotency-Key: K` claims (caller, route, K) as the first statement of
 * the route's own transaction, and stores its answer in that transaction
 * (clinic_idem_finish): the claim, the writes and the stored answer commit
 * together or not at all. A claim therefore never outlives the request that
 * made it, however that request ends (a 5xx, a killed worker, a database
 * that failed over before COMMIT). A concurrent duplicate's INSERT waits on
 * the uncommitted key row until the first transaction ends (milliseconds),
 * then replays its answer, or takes the key when it rolled back. A row
 * committed while still unanswered (only a node of an earlier version
 * writes those) is "in progress" for ABANDONED_AFTER seconds. Keys live in
 * the database, so a retry that lands on another node of a farm is caught.
 */
#include <openssl/evp.h>

#include "clinic.h"
#include "datetime.h"
#include "db.h"
#include "idempotency.h"
#include "metrics.h"
#include "http_protocol.h"

#define ABANDONED_AFTER 60   /* seconds an unfinished claim is honoured */

static const char *iso_seconds(apr_pool_t *p, apr_time_t t)
{
    char *buf = apr_palloc(p, CLINIC_ISO_MAX);

    clinic_format_iso((clinic_time_t)apr_time_sec(t) * 1000000, 0, buf);
    return buf;
}

static const char *fingerprint(request_rec *r, const char *route, const char *body,
                               apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    char *out;

    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
        !EVP_DigestUpdate(ctx, route, strlen(route) + 1) ||
        !EVP_DigestUpdate(ctx, r->args ? r->args : "", (r->args ? strlen(r->args) : 0) + 1) ||
        !EVP_DigestUpdate(ctx, body, len) || !EVP_DigestFinal_ex(ctx, md, &n)) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    EVP_MD_CTX_free(ctx);
    out = apr_palloc(r->pool, 2 * n + 1);
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

int clinic_idem_prepare(clinic_req_t *c, clinic_idem_t *k, const char *route,
                        const char *caller)
{
    const char *key = apr_table_get(c->r->headers_in, "Idempotency-Key");
    size_t i, n;

    memset(k, 0, sizeof *k);
    if (!key)
        return CLINIC_GO;
    n = strlen(key);
    for (i = 0; i < n && key[i] >= 0x21 && key[i] <= 0x7E; i++)
        ;
    if (n == 0 || n > 255 || i != n)
        return clinic_fail(c, HTTP_BAD_REQUEST, "INVALID_IDEMPOTENCY_KEY",
                           "Idempotency-Key must be 1 to 255 visible ASCII characters.");
    k->key = key;
    k->route = route;
    k->caller = caller;
    k->fp = fingerprint(c->r, route, c->body, c->body_len);
    if (!k->fp)
        return clinic_fail_internal(c, "cannot hash the request");
    k->now = iso_seconds(c->r->pool, c->r->request_time);
    k->expires = iso_seconds(c->r->pool, c->r->request_time +
                                         apr_time_from_sec(CLINIC_IDEM_TTL(c->conf)));
    return CLINIC_GO;
}

static int read_row(clinic_db_t *db, const clinic_idem_t *k, clinic_idem_row_t *row, int *found)
{
    const char *args[3] = {k->caller, k->route, k->key};
    apr_dbd_results_t *res;
    apr_dbd_row_t *r;
    int rc = clinic_db_select(db, CLINIC_SQL_IDEM_GET, args, &res);

    *found = 0;
    if (rc != CLINIC_DB_OK)
        return rc;
    if (clinic_db_row(db, res, &r) == CLINIC_DB_OK) {
        *found = 1;
        row->fp = clinic_db_col(db, r, 0);
        row->status = clinic_db_col(db, r, 1);
        row->body = clinic_db_col(db, r, 2);
        row->created = clinic_db_col(db, r, 3);
        row->expires = clinic_db_col(db, r, 4);
    }
    return CLINIC_DB_OK;
}

static int before(const char *stored, apr_time_t t)
{
    clinic_time_t v;

    return stored && clinic_parse_db_timestamp(stored, &v) == 0 && v < (clinic_time_t)t;
}

/* Claim an expired key, or one whose first request was abandoned, if no
 * other request claims it first (compare-and-swap on created_at). */
static int take_over(clinic_db_t *db, const clinic_idem_t *k, const clinic_idem_row_t *row, int *won)
{
    const char *args[7] = {k->fp, k->now, k->expires, k->caller, k->route, k->key,
                           row->created};

    return clinic_db_exec(db, CLINIC_SQL_IDEM_TAKEOVER, args, won);
}

int clinic_idem_claim(clinic_db_t *db, clinic_idem_t *k)
{
    const char *args[6] = {k->caller, k->route, k->key, k->fp, k->now, k->expires};
    apr_time_t now = db->r->request_time;
    clinic_idem_row_t *row = &k->row;
    int rc, n, found, attempt;

    k->active = 0;
    k->verdict = CLINIC_KEY_NEW;
    if (!k->key)
        return CLINIC_DB_OK;
    for (attempt = 0; attempt < 2; attempt++) {
        if ((rc = clinic_db_exec(db, CLINIC_SQL_IDEM_CLAIM, args, &n)) != CLINIC_DB_OK)
            return rc;
        if (n == 1) {
            k->active = 1;
            return CLINIC_DB_OK;
        }
        if ((rc = read_row(db, k, row, &found)) != CLINIC_DB_OK)
            return rc;
        if (!found)
            continue;          /* deleted meanwhile: claim again */
        if (before(row->expires, now) ||
            (!row->status && before(row->created, now - apr_time_from_sec(ABANDONED_AFTER)))) {
            if ((rc = take_over(db, k, row, &n)) != CLINIC_DB_OK)
                return rc;
            if (n == 1) {
                k->active = 1;
                return CLINIC_DB_OK;
            }
            continue;
        }
        if (!row->fp || strcmp(row->fp, k->fp) != 0)
            k->verdict = CLINIC_KEY_REUSED;
        else
            k->verdict = row->status ? CLINIC_KEY_REPLAY : CLINIC_KEY_BUSY;
        return CLINIC_DB_OK;
    }
    k->verdict = CLINIC_KEY_BUSY;
    return CLINIC_DB_OK;
}

int clinic_idem_begin(clinic_db_t *db, clinic_idem_t *k)
{
    int rc;

    if (k->key && (rc = clinic_db_begin(db)) != CLINIC_DB_OK)
        return rc;
    if ((rc = clinic_idem_claim(db, k)) != CLINIC_DB_OK)
        return rc;
    return k->verdict == CLINIC_KEY_NEW ? CLINIC_DB_OK : clinic_db_end(db, 1);
}

int clinic_idem_answer(clinic_req_t *c, const clinic_idem_t *k)
{
    int drf = c->shape == CLINIC_SHAPE_DRF;
    const char *body;

    switch (k->verdict) {
    case CLINIC_KEY_REPLAY:
        clinic_metric_idem(c->r, CLINIC_IDEM_REPLAYED);
        apr_table_setn(c->r->headers_out, "Idempotent-Replayed", "true");
        c->outcome = drf ? "replayed" : "REPLAYED";
        body = k->row.body ? k->row.body : "";
        clinic_audit_replayed(c, body);
        return clinic_send_text(c, atoi(k->row.status), body);
    case CLINIC_KEY_REUSED:
        clinic_metric_idem(c->r, CLINIC_IDEM_KEY_REUSED);
        return clinic_fail(c, HTTP_UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED",
                           drf ? "Idempotency-Key reused with a different request."
                               : "Idempotency-Key reused with a different request");
    default:
        clinic_metric_idem(c->r, CLINIC_IDEM_IN_PROGRESS);
        return clinic_fail(c, HTTP_CONFLICT, "IDEMPOTENCY_KEY_IN_PROGRESS",
                           drf ? "A request with this Idempotency-Key is in progress."
                               : "A request with this Idempotency-Key is in progress");
    }
}

int clinic_idem_finish(clinic_db_t *db, clinic_idem_t *k, int status, const char *body)
{
    char st[8];
    const char *args[5] = {st, body, k->caller, k->route, k->key};
    int n;

    if (!k->active)
        return CLINIC_DB_OK;
    apr_snprintf(st, sizeof st, "%d", status);
    clinic_metric_idem(db->r, CLINIC_IDEM_STORED);
    return clinic_db_exec(db, CLINIC_SQL_IDEM_FINISH, args, &n);
}
