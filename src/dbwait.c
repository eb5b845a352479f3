/*
 * Every wait on the database bounded; see dbwait.h and docs/operations.md "Every wait
 * bounded".
 *
 * One request's database work has one deadline: ClinicDBTimeout seconds
 * from its first step. It counts three waits:
 *  - for a pooled connection: mod_dbd's pool (apr_reslist) has no
 *    acquisition timeout, so a gate of the module's own stands in front of
 *    it and lets at most DBDMax requests of a process hold a connection
 *    (apr_reslist_acquire then never waits). The others wait on a condition
 *    variable until the deadline, at most ClinicDBMaxWaiting of them; the
 *    next one is refused at once, so a database that stops answering never
 *    parks every worker of the process;
 *  - opening a connection (mod_dbd's, or a reconnect): a blocking libpq
 *    call that only connect_timeout in DBDParams bounds; the deadline is
 *    checked when it returns;
 *  - a statement: a watchdog thread per process shuts down the socket of a
 *    statement still running at the deadline. The worker blocked in libpq
 *    wakes at once with the connection closed; db.c answers 503 and never
 *    runs the statement again. The socket is watched through a duplicate
 *    descriptor of the module's own, so that shutting it can never reach a
 *    descriptor number libpq closed and the process reused meanwhile.
 *
 * DBDMax and DBDPersist are read from the parsed configuration tree
 * (mod_dbd keeps its settings private): a <VirtualHost>'s own value, else
 * the main server's. Servers whose DBDriver, DBDParams and DBDMax are the
 * same share mod_dbd's pool, and so one gate.
 */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clinic.h"
#include "dbwait.h"
#include "metrics.h"
#include "ap_mpm.h"
#include "http_main.h"
#include "http_core.h"
#include "apr_hash.h"
#include "apr_thread_cond.h"
#include "apr_thread_mutex.h"
#include "apr_thread_proc.h"

#define DBD_DEFAULT_MAX 10          /* mod_dbd's DEFAULT_NMAX */
#define WATCHDOG_TICK apr_time_from_sec(1)
/* Beyond ClinicDBMaxWaiting a request still waits, this long at most,
 * while connections keep coming back; a pool full for this long with none
 * coming back is stalled, and such a request answers 503 at once. */
#define STALL apr_time_from_msec(250)

typedef struct gate {
    const char *key;                /* DBDriver, DBDParams, DBDMax */
    int capacity;                   /* connections at once; 0: no gate */
    int in_use;
    int waiting;
    apr_time_t busy_since;          /* the pool is full since, or a connection came back */
    int breaker;                    /* PostgreSQL: a database away is tried one at a time */
    int away;                       /* no connection works now */
    int trial;                      /* a request is trying it */
    apr_thread_mutex_t *mu;         /* made in each child */
    apr_thread_cond_t *cv;
    struct gate *next;
} gate_t;

struct clinic_wait {
    gate_t *gate;                   /* the gate it holds a place at, or NULL */
    apr_time_t start;
    apr_time_t deadline;
    int fd;                         /* our duplicate of the watched socket, -1 */
    int src;                        /* the socket it duplicates */
    int armed;                      /* in the watchdog's list */
    int cut;                        /* the watchdog shut the socket down */
    int trial;                      /* this request tries a database away */
    clinic_wait_t *prev, *next;
};

/* Settings: server-wide, reset before every reading of the configuration. */
static long timeout_sec;
static long max_waiting_set;
static int max_waiting;             /* effective */
static apr_interval_time_t connect_reserve;   /* kept of the deadline to open a connection */

static gate_t *gates;               /* made at post_config */
static apr_hash_t *gate_of;         /* server_rec * -> gate_t * */
static gate_t *main_gate;

static struct {
    apr_thread_mutex_t *mu;
    apr_thread_cond_t *cv;
    clinic_wait_t *armed;
    apr_time_t wake;                /* when the thread looks next */
    int stop;
    apr_thread_t *thread;
} wd;

const char *clinic_wait_set(cmd_parms *cmd, void *cfg, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    int waiting = cmd->info != NULL;
    long lo = waiting ? 0 : 1, hi = waiting ? 100000 : 3600, v;
    char *end;

    (void)cfg;
    if (err)
        return err;
    v = strtol(arg, &end, 10);
    if (!*arg || *end || v < lo || v > hi)
        return apr_psprintf(cmd->pool, "%s: '%s' is not %s %ld-%ld", cmd->cmd->name, arg,
                            waiting ? "a number of requests" : "seconds", lo, hi);
    *(waiting ? &max_waiting_set : &timeout_sec) = v;
    return NULL;
}

static int clinic_wait_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    (void)pconf;
    (void)plog;
    (void)ptemp;
    timeout_sec = CLINIC_DEFAULT_DB_TIMEOUT;
    max_waiting_set = -1;
    gates = main_gate = NULL;
    gate_of = NULL;
    return OK;
}

/* ---- mod_dbd's settings, from the configuration tree ---- */

static int module_loaded(const char *name)
{
    module *m;

    for (m = ap_top_module; m; m = m->next) {
        const char *shortname = ap_find_module_short_name(m->module_index);
        size_t n = shortname ? strlen(shortname) : 0;
        if (!strcmp(m->name, name) ||
            (n && !strncmp(name, shortname, n) && !strcmp(name + n, "_module")))
            return 1;
    }
    return 0;
}

/* A conditional section at server level whose directives Apache applied. */
static int applies(apr_pool_t *p, const ap_directive_t *d)
{
    const char *a = d->args ? d->args : "";
    int neg = *a == '!';
    const char *name = apr_pstrndup(p, a + neg, strcspn(a + neg, "> \t"));

    if (strncasecmp(d->directive, "<If", 3) != 0)
        return 0;       /* <VirtualHost>, <Directory>, <Location>...: not server level */
    if (!strcasecmp(d->directive, "<IfModule"))
        return module_loaded(name) != neg;
    if (!strcasecmp(d->directive, "<IfDefine"))
        return ap_exists_config_define(name) != neg;
    return 1;           /* <IfVersion>, <IfFile>, ...: taken as applying */
}

/* The last value of directive name among d and its siblings. */
static const char *setting(apr_pool_t *p, const ap_directive_t *d, const char *name,
                           const char *found)
{
    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, name))
            found = d->args;
        else if (d->first_child && applies(p, d))
            found = setting(p, d->first_child, name, found);
    }
    return found;
}

/* The <VirtualHost> section that defined s. */
static const ap_directive_t *vhost_section(apr_pool_t *p, const ap_directive_t *d,
                                           const server_rec *s)
{
    const ap_directive_t *v;

    for (; d; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost") && (unsigned)d->line_num == s->defn_line_number &&
            d->filename && s->defn_name && !strcmp(d->filename, s->defn_name))
            return d;
        if (d->first_child && applies(p, d) && (v = vhost_section(p, d->first_child, s)))
            return v;
    }
    return NULL;
}

static const char *dbd_setting(apr_pool_t *p, const ap_directive_t *vh, const char *name)
{
    const char *v = vh ? setting(p, vh->first_child, name, NULL) : NULL;
    const char *arg;

    v = v ? v : setting(p, ap_conftree, name, NULL);
    if (!v)
        return NULL;
    arg = ap_getword_conf(p, &v);
    return arg;
}

const char *clinic_dbd_setting(apr_pool_t *p, server_rec *s, const char *name)
{
    return dbd_setting(p, s->is_virtual ? vhost_section(p, ap_conftree, s) : NULL, name);
}

/* The gate of servers with s's pool; NULL without a pool to guard. */
static gate_t *gate_for_config(apr_pool_t *p, server_rec *s, int threaded)
{
    const ap_directive_t *vh = s->is_virtual ? vhost_section(p, ap_conftree, s) : NULL;
    const char *driver = dbd_setting(p, vh, "DBDriver");
    const char *params = dbd_setting(p, vh, "DBDParams");
    const char *max = dbd_setting(p, vh, "DBDMax");
    const char *persist = dbd_setting(p, vh, "DBDPersist");
    const char *key;
    gate_t *g;

    if (!driver || !threaded || (persist && !strcasecmp(persist, "off")))
        return NULL;   /* no mod_dbd pool: a connection per request, or one per process */
    key = apr_pstrcat(p, driver, "\n", params ? params : "", "\n", max ? max : "", NULL);
    for (g = gates; g; g = g->next)
        if (!strcmp(g->key, key))
            return g;
    g = apr_pcalloc(p, sizeof *g);
    g->key = key;
    g->capacity = max ? atoi(max) : DBD_DEFAULT_MAX;
    g->breaker = !strcasecmp(driver, "pgsql");
    g->next = gates;
    gates = g;
    return g->capacity > 0 ? g : NULL;
}

/* libpq: connect_timeout bounds opening a connection, once per host. */
static void check_connect_timeout(apr_pool_t *p, server_rec *s, int say)
{
    const char *driver = dbd_setting(p, NULL, "DBDriver");
    const char *params = dbd_setting(p, NULL, "DBDParams");
    const char *ct, *host;
    long hosts = 1, secs;

    connect_reserve = 0;
    if (!driver || strcasecmp(driver, "pgsql") || !params)
        return;
    if (!(ct = strstr(params, "connect_timeout="))) {
        if (say)
            clinic_swarn(s,
                         "DBDParams has no connect_timeout: opening a connection to a "
                         "database server that does not answer is then bounded only by the "
                         "operating system (minutes), beyond ClinicDBTimeout (%ld s); add "
                         "connect_timeout=2", timeout_sec);
        return;
    }
    secs = atol(ct + strlen("connect_timeout="));
    secs = secs > 0 && secs < 2 ? 2 : secs;     /* libpq's least */
    if ((host = strstr(params, "host=")))
        for (host += 5; *host && *host != ' '; host++)
            hosts += *host == ',';
    connect_reserve = apr_time_from_sec(secs * hosts < timeout_sec ? secs * hosts : timeout_sec);
    if (say && secs * hosts >= timeout_sec)
        clinic_swarn(s,
                     "DBDParams' connect_timeout=%ld over %ld host(s) can take %ld s, not "
                     "less than ClinicDBTimeout (%ld s): a request that must open a "
                     "connection can then wait longer than the deadline", secs, hosts,
                     secs * hosts, timeout_sec);
}

int clinic_wait_check_config(apr_pool_t *p, server_rec *s)
{
    int threaded = 0, threads = 1;
    int say = ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG ||
              ap_state_query(AP_SQ_RUN_MODE) == AP_SQ_RM_CONFIG_TEST;
    server_rec *v;
    gate_t *g;

    if (ap_mpm_query(AP_MPMQ_IS_THREADED, &threaded) != APR_SUCCESS)
        threaded = 0;
    threaded = threaded != AP_MPMQ_NOT_SUPPORTED;
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS || threads < 1)
        threads = 1;
    /* Unset: a quarter of the threads may wait (at least one). */
    max_waiting = max_waiting_set >= 0 ? (int)max_waiting_set
                                       : (threads / 4 > 1 ? threads / 4 : 1);
    gate_of = apr_hash_make(p);
    for (v = s; v; v = v->next)
        if ((g = gate_for_config(p, v, threaded))) {
            server_rec **k = apr_palloc(p, sizeof *k);
            *k = v;
            apr_hash_set(gate_of, k, sizeof *k, g);
        }
    main_gate = apr_hash_get(gate_of, &s, sizeof s);
    check_connect_timeout(p, s, say);
    if (say && main_gate && main_gate->capacity + max_waiting >= threads)
        clinic_swarn(s,
                     "DBDMax %d plus ClinicDBMaxWaiting %d is not below ThreadsPerChild %d: "
                     "a database that stops answering can hold every worker of a process "
                     "for ClinicDBTimeout (%ld s), and nothing else is served meanwhile; "
                     "lower DBDMax or ClinicDBMaxWaiting (docs/operations.md: Every wait bounded)",
                     main_gate->capacity, max_waiting, threads, timeout_sec);
    return OK;
}

/* ---- the watchdog ---- */

static void *APR_THREAD_FUNC watchdog(apr_thread_t *t, void *data)
{
    (void)data;
    apr_thread_mutex_lock(wd.mu);
    while (!wd.stop) {
        apr_time_t now = apr_time_now(), next = now + WATCHDOG_TICK;
        clinic_wait_t *w;

        for (w = wd.armed; w; w = w->next) {
            if (w->deadline <= now && !w->cut) {
                w->cut = 1;
                shutdown(w->fd, SHUT_RDWR);
            }
            else if (w->deadline > now && w->deadline < next)
                next = w->deadline;
        }
        wd.wake = next;
        apr_thread_cond_timedwait(wd.cv, wd.mu, next - now);
    }
    apr_thread_mutex_unlock(wd.mu);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

static apr_status_t watchdog_stop(void *data)
{
    apr_status_t rv;

    (void)data;
    if (!wd.thread)
        return APR_SUCCESS;
    apr_thread_mutex_lock(wd.mu);
    wd.stop = 1;
    apr_thread_cond_signal(wd.cv);
    apr_thread_mutex_unlock(wd.mu);
    apr_thread_join(&rv, wd.thread);
    wd.thread = NULL;
    return APR_SUCCESS;
}

void clinic_wait_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv;
    int max = 0;
    gate_t *g;

    memset(&wd, 0, sizeof wd);
    if (!gate_of)
        return;
    for (g = gates; g; g = g->next) {
        if (apr_thread_mutex_create(&g->mu, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS ||
            apr_thread_cond_create(&g->cv, p) != APR_SUCCESS)
            g->mu = NULL;           /* no gate: mod_dbd's own wait */
        g->in_use = g->waiting = g->away = g->trial = 0;
        max += g->capacity;
    }
    clinic_metric_pool_max(max);
    if ((rv = apr_thread_mutex_create(&wd.mu, APR_THREAD_MUTEX_DEFAULT, p)) != APR_SUCCESS ||
        (rv = apr_thread_cond_create(&wd.cv, p)) != APR_SUCCESS ||
        (rv = apr_thread_create(&wd.thread, NULL, watchdog, NULL, p)) != APR_SUCCESS) {
        clinic_slog(s, APLOG_CRIT, rv,
                    "cannot start the database watchdog thread: statements are not cut "
                    "at ClinicDBTimeout in this process");
        wd.mu = NULL;
        wd.thread = NULL;
        return;
    }
    apr_pool_cleanup_register(p, NULL, watchdog_stop, apr_pool_cleanup_null);
}

/* ---- one request ---- */

static void disarm(clinic_wait_t *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        wd.armed = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->armed = 0;
}

static apr_status_t leave(void *data)
{
    clinic_wait_t *w = data;
    gate_t *g = w->gate;

    if (w->armed) {
        apr_thread_mutex_lock(wd.mu);
        disarm(w);
        apr_thread_mutex_unlock(wd.mu);
    }
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    if (g) {
        apr_thread_mutex_lock(g->mu);
        if (w->trial)
            g->trial = w->trial = 0;
        g->in_use--;
        g->busy_since = apr_time_now();
        apr_thread_cond_signal(g->cv);
        apr_thread_mutex_unlock(g->mu);
        clinic_metric_pool_change(-1, 0);
        w->gate = NULL;
    }
    return APR_SUCCESS;
}

/* With g locked and full: wait for a place until the deadline, less the
 * time kept for opening a connection; beyond ClinicDBMaxWaiting, only while
 * the pool is not stalled, and briefly. */
static int wait_turn(gate_t *g, clinic_wait_t *w)
{
    apr_time_t now = apr_time_now(), until = w->deadline - connect_reserve;

    if (g->waiting >= max_waiting) {
        if (now - g->busy_since > STALL)
            return CLINIC_WAIT_FULL;
        until = until < now + STALL ? until : now + STALL;
    }
    g->waiting++;
    clinic_metric_pool_change(0, 1);
    while (g->in_use >= g->capacity && (now = apr_time_now()) < until)
        apr_thread_cond_timedwait(g->cv, g->mu, until - now);
    g->waiting--;
    clinic_metric_pool_change(0, -1);
    if (g->in_use < g->capacity)
        return CLINIC_WAIT_OK;
    return w->deadline - connect_reserve > until ? CLINIC_WAIT_FULL : CLINIC_WAIT_EXPIRED;
}

/* While the database is away, only one request at a time may try it. */
static int may_try(gate_t *g, clinic_wait_t *w)
{
    if (!g->away || w->trial)
        return 1;
    if (g->trial)
        return 0;
    g->trial = w->trial = 1;
    return 1;
}

static gate_t *gate_of_request(request_rec *r)
{
    if (!gate_of)
        return NULL;
    return r->server == ap_server_conf ? main_gate
                                       : apr_hash_get(gate_of, &r->server, sizeof r->server);
}

#define LIMIT_KEY "clinic-wait-limit"

void clinic_wait_limit(request_rec *r, apr_interval_time_t max)
{
    apr_interval_time_t *m = apr_palloc(r->pool, sizeof *m);

    *m = max;
    apr_pool_userdata_setn(m, LIMIT_KEY, NULL, r->pool);
}

int clinic_wait_away(request_rec *r)
{
    gate_t *g = gate_of_request(r);
    int away;

    if (!g || !g->mu || !g->breaker)
        return 0;
    apr_thread_mutex_lock(g->mu);
    away = g->away;
    apr_thread_mutex_unlock(g->mu);
    return away;
}

int clinic_wait_enter(request_rec *r, clinic_wait_t **wp)
{
    clinic_wait_t *w = apr_pcalloc(r->pool, sizeof *w);
    gate_t *g = gate_of_request(r);
    int rc = CLINIC_WAIT_OK;
    void *limit = NULL;

    w->fd = w->src = -1;
    w->start = apr_time_now();
    w->deadline = w->start + apr_time_from_sec(timeout_sec);
    apr_pool_userdata_get(&limit, LIMIT_KEY, r->pool);
    if (limit && w->start + *(apr_interval_time_t *)limit < w->deadline)
        w->deadline = w->start + *(apr_interval_time_t *)limit;
    *wp = w;
    apr_pool_cleanup_register(r->pool, w, leave, apr_pool_cleanup_null);
    if (!g || !g->mu)
        return CLINIC_WAIT_OK;
    apr_thread_mutex_lock(g->mu);
    if (!may_try(g, w))
        rc = CLINIC_WAIT_AWAY;
    else if (g->in_use >= g->capacity)
        rc = wait_turn(g, w);
    if (rc == CLINIC_WAIT_OK && !may_try(g, w))
        rc = CLINIC_WAIT_AWAY;      /* it went away meanwhile */
    if (rc == CLINIC_WAIT_OK) {
        if (++g->in_use == g->capacity)
            g->busy_since = apr_time_now();
        w->gate = g;
    }
    else if (w->trial)
        g->trial = w->trial = 0;
    apr_thread_mutex_unlock(g->mu);
    if (rc == CLINIC_WAIT_OK)
        clinic_metric_pool_change(1, 0);
    if (rc == CLINIC_WAIT_OK || rc == CLINIC_WAIT_EXPIRED)
        clinic_metric_pool_wait(apr_time_now() - w->start);
    return rc;
}

int clinic_wait_result(clinic_wait_t *w, int ok)
{
    gate_t *g = w->gate;
    int changed;

    if (!g || !g->breaker)
        return 0;
    apr_thread_mutex_lock(g->mu);
    changed = g->away == ok;
    g->away = !ok;
    if (w->trial)
        g->trial = w->trial = 0;
    apr_thread_mutex_unlock(g->mu);
    return changed;
}

apr_time_t clinic_wait_deadline(const clinic_wait_t *w)
{
    return w->deadline;
}

apr_interval_time_t clinic_wait_reserve(void)
{
    return connect_reserve;
}

apr_time_t clinic_wait_started(const clinic_wait_t *w)
{
    return w->start;
}

void clinic_wait_counts(const clinic_wait_t *w, int *in_use, int *waiting, int *max)
{
    gate_t *g = w->gate ? w->gate : main_gate;

    *in_use = *waiting = *max = 0;
    if (!g || !g->mu)
        return;
    apr_thread_mutex_lock(g->mu);
    *in_use = g->in_use;
    *waiting = g->waiting;
    *max = g->capacity;
    apr_thread_mutex_unlock(g->mu);
}

int clinic_wait_arm(clinic_wait_t *w, int fd)
{
    if (apr_time_now() >= w->deadline)
        return 1;
    if (fd < 0 || !wd.mu)
        return 0;
    if (fd != w->src || w->fd < 0) {
        if (w->fd >= 0)
            close(w->fd);
        w->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        w->src = w->fd >= 0 ? fd : -1;
        if (w->fd < 0)
            return 0;               /* out of descriptors: not watched */
    }
    apr_thread_mutex_lock(wd.mu);
    w->next = wd.armed;
    if (wd.armed)
        wd.armed->prev = w;
    wd.armed = w;
    w->armed = 1;
    if (w->deadline < wd.wake)
        apr_thread_cond_signal(wd.cv);
    apr_thread_mutex_unlock(wd.mu);
    return 0;
}

int clinic_wait_disarm(clinic_wait_t *w)
{
    int cut;

    if (!w->armed)
        return w->cut;
    apr_thread_mutex_lock(wd.mu);
    disarm(w);
    cut = w->cut;
    apr_thread_mutex_unlock(wd.mu);
    return cut;
}

void clinic_wait_new_socket(clinic_wait_t *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = w->src = -1;
}

void clinic_wait_register_hooks(apr_pool_t *p)
{
    (void)p;
    ap_hook_pre_config(clinic_wait_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
}
