/* ports.h - free loopback ports for the tests' private servers and
 * listeners.
 *
 * DESIGN: a port is chosen below the kernel's ephemeral range
 * (net.ipv4.ip_local_port_range). Asking the kernel for port 0 hands out
 * an ephemeral port, and between closing the probe and the server binding
 * it (a JVM broker takes seconds to get there) any outgoing connection on
 * the machine may take that port or its neighbours as its local port: CI
 * saw a private broker fail with "Address already in use" that way. Below
 * the range only listeners compete, and the start is random per process,
 * so tests running side by side rarely probe the same ports. */
#ifndef OD_TEST_PORTS_H
#define OD_TEST_PORTS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

/* The lowest ephemeral port (32768 when the file cannot be read). */
static inline int
test_ephemeral_low(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    int low = 32768, high = 0;

    if (f != NULL) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        fclose(f);
    }
    return low;
}

/* 1 when nothing listens on or is bound to 127.0.0.1:port. */
static inline int
test_port_bindable(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    ok = bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    close(fd);
    return ok;
}

/* The first of n consecutive ports nobody uses now, all below the
 * ephemeral range. */
static inline int
test_free_ports(int n)
{
    static unsigned seed;
    int high = test_ephemeral_low() - 16, low = high - 12000;

    if (low < 10000)
        low = 10000;
    if (seed == 0)
        seed = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
    for (int attempt = 0; attempt < 500; attempt++) {
        int port = low + (int)(rand_r(&seed) % (unsigned)(high - low)), ok = 1;

        for (int i = 0; i < n && ok; i++)
            ok = test_port_bindable(port + i);
        if (ok)
            return port;
    }
    ck_abort_msg("no %d free ports in [%d, %d)", n, low, high);
    return -1;
}

#endif
