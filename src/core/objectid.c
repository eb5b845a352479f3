/*
 * ObjectId generation. The counter is incremented atomically, so threads of
 * one process never share an id; the per-process random bytes keep processes
 * and servers apart.
 */
#include <errno.h>
#include <sys/random.h>

#include "objectid.h"

static unsigned char process_random[5];
static uint32_t counter;
static int ready;

int clinic_objectid_init(void)
{
    unsigned char buf[8];
    size_t got = 0;

    while (got < sizeof buf) {
        ssize_t n = getrandom(buf + got, sizeof buf - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    for (got = 0; got < 5; got++)
        process_random[got] = buf[got];
    __atomic_store_n(&counter, ((uint32_t)buf[5] << 16) | ((uint32_t)buf[6] << 8) | buf[7],
                     __ATOMIC_RELAXED);
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
    return 0;
}

int clinic_objectid_new(uint32_t seconds, char out[CLINIC_OBJECTID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint32_t n;
    unsigned char b[12];
    int i;

    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE))
        return -1;
    n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED) & 0xFFFFFFu;
    b[0] = (unsigned char)(seconds >> 24);
    b[1] = (unsigned char)(seconds >> 16);
    b[2] = (unsigned char)(seconds >> 8);
    b[3] = (unsigned char)seconds;
    for (i = 0; i < 5; i++)
        b[4 + i] = process_random[i];
    b[9] = (unsigned char)(n >> 16);
    b[10] = (unsigned char)(n >> 8);
    b[11] = (unsigned char)n;
    for (i = 0; i < 12; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[CLINIC_OBJECTID_LEN] = '\0';
    return 0;
}
