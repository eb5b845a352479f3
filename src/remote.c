/*
 * Key sets that rotate: a JWKS fetched over HTTPS (ClinicJWKSURL), or found
 * through OpenID Connect discovery (ClinicOIDCIssuer), by one background
 * thread in every child process, never in a request.
 *
 * - Each distinct (source, algorithm, CA file, refresh, kept-document
 *   directory) is one fetcher, registered at check_config time.
 * - A fetch is parsed once into a ready-to-verify set (keyset.c) and swapped
 *   in under a mutex; requests hold a reference to the set they use, so an
 *   old set lives until its last request is done.
 * - An unknown kid asks the thread for a refetch, at most once per 60 s per
 *   fetcher and process; the request waits for it at most WAIT_SECONDS, and
 *   at most WAITERS_MAX requests per fetcher and process wait: the others
 *   answer 401 at once (made-up kids need no valid signature).
 * - A failed fetch keeps the last good set and is logged once per failure
 *   streak; the next try comes after min(refresh, 60 s).
 * - The last good document is kept on disk, 0600 in a 0700 directory owned by
 *   the child processes' user, and read at child start-up.
 */
#include "clinic.h"
#include "metrics.h"
#include "http_core.h"
#include "unixd.h"
#include "apr_file_io.h"
#include "apr_strings.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#define CONNECT_SECONDS 5L
#define TOTAL_SECONDS 10L
#define WAIT_SECONDS 3        /* a request waiting for an unknown kid's refetch */
#define WAITERS_MAX 4         /* requests of a process waiting so, per fetcher */
#define FORCED_EVERY 60       /* seconds between kid-triggered refetches */
#define RETRY_MAX 60          /* seconds between tries while failing */
#define DOC_MAX (1024 * 1024) /* bytes of a fetched document */

struct clinic_remote {
    /* configuration (set in the parent) */
    const char *src;          /* JWKS URL, or the issuer */
    int oidc;
    const char *alg, *ca_file, *dir, *path;
    const char *dir_conf;     /* ClinicJWKSCacheDir as configured (NULL: default) */
    long refresh;
    /* child state, under lock */
    clinic_keyset_t *current;
    unsigned char digest[32]; /* of the document current came from */
    int have_digest;
    time_t next_due;
    time_t last_forced;
    int forced_ever, forced;
    int busy;                 /* a fetch is running */
    unsigned long seq;        /* fetches finished */
    unsigned long forced_seq; /* seq once the last kid-triggered refetch is done */
    int waiting;              /* requests waiting for that refetch */
    int failing;
};

static clinic_remote_t **remotes;
static int nremotes, cap_remotes;
static server_rec *main_server;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake, done;
static pthread_t thread;
static int thread_running, stopping;

/* ---- key files ---- */

clinic_keyset_t *clinic_keysrc_set(const clinic_keysrc_t *k, const char *alg, char *why,
                                   size_t whylen)
{
    clinic_keysrc_t *mk = (clinic_keysrc_t *)k;
    int i = clinic_alg_index(alg);
    clinic_keyset_t *ks, *expect = NULL;

    if (i < 0 || k->url)
        return NULL;
    if ((ks = __atomic_load_n(&mk->sets[i], __ATOMIC_ACQUIRE)) != NULL)
        return ks;
    ks = k->is_jwks ? clinic_keyset_from_jwks(k->jwks, k->njwks, alg, why, whylen)
                    : clinic_keyset_from_key(k->key, k->key_len, alg, why, whylen);
    if (ks && !__atomic_compare_exchange_n(&mk->sets[i], &expect, ks, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE)) {
        clinic_keyset_unref(ks);   /* another thread built it first */
        ks = expect;
    }
    return ks;
}

/* ---- registration (parent, at check_config) ---- */

static apr_status_t forget_remotes(void *d)
{
    (void)d;
    remotes = NULL;
    nremotes = cap_remotes = 0;
    return APR_SUCCESS;
}

static const char *cache_dir(apr_pool_t *p, const clinic_dir_conf *c)
{
    return c->jwks_cache_dir ? c->jwks_cache_dir : ap_runtime_dir_relative(p, "clinic-jwks");
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static clinic_remote_t *find(const clinic_dir_conf *c)
{
    int i;

    for (i = 0; i < nremotes; i++) {
        clinic_remote_t *r = remotes[i];
        if (r->oidc == c->keys->oidc && !strcmp(r->src, c->keys->url) &&
            !strcmp(r->alg, c->alg) && same(r->ca_file, c->tls_ca_file) &&
            r->refresh == CLINIC_JWKS_REFRESH(c) && same(r->dir_conf, c->jwks_cache_dir))
            return r;
    }
    return NULL;
}

clinic_remote_t *clinic_remote_register(apr_pool_t *pconf, server_rec *s,
                                        const clinic_dir_conf *c, const char **why)
{
    const char *dir = cache_dir(pconf, c);
    clinic_remote_t *r = find(c);
    unsigned char d[32];
    unsigned int dlen = 0;
    char hex[33];
    int i;

    (void)s;
    if (r)
        return r;
    if (!dir) {
        *why = "ClinicJWKSCacheDir: no directory for the kept key documents";
        return NULL;
    }
    if (!nremotes)
        apr_pool_cleanup_register(pconf, NULL, forget_remotes, apr_pool_cleanup_null);
    if (nremotes == cap_remotes) {
        clinic_remote_t **n = apr_pcalloc(pconf, sizeof *n * (size_t)(cap_remotes * 2 + 4));
        if (nremotes)
            memcpy(n, remotes, sizeof *n * (size_t)nremotes);
        remotes = n;
        cap_remotes = cap_remotes * 2 + 4;
    }
    r = apr_pcalloc(pconf, sizeof *r);
    r->src = c->keys->url;
    r->oidc = c->keys->oidc;
    r->alg = c->alg;
    r->ca_file = c->tls_ca_file;
    r->refresh = CLINIC_JWKS_REFRESH(c);
    r->dir = dir;
    r->dir_conf = c->jwks_cache_dir;
    /* One kept document per source: the SHA-256 of its URL names it. */
    EVP_Digest(r->src, strlen(r->src), d, &dlen, EVP_sha256(), NULL);
    for (i = 0; i < 16; i++)
        apr_snprintf(hex + 2 * i, 3, "%02x", d[i]);
    r->path = apr_pstrcat(pconf, dir, "/", r->oidc ? "oidc-" : "jwks-", hex, ".json", NULL);
    remotes[nremotes++] = r;
    return r;
}

clinic_remote_t *clinic_remote_lookup(const clinic_dir_conf *c)
{
    if (!c->keys || !c->keys->url || !c->alg)
        return NULL;
    return find(c);
}

/* The kept documents' directory: 0700, owned by the children's user. */
int clinic_remote_post_config(apr_pool_t *p, server_rec *s)
{
    int i;

    for (i = 0; i < nremotes; i++) {
        const char *dir = remotes[i]->dir;
        apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_UREAD | APR_FPROT_UWRITE |
                                                      APR_FPROT_UEXECUTE, p);
        if (rv != APR_SUCCESS) {
            clinic_slog(s, APLOG_WARNING, rv,
                        "cannot create %s for the kept key documents", dir);
            continue;
        }
        if ((geteuid() == 0 &&
             chown(dir, ap_unixd_config.user_id, ap_unixd_config.group_id) != 0) ||
            chmod(dir, 0700) != 0)
            clinic_slog(s, APLOG_WARNING, errno,
                        "cannot make %s the server user's, mode 0700", dir);
    }
    return OK;
}

/* ---- fetching (the child's thread) ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int too_big;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    body_t *b = ud;
    size_t n = size * nmemb;

    if (b->len + n > DOC_MAX) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *nb = realloc(b->buf, cap);
        if (!nb)
            return 0;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, ptr, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud, (void)a, (void)b, (void)c, (void)d;
    return __atomic_load_n(&stopping, __ATOMIC_RELAXED);   /* non-zero aborts */
}

/* GET an https URL. 0 and the body (malloc'd, NUL-terminated) or -1 and why. */
static int http_get(const clinic_remote_t *r, const char *url, body_t *b, char *why,
                    size_t whylen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    CURL *h;
    CURLcode rc;
    long status = 0;
    char *ctype = NULL;   /* libcurl's: freed by curl_easy_cleanup */
    int html, ok;

    memset(b, 0, sizeof *b);
    if (strncasecmp(url, "https://", 8) != 0) {
        apr_snprintf(why, whylen, "%s is not an https:// URL", url);
        return -1;
    }
    if (!(h = curl_easy_init())) {
        apr_snprintf(why, whylen, "libcurl cannot start");
        return -1;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (r->ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_SECONDS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, TOTAL_SECONDS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "mod_clinic");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ctype);
    html = ctype && !strncasecmp(ctype, "text/html", 9);
    ok = rc == CURLE_OK && status == 200 && b->buf && !html;
    if (rc != CURLE_OK)
        apr_snprintf(why, whylen, "%s", b->too_big ? "document larger than 1 MiB"
                                        : *errbuf ? errbuf : curl_easy_strerror(rc));
    else if (status != 200)
        apr_snprintf(why, whylen, "HTTP status %ld", status);
    else if (html)
        apr_snprintf(why, whylen, "HTML instead of JSON (Content-Type %s)", ctype);
    else if (!b->buf)
        apr_snprintf(why, whylen, "empty document");
    curl_easy_cleanup(h);
    if (ok)
        return 0;
    free(b->buf);
    b->buf = NULL;
    return -1;
}

/* Discovery: the issuer's jwks_uri (malloc'd), after checking its issuer. */
static char *discover(const clinic_remote_t *r, char *why, size_t whylen)
{
    size_t n = strlen(r->src);
    char *url, *jwks = NULL;
    body_t b;
    json_t *doc, *iss, *uri;

    while (n && r->src[n - 1] == '/')
        n--;
    url = malloc(n + sizeof "/.well-known/openid-configuration");
    if (!url)
        return NULL;
    memcpy(url, r->src, n);
    strcpy(url + n, "/.well-known/openid-configuration");
    if (http_get(r, url, &b, why, whylen) != 0) {
        char tmp[512];
        apr_snprintf(tmp, sizeof tmp, "discovery %s: %s", url, why);
        apr_cpystrn(why, tmp, whylen);
        free(url);
        return NULL;
    }
    doc = json_loadb(b.buf, b.len, JSON_REJECT_DUPLICATES, NULL);
    iss = json_object_get(doc, "issuer");
    uri = json_object_get(doc, "jwks_uri");
    if (!json_is_object(doc))
        apr_snprintf(why, whylen, "discovery %s: not a JSON object", url);
    else if (!json_is_string(iss) || strcmp(json_string_value(iss), r->src) != 0)
        apr_snprintf(why, whylen, "discovery %s: its issuer is not %s", url, r->src);
    else if (!json_is_string(uri))
        apr_snprintf(why, whylen, "discovery %s: no jwks_uri", url);
    else
        jwks = strdup(json_string_value(uri));
    json_decref(doc);
    free(b.buf);
    free(url);
    return jwks;
}

/* Keep the document on disk: a temporary file of our own, then rename. */
static void keep_document(const clinic_remote_t *r, const char *doc, size_t len)
{
    char tmp[4096];
    int fd;
    ssize_t w = -1;

    apr_snprintf(tmp, sizeof tmp, "%s.%ld.tmp", r->path, (long)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        w = write(fd, doc, len);
        if (fsync(fd) != 0)
            w = -1;
        if (close(fd) != 0)
            w = -1;
    }
    if (fd < 0 || w != (ssize_t)len || rename(tmp, r->path) != 0) {
        clinic_slog(main_server, APLOG_WARNING, errno,
                    "cannot keep the key document of %s in %s", r->src, r->path);
        if (fd >= 0)
            unlink(tmp);
    }
}

static time_t mono_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Swap in a set parsed from doc (unless doc is the current one). Under lock. */
static int install(clinic_remote_t *r, clinic_keyset_t *ks, const char *doc, size_t len)
{
    unsigned char d[32];
    unsigned int dlen = 0;
    clinic_keyset_t *old;

    EVP_Digest(doc, len, d, &dlen, EVP_sha256(), NULL);
    if (r->have_digest && !memcmp(d, r->digest, sizeof d)) {
        clinic_keyset_unref(ks);   /* same keys: keep the set (and its cached tokens) */
        return 0;
    }
    memcpy(r->digest, d, sizeof d);
    r->have_digest = 1;
    old = r->current;
    r->current = ks;
    clinic_keyset_unref(old);      /* freed when its last request is done */
    return 1;
}

static void fetch(clinic_remote_t *r)
{
    char why[1024] = "", *url = NULL;
    body_t b = { 0 };
    clinic_keyset_t *ks = NULL;
    int changed = 0;
    unsigned nkeys;

    if (r->oidc)
        url = discover(r, why, sizeof why);
    else
        url = strdup(r->src);
    if (url && http_get(r, url, &b, why, sizeof why) == 0) {
        ks = clinic_keyset_from_doc(b.buf, b.len, r->alg, why, sizeof why);
        if (!ks && !strncmp(why, "JWKS is not valid JSON", 22) && b.len && b.buf[0] == '<')
            apr_cpystrn(why, "HTML or XML instead of JSON", sizeof why);
    }
    pthread_mutex_lock(&lock);
    if (ks) {
        changed = install(r, ks, b.buf, b.len);
        r->next_due = mono_now() + r->refresh;
        if (r->failing)
            clinic_snotice(main_server,
                           "keys of %s fetched again", r->src);
        r->failing = 0;
    } else {
        r->next_due = mono_now() + (r->refresh < RETRY_MAX ? r->refresh : RETRY_MAX);
        if (!r->failing)
            clinic_serror(main_server,
                          "fetching the keys of %s%s%s%s failed: %s; %s", r->src,
                          r->oidc ? " (" : "", r->oidc ? (url ? url : "discovery") : "",
                          r->oidc ? ")" : "", why,
                          r->current ? "keeping the last good keys" : "no keys yet (503)");
        r->failing = 1;
    }
    r->seq++;
    nkeys = r->current ? (unsigned)r->current->n : 0;
    pthread_cond_broadcast(&done);
    pthread_mutex_unlock(&lock);
    clinic_metric_keyset_fetch(r->src, ks != NULL, nkeys);
    if (changed)
        keep_document(r, b.buf, b.len);
    free(b.buf);
    free(url);
}

static void *run(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&lock);
    while (!stopping) {
        time_t now = mono_now(), next = now + 3600;
        clinic_remote_t *due = NULL;
        struct timespec ts;
        int i;

        for (i = 0; i < nremotes && !due; i++) {
            if (remotes[i]->forced || remotes[i]->next_due <= now)
                due = remotes[i];
            else if (remotes[i]->next_due < next)
                next = remotes[i]->next_due;
        }
        if (due) {
            due->forced = 0;
            due->busy = 1;
            pthread_mutex_unlock(&lock);
            fetch(due);
            pthread_mutex_lock(&lock);
            due->busy = 0;
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += next - now;
        pthread_cond_timedwait(&wake, &lock, &ts);
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

static apr_status_t stop_thread(void *d)
{
    (void)d;
    if (!thread_running)
        return APR_SUCCESS;
    pthread_mutex_lock(&lock);
    __atomic_store_n(&stopping, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&wake);
    pthread_cond_broadcast(&done);
    pthread_mutex_unlock(&lock);
    pthread_join(thread, NULL);
    thread_running = 0;
    return APR_SUCCESS;
}

/* The kept document, if any, so that a child has keys before its first fetch. */
static void load_kept(clinic_remote_t *r)
{
    char why[512];
    FILE *f = fopen(r->path, "rb");
    char *buf;
    size_t len;
    clinic_keyset_t *ks;

    if (!f)
        return;
    buf = malloc(DOC_MAX + 1);
    len = buf ? fread(buf, 1, DOC_MAX, f) : 0;
    fclose(f);
    if (buf && len && (ks = clinic_keyset_from_doc(buf, len, r->alg, why, sizeof why)))
        install(r, ks, buf, len);
    else if (buf)
        clinic_swarn(main_server,
                     "kept key document %s of %s is unusable: %s", r->path, r->src,
                     len ? why : "empty");
    free(buf);
}

void clinic_remote_child_init(apr_pool_t *p, server_rec *s)
{
    pthread_condattr_t ca;
    int i;

    if (!nremotes)
        return;
    main_server = s;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wake, &ca);
    pthread_cond_init(&done, &ca);
    pthread_condattr_destroy(&ca);
    for (i = 0; i < nremotes; i++) {
        load_kept(remotes[i]);
        remotes[i]->next_due = 0;   /* fetch now */
    }
    stopping = 0;
    if (pthread_create(&thread, NULL, run, NULL) != 0) {
        clinic_slog(s, APLOG_CRIT, errno,
                    "cannot start the key fetching thread");
        return;
    }
    thread_running = 1;
    apr_pool_cleanup_register(p, NULL, stop_thread, apr_pool_cleanup_null);
}

/* ---- the request side ---- */

clinic_keyset_t *clinic_remote_acquire(clinic_remote_t *r)
{
    clinic_keyset_t *ks;

    pthread_mutex_lock(&lock);
    ks = clinic_keyset_ref(r->current);
    pthread_mutex_unlock(&lock);
    return ks;
}

int clinic_remote_loaded(int *total)
{
    int i, n = 0;

    pthread_mutex_lock(&lock);
    for (i = 0; i < nremotes; i++)
        n += remotes[i]->current != NULL;
    pthread_mutex_unlock(&lock);
    *total = nremotes;
    return n;
}

int clinic_remote_refetch(clinic_remote_t *r, const clinic_keyset_t *mine)
{
    time_t now = mono_now();
    struct timespec until;
    int changed;

    pthread_mutex_lock(&lock);
    if (!thread_running || r->current != mine) {   /* no fetcher, or a newer set already */
        changed = r->current != mine;
        pthread_mutex_unlock(&lock);
        return changed;
    }
    if (!r->forced_ever || now - r->last_forced >= FORCED_EVERY) {
        r->forced_ever = 1;
        r->last_forced = now;
        r->forced = 1;
        /* done after the fetch that is running now, if any, and then ours */
        r->forced_seq = r->seq + (r->busy ? 2 : 1);
        pthread_cond_signal(&wake);
    } else if (r->seq >= r->forced_seq) {
        pthread_mutex_unlock(&lock);   /* refetched less than 60 s ago: no more */
        return 0;
    }
    if (r->waiting >= WAITERS_MAX) {   /* enough requests wait already: no worker parks */
        pthread_mutex_unlock(&lock);
        return 0;
    }
    /* A refetch is under way (ours, or one asked for by a request just before): wait. */
    r->waiting++;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += WAIT_SECONDS;
    while (r->seq < r->forced_seq && !stopping)
        if (pthread_cond_timedwait(&done, &lock, &until) == ETIMEDOUT)
            break;
    r->waiting--;
    changed = r->current != mine;
    pthread_mutex_unlock(&lock);
    return changed;
}
