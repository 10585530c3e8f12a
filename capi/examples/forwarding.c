/* A forwarding engine's use of rtm through its C ABI: load the MAE-West IPv4 table, look
 * addresses up, and dump one range of it through an RTMv1-style enumeration handle while
 * a route changes.
 *
 * Build and run (from the repository root):
 *   cargo build --release -p rtm-capi && cc -O2 -I capi/include capi/examples/forwarding.c \
 *     target/release/librtm_capi.a -lpthread -ldl -lm -o target/forwarding && \
 *     target/forwarding benches/data/mae-west-v4.txt
 *
 * The program checks what it prints (each lookup against a linear scan of the prefixes it
 * loaded, the dump against the table as it was when the handle was opened) and exits
 * non-zero if anything disagrees. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm.h"

#define MAX_PREFIXES 65536

struct prefix {
    uint32_t addr; /* host byte order */
    uint8_t len;
};

static struct prefix prefixes[MAX_PREFIXES];
static size_t prefix_count;

static void die(const char *what, uint32_t rc) {
    fprintf(stderr, "forwarding: %s failed: %u\n", what, rc);
    exit(1);
}

/* Reads "a.b.c.d/len" lines; '#' starts a comment line. */
static void load(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(1);
    }
    char line[128];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char *slash = strchr(line, '/');
        struct in_addr a;
        if (!slash || prefix_count == MAX_PREFIXES) continue;
        *slash = 0;
        if (inet_pton(AF_INET, line, &a) != 1) continue;
        prefixes[prefix_count].addr = ntohl(a.s_addr);
        prefixes[prefix_count].len = (uint8_t)atoi(slash + 1);
        prefix_count++;
    }
    fclose(f);
}

/* The route the engine installs for prefix i: its next-hop id is the value. */
static rtm_route route_for(size_t i) {
    rtm_route r;
    memset(&r, 0, sizeof r);
    r.family = 4;
    r.prefix_len = prefixes[i].len;
    r.enabled = 1;
    uint32_t n = htonl(prefixes[i].addr);
    memcpy(r.network, &n, 4);
    r.next_hop[0] = 198;
    r.next_hop[1] = 51;
    r.next_hop[2] = 100;
    r.next_hop[3] = (uint8_t)(1 + i % 200);
    r.protocol = 14; /* BGP */
    r.interface_id = (uint32_t)(i % 8);
    r.value = i;
    return r;
}

static int covers(const struct prefix *p, uint32_t addr) {
    uint32_t mask = p->len ? ~(uint32_t)0 << (32 - p->len) : 0;
    return (addr & mask) == p->addr;
}

int main(int argc, char **argv) {
    load(argc > 1 ? argv[1] : "benches/data/mae-west-v4.txt");
    if (prefix_count == 0) {
        fprintf(stderr, "forwarding: no prefixes loaded\n");
        return 1;
    }

    rtm_table *table;
    uint32_t rc = rtm_table_create(4, 16, &table);
    if (rc != RTM_NO_ERROR) die("rtm_table_create", rc);
    for (size_t i = 0; i < prefix_count; i++) {
        rtm_route r = route_for(i);
        if ((rc = rtm_add_route(table, &r)) != RTM_NO_ERROR) die("rtm_add_route", rc);
    }
    uint64_t routes;
    rtm_route_count(table, &routes);
    printf("loaded %llu routes from %zu prefixes\n", (unsigned long long)routes, prefix_count);

    /* Lookups: addresses inside loaded prefixes (and a few outside any), each checked
     * against the longest covering prefix found by a linear scan. */
    size_t hits = 0, misses = 0;
    uint32_t seed = 12345;
    for (int k = 0; k < 2000; k++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t addr = k % 4 == 3 ? seed : prefixes[seed % prefix_count].addr | (seed >> 16 & 0xff);
        long best = -1;
        for (size_t i = 0; i < prefix_count; i++)
            if (covers(&prefixes[i], addr) && (best < 0 || prefixes[i].len > prefixes[best].len)) best = (long)i;
        uint8_t a[4] = {addr >> 24, addr >> 16 & 0xff, addr >> 8 & 0xff, addr & 0xff};
        rtm_route r;
        rc = rtm_lookup(table, a, &r);
        if (best < 0) {
            if (rc != RTM_ERROR_NO_MORE_ROUTES) die("rtm_lookup of an uncovered address", rc);
            misses++;
        } else {
            if (rc != RTM_NO_ERROR || r.value != (uint64_t)best) die("rtm_lookup", rc);
            if (k < 3)
                printf("lookup %u.%u.%u.%u -> %u.%u.%u.%u/%u via 198.51.100.%u (next-hop id %llu)\n", a[0], a[1],
                       a[2], a[3], r.network[0], r.network[1], r.network[2], r.network[3], r.prefix_len,
                       r.next_hop[3], (unsigned long long)r.value);
            hits++;
        }
    }
    printf("2000 lookups checked: %zu matched a route, %zu matched none\n", hits, misses);

    /* Dump 192.0.0.0/8 and everything in it through a handle, 64 routes per call,
     * while the engine withdraws one of those routes: the dump is a snapshot. */
    rtm_route range;
    memset(&range, 0, sizeof range);
    range.family = 4;
    range.prefix_len = 8;
    range.network[0] = 192;
    struct prefix within = {192u << 24, 8};
    size_t expected = 0, withdrawn = prefix_count;
    for (size_t i = 0; i < prefix_count; i++)
        if (prefixes[i].len >= 8 && covers(&within, prefixes[i].addr)) {
            expected++;
            withdrawn = i;
        }
    rtm_handle h;
    if ((rc = rtm_create_enumeration_handle(table, RTM_ONLY_WITHIN_NETWORK, &range, &h)) != RTM_NO_ERROR)
        die("rtm_create_enumeration_handle", rc);
    if (withdrawn < prefix_count) {
        rtm_route gone = route_for(withdrawn);
        if ((rc = rtm_delete_route(table, &gone)) != RTM_NO_ERROR) die("rtm_delete_route", rc);
    }
    size_t dumped = 0;
    rtm_route batch[64], prev;
    uint32_t n;
    while ((rc = rtm_enumerate_get_next_routes(h, batch, 64, &n)) == RTM_NO_ERROR) {
        for (uint32_t j = 0; j < n; j++) {
            const rtm_route *r = &batch[j];
            if (r->network[0] != 192) die("the range enumeration left its range", 0);
            if (dumped > 0 && memcmp(prev.network, r->network, 4) > 0) die("the enumeration order", 0);
            prev = *r;
            dumped++;
        }
    }
    if (rc != RTM_ERROR_NO_MORE_ROUTES) die("rtm_enumerate_get_next_routes", rc);
    if (dumped != expected) die("the dump's route count", (uint32_t)dumped);
    if ((rc = rtm_close_enumeration_handle(h)) != RTM_NO_ERROR) die("rtm_close_enumeration_handle", rc);
    if (rtm_close_enumeration_handle(h) != RTM_ERROR_INVALID_HANDLE) die("a second close", 0);
    printf("dumped 192.0.0.0/8: %zu routes, in order, as of the handle's snapshot (1 withdrawn meanwhile)\n",
           dumped);

    rtm_stats s;
    rtm_collect(table);
    rtm_table_stats(table, &s);
    printf("table: %llu routes, %llu networks, %llu open enumerations, version %llu\n",
           (unsigned long long)s.live_routes, (unsigned long long)s.networks,
           (unsigned long long)s.open_enumerations, (unsigned long long)s.version);
    if ((rc = rtm_table_destroy(table)) != RTM_NO_ERROR) die("rtm_table_destroy", rc);
    return 0;
}
