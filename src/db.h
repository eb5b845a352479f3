/*
 * Database access through mod_dbd: connections from its pool, statements
 * prepared by label on every connection, one code path for pgsql and sqlite3
 * (a few statements exist on pgsql only: SQLite runs its own steps there).
 */
#ifndef CLINIC_DB_H
#define CLINIC_DB_H

#include "clinic.h"
#include "apr_dbd.h"
#include "mod_dbd.h"
#include "dbwait.h"

typedef enum {
    CLINIC_SQL_PATIENT_GET,
    CLINIC_SQL_VISIT_INSERT,
    CLINIC_SQL_VISIT_ONE,
    CLINIC_SQL_VISIT_DELETE,
    CLINIC_SQL_PP_INSERT,
    CLINIC_SQL_APPT_LINK,
    CLINIC_SQL_APPT_GET,
    CLINIC_SQL_LINK_ONE,
    CLINIC_SQL_IDEM_CLAIM,
    CLINIC_SQL_IDEM_GET,
    CLINIC_SQL_IDEM_TAKEOVER,
    CLINIC_SQL_IDEM_FINISH,
    CLINIC_SQL_IDEM_EXPIRED,
    CLINIC_SQL_IDEM_PURGE,
    CLINIC_SQL_SCHEMA_GET,
    CLINIC_SQL_DPOP_JTI,
    CLINIC_SQL_DPOP_PURGE,
    CLINIC_SQL_COUNT
} clinic_sql_t;

/* The clinic_schema version the module's SQL needs. A new version adds
 * sql/upgrade/<pgsql|sqlite>-N.sql and raises this and the INSERT at the end
 * of both sql/schema-*.sql (docs/operations.md: Upgrading the schema). */
#define CLINIC_SCHEMA_VERSION 3

/* Expired DPoP jti rows deleted by one statement at most. */
#define CLINIC_DPOP_PURGE_BATCH 100

/* Expired Idempotency-Key rows deleted by one statement at most. */
#define CLINIC_IDEM_PURGE_BATCH 100

/* Return convention of the database layer: every clinic_db_* function that
 * runs something returns one of these, and never answers the request: the
 * route turns one into its answer with clinic_db_fail (respond.c, clinic.h). */
#define CLINIC_DB_OK    0
#define CLINIC_DB_DOWN  1    /* unreachable, overloaded, timed out: answer 503 */
#define CLINIC_DB_ERROR 2    /* anything else: answer 500 */
#define CLINIC_DB_RETRY 3    /* the connection was repaired: run the unit again */
#define CLINIC_DB_SCHEMA 4   /* the wrong database (an older schema, statements that
                              * cannot be prepared), logged once: answer 500 */
#define CLINIC_DB_NO_ROW 5   /* clinic_db_row: no row left */

typedef struct {
    request_rec *r;
    ap_dbd_t *dbd;
    int pgsql;         /* the pgsql driver (else sqlite3) */
    int in_txn;        /* inside our BEGIN */
    int retried;       /* a unit of work was already run again once */
    int repair;        /* the session lost its prepared statements */
    const char *missing;  /* the statement the server said does not exist */
    clinic_wait_t *wait;  /* the request's deadline (dbwait.h) */
    int expired;          /* the deadline ran out: no statement runs any more */
} clinic_db_t;

/* The handle lives in r->pool (a cleanup refers to it). A session used for
 * the first time has its statements prepared and the schema version checked
 * here; CLINIC_DB_SCHEMA when the database is the wrong one. */
int clinic_db_acquire(request_rec *r, clinic_db_t **db);
/* The request's handle once clinic_db_acquire gave it one with its
 * statements ready (for work after the answer), else NULL. */
clinic_db_t *clinic_db_of(request_rec *r);
/* Run a statement returning rows; args has the statement's argument count
 * (NULL entries are SQL NULL). */
int clinic_db_select(clinic_db_t *db, clinic_sql_t q, const char **args,
                     apr_dbd_results_t **res);
int clinic_db_exec(clinic_db_t *db, clinic_sql_t q, const char **args, int *nrows);
/* Next row: CLINIC_DB_OK with *row set, or CLINIC_DB_NO_ROW. */
int clinic_db_row(clinic_db_t *db, apr_dbd_results_t *res, apr_dbd_row_t **row);
/* A column's text, NULL for SQL NULL. */
const char *clinic_db_col(clinic_db_t *db, apr_dbd_row_t *row, int col);

int clinic_db_begin(clinic_db_t *db);
/* Commit, or roll back when rollback is set. */
int clinic_db_end(clinic_db_t *db, int rollback);
/* Inside a transaction: take the savepoint, or roll back to it. */
int clinic_db_savepoint(clinic_db_t *db, int rollback_to);

/* Run one unit of work; when it answers CLINIC_DB_RETRY (a stale pooled
 * connection was reset and lost its prepared statements, and nothing can
 * have been written), roll back, re-prepare and run it once more. */
int clinic_db_run(clinic_db_t *db, int (*work)(clinic_db_t *db, void *arg), void *arg);

#endif
