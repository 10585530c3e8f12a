/* Every function of rtm.h and every error path, from one thread: tables, routes, lookups,
 * enumeration flags, handle misuse (forged, stale, double close, destroyed table), slots,
 * block delete, stats. Exits non-zero on the first failed check. */
#include "check.h"

static rtm_table *table(uint8_t family, uint32_t max_enumerations) {
    rtm_table *t = NULL;
    EXPECT(rtm_table_create(family, max_enumerations, &t), RTM_NO_ERROR);
    CHECK(t != NULL);
    return t;
}

static void test_defines(void) {
    /* The values rtm.h documents. */
    CHECK(RTM_NO_ERROR == 0u && RTM_ERROR_INVALID_HANDLE == 6u && RTM_ERROR_INVALID_PARAMETER == 87u);
    CHECK(RTM_ERROR_BUSY == 170u && RTM_ERROR_NO_MORE_ROUTES == 259u);
    CHECK(RTM_ERROR_NO_SYSTEM_RESOURCES == 1450u);
    CHECK(RTM_ONLY_THIS_NETWORK == 0x1u && RTM_ONLY_THIS_INTERFACE == 0x2u);
    CHECK(RTM_ONLY_THIS_PROTOCOL == 0x4u && RTM_ONLY_BEST_ROUTES == 0x8u);
    CHECK(RTM_INCLUDE_DISABLED_ROUTES == 0x40000000u);
    CHECK(sizeof(rtm_handle) == 8);
    CHECK(sizeof(rtm_route) == 64);
}

static void test_create_destroy(void) {
    rtm_table *t = NULL;
    EXPECT(rtm_table_create(4, 8, NULL), RTM_ERROR_INVALID_PARAMETER);
    uint8_t bad_families[] = {0, 1, 5, 7, 46, 255};
    for (size_t i = 0; i < sizeof bad_families; i++) {
        EXPECT(rtm_table_create(bad_families[i], 8, &t), RTM_ERROR_INVALID_PARAMETER);
        CHECK(t == NULL);
    }

    rtm_stats s;
    t = table(4, 0); /* clamped to 1 */
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.max_enumerations == 1 && s.family == 4 && s.live_routes == 0 && s.version == 0);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    t = table(6, 100000); /* clamped to 4096 */
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.max_enumerations == 4096 && s.family == 6);

    /* A destroyed table is an error everywhere, not undefined behaviour. */
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(t), RTM_ERROR_INVALID_HANDLE);
    rtm_route r = route6("2001:db8::", 32, 1, 1, 1, 1), out;
    uint64_t n;
    rtm_handle h;
    uint32_t deleted;
    EXPECT(rtm_add_route(t, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_delete_route(t, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_get_route(t, &r, &out), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_best_route(t, &r, &out), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_lookup(t, r.network, &out), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_route_count(t, &n), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_table_stats(t, &s), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_collect(t), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_block_delete_routes(t, 0, NULL, &deleted), RTM_ERROR_INVALID_HANDLE);

    /* NULL and forged table pointers. */
    EXPECT(rtm_table_destroy(NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_add_route(NULL, &r), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_collect(NULL), RTM_ERROR_INVALID_PARAMETER);
    rtm_table *forged[] = {(rtm_table *)(uintptr_t)1, (rtm_table *)(uintptr_t)0xdeadbeef,
                           (rtm_table *)&r, (rtm_table *)(uintptr_t)UINTPTR_MAX};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        EXPECT(rtm_table_destroy(forged[i]), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_route_count(forged[i], &n), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_lookup(forged[i], r.network, &out), RTM_ERROR_INVALID_HANDLE);
    }
}

static void test_add_get_delete(void) {
    rtm_table *t = table(4, 8);
    rtm_route r = route4("10.0.0.0", 8, 2, 3, 1, 42), out, absent = route4("10.0.0.0", 8, 2, 3, 9, 0);
    r.priority = 5;
    r.metric = 6;
    EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    EXPECT(rtm_get_route(t, &r, &out), RTM_NO_ERROR);
    CHECK(same_route(&r, &out));

    /* Same key: replaced. */
    r.value = 43;
    r.metric = 1;
    EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    uint64_t n = 0;
    EXPECT(rtm_route_count(t, &n), RTM_NO_ERROR);
    CHECK(n == 1);
    EXPECT(rtm_get_route(t, &r, &out), RTM_NO_ERROR);
    CHECK(out.value == 43 && out.metric == 1);

    /* A miss leaves *out alone. */
    memset(&out, 0xab, sizeof out);
    EXPECT(rtm_get_route(t, &absent, &out), RTM_ERROR_NO_MORE_ROUTES);
    for (size_t i = 0; i < sizeof out; i++) CHECK(((unsigned char *)&out)[i] == 0xab);

    /* Delete reads only the key. */
    rtm_route key = r;
    key.value = 0;
    key.priority = 77;
    key.enabled = 0;
    EXPECT(rtm_delete_route(t, &absent), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_delete_route(t, &key), RTM_NO_ERROR);
    EXPECT(rtm_delete_route(t, &key), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_get_route(t, &r, &out), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_route_count(t, &n), RTM_NO_ERROR);
    CHECK(n == 0);

    EXPECT(rtm_get_route(t, &r, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_get_route(t, NULL, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_route_count(t, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_table_stats(t, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

/* Malformed routes are INVALID_PARAMETER for every call that reads one. */
static void expect_rejected(rtm_table *t, const rtm_route *bad) {
    rtm_route out;
    rtm_handle h;
    uint32_t deleted = 12345;
    EXPECT(rtm_add_route(t, bad), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_delete_route(t, bad), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_get_route(t, bad, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_best_route(t, bad, &out), RTM_ERROR_INVALID_PARAMETER);
    uint32_t flags[] = {RTM_ONLY_THIS_NETWORK, RTM_ONLY_THIS_PROTOCOL, RTM_ONLY_THIS_INTERFACE,
                        RTM_ONLY_WITHIN_NETWORK, RTM_START_AFTER_ROUTE};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        EXPECT(rtm_create_enumeration_handle(t, flags[i], bad, &h), RTM_ERROR_INVALID_PARAMETER);
        EXPECT(rtm_block_delete_routes(t, flags[i], bad, &deleted), RTM_ERROR_INVALID_PARAMETER);
    }
    CHECK(deleted == 12345);
}

static void test_invalid_routes(void) {
    rtm_table *t4 = table(4, 8), *t6 = table(6, 8);
    rtm_route good4 = route4("10.0.0.0", 8, 1, 1, 1, 1), good6 = route6("2001:db8::", 32, 1, 1, 1, 1);
    EXPECT(rtm_add_route(t4, &good4), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t6, &good6), RTM_NO_ERROR);

    rtm_route bad = good4;
    bad.prefix_len = 6; /* 10.0.0.0/6 has a host bit */
    expect_rejected(t4, &bad);
    bad = route4("10.1.2.3", 8, 1, 1, 1, 1);
    expect_rejected(t4, &bad);
    bad = good4;
    bad.prefix_len = 33;
    expect_rejected(t4, &bad);
    bad.prefix_len = 255;
    expect_rejected(t4, &bad);
    bad = good4;
    bad.family = 0;
    expect_rejected(t4, &bad);
    bad.family = 5;
    expect_rejected(t4, &bad);
    /* A family that is not the table's. */
    expect_rejected(t4, &good6);
    expect_rejected(t6, &good4);
    bad = good6;
    bad.prefix_len = 129;
    expect_rejected(t6, &bad);
    bad = good6;
    bad.network[15] = 1;
    expect_rejected(t6, &bad);

    /* NULL where a route is needed. */
    rtm_route out;
    EXPECT(rtm_add_route(t4, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_delete_route(t4, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_best_route(t4, NULL, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_best_route(t4, &good4, NULL), RTM_ERROR_INVALID_PARAMETER);

    /* Nothing of that reached the tables. */
    uint64_t n;
    EXPECT(rtm_route_count(t4, &n), RTM_NO_ERROR);
    CHECK(n == 1);
    EXPECT(rtm_route_count(t6, &n), RTM_NO_ERROR);
    CHECK(n == 1);
    EXPECT(rtm_table_destroy(t4), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(t6), RTM_NO_ERROR);
}

static void test_ipv4_bytes_and_enabled(void) {
    rtm_table *t = table(4, 8);
    rtm_route r = route4("172.16.0.0", 12, 1, 1, 1, 7);
    memset(r.network + 4, 0xee, 12); /* ignored on input */
    memset(r.next_hop + 4, 0xdd, 12);
    r.enabled = 9; /* anything but 0 is enabled */
    EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    rtm_route out;
    uint8_t addr[16] = {172, 20, 1, 1};
    memset(addr + 4, 0xcc, 12); /* rtm_lookup reads 4 bytes for IPv4 */
    EXPECT(rtm_lookup(t, addr, &out), RTM_NO_ERROR);
    CHECK(out.enabled == 1 && out.value == 7 && out.prefix_len == 12 && out.family == 4);
    for (int i = 4; i < 16; i++) CHECK(out.network[i] == 0 && out.next_hop[i] == 0);
    CHECK(out.next_hop[0] == 192 && out.next_hop[3] == 1);
    /* The same key, whatever the ignored bytes say. */
    rtm_route clean = route4("172.16.0.0", 12, 1, 1, 1, 0);
    EXPECT(rtm_get_route(t, &clean, &out), RTM_NO_ERROR);
    CHECK(out.value == 7);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

static void test_lookup_and_best(void) {
    rtm_table *t = table(4, 8);
    rtm_route routes[] = {
        route4("0.0.0.0", 0, 1, 1, 1, 100),  route4("10.0.0.0", 8, 1, 1, 1, 8),
        route4("10.1.0.0", 16, 1, 1, 1, 16), route4("10.1.2.0", 24, 1, 1, 1, 24),
        route4("10.1.2.128", 25, 1, 1, 1, 25),
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) EXPECT(rtm_add_route(t, &routes[i]), RTM_NO_ERROR);
    struct { uint8_t a[4]; uint64_t want; } cases[] = {
        {{10, 1, 2, 3}, 24}, {{10, 1, 2, 200}, 25}, {{10, 1, 3, 1}, 16}, {{10, 2, 0, 0}, 8}, {{11, 0, 0, 0}, 100},
    };
    rtm_route out;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        EXPECT(rtm_lookup(t, cases[i].a, &out), RTM_NO_ERROR);
        CHECK(out.value == cases[i].want);
    }

    /* A better route of another protocol on 10.1.2.0/24 wins; a disabled one never. */
    rtm_route better = route4("10.1.2.0", 24, 2, 1, 2, 240);
    better.priority = 0;
    routes[3].priority = 10;
    EXPECT(rtm_add_route(t, &routes[3]), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &better), RTM_NO_ERROR);
    rtm_route disabled = route4("10.1.2.0", 24, 3, 1, 3, 999);
    disabled.enabled = 0;
    EXPECT(rtm_add_route(t, &disabled), RTM_NO_ERROR);
    uint8_t a[4] = {10, 1, 2, 3};
    EXPECT(rtm_lookup(t, a, &out), RTM_NO_ERROR);
    CHECK(out.value == 240);
    EXPECT(rtm_best_route(t, &routes[3], &out), RTM_NO_ERROR);
    CHECK(same_route(&out, &better));

    /* A network with only a disabled route has no best route; the lookup falls back. */
    rtm_route only_disabled = route4("10.9.0.0", 16, 1, 1, 1, 5);
    only_disabled.enabled = 0;
    EXPECT(rtm_add_route(t, &only_disabled), RTM_NO_ERROR);
    EXPECT(rtm_best_route(t, &only_disabled, &out), RTM_ERROR_NO_MORE_ROUTES);
    uint8_t b[4] = {10, 9, 1, 1};
    EXPECT(rtm_lookup(t, b, &out), RTM_NO_ERROR);
    CHECK(out.value == 8);

    /* No default route: a miss. */
    EXPECT(rtm_delete_route(t, &routes[0]), RTM_NO_ERROR);
    uint8_t c[4] = {11, 0, 0, 0};
    memset(&out, 0x5a, sizeof out);
    EXPECT(rtm_lookup(t, c, &out), RTM_ERROR_NO_MORE_ROUTES);
    CHECK(out.value == 0x5a5a5a5a5a5a5a5aull);
    EXPECT(rtm_lookup(t, NULL, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_lookup(t, c, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);

    /* IPv6 reads 16 bytes. */
    t = table(6, 8);
    rtm_route r6 = route6("2001:db8:1::", 48, 1, 1, 1, 48);
    EXPECT(rtm_add_route(t, &r6), RTM_NO_ERROR);
    uint8_t a6[16];
    CHECK(inet_pton(AF_INET6, "2001:db8:1:2::3", a6) == 1);
    EXPECT(rtm_lookup(t, a6, &out), RTM_NO_ERROR);
    CHECK(out.value == 48 && out.family == 6 && same_key(&out, &r6));
    CHECK(inet_pton(AF_INET6, "2001:db8:2::", a6) == 1);
    EXPECT(rtm_lookup(t, a6, &out), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

/* rtm_lookup_len reads no more than addr_len bytes, and only the table family's length
 * is accepted. The short buffers are heap blocks of exactly their size, so that a read
 * past them is a heap-buffer-overflow under AddressSanitizer. */
static void test_lookup_len(void) {
    rtm_table *t4 = table(4, 8);
    rtm_route r4 = route4("10.0.0.0", 8, 1, 1, 1, 8);
    EXPECT(rtm_add_route(t4, &r4), RTM_NO_ERROR);
    uint8_t *a4 = malloc(4);
    CHECK(a4 != NULL);
    memcpy(a4, (uint8_t[4]){10, 1, 2, 3}, 4);
    rtm_route out;
    EXPECT(rtm_lookup_len(t4, a4, 4, &out), RTM_NO_ERROR);
    CHECK(out.value == 8 && out.family == 4);
    uint8_t a16[16] = {10, 1, 2, 3};
    EXPECT(rtm_lookup_len(t4, a16, 16, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_lookup_len(t4, a4, 3, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_lookup_len(t4, a4, 0, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_lookup_len(t4, NULL, 4, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_lookup_len(t4, a4, 4, NULL), RTM_ERROR_INVALID_PARAMETER);
    uint8_t miss[4] = {11, 0, 0, 0};
    EXPECT(rtm_lookup_len(t4, miss, sizeof miss, &out), RTM_ERROR_NO_MORE_ROUTES);

    rtm_table *t6 = table(6, 8);
    rtm_route r6 = route6("2001:db8::", 32, 1, 1, 1, 32);
    EXPECT(rtm_add_route(t6, &r6), RTM_NO_ERROR);
    uint8_t a6[16];
    CHECK(inet_pton(AF_INET6, "2001:db8::1", a6) == 1);
    EXPECT(rtm_lookup_len(t6, a6, sizeof a6, &out), RTM_NO_ERROR);
    CHECK(out.value == 32 && out.family == 6);
    /* An IPv4 address given to an IPv6 table: refused, and not read past its 4 bytes. */
    EXPECT(rtm_lookup_len(t6, a4, 4, &out), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_lookup_len(t6, a6, 17, &out), RTM_ERROR_INVALID_PARAMETER);

    EXPECT(rtm_table_destroy(t4), RTM_NO_ERROR);
    EXPECT(rtm_lookup_len(t4, a4, 4, &out), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_table_destroy(t6), RTM_NO_ERROR);
    free(a4);
}

/* Drains a handle into `out` (at most `cap` routes); returns how many; checks the
 * ascending order and that the handle then stays exhausted. */
static size_t drain(rtm_handle h, rtm_route *out, size_t cap) {
    size_t n = 0;
    rtm_route r;
    uint32_t rc;
    while ((rc = rtm_enumerate_get_next_route(h, &r)) == RTM_NO_ERROR) {
        CHECK(n < cap);
        if (n > 0) CHECK(key_cmp(&out[n - 1], &r) < 0);
        out[n++] = r;
    }
    EXPECT(rc, RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_ERROR_NO_MORE_ROUTES);
    return n;
}

static size_t count_with(rtm_table *t, uint32_t flags, const rtm_route *criteria) {
    rtm_handle h;
    rtm_route buf[64];
    EXPECT(rtm_create_enumeration_handle(t, flags, criteria, &h), RTM_NO_ERROR);
    size_t n = drain(h, buf, 64);
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
    return n;
}

static void test_enumeration_flags(void) {
    rtm_table *t = table(4, 16);
    /* 10.0.0.0/8 (proto 1 if 1, proto 2 if 2 better), 10.1.0.0/16 (proto 1 if 2),
     * 10.1.2.0/24 (proto 2 if 1, disabled), 192.168.0.0/16 (proto 1 if 1). */
    rtm_route a = route4("10.0.0.0", 8, 1, 1, 1, 1), b = route4("10.0.0.0", 8, 2, 2, 1, 2);
    rtm_route c = route4("10.1.0.0", 16, 1, 2, 1, 3), d = route4("10.1.2.0", 24, 2, 1, 1, 4);
    rtm_route e = route4("192.168.0.0", 16, 1, 1, 1, 5);
    a.priority = 10;
    b.priority = 5;
    d.enabled = 0;
    rtm_route all[] = {a, b, c, d, e};
    for (int i = 0; i < 5; i++) EXPECT(rtm_add_route(t, &all[i]), RTM_NO_ERROR);

    CHECK(count_with(t, 0, NULL) == 4);
    CHECK(count_with(t, RTM_INCLUDE_DISABLED_ROUTES, NULL) == 5);
    CHECK(count_with(t, RTM_ONLY_THIS_NETWORK, &a) == 2);
    CHECK(count_with(t, RTM_ONLY_THIS_INTERFACE, &c) == 2 /* b, c */);
    CHECK(count_with(t, RTM_ONLY_THIS_INTERFACE | RTM_INCLUDE_DISABLED_ROUTES, &a) == 3 /* a, d, e */);
    CHECK(count_with(t, RTM_ONLY_THIS_PROTOCOL, &a) == 3 /* a, c, e */);
    CHECK(count_with(t, RTM_ONLY_BEST_ROUTES, NULL) == 3 /* b, c, e */);
    /* Best among all the network's routes, then filtered: a is not 10/8's best. */
    CHECK(count_with(t, RTM_ONLY_BEST_ROUTES | RTM_ONLY_THIS_PROTOCOL, &a) == 2 /* c, e */);
    CHECK(count_with(t, RTM_ONLY_WITHIN_NETWORK, &a) == 3 /* a, b, c */);
    CHECK(count_with(t, RTM_ONLY_WITHIN_NETWORK | RTM_INCLUDE_DISABLED_ROUTES, &a) == 4);
    CHECK(count_with(t, RTM_START_AFTER_ROUTE, &a) == 3 /* b, c, e */);
    CHECK(count_with(t, RTM_START_AFTER_ROUTE | RTM_ONLY_WITHIN_NETWORK, &b) == 1 /* c */);
    CHECK(count_with(t, RTM_ONLY_THIS_NETWORK | RTM_ONLY_THIS_PROTOCOL | RTM_ONLY_THIS_INTERFACE, &b) == 1);

    /* The order and content of a full enumeration. */
    rtm_handle h;
    rtm_route got[8];
    EXPECT(rtm_create_enumeration_handle(t, RTM_INCLUDE_DISABLED_ROUTES, NULL, &h), RTM_NO_ERROR);
    CHECK(drain(h, got, 8) == 5);
    for (int i = 0; i < 5; i++) CHECK(same_route(&got[i], &all[i]));
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);

    /* Criteria may be NULL when no flag reads it, and is not read then. */
    rtm_route garbage;
    memset(&garbage, 0xff, sizeof garbage);
    CHECK(count_with(t, RTM_ONLY_BEST_ROUTES, &garbage) == 3);
    EXPECT(rtm_create_enumeration_handle(t, RTM_ONLY_THIS_PROTOCOL, NULL, &h), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_create_enumeration_handle(t, RTM_ONLY_THIS_NETWORK, NULL, &h), RTM_ERROR_INVALID_PARAMETER);
    /* Unknown flag bits. */
    uint32_t unknown[] = {0x10, 0x20, 0x80, 0x400, 0x80000000u, 0x20000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        EXPECT(rtm_create_enumeration_handle(t, unknown[i], &a, &h), RTM_ERROR_INVALID_PARAMETER);
        EXPECT(rtm_block_delete_routes(t, unknown[i], &a, NULL), RTM_ERROR_INVALID_PARAMETER);
    }
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, NULL), RTM_ERROR_INVALID_PARAMETER);
    rtm_stats s;
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 0);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

static void test_snapshot_and_handle_misuse(void) {
    rtm_table *t = table(4, 4);
    for (int i = 0; i < 10; i++) {
        char net[32];
        snprintf(net, sizeof net, "10.%d.0.0", i);
        rtm_route r = route4(net, 16, 1, 1, 1, (uint64_t)i);
        EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    }
    rtm_handle h;
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_NO_ERROR);
    rtm_route r;
    EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_NO_ERROR);
    CHECK(r.value == 0);
    /* NULL out: an error, and the enumeration does not advance. */
    EXPECT(rtm_enumerate_get_next_route(h, NULL), RTM_ERROR_INVALID_PARAMETER);
    /* Writers go on; the snapshot does not see them. */
    rtm_route gone = route4("10.5.0.0", 16, 1, 1, 1, 0), added = route4("10.3.1.0", 24, 1, 1, 1, 99);
    rtm_route changed = route4("10.7.0.0", 16, 1, 1, 1, 700);
    EXPECT(rtm_delete_route(t, &gone), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &added), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &changed), RTM_NO_ERROR);
    for (uint64_t i = 1; i < 10; i++) {
        EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_NO_ERROR);
        CHECK(r.value == i);
    }
    EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_ERROR_NO_MORE_ROUTES);

    /* Forged values near the real one, and far from it. */
    rtm_handle forged[] = {0, 1, ~(rtm_handle)0, h + 1, h - 1, h ^ (1ull << 32), h ^ (1ull << 44),
                           h ^ (1ull << 63), h + (1ull << 32), 0x123456789abcdefull};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        EXPECT(rtm_enumerate_get_next_route(forged[i], &r), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_close_enumeration_handle(forged[i]), RTM_ERROR_INVALID_HANDLE);
        uint32_t n = 77;
        EXPECT(rtm_enumerate_get_next_routes(forged[i], &r, 1, &n), RTM_ERROR_INVALID_HANDLE);
        CHECK(n == 0);
    }
    /* Close, double close, stale use, even after the slot is reused. */
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
    EXPECT(rtm_close_enumeration_handle(h), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_ERROR_INVALID_HANDLE);
    rtm_handle again[4];
    for (int i = 0; i < 4; i++) {
        EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &again[i]), RTM_NO_ERROR);
        CHECK(again[i] != h);
    }
    EXPECT(rtm_enumerate_get_next_route(h, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_close_enumeration_handle(h), RTM_ERROR_INVALID_HANDLE);
    /* The slots are full. */
    rtm_handle extra;
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &extra), RTM_ERROR_NO_SYSTEM_RESOURCES);
    EXPECT(rtm_block_delete_routes(t, 0, NULL, NULL), RTM_ERROR_NO_SYSTEM_RESOURCES);
    EXPECT(rtm_close_enumeration_handle(again[0]), RTM_NO_ERROR);
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &extra), RTM_NO_ERROR);
    /* The new snapshot sees the writes. */
    EXPECT(rtm_enumerate_get_next_route(extra, &r), RTM_NO_ERROR);
    CHECK(r.value == 0);
    for (int i = 1; i < 4; i++) EXPECT(rtm_close_enumeration_handle(again[i]), RTM_NO_ERROR);
    EXPECT(rtm_close_enumeration_handle(extra), RTM_NO_ERROR);

    /* Handles of a destroyed table, open or not, stay invalid, also once new tables exist. */
    rtm_handle open1, open2;
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &open1), RTM_NO_ERROR);
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &open2), RTM_NO_ERROR);
    EXPECT(rtm_enumerate_get_next_route(open2, &r), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    EXPECT(rtm_enumerate_get_next_route(open1, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_close_enumeration_handle(open2), RTM_ERROR_INVALID_HANDLE);
    for (int i = 0; i < 50; i++) {
        rtm_table *u = table(4, 4);
        rtm_handle hu;
        EXPECT(rtm_create_enumeration_handle(u, 0, NULL, &hu), RTM_NO_ERROR);
        CHECK(hu != open1 && hu != open2 && hu != h);
        EXPECT(rtm_enumerate_get_next_route(open1, &r), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_close_enumeration_handle(open2), RTM_ERROR_INVALID_HANDLE);
        /* Handles carry their table: this one with another table's identity is forged. */
        EXPECT(rtm_close_enumeration_handle(hu ^ (1ull << 50)), RTM_ERROR_INVALID_HANDLE);
        if (i % 2) EXPECT(rtm_close_enumeration_handle(hu), RTM_NO_ERROR);
        EXPECT(rtm_table_destroy(u), RTM_NO_ERROR);
        EXPECT(rtm_close_enumeration_handle(hu), RTM_ERROR_INVALID_HANDLE);
    }
}

static void test_batch(void) {
    rtm_table *t = table(6, 4);
    for (int i = 0; i < 10; i++) {
        char net[64];
        snprintf(net, sizeof net, "2001:db8:%x::", i);
        rtm_route r = route6(net, 48, 1, 1, 1, (uint64_t)i);
        EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    }
    rtm_handle h;
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_NO_ERROR);
    rtm_route buf[4];
    uint32_t n = 0;
    uint64_t next = 0;
    EXPECT(rtm_enumerate_get_next_routes(h, buf, 0, &n), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_enumerate_get_next_routes(h, NULL, 3, &n), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_enumerate_get_next_routes(h, buf, 3, NULL), RTM_ERROR_INVALID_PARAMETER);
    uint32_t sizes[] = {3, 3, 3, 1};
    for (int b = 0; b < 4; b++) {
        EXPECT(rtm_enumerate_get_next_routes(h, buf, 3, &n), RTM_NO_ERROR);
        CHECK(n == sizes[b]);
        for (uint32_t i = 0; i < n; i++) CHECK(buf[i].value == next++ && buf[i].family == 6);
    }
    n = 99;
    EXPECT(rtm_enumerate_get_next_routes(h, buf, 3, &n), RTM_ERROR_NO_MORE_ROUTES);
    CHECK(n == 0);
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
    EXPECT(rtm_enumerate_get_next_routes(h, buf, 3, &n), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

/* Commits: rtm_batch_* queue changes that apply at one version, all or nothing. */
static uint64_t table_version(rtm_table *t) {
    rtm_stats s;
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    return s.version;
}

static uint64_t routes_in(rtm_table *t) {
    uint64_t n = 0;
    EXPECT(rtm_route_count(t, &n), RTM_NO_ERROR);
    return n;
}

static rtm_batch *batch(uint8_t family) {
    rtm_batch *b = NULL;
    EXPECT(rtm_batch_create(family, &b), RTM_NO_ERROR);
    CHECK(b != NULL);
    return b;
}

static void test_commit(void) {
    rtm_table *t = table(4, 4);
    rtm_route old = route4("10.0.0.0", 8, 14, 1, 1, 7), other = route4("192.168.0.0", 16, 14, 1, 1, 9);
    EXPECT(rtm_add_route(t, &old), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &other), RTM_NO_ERROR);
    uint64_t before = table_version(t);
    rtm_handle h; /* a snapshot from before the commit */
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_NO_ERROR);

    /* Withdraw the /8, announce its two halves, delete another route, as one commit. */
    rtm_route lo = route4("10.0.0.0", 9, 14, 1, 2, 8), hi = route4("10.128.0.0", 9, 14, 1, 2, 8);
    rtm_batch *b = batch(4);
    EXPECT(rtm_batch_withdraw_route(b, &old), RTM_NO_ERROR);
    EXPECT(rtm_batch_add_route(b, &lo), RTM_NO_ERROR);
    EXPECT(rtm_batch_add_route(b, &hi), RTM_NO_ERROR);
    EXPECT(rtm_batch_delete_route(b, &other), RTM_NO_ERROR);
    hi.value = 10; /* a later add of the same key wins */
    EXPECT(rtm_batch_add_route(b, &hi), RTM_NO_ERROR);
    uint64_t v = 0;
    EXPECT(rtm_batch_commit(t, b, &v), RTM_NO_ERROR);
    CHECK(v == table_version(t) && v == before + 1);
    CHECK(routes_in(t) == 2);
    rtm_route out;
    uint8_t a[4] = {10, 1, 2, 3}, c[4] = {10, 200, 0, 1}, d[4] = {192, 168, 1, 1};
    EXPECT(rtm_lookup(t, a, &out), RTM_NO_ERROR);
    CHECK(same_route(&out, &lo));
    EXPECT(rtm_lookup(t, c, &out), RTM_NO_ERROR);
    CHECK(same_route(&out, &hi) && out.value == 10);
    EXPECT(rtm_lookup(t, d, &out), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_get_route(t, &old, &out), RTM_ERROR_NO_MORE_ROUTES);
    /* The snapshot from before sees none of it. */
    rtm_route seen[4];
    CHECK(drain(h, seen, 4) == 2);
    CHECK(same_route(&seen[0], &old) && same_route(&seen[1], &other));
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);

    /* The commit took the batch. */
    EXPECT(rtm_batch_add_route(b, &lo), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_commit(t, b, &v), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);

    /* An empty batch, and a withdraw of an absent route, commit nothing: the table's
     * version; `version` may be NULL. */
    EXPECT(rtm_batch_commit(t, batch(4), &v), RTM_NO_ERROR);
    CHECK(v == table_version(t) && v == before + 1);
    b = batch(4);
    EXPECT(rtm_batch_withdraw_route(b, &old), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t, b, NULL), RTM_NO_ERROR);
    CHECK(table_version(t) == before + 1);

    /* A delete of a route the same batch added, then a re-add. */
    b = batch(4);
    EXPECT(rtm_batch_add_route(b, &old), RTM_NO_ERROR);
    EXPECT(rtm_batch_delete_route(b, &old), RTM_NO_ERROR);
    EXPECT(rtm_batch_delete_route(b, &lo), RTM_NO_ERROR);
    EXPECT(rtm_batch_add_route(b, &lo), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t, b, &v), RTM_NO_ERROR);
    CHECK(v == table_version(t) && v == before + 2);
    EXPECT(rtm_get_route(t, &old, &out), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_get_route(t, &lo, &out), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);

    /* IPv6, many routes, one version. */
    rtm_table *t6 = table(6, 4);
    b = batch(6);
    for (int i = 0; i < 1000; i++) {
        char net[64];
        snprintf(net, sizeof net, "2001:db8:%x::", i);
        rtm_route r = route6(net, 48, 1, 1, 1, (uint64_t)i);
        EXPECT(rtm_batch_add_route(b, &r), RTM_NO_ERROR);
    }
    EXPECT(rtm_batch_commit(t6, b, &v), RTM_NO_ERROR);
    CHECK(v == 1 && table_version(t6) == 1 && routes_in(t6) == 1000);
    EXPECT(rtm_table_destroy(t6), RTM_NO_ERROR);
}

static void test_commit_fails_whole(void) {
    rtm_table *t = table(4, 4);
    rtm_route live = route4("10.0.0.0", 8, 1, 1, 1, 1), absent = route4("10.0.0.0", 8, 1, 1, 9, 0);
    rtm_route fresh = route4("172.16.0.0", 12, 1, 1, 1, 2);
    EXPECT(rtm_add_route(t, &live), RTM_NO_ERROR);
    uint64_t before = table_version(t), v = 12345;

    /* A delete of a route that is not live: NO_MORE_ROUTES, nothing applied. */
    rtm_batch *b = batch(4);
    EXPECT(rtm_batch_add_route(b, &fresh), RTM_NO_ERROR);
    EXPECT(rtm_batch_delete_route(b, &live), RTM_NO_ERROR);
    EXPECT(rtm_batch_delete_route(b, &absent), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t, b, &v), RTM_ERROR_NO_MORE_ROUTES);
    CHECK(v == 12345); /* not written on failure */
    rtm_route out;
    EXPECT(rtm_get_route(t, &live, &out), RTM_NO_ERROR);
    EXPECT(rtm_get_route(t, &fresh, &out), RTM_ERROR_NO_MORE_ROUTES);
    /* (The version may have moved: the cancelled attempt is recorded, seen by nobody.) */
    CHECK(routes_in(t) == 1 && table_version(t) >= before);
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE); /* freed all the same */

    /* Deleting one route twice in a batch: the second is not live. */
    b = batch(4);
    EXPECT(rtm_batch_delete_route(b, &live), RTM_NO_ERROR);
    EXPECT(rtm_batch_delete_route(b, &live), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t, b, NULL), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_get_route(t, &live, &out), RTM_NO_ERROR);
    CHECK(routes_in(t) == 1);
    before = table_version(t);

    /* A batch of the other family: INVALID_PARAMETER at the commit, nothing applied, freed. */
    rtm_table *t6 = table(6, 4);
    rtm_route six = route6("2001:db8::", 32, 1, 1, 1, 3);
    b = batch(6);
    EXPECT(rtm_batch_add_route(b, &six), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t, b, &v), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_commit(t6, b, &v), RTM_ERROR_INVALID_HANDLE);
    CHECK(routes_in(t6) == 0 && table_version(t) == before);
    b = batch(4);
    EXPECT(rtm_batch_add_route(b, &fresh), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t6, b, &v), RTM_ERROR_INVALID_PARAMETER);
    CHECK(routes_in(t6) == 0 && v == 12345);
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);

    /* A destroyed table: INVALID_HANDLE, and the batch is freed. */
    EXPECT(rtm_table_destroy(t6), RTM_NO_ERROR);
    b = batch(6);
    EXPECT(rtm_batch_add_route(b, &six), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(t6, b, &v), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

/* Every queueing call rejects a malformed route as rtm_add_route does. */
static void expect_batch_rejects(rtm_batch *b, const rtm_route *bad) {
    EXPECT(rtm_batch_add_route(b, bad), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_delete_route(b, bad), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_withdraw_route(b, bad), RTM_ERROR_INVALID_PARAMETER);
}

static void test_batch_rejects_invalid_routes(void) {
    rtm_table *t = table(4, 4);
    rtm_route good = route4("10.0.0.0", 8, 1, 1, 1, 1), good6 = route6("2001:db8::", 32, 1, 1, 1, 1);
    rtm_batch *b = batch(4);
    EXPECT(rtm_batch_add_route(b, &good), RTM_NO_ERROR);
    rtm_route bad = route4("10.1.2.3", 8, 1, 1, 1, 1); /* host bits */
    expect_batch_rejects(b, &bad);
    bad = good;
    bad.prefix_len = 6; /* 10.0.0.0/6 has a host bit */
    expect_batch_rejects(b, &bad);
    bad = good;
    bad.prefix_len = 33;
    expect_batch_rejects(b, &bad);
    bad.prefix_len = 255;
    expect_batch_rejects(b, &bad);
    bad = good;
    bad.family = 0;
    expect_batch_rejects(b, &bad);
    bad.family = 5;
    expect_batch_rejects(b, &bad);
    expect_batch_rejects(b, &good6); /* not the batch's family */
    EXPECT(rtm_batch_add_route(b, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_delete_route(b, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_withdraw_route(b, NULL), RTM_ERROR_INVALID_PARAMETER);
    /* The batch holds just the one good change: the rejected deletes would fail the commit. */
    uint64_t v;
    EXPECT(rtm_batch_commit(t, b, &v), RTM_NO_ERROR);
    CHECK(v == 1 && table_version(t) == 1 && routes_in(t) == 1);

    rtm_batch *b6 = batch(6);
    bad = good6;
    bad.prefix_len = 129;
    expect_batch_rejects(b6, &bad);
    bad = good6;
    bad.network[15] = 1;
    expect_batch_rejects(b6, &bad);
    expect_batch_rejects(b6, &good);
    rtm_table *t6 = table(6, 4);
    EXPECT(rtm_batch_commit(t6, b6, &v), RTM_NO_ERROR); /* nothing queued */
    CHECK(v == 0 && routes_in(t6) == 0);
    EXPECT(rtm_table_destroy(t6), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

static void test_batch_misuse(void) {
    rtm_table *t = table(4, 4);
    rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, 1);
    uint64_t v = 777;

    /* Create: NULL out, bad families (out untouched). */
    rtm_batch *b = NULL;
    EXPECT(rtm_batch_create(4, NULL), RTM_ERROR_INVALID_PARAMETER);
    uint8_t bad_families[] = {0, 1, 5, 7, 46, 255};
    for (size_t i = 0; i < sizeof bad_families; i++) {
        EXPECT(rtm_batch_create(bad_families[i], &b), RTM_ERROR_INVALID_PARAMETER);
        CHECK(b == NULL);
    }

    /* NULL batch or table. */
    EXPECT(rtm_batch_add_route(NULL, &r), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_delete_route(NULL, &r), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_withdraw_route(NULL, &r), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_destroy(NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_commit(t, NULL, &v), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_batch_commit(NULL, NULL, &v), RTM_ERROR_INVALID_PARAMETER);
    b = batch(4);
    EXPECT(rtm_batch_add_route(b, &r), RTM_NO_ERROR);
    EXPECT(rtm_batch_commit(NULL, b, &v), RTM_ERROR_INVALID_PARAMETER); /* takes the batch */
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);
    CHECK(v == 777 && routes_in(t) == 0);

    /* Destroy an uncommitted batch: freed (LSan checks), then invalid everywhere. */
    b = batch(4);
    for (int i = 0; i < 100; i++) EXPECT(rtm_batch_add_route(b, &r), RTM_NO_ERROR);
    EXPECT(rtm_batch_destroy(b), RTM_NO_ERROR);
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_add_route(b, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_delete_route(b, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_withdraw_route(b, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_commit(t, b, &v), RTM_ERROR_INVALID_HANDLE);
    CHECK(routes_in(t) == 0 && table_version(t) == 0);

    /* Forged batch pointers, and tables and batches passed as each other. */
    rtm_batch *forged[] = {(rtm_batch *)(uintptr_t)1, (rtm_batch *)(uintptr_t)0xdeadbeef,
                           (rtm_batch *)&r, (rtm_batch *)(uintptr_t)UINTPTR_MAX, (rtm_batch *)t};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        EXPECT(rtm_batch_add_route(forged[i], &r), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_batch_withdraw_route(forged[i], &r), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_batch_commit(t, forged[i], &v), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_batch_destroy(forged[i]), RTM_ERROR_INVALID_HANDLE);
    }
    b = batch(4);
    EXPECT(rtm_add_route((rtm_table *)b, &r), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_table_destroy((rtm_table *)b), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_commit((rtm_table *)b, b, &v), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_batch_destroy(b), RTM_ERROR_INVALID_HANDLE);

    /* Every commit frees its batch: many batches, none ended twice (LSan checks at exit). */
    for (int i = 0; i < 2000; i++) {
        b = batch(4);
        rtm_route x = route4("10.0.0.0", 8, 1, 1, (uint8_t)(i % 4), (uint64_t)i);
        EXPECT(rtm_batch_add_route(b, &x), RTM_NO_ERROR);
        EXPECT(rtm_batch_withdraw_route(b, &r), RTM_NO_ERROR);
        EXPECT(rtm_batch_commit(t, b, NULL), RTM_NO_ERROR);
    }
    CHECK(routes_in(t) == 3); /* hops 0, 2, 3; hop 1 is r, withdrawn each time */
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

static void test_block_delete(void) {
    rtm_table *t = table(4, 4);
    for (int i = 0; i < 20; i++) {
        char net[32];
        snprintf(net, sizeof net, "10.%d.0.0", i);
        rtm_route r = route4(net, 16, (uint32_t)(i % 2), 1, 1, (uint64_t)i);
        r.enabled = i % 5 != 0;
        EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    }
    rtm_route crit = route4("0.0.0.0", 0, 1, 0, 0, 0);
    uint32_t deleted = 0;
    /* Protocol 1, enabled only: the odd i not multiples of 5 (8 routes). */
    EXPECT(rtm_block_delete_routes(t, RTM_ONLY_THIS_PROTOCOL, &crit, &deleted), RTM_NO_ERROR);
    CHECK(deleted == 8);
    uint64_t n;
    EXPECT(rtm_route_count(t, &n), RTM_NO_ERROR);
    CHECK(n == 12);
    /* Disabled ones too, NULL count allowed. */
    EXPECT(rtm_block_delete_routes(t, RTM_ONLY_THIS_PROTOCOL | RTM_INCLUDE_DISABLED_ROUTES, &crit, NULL), RTM_NO_ERROR);
    EXPECT(rtm_route_count(t, &n), RTM_NO_ERROR);
    CHECK(n == 10);
    /* A range. */
    rtm_route range = route4("10.0.0.0", 12, 0, 0, 0, 0); /* 10.0/12: 10.0-10.15 */
    EXPECT(rtm_block_delete_routes(t, RTM_ONLY_WITHIN_NETWORK | RTM_INCLUDE_DISABLED_ROUTES, &range, &deleted), RTM_NO_ERROR);
    CHECK(deleted == 8);
    EXPECT(rtm_block_delete_routes(t, RTM_INCLUDE_DISABLED_ROUTES, NULL, &deleted), RTM_NO_ERROR);
    CHECK(deleted == 2);
    EXPECT(rtm_route_count(t, &n), RTM_NO_ERROR);
    CHECK(n == 0);
    EXPECT(rtm_block_delete_routes(t, RTM_ONLY_THIS_PROTOCOL, NULL, &deleted), RTM_ERROR_INVALID_PARAMETER);

    /* Block enable and disable. */
    for (int i = 0; i < 6; i++) {
        char net[32];
        snprintf(net, sizeof net, "10.%d.0.0", i);
        rtm_route r = route4(net, 16, 1, (uint32_t)(i % 3), 1, (uint64_t)i);
        EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    }
    rtm_route ifc = route4("0.0.0.0", 0, 0, 1, 0, 0);
    uint32_t changed = 0;
    EXPECT(rtm_block_set_route_enable(t, RTM_ONLY_THIS_INTERFACE, &ifc, 0, &changed), RTM_NO_ERROR);
    CHECK(changed == 2);
    EXPECT(rtm_block_set_route_enable(t, RTM_ONLY_THIS_INTERFACE, &ifc, 0, &changed), RTM_NO_ERROR);
    CHECK(changed == 0); /* already disabled */
    uint8_t a[4] = {10, 1, 9, 9};
    rtm_route out;
    EXPECT(rtm_lookup(t, a, &out), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_block_set_route_enable(t, 0, NULL, 1, NULL), RTM_NO_ERROR);
    EXPECT(rtm_lookup(t, a, &out), RTM_NO_ERROR);
    CHECK(out.value == 1 && out.enabled == 1);
    EXPECT(rtm_block_set_route_enable(t, 0x10, NULL, 1, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_block_set_route_enable(NULL, 0, NULL, 1, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_block_delete_routes(t, 0, NULL, &deleted), RTM_NO_ERROR);
    CHECK(deleted == 6);
    rtm_stats s;
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 0);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

static void test_stats_and_collect(void) {
    rtm_table *t = table(4, 4);
    rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, 1), r2 = route4("10.0.0.0", 8, 2, 1, 1, 2);
    EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &r2), RTM_NO_ERROR);
    rtm_handle h;
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_NO_ERROR);
    r.value = 10;
    EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    EXPECT(rtm_collect(t), RTM_NO_ERROR);
    rtm_stats s;
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.live_routes == 2 && s.networks == 1 && s.open_enumerations == 1 && s.dead_versions == 1);
    CHECK(s.version == 3);
    /* The handle still sees the old value. */
    rtm_route out;
    EXPECT(rtm_enumerate_get_next_route(h, &out), RTM_NO_ERROR);
    CHECK(out.value == 1);
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
    EXPECT(rtm_collect(t), RTM_NO_ERROR);
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 0 && s.dead_versions == 0);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

/* No handle value is issued twice, across closes, slots and tables. */
static void test_handle_uniqueness(void) {
    enum { N = 3000 };
    static rtm_handle seen[N];
    size_t n = 0;
    for (int round = 0; round < 30; round++) {
        rtm_table *t = table(round % 2 ? 6 : 4, 2);
        for (int i = 0; i < N / 30; i++) {
            rtm_handle h;
            EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_NO_ERROR);
            for (size_t j = 0; j < n; j++) CHECK(seen[j] != h);
            seen[n++] = h;
            if (i % 7 != 6) {
                EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);
            } else {
                /* Destroyed with the handle open. */
                EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
                t = table(4, 2);
            }
        }
        EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    }
    for (size_t j = 0; j < n; j++) EXPECT(rtm_close_enumeration_handle(seen[j]), RTM_ERROR_INVALID_HANDLE);
}

/* Dequeues one message and checks its code, flags and routes (NULL: must be absent). */
static void expect_message(rtm_feed f, uint32_t code, uint32_t flags, const rtm_route *cur, const rtm_route *prev) {
    uint32_t got_flags = 0xeeee;
    rtm_route c, p;
    memset(&c, 0xee, sizeof c);
    memset(&p, 0xee, sizeof p);
    EXPECT(rtm_dequeue_route_change_message(f, &got_flags, &c, &p), code);
    CHECK(got_flags == flags);
    if (cur) CHECK(same_route(&c, cur));
    else CHECK(c.value == 0xeeeeeeeeeeeeeeeeull);
    if (prev) CHECK(same_route(&p, prev));
    else CHECK(p.value == 0xeeeeeeeeeeeeeeeeull);
}

static void test_feeds(void) {
    CHECK(RTM_ROUTE_ADDED == RTM_CURRENT_BEST_ROUTE && RTM_ROUTE_DELETED == RTM_PREVIOUS_BEST_ROUTE);
    CHECK(RTM_ROUTE_CHANGED == (RTM_CURRENT_BEST_ROUTE | RTM_PREVIOUS_BEST_ROUTE) && RTM_NO_CHANGE == 0);
    rtm_table *t = table(4, 2);
    rtm_feed f, g;
    EXPECT(rtm_feed_open(t, 0, NULL, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_feed_open(t, 0x10, NULL, &f), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_feed_open(t, RTM_ONLY_THIS_PROTOCOL, NULL, &f), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_feed_open(NULL, 0, NULL, &f), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_feed_open(t, 0, NULL, &f), RTM_NO_ERROR);
    rtm_route proto2 = route4("0.0.0.0", 0, 2, 0, 0, 0);
    EXPECT(rtm_feed_open(t, RTM_ONLY_THIS_PROTOCOL, &proto2, &g), RTM_NO_ERROR);
    CHECK(f != g);
    /* Feeds take slots. */
    rtm_handle h;
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_ERROR_NO_SYSTEM_RESOURCES);
    rtm_stats s;
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 2);

    uint32_t flags;
    EXPECT(rtm_dequeue_route_change_message(f, &flags, NULL, NULL), RTM_ERROR_NO_MESSAGES);
    EXPECT(rtm_dequeue_route_change_message(f, NULL, NULL, NULL), RTM_ERROR_INVALID_PARAMETER);

    rtm_route a = route4("10.0.0.0", 8, 1, 1, 1, 1), b = route4("10.0.0.0", 8, 2, 1, 2, 2);
    rtm_route c = route4("10.0.0.0", 8, 3, 1, 3, 3);
    a.priority = 10;
    b.priority = 5;
    c.priority = 20;
    EXPECT(rtm_add_route(t, &a), RTM_NO_ERROR);
    expect_message(f, RTM_NO_ERROR, RTM_ROUTE_ADDED, &a, NULL);
    EXPECT(rtm_add_route(t, &b), RTM_NO_ERROR); /* better: the best changes */
    expect_message(f, RTM_NO_ERROR, RTM_ROUTE_CHANGED, &b, &a);
    EXPECT(rtm_add_route(t, &c), RTM_NO_ERROR); /* worse: no message */
    EXPECT(rtm_dequeue_route_change_message(f, &flags, NULL, NULL), RTM_ERROR_NO_MESSAGES);
    EXPECT(rtm_delete_route(t, &b), RTM_NO_ERROR);
    EXPECT(rtm_delete_route(t, &a), RTM_NO_ERROR);
    EXPECT(rtm_delete_route(t, &c), RTM_NO_ERROR);
    /* Three messages ready: MORE_MESSAGES until the last. */
    expect_message(f, RTM_ERROR_MORE_MESSAGES, RTM_ROUTE_CHANGED, &a, &b);
    expect_message(f, RTM_ERROR_MORE_MESSAGES, RTM_ROUTE_CHANGED, &c, &a);
    expect_message(f, RTM_NO_ERROR, RTM_ROUTE_DELETED, NULL, &c);
    EXPECT(rtm_dequeue_route_change_message(f, &flags, NULL, NULL), RTM_ERROR_NO_MESSAGES);

    /* The protocol-2 feed saw 10/8 enter (b best) and leave (b deleted). */
    expect_message(g, RTM_ERROR_MORE_MESSAGES, RTM_ROUTE_ADDED, &b, NULL);
    expect_message(g, RTM_NO_ERROR, RTM_ROUTE_DELETED, NULL, &b);
    EXPECT(rtm_dequeue_route_change_message(g, &flags, NULL, NULL), RTM_ERROR_NO_MESSAGES);

    /* Close, double close, forged values. */
    EXPECT(rtm_feed_close(g), RTM_NO_ERROR);
    EXPECT(rtm_feed_close(g), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_dequeue_route_change_message(g, &flags, NULL, NULL), RTM_ERROR_INVALID_HANDLE);
    rtm_feed forged[] = {0, 1, ~(rtm_feed)0, f + 1, f ^ (1ull << 40), g + 1};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        EXPECT(rtm_dequeue_route_change_message(forged[i], &flags, NULL, NULL), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_feed_close(forged[i]), RTM_ERROR_INVALID_HANDLE);
    }
    EXPECT(rtm_create_enumeration_handle(t, 0, NULL, &h), RTM_NO_ERROR);
    EXPECT(rtm_close_enumeration_handle(h), RTM_NO_ERROR);

    /* A feed that falls a whole journal (65,536 commits) behind is lagged for good. */
    for (uint32_t i = 0; i < 70000; i++) {
        rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, i);
        EXPECT(rtm_add_route(t, &r), RTM_NO_ERROR);
    }
    EXPECT(rtm_dequeue_route_change_message(f, &flags, NULL, NULL), RTM_ERROR_FEED_LAGGED);
    EXPECT(rtm_dequeue_route_change_message(f, &flags, NULL, NULL), RTM_ERROR_FEED_LAGGED);
    EXPECT(rtm_feed_close(f), RTM_NO_ERROR);
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 0);

    /* A small journal: a feed lags after 64 commits it has not read. */
    rtm_table *small;
    EXPECT(rtm_table_create_ex(4, 2, 1, &small), RTM_NO_ERROR);
    EXPECT(rtm_table_create_ex(5, 2, 1, &small), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_table_create_ex(4, 2, 1, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_feed_open(small, 0, NULL, &g), RTM_NO_ERROR);
    for (uint32_t i = 0; i < 64; i++) {
        rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, i);
        EXPECT(rtm_add_route(small, &r), RTM_NO_ERROR);
    }
    for (uint32_t i = 0; i < 64; i++) {
        rtm_route r;
        EXPECT(rtm_dequeue_route_change_message(g, &flags, &r, NULL), i == 63 ? RTM_NO_ERROR : RTM_ERROR_MORE_MESSAGES);
        CHECK(r.value == i && flags == (i ? RTM_ROUTE_CHANGED : RTM_ROUTE_ADDED));
    }
    for (uint32_t i = 0; i < 65; i++) {
        rtm_route r = route4("10.0.0.0", 8, 1, 1, 1, i);
        EXPECT(rtm_add_route(small, &r), RTM_NO_ERROR);
    }
    EXPECT(rtm_dequeue_route_change_message(g, &flags, NULL, NULL), RTM_ERROR_FEED_LAGGED);
    EXPECT(rtm_table_destroy(small), RTM_NO_ERROR);

    /* A destroyed table's feeds are gone with it. */
    EXPECT(rtm_feed_open(t, 0, NULL, &f), RTM_NO_ERROR);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    EXPECT(rtm_dequeue_route_change_message(f, &flags, NULL, NULL), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_feed_close(f), RTM_ERROR_INVALID_HANDLE);
}

static void test_fib(void) {
    rtm_table *t = table(4, 2);
    rtm_route a = route4("10.0.0.0", 8, 1, 1, 1, 100), b = route4("10.1.0.0", 16, 1, 1, 1, 200);
    rtm_route worse = route4("10.1.0.0", 16, 2, 1, 2, 999);
    worse.priority = 9;
    EXPECT(rtm_add_route(t, &a), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &b), RTM_NO_ERROR);
    EXPECT(rtm_add_route(t, &worse), RTM_NO_ERROR);
    rtm_fib fib, fib2;
    EXPECT(rtm_fib_create(t, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_fib_create(NULL, &fib), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_fib_create(t, &fib), RTM_NO_ERROR);
    /* One slot left: a second Fib needs two while it builds. */
    EXPECT(rtm_fib_create(t, &fib2), RTM_ERROR_NO_SYSTEM_RESOURCES);
    uint32_t hop;
    uint8_t in_b[4] = {10, 1, 2, 3}, in_a[4] = {10, 2, 0, 1}, none[4] = {11, 0, 0, 1};
    EXPECT(rtm_fib_lookup(fib, in_b, &hop), RTM_NO_ERROR);
    CHECK(hop == 200);
    EXPECT(rtm_fib_lookup(fib, in_a, &hop), RTM_NO_ERROR);
    CHECK(hop == 100);
    hop = 7;
    EXPECT(rtm_fib_lookup(fib, none, &hop), RTM_ERROR_NO_MORE_ROUTES);
    CHECK(hop == 7);
    EXPECT(rtm_fib_lookup(fib, NULL, &hop), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_fib_lookup(fib, in_a, NULL), RTM_ERROR_INVALID_PARAMETER);

    /* The Fib moves on sync. */
    EXPECT(rtm_delete_route(t, &b), RTM_NO_ERROR);
    rtm_route def = route4("0.0.0.0", 0, 1, 1, 1, 5);
    EXPECT(rtm_add_route(t, &def), RTM_NO_ERROR);
    EXPECT(rtm_fib_lookup(fib, in_b, &hop), RTM_NO_ERROR);
    CHECK(hop == 200); /* not synced yet */
    uint32_t applied = 0;
    EXPECT(rtm_fib_sync(fib, &applied), RTM_NO_ERROR);
    CHECK(applied == 2);
    EXPECT(rtm_fib_sync(fib, NULL), RTM_NO_ERROR);
    EXPECT(rtm_fib_lookup(fib, in_b, &hop), RTM_NO_ERROR);
    CHECK(hop == 999); /* the worse route is the best now */
    EXPECT(rtm_fib_lookup(fib, none, &hop), RTM_NO_ERROR);
    CHECK(hop == 5);

    /* Batch lookups agree with single ones, and with the table. */
    uint8_t addrs[6 * 4] = {10, 1, 2, 3, 10, 2, 0, 1, 11, 0, 0, 1, 10, 0, 0, 0, 10, 1, 255, 255, 255, 255, 255, 255};
    uint32_t hops[6];
    uint8_t found[6];
    EXPECT(rtm_fib_lookup_batch(fib, addrs, 6, hops, found), RTM_NO_ERROR);
    for (int i = 0; i < 6; i++) {
        rtm_route r;
        uint32_t h1;
        uint32_t rc = rtm_lookup(t, addrs + 4 * i, &r);
        EXPECT(rtm_fib_lookup(fib, addrs + 4 * i, &h1), rc);
        CHECK(found[i] == (rc == RTM_NO_ERROR));
        if (found[i]) CHECK(hops[i] == h1 && h1 == (uint32_t)r.value);
    }
    EXPECT(rtm_fib_lookup_batch(fib, NULL, 0, NULL, NULL), RTM_NO_ERROR);
    EXPECT(rtm_fib_lookup_batch(fib, NULL, 1, hops, found), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_fib_lookup_batch(fib, addrs, 1, NULL, found), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_fib_lookup_batch(fib, addrs, 1, hops, NULL), RTM_ERROR_INVALID_PARAMETER);

    /* Forged, destroyed, and of a destroyed table. */
    rtm_fib forged[] = {0, 1, ~(rtm_fib)0, fib + 1, fib ^ (1ull << 40)};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        EXPECT(rtm_fib_lookup(forged[i], in_a, &hop), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_fib_sync(forged[i], NULL), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_fib_lookup_batch(forged[i], addrs, 1, hops, found), RTM_ERROR_INVALID_HANDLE);
        EXPECT(rtm_fib_destroy(forged[i]), RTM_ERROR_INVALID_HANDLE);
    }
    /* A feed value is not a Fib value (they share the serial space). */
    rtm_feed feed;
    EXPECT(rtm_fib_destroy(fib), RTM_NO_ERROR);
    EXPECT(rtm_fib_destroy(fib), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_fib_lookup(fib, in_a, &hop), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_feed_open(t, 0, NULL, &feed), RTM_NO_ERROR);
    EXPECT(rtm_fib_lookup(feed, in_a, &hop), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_fib_destroy(feed), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_feed_close(feed), RTM_NO_ERROR);
    rtm_stats s;
    EXPECT(rtm_table_stats(t, &s), RTM_NO_ERROR);
    CHECK(s.open_enumerations == 0);
    EXPECT(rtm_fib_create(t, &fib2), RTM_NO_ERROR);
    CHECK(fib2 != fib);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    EXPECT(rtm_fib_lookup(fib2, in_a, &hop), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_fib_destroy(fib2), RTM_ERROR_INVALID_HANDLE);

    /* IPv6. */
    t = table(6, 4);
    rtm_route r6 = route6("2001:db8::", 32, 1, 1, 1, 66);
    EXPECT(rtm_add_route(t, &r6), RTM_NO_ERROR);
    EXPECT(rtm_fib_create(t, &fib), RTM_NO_ERROR);
    uint8_t a6[16];
    CHECK(inet_pton(AF_INET6, "2001:db8:5::1", a6) == 1);
    EXPECT(rtm_fib_lookup(fib, a6, &hop), RTM_NO_ERROR);
    CHECK(hop == 66);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
}

static void test_nexthop_groups(void) {
    rtm_nexthop_groups *g, *g2;
    uint32_t id, id2, id3, hop, n, changed;
    uint8_t down;
    const uint32_t hops[] = {7, 9, 11}, same[] = {11, 7, 9, 7}, pair[] = {7, 9};
    EXPECT(rtm_nexthop_groups_create(NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_groups_create(&g), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_groups_create(&g2), RTM_NO_ERROR);
    CHECK(g != g2);

    /* Intern dedups by set; bad arguments. */
    EXPECT(rtm_nexthop_group_intern(g, hops, 3, &id), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_group_intern(g, same, 4, &id2), RTM_NO_ERROR);
    CHECK(id == 0 && id2 == id);
    EXPECT(rtm_nexthop_group_intern(g, pair, 2, &id3), RTM_NO_ERROR);
    CHECK(id3 == 1);
    EXPECT(rtm_nexthop_group_intern(g, hops, 0, &id2), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_intern(g, NULL, 3, &id2), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_intern(g, hops, 3, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_intern(NULL, hops, 3, &id2), RTM_ERROR_INVALID_PARAMETER);

    /* Members: total count, truncated copy. */
    uint32_t members[4] = {0};
    EXPECT(rtm_nexthop_group_members(g, id, members, 4, &n), RTM_NO_ERROR);
    CHECK(n == 3 && members[0] + members[1] + members[2] == 27);
    EXPECT(rtm_nexthop_group_members(g, id, NULL, 0, &n), RTM_NO_ERROR);
    CHECK(n == 3);
    EXPECT(rtm_nexthop_group_members(g, id, members, 1, &n), RTM_NO_ERROR);
    CHECK(n == 3);
    EXPECT(rtm_nexthop_group_members(g, id, NULL, 1, &n), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_members(g, id, members, 4, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_members(g, 99, members, 4, &n), RTM_ERROR_INVALID_PARAMETER);

    /* Select: stable per flow; only 9's flows move when 9 goes down; none to 9. */
    uint32_t before[512], after[512];
    for (uint32_t f = 0; f < 512; f++) {
        EXPECT(rtm_nexthop_group_select(g, id, (uint64_t)f * 0x9e3779b97f4a7c15ull, &before[f]), RTM_NO_ERROR);
        CHECK(before[f] == 7 || before[f] == 9 || before[f] == 11);
    }
    EXPECT(rtm_nexthop_group_select(g, id, 1, NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_select(g, 99, 1, &hop), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_nexthop_group_select(g2, id, 1, &hop), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_nexthop_set_down(g, 9, 1, &changed), RTM_NO_ERROR);
    CHECK(changed == 2);
    EXPECT(rtm_nexthop_set_down(g, 9, 1, &changed), RTM_NO_ERROR);
    CHECK(changed == 0);
    EXPECT(rtm_nexthop_set_down(g, 9, 1, NULL), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_is_down(g, 9, &down), RTM_NO_ERROR);
    CHECK(down == 1);
    EXPECT(rtm_nexthop_is_down(g, 7, &down), RTM_NO_ERROR);
    CHECK(down == 0);
    EXPECT(rtm_nexthop_is_down(g, 7, NULL), RTM_ERROR_INVALID_PARAMETER);
    for (uint32_t f = 0; f < 512; f++) {
        EXPECT(rtm_nexthop_group_select(g, id, (uint64_t)f * 0x9e3779b97f4a7c15ull, &after[f]), RTM_NO_ERROR);
        CHECK(after[f] != 9);
        CHECK(before[f] == 9 || after[f] == before[f]);
    }
    /* Back up: the original assignment. */
    EXPECT(rtm_nexthop_set_down(g, 9, 0, &changed), RTM_NO_ERROR);
    CHECK(changed == 2);
    for (uint32_t f = 0; f < 512; f++) {
        EXPECT(rtm_nexthop_group_select(g, id, (uint64_t)f * 0x9e3779b97f4a7c15ull, &hop), RTM_NO_ERROR);
        CHECK(hop == before[f]);
    }
    /* Every member down: NO_MORE_ROUTES; a group interned while 7 is down starts so. */
    EXPECT(rtm_nexthop_set_down(g, 7, 1, NULL), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_set_down(g, 9, 1, NULL), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_group_select(g, id3, 5, &hop), RTM_ERROR_NO_MORE_ROUTES);
    const uint32_t seven[] = {7};
    EXPECT(rtm_nexthop_group_intern(g, seven, 1, &id2), RTM_NO_ERROR);
    CHECK(id2 == 2);
    EXPECT(rtm_nexthop_group_select(g, id2, 5, &hop), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_nexthop_set_down(g, 7, 0, NULL), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_group_select(g, id2, 5, &hop), RTM_NO_ERROR);
    CHECK(hop == 7);

    /* Release: references, then the id is free and reused. */
    EXPECT(rtm_nexthop_group_release(g, id), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_group_select(g, id, 5, &hop), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_group_release(g, id), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_group_select(g, id, 5, &hop), RTM_ERROR_NO_MORE_ROUTES);
    EXPECT(rtm_nexthop_group_release(g, id), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_release(g, 0xffffffffu), RTM_ERROR_INVALID_PARAMETER);
    const uint32_t other[] = {42, 43};
    EXPECT(rtm_nexthop_group_intern(g, other, 2, &id2), RTM_NO_ERROR);
    CHECK(id2 == id);

    /* Destroyed and forged objects; a table token is not a groups object. */
    rtm_table *t = table(4, 2);
    EXPECT(rtm_nexthop_group_select((rtm_nexthop_groups *)t, 0, 1, &hop), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_groups_destroy((rtm_nexthop_groups *)t), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_table_destroy(t), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_groups_destroy(g), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_groups_destroy(g), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_groups_destroy(NULL), RTM_ERROR_INVALID_PARAMETER);
    EXPECT(rtm_nexthop_group_select(g, id3, 1, &hop), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_group_intern(g, hops, 3, &id2), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_group_release(g, id3), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_set_down(g, 7, 1, NULL), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_is_down(g, 7, &down), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_group_members(g, id3, members, 4, &n), RTM_ERROR_INVALID_HANDLE);
    EXPECT(rtm_nexthop_group_select((rtm_nexthop_groups *)(uintptr_t)0xdeadbeef, 0, 1, &hop), RTM_ERROR_INVALID_HANDLE);
    /* The second object still holds its groups when destroyed (no leak under ASan). */
    EXPECT(rtm_nexthop_group_intern(g2, hops, 3, &id2), RTM_NO_ERROR);
    EXPECT(rtm_nexthop_groups_destroy(g2), RTM_NO_ERROR);
}

int main(void) {
    test_defines();
    test_create_destroy();
    test_add_get_delete();
    test_invalid_routes();
    test_ipv4_bytes_and_enabled();
    test_lookup_and_best();
    test_lookup_len();
    test_enumeration_flags();
    test_snapshot_and_handle_misuse();
    test_batch();
    test_commit();
    test_commit_fails_whole();
    test_batch_rejects_invalid_routes();
    test_batch_misuse();
    test_block_delete();
    test_stats_and_collect();
    test_handle_uniqueness();
    test_feeds();
    test_fib();
    test_nexthop_groups();
    printf("api: all checks passed\n");
    return 0;
}
