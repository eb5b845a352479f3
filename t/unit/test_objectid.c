/* Unit tests for src/core/objectid.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "objectid.h"

#define THREADS 8
#define PER_THREAD 20000
#define SECONDS 0x65f8a1b2u

typedef char oid_t[CLINIC_OBJECTID_LEN + 1];

static pthread_barrier_t start;   /* the threads begin together, to contend */

static int init(void **state)
{
    (void)state;
    return clinic_objectid_init();
}

/* 24 hex digits for seconds, or a failed test. */
static void new_id(uint32_t seconds, oid_t out)
{
    assert_int_equal(clinic_objectid_new(seconds, out), 0);
}

/* Must run first: nothing has called clinic_objectid_init yet. */
static void test_uninitialised(void **state)
{
    oid_t id = "XXXXXXXXXXXXXXXXXXXXXXXX";

    (void)state;
    assert_int_equal(clinic_objectid_new(SECONDS, id), -1);
    assert_memory_equal(id, "XXXXXXXXXXXXXXXXXXXXXXXX", sizeof id);
}

/* The value of hex digits id[from..to). */
static uint32_t field(const char *id, int from, int to)
{
    char buf[9];

    memcpy(buf, id + from, (size_t)(to - from));
    buf[to - from] = '\0';
    return (uint32_t)strtoul(buf, NULL, 16);
}

static void test_format(void **state)
{
    static const uint32_t secs[] = { 0, 1, 0x12345678u, 0x7fffffffu, 0x80000000u, 0xffffffffu };
    oid_t id;

    (void)state;
    for (size_t i = 0; i < sizeof secs / sizeof secs[0]; i++) {
        memset(id, 'X', sizeof id);
        new_id(secs[i], id);
        assert_int_equal(id[CLINIC_OBJECTID_LEN], '\0');
        assert_int_equal(strspn(id, "0123456789abcdef"), 24);
        assert_int_equal(field(id, 0, 8), secs[i]);
    }
    new_id(0x0a0b0c0du, id);
    assert_memory_equal(id, "0a0b0c0d", 8);
}

static void test_random_and_counter(void **state)
{
    oid_t a, b;

    (void)state;
    new_id(SECONDS, a);
    for (int i = 0; i < 1000; i++) {
        new_id(i & 1 ? SECONDS : 7, b);
        assert_memory_equal(a + 8, b + 8, 10);                /* the process's random bytes */
        assert_int_equal((field(b, 18, 24) - field(a, 18, 24)) & 0xffffffu, 1);  /* mod 2^24 */
        memcpy(a, b, sizeof a);
    }
}

static void *make_ids(void *arg)
{
    oid_t *ids = arg;
    intptr_t failures = 0;

    pthread_barrier_wait(&start);
    for (int i = 0; i < PER_THREAD; i++)
        failures += clinic_objectid_new(SECONDS, ids[i]) != 0;
    return (void *)failures;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_threads_unique(void **state)
{
    oid_t *ids = calloc(THREADS * PER_THREAD, sizeof *ids);
    pthread_t t[THREADS];
    void *failures;

    (void)state;
    assert_non_null(ids);
    assert_int_equal(pthread_barrier_init(&start, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, make_ids, ids + i * PER_THREAD), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], &failures), 0);
        assert_null(failures);
    }
    pthread_barrier_destroy(&start);
    qsort(ids, THREADS * PER_THREAD, sizeof *ids, by_id);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        if (strcmp(ids[i - 1], ids[i]) >= 0)
            fail_msg("duplicate id %s", ids[i]);
    free(ids);
}

static void test_fork_reinit(void **state)
{
    oid_t before, child, after;
    int fds[2], status;
    pid_t pid;

    (void)state;
    new_id(SECONDS, before);
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        if (clinic_objectid_init() != 0 || clinic_objectid_new(SECONDS, child) != 0)
            _exit(1);
        _exit(write(fds[1], child, CLINIC_OBJECTID_LEN) == CLINIC_OBJECTID_LEN ? 0 : 2);
    }
    close(fds[1]);
    memset(child, 0, sizeof child);
    assert_int_equal(read(fds[0], child, CLINIC_OBJECTID_LEN), CLINIC_OBJECTID_LEN);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(strspn(child, "0123456789abcdef"), 24);
    assert_memory_equal(child, before, 8);
    assert_memory_not_equal(child + 8, before + 8, 10);
    new_id(SECONDS, after);        /* the parent's own bytes are unchanged */
    assert_memory_equal(after + 8, before + 8, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uninitialised),
        cmocka_unit_test_setup(test_format, init),
        cmocka_unit_test_setup(test_random_and_counter, init),
        cmocka_unit_test_setup(test_threads_unique, init),
        cmocka_unit_test_setup(test_fork_reinit, init),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
