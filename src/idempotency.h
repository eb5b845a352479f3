/*
 * Idempotency-Key support shared by both routes.
 */
#ifndef CLINIC_IDEMPOTENCY_H
#define CLINIC_IDEMPOTENCY_H

#include "clinic.h"
#include "db.h"

typedef struct {
    const char *key;        /* NULL: the request carries no Idempotency-Key */
    const char *route, *caller, *fp;
    const char *now, *expires;
    int active;             /* this request holds the claim */
} clinic_idem_t;

/* Read and check the header (1-255 characters 0x21-0x7E, else 400) and
 * fingerprint the request. CLINIC_GO, or the answered 400. */
int clinic_idem_prepare(clinic_req_t *c, clinic_idem_t *k, const char *route,
                        const char *caller);
/* Claim the key. CLINIC_GO to handle the request (first time, or the key
 * expired or was abandoned); otherwise the answer was given: the stored one
 * replayed, 422 for another request under the key, 409 while it runs. */
int clinic_idem_claim(clinic_req_t *c, clinic_db_t *db, clinic_idem_t *k);
/* Store the answer; call inside the route's transaction. */
int clinic_idem_finish(clinic_db_t *db, clinic_idem_t *k, int status, const char *body);
/* Forget the claim (5xx, or an answer that is not stored). */
void clinic_idem_release(clinic_db_t *db, clinic_idem_t *k);

#endif
