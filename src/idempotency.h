/*
 * Idempotency-Key support shared by both routes (docs/API.md §9).
 * clinic_idem_prepare and clinic_idem_claim belong to the request layer
 * (CLINIC_GO or the answer given, clinic.h); clinic_idem_finish runs inside a
 * route's transaction and answers as the database layer does (CLINIC_DB_*,
 * db.h).
 */
#ifndef CLINIC_IDEMPOTENCY_H
#define CLINIC_IDEMPOTENCY_H

#include "clinic.h"
#include "db.h"

/* The stored row: its fingerprint, status (NULL while running), body, times. */
typedef struct {
    const char *fp, *status, *body, *created, *expires;
} clinic_idem_row_t;

/* What the claim found. */
enum { CLINIC_KEY_NEW, CLINIC_KEY_REPLAY, CLINIC_KEY_REUSED, CLINIC_KEY_BUSY };

typedef struct {
    const char *key;        /* NULL: the request carries no Idempotency-Key */
    const char *route, *caller, *fp;
    const char *now, *expires;
    int active;             /* this request holds the claim */
    int verdict;            /* CLINIC_KEY_*, set by clinic_idem_claim */
    clinic_idem_row_t row;           /* the stored row, when not NEW */
} clinic_idem_t;

/* Read and check the header (1-255 characters 0x21-0x7E, else 400) and
 * fingerprint the request. CLINIC_GO, or the answered 400. */
int clinic_idem_prepare(clinic_req_t *c, clinic_idem_t *k, const char *route,
                        const char *caller);
/* Claim the key: the first statement inside the route's transaction, so
 * that the claim commits or rolls back with the route's writes. Sets
 * k->verdict: NEW to handle the request (first time, or the key expired or
 * was abandoned: k->active), else the transaction is to be rolled back and
 * clinic_idem_answer gives the answer. Returns a CLINIC_DB_* outcome; no
 * SQL when the request has no key. */
int clinic_idem_claim(clinic_db_t *db, clinic_idem_t *k);
/* With a key: BEGIN and claim it, rolling back at once when the verdict is
 * not NEW; without one, nothing (the route's statements then autocommit). */
int clinic_idem_begin(clinic_db_t *db, clinic_idem_t *k);
/* Answer a verdict other than NEW: the stored answer replayed, 422 for
 * another request under the key, 409 while it runs. */
int clinic_idem_answer(clinic_req_t *c, const clinic_idem_t *k);
/* Store the answer; call inside the route's transaction. */
int clinic_idem_finish(clinic_db_t *db, clinic_idem_t *k, int status, const char *body);

#endif
