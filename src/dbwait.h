/*
 * Every wait on the database bounded (docs/API.md §8, docs/operations.md "Every wait
 * bounded"): the deadline of one request's database work, the gate in
 * front of mod_dbd's pool and the watchdog that cuts an overdue statement.
 *
 * Return convention: clinic_wait_enter answers CLINIC_WAIT_*; the others
 * 0/1 as their comments say. This layer knows no HTTP answer: db.c turns
 * its results into CLINIC_DB_* and logs the phase.
 */
#ifndef CLINIC_DBWAIT_H
#define CLINIC_DBWAIT_H

#include "httpd.h"
#include "http_config.h"

#define CLINIC_DEFAULT_DB_TIMEOUT 10

/* Where a request's deadline ran out (clinic_db_deadline_expired_total{phase}). */
typedef enum {
    CLINIC_PHASE_POOL,        /* waiting for a pooled connection */
    CLINIC_PHASE_CONNECT,     /* opening a connection (bounded by connect_timeout) */
    CLINIC_PHASE_STATEMENT,   /* a statement, BEGIN or COMMIT */
    CLINIC_PHASE_COUNT
} clinic_phase_t;

#define CLINIC_WAIT_OK      0
#define CLINIC_WAIT_FULL    1   /* ClinicDBMaxWaiting requests wait already */
#define CLINIC_WAIT_EXPIRED 2   /* the deadline passed while waiting */
#define CLINIC_WAIT_AWAY    3   /* the database is away and another request tries it */

typedef struct clinic_wait clinic_wait_t;

/* ClinicDBTimeout (cmd->info NULL) and ClinicDBMaxWaiting (non-NULL),
 * server-wide. */
const char *clinic_wait_set(cmd_parms *cmd, void *cfg, const char *arg);
void clinic_wait_register_hooks(apr_pool_t *p);
/* check_config: the pools' sizes from mod_dbd's directives, and warnings
 * (once per start, and under configtest) when the database could take
 * every worker of a process or connect_timeout does not fit the deadline. */
int clinic_wait_check_config(apr_pool_t *p, server_rec *s);
/* A mod_dbd directive's first argument as server s runs with it (its
 * <VirtualHost>'s, else the main server's), from the configuration tree;
 * NULL when it is not set. */
const char *clinic_dbd_setting(apr_pool_t *p, server_rec *s, const char *name);
/* child_init: the gates and the watchdog thread of this process. */
void clinic_wait_child_init(apr_pool_t *p, server_rec *s);

/* The request's first database step: its deadline starts now, and it takes
 * a place at its server's gate, waiting at most until the deadline. The
 * place is given back by a cleanup of r->pool registered here, so after
 * mod_dbd's own release of a connection acquired later. */
int clinic_wait_enter(request_rec *r, clinic_wait_t **w);
/* Before the request's first database step: its deadline is at most max
 * from then (shorter than ClinicDBTimeout; the readiness check's own). */
void clinic_wait_limit(request_rec *r, apr_interval_time_t max);
/* Whether the pool of r's server is away now (see clinic_wait_result). */
int clinic_wait_away(request_rec *r);
/* PostgreSQL: whether the request's connection worked (a statement cut at
 * the deadline, a connection that cannot be opened: not). A pool whose
 * connections do not work is away: until one works again, one request at
 * a time may try it and the others get CLINIC_WAIT_AWAY at once, so that
 * no queue of connection attempts forms inside mod_dbd (its pool opens
 * connections one after another). 1 when this changed the state. */
int clinic_wait_result(clinic_wait_t *w, int ok);
/* The deadline and the time the wait started. */
apr_time_t clinic_wait_deadline(const clinic_wait_t *w);
apr_time_t clinic_wait_started(const clinic_wait_t *w);
/* The part of the deadline kept for opening a connection (DBDParams'
 * connect_timeout, once per host): waiting for the pool ends before it. */
apr_interval_time_t clinic_wait_reserve(void);
/* Pooled connections in use and requests waiting, at this gate now. */
void clinic_wait_counts(const clinic_wait_t *w, int *in_use, int *waiting, int *max);

/* A statement is about to run on socket fd (-1: no socket, SQLite): the
 * watchdog shuts the socket down at the deadline. 1 when the deadline has
 * passed already (nothing is watched then), else 0. */
int clinic_wait_arm(clinic_wait_t *w, int fd);
/* The statement returned: 1 when the watchdog cut it. */
int clinic_wait_disarm(clinic_wait_t *w);
/* The connection was opened again: the next arm watches its new socket. */
void clinic_wait_new_socket(clinic_wait_t *w);

#endif
