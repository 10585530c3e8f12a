/* A BGP-style UPDATE through rtm's C ABI: a peer withdraws 10.0.0.0/8 and announces its two
 * halves in one message, and the table applies the withdraw and the announcements as one
 * commit (rtm_batch_*), so no lookup ever finds 10.1.2.3 unrouted in between. A second
 * UPDATE deletes a route that is not there: the commit fails whole, and nothing changes.
 *
 * Build and run (from the repository root):
 *   cargo build --release -p rtm-capi && cc -O2 -I capi/include capi/examples/batch.c \
 *     target/release/librtm_capi.a -lpthread -ldl -lm -o target/batch && target/batch
 *
 * The program checks what it prints and exits non-zero if anything disagrees. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm.h"

static void check(const char *what, uint32_t rc, uint32_t expected) {
    if (rc != expected) {
        fprintf(stderr, "batch: %s returned %u, expected %u\n", what, rc, expected);
        exit(1);
    }
}

/* A BGP route (protocol 14) to a.b.0.0/len via 192.0.2.1 on interface 1. */
static rtm_route bgp(uint8_t a, uint8_t b, uint8_t len, uint64_t next_hop_id) {
    rtm_route r;
    memset(&r, 0, sizeof r);
    r.family = 4;
    r.prefix_len = len;
    r.enabled = 1;
    r.network[0] = a;
    r.network[1] = b;
    r.next_hop[0] = 192;
    r.next_hop[2] = 2;
    r.next_hop[3] = 1;
    r.protocol = 14;
    r.interface_id = 1;
    r.value = next_hop_id;
    return r;
}

static uint64_t lookup(rtm_table *t, uint8_t a, uint8_t b) {
    uint8_t addr[4] = {a, b, 2, 3};
    rtm_route out;
    check("rtm_lookup", rtm_lookup(t, addr, &out), RTM_NO_ERROR);
    printf("  %u.%u.2.3 -> %u.%u.%u.%u/%u, next hop %llu\n", a, b, out.network[0],
           out.network[1], out.network[2], out.network[3], out.prefix_len,
           (unsigned long long)out.value);
    return out.value;
}

int main(void) {
    rtm_table *t;
    check("rtm_table_create", rtm_table_create(4, 16, &t), RTM_NO_ERROR);
    rtm_route old = bgp(10, 0, 8, 1);
    check("rtm_add_route", rtm_add_route(t, &old), RTM_NO_ERROR);
    printf("before:\n");
    if (lookup(t, 10, 1) != 1) return 1;

    /* UPDATE 1: withdraw 10.0.0.0/8, announce 10.0.0.0/9 and 10.128.0.0/9. */
    rtm_route lo = bgp(10, 0, 9, 2), hi = bgp(10, 128, 9, 3);
    rtm_batch *b;
    check("rtm_batch_create", rtm_batch_create(4, &b), RTM_NO_ERROR);
    check("rtm_batch_withdraw_route", rtm_batch_withdraw_route(b, &old), RTM_NO_ERROR);
    check("rtm_batch_add_route", rtm_batch_add_route(b, &lo), RTM_NO_ERROR);
    check("rtm_batch_add_route", rtm_batch_add_route(b, &hi), RTM_NO_ERROR);
    uint64_t version;
    check("rtm_batch_commit", rtm_batch_commit(t, b, &version), RTM_NO_ERROR);
    /* b is gone now, whatever the commit returned. */
    rtm_stats s;
    check("rtm_table_stats", rtm_table_stats(t, &s), RTM_NO_ERROR);
    printf("after one commit at version %llu (table version %llu, %llu routes):\n",
           (unsigned long long)version, (unsigned long long)s.version,
           (unsigned long long)s.live_routes);
    if (version != s.version || s.live_routes != 2) return 1;
    if (lookup(t, 10, 1) != 2 || lookup(t, 10, 200) != 3) return 1;

    /* UPDATE 2: announce 172.16.0.0/12, delete the /8 that is no longer there. */
    rtm_route extra = bgp(172, 16, 12, 4);
    check("rtm_batch_create", rtm_batch_create(4, &b), RTM_NO_ERROR);
    check("rtm_batch_add_route", rtm_batch_add_route(b, &extra), RTM_NO_ERROR);
    check("rtm_batch_delete_route", rtm_batch_delete_route(b, &old), RTM_NO_ERROR);
    check("rtm_batch_commit", rtm_batch_commit(t, b, NULL), RTM_ERROR_NO_MORE_ROUTES);
    check("rtm_table_stats", rtm_table_stats(t, &s), RTM_NO_ERROR);
    printf("a failed commit applied nothing: %llu routes\n", (unsigned long long)s.live_routes);
    if (s.live_routes != 2) return 1;

    check("rtm_table_destroy", rtm_table_destroy(t), RTM_NO_ERROR);
    return 0;
}
