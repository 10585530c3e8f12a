/* Assertions and route builders shared by the C tests. */
#ifndef RTM_TEST_CHECK_H
#define RTM_TEST_CHECK_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm.h"

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

#define EXPECT(call, code)                                                          \
    do {                                                                            \
        uint32_t rc_ = (call);                                                      \
        if (rc_ != (uint32_t)(code)) {                                              \
            fprintf(stderr, "%s:%d: %s returned %u, expected %u\n", __FILE__,       \
                    __LINE__, #call, rc_, (unsigned)(code));                        \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

/* An IPv4 route: network "a.b.c.d", length, protocol, interface, last byte of the next hop
 * 192.0.2.x, value. */
static inline rtm_route route4(const char *net, uint8_t len, uint32_t protocol,
                               uint32_t interface_id, uint8_t hop, uint64_t value) {
    rtm_route r;
    memset(&r, 0, sizeof r);
    r.family = 4;
    r.prefix_len = len;
    r.enabled = 1;
    CHECK(inet_pton(AF_INET, net, r.network) == 1);
    r.next_hop[0] = 192;
    r.next_hop[1] = 0;
    r.next_hop[2] = 2;
    r.next_hop[3] = hop;
    r.protocol = protocol;
    r.interface_id = interface_id;
    r.value = value;
    return r;
}

/* An IPv6 route, as route4. */
static inline rtm_route route6(const char *net, uint8_t len, uint32_t protocol,
                               uint32_t interface_id, uint8_t hop, uint64_t value) {
    rtm_route r;
    memset(&r, 0, sizeof r);
    r.family = 6;
    r.prefix_len = len;
    r.enabled = 1;
    CHECK(inet_pton(AF_INET6, net, r.network) == 1);
    CHECK(inet_pton(AF_INET6, "2001:db8::1", r.next_hop) == 1);
    r.next_hop[15] = hop;
    r.protocol = protocol;
    r.interface_id = interface_id;
    r.value = value;
    return r;
}

/* The key fields of two routes are equal. */
static inline int same_key(const rtm_route *a, const rtm_route *b) {
    return a->family == b->family && a->prefix_len == b->prefix_len &&
           memcmp(a->network, b->network, 16) == 0 && memcmp(a->next_hop, b->next_hop, 16) == 0 &&
           a->protocol == b->protocol && a->interface_id == b->interface_id;
}

/* Every field of two routes is equal. */
static inline int same_route(const rtm_route *a, const rtm_route *b) {
    return same_key(a, b) && a->enabled == b->enabled && a->priority == b->priority &&
           a->metric == b->metric && a->value == b->value;
}

/* Compares two routes' keys in enumeration order (network address, length, protocol,
 * interface, next hop). */
static inline int key_cmp(const rtm_route *a, const rtm_route *b) {
    int c = memcmp(a->network, b->network, 16);
    if (c) return c;
    if (a->prefix_len != b->prefix_len) return a->prefix_len < b->prefix_len ? -1 : 1;
    if (a->protocol != b->protocol) return a->protocol < b->protocol ? -1 : 1;
    if (a->interface_id != b->interface_id) return a->interface_id < b->interface_id ? -1 : 1;
    return memcmp(a->next_hop, b->next_hop, 16);
}

#endif
