/* 0770_sd_notify: `orderd run` speaks systemd's notification protocol. With
 * NOTIFY_SOCKET naming a datagram socket the test listens on and
 * WATCHDOG_USEC set, READY=1 arrives once the worker runs; WATCHDOG=1
 * keeps arriving while it idles and while it applies; the pings stop
 * while its executor is stuck in a call (the test holds a lock its work
 * needs) and come back when it gets on; STOPPING=1 arrives on SIGTERM */
#include "ktest.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* the watchdog interval the test asks for: pings every 1.5 s, and an
 * executor that has not got on for 3 s counts as stuck (slack for a
 * loaded machine and the sanitizers) */
#define WATCHDOG_US 6000000LL

static ktest_t k;
static int sock = -1;
static char dir[32], path[64];

static void
setup(void)
{
    struct sockaddr_un sa;

    ktest_setup(&k, "sd_notify", 1);
    snprintf(dir, sizeof(dir), "/tmp/orderd-notify-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/notify", dir);
    sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(sock, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    ck_assert_msg(bind(sock, (struct sockaddr *)&sa, sizeof(sa)) == 0,
                  "bind %s: %s", path, strerror(errno));
}

static void
teardown(void)
{
    close(sock);
    unlink(path);
    rmdir(dir);
    ktest_teardown(&k);
}

/* 1 if the datagram msg has the line want (messages are VAR=value lines) */
static int
has_line(const char *msg, const char *want)
{
    size_t n = strlen(want);

    for (const char *p = msg; p != NULL && *p; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, want, n) == 0 && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    }
    return 0;
}

/* Reads one datagram into msg within timeout_ms: 1, or 0 if none came. */
static int
read_msg(int timeout_ms, char *msg, size_t len)
{
    struct pollfd p = {sock, POLLIN, 0};
    ssize_t r;

    if (timeout_ms <= 0 || poll(&p, 1, timeout_ms) <= 0)
        return 0;
    r = recv(sock, msg, len - 1, 0);
    ck_assert_msg(r >= 0, "recv: %s", strerror(errno));
    msg[r] = '\0';
    return 1;
}

static int
ms_left(int64_t end)
{
    int64_t left = (end - od_mono_us()) / 1000;

    return left > 0 ? (int)left : 0;
}

/*
 * Reads datagrams until one has a line starting with want (a prefix:
 * "STATUS=stuck" matches the stuck status line) or timeout_ms passes.
 * Returns 1 with that message in msg, or 0.
 */
static int
wait_for(const char *want, int timeout_ms, char *msg, size_t len)
{
    int64_t end = od_mono_us() + (int64_t)timeout_ms * 1000;

    while (read_msg(ms_left(end), msg, len))
        for (const char *q = msg; q != NULL; q = strchr(q + 1, '\n')) {
            const char *line = *q == '\n' ? q + 1 : q;

            if (strncmp(line, want, strlen(want)) == 0)
                return 1;
        }
    return 0;
}

/* How many WATCHDOG=1 arrive within ms (every datagram is read). */
static int
count_pings(int ms)
{
    int64_t end = od_mono_us() + (int64_t)ms * 1000;
    char msg[1024];
    int pings = 0;

    while (read_msg(ms_left(end), msg, sizeof(msg)))
        pings += has_line(msg, "WATCHDOG=1");
    return pings;
}

static pid_t
start_worker(void)
{
    const char *extra[] = {"--threads", "1", NULL};
    char usec[32];
    pid_t pid;

    snprintf(usec, sizeof(usec), "%lld", WATCHDOG_US);
    setenv("NOTIFY_SOCKET", path, 1);
    setenv("WATCHDOG_USEC", usec, 1);
    pid = ktest_worker_start(&k, extra);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    return pid;
}

/* a product_upsert with id as its key, product ID and SKU */
#define PRODUCT_FMT                                                            \
    "{\"dedup_key\":\"p%d\",\"type\":\"product_upsert\","                      \
    "\"actor\":{\"role\":\"admin\",\"id\":\"ops\"},\"product_id\":%d,"         \
    "\"vendor_id\":\"v1\",\"name\":\"Mug\",\"sku\":\"MUG-%d\","                \
    "\"currency\":\"EUR\",\"kind\":\"simple\",\"price_cents\":1192,"           \
    "\"stock\":10}"

static void
send_product(int id)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), PRODUCT_FMT, id, id, id);
    ktest_send_cmd(&k, cmd);
    ktest_flush(&k);
}

START_TEST(test_ready_watchdog_stopping)
{
    char msg[1024];
    pid_t worker = start_worker();
    db_t *owner;

    /* ready once it runs, saying so on its status line */
    ck_assert_msg(wait_for("READY=1", 60000, msg, sizeof(msg)),
                  "no READY=1 from the worker");
    ck_assert_msg(strstr(msg, "STATUS=running") != NULL, "ready message: %s",
                  msg);

    /* idle: pinged every quarter of the interval */
    ck_assert_int_ge(count_pings(5000), 2);

    /* applying: still pinged, and the command applies */
    send_product(1);
    ck_assert_int_eq(ktest_wait_results(&k, 1, 60), 1);
    ck_assert_int_ge(count_pings(5000), 2);

    /* stuck: the executor waits on a table lock the test holds (an idle
     * executor reads its offsets there every second, a batch writes
     * them), so its loop stops turning and the pings stop */
    owner = itest_owner_db(k.name);
    itest_exec(owner, "BEGIN");
    itest_exec(owner, "LOCK TABLE consumer_offsets IN ACCESS EXCLUSIVE MODE");
    send_product(2);
    ck_assert_msg(wait_for("STATUS=stuck: executor 0", 30000, msg, sizeof(msg)),
                  "no stuck status while the executor waits on a lock");
    ck_assert_msg(!has_line(msg, "WATCHDOG=1"), "pinged while stuck: %s", msg);
    ck_assert_int_eq(count_pings(4000), 0);

    /* unstuck: the pings come back and the command applies */
    itest_exec(owner, "ROLLBACK");
    db_destroy(owner);
    ck_assert_msg(wait_for("WATCHDOG=1", 10000, msg, sizeof(msg)),
                  "no ping after the executor got on again");
    ck_assert_int_eq(ktest_wait_results(&k, 2, 60), 2);

    /* a stop is announced before the worker finishes and exits */
    kill(worker, SIGTERM);
    ck_assert_msg(wait_for("STOPPING=1", 30000, msg, sizeof(msg)),
                  "no STOPPING=1 after SIGTERM");
    ck_assert_int_eq(ktest_worker_stop(worker, SIGTERM), 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("sd_notify");
    TCase *tc = tcase_create("protocol");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ready_watchdog_stopping);
    suite_add_tcase(s, tc);
    return itest_run(s);
}
