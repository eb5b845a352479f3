/*
 * Expired Idempotency-Key rows go away by themselves (docs/operations.md: Idempotent
 * retries). After a request's answer has been sent (log_transaction), on
 * the database session the request used: a cheap read first (is anything
 * expired?), then at most one DELETE of CLINIC_IDEM_PURGE_BATCH rows picked
 * through the expires_at index, committed on its own, so no lock is held
 * for long. One purge at a time per process, every PURGE_INTERVAL seconds,
 * or again on the next request while full batches show a backlog.
 */
#include "clinic.h"
#include "datetime.h"
#include "db.h"
#include "apr_atomic.h"

#define PURGE_INTERVAL 5

static apr_uint32_t next_due;   /* apr_time_sec() of the next purge */
static apr_uint32_t running;

int clinic_idem_purge(request_rec *r)
{
    apr_uint32_t now = (apr_uint32_t)apr_time_sec(apr_time_now());
    char when[CLINIC_ISO_MAX];
    const char *args[2] = {when, when};
    apr_dbd_results_t *res;
    apr_dbd_row_t *row;
    clinic_db_t *db;
    int n = 0;

    if (now < apr_atomic_read32(&next_due) || r->status >= 500 ||
        !(db = clinic_db_of(r)) || db->in_txn || apr_atomic_cas32(&running, 1, 0) != 0)
        return DECLINED;
    clinic_format_iso((clinic_time_t)now * 1000000, 0, when);
    if (clinic_db_select(db, CLINIC_SQL_IDEM_EXPIRED, args, &res) == CLINIC_DB_OK &&
        clinic_db_row(db, res, &row) == CLINIC_DB_OK &&
        clinic_db_exec(db, CLINIC_SQL_IDEM_PURGE, args, &n) == CLINIC_DB_OK)
        clinic_debug(r,
                     "%d expired Idempotency-Key rows deleted", n);
    apr_atomic_set32(&next_due, n >= CLINIC_IDEM_PURGE_BATCH ? now : now + PURGE_INTERVAL);
    apr_atomic_set32(&running, 0);
    return OK;
}
