/* notify.c - systemd's notification protocol: readiness, stopping, status
 * and the watchdog keep-alive
 *
 * DESIGN: libsystemd's sd_notify speaks the protocol (the socket in
 * NOTIFY_SOCKET, abstract names, credentials) and is a no-op when no
 * service manager listens, so a worker run by hand or by the tests pays
 * nothing. The watchdog ping is not a timer that fires whatever happens:
 * a thread asks run.c whether every executor (and, before them, start-up)
 * has turned its loop recently, and withholds the ping when one has not,
 * so a thread stuck in a call that never returns gets the process
 * restarted by systemd. An idle executor turns its loop every poll, so
 * idleness is not mistaken for a hang.
 */
#include "notify.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "log.h"

/* without a watchdog the thread only refreshes STATUS this often */
#define NOTIFY_STATUS_INTERVAL_US (2 * 1000 * 1000)

struct notify {
    notify_check_fn check;
    void *arg;
    uint64_t watchdog_us; /* 0: no watchdog asked for */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int stop;     /* under lock */
    int stopping; /* under lock: ping without asking check */
};

/* Sends head (READY=1, WATCHDOG=1, ...; may be NULL) and a STATUS line
 * (status may be NULL or empty: none). A failure is not worth more than a
 * debug line: the manager may be gone during shutdown. */
static void
notify_send(const char *head, const char *status)
{
    char msg[600];
    int rc;

    if (status != NULL && *status)
        snprintf(msg, sizeof(msg), "%s%sSTATUS=%s", head ? head : "",
                 head ? "\n" : "", status);
    else if (head != NULL)
        snprintf(msg, sizeof(msg), "%s", head);
    else
        return;
    rc = sd_notify(0, msg);
    if (rc < 0)
        log_debug("sd_notify: %s", strerror(-rc));
}

static void
one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

static void *
notify_main(void *arg)
{
    notify_t *n = arg;
    int64_t interval_us = n->watchdog_us > 0 ? (int64_t)n->watchdog_us / 4
                                             : NOTIFY_STATUS_INTERVAL_US;
    int64_t stall_us =
        n->watchdog_us > 0 ? (int64_t)n->watchdog_us / 2 : 30 * 1000 * 1000;
    char status[512], last[512] = "";
    int withheld = 0;

    pthread_mutex_lock(&n->lock);
    while (!n->stop) {
        struct timespec until;
        int stopping = n->stopping, ok = 1;

        pthread_mutex_unlock(&n->lock);
        status[0] = '\0';
        if (!stopping)
            ok = n->check(n->arg, stall_us, status, sizeof(status));
        one_line(status);
        if (ok && n->watchdog_us > 0) {
            if (withheld)
                log_info("watchdog: progress again, pinging resumed");
            withheld = 0;
            notify_send("WATCHDOG=1", status);
        } else {
            if (!ok && !withheld)
                log_warn("watchdog: withholding the ping (systemd will "
                         "restart orderd if this lasts): %s",
                         status);
            withheld = !ok;
            if (strcmp(status, last) != 0)
                notify_send(NULL, status);
        }
        snprintf(last, sizeof(last), "%s", status);

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += interval_us / 1000000;
        until.tv_nsec += (interval_us % 1000000) * 1000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&n->lock);
        while (!n->stop && n->stopping == stopping &&
               pthread_cond_timedwait(&n->wake, &n->lock, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&n->lock);
    return NULL;
}

notify_t *
notify_start(notify_check_fn check, void *arg)
{
    const char *sock = getenv("NOTIFY_SOCKET");
    pthread_condattr_t ca;
    notify_t *n;
    uint64_t usec = 0;
    int rc;

    if (sock == NULL || *sock == '\0')
        return NULL;
    n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->check = check;
    n->arg = arg;
    rc = sd_watchdog_enabled(0, &usec);
    if (rc > 0)
        n->watchdog_us = usec;
    else if (rc < 0)
        log_warn("ignoring the watchdog settings: %s", strerror(-rc));
    pthread_mutex_init(&n->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&n->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&n->thread, NULL, notify_main, n) != 0) {
        log_error("could not start the systemd keep-alive thread: the "
                  "watchdog will restart orderd");
        pthread_cond_destroy(&n->wake);
        pthread_mutex_destroy(&n->lock);
        free(n);
        return NULL;
    }
    if (n->watchdog_us > 0)
        log_info("systemd watchdog: %lld ms, pinged while executors make "
                 "progress",
                 (long long)(n->watchdog_us / 1000));
    return n;
}

void
notify_ready(const char *status)
{
    notify_send("READY=1", status);
}

void
notify_stopping(notify_t *n, const char *status)
{
    notify_send("STOPPING=1", status);
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->lock);
    n->stopping = 1;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->lock);
}

void
notify_status(const char *status)
{
    notify_send(NULL, status);
}

void
notify_stop(notify_t *n)
{
    if (n == NULL)
        return;
    pthread_mutex_lock(&n->lock);
    n->stop = 1;
    pthread_cond_signal(&n->wake);
    pthread_mutex_unlock(&n->lock);
    pthread_join(n->thread, NULL);
    pthread_cond_destroy(&n->wake);
    pthread_mutex_destroy(&n->lock);
    free(n);
}
