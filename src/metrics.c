/*
 * Prometheus metrics and the mod_status section; see metrics.h for the
 * design and docs/operations.md "Metrics" for the series.
 *
 * Every label value is from a fixed table below, so the segment's size is
 * known at start-up: a label the tables do not know (an outcome word added
 * elsewhere and not listed here, an unusual status) is counted under
 * "other" and also in clinic_metrics_unlisted_total, and logged once per
 * process: nothing is dropped silently.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "clinic.h"
#include "metrics.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "http_protocol.h"
#include "http_request.h"
#include "scoreboard.h"
#include "mod_status.h"
#include "apr_shm.h"
#include "apr_optional_hooks.h"

#define NROUTES 2
static const char *const route_names[NROUTES] = {"visits", "add_and_link"};

/* Outcome words (respond.c): /visits' lower-case words, add-and-link's codes. */
static const char *const codes[] = {
    "created", "invalid", "unauthorized", "forbidden", "method_not_allowed", "in_progress",
    "too_large", "unsupported_media_type", "key_reused", "unavailable", "error", "replayed",
    "other",
    "LINKED", "REPLAYED", "AUTH_REQUIRED", "INVALID_TOKEN", "UNSUPPORTED_MEDIA_TYPE",
    "BODY_TOO_LARGE", "INVALID_JSON", "MISSING_APPOINTMENT_ID", "MISSING_DOCTOR_ID",
    "MISSING_PATIENT_FIELDS", "INVALID_FIELD", "INVALID_IDEMPOTENCY_KEY", "UID_MISMATCH",
    "APPOINTMENT_NOT_FOUND", "NOT_APPOINTMENT_OWNER", "APPOINTMENT_ALREADY_LINKED",
    "IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_PROGRESS", "DATABASE_UNAVAILABLE",
    "KEYS_UNAVAILABLE", "INVALID_DPOP_PROOF",
    "METHOD_NOT_ALLOWED", "INTERNAL_ERROR", "OTHER",
};
#define NCODES (sizeof codes / sizeof codes[0])
#define CODE_OTHER_VISITS 12
#define CODE_OTHER_LINK (NCODES - 1)

/* Statuses with a label of their own; the last entry is "other". */
static const int statuses[] = {200, 400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 422,
                               500, 503, 0};
#define NSTATUS (sizeof statuses / sizeof statuses[0])

/* Histogram upper bounds, 1 ms to 10 s (microseconds and as printed). */
static const apr_int64_t bound_us[] = {1000, 2500, 5000, 10000, 25000, 50000, 100000,
                                       250000, 500000, 1000000, 2500000, 5000000, 10000000};
static const char *const bound_txt[] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                        "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"};
#define NBOUNDS (sizeof bound_us / sizeof bound_us[0])
#define NBUCKETS (NBOUNDS + 1)

static const char *const dberr_names[CLINIC_DBERR_COUNT] = {"unavailable", "timeout",
                                                            "repaired_session", "other"};
static const char *const idem_names[CLINIC_IDEM_COUNT] = {"stored", "replayed",
                                                          "in_progress", "key_reused"};

/* Token results: labels first; then the verifier's reason strings (token.c)
 * and the label each maps to. */
static const char *const tok_names[] = {
    "ok", "cache_hit", "missing", "too_long", "malformed", "algorithm", "unknown_key",
    "signature", "bad_time_claims", "expired", "not_yet_valid", "issuer", "audience",
    "dpop_proof", "binding", "other",
};
#define NTOK (sizeof tok_names / sizeof tok_names[0])
#define TOK_OTHER (NTOK - 1)
static const struct {
    const char *why;
    const char *label;
} tok_reasons[] = {
    {"token too long", "too_long"}, {"not three segments", "malformed"},
    {"bad character", "malformed"}, {"bad header", "malformed"},
    {"header has crit or b64 (unsupported extension)", "malformed"},
    {"claims are not one JSON object", "malformed"}, {"algorithm mismatch", "algorithm"},
    {"no key configured", "unknown_key"}, {"unknown kid", "unknown_key"},
    {"no kid and not exactly one key fits", "unknown_key"},
    {"signature or encoding invalid", "signature"}, {"no exp", "bad_time_claims"},
    {"exp is not an integer", "bad_time_claims"},
    {"nbf or iat is not an integer", "bad_time_claims"}, {"expired", "expired"},
    {"not yet valid (nbf)", "not_yet_valid"}, {"issued in the future (iat)", "not_yet_valid"},
    {"wrong iss", "issuer"}, {"wrong aud", "audience"},
};

#define NPHASES 3
static const char *const phase_names[NPHASES] = {"pool", "connect", "statement"};

/* One slot's counters; every field only ever grows, by atomic adds. */
typedef struct {
    apr_uint64_t req[NROUTES][NCODES][NSTATUS];
    apr_uint64_t dur[NROUTES][NBUCKETS];      /* per bucket, not cumulative */
    apr_uint64_t dur_us[NROUTES];
    apr_uint64_t db[NROUTES][NBUCKETS];
    apr_uint64_t db_us[NROUTES];
    apr_uint64_t dberr[CLINIC_DBERR_COUNT];
    apr_uint64_t tok[NTOK];
    apr_uint64_t idem[CLINIC_IDEM_COUNT];
    apr_uint64_t unlisted;
    apr_uint64_t poolwait[NBUCKETS];
    apr_uint64_t poolwait_us;
    apr_uint64_t refused;
    apr_uint64_t expired[NPHASES];
} block_t;

#define MAX_KEYSETS 16
#define KEYSET_URL 256
typedef struct {
    apr_uint32_t state;                 /* 0 free, 1 being claimed, 2 in use */
    char url[KEYSET_URL];
    apr_uint64_t last_ok;               /* seconds since the epoch, 0 never */
    apr_uint64_t keys;
    apr_uint64_t failures;
} keyset_t;

#define MAX_PROCS 64

/* One process's pool, as it is now (0 pid: a free entry). */
typedef struct {
    apr_int64_t pid;
    apr_int64_t in_use;
    apr_int64_t waiting;
    apr_int64_t max;
    apr_int64_t ready;                  /* the last readiness answer: 1, 0; -1 none yet */
    apr_int64_t checks[CLINIC_CHECK_COUNT];   /* each check's result then: 1, 0, -1 */
} proc_t;

const char *const clinic_check_names[CLINIC_CHECK_COUNT] = {"database", "schema", "keys",
                                                            "running"};

typedef struct {
    apr_uint64_t layout;                /* sizes this build expects */
    apr_uint64_t nslots;
    apr_uint64_t zeroed_at;             /* microseconds: the last full start */
    apr_uint32_t ks_lock;
    keyset_t ks[MAX_KEYSETS];
    proc_t procs[MAX_PROCS];
} header_t;

#define ALIGN64(n) (((n) + 63) & ~(apr_size_t)63)
#define LAYOUT ((apr_uint64_t)sizeof(block_t) << 32 | sizeof(header_t))
#define MAX_SLOTS 64
#define SHM_KEY "clinic-metrics-shm"

static int metrics_off;                 /* ClinicMetrics off */
static header_t *hdr;                   /* NULL: no metrics in this process */
static block_t *blocks;
static block_t *mine;                   /* this process's slot */
static int warned_unlisted;
static proc_t *my_proc;                 /* this process's entry in hdr->procs */
static int my_pool_max;                 /* its pool's size, kept for the claim */

#define ADD(field, n) __atomic_fetch_add(&(field), (apr_uint64_t)(n), __ATOMIC_RELAXED)
#define GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* ---- the segment ---- */

const char *clinic_metrics_set(cmd_parms *cmd, void *cfg, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    (void)cfg;
    if (err)
        return err;
    metrics_off = !on;
    return NULL;
}

static int clinic_metrics_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    metrics_off = 0;
    return OK;
}

static apr_size_t segment_size(apr_size_t nslots)
{
    return ALIGN64(sizeof(header_t)) + nslots * ALIGN64(sizeof(block_t));
}

static void attach(apr_shm_t *shm)
{
    char *base = apr_shm_baseaddr_get(shm);

    hdr = (header_t *)base;
    blocks = (block_t *)(base + ALIGN64(sizeof(header_t)));
    mine = NULL;
}

static block_t *slot(void)
{
    if (!mine)
        mine = (block_t *)((char *)blocks + ((apr_size_t)getpid() % hdr->nslots) *
                                                ALIGN64(sizeof(block_t)));
    return mine;
}

/* The segment is made once per server start in the process pool, which
 * outlives every configuration generation; a graceful restart finds it again
 * there and keeps its figures. Anonymous shared memory, inherited by fork:
 * no file to remove, and no child can destroy it for the others. */
static int clinic_metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                                      server_rec *s)
{
    apr_pool_t *pp = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    int limit = 0;
    apr_size_t nslots;

    (void)pconf;
    (void)plog;
    (void)ptemp;
    hdr = NULL;
    blocks = mine = NULL;
    if (metrics_off || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return OK;
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 1)
        limit = 1;
    nslots = limit > MAX_SLOTS ? MAX_SLOTS : (apr_size_t)limit;
    apr_pool_userdata_get((void **)&shm, SHM_KEY, pp);
    if (shm) {
        header_t *h = apr_shm_baseaddr_get(shm);
        if (h->layout == LAYOUT && h->nslots == nslots) {
            attach(shm);
            return OK;
        }
        clinic_swarn(s,
                     "metrics layout changed (new module build or ServerLimit): "
                     "figures start from zero");
        apr_pool_userdata_set(NULL, SHM_KEY, apr_pool_cleanup_null, pp);
        apr_shm_destroy(shm);
        shm = NULL;
    }
    rv = apr_shm_create(&shm, segment_size(nslots), NULL, pp);
    if (rv != APR_SUCCESS) {
        clinic_slog(s, APLOG_ERR, rv,
                    "cannot create %" APR_SIZE_T_FMT " bytes of anonymous shared "
                    "memory for metrics: metrics are off", segment_size(nslots));
        return OK;
    }
    memset(apr_shm_baseaddr_get(shm), 0, segment_size(nslots));
    attach(shm);
    hdr->layout = LAYOUT;
    hdr->nslots = nslots;
    hdr->zeroed_at = (apr_uint64_t)apr_time_now();
    apr_pool_userdata_set(shm, SHM_KEY, apr_pool_cleanup_null, pp);
    clinic_sdebug(s,
                  "metrics in %" APR_SIZE_T_FMT " bytes of shared memory, %"
                  APR_SIZE_T_FMT " slots", segment_size(nslots), nslots);
    return OK;
}

/* The MPM runs pre_mpm on a full start or restart only, never on a graceful
 * one: the figures start from zero there. */
static int clinic_metrics_pre_mpm(apr_pool_t *p, ap_scoreboard_e sb_type)
{
    (void)p;
    (void)sb_type;
    if (!hdr)
        return OK;
    memset(blocks, 0, (apr_size_t)hdr->nslots * ALIGN64(sizeof(block_t)));
    memset(hdr->ks, 0, sizeof hdr->ks);
    hdr->ks_lock = 0;
    hdr->zeroed_at = (apr_uint64_t)apr_time_now();
    return OK;
}

/* A process gone without giving its entry back (killed) leaves it to the next. */
static int proc_gone(apr_int64_t pid)
{
    return pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
}

static apr_status_t proc_release(void *data)
{
    proc_t *e = data;

    __atomic_store_n(&e->pid, 0, __ATOMIC_RELEASE);
    my_proc = NULL;
    return APR_SUCCESS;
}

/* This process's entry for its pool's gauges. */
static void proc_claim(apr_pool_t *p)
{
    apr_int64_t pid = getpid(), old;
    int i, j;

    my_proc = NULL;
    for (i = 0; i < MAX_PROCS && !my_proc; i++) {
        proc_t *e = &hdr->procs[i];
        old = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
        if (proc_gone(old) &&
            __atomic_compare_exchange_n(&e->pid, &old, pid, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&e->in_use, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&e->waiting, 0, __ATOMIC_RELAXED);
            __atomic_store_n(&e->max, (apr_int64_t)my_pool_max, __ATOMIC_RELAXED);
            __atomic_store_n(&e->ready, -1, __ATOMIC_RELAXED);
            for (j = 0; j < CLINIC_CHECK_COUNT; j++)
                __atomic_store_n(&e->checks[j], -1, __ATOMIC_RELAXED);
            my_proc = e;
        }
    }
    if (my_proc)
        apr_pool_cleanup_register(p, my_proc, proc_release, apr_pool_cleanup_null);
}

static void clinic_metrics_child_init(apr_pool_t *p, server_rec *s)
{
    (void)s;
    mine = NULL;
    my_proc = NULL;
    if (hdr) {
        slot();
        proc_claim(p);
    }
}

/* ---- the request path ---- */

typedef struct {
    apr_interval_time_t db_us;
    int db_used;
    int idem_stored;
    const char *outcome;
} mreq_t;

static mreq_t *mreq(request_rec *r)
{
    return hdr && r ? clinic_rstate(r)->metrics : NULL;
}

static void unlisted(request_rec *r, const char *what, const char *value)
{
    ADD(slot()->unlisted, 1);
    if (warned_unlisted)
        return;
    warned_unlisted = 1;
    if (r)
        clinic_warn(r,
                    "metrics: %s '%s' is not in the metrics tables: counted as "
                    "other (logged once per process)", what, value);
    else   /* no request at hand (token and key-set calls): the main error log */
        clinic_swarn(NULL,
                     "metrics: %s '%s' is not in the metrics tables: counted as "
                     "other (logged once per process)", what, value);
}

void clinic_metric_begin(request_rec *r)
{
    if (hdr)
        clinic_rstate(r)->metrics = apr_pcalloc(r->pool, sizeof(mreq_t));
}

void clinic_metric_outcome(request_rec *r, const char *outcome)
{
    mreq_t *m = mreq(r);

    if (m)
        m->outcome = outcome;
}

apr_time_t clinic_metric_now(void)
{
    return hdr ? apr_time_now() : 0;
}

void clinic_metric_db_time(request_rec *r, apr_time_t t0)
{
    mreq_t *m = t0 ? mreq(r) : NULL;

    if (m) {
        m->db_us += apr_time_now() - t0;
        m->db_used = 1;
    }
}

void clinic_metric_db_error(clinic_dberr_t cls)
{
    if (hdr && cls < CLINIC_DBERR_COUNT)
        ADD(slot()->dberr[cls], 1);
}

void clinic_metric_pool_max(int max)
{
    my_pool_max = max;
    if (my_proc)
        __atomic_store_n(&my_proc->max, (apr_int64_t)max, __ATOMIC_RELAXED);
}

void clinic_metric_pool_change(int in_use, int waiting)
{
    if (!my_proc)
        return;
    if (in_use)
        __atomic_fetch_add(&my_proc->in_use, (apr_int64_t)in_use, __ATOMIC_RELAXED);
    if (waiting)
        __atomic_fetch_add(&my_proc->waiting, (apr_int64_t)waiting, __ATOMIC_RELAXED);
}

void clinic_metric_ready(int ready, const int checks[CLINIC_CHECK_COUNT])
{
    int i;

    if (!my_proc)
        return;
    for (i = 0; i < CLINIC_CHECK_COUNT; i++)
        __atomic_store_n(&my_proc->checks[i], (apr_int64_t)checks[i], __ATOMIC_RELAXED);
    __atomic_store_n(&my_proc->ready, (apr_int64_t)ready, __ATOMIC_RELAXED);
}

void clinic_metric_pool_refused(void)
{
    if (hdr)
        ADD(slot()->refused, 1);
}

void clinic_metric_db_expired(int phase)
{
    if (hdr && phase >= 0 && phase < NPHASES)
        ADD(slot()->expired[phase], 1);
}

void clinic_metric_idem(request_rec *r, clinic_idem_outcome_t o)
{
    mreq_t *m = mreq(r);

    if (!hdr || o >= CLINIC_IDEM_COUNT)
        return;
    if (o == CLINIC_IDEM_STORED) {
        if (m)
            m->idem_stored = 1;   /* counted when the answer is not a 5xx */
        return;
    }
    ADD(slot()->idem[o], 1);
}

static int token_label(const char *label)
{
    size_t i;

    for (i = 0; i < NTOK; i++)
        if (!strcmp(label, tok_names[i])) {
            ADD(slot()->tok[i], 1);
            return 1;
        }
    return 0;
}

void clinic_metric_token(const char *result)
{
    size_t i;

    if (!hdr || token_label(result))   /* "ok", "cache_hit", "missing" */
        return;
    /* dpop.c's reasons: "DPoP proof: ...", "binding: ..." */
    if ((!strncmp(result, "DPoP proof", 10) && token_label("dpop_proof")) ||
        (!strncmp(result, "binding:", 8) && token_label("binding")))
        return;
    for (i = 0; i < sizeof tok_reasons / sizeof tok_reasons[0]; i++)
        if (!strcmp(result, tok_reasons[i].why) && token_label(tok_reasons[i].label))
            return;
    ADD(slot()->tok[TOK_OTHER], 1);
    unlisted(NULL, "token result", result);
}

static void observe(apr_uint64_t *buckets, apr_uint64_t *sum_us, apr_interval_time_t us)
{
    size_t i;

    if (us < 0)
        us = 0;
    for (i = 0; i < NBOUNDS && us > bound_us[i]; i++)
        ;
    ADD(buckets[i], 1);
    ADD(*sum_us, us);
}

void clinic_metric_pool_wait(apr_interval_time_t us)
{
    if (hdr)
        observe(slot()->poolwait, &slot()->poolwait_us, us);
}

int clinic_metric_end(request_rec *r, int route, int rc)
{
    mreq_t *m = mreq(r);
    size_t ci, si;
    int status = (rc == OK || rc == DONE || rc < 100 || rc > 599) ? r->status : rc;
    block_t *b;

    if (!m)
        return rc;
    b = slot();
    ci = route ? CODE_OTHER_LINK : CODE_OTHER_VISITS;
    if (m->outcome) {
        for (ci = 0; ci < NCODES && strcmp(codes[ci], m->outcome); ci++)
            ;
        if (ci == NCODES) {
            ci = route ? CODE_OTHER_LINK : CODE_OTHER_VISITS;
            unlisted(r, "outcome", m->outcome);
        }
    }
    for (si = 0; si < NSTATUS - 1 && statuses[si] != status; si++)
        ;
    if (si == NSTATUS - 1)
        unlisted(r, "status", apr_itoa(r->pool, status));
    ADD(b->req[route][ci][si], 1);
    observe(b->dur[route], &b->dur_us[route], apr_time_now() - r->request_time);
    if (m->db_used)
        observe(b->db[route], &b->db_us[route], m->db_us);
    if (m->idem_stored && status < 500)
        ADD(b->idem[CLINIC_IDEM_STORED], 1);
    return rc;
}

/* ---- key sets ---- */

void clinic_metric_keyset_fetch(const char *url, int ok, unsigned nkeys)
{
    keyset_t *k = NULL;
    apr_uint32_t zero = 0;
    int i, spins = 0;

    if (!hdr || !url)
        return;
    /* Only the key-fetching path takes this lock, never a request. */
    while (!__atomic_compare_exchange_n(&hdr->ks_lock, &zero, 1, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
        zero = 0;
        if (++spins > 10000) {
            unlisted(NULL, "key set (lock busy)", url);
            return;
        }
        sched_yield();
    }
    for (i = 0; i < MAX_KEYSETS && !k; i++)
        if (hdr->ks[i].state == 2 && !strncmp(hdr->ks[i].url, url, KEYSET_URL - 1))
            k = &hdr->ks[i];
    for (i = 0; i < MAX_KEYSETS && !k; i++)
        if (hdr->ks[i].state == 0) {
            k = &hdr->ks[i];
            apr_cpystrn(k->url, url, KEYSET_URL);
            __atomic_store_n(&k->state, 2, __ATOMIC_RELEASE);
        }
    __atomic_store_n(&hdr->ks_lock, 0, __ATOMIC_RELEASE);
    if (!k) {
        unlisted(NULL, "key set (more than 16)", url);
        return;
    }
    if (ok) {
        __atomic_store_n(&k->last_ok, (apr_uint64_t)apr_time_sec(apr_time_now()),
                         __ATOMIC_RELAXED);
        __atomic_store_n(&k->keys, (apr_uint64_t)nkeys, __ATOMIC_RELAXED);
    }
    else
        ADD(k->failures, 1);
}

/* ---- reading the figures ---- */

static block_t *sum_slots(apr_pool_t *p)
{
    block_t *t = apr_pcalloc(p, sizeof *t);
    apr_uint64_t *dst = (apr_uint64_t *)t;
    size_t n = sizeof *t / sizeof(apr_uint64_t), i, j;

    for (j = 0; j < hdr->nslots; j++) {
        apr_uint64_t *src = (apr_uint64_t *)((char *)blocks + j * ALIGN64(sizeof(block_t)));
        for (i = 0; i < n; i++)
            dst[i] += GET(src[i]);
    }
    return t;
}

/* Answers on route whose status is at least min (0: all). */
static apr_uint64_t route_count(const block_t *t, int route, int min)
{
    apr_uint64_t n = 0;
    size_t i, j;

    for (i = 0; i < NCODES; i++)
        for (j = 0; j < NSTATUS; j++)
            if (statuses[j] >= min)
                n += t->req[route][i][j];
    return n;
}

static void family(request_rec *r, const char *name, const char *type, const char *help)
{
    ap_rprintf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(request_rec *r, const char *name, apr_uint64_t b[NROUTES][NBUCKETS],
                      const apr_uint64_t *sum_us)
{
    int route;
    size_t i;

    for (route = 0; route < NROUTES; route++) {
        apr_uint64_t cum = 0;
        for (i = 0; i < NBUCKETS; i++) {
            cum += b[route][i];
            ap_rprintf(r, "%s_bucket{route=\"%s\",le=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                       route_names[route], bound_txt[i], cum);
        }
        ap_rprintf(r, "%s_sum{route=\"%s\"} %" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT "\n",
                   name, route_names[route], sum_us[route] / 1000000, sum_us[route] % 1000000);
        ap_rprintf(r, "%s_count{route=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                   route_names[route], cum);
    }
}

/* A label value in the exposition format: \, " and newline escaped. */
static const char *label_value(apr_pool_t *p, const char *v)
{
    char *out = apr_palloc(p, 2 * strlen(v) + 1), *o = out;

    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            *o++ = '\\';
        if (*v == '\n') {
            *o++ = '\\';
            *o++ = 'n';
            continue;
        }
        *o++ = *v;
    }
    *o = '\0';
    return out;
}

/* A counter family with one label, every value listed. */
static void labelled(request_rec *r, const char *name, const char *label, const char *help,
                     const char *const *values, const apr_uint64_t *counts, size_t n)
{
    size_t i;

    family(r, name, "counter", help);
    for (i = 0; i < n; i++)
        ap_rprintf(r, "%s{%s=\"%s\"} %" APR_UINT64_T_FMT "\n", name, label, values[i],
                   counts[i]);
}

/* One field of every tracked key set, labelled with its url. */
static void keysets(request_rec *r, const char *name, const char *type, const char *help,
                    size_t field)
{
    int i;

    family(r, name, type, help);
    for (i = 0; i < MAX_KEYSETS; i++)
        if (GET(hdr->ks[i].state) == 2)
            ap_rprintf(r, "%s{url=\"%s\"} %" APR_UINT64_T_FMT "\n", name,
                       label_value(r->pool, hdr->ks[i].url),
                       GET(*(apr_uint64_t *)((char *)&hdr->ks[i] + field)));
}

/* The pool's gauges, one series per serving process. */
static void pool_gauge(request_rec *r, const char *name, const char *help, size_t field)
{
    int i;

    family(r, name, "gauge", help);
    for (i = 0; i < MAX_PROCS; i++) {
        const proc_t *e = &hdr->procs[i];
        apr_int64_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
        if (!proc_gone(pid))
            ap_rprintf(r, "%s{pid=\"%" APR_INT64_T_FMT "\"} %" APR_INT64_T_FMT "\n", name, pid,
                       __atomic_load_n((const apr_int64_t *)((const char *)e + field),
                                       __ATOMIC_RELAXED));
    }
}

/* Readiness per serving process that answered a readiness probe. */
static void readiness(request_rec *r)
{
    int i, j;

    family(r, "clinic_ready", "gauge",
           "The last readiness answer of each serving process: 1 ready, 0 not ready "
           "(processes not asked yet are not listed).");
    for (i = 0; i < MAX_PROCS; i++) {
        const proc_t *e = &hdr->procs[i];
        apr_int64_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
        if (!proc_gone(pid) && GET(e->ready) >= 0)
            ap_rprintf(r, "clinic_ready{pid=\"%" APR_INT64_T_FMT "\"} %" APR_INT64_T_FMT "\n",
                       pid, GET(e->ready));
    }
    family(r, "clinic_ready_check", "gauge",
           "Each readiness check's last result per serving process: 1 ok, 0 failing "
           "(a check not made, such as the schema while the database is away, is not "
           "listed).");
    for (i = 0; i < MAX_PROCS; i++) {
        const proc_t *e = &hdr->procs[i];
        apr_int64_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
        for (j = 0; j < CLINIC_CHECK_COUNT && !proc_gone(pid); j++)
            if (GET(e->checks[j]) >= 0)
                ap_rprintf(r, "clinic_ready_check{pid=\"%" APR_INT64_T_FMT "\",check=\"%s\"} %"
                           APR_INT64_T_FMT "\n", pid, clinic_check_names[j], GET(e->checks[j]));
    }
}

static void pool(request_rec *r, const block_t *t)
{
    apr_uint64_t cum = 0;
    size_t i;

    family(r, "clinic_db_pool_wait_seconds", "histogram",
           "Time a request waited for a pooled database connection (mod_dbd's pool behind "
           "the module's gate).");
    for (i = 0; i < NBUCKETS; i++) {
        cum += t->poolwait[i];
        ap_rprintf(r, "clinic_db_pool_wait_seconds_bucket{le=\"%s\"} %" APR_UINT64_T_FMT "\n",
                   bound_txt[i], cum);
    }
    ap_rprintf(r, "clinic_db_pool_wait_seconds_sum %" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT
               "\nclinic_db_pool_wait_seconds_count %" APR_UINT64_T_FMT "\n",
               t->poolwait_us / 1000000, t->poolwait_us % 1000000, cum);
    family(r, "clinic_db_pool_refused_total", "counter",
           "Requests answered 503 at once because ClinicDBMaxWaiting requests of their "
           "process were waiting for a connection already.");
    ap_rprintf(r, "clinic_db_pool_refused_total %" APR_UINT64_T_FMT "\n", t->refused);
    labelled(r, "clinic_db_deadline_expired_total", "phase",
             "Requests whose ClinicDBTimeout ran out, by phase: pool (waiting for a "
             "connection), connect (opening one), statement.", phase_names, t->expired,
             NPHASES);
    pool_gauge(r, "clinic_db_pool_connections_in_use",
               "Pooled connections held by requests now, per serving process.",
               APR_OFFSETOF(proc_t, in_use));
    pool_gauge(r, "clinic_db_pool_waiting",
               "Requests waiting for a pooled connection now, per serving process.",
               APR_OFFSETOF(proc_t, waiting));
    pool_gauge(r, "clinic_db_pool_max",
               "Connections the process's requests may hold at once (DBDMax; 0: no pool).",
               APR_OFFSETOF(proc_t, max));
}

static void prometheus(request_rec *r, const block_t *t)
{
    int route;
    size_t c, s;

    family(r, "clinic_build_info", "gauge", "mod_clinic's version; always 1.");
    ap_rprintf(r, "clinic_build_info{version=\"%s\"} 1\n", CLINIC_VERSION);
    family(r, "clinic_metrics_start_time_seconds", "gauge",
           "When these figures started from zero: the server's last full (not graceful) "
           "start or restart.");
    ap_rprintf(r, "clinic_metrics_start_time_seconds %" APR_UINT64_T_FMT "\n",
               hdr->zeroed_at / APR_USEC_PER_SEC);
    family(r, "clinic_requests_total", "counter",
           "Answers given, by route, HTTP status and outcome code (add-and-link's code, "
           "a word on /visits).");
    for (route = 0; route < NROUTES; route++)
        for (c = 0; c < NCODES; c++)
            for (s = 0; s < NSTATUS; s++) {
                if (!t->req[route][c][s])
                    continue;
                ap_rprintf(r, "clinic_requests_total{route=\"%s\",status=\"%s\",code=\"%s\"} %"
                           APR_UINT64_T_FMT "\n", route_names[route],
                           statuses[s] ? apr_itoa(r->pool, statuses[s]) : "other", codes[c],
                           t->req[route][c][s]);
            }
    family(r, "clinic_request_duration_seconds", "histogram",
           "Time from reading the request line to the answer, by route.");
    histogram(r, "clinic_request_duration_seconds", (apr_uint64_t (*)[NBUCKETS])t->dur,
              t->dur_us);
    family(r, "clinic_db_duration_seconds", "histogram",
           "Time one request spent in database calls, by route (requests that reached the "
           "database).");
    histogram(r, "clinic_db_duration_seconds", (apr_uint64_t (*)[NBUCKETS])t->db, t->db_us);
    labelled(r, "clinic_db_errors_total", "class",
             "Failed database steps by class: unavailable, timeout, repaired_session, other.",
             dberr_names, t->dberr, CLINIC_DBERR_COUNT);
    pool(r, t);
    readiness(r);
    labelled(r, "clinic_token_verifications_total", "result",
             "Bearer-token checks by result: ok (signature verified), cache_hit, or the "
             "rejection reason.", tok_names, t->tok, NTOK);
    labelled(r, "clinic_idempotency_total", "outcome",
             "Idempotency-Key outcomes: stored, replayed, in_progress, key_reused.",
             idem_names, t->idem, CLINIC_IDEM_COUNT);
    keysets(r, "clinic_jwks_last_success_timestamp_seconds", "gauge",
            "When the key set at url was last fetched successfully (0: never).",
            APR_OFFSETOF(keyset_t, last_ok));
    keysets(r, "clinic_jwks_keys", "gauge", "Keys loaded by the last successful fetch of url.",
            APR_OFFSETOF(keyset_t, keys));
    keysets(r, "clinic_jwks_fetch_failures_total", "counter",
            "Failed fetches of the key set at url.", APR_OFFSETOF(keyset_t, failures));
    family(r, "clinic_metrics_unlisted_total", "counter",
           "Events counted under an other label because the metrics tables do not "
           "list their label (see the error log).");
    ap_rprintf(r, "clinic_metrics_unlisted_total %" APR_UINT64_T_FMT "\n", t->unlisted);
}

static int clinic_metrics_handle(request_rec *r)
{
    if (!r->handler || strcmp(r->handler, CLINIC_HANDLER_METRICS))
        return DECLINED;
    if (r->method_number != M_GET) {
        r->status = HTTP_METHOD_NOT_ALLOWED;
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rputs("Method not allowed: use GET.\n", r);
        return OK;
    }
    if (!hdr) {
        clinic_info(r,
                    "metrics asked for, but they are off (ClinicMetrics off, or "
                    "no shared memory: see the start-up log)");
        return HTTP_NOT_FOUND;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    if (r->header_only)
        return OK;
    prometheus(r, sum_slots(r->pool));
    return OK;
}

/* ---- mod_status ---- */

/* A process's last readiness answer and each check's result, in words:
 * "ready (database ok, schema ok, keys ok, running ok)"; "not asked". */
static const char *ready_text(apr_pool_t *p, const proc_t *e)
{
    static const char *const word[] = {"not known", "failing", "ok"};
    apr_int64_t ready = GET(e->ready), v;
    const char *t;
    int i;

    if (ready < 0)
        return "not asked";
    t = ready ? "ready (" : "not ready (";
    for (i = 0; i < CLINIC_CHECK_COUNT; i++) {
        v = GET(e->checks[i]);
        t = apr_pstrcat(p, t, i ? ", " : "", clinic_check_names[i], " ",
                        word[v < 0 ? 0 : v ? 2 : 1], NULL);
    }
    return apr_pstrcat(p, t, ")", NULL);
}

/* The pool and readiness in mod_status: per process now, and the
 * expiries so far. */
static void pool_status(request_rec *r, const block_t *t, int brief)
{
    static const char *const row[2] = {
        "<tr><td>%" APR_INT64_T_FMT "</td><td>%" APR_INT64_T_FMT "</td><td>%" APR_INT64_T_FMT
        "</td><td>%" APR_INT64_T_FMT "</td><td>%s</td></tr>\n",
        "ClinicDBPool%" APR_INT64_T_FMT ": %" APR_INT64_T_FMT " in use, %" APR_INT64_T_FMT
        " waiting, %" APR_INT64_T_FMT " max\nClinicReady%" APR_INT64_T_FMT ": %s\n"};
    apr_uint64_t expired = t->expired[0] + t->expired[1] + t->expired[2];
    int i;

    if (brief)
        ap_rprintf(r, "ClinicDBDeadlineExpired: %" APR_UINT64_T_FMT "\nClinicDBPoolRefused: %"
                   APR_UINT64_T_FMT "\n", expired, t->refused);
    else
        ap_rprintf(r, "<p>Database deadline expired: %" APR_UINT64_T_FMT " (pool %"
                   APR_UINT64_T_FMT ", connect %" APR_UINT64_T_FMT ", statement %"
                   APR_UINT64_T_FMT "); refused at once: %" APR_UINT64_T_FMT ".</p>\n"
                   "<table border=\"0\">\n<tr><th>pid</th><th>connections in use</th>"
                   "<th>waiting</th><th>max</th><th>ready</th></tr>\n", expired, t->expired[0],
                   t->expired[1], t->expired[2], t->refused);
    for (i = 0; i < MAX_PROCS; i++) {
        const proc_t *e = &hdr->procs[i];
        apr_int64_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
        if (proc_gone(pid))
            continue;
        if (brief)
            ap_rprintf(r, row[1], pid, GET(e->in_use), GET(e->waiting), GET(e->max), pid,
                       ready_text(r->pool, e));
        else
            ap_rprintf(r, row[0], pid, GET(e->in_use), GET(e->waiting), GET(e->max),
                       ready_text(r->pool, e));
    }
    if (!brief)
        ap_rputs("</table>\n", r);
}

static int clinic_metrics_status(request_rec *r, int flags)
{
    static const char *const names[NROUTES] = {"Visits", "Link"};
    block_t *t;
    apr_uint64_t dberr = 0, rejected = 0, n;
    int route;
    size_t i;

    if (!hdr)
        return OK;
    t = sum_slots(r->pool);
    for (i = 0; i < CLINIC_DBERR_COUNT; i++)
        dberr += t->dberr[i];
    for (i = 2; i < NTOK; i++)
        rejected += t->tok[i];
    if (flags & AP_STATUS_SHORT) {
        for (route = 0; route < NROUTES; route++) {
            n = route_count(t, route, 0);
            ap_rprintf(r, "Clinic%sRequests: %" APR_UINT64_T_FMT "\n", names[route], n);
            ap_rprintf(r, "Clinic%s5xx: %" APR_UINT64_T_FMT "\n", names[route],
                       route_count(t, route, 500));
            ap_rprintf(r, "Clinic%sMeanMs: %.3f\n", names[route],
                       n ? (double)t->dur_us[route] / 1000.0 / (double)n : 0.0);
        }
        ap_rprintf(r, "ClinicDBErrors: %" APR_UINT64_T_FMT "\n", dberr);
        ap_rprintf(r, "ClinicDBUnavailable: %" APR_UINT64_T_FMT "\n",
                   t->dberr[CLINIC_DBERR_UNAVAILABLE]);
        ap_rprintf(r, "ClinicTokensVerified: %" APR_UINT64_T_FMT "\n", t->tok[0]);
        ap_rprintf(r, "ClinicTokenCacheHits: %" APR_UINT64_T_FMT "\n", t->tok[1]);
        ap_rprintf(r, "ClinicTokensRejected: %" APR_UINT64_T_FMT "\n", rejected);
        ap_rprintf(r, "ClinicIdempotentReplays: %" APR_UINT64_T_FMT "\n",
                   t->idem[CLINIC_IDEM_REPLAYED]);
        pool_status(r, t, 1);
        return OK;
    }
    ap_rputs("<hr />\n<h2>mod_clinic</h2>\n<table border=\"0\">\n"
             "<tr><th>route</th><th>requests</th><th>5xx</th><th>mean ms</th></tr>\n", r);
    for (route = 0; route < NROUTES; route++) {
        n = route_count(t, route, 0);
        ap_rprintf(r, "<tr><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT
                   "</td><td>%.3f</td></tr>\n", route_names[route], n, route_count(t, route, 500),
                   n ? (double)t->dur_us[route] / 1000.0 / (double)n : 0.0);
    }
    ap_rprintf(r, "</table>\n<p>Database errors: %" APR_UINT64_T_FMT " (unavailable %"
               APR_UINT64_T_FMT "). Tokens: %" APR_UINT64_T_FMT " verified, %" APR_UINT64_T_FMT
               " cache hits, %" APR_UINT64_T_FMT " rejected. Idempotent replays: %"
               APR_UINT64_T_FMT ".</p>\n", dberr, t->dberr[CLINIC_DBERR_UNAVAILABLE],
               t->tok[0], t->tok[1], rejected, t->idem[CLINIC_IDEM_REPLAYED]);
    pool_status(r, t, 0);
    return OK;
}

void clinic_metrics_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(clinic_metrics_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(clinic_metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_pre_mpm(clinic_metrics_pre_mpm, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(clinic_metrics_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(clinic_metrics_handle, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, clinic_metrics_status, NULL, NULL, APR_HOOK_MIDDLE);
}
