/* The C ABI under threads: writers with enumerating and looking-up threads (every
 * enumeration must be a snapshot), destroying a table while other threads use it and its
 * handles, RTM_ERROR_BUSY from two threads on one handle, racing closes, batches that
 * readers see whole, racing calls on one batch. Exits non-zero on the first failed check. No check depends on timing: threads hand over with counters and
 * flags, and loops that wait for an interleaving are bounded by a count, not a clock. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "check.h"

/* ---- Snapshots while writers go on ------------------------------------------------ */

enum { WRITERS = 2, KEYS = 250, PASSES = 60, ENUMERATORS = 2 };

static rtm_table *snap_table;
static atomic_int writers_done;

/* Writer w owns 10.w.i.0/24 for i < KEYS. Pass p rewrites them in ascending key order
 * with value p, so at any instant the values in key order are p, ..., p, p-1, ..., p-1:
 * non-increasing, spread at most 1. A view that is not a snapshot can see a later pass
 * after an earlier one. A churn route (protocol 9) in each /24 comes and goes. */
static rtm_route writer_route(int w, int i, uint64_t pass) {
    char net[32];
    snprintf(net, sizeof net, "10.%d.%d.0", w, i);
    return route4(net, 24, 1, 1, 1, pass);
}

static void *writer(void *arg) {
    int w = (int)(intptr_t)arg;
    for (uint64_t pass = 1; pass <= PASSES; pass++) {
        for (int i = 0; i < KEYS; i++) {
            rtm_route r = writer_route(w, i, pass);
            EXPECT(rtm_add_route(snap_table, &r), RTM_NO_ERROR);
            rtm_route churn = r;
            churn.protocol = 9;
            churn.priority = 100; /* never the best */
            if ((pass + (uint64_t)i) % 2) {
                EXPECT(rtm_add_route(snap_table, &churn), RTM_NO_ERROR);
            } else {
                uint32_t rc = rtm_delete_route(snap_table, &churn);
                CHECK(rc == RTM_NO_ERROR || rc == RTM_ERROR_NO_MORE_ROUTES);
            }
        }
    }
    atomic_fetch_add(&writers_done, 1);
    return NULL;
}

/* Checks one enumeration of the whole table (protocol 1 routes, by batches or one by
 * one). */
static void check_one_enumeration(int batched) {
    rtm_route crit = route4("0.0.0.0", 0, 1, 0, 0, 0);
    rtm_handle h;
    EXPECT(rtm_create_enumeration_handle(snap_table, RTM_ONLY_THIS_PROTOCOL, &crit, &h), RTM_NO_ERROR);
    static _Thread_local rtm_route got[WRITERS * KEYS];
    size_t n = 0;
    for (;;) {
        rtm_route buf[16];
        uint32_t k = 0, rc;
        if (batched) {
            rc = rtm_enumerate_get_next_routes(h, buf, 16, &k);
        } else {
            rc = rtm_enumerate_get_next_route(h, buf);
            k = rc == RTM_NO_ERROR;
        }
        if (rc == RTM_ERROR_NO_MORE_ROUTES) break;
        EXPECT(rc, RTM_NO_ERROR);
        for (uint32_t j = 0; j < k; j++) {
            CHECK(n < WRITERS * KEYS);
            got[n++] = buf[j];
        }
    }
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
    CHECK(n == WRITERS * KEYS);
    for (int w = 0; w < WRITERS; w++) {
        const rtm_route *g = got + w * KEYS;
        uint64_t first = g[0].value;
        for (int i = 0; i < KEYS; i++) {
            rtm_route want = writer_route(w, i, 0);
            CHECK(same_key(&g[i], &want));
            CHECK(g[i].value <= (i ? g[i - 1].value : first)); /* non-increasing */
            CHECK(g[i].value + 1 >= first);                    /* spread at most 1 */
        }
    }
}

static void *enumerator(void *arg) {
    int batched = (int)(intptr_t)arg;
    int rounds = 0;
    /* Until the writers are done, and a few more once they are. */
    while (atomic_load(&writers_done) < WRITERS || rounds < 3) {
        check_one_enumeration(batched);
        rounds++;
    }
    return NULL;
}

static void *looker(void *arg) {
    (void)arg;
    uint64_t last[KEYS] = {0};
    int i = 0;
    while (atomic_load(&writers_done) < WRITERS) {
        uint8_t addr[4] = {10, 1, (uint8_t)i, 77};
        rtm_route r;
        EXPECT(rtm_lookup(snap_table, addr, &r), RTM_NO_ERROR);
        CHECK(r.protocol == 1 && r.prefix_len == 24 && r.network[2] == i);
        CHECK(r.value >= last[i]); /* one thread's lookups never go back in time */
        last[i] = r.value;
        i = (i + 1) % KEYS;
    }
    return NULL;
}

static void test_snapshots_under_writers(void) {
    EXPECT(rtm_table_create(4, 64, &snap_table), RTM_NO_ERROR);
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < KEYS; i++) {
            rtm_route r = writer_route(w, i, 0);
            EXPECT(rtm_add_route(snap_table, &r), RTM_NO_ERROR);
        }
    pthread_t th[WRITERS + ENUMERATORS + 1];
    int n = 0;
    for (int e = 0; e < ENUMERATORS; e++) CHECK(pthread_create(&th[n++], NULL, enumerator, (void *)(intptr_t)(e % 2)) == 0);
    CHECK(pthread_create(&th[n++], NULL, looker, NULL) == 0);
    for (int w = 0; w < WRITERS; w++) CHECK(pthread_create(&th[n++], NULL, writer, (void *)(intptr_t)w) == 0);
    for (int i = 0; i < n; i++) CHECK(pthread_join(th[i], NULL) == 0);
    rtm_stats s;
    EXPECT(rtm_table_stats(snap_table, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 0);
    EXPECT(rtm_table_destroy(snap_table), RTM_NO_ERROR);
}

/* ---- Destroy while in use ------------------------------------------------------------ */

enum { USERS = 4, USER_HANDLES = 2 };

static rtm_table *doomed;
static rtm_handle doomed_handles[USERS][USER_HANDLES];
static atomic_int destroyed;
static atomic_long user_iterations[USERS];

static int allowed_before(uint32_t rc) {
    return rc == RTM_NO_ERROR || rc == RTM_ERROR_NO_MORE_ROUTES || rc == RTM_ERROR_INVALID_HANDLE ||
           rc == RTM_ERROR_BUSY || rc == RTM_ERROR_NO_SYSTEM_RESOURCES;
}

static void *user(void *arg) {
    int u = (int)(intptr_t)arg;
    for (;;) {
        /* Read the flag first: if it was set, destroy had returned before these calls. */
        int after = atomic_load(&destroyed);
        uint32_t rcs[8];
        rtm_route r, buf[8];
        uint32_t k;
        rtm_handle h;
        uint8_t addr[4] = {10, (uint8_t)u, 3, 3};
        rtm_route add = route4("10.200.0.0", 16, (uint32_t)u, 1, 1, 1);
        rcs[0] = rtm_enumerate_get_next_route(doomed_handles[u][0], &r);
        rcs[1] = rtm_enumerate_get_next_routes(doomed_handles[u][1], buf, 8, &k);
        rcs[2] = rtm_lookup(doomed, addr, &r);
        rcs[3] = rtm_add_route(doomed, &add);
        rcs[4] = rtm_delete_route(doomed, &add);
        rcs[5] = rtm_create_enumeration_handle(doomed, 0, NULL, &h);
        rcs[6] = rcs[5] == RTM_NO_ERROR ? rtm_close_enumeration_handle(h) : RTM_ERROR_INVALID_HANDLE;
        rcs[7] = rtm_collect(doomed);
        for (int i = 0; i < 8; i++) {
            if (after) {
                if (rcs[i] != RTM_ERROR_INVALID_HANDLE) {
                    fprintf(stderr, "user %d call %d after destroy: %u\n", u, i, rcs[i]);
                    exit(1);
                }
            } else {
                CHECK(allowed_before(rcs[i]));
            }
        }
        atomic_fetch_add(&user_iterations[u], 1);
        if (after) return NULL;
    }
}

static void test_destroy_while_in_use(void) {
    for (int round = 0; round < 10; round++) {
        EXPECT(rtm_table_create(4, 64, &doomed), RTM_NO_ERROR);
        for (int i = 0; i < 2000; i++) {
            char net[32];
            snprintf(net, sizeof net, "10.%d.%d.0", i / 256, i % 256);
            rtm_route r = route4(net, 24, 1, 1, 1, (uint64_t)i);
            EXPECT(rtm_add_route(doomed, &r), RTM_NO_ERROR);
        }
        for (int u = 0; u < USERS; u++)
            for (int j = 0; j < USER_HANDLES; j++)
                EXPECT(rtm_create_enumeration_handle(doomed, 0, NULL, &doomed_handles[u][j]), RTM_NO_ERROR);
        atomic_store(&destroyed, 0);
        pthread_t th[USERS];
        for (int u = 0; u < USERS; u++) {
            atomic_store(&user_iterations[u], 0);
            CHECK(pthread_create(&th[u], NULL, user, (void *)(intptr_t)u) == 0);
        }
        /* Let every user get going (a count, not a clock), then destroy under them. */
        for (int u = 0; u < USERS; u++)
            while (atomic_load(&user_iterations[u]) < 20 + round * 10) sched_yield();
        EXPECT(rtm_table_destroy(doomed), RTM_NO_ERROR);
        atomic_store(&destroyed, 1);
        for (int u = 0; u < USERS; u++) CHECK(pthread_join(th[u], NULL) == 0);
        EXPECT(rtm_table_destroy(doomed), RTM_ERROR_INVALID_HANDLE);
        for (int u = 0; u < USERS; u++)
            for (int j = 0; j < USER_HANDLES; j++)
                EXPECT(rtm_close_enumeration_handle(doomed_handles[u][j]), RTM_ERROR_INVALID_HANDLE);
    }
}

/* ---- BUSY: two threads on one handle ------------------------------------------------- */

enum { BUSY_ROUTES = 20000, MAX_ROUNDS = 5000 };

static rtm_table *shared_table;
static rtm_handle shared_handle;
static atomic_int ready;
static unsigned char taken[BUSY_ROUTES];

struct drainer {
    long busy;
    size_t got;
};

static void *drain_shared(void *arg) {
    struct drainer *d = arg;
    d->busy = 0;
    d->got = 0;
    uint64_t last = 0;
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&ready) < 2) {
    }
    for (;;) {
        rtm_route r;
        uint32_t rc = rtm_enumerate_get_next_route(shared_handle, &r);
        if (rc == RTM_ERROR_BUSY) {
            d->busy++;
            continue;
        }
        if (rc == RTM_ERROR_NO_MORE_ROUTES) return NULL;
        EXPECT(rc, RTM_NO_ERROR);
        CHECK(r.value < BUSY_ROUTES);
        CHECK(d->got == 0 || r.value > last); /* one caller's routes come in order */
        last = r.value;
        /* Each route goes to exactly one caller: a BUSY call took nothing. */
        CHECK(taken[r.value] == 0);
        taken[r.value] = 1;
        d->got++;
    }
}

static void test_busy(void) {
    EXPECT(rtm_table_create(4, 8, &shared_table), RTM_NO_ERROR);
    for (int i = 0; i < BUSY_ROUTES; i++) {
        char net[32];
        snprintf(net, sizeof net, "10.%d.%d.0", i / 256, i % 256);
        rtm_route r = route4(net, 24, 1, 1, 1, (uint64_t)i);
        EXPECT(rtm_add_route(shared_table, &r), RTM_NO_ERROR);
    }
    long busy = 0;
    int rounds = 0;
    while (busy == 0 && rounds < MAX_ROUNDS) {
        rounds++;
        memset(taken, 0, sizeof taken);
        EXPECT(rtm_create_enumeration_handle(shared_table, 0, NULL, &shared_handle), RTM_NO_ERROR);
        atomic_store(&ready, 0);
        struct drainer d[2];
        pthread_t th[2];
        for (int i = 0; i < 2; i++) CHECK(pthread_create(&th[i], NULL, drain_shared, &d[i]) == 0);
        for (int i = 0; i < 2; i++) CHECK(pthread_join(th[i], NULL) == 0);
        CHECK(d[0].got + d[1].got == BUSY_ROUTES);
        for (int i = 0; i < BUSY_ROUTES; i++) CHECK(taken[i]);
        busy += d[0].busy + d[1].busy;
        EXPECT(rtm_close_enumeration_handle(shared_handle), RTM_NO_ERROR);
    }
    /* Rounds go on until the two threads ran at the same time (on a loaded machine they
     * may not for a while); then they collide on nearly every call. */
    CHECK(busy > 0);
    printf("threads: %ld BUSY returns in %d round(s)\n", busy, rounds);
    EXPECT(rtm_table_destroy(shared_table), RTM_NO_ERROR);
}

/* ---- Racing closes ------------------------------------------------------------------- */

static atomic_int close_ok, close_gate;

static void *closer(void *arg) {
    (void)arg;
    atomic_fetch_add(&close_gate, 1);
    while (atomic_load(&close_gate) < 3) {
    }
    uint32_t rc = rtm_close_enumeration_handle(shared_handle);
    if (rc == RTM_NO_ERROR) atomic_fetch_add(&close_ok, 1);
    else CHECK(rc == RTM_ERROR_INVALID_HANDLE || rc == RTM_ERROR_BUSY);
    return NULL;
}

static void test_racing_closes(void) {
    EXPECT(rtm_table_create(6, 4, &shared_table), RTM_NO_ERROR);
    for (int round = 0; round < 200; round++) {
        EXPECT(rtm_create_enumeration_handle(shared_table, 0, NULL, &shared_handle), RTM_NO_ERROR);
        atomic_store(&close_ok, 0);
        atomic_store(&close_gate, 0);
        pthread_t th[3];
        for (int i = 0; i < 3; i++) CHECK(pthread_create(&th[i], NULL, closer, NULL) == 0);
        for (int i = 0; i < 3; i++) CHECK(pthread_join(th[i], NULL) == 0);
        /* A close that met another close's call in flight may be BUSY; at most one wins,
         * and the handle ends closed. */
        CHECK(atomic_load(&close_ok) <= 1);
        uint32_t rc = rtm_close_enumeration_handle(shared_handle);
        CHECK(atomic_load(&close_ok) == 1 ? rc == RTM_ERROR_INVALID_HANDLE : rc == RTM_NO_ERROR);
        rtm_stats s;
        EXPECT(rtm_table_stats(shared_table, &s), RTM_NO_ERROR);
        CHECK(s.open_enumerations == 0);
    }
    EXPECT(rtm_table_destroy(shared_table), RTM_NO_ERROR);
}

/* ---- A feed consumer alongside a writer ---------------------------------------------- */

enum { FEED_NETS = 64, FEED_OPS = 20000 };

static rtm_table *feed_table;
static atomic_int feed_writer_done;

static rtm_route feed_route(uint32_t x) {
    char net[32];
    snprintf(net, sizeof net, "10.0.%u.0", x % FEED_NETS);
    rtm_route r = route4(net, 24, 1 + x / FEED_NETS % 3, 1, 1, x);
    r.priority = x / 7 % 4;
    return r;
}

static void *feed_writer(void *arg) {
    (void)arg;
    uint32_t seed = 7;
    for (int i = 0; i < FEED_OPS; i++) {
        seed = seed * 1103515245u + 12345u;
        rtm_route r = feed_route(seed >> 8);
        if (seed >> 30 == 0) {
            uint32_t rc = rtm_delete_route(feed_table, &r);
            CHECK(rc == RTM_NO_ERROR || rc == RTM_ERROR_NO_MORE_ROUTES);
        } else {
            EXPECT(rtm_add_route(feed_table, &r), RTM_NO_ERROR);
        }
    }
    atomic_store(&feed_writer_done, 1);
    return NULL;
}

/* Applies the feed's messages to a copy of every network's best route while the writer
 * runs; each message must start from the copy's state; at the end the copy is the table's. */
static void test_feed_follows_writer(void) {
    EXPECT(rtm_table_create(4, 4, &feed_table), RTM_NO_ERROR);
    rtm_feed feed;
    EXPECT(rtm_feed_open(feed_table, 0, NULL, &feed), RTM_NO_ERROR);
    atomic_store(&feed_writer_done, 0);
    pthread_t w;
    CHECK(pthread_create(&w, NULL, feed_writer, NULL) == 0);
    static rtm_route best[FEED_NETS];
    static int has[FEED_NETS];
    long messages = 0;
    for (;;) {
        int done = atomic_load(&feed_writer_done);
        uint32_t flags;
        rtm_route cur, prev;
        uint32_t rc = rtm_dequeue_route_change_message(feed, &flags, &cur, &prev);
        if (rc == RTM_ERROR_NO_MESSAGES) {
            if (done) break;
            continue;
        }
        CHECK(rc == RTM_NO_ERROR || rc == RTM_ERROR_MORE_MESSAGES);
        messages++;
        int n = (flags & RTM_CURRENT_BEST_ROUTE ? cur : prev).network[2];
        CHECK(n < FEED_NETS);
        if (flags & RTM_PREVIOUS_BEST_ROUTE) CHECK(has[n] && same_route(&best[n], &prev));
        else CHECK(!has[n]);
        has[n] = (flags & RTM_CURRENT_BEST_ROUTE) != 0;
        if (has[n]) best[n] = cur;
    }
    CHECK(pthread_join(w, NULL) == 0);
    for (int n = 0; n < FEED_NETS; n++) {
        rtm_route net = feed_route((uint32_t)n), out;
        uint32_t rc = rtm_best_route(feed_table, &net, &out);
        if (has[n]) {
            EXPECT(rc, RTM_NO_ERROR);
            CHECK(same_route(&out, &best[n]));
        } else {
            EXPECT(rc, RTM_ERROR_NO_MORE_ROUTES);
        }
    }
    CHECK(messages > 0);
    EXPECT(rtm_feed_close(feed), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(feed_table), RTM_NO_ERROR);
}

/* ---- A Fib read while it follows a writer -------------------------------------------- */

enum { FIB_VALUES = 20000 };

static rtm_table *fib_table;
static rtm_fib shared_fib;
static atomic_int fib_writer_done, fib_syncers_done;

static void *fib_writer(void *arg) {
    (void)arg;
    for (uint32_t v = 2; v <= FIB_VALUES; v++) {
        rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, v);
        EXPECT(rtm_add_route(fib_table, &r), RTM_NO_ERROR);
    }
    atomic_store(&fib_writer_done, 1);
    return NULL;
}

static void *fib_syncer(void *arg) {
    long *busy = arg;
    for (;;) {
        int done = atomic_load(&fib_writer_done);
        uint32_t rc = rtm_fib_sync(shared_fib, NULL);
        if (rc == RTM_ERROR_BUSY) {
            (*busy)++;
            continue;
        }
        EXPECT(rc, RTM_NO_ERROR);
        if (done) break;
    }
    atomic_fetch_add(&fib_syncers_done, 1);
    return NULL;
}

/* Lookups while two threads sync the Fib (one may find the other syncing: BUSY): each
 * returns a value the route had, and one reader's answers never go back. */
static void test_fib_follows_writer(void) {
    EXPECT(rtm_table_create(4, 4, &fib_table), RTM_NO_ERROR);
    rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, 1);
    EXPECT(rtm_add_route(fib_table, &r), RTM_NO_ERROR);
    EXPECT(rtm_fib_create(fib_table, &shared_fib), RTM_NO_ERROR);
    atomic_store(&fib_writer_done, 0);
    atomic_store(&fib_syncers_done, 0);
    long busy[2] = {0, 0};
    pthread_t w, s0, s1;
    CHECK(pthread_create(&w, NULL, fib_writer, NULL) == 0);
    CHECK(pthread_create(&s0, NULL, fib_syncer, &busy[0]) == 0);
    CHECK(pthread_create(&s1, NULL, fib_syncer, &busy[1]) == 0);
    uint32_t last = 0;
    uint8_t addrs[8] = {10, 1, 2, 3, 10, 200, 0, 1};
    while (atomic_load(&fib_syncers_done) < 2) {
        uint32_t hop, hops[2];
        uint8_t found[2];
        EXPECT(rtm_fib_lookup(shared_fib, addrs, &hop), RTM_NO_ERROR);
        CHECK(hop >= last && hop >= 1 && hop <= FIB_VALUES);
        last = hop;
        EXPECT(rtm_fib_lookup_batch(shared_fib, addrs, 2, hops, found), RTM_NO_ERROR);
        CHECK(found[0] && found[1] && hops[0] >= last && hops[1] >= hops[0] && hops[1] <= FIB_VALUES);
        last = hops[1];
    }
    CHECK(pthread_join(w, NULL) == 0);
    CHECK(pthread_join(s0, NULL) == 0);
    CHECK(pthread_join(s1, NULL) == 0);
    uint32_t hop;
    EXPECT(rtm_fib_lookup(shared_fib, addrs, &hop), RTM_NO_ERROR);
    CHECK(hop == FIB_VALUES);
    EXPECT(rtm_fib_destroy(shared_fib), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(fib_table), RTM_NO_ERROR);
}

/* ---- Commits: readers never see half a batch; racing calls on one batch ------------ */

enum { COMMIT_PASSES = 400, COMMIT_LOOKERS = 2, RACE_ROUNDS = 300 };

static rtm_table *commit_table;
static atomic_int committer_done;

/* The committer swaps 10.0.0.0/8 for its two /9s and back, one batch each way: a lookup
 * of 10.x always finds a route, and the two /9s are there together or not at all. */
static void *committer(void *arg) {
    (void)arg;
    rtm_route whole = route4("10.0.0.0", 8, 1, 1, 1, 8);
    rtm_route lo = route4("10.0.0.0", 9, 1, 1, 1, 9), hi = route4("10.128.0.0", 9, 1, 1, 1, 9);
    for (int p = 0; p < COMMIT_PASSES; p++) {
        rtm_batch *b;
        EXPECT(rtm_batch_create(4, &b), RTM_NO_ERROR);
        if (p % 2 == 0) {
            EXPECT(rtm_batch_delete_route(b, &whole), RTM_NO_ERROR);
            EXPECT(rtm_batch_add_route(b, &lo), RTM_NO_ERROR);
            EXPECT(rtm_batch_add_route(b, &hi), RTM_NO_ERROR);
        } else {
            EXPECT(rtm_batch_delete_route(b, &lo), RTM_NO_ERROR);
            EXPECT(rtm_batch_delete_route(b, &hi), RTM_NO_ERROR);
            EXPECT(rtm_batch_add_route(b, &whole), RTM_NO_ERROR);
        }
        uint64_t v;
        EXPECT(rtm_batch_commit(commit_table, b, &v), RTM_NO_ERROR);
    }
    atomic_store(&committer_done, 1);
    return NULL;
}

static void *commit_looker(void *arg) {
    (void)arg;
    uint8_t a[4] = {10, 1, 2, 3};
    rtm_route out, buf[8];
    while (!atomic_load(&committer_done)) {
        EXPECT(rtm_lookup(commit_table, a, &out), RTM_NO_ERROR);
        CHECK(out.value == 8 || out.value == 9);
        /* An enumeration sees the /8 alone or the two /9s. */
        rtm_handle h;
        EXPECT(rtm_create_enumeration_handle(commit_table, 0, NULL, &h), RTM_NO_ERROR);
        uint32_t n = 0;
        EXPECT(rtm_enumerate_get_next_routes(h, buf, 8, &n), RTM_NO_ERROR);
        CHECK((n == 1 && buf[0].value == 8) || (n == 2 && buf[0].value == 9 && buf[1].value == 9));
        EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
    }
    return NULL;
}

/* One batch, used by a thread that keeps adding while the main thread commits or destroys
 * it: every call returns a documented code, and nothing crashes, leaks or is used after
 * it is freed (ASan). */
static rtm_batch *_Atomic raced_batch;
static atomic_int race_round, race_done;

static void *batch_adder(void *arg) {
    (void)arg;
    rtm_route r = route4("172.16.0.0", 12, 1, 1, 1, 1);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        while (atomic_load(&race_round) != round * 2 + 1) sched_yield();
        rtm_batch *b = atomic_load(&raced_batch);
        for (;;) {
            uint32_t rc = rtm_batch_add_route(b, &r);
            if (rc == RTM_ERROR_INVALID_HANDLE) break; /* committed or destroyed */
            CHECK(rc == RTM_NO_ERROR || rc == RTM_ERROR_BUSY);
        }
        atomic_fetch_add(&race_done, 1);
    }
    return NULL;
}

static void test_commits_under_readers(void) {
    EXPECT(rtm_table_create(4, 2 * COMMIT_LOOKERS, &commit_table), RTM_NO_ERROR);
    rtm_route whole = route4("10.0.0.0", 8, 1, 1, 1, 8);
    EXPECT(rtm_add_route(commit_table, &whole), RTM_NO_ERROR);
    pthread_t c, l[COMMIT_LOOKERS];
    CHECK(pthread_create(&c, NULL, committer, NULL) == 0);
    for (int i = 0; i < COMMIT_LOOKERS; i++) CHECK(pthread_create(&l[i], NULL, commit_looker, NULL) == 0);
    CHECK(pthread_join(c, NULL) == 0);
    for (int i = 0; i < COMMIT_LOOKERS; i++) CHECK(pthread_join(l[i], NULL) == 0);

    pthread_t a;
    CHECK(pthread_create(&a, NULL, batch_adder, NULL) == 0);
    for (int round = 0; round < RACE_ROUNDS; round++) {
        rtm_batch *b;
        EXPECT(rtm_batch_create(4, &b), RTM_NO_ERROR);
        atomic_store(&raced_batch, b);
        atomic_store(&race_round, round * 2 + 1);
        for (int i = 0; i < round % 50; i++) sched_yield();
        uint32_t rc = round % 2 ? rtm_batch_destroy(b) : rtm_batch_commit(commit_table, b, NULL);
        CHECK(rc == RTM_NO_ERROR || rc == RTM_ERROR_BUSY);
        /* Either way the batch is gone. */
        EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);
        while (atomic_load(&race_done) != round + 1) sched_yield();
        atomic_store(&race_round, round * 2 + 2);
    }
    CHECK(pthread_join(a, NULL) == 0);
    EXPECT(rtm_table_destroy(commit_table), RTM_NO_ERROR);
}

int main(void) {
    test_snapshots_under_writers();
    test_destroy_while_in_use();
    test_racing_closes();
    test_feed_follows_writer();
    test_fib_follows_writer();
    test_busy();
    test_commits_under_readers();
    printf("threads: all checks passed\n");
    return 0;
}
