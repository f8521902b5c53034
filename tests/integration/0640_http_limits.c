/* 0640_http_limits: the metrics listener of `orderd run` keeps answering
 * /healthz while 2,000 idle connections (some with half a request sent)
 * are held open, and it closes connections idle past --http-timeout */
#include "ktest.h"
#include "ports.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IDLE 2000

static ktest_t k;
static pid_t worker;
static int port;
static int idle[IDLE];
static int nidle;
static pid_t *running; /* the worker's pid, shared with the runner process */

static int
dial(void)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET path, waiting at most timeout_ms in all; the HTTP status, or 0 when
 * there was no answer in time (or none at all). */
static int
get(const char *path, int timeout_ms)
{
    int64_t end = od_mono_us() + (int64_t)timeout_ms * 1000;
    char req[128], buf[1024];
    size_t n = 0;
    int fd = dial(), status = 0;

    if (fd < 0)
        return 0;
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n",
             path);
    if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
        close(fd);
        return 0;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int64_t left = (end - od_mono_us()) / 1000;
        ssize_t r;

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        r = read(fd, buf + n, sizeof(buf) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n == sizeof(buf) - 1)
            break;
    }
    buf[n] = '\0';
    close(fd);
    if (sscanf(buf, "HTTP/%*s %d", &status) != 1)
        return 0;
    return status;
}

/* Descriptors the worker has open (its accepted connections among them). */
static int
worker_fds(void)
{
    char path[64];
    DIR *d;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/fd", (int)worker);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 2;
}

/* Polls /healthz until 200 or timeout_s (the listener starts with the
 * worker); returns 1 when it answered. */
static int
wait_healthy(int timeout_s)
{
    int64_t end = od_mono_us() + (int64_t)timeout_s * 1000000;

    for (;;) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        if (get("/healthz", 1000) == 200)
            return 1;
        if (od_mono_us() >= end)
            return 0;
        nanosleep(&ts, NULL); /* polling interval */
    }
}

static void
start_worker(const char *timeout)
{
    char addr[64];
    const char *extra[] = {"--metrics-addr", addr, "--http-timeout", timeout,
                           NULL};

    port = test_free_ports(1);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    worker = ktest_worker_start(&k, extra);
    running[0] = worker;
    ck_assert_msg(wait_healthy(60), "the listener never answered /healthz");
}

static void
setup(void)
{
    struct rlimit rl;

    /* this process holds the idle connections too */
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    ck_assert_msg(rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > IDLE + 512,
                  "the open-file limit (%llu) is too low for this test",
                  (unsigned long long)rl.rlim_cur);
    nidle = 0;
    worker = 0;
    ktest_setup(&k, "http_limits", 1);
}

static void
teardown(void)
{
    for (int i = 0; i < nidle; i++)
        close(idle[i]);
    nidle = 0;
    if (worker > 0)
        ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
    running[0] = 0;
    ktest_teardown(&k);
}

/* Unchecked fixture (in the runner's process, so it runs even when the
 * test fails): a worker left behind, holding its port, is killed. */
static void
runner_up(void)
{
    running = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(running, MAP_FAILED);
    running[0] = 0;
}

static void
runner_down(void)
{
    if (running != NULL && running != MAP_FAILED && running[0] > 0)
        kill(running[0], SIGKILL);
}

/* Opens n connections: a third send half a request line, a fifth a
 * request line and a header without the blank line, the rest nothing. */
static void
open_idle(int n)
{
    static const char *half = "GET /heal";
    static const char *headers = "GET /metrics HTTP/1.1\r\nHost: x\r\n";

    for (int i = 0; i < n; i++) {
        const char *send = i % 3 == 0 ? half : i % 5 == 0 ? headers : NULL;
        int fd = dial();

        ck_assert_msg(fd >= 0, "connection %d refused: %s", i, strerror(errno));
        idle[nidle++] = fd;
        if (send != NULL)
            ck_assert_int_eq(write(fd, send, strlen(send)),
                             (ssize_t)strlen(send));
    }
}

/* How many of the idle connections the server has closed (EOF or reset;
 * anything it sent before is read and dropped). */
static int
closed_by_server(void)
{
    int closed = 0;

    for (int i = 0; i < nidle; i++) {
        struct pollfd p = {idle[i], POLLIN, 0};
        char buf[512];
        ssize_t r = 1;

        if (poll(&p, 1, 0) != 1)
            continue;
        while ((r = recv(idle[i], buf, sizeof(buf), MSG_DONTWAIT)) > 0)
            ;
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            closed++;
    }
    return closed;
}

START_TEST(test_healthz_answers_under_2000_idle_connections)
{
    int64_t end, t0;
    int base, fds, status;

    start_worker("60s");
    base = worker_fds();
    open_idle(IDLE);
    /* the worker accepted them all (not merely the kernel's backlog) */
    end = od_mono_us() + 30 * 1000000LL;
    while ((fds = worker_fds()) < base + IDLE - 10 && od_mono_us() < end) {
        struct timespec ts = {0, 50 * 1000 * 1000};

        nanosleep(&ts, NULL); /* polling interval */
    }
    ck_assert_msg(fds >= base + IDLE - 10,
                  "the worker holds %d descriptors, %d before the %d "
                  "connections",
                  fds, base, IDLE);
    t0 = od_mono_us();
    status = get("/healthz", 5000);
    ck_assert_msg(status == 200, "/healthz: %d after %lld ms with %d idle",
                  status, (long long)(od_mono_us() - t0) / 1000, IDLE);
    ck_assert_int_eq(get("/readyz", 5000) != 0, 1);
    /* and they are still held: nothing was dropped to make room */
    ck_assert_int_eq(closed_by_server(), 0);
    for (int i = 0; i < nidle; i++)
        close(idle[i]);
    nidle = 0;
    ck_assert_int_eq(get("/healthz", 5000), 200);
}
END_TEST

START_TEST(test_idle_connections_are_closed_after_the_timeout)
{
    int64_t end;
    int closed;

    start_worker("1s");
    open_idle(30);
    end = od_mono_us() + 15 * 1000000LL;
    while ((closed = closed_by_server()) < nidle && od_mono_us() < end) {
        struct timespec ts = {0, 100 * 1000 * 1000};

        nanosleep(&ts, NULL); /* polling interval */
    }
    ck_assert_msg(closed == nidle, "%d of %d idle connections still open",
                  nidle - closed, nidle);
    ck_assert_int_eq(get("/healthz", 5000), 200);
}
END_TEST

static Suite *
http_limits_suite(void)
{
    Suite *s = suite_create("http_limits");
    TCase *tc = tcase_create("limits");

    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, runner_up, runner_down);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_healthz_answers_under_2000_idle_connections);
    tcase_add_test(tc, test_idle_connections_are_closed_after_the_timeout);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return itest_run(http_limits_suite());
}
